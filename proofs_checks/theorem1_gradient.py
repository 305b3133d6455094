"""docs/theory.md §2.2, the gradient (Jacobian) version of Theorem 1: is there a constant C(κ, α, β, L) with
``‖Δg_l‖_F/‖g_l‖_F ≤ C·[∏(1+a_k) − 1]`` for ``g_l = ∂ℒ/∂W_l = δ_l h_{l−1}ᵀ``?

The derivation does not close under the transmission and conditioning conditions alone: backprop
``δ_l = D_l W_{l+1}ᵀ δ_{l+1}`` with ``D_l = diag φ'(z_l)`` and, for leaky relu, φ' jumps between s and 1, so an
arbitrarily small perturbation that flips one pre-activation's sign changes δ_l by O(1). The explicit family
below (every W, ΔW square with κ → 1, slope s fixed) has measured/[∏(1+a) − 1] → ∞, so no such C exists.
The extra assumption that closes it — activation pattern unchanged — is :mod:`.theorem1_gradient_fixed_pattern`.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numeric
from .core import Control, Result
from .symbolic import is_identity, pos

STATEMENT = "‖Δg_l‖/‖g_l‖ ≤ C(κ, α, β, L)·[∏(1+a_k) − 1] under Theorem 1's conditions alone"


def _phi(z, s):
    return sp.Piecewise((z, z >= 0), (s * z, True))


def _dphi(z, s):
    return sp.Piecewise((1, z >= 0), (s, True))


def first_layer_gradient(ws, x, v, s) -> sp.Matrix:
    """``g_1 = δ_1 xᵀ`` for the 2-layer leaky-relu net and ``ℒ = ⟨v, f(x)⟩`` (the Jacobian's vector product)."""
    z1 = ws[0] * x
    z2 = ws[1] * z1.applyfunc(lambda z: _phi(z, s))
    delta2 = sp.matrix_multiply_elementwise(z2.applyfunc(lambda z: _dphi(z, s)), v)
    delta1 = sp.matrix_multiply_elementwise(z1.applyfunc(lambda z: _dphi(z, s)), ws[1].T * delta2)
    return delta1 * x.T


def family(eps, t):
    """x = e₁, ``W_1 = [[1, 0], [ε, 1]]`` (so z_1 = (1, ε)), ``ΔW_1 = t·[[0, 1], [−1, 0]]`` (orthogonal, κ = 1),
    ``W_2 = I``, ``ΔW_2 = t·I``, v = (1, 1). For t > ε the second pre-activation of layer 1 flips sign."""
    w = [sp.Matrix([[1, 0], [eps, 1]]), sp.eye(2)]
    dw = [t * sp.Matrix([[0, 1], [-1, 0]]), t * sp.eye(2)]
    return w, dw, sp.Matrix([1, 0]), sp.Matrix([1, 1])


def ratio_to_drt(t_over_eps):
    """``ratio = (‖Δg_1‖/‖g_1‖) / [∏(1+a_k) − 1]`` on :func:`family` with ``t = t_over_eps·ε``, and its blow-up
    coefficient ``lim_{ε→0⁺} ε·ratio`` (nonzero: the ratio grows like 1/ε; zero: it stays bounded)."""
    eps, s = pos("epsilon", "s")
    t = t_over_eps * eps
    w, dw, x, v = family(eps, t)
    g = first_layer_gradient(w, x, v, s)
    g_new = first_layer_gradient([a + b for a, b in zip(w, dw)], x, v, s)
    measured = (g_new - g).norm() / g.norm()
    drt = sp.prod([1 + d.norm() / a.norm() for a, d in zip(w, dw)]) - 1
    ratio = sp.simplify(measured / drt)
    return ratio, sp.limit(eps * ratio, eps, 0, "+")


def kappa_w1_limit():
    """κ(W_1)² = λ_max/λ_min of W_1ᵀW_1, as ε → 0⁺ (the other three matrices have κ = 1)."""
    (eps,) = pos("epsilon")
    lam = list(sp.Matrix([[1, 0], [eps, 1]]).T.multiply(sp.Matrix([[1, 0], [eps, 1]])).eigenvals())
    return sp.limit(sp.Max(*lam) / sp.Min(*lam), eps, 0, "+")


def numeric_cross_check(eps: float = 1e-6, slope: float = 0.1) -> tuple[float, float]:
    """The same family with t = 2ε through NumPy backprop: (measured relative change, ∏(1+a) − 1)."""
    w = [np.array([[1.0, 0.0], [eps, 1.0]]), np.eye(2)]
    dw = [2 * eps * np.array([[0.0, 1.0], [-1.0, 0.0]]), 2 * eps * np.eye(2)]
    x, act, e = np.array([1.0, 0.0]), numeric.leaky_relu(slope), (lambda f: np.ones(2))
    g = numeric.layer_gradients(w, x, act, e)[0]
    g_new = numeric.layer_gradients([a + b for a, b in zip(w, dw)], x, act, e)[0]
    return numeric.relative(g_new, g), numeric.drt([np.linalg.norm(d) / np.linalg.norm(a) for a, d in zip(w, dw)])


def check() -> Result:
    ratio, blow_up = ratio_to_drt(2)
    eps, s = pos("epsilon", "s")
    blows_up = is_identity(blow_up**2, (1 - s**2) ** 2 / 32)  # blow_up = √2(1 − s²)/8 > 0 for s ∈ [0, 1)
    k_limit = kappa_w1_limit()
    measured, drt = numeric_cross_check()
    symbolic_value = float(ratio.subs({eps: sp.Rational(1, 10**6), s: sp.Rational(1, 10)}))
    agree = abs(measured / drt / symbolic_value - 1) < 1e-6  # ratio ≈ 1e5 from O(1)/O(ε): float64 keeps ~1e-10
    closes = not (blows_up and k_limit == 1 and agree)
    details = (
        f"Counterexample family (L = 2, width 2, leaky relu slope s, ℒ = ⟨v, f⟩): W_1 = [[1,0],[ε,1]], "
        f"ΔW_1 = 2ε·[[0,1],[−1,0]], W_2 = I, ΔW_2 = 2ε·I; κ(W_1)² → {k_limit}, other κ = 1, α = s, β = 1. "
        f"The second pre-activation of layer 1 flips (ε → −ε), D_1 jumps from 1 to s, and "
        f"ε·(‖Δg_1‖/‖g_1‖)/[∏(1+a) − 1] → {blow_up} = √2(1 − s²)/8 > 0 as ε → 0⁺ (sympy limit): the ratio "
        f"grows like 1/ε while κ, α, β, L stay fixed, so no C(κ, α, β, L) exists for any slope s < 1. NumPy "
        f"backprop at ε = 1e-6, s = 0.1: ratio {measured / drt:.4g}, symbolic {symbolic_value:.4g}, agree: {agree}. "
        f"What closes it: the activation pattern D_l unchanged along the perturbation and the output "
        f"cotangent fixed (Jacobian, ℒ = ⟨v, f⟩; for a general loss the relative change of ∂ℒ/∂f enters too) — "
        f"then ‖Δg_l‖/‖g_l‖ ≤ ∏_{{k≠l}}κ(W_k)κ(ΔW_k)/s·[∏_{{k≠l}}(1+a_k) − 1] (theorem1_gradient_fixed_pattern)."
    )
    control_ratio, control_blow_up = ratio_to_drt(sp.Rational(1, 2))
    rejected = control_blow_up == 0
    return Result(
        name="theorem1_gradient",
        statement=STATEMENT,
        method="symbolic proof",
        verdict="FAILED" if closes else "does not close",
        details=details,
        control=Control(
            "the same family without a sign flip (t = ε/2) also defeats every constant",
            rejected,
            f"blow-up coefficient lim ε·ratio = {control_blow_up}; the ratio tends to "
            f"{sp.limit(control_ratio, eps, 0, '+')}",
        ),
    )
