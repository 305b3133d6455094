"""The modular norm (docs/theory.md §10): the shares against the paper's recursive definition, written here
independently; the dual step against its defining maximisation (a theorem: zero violations) and against
orthogonalised SGD; the sensitivities of residual stacks in closed form."""

import math

import numpy as np
import pytest

from trust.base.errors import TrustError
from trust.core import modular

RNG = np.random.default_rng(0)


def shapes(m):
    return [a.shape for a in m.atoms]


# --- the paper's recursive definition, written independently: a module is a tuple tree ------------------------
def lin(o, i, mass=1.0):
    return ("linear", o, i, mass)


def cnv(k, c_in, c_out, stride=1, mass=1.0):
    return ("conv", k, c_in, c_out, stride, mass)


def bia(n, mass=1.0):
    return ("bias", n, mass)


ATOMS = ("linear", "conv", "bias")


def atom_shape(m):
    return {"linear": lambda: (m[1], m[2]), "conv": lambda: (m[1], m[1], m[2], m[3]), "bias": lambda: (m[1],)}[m[0]]()


def atom_gain(m, w):
    """The largest RMS gain bound of docs/theory.md §10.1 and §10.5, from each atom's definition: a dense layer's
    √(in/out)‖W‖₂; a convolution's stride·k²·√(c_in/c_out) times its largest position's ‖W_ij‖₂; a bias's RMS."""
    if m[0] == "linear":
        return math.sqrt(m[2] / m[1]) * np.linalg.norm(w, 2)
    if m[0] == "bias":
        return np.sqrt(np.mean(w**2))
    k, c_in, c_out, stride = m[1:5]
    worst = max(np.linalg.norm(w[i, j], 2) for i in range(k) for j in range(k))
    return stride * k * k * math.sqrt(c_in / c_out) * worst


def mass(m):
    kind = m[0]
    if kind in ATOMS:
        return m[-1]
    if kind == "bond":
        return 0.0
    if kind == "compose":
        return mass(m[1]) + mass(m[2])
    if kind == "sum":
        return sum(mass(b) for b in m[1])
    return mass(m[1])  # scale


def sensitivity(m):
    kind = m[0]
    if kind in ATOMS:
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
    if kind in ATOMS:
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
    if kind in ATOMS:
        (w,) = ws
        return atom_gain(m, w)
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
    if kind == "conv":
        return modular.conv(atom_shape(m), m[4], m[5])
    if kind == "bias":
        return modular.bias(m[1], m[2])
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
    # convolutions (strided, 1×1 projection) and a bias, as in a ResNet block and its head
    (
        "compose",
        ("compose", bia(3, 0.5), lin(3, 4)),
        ("sum", [("compose", cnv(3, 4, 4), ("compose", RELU, cnv(3, 2, 4, 2))), cnv(1, 2, 4, 2, 2.0)]),
    ),
]


@pytest.mark.parametrize("tree", STRUCTURES)
def test_shares_give_the_papers_recursive_norm_mass_and_sensitivity(tree):
    m = build(tree)
    assert m.mass == pytest.approx(mass(tree), rel=1e-15)
    assert m.sensitivity == pytest.approx(sensitivity(tree), rel=1e-15)
    for _ in range(5):
        ws = [RNG.normal(size=f) * RNG.uniform(0.1, 3) for f in shapes(m)]
        # float64 SVDs of matrices ≤ 6×6: agreement to rounding
        assert modular.norm(m, ws) == pytest.approx(recursive_norm(tree, ws), rel=1e-12)


def test_a_plain_mlp_gives_each_layer_one_Lth_of_the_step():
    """Unit masses and sensitivities: s_l = 1/L, so ‖w‖_M = L·max_l ‖W_l‖_*."""
    widths = (7, 5, 5, 5, 3)
    m = modular.mlp(widths)
    assert m.shares == pytest.approx((0.25,) * 4, rel=1e-15)
    assert shapes(m) == [(5, 7), (5, 5), (5, 5), (3, 5)]
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
    g = [RNG.normal(size=f) for f in shapes(m)]
    step = modular.dualize(m, g, 0.3)
    assert modular.norm(m, step) == pytest.approx(0.3, rel=1e-12)
    best = sum(float(np.sum(a * b)) for a, b in zip(g, modular.dualize(m, g)))
    assert best == pytest.approx(modular.dual_norm(m, g), rel=1e-12)
    for _ in range(200):
        d = [RNG.normal(size=f) for f in shapes(m)]
        d = [x / modular.norm(m, d) for x in d]
        assert sum(float(np.sum(a * b)) for a, b in zip(g, d)) <= best * (1 + 1e-12)


def test_the_dual_step_of_a_square_mlp_is_orthogonalised_sgd_at_rate_eta_over_L():
    widths = (6, 6, 6, 6)
    m = modular.mlp(widths)
    g = [RNG.normal(size=f) for f in shapes(m)]
    for step, gl in zip(modular.dualize(m, g, 0.6), g):
        u, _, vt = np.linalg.svd(gl)
        np.testing.assert_allclose(step, 0.6 / 3 * u @ vt, rtol=1e-12, atol=1e-14)


def test_bad_modules_and_weights_are_refused():
    with pytest.raises(TrustError, match=r"an atom is dense \(fan_out, fan_in\)"):
        modular.linear(0, 3)
    with pytest.raises(TrustError, match="stride ≥ 1"):
        modular.conv((3, 3, 2, 2), stride=0)
    with pytest.raises(TrustError, match="sensitivity must be > 0"):
        modular.bond(0.0)
    with pytest.raises(TrustError, match="the module has 2 atoms, got 1 tensors"):
        modular.norm(modular.mlp((3, 4, 2)), [np.ones((4, 3))])
    with pytest.raises(TrustError, match=r"a dense atom of shape \(4, 3\) got a tensor of shape \(3, 3\)"):
        modular.norm(modular.mlp((3, 4, 2)), [np.ones((3, 3)), np.ones((2, 4))])


