"""docs/theory.md §3.2, Lemma 2 (reconstructed): under deep relative trust with ``a_l = η`` for every l, the loss
decreases if ``η < (1 + cos θ)^{1/L} − 1`` (θ = max_l θ_l); for the Fromage direction (θ = 0) that is
``η < 2^{1/L} − 1 = ln2/L + O(1/L²)`` — 0.0443 at L = 16, 0.0140 at L = 50."""

from __future__ import annotations

import numpy as np
import sympy as sp

from .core import Control, Result, proved_if
from .symbolic import is_identity, pos

STATEMENT = "DRT, a_l = η: η < (1 + cos θ)^{1/L} − 1 ⇒ descent; θ = 0: 2^{1/L} − 1 = ln2/L + O(1/L²)"


def drt_monotone_in_t() -> bool:
    """Along the path tΔW the DRT bound ``(1+tη)^L − 1`` grows with t, so its max over t ∈ [0,1] is at t = 1
    and Lemma 1's condition becomes ``(1+η)^L − 1 < cos θ``: ``∂_t(1+tη)^L ≥ 0``."""
    t, eta, depth = pos("t", "eta", "L")
    return bool(sp.diff((1 + t * eta) ** depth, t).is_nonnegative)


def threshold_solves() -> bool:
    """``η* = (1 + cos θ)^{1/L} − 1`` is the unique root of ``(1+η)^L − 1 = cos θ`` (sympy's solve agrees),
    and ``η ↦ (1+η)^L`` is increasing on η > 0, so ``η < η* ⟺ (1+η)^L − 1 < cos θ``."""
    eta, cos, depth = pos("eta", "c", "L")
    star = (1 + cos) ** (1 / depth) - 1
    solved = sp.solve(sp.Eq((1 + eta) ** depth - 1, cos), eta)
    return (
        is_identity((1 + star) ** depth - 1, cos)
        and solved == [star]
        and bool(sp.diff((1 + eta) ** depth, eta).is_positive)
    )


def leading_coefficient(approx_coefficient) -> sp.Expr:
    """``2^{1/L} − 1 − κ/L`` expanded in x = 1/L: the first non-vanishing term (O(x²) iff κ = ln 2)."""
    (x,) = pos("x")
    series = sp.series(2**x - 1 - approx_coefficient * x, x, 0, 3).removeO()
    return sp.Poly(series, x).terms()[-1]


def check() -> Result:
    lead_power, lead_coeff = leading_coefficient(sp.log(2))
    asymptotic_ok = lead_power == (2,) and is_identity(lead_coeff, sp.log(2) ** 2 / 2)
    values = {depth: 2 ** (1 / depth) - 1 for depth in (16, 50)}
    values_ok = abs(values[16] - 0.0443) < 5e-5 and abs(values[50] - 0.0140) < 5e-5  # docs/theory.md §3.2
    steps = [drt_monotone_in_t(), threshold_solves(), asymptotic_ok, values_ok]
    details = (
        f"Max over t of the DRT bound is at t = 1: {steps[0]}; η* = (1+cos θ)^{{1/L}} − 1 solves (1+η)^L − 1 = "
        f"cos θ, is sympy's solution and the map is increasing: {steps[1]}; 2^{{1/L}} − 1 − ln2/L = "
        f"{lead_coeff}·(1/L)^{lead_power[0]} + O(1/L³): {steps[2]}; 2^{{1/16}} − 1 = {values[16]:.5f}, "
        f"2^{{1/50}} − 1 = {values[50]:.5f} (ln2/L: {np.log(2) / 16:.5f}, {np.log(2) / 50:.5f}): {steps[3]}. "
        f"The paper's η = 0.01 is below 2^{{1/L}} − 1 for L ≤ {int(np.log(2) / np.log1p(0.01))}."
    )
    bad_power, bad_coeff = leading_coefficient(1)
    rejected = bad_power != (2,)
    return Result(
        name="lemma2",
        statement=STATEMENT,
        method="symbolic proof",
        verdict=proved_if(*steps),
        details=details,
        control=Control(
            "2^{1/L} − 1 = 1/L + O(1/L²) (ln 2 dropped)",
            rejected,
            f"2^{{1/L}} − 1 − 1/L = ({bad_coeff})·(1/L)^{bad_power[0]} + …, not O(1/L²)",
        ),
    )
