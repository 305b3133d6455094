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
from trust.base.schema import Config, Result, param, value
from trust.base.tree import leaf_norms, leaves, weight_indices
from trust.core import bounds, data, estimate, measure, nets, perturb, train
from trust.experiments.shared import points
from trust.experiments.shared.runner import Experiment, Study, run_study
from trust.views import plots
from trust.views.report import Row, count, plus_minus

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

    def summary(self) -> str:
        c = self.config
        net = f"width {c.width} L={c.depth}" if c.model == "mlp" else f"{c.model} norm {c.norm} channels {c.channels}"
        head = f"{c.optimizer} {net} seed {c.seed}"
        if self.diverged_epoch:
            return f"{head}: diverged in epoch {self.diverged_epoch}"
        e = 0
        cells = ", ".join(f"{geo} {self.function[0, 0, g, e]:.3g}" for g, geo in enumerate(GEOMETRIES) if self.measured)
        return (
            f"{head}: train acc {self.train_acc:.4f}; gradient-direction function change at η={self.eta[e]:g}: {cells}"
        )


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

    def summary(self) -> str:
        c = self.config
        lines = [f"{count(len(c.optimizers), 'optimiser')}, {count(c.seeds, 'seed')}; widths {c.widths} at depth "
                 f"{c.depth}, depths {c.depths} at width {c.width}; {self.diverged} cells diverged"]  # fmt: skip
        for g, geometry in enumerate(GEOMETRIES):
            cells = ", ".join(
                f"{d} {self.ratio_function[0, i, g]:.3g}/{self.ratio_function[1, i, g]:.3g}"
                for i, d in enumerate(DIRECTIONS)
            )
            lines.append(f"{geometry}: function change / own bound, median/worst: {cells}")
        if c.resnets:
            cells = ", ".join(
                f"{geometry} {self.resnet_function[0, 0, g]:.3g}/{self.resnet_function[1, 0, g]:.3g}"
                for g, geometry in enumerate(GEOMETRIES)
            )
            lines.append(f"ResNets ({', '.join(c.resnets)}), gradient direction, median/worst: {cells}")
        lines.append(
            f"operator-norm theorem: worst ratio {self.operator_worst:.3g} over {self.operator_points} points, "
            f"{self.operator_violations} beyond their rounding allowance (at most {self.operator_allowance:.2g})"
        )
        shared = ", ".join(
            f"{geometry} {d} {self._exponent(0, 0, i, g)}"
            for g, geometry in enumerate(GEOMETRIES[:2])
            for i, d in enumerate(DIRECTIONS[:3])
        )
        lines.append(f"width exponent at init: {shared}")
        for o, opt in enumerate(c.optimizers):
            step = DIRECTIONS.index("step")
            cells = ", ".join(
                f"{geometry} {d} {self._exponent(o, 1, i, g)}"
                for g, geometry in enumerate(GEOMETRIES[:2])
                for i, d in enumerate(DIRECTIONS)
            )
            own = ", ".join(f"{geometry} {self._exponent(o, 0, step, g)}" for g, geometry in enumerate(GEOMETRIES[:2]))
            lines.append(f"width exponent, {opt}: own first step {own}; at the end {cells}")
        return "\n".join(lines)

    def _exponent(self, o: int, k: int, d: int, g: int) -> str:
        return plus_minus(self.exponent[o, k, d, g], self.exponent_half[o, k, d, g], self.config.seeds, 2)

    def figure(self):
        return width_figure(self)

    def report_rows(self) -> list[Row]:
        return rows(self)


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
    )


def run_geometry(config: GeometryConfig) -> Result:
    """The whole study in memory (the CLI and ``paper_figs.py`` store and reuse it cell by cell instead)."""
    return run_study(STUDY, config)


STUDY = Study(CELL, cells, combine)


# ------------------------------------------------------------------------------------------------ figures


def _mean(values) -> float:
    """The mean of the finite values; NaN (without a warning) when there are none."""
    v = np.asarray(values, dtype=float)
    return float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else float("nan")


def _median_band(values, axes):
    """Median and min–max over ``axes`` (NaN-aware)."""
    return (np.nanmedian(values, axis=axes), np.nanmin(values, axis=axes), np.nanmax(values, axis=axes))


DIRECTION_COLOURS = dict(zip(DIRECTIONS, ("tab:blue", "tab:orange", "tab:green", "tab:red")))


