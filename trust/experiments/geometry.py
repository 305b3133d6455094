"""``trust geometry``: which per-layer geometry makes relative trust tight — Frobenius, spectral or elementwise —
and how the answer moves with width and depth (docs/theory.md §8).

A study of cells (net × optimiser × seed, :mod:`trust.experiments.shared.geometry_cell`: 12 families of steps
at initialisation and the end of training). ``combine`` turns them into each family's measured/bound ratios
against its own bound, the operator-norm theorem's worst ratio, the width exponent of the function change with
its interval over seeds, the effective constant measured in each geometry and the summaries the views draw."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from trust.base.errors import TrustError
from trust.base.schema import Config, Result, param, value
from trust.core import data, estimate, nets, train
from trust.experiments import geometry_summary
from trust.experiments.geometry_summary import (
    CHECKPOINTS,
    LAYER_GROUPS,
    ONE_WIDTH,
    GeometrySummary,
    layer_groups,
    width_exponent,
)
from trust.experiments.shared import geometry_cell
from trust.experiments.shared.geometry_cell import (
    BIASED,
    DEAD,
    DIVERGED,
    FEATURES,
    GEOMETRIES,
    NOT_MLP,
    NOT_MODULAR,
    NOT_TARED,
    RAW_DIRECTIONS,
    SPANS,
    ZERO_BOUND,
    GeometryCellConfig,
    GeometryCellResult,
)
from trust.experiments.shared.runner import Experiment, Study, run_study

NO_RESNETS = "no ResNet cells in this study"
NOT_MEASURED = "empty where the cell did not measure it (config.modules, config.curvature)"
# the layers as modules (a power iteration per layer) and the per-layer curvature (tens of seconds a point at
# width 128) on the first seed's cells of these optimisers only
DETAIL_OPTIMIZERS = ("fromage", "sgd", "adam")


RESNETS = tuple(f"{m}{'' if n == 'none' else '_' + n}" for m in ("resnet8", "resnet16") for n in nets.NORMS)
"""ResNet cells by name: the model, then ``_batch``, ``_layer`` or ``_group`` for its normalisation."""


@dataclass(frozen=True)
class GeometryConfig(Config):
    """The width and depth sweeps; zeros and empty tuples take the full or ``--quick`` defaults."""

    quick: bool = param(False, "the laptop-sized study: widths 32–256, depths 2 4 8, 3 optimisers, 1 epoch")
    dataset: str = param("mnist5k", "data set", choices=data.DATASETS)
    data_dir: str = param("", "directory of the MNIST IDX / CIFAR-10 files")
    widths: tuple[int, ...] = param(
        (), "width sweep; none given: 32 64 128 256 512 (to 256 with --quick)", minimum=1, increasing=True
    )
    depth: int = param(0, "depth of the width sweep; 0: 4", minimum=0)
    depths: tuple[int, ...] = param(
        (), "depth sweep; none given: 2 4 8 16 (2 4 8 with --quick)", minimum=1, increasing=True
    )
    width: int = param(0, "width of the depth sweep; 0: 128 (64 with --quick)", minimum=0)
    optimizers: tuple[str, ...] = param(
        (), "optimisers; none given: fromage sgd adam madam orthogonal_sgd (3 with --quick)", choices=train.OPTIMIZERS
    )
    seeds: int = param(0, "seeds per MLP configuration; 0: 5 (2 with --quick)", minimum=0)
    epochs: int = param(0, "training epochs; 0: 2 (1 with --quick)", minimum=0)
    bias: bool = param(False, "layers carry biases (off: the operator-norm bound is a theorem)")
    residual_depths: tuple[int, ...] = param(
        (), "depths of residual MLPs h + φ(Wh) at the depth sweep's width (≥ 3; none by default: a long job's)",
        minimum=3, increasing=True,
    )  # fmt: skip
    resnets: tuple[str, ...] = param(
        (), "ResNet cells (8 channels); none given: resnet8 resnet8_batch (none with --quick)", choices=RESNETS
    )
    resnet_optimizers: tuple[str, ...] = param(
        (), "optimisers of the ResNet cells; none given: fromage orthogonal_sgd", choices=train.OPTIMIZERS
    )
    resnet_seeds: int = param(0, "seeds per ResNet cell; 0: 3", minimum=0)
    resnet_dataset: str = param("digits", "image data set of the ResNet cells", choices=data.DATASETS)
    eta: tuple[float, ...] = param(
        (), "η grid; none given: 0.01 0.03 0.1 0.3 (0.01 0.1 with --quick)", minimum=0, increasing=True
    )
    n_measure: int = param(0, "measurement batch; 0: 500 (250 with --quick)", minimum=0)
    batch_size: int = param(250, "minibatch size", minimum=1)
    seed: int = param(0, "first seed")

    def resolved(self) -> GeometryConfig:
        q = self.quick
        return replace(
            self,
            widths=self.widths or ((32, 64, 128, 256) if q else (32, 64, 128, 256, 512)),
            depth=self.depth or 4,
            depths=self.depths or ((2, 4, 8) if q else (2, 4, 8, 16)),
            width=self.width or (64 if q else 128),
            optimizers=self.optimizers
            or (("fromage", "sgd", "orthogonal_sgd") if q else ("fromage", "sgd", "adam", "madam", "orthogonal_sgd")),
            seeds=self.seeds or (2 if q else 5),
            resnet_seeds=self.resnet_seeds or 3,
            epochs=self.epochs or (1 if q else 2),
            eta=self.eta or ((0.01, 0.1) if q else (0.01, 0.03, 0.1, 0.3)),
            n_measure=self.n_measure or (250 if q else 500),
            resnets=self.resnets or (() if q else ("resnet8", "resnet8_batch")),
            resnet_optimizers=self.resnet_optimizers or ("fromage", "orthogonal_sgd"),
        )

    def validate(self):
        if any(e <= 0 for e in self.eta):
            raise TrustError("eta entries must be > 0 (the width exponent takes logarithms)")


def _name(optimizer: str, width: int, depth: int, seed: int, residual: bool = False) -> str:
    return f"{optimizer}_w{width}_L{depth}{'_residual' if residual else ''}_s{seed}"


def _training(c: GeometryConfig, **fields) -> train.TrainConfig:
    """A cell's training run: the study's shared settings and the cell's own ``fields``."""
    return replace(geometry_cell.CELL_TRAINING, data_dir=c.data_dir, epochs=c.epochs, batch_size=c.batch_size, **fields)


