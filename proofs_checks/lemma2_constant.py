"""docs/theory.md §3, Lemma 2 with the constant put back: ``C[(1+η)^L − 1] < cos θ ⟺ η < (1 + cos θ/C)^{1/L} − 1``,
which is ``cos θ/(L·C) + O(1/C²)`` for large C — exponentially small in L when C = c^L (the reviewer's
objection to Theorem 1's constant)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numeric
from .core import Control, Result, proved_if
from .symbolic import is_identity, pos

STATEMENT = "C[(1+η)^L − 1] < cos θ ⟺ η < (1 + cos θ/C)^{1/L} − 1 = cos θ/(L·C) + O(1/C²)"


def threshold_solves() -> bool:
    """``η*(C) = (1 + cos θ/C)^{1/L} − 1`` solves ``C[(1+η)^L − 1] = cos θ``; the left side increases in η."""
    eta, cos, depth, const = pos("eta", "c", "L", "C")
    star = (1 + cos / const) ** (1 / depth) - 1
    return is_identity(const * ((1 + star) ** depth - 1), cos) and bool(
        sp.diff(const * (1 + eta) ** depth, eta).is_positive
    )


def large_c_remainder(approx):
    """``η*(C) − approx`` expanded in u = 1/C to second order (``approx`` in terms of u, cos θ = c, L)."""
    u, cos, depth = pos("u", "c", "L")
    return sp.expand(sp.series((1 + cos * u) ** (1 / depth) - 1 - approx(u, cos, depth), u, 0, 2).removeO())


def spot_check(rng) -> tuple[bool, float]:
    """Round trip ``C[(1+η*)^L − 1] = cos θ`` in floats, and the asymptotic's relative error ~ 1/C."""
    depth, cos = rng.integers(2, 60, 100), rng.uniform(0.05, 1.0, 100)
    const = 10 ** rng.uniform(0, 8, 100)
    star = np.expm1(np.log1p(cos / const) / depth)
    round_trip = const * np.expm1(depth * np.log1p(star))
    rel_err = np.abs(star * depth * const / cos - 1)
    # η*·L·C/cos θ − 1 = (1/L − 1)·cos θ/(2C) + O(1/C²), so |…| ≤ cos θ/(2C) up to that second order term
    return numeric.holds(round_trip, cos) and numeric.holds(cos, round_trip) and numeric.holds(
        rel_err, cos / (2 * const) * (1 + cos / const)
    ), float(np.max(rel_err[const > 1e6]))


def check(seed: int = 0) -> Result:
    remainder = large_c_remainder(lambda u, c, depth: c * u / depth)
    numeric_ok, err = spot_check(np.random.default_rng(seed))
    steps = [threshold_solves(), remainder == 0, numeric_ok]
    details = (
        f"η*(C) solves C[(1+η)^L − 1] = cos θ and the left side increases in η: {steps[0]}; with u = 1/C, "
        f"η* − cos θ·u/L has no term of order ≤ 1 in u: {steps[1]}. Spot-check (100 draws, L 2–59, C 1–1e8): "
        f"round trip exact and the asymptotic's relative error ≤ cos θ/(2C)(1 + cos θ/C): {steps[2]} (worst "
        f"{err:.1e} for C > 1e6). With C = (κ²β/α)^L the threshold is cos θ/(L·c^L): exponentially small in L."
    )
    bad = large_c_remainder(lambda u, c, depth: c * u)
    return Result(
        name="lemma2_constant",
        statement=STATEMENT,
        method="symbolic + numeric spot-check",
        verdict=proved_if(*steps),
        details=details,
        control=Control(
            "η* ≈ cos θ/C (the 1/L dropped)", bad != 0, f"η* − cos θ·u = {sp.factor(bad)} + O(u²), not O(u²)"
        ),
    )
