"""docs/theory.md §2.4, the exact homogeneous case: for positively homogeneous φ (leaky relu, relu, identity), no
biases and ``ΔW_l = ε_l W_l`` with ``ε_l > −1``, ``f_{W+ΔW} = ∏(1+ε_l)·f_W``, so the relative function
distance is exactly ``|∏(1+ε_l) − 1|``."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numeric
from .core import Control, Result, proved_if
from .symbolic import difference, is_identity, nonneg, pos

STATEMENT = "ΔW_l = ε_l W_l, ε_l > −1, φ positively homogeneous ⇒ ‖Δf‖/‖f‖ = |∏(1+ε_l) − 1|"


def leaky_relu_sym(z, s):
    return sp.Piecewise((z, z >= 0), (s * z, True))


def homogeneity_by_cases() -> bool:
    """``φ(λz) = λφ(z)`` for λ > 0, proved on each sign case z > 0, z < 0, z = 0 (slope s ≥ 0 arbitrary).
    One layer then maps ``h' = P·h`` (P > 0) to ``φ((1+ε)W·Ph) = (1+ε)P·φ(Wh)``: λ = (1+ε)P > 0 by ε > −1."""
    lam, u = pos("lambda", "u")
    (s,) = nonneg("s")
    return all(is_identity(leaky_relu_sym(lam * z, s), lam * leaky_relu_sym(z, s)) for z in (u, -u, sp.S.Zero))


def telescoping_gap(sign: int = 1):
    """``[∏_{k≤l}(1+ε_k) − 1] − [(1+ε_l)(∏_{k<l}(1+ε_k) − 1) + ε_l]`` with ``P = ∏_{k<l}(1+ε_k)`` (0 proves the
    step); ``sign = −1`` is the negative control, the last ε_l's sign flipped."""
    eps, p = sp.symbols("epsilon P", real=True)
    return difference((1 + eps) * p - 1, (1 + eps) * (p - 1) + sign * eps)


def spot_check(seed: int) -> tuple[bool, int]:
    rng = np.random.default_rng(seed)
    measured, exact = [], []
    for _ in range(200):
        n, depth = int(rng.integers(2, 8)), int(rng.integers(1, 7))
        ws = [numeric.random_square(rng, n) for _ in range(depth)]
        eps = rng.uniform(-0.9, 2.0, depth)
        act = numeric.leaky_relu(rng.uniform(0.0, 1.0))
        x = rng.standard_normal(n)
        f = numeric.forward(ws, x, act)[0][-1]
        f_new = numeric.forward([(1 + e) * w for e, w in zip(eps, ws)], x, act)[0][-1]
        if np.linalg.norm(f) > 0:
            measured.append(numeric.relative(f_new, f))
            exact.append(abs(np.prod(1 + eps) - 1))
    return numeric.holds(measured, exact) and numeric.holds(exact, measured), len(measured)


def check(seed: int = 0) -> Result:
    steps = {
        "homogeneity φ(λz) = λφ(z), λ > 0 (3 sign cases), hence one layer φ((1+ε)W·Ph) = (1+ε)P·φ(Wh)": (
            homogeneity_by_cases()
        ),
        "telescoping ∏_{k≤l}(1+ε_k) − 1 = (1+ε_l)(∏_{k<l}(1+ε_k) − 1) + ε_l": telescoping_gap() == 0,
    }
    numeric_ok, n = spot_check(seed)
    details = "; ".join(f"{k}: {'ok' if v else 'FAILS'}" for k, v in steps.items())
    details += (
        f". Induction on l gives f_{{W+ΔW}} = ∏(1+ε_l)·f_W. Spot-check: {n} random leaky-relu nets "
        f"(width 2–7, depth 1–6, ε ∈ (−0.9, 2)) match |∏(1+ε)−1| to rtol 1e-9: "
        f"{'yes' if numeric_ok else 'NO'}."
    )
    gap = telescoping_gap(sign=-1)
    return Result(
        name="exact_case",
        statement=STATEMENT,
        method="symbolic + numeric spot-check",
        verdict=proved_if(*steps.values(), numeric_ok),
        details=details,
        control=Control(
            "∏_{k≤l}(1+ε_k) − 1 = (1+ε_l)(∏_{k<l}(1+ε_k) − 1) − ε_l (sign flipped)",
            gap != 0,
            f"lhs − rhs simplifies to {gap}, not 0",
        ),
    )