def _curvature_depths(c: GeometryConfig) -> tuple[int, ...]:
    """The depth sweep's shallowest net besides 2 (or 2) and its deepest: the two ends the curvature is compared at."""
    deeper = [d for d in c.depths if d > 2]
    return tuple(sorted({deeper[0] if deeper else c.depths[0], c.depths[-1]}))


# the alternative mass allocation (docs/theory.md §10.1): the hidden layers together as heavy as the first layer
TARED_HIDDEN_MASS = 1.0


def _grid(c: GeometryConfig) -> dict[str, GeometryCellConfig]:
    """The MLP cells of both sweeps and the residual MLPs by name (shared cells once). The plain MLPs of depth
    ≥ 3 also measure the modular family with their hidden layers tared to :data:`TARED_HIDDEN_MASS`. Under
    :data:`DETAIL_OPTIMIZERS`, the first seed's cells also measure the layers as modules, and those of the depth
    sweep at two depths (:func:`_curvature_depths`: 4 and 16 by default) the per-layer curvature."""
    nets_ = [(w, c.depth, False) for w in c.widths] + [(c.width, depth, False) for depth in c.depths]
    nets_ += [(c.width, depth, True) for depth in c.residual_depths]
    return {
        _name(optimizer, width, depth, s, residual): GeometryCellConfig(
            _training(c, seed=s, optimizer=optimizer, depth=depth, width=width, bias=c.bias, dataset=c.dataset,
                      residual=residual),
            eta=c.eta,
            n_measure=c.n_measure,
            hidden_mass=TARED_HIDDEN_MASS if not residual and depth >= 3 else 0.0,
            modules=s == c.seed and optimizer in DETAIL_OPTIMIZERS,
            curvature=s == c.seed and not residual and width == c.width and depth in _curvature_depths(c)
            and optimizer in DETAIL_OPTIMIZERS,
        )
        for optimizer in c.optimizers
        for s in range(c.seed, c.seed + c.seeds)
        for width, depth, residual in nets_
    }  # fmt: skip