def width_figure(r: GeometryResult):
    """Relative function change at the smallest η against width, one panel per geometry, at initialisation (top)
    and at the end of training (bottom): median over optimisers and seeds, band min–max; dotted: slopes ½ and 0."""
    c, sw = r.config, r.width
    fig, axes = plots.subplots(2, len(GEOMETRIES), figsize=(14, 7.5))
    widths = np.asarray(sw.values, dtype=float)
    for k, tag in enumerate(CHECKPOINTS):
        for g, geometry in enumerate(GEOMETRIES):
            ax = axes[k][g]
            for d, direction in enumerate(DIRECTIONS):
                med, lo, hi = _median_band(sw.function[:, :, :, k, d, g, 0], (0, 1))
                p = _mean(r.exponent[:, k, d, g])
                colour = DIRECTION_COLOURS[direction]
                ax.plot(widths, med, "o-", color=colour, label=f"{direction} (p = {p:.2f})")
                ax.fill_between(widths, lo, hi, color=colour, alpha=0.15)
            ref = np.nanmedian(sw.function[:, :, 0, k, :, g, 0])
            for slope in (0.5, 0.0):
                ax.plot(widths, ref * (widths / widths[0]) ** slope, ":", color="grey", lw=1)
            ax.set(xscale="log", yscale="log", xlabel="width n",
                   ylabel=f"‖ΔF‖/‖F‖ at η = {c.eta[0]:g}", title=f"{geometry} steps, {tag}")  # fmt: skip
            ax.set_xticks(widths, [str(int(w)) for w in widths])
            ax.set_xticks([], minor=True)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8, title="direction (width exponent p)", title_fontsize=8)
    fig.suptitle(
        f"Relative function change per step against width (depth {c.depth}, {c.dataset}; median over "
        f"{count(len(c.optimizers), 'optimiser')} × {count(c.seeds, 'seed')}, band min–max; dotted: n^½ and n^0)"
    )
    return fig


def ranks_figure(r: GeometryResult):
    """(a) Stable rank of the weights against width, at initialisation and the end of each optimiser's training,
    beside n/4 (a Gaussian matrix); (b) stable rank of the step along each direction (Frobenius family)."""
    c, sw = r.config, r.width
    widths = np.asarray(sw.values, dtype=float)
    fig, axes = plots.subplots(1, 2, figsize=(14, 4.8))
    ax_a, ax_b = axes[0]
    ax_a.plot(widths, np.nanmedian(sw.weight_rank[:, :, :, 0], axis=(0, 1)), "ko-", label="initialisation")
    for o, opt in enumerate(c.optimizers):
        colour = plots.OPTIMIZER_COLOURS[opt]
        ax_a.plot(widths, np.nanmedian(sw.weight_rank[o, :, :, 1], axis=0), "s--", color=colour, label=f"end of {opt}")
    ax_a.plot(widths, widths / 4, ":", color="grey", label="n/4 (n × n Gaussian)")
    ax_a.set(title="(a) srank W_l, mean over layers", ylabel="‖W‖_F² / ‖W‖_op²")
    for d, direction in enumerate(DIRECTIONS[:3]):  # the same nets at init for every optimiser: the first's
        colour = DIRECTION_COLOURS[direction]
        med, lo, hi = _median_band(sw.step_rank[0, :, :, 0, d], 0)
        ax_b.plot(widths, med, "o-", color=colour, label=f"{direction}, init")
        ax_b.fill_between(widths, lo, hi, color=colour, alpha=0.15)
    step = DIRECTIONS.index("step")
    for o, opt in enumerate(c.optimizers):
        for k, style in ((0, "^:"), (1, "s--")):
            ranks = np.nanmedian(sw.step_rank[o, :, :, k, step], axis=0)
            ax_b.plot(widths, ranks, style, color=plots.OPTIMIZER_COLOURS[opt], label=f"{opt}'s step, {CHECKPOINTS[k]}")
    ax_b.set(title="(b) srank ΔW_l, mean over layers (median over seeds)", ylabel="srank ΔW")
    for ax in (ax_a, ax_b):
        ax.set(xscale="log", yscale="log", xlabel="width n")
        ax.set_xticks(widths, [str(int(w)) for w in widths])
        ax.set_xticks([], minor=True)
        ax.grid(alpha=0.3, which="both")
    ax_a.legend(fontsize=8)
    ax_b.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def ratios_figure(r: GeometryResult):
    """Measured / own bound per family: median (bar) and worst (marker) of the function change (left) and of every
    layer's gradient change (right), over η, checkpoints and cells; 1 is a tight bound, above 1 a violation."""
    groups = [("MLPs", r.ratio_function, r.ratio_gradient)]
    if r.config.resnets:
        groups.append(("ResNets", r.resnet_function, r.resnet_gradient))
    fig, axes = plots.subplots(len(groups), 2, figsize=(13, 5.2 * len(groups)))
    x = np.arange(len(DIRECTIONS))
    width = 0.26
    colours = ("tab:purple", "tab:cyan", "tab:olive")
    panels = [(axes[i][j], ratio, what, name) for i, (name, *ratios) in enumerate(groups)
              for j, (ratio, what) in enumerate(zip(ratios, ("function", "gradient")))]  # fmt: skip
    for ax, ratio, what, name in panels:
        for g, geometry in enumerate(GEOMETRIES):
            pos = x + (g - 1) * width
            ax.bar(pos, ratio[0, :, g], width, color=colours[g], alpha=0.7, label=f"{geometry}: median")
            ax.plot(pos, ratio[1, :, g], "v", color=colours[g], markeredgecolor="k", label=f"{geometry}: worst")
        ax.axhline(1.0, color="k", lw=1)
        ax.set_xticks(x, DIRECTIONS)
        ax.set(yscale="log", ylabel="measured / own bound", xlabel="direction",
               title=f"{name}: {what} change / own bound ∏(1 + η s_l) − 1")  # fmt: skip
        ax.grid(alpha=0.3, axis="y", which="both")
        ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    c = r.config
    resnets = f"; ResNets: {', '.join(c.resnets)} on {c.resnet_dataset}" if c.resnets else ""
    mlps = f"MLPs: widths {c.widths[0]}–{c.widths[-1]}, depths {c.depths[0]}–{c.depths[-1]}"
    fig.suptitle(
        f"Measured / own bound per family: median (bar) and worst (▼) over η, checkpoints and cells\n{mlps}{resnets}"
    )
    return fig


