"""``trust geometry``: which per-layer geometry makes relative trust tight — Frobenius, spectral or elementwise —
and how the answer moves with width and depth (docs/theory.md §8).

A study of cells (net × optimiser × seed). Each cell trains a relu MLP (bias-free by default, the setting of the
operator-norm theorem) and, at initialisation and at the last step of training, on a fixed measurement batch,
moves every layer by a relative step η in each of the three geometries along four raw directions: the negative
gradient, its polar factor (the orthogonalised gradient), a Gaussian draw, and the optimiser's own step taken
from that point. For each of the 12 families it measures the relative function change and every layer's
relative gradient change, the step's size in all three geometries, and the stable ranks of the weights and of
the step. The study combines the cells into the measured/bound ratios of each family against its own bound, the
operator-norm theorem's worst ratio, the width exponent of the function change and the effective constant
measured in each geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from trust.base import linalg, tree
from trust.base.errors import Diverged, TrustError
from trust.base.schema import Config, Result, Spread, Verdict, param, value
from trust.base.tree import leaf_norms, leaves, weight_indices
from trust.core import bounds, data, estimate, measure, nets, perturb, train
from trust.experiments.shared import points, rules
from trust.experiments.shared.runner import Experiment, Study, run_study

DIRECTIONS = ("gradient", "orthogonalised", "random", "step")
GEOMETRIES = tuple(perturb.GEOMETRIES)  # frobenius, spectral, elementwise
CHECKPOINTS = ("init", "end")
PREDICTED_EXPONENT = {"frobenius": 0.5, "spectral": 0.0}  # for the low-stable-rank directions (§8.5)

DIVERGED = "training diverged (a non-finite loss): nothing was measured"
NO_RESNETS = "no ResNet cells in this study"
ONE_WIDTH = "fewer than two widths: no width exponent"
DEAD = "some layer's gradient (or the optimiser's step) is zero at this checkpoint: the family is undefined there"
OPERATOR_TOL = 1e-6  # relative tolerance of the operator norms (power iteration above 256; else an exact SVD)
ZERO_BOUND = "infinite at η = 0, where the bound and the measured change are both zero"
BIASED = "the operator-norm theorem is for bias-free MLPs (docs/theory.md §2.3); this net has biases or is a ResNet"


@dataclass(frozen=True)
class GeometryCellConfig(Config):
    """One trained MLP and seed, and how its 12 families are measured."""

    optimizer: str = param("fromage", "the optimiser", choices=train.OPTIMIZERS)
    lr: float = param(0.0, "learning rate; 0: the optimiser's default", minimum=0)
    model: str = param("mlp", "the network: an MLP (depth, width, bias) or a ResNet (norm, channels)",
                       choices=train.MODELS)  # fmt: skip
    depth: int = param(4, "mlp: L, the number of weight matrices", minimum=1)
    width: int = param(128, "mlp: hidden width", minimum=1)
    bias: bool = param(False, "mlp: layers carry biases (off: the operator-norm bound is a theorem)")
    norm: str = param("none", "resnet: normalisation", choices=nets.NORMS)
    channels: int = param(8, "resnet: channels of the first stage", minimum=4)
    dataset: str = param("mnist5k", "data set", choices=data.DATASETS)
    data_dir: str = param("", "directory of the MNIST IDX / CIFAR-10 files")
    epochs: int = param(2, "training epochs", minimum=1)
    batch_size: int = param(250, "minibatch size", minimum=1)
    lr_decay: float = param(0.9, "learning-rate factor per epoch", maximum=1)
    eta: tuple[float, ...] = param(
        (0.01, 0.03, 0.1, 0.3), "the η grid (relative step in each geometry)", minimum=0, increasing=True
    )
    n_measure: int = param(500, "measurement batch: the first n training examples (0: all)", minimum=0)
    seed: int = param(0, "random seed")

    def validate(self):
        if not self.eta or min(self.eta) <= 0:
            raise TrustError("eta must be a non-empty grid of positive steps")

    @property
    def theorem_applies(self) -> bool:
        """Whether the operator-norm bound is a theorem here: a bias-free relu MLP (docs/theory.md §2.3)."""
        return self.model == "mlp" and not self.bias

    def train_config(self, checkpoint_steps: tuple[int, ...] = ()) -> train.TrainConfig:
        return train.TrainConfig(
            optimizer=self.optimizer,
            learning_rate=self.lr,
            model=self.model,
            depth=self.depth,
            width=self.width,
            bias=self.bias or self.model != "mlp",  # a ResNet has its head's bias and its norms' shifts
            norm=self.norm,
            channels=self.channels,
            dataset=self.dataset,
            data_dir=self.data_dir,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr_decay=self.lr_decay,
            checkpoints=(),
            checkpoint_steps=checkpoint_steps,
            seed=self.seed,
        )


@dataclass(frozen=True, eq=False)
class GeometryCellResult(Result):
    """A trained cell. Axes: checkpoint ``k`` (init, end), direction ``d`` (:data:`DIRECTIONS`), geometry ``g``
    (:data:`GEOMETRIES`), η ``e``, layer ``l``; ``s`` the three size measures (a, b, e) in geometry order."""

    config: GeometryCellConfig
    diverged_epoch: int = 0  # 0: trained to the end
    train_acc: float = value(DIVERGED, default=float("nan"))
    eta: np.ndarray = value(empty=True)  # (e,)
    function: np.ndarray = value(DEAD, empty=True)  # (k, d, g, e) ‖ΔF‖_F/‖F‖_F on the batch
    function_max: np.ndarray = value(DEAD, empty=True)  # (k, d, g, e) max over examples of ‖Δf(x)‖/‖f(x)‖
    operator_ratio: np.ndarray = value(f"{DEAD}; {BIASED}", empty=True)  # (k, d, g, e) max_x ‖Δf(x)‖/bound(x)
    operator_allowance: np.ndarray = value(
        f"{DEAD}; {BIASED}; {ZERO_BOUND}", empty=True
    )  # (k, d, g, e) rounding allowance
    gradient: np.ndarray = value(DEAD, bulk=True, empty=True)  # (k, d, g, e, l) ‖Δg_l‖/‖g_l‖
    sizes: np.ndarray = value(DEAD, bulk=True, empty=True)  # (k, d, g, s, l) the direction's a, b, e (η = 1)
    step_rank: np.ndarray = value(DEAD, bulk=True, empty=True)  # (k, d, g, l) stable rank of ΔW_l
    weight_rank: np.ndarray = value(DIVERGED, empty=True)  # (k, l) stable rank of W_l

    @property
    def measured(self) -> bool:
        return self.function.size > 0

    def bound(self, size_geometry: int | None = None) -> np.ndarray:
        """``∏(1 + η·s_l) − 1`` over the layers, ``(k, d, g, e)``: each family's own bound (its own geometry's
        sizes), or every family's bound in the sizes of one geometry (``size_geometry``, an index)."""
        eta = self.eta[None, None, None, :, None]
        own = np.stack([self.sizes[:, :, g, g] for g in range(len(GEOMETRIES))], axis=2)  # (k, d, g, l)
        s = own if size_geometry is None else self.sizes[:, :, :, size_geometry]
        return bounds.drt_bound(eta * s[:, :, :, None, :])


