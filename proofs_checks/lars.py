"""docs/theory.md §4.1 and §6.6: "LARS" in the paper is Fromage without the ``1/√(1+η²)`` factor,
``p ← p − η(‖p‖/‖g‖)g``. When g ⟂ p its norm grows by exactly ``√(1+η²)`` per step, so T such steps give
``(1+η²)^{T/2}`` — the growth Fromage's factor removes."""

from __future__ import annotations

import numpy as np

from . import numeric
from .core import Control, Result, proved_if
from .fromage import COS, ETA, norm_ratio
from .symbolic import difference

STATEMENT = "LARS (Fromage without 1/√(1+η²)), g ⟂ p: ‖p‖ grows by √(1+η²) per step, (1+η²)^{T/2} after T steps"


def lars_growth(rng, steps: int, eta: float, per_step_factor) -> tuple[float, float]:
    """(measured ‖p_T‖/‖p_0‖, claimed per_step_factor(η)^T) for T LARS steps, each with a fresh random g
    projected orthogonal to the current p. Rounding: T ≤ 100 steps of O(1e-16) relative error each."""
    p = rng.standard_normal(12)
    p0 = np.linalg.norm(p)
    for _ in range(steps):
        g = rng.standard_normal(12)
        g -= np.vdot(g, p) / np.vdot(p, p) * p
        p = p - eta * np.linalg.norm(p) / np.linalg.norm(g) * g
    return float(np.linalg.norm(p) / p0), float(per_step_factor(eta) ** steps)


def check(seed: int = 0) -> Result:
    rng = np.random.default_rng(seed)
    growth_sq = difference((norm_ratio() * (1 + ETA**2)).subs(COS, 0), 1 + ETA**2)
    meas, claim = zip(*(lars_growth(rng, 100, eta, lambda e: np.sqrt(1 + e**2)) for eta in (1e-3, 1e-2, 0.1, 0.5)))
    steps = [growth_sq == 0, numeric.holds(meas, claim) and numeric.holds(claim, meas)]
    details = (
        f"Fromage's ratio times (1+η²) at cos φ = 0 is 1 + η² (symbolic): {steps[0]}; the factor does not "
        f"depend on p, so T steps multiply to (1+η²)^{{T/2}}. Simulated 100 steps with g ⟂ p at "
        f"η = 1e-3, 1e-2, 0.1, 0.5: growth {', '.join(f'{m:.6g}' for m in meas)} matches: {steps[1]}."
    )
    bad_meas, bad_claim = zip(*(lars_growth(rng, 100, eta, lambda e: 1.0) for eta in (1e-3, 1e-2, 0.1, 0.5)))
    preserved_gap = difference((norm_ratio() * (1 + ETA**2)).subs(COS, 0), 1)
    rejected = preserved_gap != 0 and not (numeric.holds(bad_meas, bad_claim) and numeric.holds(bad_claim, bad_meas))
    return Result(
        name="lars",
        statement=STATEMENT,
        method="symbolic + numeric spot-check",
        verdict=proved_if(*steps),
        details=details,
        control=Control(
            "LARS preserves ‖p‖ when g ⟂ p (the √(1+η²) growth missing)",
            rejected,
            f"‖p_new‖²/‖p‖² − 1 = {preserved_gap}; after 100 steps at η = 0.01 the norm is ×{bad_meas[1]:.6f}",
        ),
    )
