"""The bounds that measured distances are compared against (docs/theory.md §2).

Which is a theorem and which an assumption matters: :func:`operator_norm_bound` and, under its
conditions, :func:`theorem1_bound` must hold on every case; :func:`drt_bound` with constant 1 is a
*modelling assumption* and :func:`lipschitz_prediction` the Euclidean model it argues against — those
two are measured against data, never asserted.
"""

from __future__ import annotations

import numpy as np

from trust.base.errors import TrustError


def drt_bound(a) -> np.ndarray:
    """Deep relative trust, ``∏_k (1 + a_k) − 1`` over the last axis of ``a`` (docs/theory.md §2.1, §2.4).

    Computed as ``expm1(Σ log1p(a_k))`` so that tiny perturbations keep full relative precision."""
    return np.expm1(np.sum(np.log1p(np.asarray(a, dtype=float)), axis=-1))


def theorem1_constant(depth: int, alpha, beta, kappa) -> float:
    """The exponential constant ``C = (κ²β/α)^L`` of Theorem 1 (docs/theory.md §2.2); ``inf`` when α = 0 (relu)."""
    alpha, beta, kappa = float(alpha), float(beta), float(kappa)
    if alpha <= 0:
        return float("inf")
    return float((kappa**2 * beta / alpha) ** depth)


def theorem1_bound(a, alpha, beta, kappa) -> np.ndarray:
    """Theorem 1, relative form: ``(κ²β/α)^L · [∏(1 + a_k) − 1]`` with L the last axis of ``a``.

    Conditions (docs/theory.md §2.2): ``α‖z‖ ≤ ‖φ(z)‖ ≤ β‖z‖``, φ β-Lipschitz, every W_l and ΔW_l square with
    condition number ≤ κ, no biases."""
    a = np.asarray(a, dtype=float)
    return theorem1_constant(a.shape[-1], alpha, beta, kappa) * drt_bound(a)


def theorem1_bound_per_layer(a, c) -> np.ndarray:
    """The sharper per-layer form ``∏_l c_l · [∏(1 + a_k) − 1]``, ``c_l = κ(W_l)κ(ΔW_l)β/α_l`` (docs/theory.md §2.2)."""
    return np.prod(np.asarray(c, dtype=float), axis=-1) * drt_bound(a)


def operator_norm_bound(w_op, delta_op, x_norm=1.0) -> np.ndarray:
    """A theorem, constant-free (docs/theory.md §2.3): for the Theorem-1 MLP with 1-Lipschitz φ, φ(0) = 0,

    ``‖Δf(x)‖ ≤ ∏_k ‖W_k‖_op · ‖x‖ · [∏_k (1 + ‖ΔW_k‖_op/‖W_k‖_op) − 1]``.

    Args:
      w_op, delta_op: ``‖W_k‖_op`` and ``‖ΔW_k‖_op`` (:func:`~trust.base.linalg.operator_norms`); layers last.
      x_norm: ``‖x‖`` (broadcast against the leading axes).
    """
    w_op, delta_op = np.asarray(w_op, dtype=float), np.asarray(delta_op, dtype=float)
    return np.prod(w_op, axis=-1) * np.asarray(x_norm, dtype=float) * drt_bound(delta_op / w_op)


def operator_rounding_allowance(fan_in, weight_srank, a, b, dtype, tol: float = 0.0) -> np.ndarray:
    """How far above 1 a *computed* ``measured/operator_norm_bound`` may lie from rounding alone (docs/theory.md
    §2.3, "Rounding"): a violation is claimed only where the ratio exceeds ``1 + allowance``.

    First-order error analysis of the bias-free MLP in floating point with unit roundoff ``u``: a layer's product
    ``fl(W h) = W h + e`` with ``|e| ≤ γ_n |W||h|`` (``γ_n = nu/(1 − nu)``, ``n`` its fan-in, one more for the
    rounded ``W + ΔW``), so ``‖e‖ ≤ γ_n‖W‖_F‖h‖ = γ_n √srank(W)·‖W‖_op‖h‖`` — the conditioning enters through
    the stable rank — and the error is carried to the output by the later layers' operator norms (φ exact and
    1-Lipschitz). Both passes (``W`` and ``W + ΔW``, with ``‖W + ΔW‖ ≤ ‖W‖(1 + size)``) and the rounding of the
    difference, in units of the bound's ``∏‖W_k‖_op‖x‖``, over the bound's ``∏(1 + b_k) − 1``. Operator norms
    found to relative tolerance ``tol`` (power iteration) may under-estimate the bound by ``(1 − tol)^{2L}``.

    Args:
      fan_in: each layer's fan-in ``(L,)``. weight_srank: ``srank(W_l)`` ``(L,)``.
      a, b: the step's Frobenius and spectral relative sizes ``(…, L)`` (times η).
      dtype: the dtype the forward passes ran in. tol: the operator norms' relative tolerance.
    """
    u = np.finfo(dtype).eps / 2
    n = np.asarray(fan_in, dtype=float) + 1
    gamma = n * u / (1 - n * u) * np.sqrt(np.asarray(weight_srank, dtype=float))
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    grow = np.prod(1 + b, axis=-1, keepdims=True)
    perturbed = np.sum(gamma * (1 + a) * grow / (1 + b), axis=-1)
    absolute = perturbed + np.sum(gamma) + u * (grow[..., 0] + 1)
    with np.errstate(divide="ignore"):  # η = 0: a zero bound, and a zero measured change
        relative = absolute / drt_bound(b)
    return (1 + relative) * (1 - tol) ** (-2 * b.shape[-1]) - 1


def lipschitz_prediction(lam, delta_norm, grad_norm=1.0) -> np.ndarray:
    """The Lipschitz-smooth model (docs/theory.md §2.5): ``‖Δ∇ℒ‖ ≤ λ‖ΔW‖₂`` — linear in the absolute perturbation
    and blind to depth. Divided by ``grad_norm`` it is a prediction of the *relative* gradient distance."""
    return float(lam) * np.asarray(delta_norm, dtype=float) / float(grad_norm)


def secant_lipschitz(grad_change, delta_norm) -> float:
    """The smallest λ consistent with the smallest nonzero perturbation measured:
    ``‖Δg‖/‖ΔW‖`` at the smallest ``‖ΔW‖ > 0`` (docs/theory.md §2.5)."""
    delta_norm = np.asarray(delta_norm, dtype=float)
    nonzero = np.flatnonzero(delta_norm > 0)
    if nonzero.size == 0:
        raise TrustError("no nonzero perturbation to fit λ on")
    k = nonzero[np.argmin(delta_norm[nonzero])]
    return float(np.asarray(grad_change)[k] / delta_norm[k])
