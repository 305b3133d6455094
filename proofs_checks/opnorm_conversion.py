"""docs/theory.md §2.2, the conversion Theorem 1 needs from operator-norm to Frobenius relative sizes. What is true for
square n×n matrices: ``‖ΔW‖_op/‖W‖_op ≤ κ(ΔW)·a`` and ``≤ √n·a`` with ``a = ‖ΔW‖_F/‖W‖_F``. It is the
condition number of the *perturbation* that enters: ``κ(W)·a`` is false (W = I, rank-one ΔW). Hence Theorem 1
must assume every ΔW_l κ-conditioned, and its κ² is ``κ(W_l)·κ(ΔW_l)``."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numeric
from .core import Control, Result, proved_if
from .symbolic import is_nonneg_polynomial, nonneg

STATEMENT = "W, ΔW n×n ⇒ ‖ΔW‖_op/‖W‖_op ≤ min(κ(ΔW), √n)·‖ΔW‖_F/‖W‖_F (not κ(W)·a)"


def frobenius_sandwich_gap():
    """``nσ_min² ≤ ‖M‖_F² = Σσ_i² ≤ nσ_max²`` term by term: ``σ_max² − σ_i²`` and ``σ_i² − σ_min²`` are both
    ``(σ + d)² − σ²`` with σ, d ≥ 0; summing n such terms gives both inequalities."""
    sig, d = nonneg("sigma", "d")
    return sp.expand((sig + d) ** 2 - sig**2)


def conversion_gaps(with_kappa: bool = True) -> tuple:
    """Gaps of the two conversions, each multiplied through by positive denominators.

    Notation: S = ‖ΔW‖_op, s = σ_min(ΔW), σ = ‖W‖_op, F_Δ, F_W the Frobenius norms, N = √n.
    Hypotheses as slacks ≥ 0: ``Nσ = F_W + v`` (F_W ≤ √nσ_max), ``F_Δ = Ns + u`` (F_Δ ≥ √nσ_min),
    ``S = F_Δ − w`` (‖·‖_op ≤ ‖·‖_F).
    κ(ΔW) form: ``S/σ ≤ (S/s)(F_Δ/F_W)`` ⟺ ``N(σF_Δ − sF_W) ≥ 0``.
    √n form: ``S/σ ≤ N·F_Δ/F_W`` ⟺ ``NσF_Δ − S·F_W ≥ 0``.
    ``with_kappa = False`` is the negative control: ``S/σ ≤ F_Δ/F_W`` ⟺ ``σF_Δ − S·F_W ≥ 0``, times N."""
    f_w, s, n, u, v, w = nonneg("F_W", "s", "N", "u", "v", "w")
    f_d, n_sigma = n * s + u, f_w + v
    if not with_kappa:
        return (sp.expand(n_sigma * f_d - n * (f_d - w) * f_w),)
    return sp.expand(n_sigma * f_d - n * s * f_w), sp.expand(n_sigma * f_d - (f_d - w) * f_w)


def random_pairs(rng, count: int):
    """(ratio ‖ΔW‖_op/‖W‖_op, a, κ(ΔW), κ(W), n) for Gaussian W and column-scaled (badly conditioned) ΔW."""
    rows = []
    for _ in range(count):
        n = int(rng.integers(2, 11))
        w = numeric.random_square(rng, n) * 10 ** rng.uniform(-1, 1, n)
        d = numeric.random_square(rng, n) * 10 ** rng.uniform(-3, 0, n)
        rows.append(
            (
                numeric.op_norm(d) / numeric.op_norm(w),
                np.linalg.norm(d) / np.linalg.norm(w),
                numeric.kappa(d),
                numeric.kappa(w),
                n,
            )
        )
    return np.array(rows).T


def kappa_w_counterexample(n: int = 4, eps: float = 0.1) -> tuple[float, float]:
    """W = I_n (κ(W) = 1), ΔW = ε·e_1e_1ᵀ: ``‖ΔW‖_op/‖W‖_op = ε`` against ``κ(W)·a = ε/√n``."""
    w, d = np.eye(n), np.zeros((n, n))
    d[0, 0] = eps
    return numeric.op_norm(d) / numeric.op_norm(w), float(numeric.kappa(w) * np.linalg.norm(d) / np.linalg.norm(w))


def check(seed: int = 0) -> Result:
    rng = np.random.default_rng(seed)
    gaps = (frobenius_sandwich_gap(),) + conversion_gaps()
    lemmas_ok = numeric.singular_value_lemmas(rng)
    ratio, a, k_d, k_w, n = random_pairs(rng, 500)
    numeric_ok = [numeric.holds(ratio, k_d * a), numeric.holds(ratio, np.sqrt(n) * a)]
    kw_violations = numeric.violations(ratio, k_w * a)
    lhs, rhs = kappa_w_counterexample()
    details = (
        f"Lemmas (numeric, 200 random matrices): ‖M‖_op = σ_max, σ_min‖v‖ ≤ ‖Mv‖, ‖M‖_F² = Σσ_i²: {lemmas_ok}. "
        f"Symbolic: nσ_min² ≤ ‖M‖_F² ≤ nσ_max² term-wise (gap {gaps[0]}); κ(ΔW) form gap {gaps[1]}; √n form gap "
        f"{gaps[2]}; all nonnegative polynomials: "
        f"{all(map(is_nonneg_polynomial, gaps))}. Spot-check on 500 random pairs (n = 2–10, ΔW with κ up to "
        f"{k_d.max():.0e}): κ(ΔW)·a holds {numeric_ok[0]}, √n·a holds {numeric_ok[1]}. With κ(W) in place of "
        f"κ(ΔW) the bound is FALSE: W = I_4, ΔW = 0.1·e₁e₁ᵀ gives {lhs:g} > κ(W)·a = {rhs:g} (holds: "
        f"{numeric.holds([lhs], [rhs])}); random pairs rarely show it ({kw_violations}/500 violate it). So Theorem 1 "
        f"holds with κ² = κ(W_l)κ(ΔW_l) (or with κ(W_l)·√n), not κ(W_l)²."
    )
    (bad_gap,) = conversion_gaps(with_kappa=False)
    rejected = not is_nonneg_polynomial(bad_gap) and not numeric.holds(ratio, a)
    return Result(
        name="opnorm_conversion",
        statement=STATEMENT,
        method="symbolic + numeric spot-check",
        verdict=proved_if(lemmas_ok, *map(is_nonneg_polynomial, gaps), *numeric_ok, not numeric.holds([lhs], [rhs])),
        details=details,
        control=Control(
            "‖ΔW‖_op/‖W‖_op ≤ ‖ΔW‖_F/‖W‖_F (κ dropped)",
            rejected,
            f"gap {bad_gap} has negative coefficients; {numeric.violations(ratio, a)}/500 random pairs "
            f"violate it "
            f"(worst excess {numeric.excess(ratio, a):.2f})",
        ),
    )
