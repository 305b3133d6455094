"""docs/theory.md §2.3, the operator-norm bound (a theorem, constant-free): for 1-Lipschitz φ with φ(0) = 0 and the
Theorem-1 MLP, ``‖Δf(x)‖ ≤ ∏_k ‖W_k‖_op·‖x‖·[∏_k(1 + b_k) − 1]`` with ``b_k = ‖ΔW_k‖_op/‖W_k‖_op``."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numeric
from .core import Control, Result, proved_if
from .symbolic import is_nonneg_polynomial, nonneg

STATEMENT = "1-Lipschitz φ, φ(0) = 0 ⇒ ‖Δf(x)‖ ≤ ∏‖W_k‖_op‖x‖[∏(1 + ‖ΔW_k‖_op/‖W_k‖_op) − 1]"


def induction_gaps(additive: bool = False) -> tuple:
    """Gaps (bound − what the hypotheses give) of the induction step from layer l−1 to l.

    Hypotheses, as slacks t, u ≥ 0, with ``M = ∏_{k<l}‖W_k‖_op``, ``X = ‖x‖``, ``Q = 1 + q = ∏_{k<l}(1+b_k)``:
    ``‖Δh_{l−1}‖ = D = MXq − t`` and ``‖h_{l−1}‖ = H = MX − u``. Since ``Δz_l = W_lΔh_{l−1} + ΔW_l h'_{l−1}``,
    ``‖h'‖ ≤ H + D`` and φ is 1-Lipschitz: ``‖Δh_l‖ ≤ wD + bw(H + D)`` (w = ‖W_l‖_op, b = b_l); and
    ``‖h_l‖ ≤ wH``. Targets: ``wMX[(1+b)Q − 1]`` and ``wMX``. ``additive`` is the negative control: the
    target ``wMX(q + b)``, i.e. the bound with ``Σ b_k`` in place of ``∏(1+b_k) − 1``."""
    w, b, m, x, q, t, u = nonneg("w", "b", "M", "X", "q", "t", "u")
    d, h = m * x * q - t, m * x - u
    target = w * m * x * (q + b) if additive else w * m * x * ((1 + b) * (1 + q) - 1)
    return sp.factor(target - (w * d + b * w * (h + d))), sp.factor(w * m * x - w * h)


def lemma_spot_check(rng) -> bool:
    """1-Lipschitz and φ(0) = 0 for leaky relu (slope ∈ [0, 1]) and tanh, and ``‖Mv‖ ≤ ‖M‖_op‖v‖``."""
    acts = [numeric.leaky_relu(s) for s in (0.0, 0.1, 1.0)] + [numeric.TANH]
    z, z2 = rng.standard_normal((2, 500, 6)) * 3
    lips = all(
        numeric.holds(np.linalg.norm(a.phi(z) - a.phi(z2), axis=1), np.linalg.norm(z - z2, axis=1))
        and not np.any(a.phi(np.zeros(3)))
        for a in acts
    )
    ms, vs = rng.standard_normal((300, 5, 5)), rng.standard_normal((300, 5))
    return lips and numeric.holds(
        np.linalg.norm(np.einsum("nij,nj->ni", ms, vs), axis=1),
        [numeric.op_norm(m) * np.linalg.norm(v) for m, v in zip(ms, vs)],
    )


def bound_cases(rng, count: int):
    """(measured ‖Δf‖, bound) on random leaky-relu and tanh nets with relative sizes log-uniform in [1e-3, 1]."""
    measured, bound = [], []
    for i in range(count):
        n, depth = rng.integers(2, 8), rng.integers(1, 7)
        act = numeric.TANH if i % 2 else numeric.leaky_relu(rng.uniform(0, 1))
        ws = [numeric.random_square(rng, n) for _ in range(depth)]
        dws = [numeric.random_square(rng, n) * numeric.op_norm(w) * 10 ** rng.uniform(-3, 0) for w in ws]
        x = rng.standard_normal(n)
        f = numeric.forward(ws, x, act)[0][-1]
        f_new = numeric.forward([w + d for w, d in zip(ws, dws)], x, act)[0][-1]
        measured.append(np.linalg.norm(f_new - f))
        w_op = np.array([numeric.op_norm(w) for w in ws])
        b = np.array([numeric.op_norm(d) for d in dws]) / w_op
        bound.append(np.prod(w_op) * np.linalg.norm(x) * numeric.drt(b))
    return measured, bound


def check(seed: int = 0) -> Result:
    rng = np.random.default_rng(seed)
    step_gap, norm_gap = induction_gaps()
    lemmas_ok = lemma_spot_check(rng)
    measured, bound = bound_cases(rng, 300)
    numeric_ok = numeric.holds(measured, bound)
    details = (
        f"Lemmas (numeric, 500 draws each): leaky relu (s ∈ {{0, 0.1, 1}}) and tanh are 1-Lipschitz with "
        f"φ(0) = 0, ‖Mv‖ ≤ ‖M‖_op‖v‖: {'ok' if lemmas_ok else 'FAILS'}. Induction step (symbolic, "
        f"slacks t, u ≥ 0 on the hypotheses): bound − estimate = {step_gap}, ‖h_l‖ gap = {norm_gap}, "
        f"both nonnegative polynomials: {is_nonneg_polynomial(step_gap) and is_nonneg_polynomial(norm_gap)}; "
        f"base case l = 0: Δh_0 = 0. Spot-check on 300 random nets: worst excess "
        f"{numeric.excess(measured, bound):.2e} (≤ 0 means never violated)."
    )
    bad_gap, _ = induction_gaps(additive=True)
    # The same comparison on a linear net with ΔW_k = W_k = I: ‖Δf‖ = (2^L − 1)‖x‖ against the additive L‖x‖.
    depth = 3
    ws = [np.eye(2)] * depth
    x = np.array([1.0, 0.0])
    f, f_new = (numeric.forward(v, x, numeric.IDENTITY)[0][-1] for v in (ws, [2 * w for w in ws]))
    meas = np.linalg.norm(f_new - f)
    rejected = not is_nonneg_polynomial(bad_gap) and not numeric.holds([meas], [depth * 1.0])
    return Result(
        name="operator_norm",
        statement=STATEMENT,
        method="symbolic + numeric spot-check",
        verdict=proved_if(lemmas_ok, is_nonneg_polynomial(step_gap), is_nonneg_polynomial(norm_gap), numeric_ok),
        details=details,
        control=Control(
            "additive bound ∏‖W_k‖_op‖x‖·Σ b_k (cross terms dropped)",
            rejected,
            f"step gap {bad_gap} has a negative coefficient; identity net, L = 3, ΔW = W: "
            f"‖Δf‖ = {meas:g} > Σb·‖x‖ = {depth}",
        ),
    )