def _measure(net, params, step, x, y, eta, key) -> dict[str, np.ndarray] | None:
    """The 12 families at one point; ``None`` where a layer's gradient or the step is zero (undefined)."""
    grads = measure.full_batch_gradient(net.apply, params, x, y)
    if not (np.all(leaf_norms(grads) > 0) and np.all(leaf_norms(step) > 0)):
        return None
    raws = {
        "gradient": jax.tree_util.tree_map(jnp.negative, grads),
        "orthogonalised": perturb.orthogonalised(grads),
        "random": perturb.gaussian(key, params),
        "step": step,
    }
    layers = weight_indices(params)
    op_params = linalg.operator_norms(params, OPERATOR_TOL)  # once per point: every spectral size divides by them
    w_op = op_params[layers]
    w_srank = linalg.stable_ranks(params, operator=op_params)[layers]
    fan_in = [int(np.shape(leaves(params)[i])[-1]) for i in layers]  # MLP weights are (fan_out, fan_in)
    dtype = np.asarray(leaves(params)[0]).dtype
    x_norm = np.linalg.norm(np.asarray(x, dtype=float), axis=-1)
    names = ("function", "function_max", "operator_ratio", "operator_allowance", "gradient", "sizes", "rank")
    out: dict[str, list] = {k: [] for k in names}
    for d in DIRECTIONS:
        for name in out:
            out[name].append([])
        for geometry in GEOMETRIES:
            u = perturb.GEOMETRIES[geometry].step(params, raws[d])
            dist = measure.relative_distances(net.apply, params, x, y, u, eta)
            op_u = linalg.operator_norms(u, OPERATOR_TOL)  # the spectral size and the stable rank share it
            sizes = np.stack(
                [tree.relative_size(u, params), tree.size_ratio(op_u, op_params), perturb.elementwise_size(u, params)]
            )[:, layers]  # in GEOMETRIES order: perturb.GEOMETRIES' sizes, with the operator norms computed once
            absolute = bounds.operator_norm_bound(w_op, np.outer(eta, sizes[1] * w_op))[:, None] * x_norm[None, :]
            values = {
                "function": dist.function_frob,
                "function_max": dist.function_max,
                "operator_ratio": np.max(dist.function_change / absolute, axis=1),
                "operator_allowance": bounds.operator_rounding_allowance(
                    fan_in, w_srank, np.outer(eta, sizes[0]), np.outer(eta, sizes[1]), dtype, OPERATOR_TOL
                ),
                "gradient": dist.gradient[:, layers],
                "sizes": sizes,
                "rank": linalg.stable_ranks(u, operator=op_u)[layers],
            }
            for name, v in values.items():
                out[name][-1].append(v)
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def run(config: GeometryCellConfig) -> GeometryCellResult:
    """Train the cell, then measure the 12 families at initialisation and at the last step."""
    ds = train.load_data(config.train_config())
    last = config.epochs * (ds.x_train.shape[0] // config.batch_size)
    pairs = ((0, 1), (last - 1, last))  # (the point measured at, the step after it)
    try:
        trained = train.train(config.train_config(tuple(sorted({s for p in pairs for s in p}))), ds, progress=False)
    except Diverged as err:
        return GeometryCellResult(config=config, diverged_epoch=err.epoch)
    x, y = points.measurement_batch(ds, config.n_measure)
    eta = np.asarray(config.eta, dtype=float)
    per_point: list[dict[str, np.ndarray] | None] = []
    ranks = []
    for k, (s, s_next) in enumerate(pairs):
        params = trained.checkpoints[s]
        step = jax.tree_util.tree_map(jnp.subtract, trained.checkpoints[s_next], params)
        key = jax.random.fold_in(jax.random.key(config.seed), k)
        per_point.append(_measure(trained.net, params, step, x, y, eta, key))
        ranks.append(linalg.stable_ranks(params)[weight_indices(params)])
    layers, families = len(weight_indices(trained.params)), (len(DIRECTIONS), len(GEOMETRIES))
    shapes = {
        "function": families + (eta.size,),
        "function_max": families + (eta.size,),
        "operator_ratio": families + (eta.size,),
        "operator_allowance": families + (eta.size,),
        "gradient": families + (eta.size, layers),
        "sizes": families + (len(GEOMETRIES), layers),
        "rank": families + (layers,),
    }

    def stack(name):
        return np.stack([p[name] if p is not None else np.full(shapes[name], np.nan) for p in per_point])

    operator_ratio, operator_allowance = stack("operator_ratio"), stack("operator_allowance")
    if not config.theorem_applies:
        operator_ratio = operator_allowance = np.full_like(operator_ratio, np.nan)
    return GeometryCellResult(
        config=config,
        train_acc=float(trained.curves.train_acc[-1]),
        eta=eta,
        function=stack("function"),
        function_max=stack("function_max"),
        operator_ratio=operator_ratio,
        operator_allowance=operator_allowance,
        gradient=stack("gradient"),
        sizes=stack("sizes"),
        step_rank=stack("rank"),
        weight_rank=np.asarray(ranks, dtype=float),
    )


CELL = Experiment(
    GeometryCellConfig, GeometryCellResult, run, help="one geometry cell: train, then 12 families at init and end"
)


# ------------------------------------------------------------------------------------------------ the study


RESNETS = tuple(f"{m}{'' if n == 'none' else '_' + n}" for m in ("resnet8", "resnet16") for n in nets.NORMS)
"""ResNet cells by name: the model, then ``_batch``, ``_layer`` or ``_group`` for its normalisation."""


@dataclass(frozen=True)
class GeometryConfig(Config):
    """The width and depth sweeps; zeros and empty tuples take the full or ``--quick`` defaults."""

    quick: bool = param(False, "the laptop-sized study: widths 32–256, depths 2 4 8, 3 optimisers, 1 epoch")
    dataset: str = param("mnist5k", "data set", choices=data.DATASETS)
    data_dir: str = param("", "directory of the MNIST IDX / CIFAR-10 files")
    widths: tuple[int, ...] = param(
        (), "width sweep; none given: 32 64 128 256 512 1024 (to 256 with --quick)", minimum=1, increasing=True
    )
    depth: int = param(0, "depth of the width sweep; 0: 4", minimum=0)
    depths: tuple[int, ...] = param(
        (), "depth sweep; none given: 2 4 8 16 (2 4 8 with --quick)", minimum=1, increasing=True
    )
    width: int = param(0, "width of the depth sweep; 0: 128 (64 with --quick)", minimum=0)
    optimizers: tuple[str, ...] = param(
        (), "optimisers; none given: fromage sgd adam madam orthogonal_sgd (3 with --quick)", choices=train.OPTIMIZERS
    )
    seeds: int = param(0, "seeds per configuration; 0: 3 (2 with --quick)", minimum=0)
    epochs: int = param(0, "training epochs; 0: 2 (1 with --quick)", minimum=0)
    bias: bool = param(False, "layers carry biases (off: the operator-norm bound is a theorem)")
    resnets: tuple[str, ...] = param(
        (), "ResNet cells (8 channels); none given: resnet8 resnet8_batch (none with --quick)", choices=RESNETS
    )
    resnet_optimizers: tuple[str, ...] = param(
        (), "optimisers of the ResNet cells; none given: fromage orthogonal_sgd", choices=train.OPTIMIZERS
    )
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
            widths=self.widths or ((32, 64, 128, 256) if q else (32, 64, 128, 256, 512, 1024)),
            depth=self.depth or 4,
            depths=self.depths or ((2, 4, 8) if q else (2, 4, 8, 16)),
            width=self.width or (64 if q else 128),
            optimizers=self.optimizers
            or (("fromage", "sgd", "orthogonal_sgd") if q else ("fromage", "sgd", "adam", "madam", "orthogonal_sgd")),
            seeds=self.seeds or (2 if q else 3),
            epochs=self.epochs or (1 if q else 2),
            eta=self.eta or ((0.01, 0.1) if q else (0.01, 0.03, 0.1, 0.3)),
            n_measure=self.n_measure or (250 if q else 500),
            resnets=self.resnets or (() if q else ("resnet8", "resnet8_batch")),
            resnet_optimizers=self.resnet_optimizers or ("fromage", "orthogonal_sgd"),
        )

    def validate(self):
        if any(e <= 0 for e in self.eta):
            raise TrustError("eta entries must be > 0 (the width exponent takes logarithms)")


