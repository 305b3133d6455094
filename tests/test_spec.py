"""What each leaf is (trust.base.spec): declared, inferred only for trust's own nets, refused by name otherwise —
never read from a leaf's number of dimensions alone (docs/theory.md §1, "Leaf roles")."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED
from hypothesis import given, settings
from hypothesis import strategies as st

from trust.base import linalg, spec
from trust.base.errors import TrustError
from trust.core import nets, optim


def test_trust_nets_are_read_by_their_names():
    mlp = nets.experiment_mlp(6, 5, 3, 4).init(jax.random.key(0))
    assert spec.record(mlp) == {
        "1.b": "bias", "1.w": "linear (1,)→(0,)", "2.b": "bias", "2.w": "linear (1,)→(0,)", "3.b": "bias",
        "3.w": "linear (1,)→(0,)",
    }  # fmt: skip
    resnet = nets.resnet((8, 8, 1), 10, depth=8, norm="batch", width=4).init(jax.random.key(0))
    roles = spec.record(resnet)
    assert roles["1.w"] == "linear (0, 1, 2)→(3,)"  # HWIO
    assert roles["2.norm1.scale"] == "gain" and roles["2.norm1.shift"] == "shift"
    assert roles["5.w"] == "linear (1,)→(0,)" and roles["5.b"] == "bias"
    assert spec.layer_flags(resnet) == [r.startswith(("linear", "gain")) for r in roles.values()]


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"kernel": np.ones((3, 2))}, r"tensor kernel \(shape \(3, 2\)\) is not named as in trust's own nets"),
        ([{"w": np.ones((3, 3, 2))}], r"tensor 1\.w \(shape \(3, 3, 2\)\)"),  # a 1-D convolution: not trust's
        ([{"b": np.ones((2, 1, 1))}], r"tensor 1\.b \(shape \(2, 1, 1\)\)"),  # Equinox's convolution bias
        ([{"scale": np.ones((2, 4, 4))}], r"tensor 1\.scale"),  # Equinox's LayerNorm weight over (C, H, W)
    ],
)
def test_a_leaf_whose_role_is_not_certain_is_refused_by_name(tree, message):
    with pytest.raises(TrustError, match=message + r".*pass spec="):
        spec.layer_flags(tree)


def test_a_declared_spec_as_a_mapping_or_a_tree():
    params = {"enc": {"kernel": np.ones((4, 3)), "bias": np.ones((1, 3))}, "norm": {"weight": np.ones((3, 2, 2))}}
    by_name = {"enc.kernel": spec.dense(), "enc.bias": spec.bias(), "norm.weight": spec.gain()}
    by_tree = {"enc": {"kernel": spec.dense(), "bias": spec.bias()}, "norm": {"weight": spec.gain()}}
    assert spec.layer_flags(params, by_name) == spec.layer_flags(params, by_tree) == [False, True, True]
    assert linalg.operator_norms(params, spec=by_tree)[2] == 1.0  # a gain over (3, 2, 2) is diag of 12 entries
    with pytest.raises(TrustError, match=r"tensor norm\.weight has no entry in the spec"):
        spec.resolve(params, {"enc.kernel": spec.dense(), "enc.bias": spec.bias()})
    with pytest.raises(TrustError, match=r"the spec names 'enc\.w', which is not a tensor"):
        spec.resolve(params, {**by_name, "enc.w": spec.dense()})
    with pytest.raises(TrustError, match="neither a mapping"):
        spec.resolve(params, {"enc": {"kernel": spec.dense()}})
    with pytest.raises(TrustError, match=r"tensor enc\.kernel has shape \(4, 3\), but its spec linear \(0, 1, 2\)→"):
        spec.resolve(params, {**by_name, "enc.kernel": spec.conv("HWIO")})
    with pytest.raises(TrustError, match=r"tensor norm\.weight is state"):
        spec.layer_flags(params, {**by_name, "norm.weight": spec.state()})


@pytest.mark.parametrize("layout", ["HWI", "HWIOO", "HXIO", "HHIO"])
def test_a_bad_convolution_layout_is_refused(layout):
    with pytest.raises(TrustError, match="a convolution layout names O, I"):
        spec.conv(layout)


def test_bad_roles_and_axes_are_refused():
    with pytest.raises(TrustError, match="role is one of"):
        spec.Leaf("weight")
    with pytest.raises(TrustError, match="disjoint, nonempty"):
        spec.linear((0,), (0,))
    with pytest.raises(TrustError, match="only a linear leaf"):
        spec.Leaf("bias", (0,), (1,))
    with pytest.raises(TrustError, match="'in_out' or 'out_in'"):
        spec.dense("io")


@pytest.mark.parametrize(
    ("layout", "axes"),  # the axes that bring the layout to HWIO
    [("HWIO", (0, 1, 2, 3)), ("OIHW", (2, 3, 1, 0)), ("IOHW", (2, 3, 0, 1)), ("OHWI", (1, 2, 3, 0))],
)
def test_every_convolution_layout_is_the_same_patch_matrix(layout, axes):
    """A kernel stored in any layout reads as the HWIO kernel's (k·k·c_in, c_out) matrix, row for row; back from
    the matrix it is the stored tensor again."""
    rng = np.random.default_rng(SEED)
    hwio = rng.standard_normal((3, 2, 4, 5))
    stored = np.transpose(hwio, np.argsort(axes))
    np.testing.assert_array_equal(np.transpose(stored, axes), hwio)
    leaf = spec.conv(layout)
    np.testing.assert_array_equal(spec.to_matrix(stored, leaf), hwio.reshape(24, 5))
    np.testing.assert_array_equal(spec.from_matrix(spec.to_matrix(stored, leaf), leaf, stored.shape), stored)


@settings(max_examples=30, deadline=None)
@given(st.permutations(range(4)), st.integers(1, 3))
def test_any_linear_leaf_round_trips_through_its_matrix(order, n_in):
    """to_matrix then from_matrix is the identity for any split of any axis order into inputs and outputs, on NumPy
    and on JAX arrays alike (the optimiser's traced polar factor uses the JAX path)."""
    shape = (2, 3, 4, 5)
    t = np.arange(np.prod(shape), dtype=float).reshape(shape)
    leaf = spec.linear(order[:n_in], order[n_in:])
    m = spec.to_matrix(t, leaf)
    assert m.shape == spec.matrix_shape(leaf, shape)
    np.testing.assert_array_equal(spec.from_matrix(m, leaf, shape), t)
    np.testing.assert_array_equal(np.asarray(spec.from_matrix(spec.to_matrix(jnp.asarray(t), leaf), leaf, shape)), t)


def test_the_optimisers_polar_factor_reads_the_layout():
    """Orthogonalised SGD's step of an OIHW kernel is the HWIO kernel's step, transposed: the layout is read from
    the spec, not guessed from the shape (float64: agreement to rounding)."""
    rng = np.random.default_rng(SEED)
    hwio = jnp.asarray(rng.standard_normal((3, 3, 4, 6)))
    oihw = jnp.transpose(hwio, (3, 2, 0, 1))
    polar_hwio = optim.scale_by_polar(spec.conv("HWIO"))
    polar_oihw = optim.scale_by_polar(spec.conv("OIHW"))
    step_hwio, _ = polar_hwio.update(hwio, polar_hwio.init(hwio))
    step_oihw, _ = polar_oihw.update(oihw, polar_oihw.init(oihw))
    np.testing.assert_allclose(np.asarray(step_oihw), np.transpose(np.asarray(step_hwio), (3, 2, 0, 1)), atol=1e-12)
    np.testing.assert_allclose(np.asarray(step_hwio), linalg.polar(hwio, spec.conv("HWIO")), atol=1e-12)
