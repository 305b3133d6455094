"""The constants of the theory measured on a real network (docs/theory.md §2.2, §3): transmission α_l, β_l,
conditioning κ of each W_l and ΔW_l, the Theorem-1 constant C = (κ²β/α)^L (and its per-layer form
∏ c_l), the effective constant C_eff that makes DRT hold on the measured distances, cos θ and cos γ,
and the Lemma-2 thresholds they imply — at initialisation and after training, across depths.

For each depth: the experiment MLP of :mod:`trust.core.train` (digits, relu, biases, linear last layer) at
the requested training epochs. At each point the direction U is the paper's fixed-gradient slice (or
Madam's, or random), ``ΔW = η·U`` on the paper's grid η = 0 … 0.099, and

- ``C_eff`` (function) = max over η of ``‖Δf‖/‖f‖ ÷ [∏(1 + a_l) − 1]`` (batch Frobenius ratio);
- ``C_eff`` (layer l's gradient) = max over η of ``‖Δg_l‖/‖g_l‖ ÷ [∏(1 + a_k) − 1]``;
- ``C`` = ``(κ²β/α)^L`` with α the smallest measured transmission, β = 1 (relu's Lipschitz constant) and
  κ the largest condition number of any W_l or U_l; ``C_layers`` = ``∏ c_l``, ``c_l = κ(W_l)κ(U_l)β/α_l``;
  ``C_layers_op`` replaces κ(U_l) by ``max(1, ρ_l)`` with the measured
  ``ρ_l = (‖U_l‖_op/‖W_l‖_op)/(‖U_l‖_F/‖W_l‖_F) ≤ κ(U_l)``, the only place κ(U_l) enters the proof (the
  induction needs the factor ≥ 1) — finite where U_l is singular, as gradients are: zero input features
  (digits' blank pixels) give zero columns, dead relu units zero rows, and the last layer's rows sum to 0
  under softmax cross-entropy (rank ≤ classes − 1).

The experiment net breaks Theorem 1's conditions (biases; the first and last W are not square; relu has
α = 0 in the worst case): C is what the theorem's formula gives with the measured pieces, reported to
show its size, not a bound that holds here. C_eff is the measured fact. The growth of ln C_eff with
depth is fitted by least squares, ``ln C_eff ≈ a + b·L`` — e^b is the per-layer factor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import numpy as np

from trust.base.schema import Config, Result, Verdict, param, value
from trust.base.spec import weight_indices
from trust.base.tree import leaf_norms, leaves
from trust.core import bounds, data, estimate, measure, perturb, train
from trust.experiments.shared import cell, points, rules
from trust.experiments.shared.runner import Experiment

# the directions of perturb.DIRECTIONS whose constants are measured (the others fix a layer or the step size)
MEASURED_DIRECTIONS = tuple(d for d in perturb.DIRECTIONS if d not in ("scaled", "single"))


SINGULAR = "infinite where a gradient slice ΔW_l is numerically singular (κ(ΔW_l) = ∞) or α = 0"
OVERFLOW = "infinite where e^b overflows a float64 (b > 700 per layer)"


@dataclass(frozen=True)
class ConstantsConfig(Config):
    """Everything that determines a constants run (recorded in its ``config.json``)."""

    depths: tuple[int, ...] = param(
        (16,),
        "one or more depths (weight matrices); with several, ln C_eff is fitted against L",
        flag="--depth",
        minimum=1,
        increasing=True,
    )
    width: int = param(128, "hidden width", minimum=1)
    perturb: str = param("gradient", "the direction U", choices=MEASURED_DIRECTIONS)
    epochs: tuple[float, ...] = param((0.0,), "measure after these training epochs (0: initialisation)", minimum=0)
    optimizer: str = param("fromage", "trains to the --epochs", choices=train.OPTIMIZERS)
    eta_max: float = param(0.099, "largest η of the grid", minimum=0)
    eta_steps: int = param(100, "points of the η grid 0 … eta_max", minimum=2)
    dataset: str = param("digits", "data set", choices=data.names(data.SMALL))
    n_examples: int = param(0, "measure on the first n training examples; 0: all", minimum=0)
    seed: int = param(0, "random seed")

    def validate(self):
        points.check_eta_max(self.eta_max)


LAYER = ("layer",)  # every weight matrix, named in LayerConstants.name


@dataclass(frozen=True)
class LayerConstants:
    """Per weight matrix l (module docstring)."""

    name: tuple[str, ...]
    alpha: np.ndarray = value(axes=LAYER)
    beta: np.ndarray = value(axes=LAYER)
    mean_transmission: np.ndarray = value(axes=LAYER)
    kappa_w: np.ndarray = value(SINGULAR, axes=LAYER)
    kappa_dw: np.ndarray = value(SINGULAR, axes=LAYER)
    op_over_frobenius: np.ndarray = value(axes=LAYER)  # ρ_l
    c: np.ndarray = value(SINGULAR, axes=LAYER)
    c_op: np.ndarray = value(SINGULAR, axes=LAYER)
    cos_theta: np.ndarray = value("NaN where a tensor does not move", axes=LAYER)
    cos_gamma: np.ndarray = value(axes=LAYER)
    c_eff_gradient: np.ndarray = value(axes=LAYER)

    def coordinates(self) -> dict[str, list]:
        return {"layer": list(self.name)}


@dataclass(frozen=True)
class Thresholds:
    """Lemma-2 step sizes: with C = 1, with C_eff, and (as log10, C may overflow) with the formula's C."""

    lemma2: float
    lemma2_C_eff: float
    log10_lemma2_C: float = value("−∞ where C is infinite or cos θ ≤ 0 (no guaranteed descent)")
    log10_lemma2_C_layers: float = value("−∞ where C is infinite or cos θ ≤ 0 (no guaranteed descent)")
    log10_lemma2_C_layers_op: float = value("−∞ where C is infinite or cos θ ≤ 0 (no guaranteed descent)")