def _name(optimizer: str, width: int, depth: int, seed: int) -> str:
    return f"{optimizer}_w{width}_L{depth}_s{seed}"


def _grid(c: GeometryConfig) -> dict[str, GeometryCellConfig]:
    """The MLP cells of both sweeps by name (their shared cells once)."""
    nets_ = [(w, c.depth) for w in c.widths] + [(c.width, depth) for depth in c.depths]
    return {
        _name(optimizer, width, depth, s): GeometryCellConfig(
            optimizer=optimizer,
            depth=depth,
            width=width,
            bias=c.bias,
            dataset=c.dataset,
            data_dir=c.data_dir,
            epochs=c.epochs,
            batch_size=c.batch_size,
            eta=c.eta,
            n_measure=c.n_measure,
            seed=s,
        )
        for optimizer in c.optimizers
        for s in range(c.seed, c.seed + c.seeds)
        for width, depth in nets_
    }


def _resnet_grid(c: GeometryConfig) -> dict[str, GeometryCellConfig]:
    grid = {}
    for optimizer in c.resnet_optimizers:
        for s in range(c.seed, c.seed + c.seeds):
            for resnet in c.resnets:
                model, _, norm = resnet.partition("_")
                grid[f"{optimizer}_{resnet}_s{s}"] = GeometryCellConfig(
                    optimizer=optimizer, model=model, norm=norm or "none", dataset=c.resnet_dataset,
                    data_dir=c.data_dir, epochs=c.epochs, batch_size=c.batch_size, eta=c.eta,
                    n_measure=c.n_measure, seed=s,
                )  # fmt: skip
    return grid


