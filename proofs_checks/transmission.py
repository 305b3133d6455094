"""docs/theory.md §2.2, condition (i) for leaky relu with slope s ∈ [0, 1]: ``s‖z‖ ≤ ‖φ(z)‖ ≤ ‖z‖`` and φ is
1-Lipschitz, i.e. α = s, β = 1 (relu: α = 0, which makes Theorem 1 vacuous)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numeric
from .core import Control, Result, proved_if
from .symbolic import is_nonneg_polynomial, nonneg

STATEMENT = "leaky relu, slope s ∈ [0, 1]: s‖z‖ ≤ ‖φ(z)‖ ≤ ‖z‖ and |φ(a) − φ(b)| ≤ |a − b| (α = s, β = 1)"


def transmission_gaps(alpha_is_one: bool = False) -> list:
    """Per coordinate, z = u ≥ 0 or z = −u: ``φ(z)² − α²z²`` and ``z² − φ(z)²``, with s ∈ [0, 1] written
    homogeneously as s + d = 1 (s, d ≥ 0), so ``z² = (s + d)²z²``. Summing over coordinates gives the norms.
    ``alpha_is_one`` is the negative control: α = 1 instead of s."""
    u, s, d = nonneg("u", "s", "d")
    one = s + d
    alpha = one if alpha_is_one else s
    gaps = []
    for phi_sq in (u**2 * one**2, s**2 * u**2):  # z = u: φ = u; z = −u: φ = −su
        gaps += [sp.expand(phi_sq - alpha**2 * u**2), sp.expand(one**2 * u**2 - phi_sq)]
    return gaps


def lipschitz_gaps() -> list:
    """``|a − b| − |φ(a) − φ(b)|`` with 1 = s + d, in the three cases: a ≥ b ≥ 0 (φ(a) − φ(b) = a − b = w),
    0 ≥ a ≥ b (= s·w), and a = u ≥ 0 ≥ b = −v (= u + sv)."""
    u, v, w, s, d = nonneg("u", "v", "w", "s", "d")
    one = s + d
    return [sp.expand(one * w - one * w), sp.expand(one * w - s * w), sp.expand(one * (u + v) - one * u - s * v)]


def spot_check(rng) -> tuple[np.ndarray, np.ndarray]:
    """(‖φ(z)‖/‖z‖, slope) on random vectors with random slopes in [0, 1]."""
    z = rng.standard_normal((500, 8)) * 10 ** rng.uniform(-3, 3, (500, 1))
    s = rng.uniform(0, 1, 500)
    ratio = np.array([np.linalg.norm(numeric.leaky_relu(si).phi(zi)) / np.linalg.norm(zi) for si, zi in zip(s, z)])
    return ratio, s


def check(seed: int = 0) -> Result:
    gaps, lip = transmission_gaps(), lipschitz_gaps()
    ratio, s = spot_check(np.random.default_rng(seed))
    steps = [
        all(map(is_nonneg_polynomial, gaps)),
        all(map(is_nonneg_polynomial, lip)),
        numeric.holds(s, ratio) and numeric.holds(ratio, np.ones_like(ratio)),
    ]
    details = (
        f"Per coordinate, both sign cases: φ² − s²z² and z² − φ² are nonnegative polynomials "
        f"({', '.join(map(str, gaps))}): {steps[0]}; Lipschitz gaps (both ≥ 0, both ≤ 0, across 0): "
        f"{', '.join(map(str, lip))}: {steps[1]}. "
        f"Bounds attained: all-negative z gives s, all-positive gives 1. Spot-check, 500 random z "
        f"(scales 1e-3–1e3): s ≤ ‖φ(z)‖/‖z‖ ≤ 1: {steps[2]}."
    )
    bad = transmission_gaps(alpha_is_one=True)
    bad_ratio_ok = numeric.holds(np.ones_like(ratio), ratio)
    rejected = not all(map(is_nonneg_polynomial, bad)) and not bad_ratio_ok
    return Result(
        name="transmission",
        statement=STATEMENT,
        method="symbolic + numeric spot-check",
        verdict=proved_if(*steps),
        details=details,
        control=Control(
            "α = 1: ‖φ(z)‖ ≥ ‖z‖",
            rejected,
            f"case z < 0 gap {[str(g) for g in bad][2]} has negative coefficients; "
            f"{numeric.violations(np.ones_like(ratio), ratio)}/500 random z violate it",
        ),
    )
