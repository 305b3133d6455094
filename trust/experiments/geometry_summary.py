"""The summary of ``trust geometry`` (docs/theory.md §8): what its figures and rows show, over optimisers and seeds —
bands of the function change against width, stable ranks, C_eff in each geometry's sizes, the width exponent's
claims against their predictions, which geometry's bound is tightest and whether spectral sizes explain C_eff —
computed from a combined study (``GeometryResult.derive``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from trust.base.schema import Spread, Verdict, value
from trust.core import curvature, estimate
from trust.experiments.shared import rules
from trust.experiments.shared.geometry_cell import DEAD, DIVERGED, GEOMETRIES, RAW_DIRECTIONS, SPANS

LAYER_GROUPS = ("first", "hidden (median)", "last")

if TYPE_CHECKING:
    from trust.experiments.geometry import GeometryResult

CHECKPOINTS = ("init", "end")
PREDICTED_EXPONENT = {"frobenius": 0.5, "spectral": 0.0}  # for the low-stable-rank directions (§8.5)
ONE_WIDTH = "fewer than two widths: no width exponent"
NO_RECORD = "NaN where the record's cell did not measure it (sensitivities or curvature); empty without records"
WEIGHT_ALLOWANCE = 1e-5  # float32 first-order changes: the theorem's rounding allowance
DENSITY_GRID, DENSITY_KERNEL = 801, 40  # the smoothed density: grid points, and the kernel as a fraction of the range
N_FIXED = 3  # RAW_DIRECTIONS[:3]: the directions that do not depend on the optimiser (its own step is last)
N_SIZES = 2  # GEOMETRIES[:2]: the geometries (Frobenius, spectral) whose sizes a bound is taken in


@dataclass(frozen=True, eq=False)
class ExponentClaim:
    """The width exponent of the function change per step along the gradient, in one geometry at one checkpoint,
    against its prediction (docs/theory.md §8.5): per optimiser (at initialisation one entry: every optimiser's
    cells hold the same nets), whether the prediction is inside its interval over seeds."""

    geometry: str
    checkpoint: str
    predicted: float
    optimizers: tuple[str, ...]
    inside: tuple[bool, ...]
    consistent: int  # optimisers whose interval holds the prediction
    mean: np.ndarray = value(f"{DIVERGED}; {ONE_WIDTH}", axes=("optimizer",))
    half_width: np.ndarray = value(f"{estimate.ONE_SAMPLE}; {ONE_WIDTH}", axes=("optimizer",))
    mean_of_means: float = value(f"{DIVERGED}; {ONE_WIDTH}")

    def coordinates(self) -> dict[str, list]:
        return {"optimizer": list(self.optimizers)}

    def verdicts(self, seeds: int) -> tuple[Verdict, ...]:
        """Rule "interval" per optimiser: the prediction inside the 95 % interval over ``seeds``."""
        return tuple(rules.interval(self.predicted, m, h, seeds) for m, h in zip(self.mean, self.half_width))


@dataclass(frozen=True, eq=False)
class GeometrySummary:
    """Every number the geometry figures and rows show, over optimisers (o) and seeds, NaN left out. Axes as in
    :class:`Sweep`: checkpoint k, direction d, geometry g, swept value v, size geometry s."""

    tightest: tuple[str, ...]  # per direction: the geometry whose worst ratio is nearest 1 (MLPs)
    resnet_tightest: tuple[str, ...]
    # per direction: the next tightest geometry, and the tightest against it seed by seed (rule compare on
    # |ln worst ratio|, paired; Holm across directions); empty for a result stored without per-seed worsts
    runner_up: tuple[str, ...]
    tightest_orders: tuple[Verdict, ...]
    # the function change at the smallest η, over optimisers × seeds
    width_function: Spread = value(axes=("checkpoint", "direction", "geometry", "width"))
    # the first optimiser's nets at init, over seeds (the fixed directions: not "step")
    step_rank_init: Spread = value(axes=("fixed_direction", "width"))
    c_eff_width: Spread = value(axes=("checkpoint", "bound_size", "width"))  # over optimisers × seeds
    c_eff_depth: Spread = value(axes=("checkpoint", "bound_size", "depth"))
    operator: Verdict | None = value()  # the operator-norm theorem (None: no bias-free MLP measured)
    exponents: tuple[ExponentClaim, ...] = value()
    explains: Verdict = value()  # does the spectral geometry bring C_eff to ≈ 1 (rules.explains)
    # mean over optimisers of the width exponent p
    exponent_mean: np.ndarray = value(f"{DIVERGED}; {ONE_WIDTH}", axes=("checkpoint", "direction", "geometry"))
    weight_rank_init: np.ndarray = value(DIVERGED, axes=("width",))  # median over optimisers × seeds
    weight_rank_end: np.ndarray = value(DIVERGED, axes=("optimizer", "width"))  # median over seeds
    # each optimiser's own step, median over seeds
    own_step_rank: np.ndarray = value(f"{DIVERGED}; {DEAD}", axes=("optimizer", "checkpoint", "width"))
    c_eff_widest: np.ndarray = value(f"{DIVERGED}; {DEAD}", axes=("checkpoint", "bound_size"))  # the widest net
    # the median over optimisers, seeds and directions at the smallest width (the figure's reference slopes)
    width_reference: np.ndarray = value(f"{DIVERGED}; {DEAD}", axes=("checkpoint", "geometry"))
    # the depth sweep's cells at chance after training (rule flag's accuracy test; no cell trains near zero loss
    # in two epochs): their end values measure an untrained net — (at chance, cells) per depth
    depth_at_chance: np.ndarray = value(empty=True, axes=("depth",))
    depth_cells: np.ndarray = value(empty=True, axes=("depth",))
    # docs/theory.md §10: the modular family's exact bound (a theorem on the plain bias-free nets); its effective
    # constant along the gradient (measured/nominal) across depth over optimisers × seeds, ∏‖W_l‖_* beside it;
    # per optimiser, the deepest net's constant at the end against the shallowest's (rule compare, Holm)
    modular_theorem: Verdict | None = None
    modular_depth: Spread | None = value(default=None, axes=("checkpoint", "depth"))
    atom_product_depth: Spread | None = value(default=None, axes=("checkpoint", "depth"))
    modular_orders: tuple[Verdict, ...] = ()
    # the same with the hidden layers tared together (the alternative allocation, depths ≥ 3; docs/theory.md §10.1):
    # its constant across depth, the deepest against the shallowest, and against the unit masses' constant on the
    # same cells at the deepest net (paired by seed) — per optimiser, Holm
    tared_depth: Spread | None = value(default=None, axes=("checkpoint", "depth"))
    tared_orders: tuple[Verdict, ...] = ()
    tared_against_unit: tuple[Verdict, ...] = ()
    # the residual MLPs (config.residual_depths) alike, with their gradient slice's C_eff in Frobenius and spectral
    # sizes beside; the ResNets' constant along the gradient and ∏‖W_l‖_* per ResNet, over optimisers × seeds
    residual_modular_depth: Spread | None = value(default=None, axes=("checkpoint", "residual_depth"))
    residual_atom_product_depth: Spread | None = value(default=None, axes=("checkpoint", "residual_depth"))
    residual_c_eff: Spread | None = value(default=None, axes=("checkpoint", "bound_size", "residual_depth"))
    residual_modular_orders: tuple[Verdict, ...] = ()
    resnet_modular: Spread | None = value(default=None, axes=("resnet", "checkpoint"))
    resnet_atom_product: Spread | None = value(default=None, axes=("resnet", "checkpoint"))
    # docs/theory.md §10.4, §11: the chosen cells' layers (one entry per record in r.layers), grouped as first,
    # median hidden and last layer, at initialisation and the end
    records: tuple[str, ...] = ()  # the records' names: optimiser, width, depth, seed
    input_sensitivity: np.ndarray = value(NO_RECORD, empty=True, axes=("record", "checkpoint", "layer_group"))
    weight_sensitivity: np.ndarray = value(NO_RECORD, empty=True, axes=("record", "checkpoint", "layer_group"))
    weight_theorem: Verdict | None = None  # output change per unit modular step ≤ 1 (1-Lipschitz layers)
    block_curvature: np.ndarray = value(NO_RECORD, empty=True, axes=("record", "checkpoint", "layer_group"))
    # the per-layer Lipschitz model λ_l‖ΔW_l‖/‖g_l‖ along the paper's slice, worst measured/predicted at the end
    layer_lipschitz: Verdict | None = None
    # the curvature cells at chance after training, left out of it (rule flag: an untrained net's vanishing
    # gradients make the prediction, and so the ratio, meaningless)
    layer_lipschitz_at_chance: tuple[str, ...] = ()
    # the Hessian's spectral density of the deepest curvature cell of the first optimiser measured, at
    # initialisation and the end, smoothed on one grid with one kernel width (docs/theory.md §11.3)
    density_record: str = ""
    density_grid: np.ndarray = value(empty=True, axes=("eigenvalue",))
    density: np.ndarray = value(empty=True, axes=("checkpoint", "eigenvalue"))
    # docs/theory.md §12: per optimiser, span and layer group, the width exponent of the relative feature change
    # (mean over seeds and its 95 % half-width; the spectral condition predicts 0) and rule interval's verdicts
    feature_exponent: np.ndarray = value(
        f"{DIVERGED}; {ONE_WIDTH}", empty=True, axes=("optimizer", "span", "layer_group")
    )  # fmt: skip
    feature_exponent_half: np.ndarray = value(
        f"{estimate.ONE_SAMPLE}; {ONE_WIDTH}", empty=True, axes=("optimizer", "span", "layer_group")
    )  # fmt: skip
    feature_verdicts: tuple[Verdict, ...] = ()  # (o, span, group) flattened in that order
    # the relative feature change, alignment and spectral step against width, over optimisers × seeds
    feature_width: Spread | None = value(default=None, axes=("span", "feature", "layer_group", "width"))

    def coordinates(self) -> dict[str, list]:
        """The summary's own axes: the fixed directions, the geometries a bound's sizes are taken in, the spans and
        layer groups of feature learning."""
        return {"fixed_direction": list(RAW_DIRECTIONS[:N_FIXED]), "bound_size": list(GEOMETRIES[:N_SIZES]),
                "span": list(SPANS), "layer_group": list(LAYER_GROUPS), "record": list(self.records),
                "eigenvalue": list(self.density_grid)}  # fmt: skip


def _over_cells(values: np.ndarray, axes: int = 2) -> Spread:
    """A spread over the first ``axes`` axes (optimisers × seeds) taken together."""
    values = np.asarray(values, dtype=float)
    return rules.spread(values.reshape(-1, *values.shape[axes:]))


def _tightest(ratio: np.ndarray) -> tuple[str, ...]:
    """Per direction, the geometry whose worst measured/bound is nearest 1 in log (rules "tightest")."""
    if not np.isfinite(ratio[1]).any():
        return ()
    return tuple(GEOMETRIES[int(np.nanargmin(np.abs(np.log(ratio[1, d]))))] for d in range(len(RAW_DIRECTIONS)))


CHANCE = 0.1  # every registered data set (trust.core.data.DATASETS) has 10 classes


def _tightest_orders(r: GeometryResult) -> tuple[tuple[str, ...], tuple[Verdict, ...]]:
    """Per direction, the next tightest geometry (by the pooled worst ratio) and rule compare, paired by seed, of
    its |ln worst ratio| against the tightest's: "above" is a tightest geometry the seeds separate."""
    if r.seed_worst.size == 0 or not np.isfinite(r.ratio_function[1]).any():
        return (), ()
    names, verdicts = [], []
    for d in range(len(RAW_DIRECTIONS)):
        order = np.argsort(np.abs(np.log(r.ratio_function[1, d])))
        distance = np.abs(np.log(r.seed_worst[:, d, :]))  # (seed, g)
        names.append(GEOMETRIES[int(order[1])])
        verdicts.append(rules.compare(distance[:, order[1]], distance[:, order[0]], paired=True))
    return tuple(names), tuple(rules.holm(verdicts))