def cells(config: GeometryConfig, done: dict) -> dict[str, GeometryCellConfig]:
    c = config.resolved()
    return {**_grid(c), **_resnet_grid(c)}


def width_exponent(widths, values) -> float:
    """The least-squares slope ``p`` of ``log values`` against ``log widths`` (docs/theory.md §8.5); NaN with fewer
    than two distinct widths (no slope)."""
    if len(set(widths)) < 2:
        return float("nan")
    return float(np.polyfit(np.log(np.asarray(widths, dtype=float)), np.log(np.asarray(values, dtype=float)), 1)[0])


@dataclass(frozen=True)
class Sweep:
    """One sweep (over ``values`` of the width or the depth). Axes: optimiser ``o``, seed ``r``, the swept value
    ``v``, checkpoint ``k``, direction ``d``, geometry ``g``, η ``e``; ``s`` the geometry a bound's sizes are in."""

    values: tuple[int, ...]
    train_acc: np.ndarray = value(DIVERGED)  # (o, r, v)
    function: np.ndarray = value(f"{DIVERGED}; {DEAD}")  # (o, r, v, k, d, g, e)
    c_eff: np.ndarray = value(f"{DIVERGED}; {DEAD}")  # (o, r, v, k, s): the gradient slice's C_eff in s's sizes
    weight_rank: np.ndarray = value(DIVERGED)  # (o, r, v, k) mean over layers of srank W_l
    step_rank: np.ndarray = value(f"{DIVERGED}; {DEAD}")  # (o, r, v, k, d) mean over layers of srank ΔW_l


