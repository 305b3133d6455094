"""docs/theory.md §3, Madam (linear form): ``W ← W ⊙ (1 − η sign(W) ⊙ sign(g))`` changes every weight by the fraction η
of its own magnitude, ``|w_new| = |w|(1 ∓ η)``, so *every subset* S of the weights has ``‖ΔW_S‖ = η‖W_S‖``
(for gradients with no zero entry; a weight with g_i = 0 does not move)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numeric
from .core import Control, Result, proved_if
from .symbolic import is_identity, pos

STATEMENT = "Madam linear form, g_i ≠ 0: |w_new| = |w|(1 ∓ η) and ‖ΔW_S‖ = η‖W_S‖ for every subset S"


def per_weight_cases() -> bool:
    """For w = ±a and g = ±b (a, b > 0, 0 < η < 1): ``Δw = −η w sign(w) sign(g)`` has ``Δw² = η²w²`` and
    ``|w + Δw| = a(1 − η sign(w)sign(g))``. Summing ``Δw_i² = η²w_i²`` over any S gives ``‖ΔW_S‖² = η²‖W_S‖²``.
    η ∈ (0, 1) is written ``e/(1+e)`` with e > 0, so that sympy can resolve |1 ± η|."""
    a, b, e = pos("a", "b", "e")
    eta = e / (1 + e)
    ok = True
    for w in (a, -a):
        for g in (b, -b):
            s = sp.sign(w) * sp.sign(g)
            delta = -eta * w * s
            ok &= is_identity(delta**2, eta**2 * w**2)
            ok &= is_identity(sp.Abs(w + delta), a * (1 - eta * s))
    return bool(ok)


def madam_linear_delta(eta: float):
    return lambda w, g: -eta * w * np.sign(w) * np.sign(g)


def sign_sgd_delta(eta: float):
    """Additive sign update of the same overall relative size: ``−η·mean|W|·sign(g)`` (the negative control)."""
    return lambda w, g: -eta * np.mean(np.abs(w)) * np.sign(g)


def equals_eta(changes, eta: float) -> bool:
    return numeric.holds(changes, np.full_like(changes, eta)) and numeric.holds(np.full_like(changes, eta), changes)


def check(seed: int = 0) -> Result:
    eta = 0.01
    changes = numeric.subset_relative_changes(np.random.default_rng(seed), madam_linear_delta(eta))
    steps = [per_weight_cases(), equals_eta(changes, eta)]
    details = (
        f"Per weight, 4 sign cases, 0 < η < 1: Δw² = η²w² and |w_new| = "
        f"|w|(1 ∓ η): {steps[0]}; summing over S gives ‖ΔW_S‖ = η‖W_S‖. Spot-check, 300 random tensors "
        f"and subsets, η = {eta}: every ratio equals η: {steps[1]} (range {changes.min():.12g}–"
        f"{changes.max():.12g})."
    )
    bad = numeric.subset_relative_changes(np.random.default_rng(seed), sign_sgd_delta(eta))
    return Result(
        name="madam_linear",
        statement=STATEMENT,
        method="symbolic + numeric spot-check",
        verdict=proved_if(*steps),
        details=details,
        control=Control(
            "the additive sign update −η·mean|W|·sign(g) also moves every subset by η",
            not equals_eta(bad, eta),
            f"subset ratios range {bad.min():.3g}–{bad.max():.3g}, not η = {eta}",
        ),
    )