def _exponent_claims(r: GeometryResult) -> tuple[ExponentClaim, ...]:
    c, out = r.config, []
    d = RAW_DIRECTIONS.index("gradient")
    for g, geometry in enumerate(GEOMETRIES[:2]):
        predicted = PREDICTED_EXPONENT[geometry]
        for k, tag in enumerate(CHECKPOINTS):
            opts = c.optimizers if k else c.optimizers[:1]  # at init every optimiser's cells hold the same nets
            means, halves = r.exponent[: len(opts), k, d, g], r.exponent_half[: len(opts), k, d, g]
            inside = tuple(rules.inside_interval(predicted, m, h) for m, h in zip(means, halves))
            names = tuple(opts) if k else ("any optimiser",)
            claim = (geometry, tag, predicted, names, inside, sum(inside))
            out.append(ExponentClaim(*claim, means, halves, rules.finite_mean(means)))
    return tuple(out)


MODULAR_ALLOWANCE = 1e-3  # the exact bound's rounding allowance: float32 outputs differenced at the smallest η


def _modular(r: GeometryResult) -> dict:
    """The modular family's claims (docs/theory.md §10.3, §10.5), or nothing for a result without it."""
    sweeps = [sw for sw in (r.width, r.depth, r.residual) if sw is not None and sw.modular_c_eff.size]
    if not sweeps:
        return {}
    bounded = [sw.modular_exact for sw in sweeps] + [sw.tared_exact for sw in sweeps] + [r.resnet_modular_exact]
    exact = np.concatenate([rules.finite(a) for a in bounded])
    theorem = rules.theorem(int(np.sum(exact > 1 + MODULAR_ALLOWANCE)), rules.finite_median(exact),
                            float(exact.max()) if exact.size else float("nan"), r.config.seeds)  # fmt: skip
    d = RAW_DIRECTIONS.index("gradient")
    out = {"modular_theorem": theorem, **_modular_depth(r.depth, d, ""), **_tared(r.depth, d)}
    if r.residual is not None and r.residual.modular_c_eff.size:
        out |= _modular_depth(r.residual, d, "residual_")
        out["residual_c_eff"] = _over_cells(np.moveaxis(r.residual.c_eff[..., :N_SIZES], 2, -1))
    if r.resnet_modular_c_eff.size:
        out["resnet_modular"] = _over_cells(r.resnet_modular_c_eff[..., d])
        out["resnet_atom_product"] = _over_cells(r.resnet_atom_product)
    return out