def _resnet_name(optimizer: str, resnet: str, seed: int) -> str:
    return f"{optimizer}_{resnet}_s{seed}"


def _resnet_grid(c: GeometryConfig) -> dict[str, GeometryCellConfig]:
    grid = {}
    for optimizer in c.resnet_optimizers:
        for s in range(c.seed, c.seed + c.resnet_seeds):
            for resnet in c.resnets:
                model, _, norm = resnet.partition("_")
                training = _training(c, seed=s, optimizer=optimizer, model=model, norm=norm or "none",
                                     dataset=c.resnet_dataset, bias=True)  # fmt: skip
                cell = GeometryCellConfig(training, eta=c.eta, n_measure=c.n_measure)
                grid[_resnet_name(optimizer, resnet, s)] = cell
    return grid


def cells(config: GeometryConfig, done: dict) -> dict[str, GeometryCellConfig]:
    c = config.resolved()
    return {**_grid(c), **_resnet_grid(c)}


def _per_direction(unmeasured: str):
    """A sweep's array per cell, checkpoint and raw direction (``(o, r, v, k, d)``), empty or NaN where the cell
    diverged, the family is dead, or (``unmeasured``) the measurement does not apply."""
    return value(f"{DIVERGED}; {DEAD}; {unmeasured}", empty=True,
                 axes=("optimizer", "seed", "value", "checkpoint", "direction"))  # fmt: skip


@dataclass(frozen=True)
class Sweep:
    """One sweep (over ``values`` of the width or the depth). Axes: optimiser ``o``, seed ``r``, the swept value
    ``v``, checkpoint ``k``, direction ``d``, geometry ``g``, η ``e``; ``s`` the geometry a bound's sizes are in."""

    values: tuple[int, ...] = value(axes=("value",))
    train_acc: np.ndarray = value(DIVERGED, axes=("optimizer", "seed", "value"))  # (o, r, v)
    function: np.ndarray = value(
        f"{DIVERGED}; {DEAD}", axes=("optimizer", "seed", "value", "checkpoint", "direction", "geometry", "eta")
    )  # (o, r, v, k, d, g, e)
    c_eff: np.ndarray = value(
        f"{DIVERGED}; {DEAD}", axes=("optimizer", "seed", "value", "checkpoint", "size")
    )  # (o, r, v, k, s): the gradient slice's C_eff in s's sizes
    weight_rank: np.ndarray = value(
        DIVERGED, axes=("optimizer", "seed", "value", "checkpoint")
    )  # (o, r, v, k) mean over layers of srank W_l
    step_rank: np.ndarray = value(
        f"{DIVERGED}; {DEAD}", axes=("optimizer", "seed", "value", "checkpoint", "direction")
    )  # (o, r, v, k, d) mean over layers of srank ΔW_l
    # docs/theory.md §10: per family, the largest over η of the modular family's ‖ΔF‖_RMS/‖X‖_RMS over the nominal
    # bound ∏(1 + η s_l) − 1 (its effective constant) and over the exact bound (a theorem on the plain nets: ≤ 1)
    modular_c_eff: np.ndarray = _per_direction(NOT_MODULAR)
    modular_exact: np.ndarray = _per_direction(NOT_MODULAR)
    # the same with the hidden layers tared together (TARED_HIDDEN_MASS; docs/theory.md §10.1): depths ≥ 3
    tared_c_eff: np.ndarray = _per_direction(NOT_TARED)
    tared_exact: np.ndarray = _per_direction(NOT_TARED)
    # ∏_l ‖W_l‖_*: the factor the nominal bound assumes to be at most 1
    atom_product: np.ndarray = value(
        f"{DIVERGED}; {NOT_MODULAR}", empty=True, axes=("optimizer", "seed", "value", "checkpoint")
    )  # fmt: skip
    # docs/theory.md §12: the first layer, the median hidden layer and the last layer's relative feature change,
    # alignment and spectral step, after one step and after training
    features: np.ndarray = value(
        f"{DIVERGED}; {NOT_MLP}", empty=True, axes=("optimizer", "seed", "value", "span", "feature", "layer_group")
    )  # fmt: skip

    def coordinates(self) -> dict[str, list]:
        return {"value": list(self.values), "span": list(SPANS), "feature": list(FEATURES),
                "layer_group": list(LAYER_GROUPS)}  # fmt: skip


