"""Gradient breakdown (docs/theory.md §5, paper Figure 1): move a network along one fixed direction by
relative steps η and record the loss and the relative function and gradient distances, beside the bounds.

At the base point W (here: initialisation), with direction U from :mod:`trust.core.perturb` and
``ΔW(η) = η·U``, the grid is evaluated in one jitted call (:func:`trust.core.measure.relative_distances`).
Compared against: the DRT assumption ``∏(1 + a_l) − 1`` (a modelling assumption — its violation factor
is reported, never asserted), the Lipschitz-smooth linear prediction with λ fitted on the smallest
perturbation, and, for Theorem-1 nets, the operator-norm bound (a theorem, docs/theory.md §2.3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import jax
import numpy as np

from trust.base import linalg, spec
from trust.base.errors import TrustError
from trust.base.schema import Config, Result, Verdict, param, value
from trust.base.tree import leaf_names, leaves
from trust.core import bounds, data, losses, measure, nets, perturb
from trust.experiments.shared import own_model, points, rules
from trust.experiments.shared.runner import Experiment

ETA0 = "the bound is 0 at η = 0, where the measurement is 0 too"

# name → ``build(config, d_in, n_out)``
NETS: dict[str, Callable] = {
    "mlp": lambda c, d_in, n_out: nets.experiment_mlp(
        d_in, c.width, c.depth, n_out, c.activation, c.slope, init_scheme=c.init
    ),
    "residual": lambda c, d_in, n_out: nets.experiment_mlp(
        d_in, c.width, c.depth, n_out, c.activation, c.slope, residual=True, init_scheme=c.init
    ),
    "theorem1": lambda c, d_in, n_out: nets.theorem1_mlp(
        (d_in,) + (c.width,) * (c.depth - 1) + (n_out,), c.activation, c.slope, c.init
    ),
}


@dataclass(frozen=True)
class BreakdownConfig(Config):
    """Everything that determines a breakdown run (recorded in its ``config.json``)."""

    depth: int = param(16, "L, the number of weight matrices", minimum=1)
    width: int = param(128, "hidden width", minimum=1)
    net: str = param(
        "mlp",
        "mlp: biases + linear last layer; residual: h + φ(Wh + b) hidden layers; theorem1: no biases, φ everywhere",
        choices=NETS,
    )
    activation: str = param("relu", "the nonlinearity φ", choices=nets.ACTIVATIONS)
    slope: float = param(0.01, "leaky relu's negative slope")
    init: str = param("torch", "initialisation", choices=nets.INITS)
    perturb: str = param(
        "gradient",
        "gradient: −g/‖g‖ per tensor (paper Fig. 1); random; scaled: ΔW = ηW; "
        "single: one layer along −g; madam: −|W|⊙sign g",
        choices=perturb.DIRECTIONS,
    )
    layer: int = param(1, "the weight matrix moved by --perturb single", minimum=1)
    eta_max: float = param(0.099, "largest η of the grid", minimum=0)
    eta_steps: int = param(100, "points of the η grid 0 … eta_max", minimum=2)
    dataset: str = param("digits", "a built-in data set", choices=data.names(data.SMALL))
    n_examples: int = param(0, "measure on the first n training examples; 0: all", minimum=0)
    loss: str = param("xent", "the loss", choices=losses.LOSSES)
    seed: int = param(0, "random seed")
    x64: bool = param(False, "compute in float64")
    model_file: str = own_model.model_file_param()  # instead of --net
    architecture: str = own_model.architecture_param()
    image: tuple[int, ...] = own_model.image_param()
    model_sha256: str = own_model.sha256_param()

    def validate(self):
        own_model.validate(self)
        if self.net == "residual" and self.depth < 3:
            raise TrustError("a residual MLP needs depth ≥ 3 (residual hidden layers sit between the first and last)")
        if self.layer > self.depth and not self.model_file:
            raise TrustError(f"layer must lie in 1..{self.depth}, got {self.layer}")
        if not self.eta_max > 0:
            raise TrustError(f"eta_max must be > 0, got {self.eta_max}")

    @property
    def etas(self) -> np.ndarray:
        """``0, …, eta_max`` in ``eta_steps`` equal steps (the paper: 0, 0.001, …, 0.099)."""
        return np.linspace(0.0, self.eta_max, self.eta_steps)


@dataclass(frozen=True)
class NetInfo:
    kind: str  # a --net choice, or "own" (--model-file)
    widths: tuple[int, ...]
    depth: int
    n_params: int
    n_examples: int
    source: str = ""  # an own model's source (trust.core.adapters.Model.source)
    roles: tuple[str, ...] = ()  # an own model's spec, one role per tensor (trust.base.spec.Leaf.describe)

    @property
    def label(self) -> str:
        return f"L={self.depth}" + (" residual" if self.kind == "residual" else "")


@dataclass(frozen=True)
class Ratios:
    """Measured / bound at every η (NaN at η = 0, where both are 0)."""

    gradient_first_over_drt: np.ndarray = value(ETA0)
    gradient_max_over_drt: np.ndarray = value(ETA0)
    gradient_max_over_drt_all_tensors: np.ndarray = value(ETA0)
    function_frob_over_drt: np.ndarray = value(ETA0)
    function_max_over_drt: np.ndarray = value(ETA0)
    gradient_first_over_lipschitz: np.ndarray = value(ETA0)
    gradient_total_over_lipschitz: np.ndarray = value(ETA0)


@dataclass(frozen=True)
class BreakdownVerdicts:
    """The run's verdicts: DRT with constant 1 (worst layer over the grid), the Lipschitz model's linearity at the
    probe η, the exact homogeneous case (largest relative gap to (1+η)^L − 1: an identity, meaningful for the
    ``scaled`` direction on Theorem-1 nets) and the operator-norm theorem (Theorem-1 nets)."""

    drt: Verdict
    worst_all_tensors: float  # the same worst ratio with biases counted as layers
    drt_worst_eta: float  # where on the η grid the worst layer gradient/DRT sits (small η: relu kinks)
    linear: Verdict
    exact: Verdict = value("the gap is undefined where the closed form is 0 (η = 0 only)")
    operator: Verdict | None = None


@dataclass(frozen=True, eq=False)
class BreakdownResult(Result):
    """Distances along the grid, the bounds, and their ratios; the raw changes are bulk arrays."""

    net: NetInfo
    names: tuple[str, ...]  # every tensor, flatten order
    weight_names: tuple[str, ...]
    eta: np.ndarray = value(axes=("eta",))
    loss: np.ndarray = value(axes=("eta",))  # the loss along the path
    loss0: float = value()
    n_zero_output: int = value()
    function_max: np.ndarray = value("every example's base output is 0", axes=("eta",))
    function_mean: np.ndarray = value("every example's base output is 0", axes=("eta",))
    function_frob: np.ndarray = value(axes=("eta",))
    gradient: np.ndarray = value(axes=("eta", "tensor"))  # (η, tensor) relative gradient distance
    gradient_total: np.ndarray = value(axes=("eta",))
    drt: np.ndarray = value(axes=("eta",))  # ∏(1 + a_l) − 1 over the weight matrices
    drt_all_tensors: np.ndarray = value(axes=("eta",))  # … with every moved tensor (biases too) counted as a layer
    lambda_first: float = value()  # Lipschitz λ fitted at the smallest perturbation
    lambda_total: float = value()
    lipschitz_first: np.ndarray = value(axes=("eta",))  # predicted relative gradient distance of layer 1
    lipschitz_total: np.ndarray = value(axes=("eta",))
    ratios: Ratios = value()
    operator_norm_ratio: np.ndarray | None = value(ETA0, default=None)  # theorem1 nets: max_x measured/bound
    # the raw changes (trust.core.measure.Distances): examples in the measurement batch's order
    function_change: np.ndarray = value(bulk=True, default=None, axes=("eta", "example"))
    output_norm: np.ndarray = value(bulk=True, default=None, axes=("example",))
    batch_change: np.ndarray = value(bulk=True, default=None, axes=("eta",))
    gradient_change: np.ndarray = value(bulk=True, default=None, axes=("eta", "tensor"))
    gradient_norm: np.ndarray = value(bulk=True, default=None, axes=("tensor",))
    relative_size: np.ndarray = value(bulk=True, default=None, axes=("eta", "tensor"))
    delta_norm: np.ndarray = value(bulk=True, default=None, axes=("eta",))
    verdicts: BreakdownVerdicts | None = value(derived=True)

    def derive(self) -> BreakdownResult:
        r, k = self.ratios, self.probe
        worst = float(np.nanmax(r.gradient_max_over_drt))
        worst_eta = float(self.eta[int(np.nanargmax(r.gradient_max_over_drt))])
        exact_gap = float(np.max(np.abs(self.function_max[1:] - self.drt[1:]) / self.drt[1:]))
        operator = None
        if self.operator_norm_ratio is not None:
            ratios = self.operator_norm_ratio[np.isfinite(self.operator_norm_ratio)]
            operator = rules.theorem(int(np.sum(ratios > 1)), float(np.median(ratios)), float(ratios.max()), 1)
        verdicts = BreakdownVerdicts(
            drt=rules.bound(worst, 1),
            worst_all_tensors=float(np.nanmax(r.gradient_max_over_drt_all_tensors)),
            drt_worst_eta=worst_eta,
            linear=rules.linear(r.gradient_first_over_lipschitz[k], r.gradient_total_over_lipschitz[k]),
            exact=rules.identity(exact_gap),
            operator=operator,
        )
        return replace(self, verdicts=verdicts)

    @property
    def first(self) -> int:
        """Index (among all tensors) of the first weight matrix."""
        return self.names.index(self.weight_names[0])

    @property
    def probe(self) -> int:
        """The grid point nearest η = 0.05 (the last one if the grid stops short of it)."""
        return int(np.argmin(np.abs(self.eta - 0.05))) if self.eta[-1] >= 0.05 else len(self.eta) - 1

    def at_eta(self, target: float) -> int:
        """Index of the grid point nearest ``target``."""
        return int(np.argmin(np.abs(self.eta - target)))

    def coordinates(self) -> dict[str, list]:
        return {"eta": list(self.eta), "tensor": list(self.names)}


def _ratio(measured, bound):
    """measured / bound, NaN where the bound is 0 (η = 0)."""
    bound = np.asarray(bound, dtype=float)
    return np.where(bound > 0, measured / np.where(bound > 0, bound, 1.0), np.nan)


def _floats(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _own_model(config: BreakdownConfig):
    """An own model's NetInfo, parameters, batch, direction and distances (``--model-file``); ``single`` moves its
    ``layer``-th layer by the spec."""
    with jax.enable_x64(config.x64):
        key = jax.random.key(config.seed)
        model, x, y = own_model.load(
            config.model_file, config.architecture, config.image, config.dataset, jax.random.fold_in(key, 0),
            config.n_examples,
        )  # fmt: skip
        grads = measure.full_batch_gradient(model.apply, model.params, x, y, config.loss)
        layers = [
            n for n, leaf in zip(leaf_names(model.params), spec.resolve(model.params, model.spec)) if leaf.is_layer
        ]
        if config.perturb == "single" and config.layer > len(layers):
            raise TrustError(f"layer must lie in 1..{len(layers)} (the model's layers), got {config.layer}")
        if config.perturb == "single":
            u = perturb.single_layer(perturb.along_gradient(model.params, grads), layers[config.layer - 1])
        else:
            u = perturb.direction(config.perturb, model.params, grads, jax.random.fold_in(key, 2), config.layer)
        dist = measure.relative_distances(model.apply, model.params, x, y, u, config.etas, config.loss, spec=model.spec)
    roles = tuple(model.spec[n].describe() for n in dist.names)
    n_params = int(sum(p.size for p in leaves(model.params)))
    info = NetInfo("own", (), len(layers), n_params, int(x.shape[0]), model.source, roles)
    return info, model.params, x, u, dist


def measure_at_init(config: BreakdownConfig):
    """The net, its parameters, the measurement batch, the direction and the distances along it."""
    with jax.enable_x64(config.x64):
        key = jax.random.key(config.seed)
        k_data, k_init, k_dir = (jax.random.fold_in(key, i) for i in range(3))
        ds = data.load(config.dataset, k_data)
        x, y = points.measurement_batch(ds, config.n_examples)
        net = NETS[config.net](config, x.shape[1], ds.n_classes)
        params = net.init(k_init)
        grads = measure.full_batch_gradient(net.apply, params, x, y, config.loss)
        u = perturb.direction(config.perturb, params, grads, k_dir, config.layer)
        dist = measure.relative_distances(net.apply, params, x, y, u, config.etas, loss=config.loss)
    return net, params, x, u, dist


def run(config: BreakdownConfig) -> BreakdownResult:
    """Measure the breakdown slice at initialisation (or at an own model's parameters) and hold it against the
    bounds."""
    if config.model_file:
        info, params, x, u, dist = _own_model(config)
    else:
        net, params, x, u, dist = measure_at_init(config)
        n_params = int(sum(p.size for p in leaves(params)))
        info = NetInfo(config.net, tuple(net.widths), net.depth, n_params, int(x.shape[0]))
    weights = np.flatnonzero(dist.is_weight)
    first = weights[0]
    drt = bounds.drt_bound(dist.weight_relative_size)
    # docs/theory.md counts weight matrices only; the paper's slice moves the biases too, so report the bound
    # with every moved tensor counted as a factor as well (zero-norm tensors contribute a = 0).
    drt_all = bounds.drt_bound(dist.relative_size)
    grad_w = dist.gradient[:, weights]
    # Lipschitz-smooth model: each curve extrapolated linearly from its smallest nonzero perturbation.
    lam_first = bounds.secant_lipschitz(dist.gradient_change[:, first], dist.delta_norm)
    lam_total = bounds.secant_lipschitz(dist.gradient_total_change, dist.delta_norm)
    lip_first = bounds.lipschitz_prediction(lam_first, dist.delta_norm, dist.gradient_norm[first])
    lip_total = bounds.lipschitz_prediction(lam_total, dist.delta_norm, np.linalg.norm(dist.gradient_norm))
    ratios = Ratios(
        gradient_first_over_drt=_ratio(dist.gradient[:, first], drt),
        gradient_max_over_drt=_ratio(grad_w.max(axis=1), drt),
        gradient_max_over_drt_all_tensors=_ratio(grad_w.max(axis=1), drt_all),
        function_frob_over_drt=_ratio(dist.function_frob, drt),
        function_max_over_drt=_ratio(dist.function_max, drt),
        gradient_first_over_lipschitz=_ratio(dist.gradient[:, first], lip_first),
        gradient_total_over_lipschitz=_ratio(dist.gradient_total, lip_total),
    )
    opnorm = (
        _operator_norm_ratio(config, params, u, x, dist) if config.net == "theorem1" and not config.model_file else None
    )
    bulk: dict[str, Any] = {f: np.asarray(getattr(dist, f)) for f in BULK}
    return BreakdownResult(
        net=info,
        names=dist.names,
        weight_names=tuple(dist.names[i] for i in weights),
        eta=_floats(dist.etas),
        loss=_floats(dist.loss),
        loss0=dist.loss0,
        n_zero_output=dist.n_zero_output,
        function_max=_floats(dist.function_max),
        function_mean=_floats(dist.function_mean),
        function_frob=_floats(dist.function_frob),
        gradient=_floats(dist.gradient),
        gradient_total=_floats(dist.gradient_total),
        drt=drt,
        drt_all_tensors=drt_all,
        lambda_first=lam_first,
        lambda_total=lam_total,
        lipschitz_first=_floats(lip_first),
        lipschitz_total=_floats(lip_total),
        ratios=ratios,
        operator_norm_ratio=opnorm,
        **bulk,
    ).derive()


BULK = (
    "function_change",
    "output_norm",
    "batch_change",
    "gradient_change",
    "gradient_norm",
    "relative_size",
    "delta_norm",
)


def _operator_norm_ratio(config, params, u, x, dist) -> np.ndarray | None:
    """The operator-norm bound (docs/theory.md §2.3) per example on the grid — a theorem, so max_x of
    measured/bound is ≤ 1 at every η. ``None`` where φ is not 1-Lipschitz (the theorem does not apply)."""
    if config.activation == "leaky_relu" and abs(config.slope) > 1:
        return None
    w_op = linalg.operator_norms([{"w": p["w"]} for p in params])
    u_op = linalg.operator_norms([{"w": d["w"]} for d in u])
    x_norm = np.linalg.norm(np.asarray(x), axis=-1)
    per_eta = bounds.operator_norm_bound(w_op, dist.etas[:, None] * u_op, 1.0)  # ∏‖W‖·[∏(1+r) − 1]
    bound = per_eta[:, None] * x_norm[None, :]
    ratio = np.max(_ratio(dist.function_change, bound), axis=1, initial=0.0, where=bound > 0)
    return np.where(per_eta > 0, ratio, np.nan)


# ------------------------------------------------------------------------------------------------ figures


# ------------------------------------------------------------------------------------------------ report


# ------------------------------------------------------------------------------------------------ paper

DEPTHS = (2, 4, 8, 16)


def paper_configs(quick: bool, seed: int) -> dict[str, BreakdownConfig]:
    """The paper's Figure-1 slice and a random direction across depths, a residual net, and the theorem nets
    (exact homogeneous case, operator-norm bound)."""
    common: dict[str, Any] = dict(width=64 if quick else 128, eta_steps=25 if quick else 100, seed=seed)
    runs = {}
    for kind in ("gradient", "random"):
        for depth in DEPTHS:
            runs[f"breakdown_{kind}_L{depth}"] = BreakdownConfig(depth=depth, perturb=kind, **common)
    runs["breakdown_gradient_L16_residual"] = BreakdownConfig(depth=16, net="residual", **common)
    t1: dict[str, Any] = dict(net="theorem1", activation="leaky_relu", slope=0.1, init="gaussian", x64=True, **common)
    for depth in DEPTHS:
        runs[f"exact_L{depth}"] = BreakdownConfig(depth=depth, perturb="scaled", **t1)
        runs[f"opnorm_L{depth}"] = BreakdownConfig(depth=depth, perturb="random", **t1)
    return runs


EXPERIMENT = Experiment(
    BreakdownConfig,
    BreakdownResult,
    run,
    paper_configs,
    help="relative function/gradient distance along a perturbation vs the bounds",
)
