"""The modular norm (docs/theory.md §10): the shares against the paper's recursive definition, written here
independently; the dual step against its defining maximisation (a theorem: zero violations) and against
orthogonalised SGD; the sensitivities of residual stacks in closed form."""

import math

import numpy as np
import pytest

from trust.base.errors import TrustError
from trust.core import modular

RNG = np.random.default_rng(0)


# --- the paper's recursive definition, written independently: a module is a tuple tree ------------------------
def lin(o, i, mass=1.0):
    return ("linear", o, i, mass)


def mass(m):
    kind = m[0]
    if kind == "linear":
        return m[3]
    if kind == "bond":
        return 0.0
    if kind == "compose":
        return mass(m[1]) + mass(m[2])
    if kind == "sum":
        return sum(mass(b) for b in m[1])
    return mass(m[1])  # scale


def sensitivity(m):
    kind = m[0]
    if kind in ("linear",):
        return 1.0
    if kind == "bond":
        return m[1]
    if kind == "compose":
        return sensitivity(m[1]) * sensitivity(m[2])
    if kind == "sum":
        return sum(sensitivity(b) for b in m[1])
    return abs(m[2]) * sensitivity(m[1])


def atoms(m):
    kind = m[0]
    if kind == "linear":
        return 1
    if kind == "bond":
        return 0
    if kind == "compose":
        return atoms(m[1]) + atoms(m[2])
    if kind == "sum":
        return sum(atoms(b) for b in m[1])
    return atoms(m[1])


def recursive_norm(m, ws):
    """‖w‖ of the paper: an atom's RMS→RMS operator norm; compose(outer, inner): max(ν_o·(μ/μ_i)‖w_i‖,
    (μ/μ_o)‖w_o‖) over the parts with mass; a sum: max_k (μ/μ_k)‖w_k‖; weights input first (inner first)."""
    kind = m[0]
    if kind == "linear":
        (w,) = ws
        return math.sqrt(m[2] / m[1]) * np.linalg.norm(w, 2)
    if kind == "scale":
        return recursive_norm(m[1], ws)
    total = mass(m)
    if kind == "compose":
        outer, inner = m[1], m[2]
        n_in = atoms(inner)
        parts = []
        if mass(inner):
            parts.append(sensitivity(outer) * total / mass(inner) * recursive_norm(inner, ws[:n_in]))
        if mass(outer):
            parts.append(total / mass(outer) * recursive_norm(outer, ws[n_in:]))
        return max(parts)
    parts, start = [], 0
    for b in m[1]:
        if mass(b):
            parts.append(total / mass(b) * recursive_norm(b, ws[start : start + atoms(b)]))
        start += atoms(b)
    return max(parts)


def build(m):
    """The same tree with trust.core.modular."""
    kind = m[0]
    if kind == "linear":
        return modular.linear(m[1], m[2], m[3])
    if kind == "bond":
        return modular.bond(m[1])
    if kind == "compose":
        return modular.compose(build(m[1]), build(m[2]))
    if kind == "sum":
        return modular.add(*map(build, m[1]))
    return modular.scale(build(m[1]), m[2])


RELU = ("bond", 1.0)
STRUCTURES = [
    ("compose", lin(3, 5), ("compose", RELU, lin(5, 4))),
    ("compose", lin(2, 6, 0.5), ("compose", ("bond", 3.0), ("compose", lin(6, 6, 2.0), lin(6, 4)))),
    ("compose", lin(3, 6), ("sum", [("scale", ("bond", 1.0), 0.75), ("scale", ("compose", RELU, lin(6, 6)), 0.25)])),
    ("sum", [lin(4, 4), ("compose", lin(4, 4, 3.0), ("compose", ("bond", 0.5), lin(4, 4)))]),
    ("compose", ("sum", [("scale", lin(5, 5), 2.0), ("bond", 1.0)]), ("compose", RELU, lin(5, 3, 0.25))),
]