@dataclass(frozen=True, eq=False)
class GeometryResult(Result):
    config: GeometryConfig
    width: Sweep
    depth: Sweep
    ratio_function: np.ndarray  # (2, d, g): median and worst over η, checkpoints, cells of function_max/bound
    ratio_gradient: np.ndarray  # (2, d, g): median and worst over η, layers, checkpoints, cells
    exponent: np.ndarray = value(f"{DIVERGED}; {ONE_WIDTH}")  # (o, k, d, g) width exponent at the smallest η, mean
    exponent_half: np.ndarray = value(f"{estimate.ONE_SAMPLE}; {ONE_WIDTH}")  # (o, k, d, g) its 95 % half-width
    resnet_function: np.ndarray = value(NO_RESNETS)  # (2, d, g) as ratio_function, over the ResNet cells
    resnet_gradient: np.ndarray = value(NO_RESNETS)  # (2, d, g) as ratio_gradient, over the ResNet cells
    operator_worst: float = value(BIASED)  # the operator-norm theorem's worst measured/bound over everything
    operator_allowance: float = value(
        f"{BIASED}; {ZERO_BOUND}"
    )  # the largest rounding allowance (bounds.operator_rounding_allowance)
    operator_violations: int = 0  # points with measured/bound > 1 + their rounding allowance
    operator_points: int = 0
    diverged: int = 0
    summary: GeometrySummary | None = value(derived=True)

    def derive(self) -> GeometryResult:
        return replace(self, summary=_summary(self))


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
    mean: np.ndarray = value(f"{DIVERGED}; {ONE_WIDTH}")
    half_width: np.ndarray = value(f"{estimate.ONE_SAMPLE}; {ONE_WIDTH}")
    mean_of_means: float = value(f"{DIVERGED}; {ONE_WIDTH}")