def _modular_depth(sw, d: int, prefix: str) -> dict:
    """A depth sweep's modular constant along direction ``d`` and ∏‖W_l‖_* per checkpoint and depth, over
    optimisers × seeds; per optimiser, the deepest net's constant at the end against the shallowest's (rule
    compare, Holm)."""
    depth = sw.modular_c_eff[..., d]  # (o, r, v, k)
    orders = [rules.compare(depth[o, :, -1, 1], depth[o, :, 0, 1]) for o in range(depth.shape[0])]
    return {
        f"{prefix}modular_depth": _over_cells(np.moveaxis(depth, 2, -1)),
        f"{prefix}atom_product_depth": _over_cells(np.moveaxis(sw.atom_product, 2, -1)),
        f"{prefix}modular_orders": tuple(rules.holm(orders)),
    }


def _tared(sw, d: int) -> dict:
    """The depth sweep's constant along direction ``d`` with the hidden layers tared, per checkpoint and depth, over
    optimisers × seeds; per optimiser at the end, the deepest net against the shallowest that has hidden layers, and
    against the unit masses' constant of the same cells at the deepest (paired, Holm); nothing without it."""
    if not np.isfinite(sw.tared_c_eff).any():
        return {}
    tared, unit = sw.tared_c_eff[..., d], sw.modular_c_eff[..., d]  # (o, r, v, k)
    first = int(np.argmax(np.isfinite(tared).any(axis=(0, 1, 3))))  # the shallowest depth with hidden layers
    deeper = first < tared.shape[2] - 1  # a depth order needs two depths with hidden layers
    orders = [rules.compare(tared[o, :, -1, 1], tared[o, :, first, 1]) for o in range(tared.shape[0])] if deeper else []
    against = [rules.compare(tared[o, :, -1, 1], unit[o, :, -1, 1], paired=True) for o in range(tared.shape[0])]
    return {
        "tared_depth": _over_cells(np.moveaxis(tared, 2, -1)),
        "tared_orders": tuple(rules.holm(orders)),
        "tared_against_unit": tuple(rules.holm(against)),
    }