def ceff_figure(r: GeometryResult):
    """The effective constant of the paper's slice (gradient direction, Frobenius step: C_eff = max_η,l
    measured/bound) with the bound in each geometry's sizes of the same step, against width and depth."""
    fig, axes = plots.subplots(1, 2, figsize=(12, 4.5))
    for ax, sweep, label in ((axes[0][0], r.width, "width n"), (axes[0][1], r.depth, "depth L")):
        v = np.asarray(sweep.values, dtype=float)
        for g, geometry in enumerate(GEOMETRIES[:2]):  # an elementwise size is a max over entries: C_eff ≪ 1
            for k, style in ((0, "o-"), (1, "s--")):
                med, lo, hi = _median_band(sweep.c_eff[:, :, :, k, g], (0, 1))
                ax.plot(v, med, style, color=f"C{g}", label=f"sizes in {geometry}, {CHECKPOINTS[k]}")
                if k == 0:
                    ax.fill_between(v, lo, hi, color=f"C{g}", alpha=0.12)
        ax.axhline(1.0, color="k", lw=1)
        ax.set(xscale="log", yscale="log", xlabel=label, ylabel="C_eff = max measured / ∏(1 + η s_l) − 1")
        ax.set_xticks(v, [str(int(t)) for t in v])
        ax.set_xticks([], minor=True)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0][0].set_title(f"(a) against width (depth {r.config.depth})")
    axes[0][1].set_title(f"(b) against depth (width {r.config.width})")
    return fig


def paper_figures(results: dict) -> dict:
    r = results["geometry"]
    return {
        "geometry_width": width_figure(r),
        "geometry_ranks": ranks_figure(r),
        "geometry_ratios": ratios_figure(r),
        "geometry_ceff": ceff_figure(r),
    }


# ------------------------------------------------------------------------------------------------ report


def _tightest_row(ratio: np.ndarray, where: str) -> Row:
    """Which geometry's own bound is tightest per direction: the one whose worst case is nearest 1 in log."""
    tightest = [GEOMETRIES[int(np.nanargmin(np.abs(np.log(ratio[1, d]))))] for d in range(len(DIRECTIONS))]
    cells = "; ".join(
        f"{d}: " + ", ".join(f"{g} {ratio[0, i, j]:.2g}/{ratio[1, i, j]:.2g}" for j, g in enumerate(GEOMETRIES))
        for i, d in enumerate(DIRECTIONS)
    )
    return Row(
        f"Which geometry's relative bound ∏(1 + η s_l) − 1 is tightest on the function — {where}",
        "assumption",
        f"measured/bound, median/worst: {cells}",
        "tightest worst case — " + ", ".join(f"{d}: {t}" for d, t in zip(DIRECTIONS, tightest)),
    )