@dataclass(frozen=True, eq=False)
class GeometrySummary:
    """Every number the geometry figures and rows show, over optimisers (o) and seeds, NaN left out. Axes as in
    :class:`Sweep`: checkpoint k, direction d, geometry g, swept value v, size geometry s."""

    width_function: Spread  # (k, d, g, v) the function change at the smallest η, over optimisers × seeds
    step_rank_init: Spread  # (d, v) the first optimiser's nets at init, over seeds (not "step")
    c_eff_width: Spread  # (k, s, v) over optimisers × seeds
    c_eff_depth: Spread  # (k, s, v)
    tightest: tuple[str, ...]  # per direction: the geometry whose worst ratio is nearest 1 (MLPs)
    resnet_tightest: tuple[str, ...]
    operator: Verdict | None  # the operator-norm theorem (None: no bias-free MLP measured)
    exponents: tuple[ExponentClaim, ...]
    explains: Verdict  # does the spectral geometry bring C_eff to ≈ 1 (rules.explains)
    exponent_mean: np.ndarray = value(f"{DIVERGED}; {ONE_WIDTH}")  # (k, d, g) mean over optimisers of p
    weight_rank_init: np.ndarray = value(DIVERGED)  # (v,) median over optimisers × seeds
    weight_rank_end: np.ndarray = value(DIVERGED)  # (o, v) median over seeds
    own_step_rank: np.ndarray = value(f"{DIVERGED}; {DEAD}")  # (o, k, v) each optimiser's step, median over seeds
    c_eff_widest: np.ndarray = value(f"{DIVERGED}; {DEAD}")  # (k, s) median at the widest net
    # (k, g) the median over optimisers, seeds and directions at the smallest width (the figure's reference slopes)
    width_reference: np.ndarray = value(f"{DIVERGED}; {DEAD}")


def _over_cells(values: np.ndarray, axes: int = 2) -> Spread:
    """A spread over the first ``axes`` axes (optimisers × seeds) taken together."""
    values = np.asarray(values, dtype=float)
    return rules.spread(values.reshape(-1, *values.shape[axes:]))


def _tightest(ratio: np.ndarray) -> tuple[str, ...]:
    """Per direction, the geometry whose worst measured/bound is nearest 1 in log (rules "tightest")."""
    if not np.isfinite(ratio[1]).any():
        return ()
    return tuple(GEOMETRIES[int(np.nanargmin(np.abs(np.log(ratio[1, d]))))] for d in range(len(DIRECTIONS)))


def _exponent_claims(r: GeometryResult) -> tuple[ExponentClaim, ...]:
    c, out = r.config, []
    d = DIRECTIONS.index("gradient")
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


def _summary(r: GeometryResult) -> GeometrySummary:
    sw, n_s = r.width, len(GEOMETRIES[:2])
    function = np.moveaxis(sw.function[..., 0], 2, -1)  # (o, r, k, d, g, v) at the smallest η
    widest = rules.median(sw.c_eff[:, :, -1].reshape(-1, *sw.c_eff.shape[3:]), axis=0)  # (k, s)
    smallest = sw.function[:, :, 0, :, :, :, 0]  # (o, r, k, d, g): the smallest width and η
    k_g = smallest.shape[2], smallest.shape[4]
    own_step = sw.step_rank[:, :, :, :, DIRECTIONS.index("step")]  # (o, r, v, k)
    operator = None
    if np.isfinite(r.operator_worst):
        outcome = "holds" if r.operator_violations == 0 else "VIOLATED"
        operator = Verdict("theorem", outcome, r.operator_violations, 0, r.operator_worst, r.config.seeds,
                           r.operator_worst, r.operator_worst)  # fmt: skip
    return GeometrySummary(
        width_function=_over_cells(function),
        width_reference=rules.median(np.moveaxis(smallest, 3, 2).reshape(-1, k_g[0], k_g[1]), axis=0),
        exponent_mean=np.apply_along_axis(rules.finite_mean, 0, r.exponent),  # (k, d, g)
        weight_rank_init=rules.median(sw.weight_rank[:, :, :, 0].reshape(-1, len(sw.values)), axis=0),
        weight_rank_end=rules.median(np.moveaxis(sw.weight_rank[:, :, :, 1], 1, 0), axis=0),
        step_rank_init=rules.spread(np.moveaxis(sw.step_rank[0, :, :, 0, :3], 2, 1)),
        own_step_rank=rules.median(np.moveaxis(own_step, (1, 3), (0, 2)), axis=0),
        c_eff_width=_over_cells(np.moveaxis(sw.c_eff[..., :n_s], 2, -1)),
        c_eff_depth=_over_cells(np.moveaxis(r.depth.c_eff[..., :n_s], 2, -1)),
        c_eff_widest=widest[:, :n_s],
        tightest=_tightest(r.ratio_function),
        resnet_tightest=_tightest(r.resnet_function) if r.config.resnets else (),
        operator=operator,
        exponents=_exponent_claims(r),
        explains=rules.explains(widest[:, 0], widest[:, 1]),
    )