@dataclass(frozen=True)
class PointConstants:
    """Every constant at one point W (one depth, one epoch)."""

    depth_requested: int
    epoch: float
    layers: LayerConstants
    depth: int
    C_eff_function: float
    C_eff_function_max: float
    C_eff_gradient: float
    C_eff_gradient_first: float
    cos_theta_min: float
    thresholds: Thresholds
    loss: float
    C: float = value(SINGULAR + ", or beyond 1e308")
    C_layers: float = value(SINGULAR + ", or beyond 1e308")
    log10_C: float = value(SINGULAR)
    log10_C_layers: float = value(SINGULAR)
    log10_C_layers_op: float = value(SINGULAR)
    # the measurement batch's accuracy, each weight's full-batch gradient norm ‖g_l‖ and chance (1/classes): a
    # relative gradient change divides by ‖g_l‖, so C_eff at a memorised or untrained point measures the loss
    accuracy: float = value("not measured by trust ≤ 0.3", default=float("nan"))
    gradient_norm: np.ndarray = value(empty=True, axes=("layer",))
    chance: float = 0.1

    @property
    def tag(self) -> str:
        return "initialisation" if self.epoch == 0 else f"after {self.epoch:g} epochs"

    @property
    def flag(self) -> str:
        """Rule "flag" at this point: "zero loss", "at chance" (after training started) or ""."""
        return rules.flag(self.loss, self.accuracy, self.chance, trained=self.epoch > 0)


@dataclass(frozen=True)
class GrowthFit:
    """``ln v ≈ intercept + slope_per_layer·L``; ``factor_per_layer = e^slope``."""

    slope_per_layer: float
    intercept: float
    factor_per_layer: float = value(OVERFLOW)


@dataclass(frozen=True)
class Growth:
    """The fits at one epoch (``None``: fewer than 2 depths with a finite value)."""

    C_eff_gradient: GrowthFit | None
    C_eff_function: GrowthFit | None
    C_layers: GrowthFit | None
    C_layers_op: GrowthFit | None


@dataclass(frozen=True, eq=False)
class ConstantsResult(Result):
    direction: str
    eta_max: float
    rows: tuple[PointConstants, ...]
    growth: dict[str, Growth]  # by epoch, formatted with :g
    drt: tuple[Verdict, ...] | None = value(derived=True)  # per row: DRT with constant 1 from C_eff (rule "bound")

    def derive(self) -> ConstantsResult:
        return replace(self, drt=tuple(rules.bound(r.C_eff_gradient, 1) for r in self.rows))


def _op_over_frobenius(m) -> float:
    m = np.asarray(m, dtype=float)
    return float(np.linalg.norm(m, 2) / np.linalg.norm(m))