@dataclass(frozen=True)
class LayerRecord:
    """One chosen cell's per-layer measurements (``config.modules``, ``config.curvature``; docs/theory.md §10.1,
    §11), layer ``l`` counted from 1; an array is empty where its measurement was not asked for."""

    optimizer: str
    width: int
    depth: int
    residual: bool
    seed: int
    train_acc: float = value(DIVERGED, default=float("nan"))  # at the end of training (rule flag's accuracy test)
    input_sensitivity: np.ndarray = value(NOT_MEASURED, empty=True, axes=("checkpoint", "layer"))
    weight_sensitivity: np.ndarray = value(f"{NOT_MEASURED}; {DEAD}", empty=True, axes=("checkpoint", "layer"))
    block_curvature: np.ndarray = value(NOT_MEASURED, empty=True, axes=("checkpoint", "layer"))
    trace: np.ndarray = value(NOT_MEASURED, empty=True, axes=("checkpoint", "trace"))
    # along the paper's slice (the gradient family in Frobenius sizes): each layer's measured relative gradient
    # change and its per-layer Lipschitz prediction λ_l·‖ΔW_l‖/‖g_l‖
    breakdown: np.ndarray = value(f"{NOT_MEASURED}; {DEAD}", empty=True, axes=("checkpoint", "eta", "layer"))
    lipschitz_layer: np.ndarray = value(f"{NOT_MEASURED}; {DEAD}", empty=True, axes=("checkpoint", "eta", "layer"))
    density_nodes: np.ndarray = value(NOT_MEASURED, empty=True, axes=("checkpoint", "probe", "node"))
    density_weights: np.ndarray = value(NOT_MEASURED, empty=True, axes=("checkpoint", "probe", "node"))

    @property
    def name(self) -> str:
        """The record's name in rows and figures: optimiser, width, depth (``r``: residual), seed."""
        return f"{self.optimizer} w{self.width} L{self.depth}{'r' if self.residual else ''} s{self.seed}"

    def coordinates(self) -> dict[str, list]:
        return {"layer": list(range(1, self.depth + 1)), "trace": ["value", "standard error", "probes", "converged"],
                "probe": list(range(self.density_nodes.shape[1] if self.density_nodes.size else 0)),
                "node": list(range(self.density_nodes.shape[2] if self.density_nodes.size else 0))}  # fmt: skip


def layer_records(cells: dict[str, GeometryCellResult]) -> tuple[LayerRecord, ...]:
    """The records of the measured cells that measured their layers as modules or their curvature, in grid order."""
    out = []
    for cell in cells.values():
        if not cell.measured or not (cell.input_sensitivity.size or cell.block_curvature.size):
            continue
        t = cell.config.training
        curvature = cell.block_curvature.size > 0
        out.append(LayerRecord(
            t.optimizer, t.width, t.depth, t.residual, t.seed, cell.train_acc, cell.input_sensitivity,
            cell.weight_sensitivity,
            cell.block_curvature, cell.trace, cell.gradient[:, 0, 0] if curvature else np.empty(0),
            cell.lipschitz_layer, cell.density_nodes, cell.density_weights,
        ))  # fmt: skip
    return tuple(out)