@pytest.mark.parametrize("tree", STRUCTURES)
def test_shares_give_the_papers_recursive_norm_mass_and_sensitivity(tree):
    m = build(tree)
    assert m.mass == pytest.approx(mass(tree), rel=1e-15)
    assert m.sensitivity == pytest.approx(sensitivity(tree), rel=1e-15)
    for _ in range(5):
        ws = [RNG.normal(size=f) * RNG.uniform(0.1, 3) for f in m.fans]
        # float64 SVDs of matrices ≤ 6×6: agreement to rounding
        assert modular.norm(m, ws) == pytest.approx(recursive_norm(tree, ws), rel=1e-12)


def test_a_plain_mlp_gives_each_layer_one_Lth_of_the_step():
    """Unit masses and sensitivities: s_l = 1/L, so ‖w‖_M = L·max_l ‖W_l‖_*."""
    widths = (7, 5, 5, 5, 3)
    m = modular.mlp(widths)
    assert m.shares == pytest.approx((0.25,) * 4, rel=1e-15)
    assert m.fans == ((5, 7), (5, 5), (5, 5), (3, 5))
    assert (m.mass, m.sensitivity) == (4.0, 1.0)


def test_residual_stacks_sensitivity_closed_forms():
    """trust's residual MLP (h + φ(Wh)): sensitivity 2 a block, so an early layer's share is divided by 2 per
    block after it; the paper's depth-scaled block: sensitivity 1 at every depth."""
    widths = (4,) + (6,) * 5 + (3,)  # L = 6: 4 residual blocks
    plain = modular.mlp(widths, residual_hidden=True)
    assert plain.sensitivity == 2.0**4
    scaled = modular.mlp(widths, residual_hidden=True, depth_scaled=True)
    assert scaled.sensitivity == pytest.approx(1.0, rel=1e-14)
    # unscaled: the first layer sits behind four blocks of sensitivity 2, the last behind none
    assert plain.shares[0] / plain.shares[-1] == pytest.approx(2.0**-4, rel=1e-14)
    assert sum(scaled.shares) == pytest.approx(1.0, rel=1e-14)  # sensitivities 1: the shares split the step


@pytest.mark.parametrize("tree", STRUCTURES)
def test_the_dual_step_has_the_target_norm_and_maximises_the_inner_product(tree):
    """dualize(g, t) has ‖·‖_M = t and ⟨g, dualize(g, 1)⟩ = ‖g‖^†; no direction of unit modular norm does better
    (a theorem: checked on 200 random directions, zero violations)."""
    m = build(tree)
    g = [RNG.normal(size=f) for f in m.fans]
    step = modular.dualize(m, g, 0.3)
    assert modular.norm(m, step) == pytest.approx(0.3, rel=1e-12)
    best = sum(float(np.sum(a * b)) for a, b in zip(g, modular.dualize(m, g)))
    assert best == pytest.approx(modular.dual_norm(m, g), rel=1e-12)
    for _ in range(200):
        d = [RNG.normal(size=f) for f in m.fans]
        d = [x / modular.norm(m, d) for x in d]
        assert sum(float(np.sum(a * b)) for a, b in zip(g, d)) <= best * (1 + 1e-12)


def test_the_dual_step_of_a_square_mlp_is_orthogonalised_sgd_at_rate_eta_over_L():
    widths = (6, 6, 6, 6)
    m = modular.mlp(widths)
    g = [RNG.normal(size=f) for f in m.fans]
    for step, gl in zip(modular.dualize(m, g, 0.6), g):
        u, _, vt = np.linalg.svd(gl)
        np.testing.assert_allclose(step, 0.6 / 3 * u @ vt, rtol=1e-12, atol=1e-14)


def test_bad_modules_and_weights_are_refused():
    with pytest.raises(TrustError, match="a linear atom needs fans"):
        modular.linear(0, 3)
    with pytest.raises(TrustError, match="sensitivity must be > 0"):
        modular.bond(0.0)
    with pytest.raises(TrustError, match="the module has 2 atoms, got 1 tensors"):
        modular.norm(modular.mlp((3, 4, 2)), [np.ones((4, 3))])
    with pytest.raises(TrustError, match=r"a 4×3 atom got a tensor of shape \(3, 3\)"):
        modular.norm(modular.mlp((3, 4, 2)), [np.ones((3, 3)), np.ones((2, 4))])