def _sweep(c: GeometryConfig, done: dict, values: tuple[int, ...], width_of, depth_of) -> Sweep:
    """The cells of one sweep: ``width_of(v)``, ``depth_of(v)`` give the net of the swept value ``v``."""
    results = [
        [[done[_name(opt, width_of(v), depth_of(v), s)] for v in values] for s in range(c.seed, c.seed + c.seeds)]
        for opt in c.optimizers
    ]
    shape = (len(c.optimizers), c.seeds, len(values))
    n_k, n_d, n_g, n_e = len(CHECKPOINTS), len(DIRECTIONS), len(GEOMETRIES), len(c.eta)
    out: dict[str, Any] = {
        "train_acc": np.full(shape, np.nan),
        "function": np.full(shape + (n_k, n_d, n_g, n_e), np.nan),
        "c_eff": np.full(shape + (n_k, n_g), np.nan),
        "weight_rank": np.full(shape + (n_k,), np.nan),
        "step_rank": np.full(shape + (n_k, n_d), np.nan),
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
    return Sweep(values=values, **out)


def _ratios(measured: list[GeometryCellResult], first: str) -> tuple[np.ndarray, np.ndarray]:
    """Median and worst, ``(2, d, g)``, of each family's function change (worst example) and of every layer's
    gradient change over its own bound, over η, checkpoints and cells. At initialisation every optimiser's cell
    holds the same net, so only the ``first`` optimiser's cells count there, except for each one's own step."""
    n_d, n_g = len(DIRECTIONS), len(GEOMETRIES)
    ratio_function, ratio_gradient = np.full((2, n_d, n_g), np.nan), np.full((2, n_d, n_g), np.nan)

    def points(r: GeometryCellResult, d: int) -> slice:
        shared = DIRECTIONS[d] != "step" and r.config.optimizer != first
        return slice(1, None) if shared else slice(None)

    for d in range(n_d):
        for g in range(n_g):
            f = [(r.function_max / r.bound())[points(r, d), d, g].ravel() for r in measured]
            gr = [(r.gradient / r.bound()[..., None])[points(r, d), d, g].ravel() for r in measured]
            for target, values in ((ratio_function, f), (ratio_gradient, gr)):
                v = np.concatenate(values) if values else np.array([np.nan])
                v = v[np.isfinite(v)]
                if v.size:
                    target[:, d, g] = np.median(v), np.max(v)
    return ratio_function, ratio_gradient


def combine(config: GeometryConfig, done: dict) -> GeometryResult:
    c = config.resolved()
    width = _sweep(c, done, c.widths, lambda w: w, lambda w: c.depth)
    depth = _sweep(c, done, c.depths, lambda d: c.width, lambda d: d)
    measured = [done[name] for name in _grid(c) if done[name].measured]
    n_d, n_g = len(DIRECTIONS), len(GEOMETRIES)
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
    ).derive()


def run_geometry(config: GeometryConfig) -> Result:
    """The whole study in memory (the CLI and ``paper_figs.py`` store and reuse it cell by cell instead)."""
    return run_study(STUDY, config)


STUDY = Study(CELL, cells, combine)


# ------------------------------------------------------------------------------------------------ figures


# ------------------------------------------------------------------------------------------------ report


def paper_configs(quick: bool, seed: int) -> dict[str, GeometryConfig]:
    """Full: the defaults (135 cells, 16 min on 2 cores; a width-1024 cell takes 27 s). The quick preview: widths
    32–128, depths 2 and 4 at width 32, Fromage and orthogonalised SGD, one η (16 cells)."""
    if quick:
        preview: dict[str, Any] = dict(widths=(32, 64, 128), depths=(2, 4), width=32, eta=(0.01,))
        return {"geometry": GeometryConfig(quick=True, optimizers=("fromage", "orthogonal_sgd"), seed=seed, **preview)}
    return {"geometry": GeometryConfig(seed=seed)}


EXPERIMENT = Experiment(
    GeometryConfig,
    GeometryResult,
    run_geometry,
    paper_configs,
    help="Frobenius, spectral and elementwise steps: bounds, stable ranks, width exponent, C_eff explained",
    study=STUDY,
)