@dataclass(frozen=True, eq=False)
class GeometryResult(Result):
    config: GeometryConfig
    width: Sweep
    depth: Sweep
    ratio_function: np.ndarray = value(
        axes=("statistic", "direction", "geometry")
    )  # (2, d, g): median and worst over η, checkpoints, cells of function_max/bound
    ratio_gradient: np.ndarray = value(
        axes=("statistic", "direction", "geometry")
    )  # (2, d, g): median and worst over η, layers, checkpoints, cells
    exponent: np.ndarray = value(
        f"{DIVERGED}; {ONE_WIDTH}", axes=("optimizer", "checkpoint", "direction", "geometry")
    )  # (o, k, d, g) width exponent at the smallest η, mean
    exponent_half: np.ndarray = value(
        f"{estimate.ONE_SAMPLE}; {ONE_WIDTH}", axes=("optimizer", "checkpoint", "direction", "geometry")
    )  # (o, k, d, g) its 95 % half-width
    resnet_function: np.ndarray = value(
        NO_RESNETS, axes=("statistic", "direction", "geometry")
    )  # (2, d, g) as ratio_function, over the ResNet cells
    resnet_gradient: np.ndarray = value(
        NO_RESNETS, axes=("statistic", "direction", "geometry")
    )  # (2, d, g) as ratio_gradient, over the ResNet cells
    operator_worst: float = value(BIASED)  # the operator-norm theorem's worst measured/bound over everything
    operator_allowance: float = value(
        f"{BIASED}; {ZERO_BOUND}"
    )  # the largest rounding allowance (bounds.operator_rounding_allowance)
    operator_violations: int = 0  # points with measured/bound > 1 + their rounding allowance
    operator_points: int = 0
    diverged: int = 0
    # per seed, each family's worst function change over its own bound (the "tightest" ordering's seeds)
    seed_worst: np.ndarray = value(DEAD, empty=True, axes=("seed", "direction", "geometry"))  # (r, d, g)
    summary: GeometrySummary | None = value(derived=True)
    residual: Sweep | None = None  # the residual MLPs across depth (config.residual_depths), None without them
    layers: tuple[LayerRecord, ...] = ()  # the chosen cells' per-layer sensitivities and curvature
    # docs/theory.md §10.5: the ResNet cells in the modular norm, as Sweep's modular arrays (o, r, resnet, k[, d])
    resnet_modular_c_eff: np.ndarray = value(
        f"{DIVERGED}; {DEAD}; {NOT_MODULAR}", empty=True,
        axes=("resnet_optimizer", "resnet_seed", "resnet", "checkpoint", "direction"),
    )  # fmt: skip
    resnet_modular_exact: np.ndarray = value(
        f"{DIVERGED}; {DEAD}; {NOT_MODULAR}", empty=True,
        axes=("resnet_optimizer", "resnet_seed", "resnet", "checkpoint", "direction"),
    )  # fmt: skip
    resnet_atom_product: np.ndarray = value(
        f"{DIVERGED}; {NOT_MODULAR}", empty=True, axes=("resnet_optimizer", "resnet_seed", "resnet", "checkpoint")
    )  # fmt: skip

    def derive(self) -> GeometryResult:
        return replace(self, summary=geometry_summary.summary(self))

    def coordinates(self) -> dict[str, list]:
        c = self.config
        return {"optimizer": list(c.optimizers), "seed": list(range(c.seed, c.seed + c.seeds)),
                "checkpoint": list(CHECKPOINTS), "direction": list(RAW_DIRECTIONS), "geometry": list(GEOMETRIES),
                "size": list(GEOMETRIES), "eta": list(c.eta), "statistic": ["median", "worst"],
                "width": list(self.width.values), "depth": list(self.depth.values),
                "resnet_optimizer": list(c.resnet_optimizers), "resnet": list(c.resnets),
                "resnet_seed": list(range(c.seed, c.seed + c.resnet_seeds)),
                "residual_depth": list(c.residual_depths)}  # fmt: skip