CONVOLUTIONS = [(3, 2, 5, 1, 6), (3, 4, 3, 2, 7), (1, 3, 6, 2, 8), (3, 1, 4, 1, 5)]  # k, c_in, c_out, stride, size


@pytest.mark.parametrize("k, c_in, c_out, stride, size", CONVOLUTIONS)
def test_a_convolutions_atom_norm_bounds_its_rms_gain(k, c_in, c_out, stride, size):
    """docs/theory.md §10.5, a theorem: for every image x, ‖conv(W, x)‖_RMS ≤ ‖W‖_*·‖x‖_RMS (same padding, odd
    sizes included) — zero violations on 200 random kernels and images (structured ones too: constant images,
    one hot pixel), float64."""
    from trust.core import nets

    atom = modular.Atom("conv", (k, k, c_in, c_out), stride)
    for i in range(200):
        w = RNG.normal(size=atom.shape) * RNG.uniform(0.1, 3)
        pixel = np.pad(RNG.normal(size=(1, 1, 1, c_in)), ((0, 0), (2, size - 3), (1, size - 2), (0, 0)))
        constant = np.ones((1, size, size, c_in)) * RNG.normal(size=c_in)
        x = (RNG.normal(size=(1, size, size, c_in)), constant, pixel)[i % 3]
        y = np.asarray(nets._conv(x, w, stride))
        gain = np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x**2))
        assert gain <= modular.atom_norm(w, atom) * (1 + 1e-12)


def test_a_one_by_one_convolution_reaches_its_atom_norm():
    """Stride 1, 1×1: a dense layer at every pixel, so a constant image along the top right singular vector
    attains ‖W‖_* = √(c_in/c_out)‖W‖₂ (the bound is tight there)."""
    from trust.core import nets

    w = RNG.normal(size=(1, 1, 4, 6))
    _, _, vt = np.linalg.svd(w[0, 0].T)
    x = np.broadcast_to(vt[0], (1, 5, 5, 4))
    y = np.asarray(nets._conv(x, w, 1))
    gain = np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x**2))
    assert gain == pytest.approx(modular.atom_norm(w, modular.Atom("conv", (1, 1, 4, 6))), rel=1e-12)


def test_the_change_bound_of_a_plain_mlp_is_the_product_form_and_a_bias_adds_its_step():
    """docs/theory.md §10.3: d = ∏(‖W_l‖_* + ‖ΔW_l‖_*) − ∏‖W_l‖_*, e = 0; a final bias of step δ adds e = δ."""
    norms, steps = [0.5, 2.0, 1.5, 0.8], [0.1, 0.3, 0.05, 0.2]
    d, e = modular.change_bound(modular.mlp((5, 6, 6, 6, 3)), norms, steps)
    assert d == pytest.approx(np.prod(np.add(norms, steps)) - np.prod(norms), rel=1e-14) and e == 0
    with_bias = modular.compose(modular.bias(3), modular.mlp((5, 6, 3)))
    d, e = modular.change_bound(with_bias, [2.0, 3.0, 0.7], [0.1, 0.2, 0.4])
    assert (d, e) == (pytest.approx(2.1 * 3.2 - 6.0, rel=1e-14), pytest.approx(0.4, rel=1e-14))
    with pytest.raises(TrustError, match="the module has 3 atoms, got 2 norms"):
        modular.change_bound(with_bias, [1.0, 1.0], [0.1, 0.1, 0.1])


def test_a_resnets_sensitivity_is_two_per_block():
    """Every block sums two branches of sensitivity 1 (the identity or the projection, and the convolutions)."""
    plan = [(4, 4, 1, False), (4, 8, 2, True), (8, 8, 1, False), (8, 16, 2, True)]
    m = modular.resnet(1, plan, 10)
    assert m.sensitivity == 2.0**4 and m.mass == 2 + 2 * 4 + 2 + 1  # stem, 2 a block, 2 projections, head, bias
    assert [a.kind for a in m.atoms] == ["conv"] * 11 + ["dense", "bias"]


def test_hidden_layers_tared_to_one_leave_the_first_and_last_a_third_of_the_step():
    """The alternative mass allocation (docs/theory.md §10.1): first and last layers mass 1, the four hidden
    layers together mass 1: shares 1/3, 1/12 × 4, 1/3 — against 1/6 each with unit masses; the same norm as the
    paper's recursive definition with the hidden stack's mass set to 1."""
    widths = (5,) + (4,) * 5 + (3,)
    tared = modular.mlp(widths, hidden_mass=1.0)
    assert tared.shares == pytest.approx((1 / 3,) + (1 / 12,) * 4 + (1 / 3,), rel=1e-14)
    assert modular.mlp(widths).shares == pytest.approx((1 / 6,) * 6, rel=1e-14)
    assert tared.mass == 3.0 and tared.sensitivity == 1.0
    hidden = ("compose", RELU, lin(4, 4, 0.25))  # each hidden layer mass 1/4: the stack's mass is 1
    tree = ("compose", lin(3, 4), ("compose", hidden, ("compose", hidden, ("compose", hidden,
            ("compose", hidden, ("compose", RELU, lin(4, 5)))))))  # fmt: skip
    ws = [RNG.normal(size=f) for f in shapes(tared)]
    assert modular.norm(tared, ws) == pytest.approx(recursive_norm(tree, ws), rel=1e-12)
