"""docs/theory.md §4, low-precision Madam's logarithmic number system: a weight is ``w = sign·σ*·e^{−base_lr·n}`` with
an integer ``n ∈ [0, levels−1]``, so the representable magnitudes span the dynamic range
``max/min = e^{base_lr·(levels−1)}`` — 12 bits with base_lr = 0.001 give e^{4.095} ≈ 60.0."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numeric
from .core import Control, Result, proved_if
from .symbolic import difference, pos

STATEMENT = "LNS w = ±σ*e^{−base_lr·n}, n ∈ [0, levels−1]: max|w|/min|w| = e^{base_lr(levels−1)}"
#: (levels, base_lr) the toolkit uses: the authors' 12-bit default and README's 8- and 6-bit settings.
CONFIGS = ((4096, 0.001), (256, 0.0161), (64, 0.065))


def range_gap(claim):
    """``|w(n=0)|/|w(n=levels−1)| − claim(b, levels)``; the magnitude decreases in n (derivative < 0), so these
    are the max and the min."""
    sigma, b, levels = pos("sigma", "b", "N")
    n = sp.Symbol("n", nonnegative=True)
    magnitude = sigma * sp.exp(-b * n)
    decreasing = bool(sp.diff(magnitude, n).is_negative)
    return decreasing, difference(magnitude.subs(n, 0) / magnitude.subs(n, levels - 1), claim(b, levels))


def enumerated_ranges(claim) -> tuple[np.ndarray, np.ndarray]:
    """(max/min over every representable magnitude, claim) for :data:`CONFIGS` in float64."""
    meas, claimed = [], []
    for levels, base_lr in CONFIGS:
        mags = 3.0 * np.exp(-base_lr * np.arange(levels))
        meas.append(mags.max() / mags.min())
        claimed.append(float(claim(base_lr, levels)))
    return np.array(meas), np.array(claimed)


def check() -> Result:
    def right(b, levels):
        return sp.exp(b * (levels - 1))

    def off_by_one(b, levels):
        return sp.exp(b * levels)

    decreasing, gap = range_gap(right)
    meas, claim = enumerated_ranges(right)
    steps = [decreasing, gap == 0, numeric.holds(meas, claim) and numeric.holds(claim, meas)]
    details = (
        f"|w| decreases in n: {steps[0]}; max/min = e^{{b(levels−1)}}: {steps[1]}. Enumerated in float64: "
        + ", ".join(f"{levels} levels, base {b}: {m:.4f}" for (levels, b), m in zip(CONFIGS, meas))
        + f"; equal to the closed form: {steps[2]}."
    )
    _, bad_gap = range_gap(off_by_one)
    bad_meas, bad_claim = enumerated_ranges(off_by_one)
    rejected = bad_gap != 0 and not numeric.holds(bad_claim, bad_meas)
    return Result(
        name="lns_range",
        statement=STATEMENT,
        method="symbolic + numeric spot-check",
        verdict=proved_if(*steps),
        details=details,
        control=Control(
            "max/min = e^{base_lr·levels} (off by one level)",
            rejected,
            f"difference {bad_gap} ≠ 0; 12 bits: claimed {bad_claim[0]:.4f} vs enumerated {bad_meas[0]:.4f}",
        ),
    )