def _sweep(c: GeometryConfig, done: dict, values: tuple[int, ...], width_of, depth_of, residual=False) -> Sweep:
    """The cells of one sweep: ``width_of(v)``, ``depth_of(v)`` give the net of the swept value ``v``."""
    results = [
        [
            [done[_name(opt, width_of(v), depth_of(v), s, residual)] for v in values]
            for s in range(c.seed, c.seed + c.seeds)
        ]
        for opt in c.optimizers
    ]
    shape = (len(c.optimizers), c.seeds, len(values))
    n_k, n_d, n_g, n_e = len(CHECKPOINTS), len(RAW_DIRECTIONS), len(GEOMETRIES), len(c.eta)
    out: dict[str, Any] = {
        "train_acc": np.full(shape, np.nan),
        "function": np.full(shape + (n_k, n_d, n_g, n_e), np.nan),
        "c_eff": np.full(shape + (n_k, n_g), np.nan),
        "weight_rank": np.full(shape + (n_k,), np.nan),
        "step_rank": np.full(shape + (n_k, n_d), np.nan),
        "modular_c_eff": np.full(shape + (n_k, n_d), np.nan),
        "modular_exact": np.full(shape + (n_k, n_d), np.nan),
        "tared_c_eff": np.full(shape + (n_k, n_d), np.nan),
        "tared_exact": np.full(shape + (n_k, n_d), np.nan),
        "atom_product": np.full(shape + (n_k,), np.nan),
        "features": np.full(shape + (len(SPANS), len(FEATURES), len(LAYER_GROUPS)), np.nan),
    }
    for index in np.ndindex(*shape):
        o, r, v = index
        cell = results[o][r][v]
        if not cell.measured:
            continue
        out["train_acc"][index] = cell.train_acc
        out["function"][index] = cell.function
        out["weight_rank"][index] = cell.weight_rank.mean(axis=-1)
        out["step_rank"][index] = cell.step_rank[:, :, 0].mean(axis=-1)  # the Frobenius family's ΔW (any scaling)
        worst = np.max(cell.gradient[:, 0, 0], axis=-1)  # (k, e): the paper's slice, worst layer
        for s in range(n_g):
            bound = cell.bound(s)[:, 0, 0]  # (k, e)
            out["c_eff"][index + (slice(None), s)] = np.max(worst / bound, axis=-1)
        if cell.modular_function.size:
            out["modular_c_eff"][index], out["modular_exact"][index] = _modular(cell)
            out["atom_product"][index] = np.prod(cell.atom_norm, axis=-1)
        if cell.tared_function.size:
            out["tared_c_eff"][index], out["tared_exact"][index] = _modular(cell, "tared")
        if cell.features.size:
            out["features"][index] = layer_groups(cell.features)
    return Sweep(values=values, **out)


def _modular(cell: GeometryCellResult, allocation: str = "modular") -> tuple[np.ndarray, np.ndarray]:
    """``(k, d)`` the modular family's largest measured/nominal and measured/exact over η, under the paper's unit
    masses (``"modular"``) or the hidden layers tared (``"tared"``)."""
    function = getattr(cell, f"{allocation}_function")
    return (
        np.max(function / getattr(cell, f"{allocation}_nominal"), axis=-1),
        np.max(function / getattr(cell, f"{allocation}_exact")[:, None], axis=-1),
    )


def _resnet_modular(c: GeometryConfig, done: dict) -> dict[str, Any]:
    """The ResNet cells' modular arrays (:func:`_modular`), ``(o, r, resnet, k[, d])``: NaN for a normalised ResNet
    or a cell that diverged; empty without a ResNet measured in the modular norm."""
    shape = (len(c.resnet_optimizers), c.resnet_seeds, len(c.resnets))
    n_k, n_d = len(CHECKPOINTS), len(RAW_DIRECTIONS)
    out = {"resnet_modular_c_eff": np.full(shape + (n_k, n_d), np.nan),
           "resnet_modular_exact": np.full(shape + (n_k, n_d), np.nan),
           "resnet_atom_product": np.full(shape + (n_k,), np.nan)}  # fmt: skip
    for index in np.ndindex(*shape):
        o, r, v = index
        cell = done[_resnet_name(c.resnet_optimizers[o], c.resnets[v], c.seed + r)]
        if cell.measured and cell.modular_function.size:
            out["resnet_modular_c_eff"][index], out["resnet_modular_exact"][index] = _modular(cell)
            out["resnet_atom_product"][index] = np.prod(cell.atom_norm, axis=-1)
    # a measured cell has finite atom norms: all NaN means no ResNet was measured in the modular norm
    return out if np.isfinite(out["resnet_atom_product"]).any() else {}


