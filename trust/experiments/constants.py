"""The constants of the theory measured on a real network (THEORY §2.2, §3): transmission α_l, β_l,
conditioning κ of each W_l and ΔW_l, the Theorem-1 constant C = (κ²β/α)^L (and its per-layer form
∏ c_l), the effective constant C_eff that makes DRT hold on the measured distances, cos θ and cos γ,
and the Lemma-2 thresholds they imply — at initialisation and after training, across depths.

For each depth: the experiment MLP of :mod:`trust.train` (digits, relu, biases, linear last layer) at
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

from dataclasses import dataclass

import jax
import numpy as np

from trust import bounds, estimate, measure, perturb, train
from trust.config import Config
from trust.errors import TrustError
from trust.experiments import points

DIRECTIONS = ("gradient", "madam", "random")


@dataclass(frozen=True)
class ConstantsConfig(Config):
    """Everything that determines a constants run (recorded in its ``config.json``)."""

    depths: tuple[int, ...] = (16,)
    width: int = 128
    perturb: str = "gradient"  # gradient | madam | random
    epochs: tuple[float, ...] = (0.0,)  # training epochs to measure at (0: initialisation)
    optimizer: str = "fromage"
    eta_max: float = 0.099
    eta_steps: int = 100
    dataset: str = "digits"
    n_examples: int = 0  # measure on the first n training examples; 0: all
    seed: int = 0

    def __post_init__(self):
        points.check_sweep(self.depths, self.epochs, self.n_examples)
        if self.perturb not in DIRECTIONS:
            raise TrustError(f"unknown direction {self.perturb!r}; choose one of {', '.join(DIRECTIONS)}")
        if not (np.isfinite(self.eta_max) and self.eta_max > 0) or self.eta_steps < 2:
            raise TrustError("the η grid needs eta_max > 0 (finite) and eta_steps ≥ 2")
        train.TrainConfig(optimizer=self.optimizer)  # validates the optimiser name

    def train_config(self, depth: int) -> train.TrainConfig:
        return train.TrainConfig(optimizer=self.optimizer, depth=depth, width=self.width, dataset=self.dataset,
                                 seed=self.seed)


def _op_over_frobenius(m) -> float:
    m = np.asarray(m, dtype=float)
    return float(np.linalg.norm(m, 2) / np.linalg.norm(m))


def _power10(log10_value: float) -> float:
    """10^x, ``inf`` beyond float64's range (stored as JSON null, like every infinity in a run)."""
    return 10.0**log10_value if log10_value < 308 else float("inf")


def _log10(x: float) -> float:
    return float(np.log10(x)) if x > 0 else float("-inf")


def at_point(net, params, x, y, kind: str, etas, key) -> dict:
    """Every constant at one point W (see the module docstring)."""
    grads = measure.full_batch_gradient(net.apply, params, x, y)
    u = perturb.direction(kind, params, grads, key)
    dist = measure.relative_distances(net.apply, params, x, y, u, etas)
    weights = [i for i, w in enumerate(dist.is_weight) if w]
    drt = bounds.drt_bound(dist.weight_relative_size)
    c_eff_grad = [estimate.effective_constant(dist.gradient[:, i], drt) for i in weights]

    trans = estimate.transmission(net, params, x)
    leaves = jax.tree_util.tree_leaves(params)
    u_leaves = jax.tree_util.tree_leaves(u)
    k_w = np.array([estimate.conditioning(leaves[i]) for i in weights])
    k_u = np.array([estimate.conditioning(u_leaves[i]) for i in weights])
    # The last layer is linear: φ = identity, α = β = 1.
    trans = {k: np.append(v, 1.0) for k, v in trans.items()}
    alpha = trans["alpha"]
    beta_lip = 1.0  # relu's Lipschitz constant
    # κ(U_l) only enters the proof through ‖U_l‖_op/‖W_l‖_op ≤ κ(U_l)·‖U_l‖_F/‖W_l‖_F; the measured ratio
    # ρ_l = (‖U_l‖_op/‖W_l‖_op)/(‖U_l‖_F/‖W_l‖_F) is finite even where U_l is singular (a gradient is).
    rho = np.array([_op_over_frobenius(u_leaves[i]) / _op_over_frobenius(leaves[i]) for i in weights])
    with np.errstate(divide="ignore"):
        c_layers = k_w * k_u * beta_lip / alpha
        c_op = k_w * np.maximum(rho, 1.0) * beta_lip / alpha  # the induction absorbs ρ_l only where ρ_l ≥ 1
    depth = len(weights)
    log10_c = depth * _log10(max(k_w.max(), k_u.max()) ** 2 * beta_lip / alpha.min()) if alpha.min() > 0 else np.inf
    cos_t = estimate.cos_theta(u, grads)[weights]
    cos_g = estimate.cos_gamma(params, grads)[weights]
    cos_min = float(np.nanmin(cos_t))
    c_eff = max(c_eff_grad)
    log10_c_layers = float(np.sum(np.log10(c_layers)))
    log10_c_op = float(np.sum(np.log10(c_op)))
    return {
        "layers": {
            "name": [dist.names[i] for i in weights],
            "alpha": trans["alpha"], "beta": trans["beta"], "mean_transmission": trans["mean"],
            "kappa_w": k_w, "kappa_dw": k_u, "op_over_frobenius": rho, "c": c_layers, "c_op": c_op,
            "cos_theta": cos_t, "cos_gamma": cos_g, "c_eff_gradient": c_eff_grad,
        },
        "depth": depth,
        "C": _power10(log10_c),
        "C_layers": _power10(log10_c_layers),
        "log10_C": log10_c,
        "log10_C_layers": log10_c_layers,
        "log10_C_layers_op": log10_c_op,
        "C_eff_function": estimate.effective_constant(dist.function_frob, drt),
        "C_eff_function_max": estimate.effective_constant(dist.function_max, drt),
        "C_eff_gradient": c_eff,
        "C_eff_gradient_first": c_eff_grad[0],
        "cos_theta_min": cos_min,
        "thresholds": {
            "lemma2": float(estimate.lemma2_threshold(cos_min, depth)),
            "lemma2_C_eff": float(estimate.lemma2_threshold(cos_min, depth, c_eff)),
            "log10_lemma2_C": log10_threshold(cos_min, depth, log10_c),
            "log10_lemma2_C_layers": log10_threshold(cos_min, depth, log10_c_layers),
            "log10_lemma2_C_layers_op": log10_threshold(cos_min, depth, log10_c_op),
        },
        "loss": dist.loss0,
    }