def layer_groups(per_layer: np.ndarray) -> np.ndarray:
    """``(…, 3)``: a per-layer array's first layer, the median of its hidden layers (NaN without any) and its last
    layer — the rectangular layers apart from the square ones (docs/theory.md §12)."""
    hidden = per_layer[..., 1:-1]
    middle = np.median(hidden, axis=-1) if hidden.shape[-1] else np.full(per_layer.shape[:-1], np.nan)
    return np.stack([per_layer[..., 0], middle, per_layer[..., -1]], axis=-1)


def _groups(arrays: list[np.ndarray]) -> np.ndarray:
    """``(record, k, 3)``: each record's (k, l) array as its :func:`layer_groups` (NaN where it is empty)."""
    out = np.full((len(arrays), len(CHECKPOINTS), len(LAYER_GROUPS)), np.nan)
    for i, a in enumerate(arrays):
        if a.size:
            out[i] = layer_groups(a)
    return out


def _layers(r: GeometryResult) -> dict:
    """The chosen cells' sensitivities and curvature (docs/theory.md §10.4, §11), or nothing without records."""
    if not r.layers:
        return {}
    weight = np.concatenate([rules.finite(rec.weight_sensitivity) for rec in r.layers])
    with_curvature = [rec for rec in r.layers if rec.block_curvature.size]
    out = {
        "records": tuple(rec.name for rec in r.layers),
        "input_sensitivity": _groups([rec.input_sensitivity for rec in r.layers]),
        "weight_sensitivity": _groups([rec.weight_sensitivity for rec in r.layers]),
        "block_curvature": _groups([rec.block_curvature for rec in r.layers]),
        "weight_theorem": rules.theorem(int(np.sum(weight > 1 + WEIGHT_ALLOWANCE)), rules.finite_median(weight),
                                        float(weight.max()) if weight.size else float("nan"), len(r.layers)),
    }  # fmt: skip
    if with_curvature:
        rec = max((x for x in with_curvature if x.optimizer == with_curvature[0].optimizer), key=lambda x: x.depth)
        scale = float(np.max(np.abs(rec.density_nodes)))
        grid = np.linspace(-1.05 * scale, 1.05 * scale, DENSITY_GRID)
        out["density_record"] = f"{rec.optimizer} L={rec.depth}"
        out["density_grid"] = grid
        out["density"] = np.stack([
            curvature.Density(rec.density_nodes[k], rec.density_weights[k]).smoothed(grid, scale / DENSITY_KERNEL)
            for k in range(len(CHECKPOINTS))
        ])  # fmt: skip
        # at the end: the slice's measured change over the per-layer prediction, on trained nets
        chance = [bool(rules.at_chance(rec.train_acc, CHANCE)) for rec in with_curvature]
        trained = [rec for rec, c in zip(with_curvature, chance) if not c]
        ratios = [rules.finite(rec.breakdown[1] / rec.lipschitz_layer[1]) for rec in trained]
        worst = np.concatenate(ratios) if ratios else np.array([])
        out["layer_lipschitz"] = rules.bound(float(worst.max()) if worst.size else float("nan"), len(trained))
        out["layer_lipschitz_at_chance"] = tuple(rec.name for rec, c in zip(with_curvature, chance) if c)
    return out