def _ratios(measured: list[GeometryCellResult], first: str) -> tuple[np.ndarray, np.ndarray]:
    """Median and worst, ``(2, d, g)``, of each family's function change (worst example) and of every layer's
    gradient change over its own bound, over η, checkpoints and cells. At initialisation every optimiser's cell
    holds the same net, so only the ``first`` optimiser's cells count there, except for each one's own step."""
    n_d, n_g = len(RAW_DIRECTIONS), len(GEOMETRIES)
    ratio_function, ratio_gradient = np.full((2, n_d, n_g), np.nan), np.full((2, n_d, n_g), np.nan)

    for d in range(n_d):
        for g in range(n_g):
            f = [_function_ratio(r, d, g, _counted(r, d, first)) for r in measured]
            gr = [(r.gradient / r.bound()[..., None])[_counted(r, d, first), d, g].ravel() for r in measured]
            for target, values in ((ratio_function, f), (ratio_gradient, gr)):
                v = np.concatenate(values) if values else np.array([np.nan])
                v = v[np.isfinite(v)]
                if v.size:
                    target[:, d, g] = np.median(v), np.max(v)
    return ratio_function, ratio_gradient


def _counted(r: GeometryCellResult, d: int, first: str) -> slice:
    """The checkpoints of ``r`` that count for direction ``d``: at initialisation every optimiser's cell holds the
    same net, so only the ``first`` optimiser's count there, except along each one's own step."""
    shared = RAW_DIRECTIONS[d] != "step" and r.config.training.optimizer != first
    return slice(1, None) if shared else slice(None)


def _function_ratio(r: GeometryCellResult, d: int, g: int, checkpoints: slice) -> np.ndarray:
    """Family (d, g)'s function change (worst example) over its own bound, at every counted checkpoint and η."""
    return (r.function_max / r.bound())[checkpoints, d, g].ravel()


def _seed_worst(measured: list[GeometryCellResult], first: str, seeds: range) -> np.ndarray:
    """``(r, d, g)``: per seed, the worst function change over its own bound over that seed's cells, η and
    checkpoints (initialisation counted once, from the ``first`` optimiser's cells, as in :func:`_ratios`)."""
    out = np.full((len(seeds), len(RAW_DIRECTIONS), len(GEOMETRIES)), np.nan)
    for i, seed in enumerate(seeds):
        mine = [r for r in measured if r.config.training.seed == seed]
        for d, g in np.ndindex(len(RAW_DIRECTIONS), len(GEOMETRIES)):
            pooled = [_function_ratio(r, d, g, _counted(r, d, first)) for r in mine]
            v = np.concatenate(pooled) if pooled else np.array([])
            v = v[np.isfinite(v)]
            out[i, d, g] = v.max() if v.size else np.nan
    return out


