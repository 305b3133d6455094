"""One cell of a study: train a configuration with one seed, then measure the paper's Figure-1 slice at every
checkpoint (docs/theory.md §5). The studies (:mod:`trust.experiments.study_breakdown`,
:mod:`trust.experiments.study_depth`) are sets of these cells.

At each checkpoint W, on a fixed measurement batch: the gradient ``g`` there, the direction ``U_l =
−‖W_l‖·g_l/‖g_l‖`` for every tensor, and along ``W + η·U`` the loss, the relative function distance and the
relative gradient distance of every weight matrix; beside them the DRT curve ``∏(1 + a_l) − 1 = (1+η)^L − 1``
(an assumption with constant 1; the effective constant ``C_eff = max_η measured/DRT`` is what would make it
hold) and the Lipschitz-smooth prediction ``λ‖ΔW‖/‖g_1‖`` with λ the sharpness measured at that checkpoint
(docs/theory.md §2.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from trust.base.errors import Diverged, TrustError
from trust.base.schema import Config, Result, param, value
from trust.base.spec import weight_indices
from trust.base.tree import leaf_norms
from trust.core import bounds, estimate, measure, perturb, train
from trust.core.losses import cross_entropy
from trust.experiments.shared import authors, points, rules
from trust.experiments.shared.paper import PROBES
from trust.experiments.shared.runner import Experiment

DIVERGED = "training diverged (a non-finite loss) before this point"
DEAD = "NaN at a checkpoint where some tensor's gradient is zero (a dead relu net): the slice is undefined there"
WINDOW = authors.WINDOW  # steps per minibatch-accuracy window (20, as the authors' metric here)
SHARPNESS_ENDS = "the sharpness (Lanczos, the costliest measurement) is taken at initialisation and the end only"
ALONG_END = "the sharpness along the slice is taken at the end of training only (where the Lipschitz rows judge)"


# The defaults of a cell's training (the paper's Figure-1 nets: Fromage at 0.01, ×0.9 per epoch, batch 250)
CELL_TRAINING = train.TrainConfig(
    learning_rate=0.01, depth=16, width=784, dataset="mnist5k", epochs=10, batch_size=250, checkpoints=(0.0,)
)
# trust 0.3 stored a cell's training flat beside its measurement, with these names and defaults (Config.upgrade)
FLAT_0_3 = dict(optimizer="fromage", lr=0.01, model="mlp", depth=16, width=784, residual=False, norm="none",
                channels=16, dataset="mnist5k", data_dir="", epochs=10, batch_size=250, lr_decay=0.9,
                checkpoints=(0.0,), seed=0)  # fmt: skip


@dataclass(frozen=True)
class CellConfig(Config):
    """One trained configuration and seed (``train``, whose checkpoints are where the slices are measured), and how
    its slices are measured."""

    training: train.TrainConfig = param(CELL_TRAINING, "the training run; its checkpoints: where the slice is measured")
    eta: tuple[float, ...] = param((0.0, 0.01, 0.05), "the η grid of the slice", minimum=0, increasing=True)
    n_measure: int = param(500, "measurement batch: the first n training examples (0: all)", minimum=0)
    sharpness_tol: float = param(1e-3, "relative tolerance of the Lanczos sharpness", minimum=1e-12)
    measure_check: tuple[int, ...] = param(
        (), "other measurement batch sizes for layer 1's curve at initialisation and the end (0: all)", minimum=0
    )
    slices: bool = param(True, "measure the slices (False: train only, e.g. a learning-rate sweep)")
    sharpness_along: bool = param(
        False, "also the sharpness at W + ηU for the probe η 0.01, 0.05, 0.099 at the end of training (three more "
        "Lanczos runs): the constant a Lipschitz-smooth model needs along the slice",
    )  # fmt: skip

    def validate(self):
        if not self.slices and self.training.checkpoints:
            raise TrustError("a cell without slices keeps no checkpoints (training.checkpoints must be empty)")

    @classmethod
    def upgrade(cls, d: dict) -> dict:
        """trust 0.3's flat layout: the training fields beside the measurement ones (``lr`` for the rate)."""
        slices = d.get("slices", True)  # 0.3 trained a sweep cell without its checkpoints
        return train.nest_flat_0_3(d, FLAT_0_3, checkpoints=lambda flat: flat["checkpoints"] if slices else ())