def _features(r: GeometryResult) -> dict:
    """The width exponent of each layer group's relative feature change, per optimiser and span (§12)."""
    sw = r.width
    if not sw.features.size:
        return {}
    n_o, n_span, n_group = sw.features.shape[0], sw.features.shape[3], sw.features.shape[5]
    mean, half = np.full((n_o, n_span, n_group), np.nan), np.full((n_o, n_span, n_group), np.nan)
    verdicts = []
    for o, t, g in np.ndindex(n_o, n_span, n_group):
        values = sw.features[o, :, :, t, 0, g]  # (seed, width): the relative change
        per_seed = [width_exponent(sw.values, v) for v in values if np.all(v > 0)]
        if per_seed:
            ci = estimate.mean_ci(per_seed)
            mean[o, t, g], half[o, t, g] = ci.mean, ci.half_width
        verdicts.append(rules.interval(0.0, float(mean[o, t, g]), float(half[o, t, g]), len(per_seed)))
    return {"feature_exponent": mean, "feature_exponent_half": half, "feature_verdicts": tuple(verdicts),
            "feature_width": _over_cells(np.moveaxis(sw.features, 2, -1))}  # fmt: skip


def width_exponent(widths, values) -> float:
    """The least-squares slope ``p`` of ``log values`` against ``log widths`` (docs/theory.md §8.5); NaN with fewer
    than two distinct widths (no slope)."""
    if len(set(widths)) < 2:
        return float("nan")
    return float(np.polyfit(np.log(np.asarray(widths, dtype=float)), np.log(np.asarray(values, dtype=float)), 1)[0])


