"""docs/theory.md §4, Fromage: ``p ← (p − η(‖p‖/‖g‖)g)/√(1+η²)`` satisfies
``‖p_new‖²/‖p‖² = (1 − 2η cos φ + η²)/(1+η²)`` with φ the angle between p and g; so the norm is preserved
exactly when g ⟂ p."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numeric
from .core import Control, Result, proved_if
from .symbolic import difference, is_identity, pos

STATEMENT = "Fromage: ‖p_new‖²/‖p‖² = (1 − 2η cos φ + η²)/(1+η²); = 1 when g ⟂ p"
DIM = 4  # the bilinear expansion is coordinate by coordinate, so one dimension stands for all


def bilinear_expansion() -> bool:
    """``‖p − kg‖² = ‖p‖² − 2k⟨p, g⟩ + k²‖g‖²`` for symbolic vectors."""
    p, g = sp.Matrix(sp.symbols(f"p:{DIM}", real=True)), sp.Matrix(sp.symbols(f"g:{DIM}", real=True))
    k = sp.Symbol("k", real=True)
    return is_identity((p - k * g).dot(p - k * g), p.dot(p) - 2 * k * p.dot(g) + k**2 * g.dot(g))


ETA, COS = pos("eta")[0], sp.Symbol("cos_phi", real=True)


def norm_ratio():
    """``‖p_new‖²/‖p‖²`` from the expansion with ``k = η‖p‖/‖g‖`` and ``⟨p, g⟩ = ‖p‖‖g‖cos φ``."""
    pn, gn = pos("P", "G")
    k = ETA * pn / gn
    return (pn**2 - 2 * k * pn * gn * COS + k**2 * gn**2) / (1 + ETA**2) / pn**2


def claimed_ratio(sign: int = 1):
    """``(1 − 2η cos φ + η²)/(1+η²)``; ``sign = −1`` is the negative control (+2η cos φ)."""
    return (1 - sign * 2 * ETA * COS + ETA**2) / (1 + ETA**2)


def fromage_step(p, g, eta):
    """docs/theory.md §4, nonzero p and g."""
    return (p - eta * np.linalg.norm(p) / np.linalg.norm(g) * g) / np.sqrt(1 + eta**2)


def spot_check(rng, sign: int = 1):
    """(measured ‖p_new‖²/‖p‖², claimed) on random tensors, half with g projected orthogonal to p."""
    meas, claim = [], []
    for i in range(200):
        shape = (int(rng.integers(2, 6)),) + tuple(rng.integers(1, 6, rng.integers(0, 3)))
        p, g, eta = rng.standard_normal(shape), rng.standard_normal(shape), 10 ** rng.uniform(-3, 0)
        if i % 2:
            g = g - np.vdot(g, p) / np.vdot(p, p) * p
        cos = np.vdot(p, g) / (np.linalg.norm(p) * np.linalg.norm(g))
        meas.append(np.sum(fromage_step(p, g, eta) ** 2) / np.sum(p**2))
        claim.append((1 - sign * 2 * eta * cos + eta**2) / (1 + eta**2))
    return np.array(meas), np.array(claim)


def check(seed: int = 0) -> Result:
    ratio = norm_ratio()
    meas, claim = spot_check(np.random.default_rng(seed))
    steps = [
        bilinear_expansion(),
        is_identity(ratio, claimed_ratio()),
        is_identity(ratio.subs(COS, 0), 1),
        numeric.holds(meas, claim) and numeric.holds(claim, meas),
    ]
    details = (
        f"‖p − kg‖² = ‖p‖² − 2k⟨p,g⟩ + k²‖g‖² (symbolic {DIM}-vectors): {steps[0]}; with k = η‖p‖/‖g‖ and "
        f"⟨p,g⟩ = ‖p‖‖g‖cos φ the ratio is (1 − 2η cos φ + η²)/(1+η²): {steps[1]}; at cos φ = 0 it is 1: "
        f"{steps[2]}. Spot-check, 200 random tensors (η ∈ [1e-3, 1], half with g ⟂ p): {steps[3]}."
    )
    bad_gap = difference(ratio, claimed_ratio(sign=-1))
    bad_meas, bad_claim = spot_check(np.random.default_rng(seed), sign=-1)
    rejected = bad_gap != 0 and not numeric.holds(bad_meas, bad_claim)
    return Result(
        name="fromage",
        statement=STATEMENT,
        method="symbolic + numeric spot-check",
        verdict=proved_if(*steps),
        details=details,
        control=Control(
            "‖p_new‖²/‖p‖² = (1 + 2η cos φ + η²)/(1+η²) (sign flipped)",
            rejected,
            f"difference simplifies to {sp.factor(bad_gap)}; worst numeric excess "
            f"{numeric.excess(bad_meas, bad_claim):.2f}",
        ),
    )
