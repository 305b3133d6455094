"""docs/theory.md §3.4, Madam (exponential form, the first step of Madam, docs/theory.md §4.2):
``W ← W ⊙ exp(−η sign(W) ⊙ sign(g))`` moves each weight by the fraction ``e^η − 1`` (growing) or
``1 − e^{−η}`` (shrinking) of its magnitude, so every subset S has ``1 − e^{−η} ≤ ‖ΔW_S‖/‖W_S‖ ≤ e^η − 1``."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numeric
from .core import Control, Result, proved_if
from .symbolic import is_identity, is_nonneg_polynomial, pos

STATEMENT = "Madam exp form: per weight |e^{∓η} − 1| ∈ {1 − e^{−η}, e^η − 1}, so 1 − e^{−η} ≤ ‖ΔW_S‖/‖W_S‖ ≤ e^η − 1"


def per_weight_cases() -> bool:
    """With ``y = e^η = 1 + u`` (u > 0 ⟺ η > 0): shrinking, ``|y^{−1} − 1| = u/(1+u) = 1 − e^{−η}``; growing,
    ``|y − 1| = u = e^η − 1``; and ``(e^η − 1) − (1 − e^{−η}) = u²/(1+u)`` has a nonnegative-polynomial
    numerator over a positive denominator. A weighted RMS of per-weight ratios in [lo, hi] stays in [lo, hi]."""
    (u,) = pos("u")
    y = 1 + u
    lo, hi = u / (1 + u), u
    num, den = sp.fraction(sp.together(hi - lo))
    return (
        is_identity(sp.Abs(1 / y - 1), lo)
        and is_identity(sp.Abs(y - 1), hi)
        and is_nonneg_polynomial(num)
        and is_nonneg_polynomial(den)
        and den != 0
    )


def madam_exp_delta(eta: float):
    return lambda w, g: w * np.expm1(-eta * np.sign(w) * np.sign(g))


def check(seed: int = 0) -> Result:
    eta = 0.1
    changes = numeric.subset_relative_changes(np.random.default_rng(seed), madam_exp_delta(eta))
    lo, hi = -np.expm1(-eta), np.expm1(eta)
    steps = [
        per_weight_cases(),
        numeric.holds(changes, np.full_like(changes, hi)) and numeric.holds(np.full_like(changes, lo), changes),
    ]
    details = (
        f"Per weight (y = e^η = 1 + u): ratios u/(1+u) = 1 − e^{{−η}} and u = e^η − 1, lo ≤ hi: {steps[0]}. "
        f"Spot-check, 300 random tensors and subsets at η = {eta}: ratios in [{lo:.6f}, {hi:.6f}]: {steps[1]} "
        f"(observed {changes.min():.6f}–{changes.max():.6f})."
    )
    rejected = not numeric.holds(changes, np.full_like(changes, eta))
    return Result(
        name="madam_exp",
        statement=STATEMENT,
        method="symbolic + numeric spot-check",
        verdict=proved_if(*steps),
        details=details,
        control=Control(
            "‖ΔW_S‖/‖W_S‖ ≤ η (the linear form's η kept for the exp form)",
            rejected,
            f"{numeric.violations(changes, np.full_like(changes, eta))}/300 subsets exceed η = {eta} "
            f"(up to {changes.max():.6f})",
        ),
    )