def log10_threshold(cos: float, depth: int, log10_constant: float) -> float:
    """``log10`` of the Lemma-2 threshold with constant C given as ``log10 C`` (C may overflow a float):
    exact below C = 1e15, else the asymptote ``cos/(L·C)`` (relative error < cos/C ≤ 1e-15)."""
    if not cos > 0:
        return float("-inf")  # no guaranteed descent
    if log10_constant < 15:
        return _log10(float(estimate.lemma2_threshold(cos, depth, 10.0**log10_constant)))
    return float(np.log10(cos / depth) - log10_constant)


def growth(depths, log10_values) -> dict:
    """Least-squares fit ``ln v ≈ a + b·L`` over the depths: the per-layer factor e^b (needs ≥ 2 finite
    depths), from ``log10 v`` so that astronomically large constants fit too."""
    depths, logs = np.asarray(depths, dtype=float), np.log(10.0) * np.asarray(log10_values, dtype=float)
    ok = np.isfinite(logs)
    if np.unique(depths[ok]).size < 2:
        return {}
    b, a = np.polyfit(depths[ok], logs[ok], 1)
    factor = float(np.exp(b)) if b < 700 else float("inf")  # e^b overflows a float64 beyond ~709
    return {"slope_per_layer": float(b), "factor_per_layer": factor, "intercept": float(a)}


def run(config: ConstantsConfig) -> tuple[dict, dict]:
    """Measure every constant at every (depth, epoch); JSON-ready results and per-layer arrays."""
    etas = np.linspace(0.0, config.eta_max, config.eta_steps)
    key = jax.random.fold_in(jax.random.key(config.seed), 7)  # the direction stream (random U)
    rows, arrays = [], {}
    for depth in config.depths:
        ds, net, pts = points.checkpoints(config.train_config(depth), config.epochs)
        x, y = points.measurement_batch(ds, config.n_examples)
        for epoch, params in pts:
            row = {"depth_requested": depth, "epoch": float(epoch),
                   **at_point(net, params, x, y, config.perturb, etas, key)}
            rows.append(row)
            for k, v in row["layers"].items():
                if k != "name":
                    arrays[f"L{depth}/epoch{epoch:g}/{k}"] = np.asarray(v, dtype=float)
    fits = {}
    for epoch in sorted({r["epoch"] for r in rows}):
        sel = [r for r in rows if r["epoch"] == epoch]
        ds_ = [r["depth"] for r in sel]
        fits[f"{epoch:g}"] = {
            "C_eff_gradient": growth(ds_, np.log10([r["C_eff_gradient"] for r in sel])),
            "C_eff_function": growth(ds_, np.log10([r["C_eff_function"] for r in sel])),
            "C_layers": growth(ds_, [r["log10_C_layers"] for r in sel]),
            "C_layers_op": growth(ds_, [r["log10_C_layers_op"] for r in sel]),
        }
    return {"direction": config.perturb, "eta_max": config.eta_max, "rows": rows, "growth": fits}, arrays
