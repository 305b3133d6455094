"""docs/theory.md §3, Madam's angle: the sign update ``ΔW = W ⊙ (−η sign(W) ⊙ sign(g)) = −η|W| ⊙ sign(g)`` has
``−⟨ΔW, g⟩ = η⟨|W|, |g|⟩`` and (no zero gradient entry) ``‖ΔW‖ = η‖W‖``, so its cos θ equals
``cos γ = ⟨|W|, |g|⟩/(‖W‖‖g‖)``. With zero entries in g, ``‖ΔW‖ < η‖W‖`` and cos θ ≥ cos γ."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numeric
from .core import Control, Result, proved_if
from .symbolic import is_identity, pos

STATEMENT = "Madam sign update: −⟨ΔW, g⟩ = η⟨|W|,|g|⟩, ‖ΔW‖ = η‖W‖ (g_i ≠ 0) ⇒ cos θ = cos γ = ⟨|W|,|g|⟩/(‖W‖‖g‖)"


def per_weight_cases() -> bool:
    """w = ±a, g = ±b (a, b > 0): ``−ηw sign(w)sign(g) = −η|w|sign(g)``, ``−Δw·g = η|w||g|``, ``Δw² = η²w²``."""
    a, b, eta = pos("a", "b", "eta")
    ok = True
    for w in (a, -a):
        for g in (b, -b):
            delta = -eta * w * sp.sign(w) * sp.sign(g)
            ok &= is_identity(delta, -eta * sp.Abs(w) * sp.sign(g))
            ok &= is_identity(-delta * g, eta * sp.Abs(w) * sp.Abs(g)) and is_identity(delta**2, eta**2 * w**2)
    return bool(ok)


def cos_theta(delta, g) -> float:
    return -np.vdot(delta, g) / (np.linalg.norm(delta) * np.linalg.norm(g))


def angles(rng, cos_formula, count: int = 300, zero_fraction: float = 0.0):
    """(cos θ of the literal Madam update, ``cos_formula(W, g)``) on random tensors."""
    theta, formula = [], []
    for _ in range(count):
        shape = tuple(rng.integers(2, 7, rng.integers(1, 4)))
        w, g = rng.standard_normal(shape), rng.standard_normal(shape) * 10 ** rng.uniform(-3, 1)
        g[rng.random(shape) < zero_fraction] = 0.0
        g.flat[0] = 1.0
        theta.append(cos_theta(-0.01 * w * np.sign(w) * np.sign(g), g))
        formula.append(cos_formula(w, g))
    return np.array(theta), np.array(formula)


def cos_gamma(w, g) -> float:
    return np.vdot(np.abs(w), np.abs(g)) / (np.linalg.norm(w) * np.linalg.norm(g))


def check(seed: int = 0) -> Result:
    rng = np.random.default_rng(seed)
    theta, gamma = angles(rng, cos_gamma)
    theta_z, gamma_z = angles(rng, cos_gamma, zero_fraction=0.3)
    steps = [
        per_weight_cases(),
        numeric.holds(theta, gamma) and numeric.holds(gamma, theta),
        numeric.holds(gamma_z, theta_z),
    ]
    strictly = numeric.violations(theta_z, gamma_z)
    details = (
        f"Per weight, 4 sign cases: the update is −η|w|sign(g), −Δw·g = η|w||g|, Δw² = η²w²: {steps[0]}; "
        f"summing gives cos θ = cos γ. Spot-check, 300 random tensors: cos θ of the literal update = cos γ: "
        f"{steps[1]}; with 30 % zero gradient entries cos θ ≥ cos γ: {steps[2]} (strictly on {strictly}/300)."
    )
    bad_theta, signed = angles(rng, lambda w, g: np.vdot(w, g) / (np.linalg.norm(w) * np.linalg.norm(g)))
    rejected = not (numeric.holds(bad_theta, signed) and numeric.holds(signed, bad_theta))
    return Result(
        name="madam_angle",
        statement=STATEMENT,
        method="symbolic + numeric spot-check",
        verdict=proved_if(*steps),
        details=details,
        control=Control(
            "cos θ = ⟨W, g⟩/(‖W‖‖g‖) (absolute values dropped)",
            rejected,
            f"largest |difference| from the update's cos θ: {np.max(np.abs(bad_theta - signed)):.2f}",
        ),
    )