def _power10(log10_value: float) -> float:
    """10^x, ``inf`` beyond float64's range."""
    return 10.0**log10_value if log10_value < 308 else float("inf")


def _log10(x: float) -> float:
    return float(np.log10(x)) if x > 0 else float("-inf")


def layer_constants(net, params, x, u, grads, dist) -> LayerConstants:
    """α_l, β_l, κ(W_l), κ(U_l), ρ_l, c_l and their ρ form, cos θ_l, cos γ_l and each gradient's C_eff."""
    weights = np.flatnonzero(dist.is_weight)
    drt = bounds.drt_bound(dist.weight_relative_size)
    trans = estimate.transmission(net, params, x)
    # The last layer is linear: φ = identity, α = β = 1.
    trans = {k: np.append(v, 1.0) for k, v in trans.items()}
    w_leaves, u_leaves = leaves(params), leaves(u)
    k_w = np.array([estimate.conditioning(w_leaves[i]) for i in weights])
    k_u = np.array([estimate.conditioning(u_leaves[i]) for i in weights])
    # κ(U_l) only enters the proof through ‖U_l‖_op/‖W_l‖_op ≤ κ(U_l)·‖U_l‖_F/‖W_l‖_F; the measured ratio
    # ρ_l = (‖U_l‖_op/‖W_l‖_op)/(‖U_l‖_F/‖W_l‖_F) is finite even where U_l is singular (a gradient is).
    rho = np.array([_op_over_frobenius(u_leaves[i]) / _op_over_frobenius(w_leaves[i]) for i in weights])
    beta_lip = 1.0  # relu's Lipschitz constant
    with np.errstate(divide="ignore"):
        c_layers = k_w * k_u * beta_lip / trans["alpha"]
        c_op = k_w * np.maximum(rho, 1.0) * beta_lip / trans["alpha"]  # the induction absorbs ρ_l only where ρ_l ≥ 1
    return LayerConstants(
        name=tuple(dist.names[i] for i in weights),
        alpha=trans["alpha"],
        beta=trans["beta"],
        mean_transmission=trans["mean"],
        kappa_w=k_w,
        kappa_dw=k_u,
        op_over_frobenius=rho,
        c=c_layers,
        c_op=c_op,
        cos_theta=estimate.cos_theta(u, grads)[weights],
        cos_gamma=estimate.cos_gamma(params, grads)[weights],
        c_eff_gradient=np.array([estimate.effective_constant(dist.gradient[:, i], drt) for i in weights]),
    )


def constants_at(net, params, x, y, kind: str, etas, key, depth_requested: int, epoch: float) -> PointConstants:
    """Every constant at one point W (see the module docstring)."""
    grads = measure.full_batch_gradient(net.apply, params, x, y)
    _, accuracy = cell.loss_and_accuracy(net.apply, params, x, y)
    n_classes = net.apply(params, x[:1]).shape[-1]
    u = perturb.direction(kind, params, grads, key)
    dist = measure.relative_distances(net.apply, params, x, y, u, etas)
    lay = layer_constants(net, params, x, u, grads, dist)
    drt = bounds.drt_bound(dist.weight_relative_size)
    depth = len(lay.name)
    alpha_min, beta_lip = lay.alpha.min(), 1.0
    log10_c = (
        depth * _log10(max(lay.kappa_w.max(), lay.kappa_dw.max()) ** 2 * beta_lip / alpha_min)
        if alpha_min > 0
        else np.inf
    )
    log10_c_layers = float(np.sum(np.log10(lay.c)))
    log10_c_op = float(np.sum(np.log10(lay.c_op)))
    cos_min = float(np.nanmin(lay.cos_theta))
    c_eff = float(max(lay.c_eff_gradient))
    return PointConstants(
        depth_requested=depth_requested,
        epoch=float(epoch),
        layers=lay,
        depth=depth,
        C=_power10(log10_c),
        C_layers=_power10(log10_c_layers),
        log10_C=float(log10_c),
        log10_C_layers=log10_c_layers,
        log10_C_layers_op=log10_c_op,
        C_eff_function=estimate.effective_constant(dist.function_frob, drt),
        C_eff_function_max=estimate.effective_constant(dist.function_max, drt),
        C_eff_gradient=c_eff,
        C_eff_gradient_first=float(lay.c_eff_gradient[0]),
        cos_theta_min=cos_min,
        thresholds=Thresholds(
            lemma2=float(estimate.lemma2_threshold(cos_min, depth)),
            lemma2_C_eff=float(estimate.lemma2_threshold(cos_min, depth, c_eff)),
            log10_lemma2_C=log10_threshold(cos_min, depth, log10_c),
            log10_lemma2_C_layers=log10_threshold(cos_min, depth, log10_c_layers),
            log10_lemma2_C_layers_op=log10_threshold(cos_min, depth, log10_c_op),
        ),
        loss=dist.loss0,
        accuracy=float(accuracy),
        gradient_norm=np.asarray(leaf_norms(grads))[weight_indices(params)],
        chance=1.0 / n_classes,
    )


