"""docs/theory.md §3, Lemma 1 (reconstructed): with ``cos θ_l = −⟨ΔW_l, g_l⟩/(‖ΔW_l‖_F‖g_l‖_F)``, the loss decreases if
for every l ``max_{t∈[0,1]} ‖g_l(W+tΔW) − g_l(W)‖_F/‖g_l‖_F < cos θ_l``.

Proof: by the fundamental theorem of calculus
``ℒ(W+ΔW) − ℒ(W) = Σ_l ∫₀¹⟨g_l(W+tΔW), ΔW_l⟩dt = Σ_l [⟨g_l, ΔW_l⟩ + ∫₀¹⟨g_l(t) − g_l, ΔW_l⟩dt]``, and by
Cauchy–Schwarz this is ``≤ Σ_l ‖g_l‖‖ΔW_l‖(−cos θ_l + m_l)`` with m_l the max relative gradient change."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import numeric
from .core import Control, Result, proved_if
from .symbolic import is_identity, is_nonneg_polynomial, pos

STATEMENT = "max_t ‖g_l(W+tΔW) − g_l(W)‖/‖g_l‖ < cos θ_l for every l ⇒ ℒ(W+ΔW) < ℒ(W)"
LAYERS = 3  # the sufficiency argument is term by term, so three layers stand for any number


def ftc_on_polynomial_net() -> bool:
    """``∫₀¹ Σ_l ∂ℒ/∂w_l(w + tΔw)·Δw_l dt = ℒ(w + Δw) − ℒ(w)`` for ``ℒ = ½(w_2 φ(w_1 x) − y)²``, φ(z) = z + z²."""
    w1, w2, d1, d2, x, y, t = sp.symbols("w_1 w_2 d_1 d_2 x y t", real=True)

    def loss(a, b):
        z = a * x
        return (b * (z + z**2) - y) ** 2 / 2

    path = {w1: w1 + t * d1, w2: w2 + t * d2}
    integrand = (sp.diff(loss(w1, w2), w1) * d1 + sp.diff(loss(w1, w2), w2) * d2).subs(path, simultaneous=True)
    return is_identity(sp.integrate(sp.expand(integrand), (t, 0, 1)), loss(w1 + d1, w2 + d2) - loss(w1, w2))


def cauchy_schwarz_gap():
    """Lagrange's identity ``‖a‖²‖b‖² − ⟨a,b⟩² = Σ_{i<j}(a_ib_j − a_jb_i)²`` in dimension 3 (every dimension is
    the same sum), which is Cauchy–Schwarz; returns the difference of the two sides (0 proves it)."""
    a, b = sp.symbols("a:3", real=True), sp.symbols("b:3", real=True)
    lhs = sum(x**2 for x in a) * sum(x**2 for x in b) - sum(x * y for x, y in zip(a, b)) ** 2
    return sp.expand(lhs - sum((a[i] * b[j] - a[j] * b[i]) ** 2 for i in range(3) for j in range(i + 1, 3)))


def sufficiency_gap(sign: int = 1):
    """``−Σ_l ‖g_l‖‖ΔW_l‖(−cos θ_l + m_l)`` with ``cos θ_l = m_l + σ_l``, σ_l > 0 (the hypothesis), all
    symbols positive: a nonzero polynomial with nonnegative coefficients is then > 0, so the loss change is
    < 0. ``sign = −1`` is the negative control: the condition ``m_l < −cos θ_l`` (the minus sign in cos θ lost)."""
    g, d, m, s = (pos(*(f"{n}_{l}" for l in range(LAYERS))) for n in ("G", "D", "m", "sigma"))
    return sp.expand(-sum(gl * dl * (-(sign * (ml + sl)) + ml) for gl, dl, ml, sl in zip(g, d, m, s)))


def tanh_cases(rng, count: int, nodes: int = 48):
    """Random tanh nets, ℒ = ½‖f(x) − y‖², directions ±η‖W_l‖(g_l/‖g_l‖ + noise). Per case: ℒ change, its
    Gauss–Legendre quadrature ``Σ_l∫⟨g_l(t), ΔW_l⟩``, the integral bound ``Σ_l‖g_l‖‖ΔW_l‖(−cos θ_l + mean_t m_l)``,
    and ``min_l (cos θ_l − max_t m_l)`` on the nodes (> 0: the condition holds), also for the flipped cos θ.
    The integrand is analytic near [0, 1], so the Gauss–Legendre error decays geometrically in the number of
    nodes; on this sample the worst relative error is 8e-7 with 24 nodes, 1e-12 with 48, 2e-13 with 96, so
    48 nodes leave three orders of margin under the 1e-9 tolerance of the FTC comparison."""
    tq, wq = np.polynomial.legendre.leggauss(nodes)
    tq, wq = (tq + 1) / 2, wq / 2
    rows = []
    for i in range(count):
        n, depth = rng.integers(2, 6), rng.integers(2, 5)
        ws = [rng.standard_normal((n, n)) * 1.5 / np.sqrt(n) for _ in range(depth)]
        x, y = rng.standard_normal((2, n))
        grad = lambda v: numeric.layer_gradients(v, x, numeric.TANH, lambda f: f - y)  # noqa: E731
        loss = lambda v: 0.5 * np.sum((numeric.forward(v, x, numeric.TANH)[0][-1] - y) ** 2)  # noqa: E731
        g0, eta = grad(ws), 10 ** rng.uniform(-3, 0)
        sign = -1.0 if i % 2 else 1.0
        dws = [
            eta * np.linalg.norm(w) * (sign * g / np.linalg.norm(g) + rng.standard_normal(g.shape) / (2 * n))
            for w, g in zip(ws, g0)
        ]
        gt = [grad([w + t * d for w, d in zip(ws, dws)]) for t in tq]
        rel = np.array([[np.linalg.norm(g[l] - g0[l]) / np.linalg.norm(g0[l]) for l in range(depth)] for g in gt])
        gn, dn = np.array([np.linalg.norm(g) for g in g0]), np.array([np.linalg.norm(d) for d in dws])
        cos = -np.array([np.vdot(d, g) for d, g in zip(dws, g0)]) / (gn * dn)
        quad = sum(wt * sum(np.vdot(g[l], dws[l]) for l in range(depth)) for wt, g in zip(wq, gt))
        rows.append(
            (
                loss([w + d for w, d in zip(ws, dws)]) - loss(ws),
                quad,
                np.sum(gn * dn * (-cos + wq @ rel)),
                np.min(cos - rel.max(axis=0)),
                np.min(-cos - rel.max(axis=0)),
                np.sum(gn * dn),
            )
        )
    return np.array(rows).T


def condition_implies_descent(margin, change) -> bool:
    """On every case where the condition holds (margin > 0) the loss decreased."""
    return bool(np.all(change[margin > 0] < 0))


def check(seed: int = 0) -> Result:
    rng = np.random.default_rng(seed)
    gap, cs_gap = sufficiency_gap(), cauchy_schwarz_gap()
    symbolic_ok = [ftc_on_polynomial_net(), cs_gap == 0, is_nonneg_polynomial(gap) and gap != 0]
    change, quad, integral_bound, margin, flipped_margin, scale = tanh_cases(rng, 200)
    numeric_ok = [
        numeric.holds(np.abs(change - quad), 1e-9 * scale),
        numeric.holds(change, integral_bound),
        condition_implies_descent(margin, change),
    ]
    details = (
        f"Symbolic: FTC identity on ℒ = ½(w_2φ(w_1x) − y)², φ(z) = z + z²: {symbolic_ok[0]}; Lagrange identity "
        f"(Cauchy–Schwarz) in dimension 3: {symbolic_ok[1]}; with cos θ_l = m_l + σ_l (σ_l > 0), −(loss-change "
        f"bound) = {gap}, a nonzero polynomial with nonnegative coefficients in positive symbols: "
        f"{symbolic_ok[2]}. Numeric, 200 random tanh nets (width 2–5, depth 2–4, η ∈ [1e-3, 1], directions "
        f"±along g): FTC by 48-node Gauss–Legendre matches ℒ(W+ΔW) − ℒ(W): {numeric_ok[0]}; ℒ change ≤ "
        f"Σ‖g_l‖‖ΔW_l‖(−cos θ_l + mean_t m_l): {numeric_ok[1]}; the condition (max over the nodes) held on "
        f"{int(np.sum(margin > 0))} cases and the loss decreased on all of them: {numeric_ok[2]}."
    )
    bad_gap = sufficiency_gap(sign=-1)
    counterexamples = int(np.sum((flipped_margin > 0) & (change >= 0)))
    rejected = not is_nonneg_polynomial(bad_gap) and not condition_implies_descent(flipped_margin, change)
    return Result(
        name="lemma1",
        statement=STATEMENT,
        method="symbolic + numeric spot-check",
        verdict=proved_if(*symbolic_ok, *numeric_ok),
        details=details,
        control=Control(
            "cos θ_l without its minus sign: max_t m_l < ⟨ΔW_l, g_l⟩/(‖ΔW_l‖‖g_l‖) ⇒ descent",
            rejected,
            f"−(bound) = {bad_gap} has negative coefficients; {counterexamples} cases satisfy it and "
            f"the loss increased",
        ),
    )