def combine(config: GeometryConfig, done: dict) -> GeometryResult:
    c = config.resolved()
    width = _sweep(c, done, c.widths, lambda w: w, lambda w: c.depth)
    depth = _sweep(c, done, c.depths, lambda d: c.width, lambda d: d)
    residual = _sweep(c, done, c.residual_depths, lambda d: c.width, lambda d: d, True) if c.residual_depths else None
    # the plain MLPs' ratios and theorem (a residual net's are its own: the operator-norm theorem is not about it)
    measured = [done[name] for name in _grid(c) if done[name].measured and not done[name].config.training.residual]
    n_d, n_g = len(RAW_DIRECTIONS), len(GEOMETRIES)
    ratio_function, ratio_gradient = _ratios(measured, c.optimizers[0])
    resnets = [done[name] for name in _resnet_grid(c) if done[name].measured]
    resnet_function, resnet_gradient = _ratios(resnets, c.resnet_optimizers[0])
    operator = np.concatenate([r.operator_ratio.ravel() for r in measured]) if measured else np.array([])
    allowance = np.concatenate([r.operator_allowance.ravel() for r in measured]) if measured else np.array([])
    defined = np.isfinite(operator)
    operator, allowance = operator[defined], allowance[defined]
    # the width exponent at the smallest η, per seed, then the mean with its interval across seeds
    n_o, n_k = len(c.optimizers), len(CHECKPOINTS)
    exponent, half = np.full((n_o, n_k, n_d, n_g), np.nan), np.full((n_o, n_k, n_d, n_g), np.nan)
    for o, k, d, g in np.ndindex(n_o, n_k, n_d, n_g):
        per_seed = [
            width_exponent(c.widths, width.function[o, r, :, k, d, g, 0])
            for r in range(c.seeds)
            if np.all(width.function[o, r, :, k, d, g, 0] > 0)
        ]
        if per_seed:
            ci = estimate.mean_ci(per_seed)
            exponent[o, k, d, g], half[o, k, d, g] = ci.mean, ci.half_width
    return GeometryResult(
        config=c,
        width=width,
        depth=depth,
        residual=residual,
        layers=layer_records({name: done[name] for name in _grid(c)}),
        ratio_function=ratio_function,
        ratio_gradient=ratio_gradient,
        operator_worst=float(operator.max()) if operator.size else float("nan"),
        operator_allowance=float(allowance.max()) if operator.size else float("nan"),
        operator_violations=int(np.sum(operator > 1 + allowance)),
        operator_points=int(operator.size),
        exponent=exponent,
        exponent_half=half,
        resnet_function=resnet_function,
        resnet_gradient=resnet_gradient,
        diverged=sum(1 for name in [*_grid(c), *_resnet_grid(c)] if done[name].diverged_epoch),
        seed_worst=_seed_worst(measured, c.optimizers[0], range(c.seed, c.seed + c.seeds)),
        **_resnet_modular(c, done),
    ).derive()


def run(config: GeometryConfig) -> Result:
    """The whole study in memory (the CLI and ``paper_figs.py`` store and reuse it cell by cell instead)."""
    return run_study(STUDY, config)


def run_geometry(config: GeometryConfig) -> Result:
    """Deprecated name of :func:`run` (trust 0.3, where ``geometry.run`` was one cell; that is now
    :func:`trust.experiments.shared.geometry_cell.run`)."""
    warnings.warn("geometry.run_geometry is geometry.run since trust 0.4", DeprecationWarning, stacklevel=2)
    return run(config)


STUDY = Study(geometry_cell.EXPERIMENT, cells, combine)


# ------------------------------------------------------------------------------------------------ figures


# ------------------------------------------------------------------------------------------------ report


def paper_configs(quick: bool, seed: int) -> dict[str, GeometryConfig]:
    """Full: the defaults (200 MLP cells, 12 ResNet cells; their cost is in the README, Costs and cuts). The quick
    preview: widths 32–128, depths 2 and 4 at width 32, Fromage and orthogonalised SGD, one η (16 cells)."""
    if quick:
        preview: dict[str, Any] = dict(widths=(32, 64, 128), depths=(2, 4), width=32, eta=(0.01,))
        return {"geometry": GeometryConfig(quick=True, optimizers=("fromage", "orthogonal_sgd"), seed=seed, **preview)}
    return {"geometry": GeometryConfig(seed=seed)}


def long_configs(seed: int) -> dict[str, GeometryConfig]:
    """The full run's study with more nets (its other cells are the full run's, the same configs, reused when its
    cells are copied in): residual MLPs ``h + φ(Wh)`` of depths 4, 8 and 16 at width 128 (the modular norm on
    residual nets, docs/theory.md §10.5); and the width sweep to 1024 (the per-layer feature-learning exponents
    over 32–1024, §12)."""
    return {
        "geometry_residual": GeometryConfig(residual_depths=(4, 8, 16), seed=seed),
        "geometry_width_1024": GeometryConfig(widths=(32, 64, 128, 256, 512, 1024), seed=seed),
    }


EXPERIMENT = Experiment(
    GeometryConfig,
    GeometryResult,
    run,
    paper_configs,
    help="Frobenius, spectral and elementwise steps: bounds, stable ranks, width exponent, C_eff explained",
    study=STUDY,
    long_configs=long_configs,
)