def log10_threshold(cos: float, depth: int, log10_constant: float) -> float:
    """``log10`` of the Lemma-2 threshold with constant C given as ``log10 C`` (C may overflow a float):
    exact below C = 1e15, else the asymptote ``cos/(L·C)`` (relative error < cos/C ≤ 1e-15)."""
    if not cos > 0:
        return float("-inf")  # no guaranteed descent
    if log10_constant < 15:
        return _log10(float(estimate.lemma2_threshold(cos, depth, 10.0**log10_constant)))
    return float(np.log10(cos / depth) - log10_constant)


def growth(depths, log10_values) -> GrowthFit | None:
    """Least-squares fit ``ln v ≈ a + b·L`` over the depths: the per-layer factor e^b (needs ≥ 2 finite
    depths), from ``log10 v`` so that astronomically large constants fit too."""
    depths, logs = np.asarray(depths, dtype=float), np.log(10.0) * np.asarray(log10_values, dtype=float)
    ok = np.isfinite(logs)
    if np.unique(depths[ok]).size < 2:
        return None
    b, a = np.polyfit(depths[ok], logs[ok], 1)
    factor = float(np.exp(b)) if b < 700 else float("inf")  # e^b overflows a float64 beyond ~709
    return GrowthFit(slope_per_layer=float(b), intercept=float(a), factor_per_layer=factor)


def run(config: ConstantsConfig) -> ConstantsResult:
    """Measure every constant at every (depth, epoch), and fit their growth with depth."""
    etas = np.linspace(0.0, config.eta_max, config.eta_steps)
    key = jax.random.fold_in(jax.random.key(config.seed), 7)  # the direction stream (random U)
    rows = []
    for depth in config.depths:
        tc = points.train_config(config.optimizer, depth, config.width, config.dataset, config.seed)
        ds, net, pts = points.checkpoints(tc, config.epochs)
        x, y = points.measurement_batch(ds, config.n_examples)
        rows += [constants_at(net, params, x, y, config.perturb, etas, key, depth, epoch) for epoch, params in pts]
    fits = {}
    for epoch in sorted({r.epoch for r in rows}):
        sel = [r for r in rows if r.epoch == epoch and not r.flag]  # rule flag: such points are reported apart
        depths = [r.depth for r in sel]
        fits[f"{epoch:g}"] = Growth(
            C_eff_gradient=growth(depths, np.log10([r.C_eff_gradient for r in sel])),
            C_eff_function=growth(depths, np.log10([r.C_eff_function for r in sel])),
            C_layers=growth(depths, [r.log10_C_layers for r in sel]),
            C_layers_op=growth(depths, [r.log10_C_layers_op for r in sel]),
        )
    return ConstantsResult(direction=config.perturb, eta_max=config.eta_max, rows=tuple(rows), growth=fits).derive()


def paper_configs(quick: bool, seed: int) -> dict[str, ConstantsConfig]:
    return {
        "constants": ConstantsConfig(
            depths=(2, 8, 16) if quick else (2, 4, 8, 16),
            epochs=(0.0, 2.0) if quick else (0.0, 10.0),
            width=64 if quick else 128,
            eta_steps=25 if quick else 100,
            seed=seed,
        )
    }


EXPERIMENT = Experiment(
    ConstantsConfig,
    ConstantsResult,
    run,
    paper_configs,
    help="α, β, κ per layer, C = (κ²β/α)^L, the effective constant C_eff, cos θ, cos γ",
)
