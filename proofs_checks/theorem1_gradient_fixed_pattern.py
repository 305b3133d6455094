"""docs/theory.md §2.2, the gradient (Jacobian) version of Theorem 1 under the extra assumption that closes it: the
leaky-relu activation pattern ``D_k = diag φ'(z_k)`` is the same at W and W + ΔW, and the output cotangent v
is fixed (``ℒ = ⟨v, f(x)⟩``). Then, with ``c_k = κ(W_k)κ(ΔW_k)/s`` (α = s, β = 1) and c = κ²/s,

``‖Δg_l‖_F/‖g_l‖_F ≤ ∏_{k≠l} c_k·[∏_{k≠l}(1+a_k) − 1] ≤ c^{L−1}[∏_k(1+a_k) − 1]``.

Derivation: ``g_l = δ_l h_{l−1}ᵀ`` is rank one, so ``‖g_l‖_F = ‖δ_l‖‖h_{l−1}‖`` and
``‖Δg_l‖/‖g_l‖ ≤ (1+q)(1+r) − 1`` with r, q the relative changes of h_{l−1} and δ_l. r is Theorem 1 over layers
k < l (no assumption needed). With D fixed, ``δ_{k−1} = D_{k−1}W_kᵀδ_k`` has the same step as the forward pass
(‖D‖ ≤ 1, σ_min(D) = s, σ(W_kᵀ) = σ(W_k)), and δ_L = D_L v does not move: q is Theorem 1 over layers k > l.
W_l itself does not enter g_l."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numeric
from .core import Control, Result, proved_if
from .symbolic import is_nonneg_polynomial, nonneg
from .theorem1_step import induction_gap, step_algebra

STATEMENT = "leaky relu, pattern D_l unchanged, ℒ = ⟨v, f⟩ ⇒ ‖Δg_l‖/‖g_l‖ ≤ ∏_{k≠l}κ(W_k)κ(ΔW_k)/s·[∏_{k≠l}(1+a_k) − 1]"


def combination_gap(backward: bool = True):
    """Gap ``AB[P_<P_> − 1] − [(1+q)(1+r) − 1]`` with hypotheses ``r + t_1 = A(P_< − 1)``,
    ``q + t_2 = B(P_> − 1)``, ``A = 1 + e_1``, ``B = 1 + e_2`` (products of c_k ≥ 1), all symbols ≥ 0; the
    product ``A·P_< = A + r + t_1`` keeps it polynomial. ``backward = False`` is the negative control: the
    bound ``A[P_< − 1]`` that forgets δ_l changes."""
    r, q, t1, t2, e1, e2 = nonneg("r", "q", "t_1", "t_2", "e_1", "e_2")
    a_p, b_p = 1 + e1 + r + t1, 1 + e2 + q + t2  # A·P_< and B·P_>
    bound = a_p * b_p - (1 + e1) * (1 + e2) if backward else a_p - (1 + e1)
    return sp.expand(bound - ((1 + q) * (1 + r) - 1))


def pattern_fixed_cases(rng, count: int):
    """(measured ‖Δg_l‖/‖g_l‖, bound, forward-only bound) for every layer of random square leaky-relu nets
    under small perturbations, keeping only cases whose activation pattern did not change."""
    meas, bound, forward_only, kept = [], [], [], 0
    for _ in range(count):
        n, depth, s = rng.integers(2, 7), rng.integers(2, 6), rng.uniform(0.05, 1.0)
        act = numeric.leaky_relu(s)
        ws = [numeric.random_square(rng, n) for _ in range(depth)]
        dws = [numeric.random_square(rng, n) * np.linalg.norm(w) * 10 ** rng.uniform(-4, -1.5) for w in ws]
        x, v = rng.standard_normal((2, n))
        new = [w + d for w, d in zip(ws, dws)]
        zs, zs_new = numeric.forward(ws, x, act)[1], numeric.forward(new, x, act)[1]
        if any(np.any((z >= 0) != (zn >= 0)) for z, zn in zip(zs, zs_new)):
            continue
        kept += 1
        gs = numeric.layer_gradients(ws, x, act, lambda f: v)
        gs_new = numeric.layer_gradients(new, x, act, lambda f: v)
        c = np.array([numeric.kappa(w) * numeric.kappa(d) / s for w, d in zip(ws, dws)])
        a = np.array([np.linalg.norm(d) / np.linalg.norm(w) for w, d in zip(ws, dws)])
        for l in range(depth):
            others = np.arange(depth) != l
            meas.append(numeric.relative(gs_new[l], gs[l]))
            bound.append(np.prod(c[others]) * numeric.drt(a[others]))
            forward_only.append(np.prod(c[:l]) * numeric.drt(a[:l]))
    return np.array(meas), np.array(bound), np.array(forward_only), kept


def check(seed: int = 0) -> Result:
    rng = np.random.default_rng(seed)
    gap = combination_gap()
    symbolic_ok = [step_algebra(), is_nonneg_polynomial(induction_gap()), is_nonneg_polynomial(gap)]
    meas, bound, forward_only, kept = pattern_fixed_cases(rng, 300)
    numeric_ok = numeric.holds(meas, bound)
    details = (
        f"Forward and backward steps are Theorem 1's step with α = s, β = 1 (theorem1_step: step algebra "
        f"{symbolic_ok[0]}, induction gap ≥ 0 {symbolic_ok[1]}), so r ≤ A[P_< − 1], q ≤ B[P_> − 1] with "
        f"A = ∏_{{k<l}}c_k, B = ∏_{{k>l}}c_k ≥ 1. Combination (1+q)(1+r) − 1 ≤ AB[P_<P_> − 1]: gap {gap} "
        f"is a nonnegative polynomial: {symbolic_ok[2]}. The constant is ∏_{{k≠l}}c_k ≤ (κ²/s)^{{L−1}}: one factor "
        f"fewer than Theorem 1, and a_l does not enter. Spot-check: {kept}/300 random square leaky-relu nets "
        f"(width 2–6, depth 2–5, relative sizes 1e-4–3e-2) kept the pattern; all {len(meas)} layer gradients "
        f"within the bound: {numeric_ok}, median measured/bound {np.median(meas / bound):.1e}."
    )
    bad_gap = combination_gap(backward=False)
    rejected = not is_nonneg_polynomial(bad_gap) and not numeric.holds(meas, forward_only)
    return Result(
        name="theorem1_gradient_fixed_pattern",
        statement=STATEMENT,
        method="symbolic + numeric spot-check",
        verdict=proved_if(*symbolic_ok, numeric_ok),
        details=details,
        control=Control(
            "backward half dropped: ‖Δg_l‖/‖g_l‖ ≤ ∏_{k<l}c_k[∏_{k<l}(1+a_k) − 1] (δ_l taken as fixed)",
            rejected,
            f"gap {bad_gap} has negative coefficients; "
            f"{numeric.violations(meas, forward_only)}/{len(meas)} "
            f"layer gradients exceed it",
        ),
    )