def for_study(study: Config, *, slices: bool = True, checkpoints=(0.0,), measure: dict | None = None, **training):
    """A cell of ``study``: the training settings every cell of a study shares (its data set, width, epochs,
    minibatch and rate decay), the cell's own ``training`` fields (``lr`` for the rate), its checkpoints (none
    without slices) and its ``measure``ment fields."""
    names = ("dataset", "data_dir", "train_images", "width", "activation", "epochs", "batch_size", "lr_decay")
    shared = {name: getattr(study, name) for name in names}
    run = train.TrainConfig(
        **shared, learning_rate=training.pop("lr"), checkpoints=checkpoints if slices else (), **training
    )
    return CellConfig(training=run, slices=slices, **(measure or {}))


@dataclass(frozen=True, eq=False)
class CellResult(Result):
    """A trained cell: its training curve and, per checkpoint (``k``), the slice along η (``e``) for every
    weight matrix (``l``). Without slices only the curve and the end of training are kept."""

    config: CellConfig
    diverged_epoch: int  # 0: trained to the end
    epoch: np.ndarray = value(axes=("epoch",))  # (epochs + 1,) the curve: 0 … epochs (shorter if it diverged)
    train_loss_curve: np.ndarray = value(DIVERGED, axes=("epoch",))
    train_acc_curve: np.ndarray = value(DIVERGED, axes=("epoch",))
    test_acc_curve: np.ndarray = value(DIVERGED, axes=("epoch",))
    step: np.ndarray = value(empty=True, axes=("checkpoint",))  # (k,) optimiser step of each checkpoint
    checkpoint_epoch: np.ndarray = value(empty=True, axes=("checkpoint",))  # (k,)
    train_loss: np.ndarray = value(empty=True, axes=("checkpoint",))  # (k,) full training set
    train_acc: np.ndarray = value(empty=True, axes=("checkpoint",))
    eta: np.ndarray = value(empty=True, axes=("eta",))  # (e,)
    loss: np.ndarray = value(DEAD, empty=True, axes=("checkpoint", "eta"))  # (k, e) on the measurement batch
    function: np.ndarray = value(DEAD, empty=True, axes=("checkpoint", "eta"))  # (k, e) ‖ΔF‖_F/‖F‖_F
    gradient: np.ndarray = value(
        DEAD, empty=True, axes=("checkpoint", "eta", "layer")
    )  # (k, e, l) ‖Δg_l‖/‖g_l‖, every weight matrix
    drt: np.ndarray = value(empty=True, axes=("eta",))  # (e,) ∏(1 + a_l) − 1
    sharpness: np.ndarray = value(
        SHARPNESS_ENDS + "; " + DEAD, empty=True, axes=("checkpoint",)
    )  # (k,) λ = max |eig ∇²ℒ|
    lipschitz_first: np.ndarray = value(
        SHARPNESS_ENDS + "; " + DEAD, empty=True, axes=("checkpoint", "eta")
    )  # (k, e) λ‖ΔW‖/‖g_1‖
    # (k, e) the secant ‖∇ℒ(W+ΔW) − ∇ℒ(W)‖/‖ΔW‖ over every tensor (NaN at η = 0): the Lipschitz constant the slice
    # itself needs up to η (its running maximum)
    secant: np.ndarray = value(DEAD + "; η = 0: no step", empty=True, axes=("checkpoint", "eta"))
    # (k, probe) λ at W + ηU for the probe η (NaN but at the end, or without sharpness_along)
    sharpness_along: np.ndarray = value(ALONG_END + "; " + DEAD, empty=True, axes=("checkpoint", "probe"))
    c_eff_first: np.ndarray = value(DEAD, empty=True, axes=("checkpoint",))  # (k,) max_η gradient_1/DRT
    c_eff_worst: np.ndarray = value(DEAD, empty=True, axes=("checkpoint",))  # (k,) max_{η,l} gradient_l/DRT
    check_sizes: tuple[int, ...] = value(default=(), axes=("batch",))  # measurement batch sizes of the check (0: all)
    check_gradient: np.ndarray = value(
        DEAD, empty=True, axes=("point", "batch", "eta")
    )  # (2, sizes, e): layer 1 at init and end, per size
    # ‖g_l‖ on the measurement batch at each checkpoint, every weight matrix (0 where a tensor's gradient vanished):
    # what the relative change divides by, so a reader tells growth of ‖Δg_l‖ from shrinkage of ‖g_l‖
    gradient_norm: np.ndarray = value(empty=True, axes=("checkpoint", "layer"))
    chance: float = 0.1  # the accuracy of guessing: 1 / the number of classes (10 before it was stored)
    # the mean pre-update minibatch accuracy of each run of WINDOW steps (the authors' Figure-3 metric): entry j
    # covers steps 20j … 20j + 19, so the accuracy "before step s" is entry s/20 − 1 (empty: diverged, or 0.4's)
    minibatch_window: np.ndarray = value(empty=True, axes=("window",))

    @property
    def measured(self) -> bool:
        """Whether the slices were measured (not a train-only or diverged cell)."""
        return self.gradient.size > 0

    @property
    def diverged(self) -> bool:
        return self.diverged_epoch > 0

    @property
    def final_train_loss(self) -> float:
        return float("inf") if self.diverged else float(self.train_loss_curve[-1])

    @property
    def final_train_acc(self) -> float:
        """The full-batch training accuracy at the end (NaN if training diverged)."""
        return float(self.train_acc_curve[-1])

    @property
    def best_train_acc(self) -> float:
        """The best full-batch training accuracy over the epochs (Figure 3's trainability)."""
        return float(np.nanmax(self.train_acc_curve))

    @property
    def gradient_over_initial(self) -> np.ndarray:
        """(k, e, l) ‖Δg_l‖ over ‖g_l‖ *at initialisation* (docs/theory.md §5.1): the companion of ``gradient``
        that a vanishing ‖g_l‖ cannot inflate (NaN without stored gradient norms)."""
        if self.gradient_norm.size == 0:
            return np.full(self.gradient.shape, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.gradient * (self.gradient_norm / self.gradient_norm[:1])[:, None, :]

    @property
    def flags(self) -> tuple[str, ...]:
        """Per checkpoint, rule "flag" (:func:`trust.experiments.shared.rules.flag`): "zero loss", "at chance" (after
        training started) or ""."""
        return tuple(
            rules.flag(loss, acc, self.chance, trained=bool(step))
            for step, loss, acc in zip(self.step, self.train_loss, self.train_acc)
        )

    def accuracy_before(self, step: int) -> float:
        """The mean pre-update minibatch accuracy over the WINDOW steps before ``step`` (0 if the run diverged;
        NaN where the run did not reach ``step`` or recorded no minibatches)."""
        if self.diverged:
            return 0.0
        k = step // WINDOW - 1
        return float(self.minibatch_window[k]) if step % WINDOW == 0 and 0 <= k < self.minibatch_window.size else np.nan

    def at_eta(self, target: float) -> int:
        """Index of the grid point nearest ``target``."""
        assert self.measured, "a cell without slices"
        return int(np.argmin(np.abs(self.eta - target)))

    def coordinates(self) -> dict[str, list]:
        """Checkpoints by their epoch, η by value, the check's points and batch sizes (0: the whole set)."""
        return {"checkpoint": list(self.checkpoint_epoch), "eta": list(self.eta), "epoch": list(self.epoch),
                "probe": list(PROBES),
                "point": ["init", "end"], "batch": list(self.check_sizes),
                "window": [WINDOW * (j + 1) for j in range(self.minibatch_window.size)]}  # fmt: skip


def windows(minibatch_acc: np.ndarray) -> np.ndarray:
    """The mean of each complete run of WINDOW consecutive values (a trailing partial run left out)."""
    n = minibatch_acc.size // WINDOW
    return minibatch_acc[: n * WINDOW].reshape(n, WINDOW).mean(axis=1)


@partial(jax.jit, static_argnums=0)
def loss_and_accuracy(apply, params, x, y):
    """Cross-entropy and accuracy of ``apply(params, x)`` on ``(x, y)`` (jitted)."""
    logits = apply(params, x)
    return cross_entropy(logits, y), jnp.mean(jnp.argmax(logits, -1) == y)


def gradient_slice(net, params, x, y, eta, grads=None) -> measure.Distances | None:
    """Along the fixed-gradient slice at ``params`` (every tensor moves by ``η‖W_l‖`` along ``−g_l/‖g_l‖``), the
    gradient ``grads`` taken on the measurement batch ``(x, y)`` (computed if not given); ``None`` where a tensor's
    gradient is zero (a dead relu net: the slice's direction is undefined)."""
    grads = measure.full_batch_gradient(net.apply, params, x, y) if grads is None else grads
    if not np.all(leaf_norms(grads) > 0):
        return None
    u = perturb.along_gradient(params, grads)
    return measure.relative_distances(net.apply, params, x, y, u, np.asarray(eta))


def _first_layer(config: CellConfig, dist: measure.Distances | None) -> np.ndarray:
    """Layer 1's relative gradient distance along the grid (the first weight matrix, not its bias)."""
    if dist is None:
        return np.full(len(config.eta), np.nan)
    return dist.gradient[:, np.flatnonzero(dist.is_weight)[0]]


def _slice(config: CellConfig, net, params, x, y, with_sharpness: bool, at_end: bool = False) -> dict:
    """The Figure-1 slice at one checkpoint, its bounds and its constants (the sharpness and the Lipschitz
    prediction only ``with_sharpness``, the sharpness along the slice only ``at_end``; NaN otherwise, and NaN
    everywhere at a dead net)."""
    grads = measure.full_batch_gradient(net.apply, params, x, y)
    norms = np.asarray(leaf_norms(grads))[weight_indices(params)]
    dist = gradient_slice(net, params, x, y, config.eta, grads)
    if dist is None:
        k, n_layers = len(config.eta), len(weight_indices(params))
        nan = np.full(k, np.nan)
        drt = bounds.drt_bound(np.outer(np.abs(config.eta), np.ones(n_layers)))
        return dict(loss=nan, function=nan, gradient=np.full((k, n_layers), np.nan), drt=drt, sharpness=np.nan,
                    lipschitz_first=nan, c_eff_first=np.nan, c_eff_worst=np.nan, gradient_norm=norms, secant=nan,
                    sharpness_along=np.full(len(PROBES), np.nan))  # fmt: skip
    weights = np.flatnonzero(dist.is_weight)
    first = weights[0]
    drt = bounds.drt_bound(dist.weight_relative_size)

    def sharpness(at) -> float:
        return estimate.sharpness(net.apply, at, x, y, tol=config.sharpness_tol, seed=config.training.seed)

    lam = sharpness(params) if with_sharpness else float("nan")
    along = np.full(len(PROBES), np.nan)
    if at_end and config.sharpness_along:
        u = perturb.along_gradient(params, grads)
        eta = np.asarray(config.eta)
        along = np.array([sharpness(perturb.perturbed(params, u, eta[np.argmin(np.abs(eta - p))])) for p in PROBES])
    gradient = dist.gradient[:, weights]
    with np.errstate(invalid="ignore", divide="ignore"):
        secant = np.where(dist.delta_norm > 0, dist.gradient_total_change / dist.delta_norm, np.nan)
    return {
        "loss": dist.loss,
        "function": dist.function_frob,
        "gradient": gradient,
        "drt": drt,
        "sharpness": lam,
        "lipschitz_first": bounds.lipschitz_prediction(lam, dist.delta_norm, dist.gradient_norm[first]),
        "c_eff_first": estimate.effective_constant(gradient[:, 0], drt),
        "c_eff_worst": estimate.effective_constant(gradient.max(axis=1), drt),
        "gradient_norm": norms,
        "secant": secant,
        "sharpness_along": along,
    }


def run(config: CellConfig) -> CellResult:
    """Train the cell's configuration and measure the slice at each checkpoint."""
    tc = config.training
    ds = train.load_data(tc)
    try:
        trained = train.train(tc, ds, progress=False)
    except Diverged as err:
        nan = np.full(err.epoch + 1, np.nan)
        return CellResult(config, err.epoch, np.arange(err.epoch + 1), nan, nan, nan)
    curves = trained.curves
    common: dict[str, Any] = dict(
        config=config,
        diverged_epoch=0,
        epoch=np.asarray(curves.epoch),
        train_loss_curve=np.asarray(curves.train_loss),
        train_acc_curve=np.asarray(curves.train_acc),
        test_acc_curve=np.asarray(curves.test_acc),
        minibatch_window=windows(trained.minibatch_acc),
    )
    if not config.slices:
        return CellResult(**common)
    net = trained.net
    x, y = points.measurement_batch(ds, config.n_measure)
    steps = sorted(trained.checkpoints)
    per_point = []
    for s in steps:
        params = trained.checkpoints[s]
        fit = loss_and_accuracy(net.apply, params, ds.x_train, ds.y_train)
        ends = s in (steps[0], steps[-1])
        slice_ = _slice(config, net, params, x, y, ends, at_end=s == steps[-1])
        per_point.append({"train": [float(v) for v in fit], **slice_})

    batches = [points.measurement_batch(ds, n) for n in config.measure_check]
    check = [
        [_first_layer(config, gradient_slice(net, trained.checkpoints[s], xb, yb, config.eta)) for xb, yb in batches]
        for s in (steps[0], steps[-1])
    ]

    def stack(key):
        return np.stack([np.asarray(p[key], dtype=float) for p in per_point])

    train_fit = np.array([p["train"] for p in per_point])
    return CellResult(
        **common,
        step=np.asarray(steps),
        checkpoint_epoch=np.array([trained.epoch(s) for s in steps]),
        train_loss=train_fit[:, 0],
        train_acc=train_fit[:, 1],
        eta=np.asarray(config.eta, dtype=float),
        loss=stack("loss"),
        function=stack("function"),
        gradient=stack("gradient"),
        drt=np.asarray(per_point[0]["drt"], dtype=float),
        sharpness=stack("sharpness"),
        lipschitz_first=stack("lipschitz_first"),
        c_eff_first=stack("c_eff_first"),
        c_eff_worst=stack("c_eff_worst"),
        gradient_norm=stack("gradient_norm"),
        secant=stack("secant"),
        sharpness_along=stack("sharpness_along"),
        chance=1.0 / ds.n_classes,
        check_sizes=config.measure_check,
        check_gradient=np.asarray(check, dtype=float).reshape(2, len(config.measure_check), len(config.eta)),
    )


EXPERIMENT = Experiment(CellConfig, CellResult, run, help="one study cell: train, then measure slices at checkpoints")


@dataclass(frozen=True)
class MeasureCheck:
    """Layer 1's curve on the first n training examples against the reference n (the whole set when checked): the
    largest relative deviation over the probe η, at initialisation and the end, per size, with its sign (the
    bias: negative where the smaller batch measures less)."""

    optimizer: str
    depth: int
    seed: int
    used: int  # the study's n (0: all)
    reference: int
    sizes: tuple[int, ...] = value(axes=("size",))  # the sizes compared with the reference (0: all), the used one first
    deviation: np.ndarray = value(axes=("size",))

    def coordinates(self) -> dict[str, list]:
        return {"size": list(self.sizes)}


def _largest_deviation(curve: np.ndarray, reference: np.ndarray) -> float:
    """The relative deviation ``curve/reference − 1`` farthest from 0 in log terms, with its sign (negative: the
    smaller batch measures less than the reference); NaN where no entry is finite."""
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.log(curve / reference).ravel()
    finite = logs[np.isfinite(logs)]
    return float(np.expm1(finite[np.argmax(np.abs(finite))])) if finite.size else float("nan")


def measure_check(cells, probes: tuple[float, ...]) -> MeasureCheck | None:
    """The first checked cell's curves on the other measurement batches against the reference: the largest
    relative deviation over the ``probes`` η, at initialisation and the end, per size; None without a check."""
    checked = [r for r in cells if r.check_sizes and r.check_gradient.size]
    if not checked:
        return None
    r = checked[0]
    sizes = (r.config.n_measure, *r.check_sizes)  # the used one first
    curves = np.concatenate([r.gradient[[0, -1], None, :, 0], r.check_gradient], axis=1)  # (2, n, e)
    ref = sizes.index(0) if 0 in sizes else 0  # the whole training set when it was checked
    at = [r.at_eta(e) for e in probes]
    deviation = {n: _largest_deviation(curves[:, i, at], curves[:, ref, at]) for i, n in enumerate(sizes) if i != ref}
    return MeasureCheck(
        r.config.training.optimizer,
        r.config.training.depth,
        r.config.training.seed,
        r.config.n_measure,
        sizes[ref],
        tuple(deviation),
        np.array(list(deviation.values()), dtype=float),
    )