def rows(r: GeometryResult) -> list[Row]:
    c = r.config
    where = f"`trust geometry` ({count(len(c.optimizers), 'optimiser')}, {count(c.seeds, 'seed')}, widths " \
            f"{c.widths[0]}–{c.widths[-1]}, depths {c.depths[0]}–{c.depths[-1]}, {c.dataset})"  # fmt: skip
    out = [_tightest_row(r.ratio_function, where)]
    if c.resnets:
        where = f"`trust geometry` ResNets ({', '.join(c.resnets)}, 8 channels; {', '.join(c.resnet_optimizers)}; "
        out.append(_tightest_row(r.resnet_function, where + f"{c.resnet_dataset})"))
    if np.isfinite(r.operator_worst):
        out.append(
            Row(
                "Operator-norm bound ‖Δf(x)‖ ≤ ∏‖W_l‖_op‖x‖[∏(1 + b_l) − 1] on bias-free relu MLPs, all 12 families",
                "theorem",
                f"worst measured/bound {r.operator_worst:.3g} over {r.operator_points} (η, family, checkpoint) "
                f"points; {r.operator_violations} above 1 + their float32 rounding allowance (largest "
                f"{r.operator_allowance:.2g})",
                "holds" if r.operator_violations == 0 else "VIOLATED",
            )
        )
    for g, geometry in enumerate(GEOMETRIES[:2]):
        predicted = PREDICTED_EXPONENT[geometry]
        for k, tag in enumerate(CHECKPOINTS):
            d = DIRECTIONS.index("gradient")
            opts = c.optimizers if k else c.optimizers[:1]  # at init every optimiser's cells hold the same nets
            means, halves = r.exponent[: len(opts), k, d, g], r.exponent_half[: len(opts), k, d, g]
            names = opts if k else ("any optimiser",)
            cells = ", ".join(f"{o} {plus_minus(m, h, c.seeds, 2)}" for o, m, h in zip(names, means, halves))
            inside = [abs(m - predicted) <= (h if np.isfinite(h) else 0.0) for m, h in zip(means, halves)]
            out.append(
                Row(
                    f"Width exponent of the function change per {geometry} step along the gradient, {tag}: "
                    f"predicted {predicted:g} (docs/theory.md §8.5)",
                    "claim",
                    f"p (95 % CI over seeds) at η = {c.eta[0]:g}: {cells}",
                    f"consistent for {sum(inside)} of {len(inside)} optimisers"
                    if any(inside) else f"not consistent: mean p = {_mean(means):.2f}",
                )
            )  # fmt: skip
    widest = r.width.c_eff[:, :, -1]  # (o, r, k, s)
    med = np.nanmedian(widest, axis=(0, 1))  # (k, s)
    cells = "; ".join(
        f"{tag}: " + ", ".join(f"{g} {med[k, s]:.3g}" for s, g in enumerate(GEOMETRIES[:2]))
        for k, tag in enumerate(CHECKPOINTS)
    )
    shrink = med[:, 0] / med[:, 1]
    if np.all(med[:, 1] <= 1.5):
        explained = "explained: spectral sizes bring C_eff to ≈ 1"
    elif np.all(shrink >= 2):
        explained = f"partly: C_eff stays at {np.min(med[:, 1]):.3g}–{np.max(med[:, 1]):.3g} in spectral sizes"
    else:
        explained = "not explained by the geometry"
    out.append(
        Row(
            f"Does C_eff of the paper's slice shrink towards 1 with the step measured in the spectral geometry "
            f"(width {c.widths[-1]}, depth {c.depth})?",
            "measurement",
            f"median C_eff with the bound in each geometry's sizes — {cells}",
            ", ".join(f"{tag}: ÷{s:.3g}" for tag, s in zip(CHECKPOINTS, shrink)) + f" — {explained}",
        )
    )
    return out


def paper_rows(results: dict) -> list[Row]:
    return rows(results["geometry"])


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
    paper_figures,
    paper_rows,
    help="Frobenius, spectral and elementwise steps: bounds, stable ranks, width exponent, C_eff explained",
    study=STUDY,
)
