"""Gradient breakdown (THEORY §5, paper Figure 1): move a network along one fixed direction by relative
steps η and record the loss and the relative function and gradient distances, beside the bounds.

At the base point W (here: initialisation), with direction U from :mod:`trust.perturb` and
``ΔW(η) = η·U``, the grid is evaluated in one jitted call (:func:`trust.measure.relative_distances`).
Compared against: the DRT assumption ``∏(1 + a_l) − 1`` (a modelling assumption — its violation factor
is reported, never asserted), the Lipschitz-smooth linear prediction with λ fitted on the smallest
perturbation, and, for Theorem-1 nets, the operator-norm bound (a theorem).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from trust import bounds, data, measure, nets, perturb
from trust.config import Config
from trust.errors import TrustError
from trust.experiments import points

NET_KINDS = ("mlp", "residual", "theorem1")


@dataclass(frozen=True)
class BreakdownConfig(Config):
    """Everything that determines a breakdown run (recorded in its ``config.json``)."""

    depth: int = 16
    width: int = 128
    net: str = "mlp"  # mlp | residual | theorem1
    activation: str = "relu"
    slope: float = 0.01
    init: str = "torch"
    perturb: str = "gradient"  # gradient | random | scaled | single | madam
    layer: int = 1  # the weight matrix moved by perturb=single (1-based)
    eta_max: float = 0.099
    eta_steps: int = 100
    dataset: str = "digits"
    n_examples: int = 0  # 0: the whole training set
    loss: str = "xent"
    seed: int = 0
    x64: bool = False

    def __post_init__(self):
        if self.net not in NET_KINDS:
            raise TrustError(f"unknown net {self.net!r}; choose one of {', '.join(NET_KINDS)}")
        if self.perturb not in perturb.KINDS:
            raise TrustError(f"unknown perturbation {self.perturb!r}; choose one of {', '.join(perturb.KINDS)}")
        if self.depth < 1 or self.width < 1:
            raise TrustError(f"depth and width must be ≥ 1, got {self.depth} and {self.width}")
        if self.net == "residual" and self.depth < 3:
            raise TrustError("a residual MLP needs depth ≥ 3 (residual hidden layers sit between the first and last)")
        if not 1 <= self.layer <= self.depth:
            raise TrustError(f"--layer must lie in 1..{self.depth}, got {self.layer}")
        if not (np.isfinite(self.eta_max) and self.eta_max > 0) or self.eta_steps < 2:
            raise TrustError("the η grid needs eta_max > 0 (finite) and eta_steps ≥ 2")
        if self.n_examples < 0:
            raise TrustError(f"n_examples must be ≥ 0, got {self.n_examples}")

    @property
    def etas(self) -> np.ndarray:
        """``0, …, eta_max`` in ``eta_steps`` equal steps (the paper: 0, 0.001, …, 0.099)."""
        return np.linspace(0.0, self.eta_max, self.eta_steps)


def build_net(config: BreakdownConfig, d_in: int, n_out: int) -> nets.MLP:
    if config.net == "theorem1":
        widths = (d_in,) + (config.width,) * (config.depth - 1) + (n_out,)
        return nets.theorem1_mlp(widths, config.activation, config.slope, config.init)
    return nets.experiment_mlp(d_in, config.width, config.depth, n_out, config.activation, config.slope,
                               residual=config.net == "residual", init_scheme=config.init)


def _ratio(measured, bound):
    """measured / bound, NaN where the bound is 0 (η = 0)."""
    bound = np.asarray(bound, dtype=float)
    return np.where(bound > 0, measured / np.where(bound > 0, bound, 1.0), np.nan)


def run(config: BreakdownConfig) -> tuple[dict, dict]:
    """Run the breakdown measurement; returns JSON-ready ``results`` and ``arrays`` for the npz."""
    with jax.enable_x64(config.x64):
        key = jax.random.key(config.seed)
        k_data, k_init, k_dir = (jax.random.fold_in(key, i) for i in range(3))
        ds = data.load(config.dataset, k_data)
        x, y = points.measurement_batch(ds, config.n_examples)
        net = build_net(config, x.shape[1], ds.n_classes)
        params = net.init(k_init)
        grads = measure.full_batch_gradient(net.apply, params, x, y, config.loss)
        u = perturb.direction(config.perturb, params, grads, k_dir, config.layer)
        dist = measure.relative_distances(net.apply, params, x, y, u, config.etas, loss=config.loss)
        extra = _operator_norm_check(config, params, u, x, dist) if config.net == "theorem1" else {}

    etas = dist.etas
    drt = bounds.drt_bound(dist.weight_relative_size)
    # THEORY counts weight matrices only; the paper's slice moves the biases too, so report the bound
    # with every moved tensor counted as a factor as well (zero-norm tensors contribute a = 0).
    drt_all = bounds.drt_bound(dist.relative_size)
    weights = [i for i, w in enumerate(dist.is_weight) if w]
    first = weights[0]
    grad_w = dist.gradient[:, weights]
    # Lipschitz-smooth model: each curve extrapolated linearly from its smallest nonzero perturbation.
    lam_first = bounds.secant_lipschitz(dist.gradient_change[:, first], dist.delta_norm)
    lam_total = bounds.secant_lipschitz(dist.gradient_total_change, dist.delta_norm)
    lip_first = bounds.lipschitz_prediction(lam_first, dist.delta_norm, dist.gradient_norm[first])
    lip_total = bounds.lipschitz_prediction(lam_total, dist.delta_norm, np.linalg.norm(dist.gradient_norm))

    ratios = {
        "gradient_first_over_drt": _ratio(dist.gradient[:, first], drt),
        "gradient_max_over_drt": _ratio(grad_w.max(axis=1), drt),
        "gradient_max_over_drt_all_tensors": _ratio(grad_w.max(axis=1), drt_all),
        "function_frob_over_drt": _ratio(dist.function_frob, drt),
        "function_max_over_drt": _ratio(dist.function_max, drt),
        "gradient_first_over_lipschitz": _ratio(dist.gradient[:, first], lip_first),
        "gradient_total_over_lipschitz": _ratio(dist.gradient_total, lip_total),
    }
    at = int(np.argmin(np.abs(etas - 0.05))) if etas[-1] >= 0.05 else len(etas) - 1
    summary = {
        "eta_probe": float(etas[at]),
        **{f"{k}_at_probe": float(v[at]) for k, v in ratios.items()},
        **{f"{k}_max": float(np.nanmax(v)) for k, v in ratios.items() if "drt" in k},
        "drt_violated_fraction_gradient": float(np.mean(ratios["gradient_max_over_drt"][1:] > 1)),
        "loss0": dist.loss0,
        "loss_at_max_eta": float(dist.loss[-1]),
        "n_zero_output": dist.n_zero_output,
        **extra.get("summary", {}),
    }
    results = {
        "net": {"kind": config.net, "widths": list(net.widths), "depth": net.depth,
                "n_params": int(sum(p.size for p in jax.tree_util.tree_leaves(params))),
                "n_examples": int(x.shape[0])},
        "names": list(dist.names),
        "weight_names": [dist.names[i] for i in weights],
        "eta": etas,
        "loss": dist.loss,
        "function": {"max": dist.function_max, "mean": dist.function_mean, "frob": dist.function_frob},
        "gradient": {n: dist.gradient[:, i] for i, n in enumerate(dist.names)},
        "gradient_total": dist.gradient_total,
        "bounds": {
            "drt": drt,
            "drt_all_tensors": drt_all,
            "lipschitz": {"lambda_first": lam_first, "lambda_total": lam_total,
                          "gradient_first": lip_first, "gradient_total": lip_total},
            **({"operator_norm": extra["bound"]} if extra else {}),
        },
        "ratios": ratios,
        "summary": summary,
    }
    arrays = {
        "eta": etas, "loss": dist.loss, "function_change": dist.function_change, "output_norm": dist.output_norm,
        "batch_change": dist.batch_change, "gradient_change": dist.gradient_change,
        "gradient_norm": dist.gradient_norm, "relative_size": dist.relative_size, "delta_norm": dist.delta_norm,
        "drt_bound": drt,
    }
    return results, arrays


def _operator_norm_check(config, params, u, x, dist) -> dict:
    """The operator-norm bound (THEORY §2.3) per example on the grid — a theorem, so its ratio is ≤ 1."""
    if config.activation == "leaky_relu" and abs(config.slope) > 1:
        return {}  # φ is not 1-Lipschitz: the theorem does not apply
    w_op = bounds.operator_norms([p["w"] for p in params])
    u_op = bounds.operator_norms([d["w"] for d in u])
    x_norm = np.linalg.norm(np.asarray(x), axis=-1)
    per_eta = bounds.operator_norm_bound(w_op, dist.etas[:, None] * u_op, 1.0)  # ∏‖W‖·[∏(1+r) − 1]
    bound = per_eta[:, None] * x_norm[None, :]
    ratio = np.max(_ratio(dist.function_change, bound), axis=1, initial=0.0, where=bound > 0)
    return {"bound": {"max_over_examples_of_measured_over_bound": ratio},
            "summary": {"operator_norm_max_ratio": float(ratio.max())}}