def summary(r: GeometryResult) -> GeometrySummary:
    """Everything the geometry views show, from the combined study (:class:`GeometrySummary`)."""
    sw, n_s = r.width, N_SIZES
    function = np.moveaxis(sw.function[..., 0], 2, -1)  # (o, r, k, d, g, v) at the smallest η
    widest = rules.median(sw.c_eff[:, :, -1].reshape(-1, *sw.c_eff.shape[3:]), axis=0)  # (k, s)
    smallest = sw.function[:, :, 0, :, :, :, 0]  # (o, r, k, d, g): the smallest width and η
    k_g = smallest.shape[2], smallest.shape[4]
    own_step = sw.step_rank[:, :, :, :, RAW_DIRECTIONS.index("step")]  # (o, r, v, k)
    runner_up, orders = _tightest_orders(r)
    operator = None
    if np.isfinite(r.operator_worst):
        operator = rules.theorem(r.operator_violations, float("nan"), r.operator_worst, r.config.seeds)
    return GeometrySummary(
        width_function=_over_cells(function),
        width_reference=rules.median(np.moveaxis(smallest, 3, 2).reshape(-1, k_g[0], k_g[1]), axis=0),
        exponent_mean=np.apply_along_axis(rules.finite_mean, 0, r.exponent),  # (k, d, g)
        weight_rank_init=rules.median(sw.weight_rank[:, :, :, 0].reshape(-1, len(sw.values)), axis=0),
        weight_rank_end=rules.median(np.moveaxis(sw.weight_rank[:, :, :, 1], 1, 0), axis=0),
        step_rank_init=rules.spread(np.moveaxis(sw.step_rank[0, :, :, 0, :N_FIXED], 2, 1)),
        own_step_rank=rules.median(np.moveaxis(own_step, (1, 3), (0, 2)), axis=0),
        c_eff_width=_over_cells(np.moveaxis(sw.c_eff[..., :n_s], 2, -1)),
        c_eff_depth=_over_cells(np.moveaxis(r.depth.c_eff[..., :n_s], 2, -1)),
        c_eff_widest=widest[:, :n_s],
        tightest=_tightest(r.ratio_function),
        runner_up=runner_up,
        tightest_orders=orders,
        resnet_tightest=_tightest(r.resnet_function) if r.config.resnets else (),
        operator=operator,
        exponents=_exponent_claims(r),
        explains=rules.explains(widest[:, 0], widest[:, 1]),
        depth_at_chance=np.sum(rules.at_chance(r.depth.train_acc, CHANCE), axis=(0, 1)),
        depth_cells=np.sum(np.isfinite(r.depth.train_acc), axis=(0, 1)),
        **_modular(r),
        **_features(r),
        **_layers(r),
    )
