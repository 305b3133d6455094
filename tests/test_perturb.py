"""Perturbation directions have the relative sizes they promise (docs/theory.md §1, §3, §5)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trust.base import linalg, tree
from trust.base.errors import TrustError
from trust.core import nets, perturb


@pytest.fixture
def net_params(key):
    net = nets.experiment_mlp(6, 7, 4, 3)
    params = net.init(key)
    grads = jax.tree_util.tree_map(lambda w: jax.random.normal(jax.random.fold_in(key, w.size), w.shape), params)
    return params, grads


def test_gradient_and_random_directions_have_prescribed_sizes(key, net_params):
    params, grads = net_params
    sizes = np.linspace(0.1, 2.0, 8)
    for u in (perturb.along_gradient(params, grads, sizes), perturb.gaussian(key, params, sizes)):
        np.testing.assert_allclose(tree.relative_size(u, params), sizes, rtol=1e-12)
    u = perturb.along_gradient(params, grads)
    for ul, gl in zip(jax.tree_util.tree_leaves(u), jax.tree_util.tree_leaves(grads)):
        cos = -jnp.vdot(ul, gl) / (jnp.linalg.norm(ul) * jnp.linalg.norm(gl))
        assert float(cos) == pytest.approx(1.0, abs=1e-12)  # exactly along −g


def test_scaled_direction_is_eps_times_w(net_params):
    params, _ = net_params
    eps = np.array([0.5, -0.3, 2.0, 0.0, 1.0, 1.0, -0.9, 0.1])
    u = perturb.scaled(params, eps)
    for e, ul, wl in zip(eps, jax.tree_util.tree_leaves(u), jax.tree_util.tree_leaves(params)):
        np.testing.assert_allclose(ul, e * wl, rtol=1e-15)
    np.testing.assert_allclose(tree.relative_size(u, params), np.abs(eps), rtol=1e-13)


def test_madam_moves_every_subset_by_eta(net_params):
    params, grads = net_params
    grads[0]["w"] = grads[0]["w"].at[0, 0].set(0.0)  # a zero gradient entry does not move its weight
    eta = 0.03
    moved = perturb.perturbed(params, perturb.madam(params, grads), eta)
    for w, w1, g in zip(*(jax.tree_util.tree_leaves(t) for t in (params, moved, grads))):
        ratio = np.abs(np.asarray(w1 - w)) / np.abs(np.asarray(w))
        np.testing.assert_allclose(ratio, np.where(np.asarray(g) != 0, eta, 0.0), rtol=1e-12)
        # signs never flip for η < 1, and the weight moves against the gradient
        assert np.all(np.sign(w1) == np.sign(w))
        assert np.all(np.asarray((w1 - w) * g) <= 0)


def test_single_layer_keeps_one_tensor(net_params):
    params, grads = net_params
    u = perturb.single_layer(perturb.along_gradient(params, grads), "3.w")
    names = tree.leaf_names(u)
    for name, leaf in zip(names, jax.tree_util.tree_leaves(u)):
        assert (float(jnp.linalg.norm(leaf)) > 0) == (name == "3.w")
    with pytest.raises(TrustError, match="no tensor"):
        perturb.single_layer(u, "9.w")


def test_zero_norm_tensor_is_not_moved_and_zero_gradient_is_an_error(key):
    net = nets.experiment_mlp(4, 5, 2, 3, init_scheme="gaussian")  # zero biases
    params = net.init(key)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    u = perturb.along_gradient(params, grads)
    assert all(float(jnp.linalg.norm(p["b"])) == 0 for p in u)
    np.testing.assert_array_equal(tree.relative_size(u, params), [0, 1, 0, 1])
    # a zero tensor whose gradient is zero too is simply not moved (its direction is not needed)
    quiet = [{"w": g["w"], "b": jnp.zeros_like(g["b"])} for g in grads]
    np.testing.assert_array_equal(tree.relative_size(perturb.along_gradient(params, quiet), params), [0, 1, 0, 1])
    grads[1]["w"] = jnp.zeros_like(grads[1]["w"])
    with pytest.raises(TrustError, match=r"gradient is zero in tensor 2\.w"):
        perturb.along_gradient(params, grads)
    grads[1]["w"] = grads[1]["w"].at[0, 0].set(jnp.nan)
    with pytest.raises(TrustError, match="NaN"):
        perturb.madam(params, grads)
    with pytest.raises(TrustError, match=r"gradient has NaN or Inf entries in tensor 2\.w"):
        perturb.along_gradient(params, grads)
    with pytest.raises(TrustError, match="one value per tensor"):
        perturb.gaussian(key, params, [1.0, 2.0])


def test_single_layer_accepts_every_index_and_no_other():
    u = [{"w": jnp.ones((2, 2)), "b": jnp.ones(2)}, {"w": jnp.ones((1, 2)), "b": jnp.ones(1)}]  # leaves 1.b 1.w 2.b 2.w
    assert [float(jnp.sum(t)) for t in tree.leaves(perturb.single_layer(u, -4))] == [2.0, 0.0, 0.0, 0.0]
    assert [float(jnp.sum(t)) for t in tree.leaves(perturb.single_layer(u, 3))] == [0.0, 0.0, 0.0, 2.0]
    for bad in (4, -5, "3.w"):
        with pytest.raises(TrustError, match=r"no tensor .*; tensors are 1\.b, 1\.w, 2\.b, 2\.w"):
            perturb.single_layer(u, bad)


def test_madam_direction_names_a_bad_gradient(net_params):
    params, grads = net_params
    bad = jax.tree_util.tree_map(lambda g: jnp.full_like(g, jnp.nan), grads)
    with pytest.raises(TrustError, match=r"^gradient has NaN or Inf entries in tensor 1\.b$"):
        perturb.madam(params, bad)


def test_direction_registry_builds_each_direction(key, net_params):
    params, grads = net_params
    ws, gs = tree.leaves(params), tree.leaves(grads)
    # each kind against its formula, computed here leaf by leaf in NumPy (float64: agreement to rounding)
    expected = {
        "gradient": [-np.linalg.norm(w) * np.asarray(g) / np.linalg.norm(g) for w, g in zip(ws, gs)],
        "scaled": [np.asarray(w) for w in ws],
        "madam": [-np.abs(w) * np.sign(g) for w, g in zip(ws, gs)],
        "random": tree.leaves(perturb.gaussian(key, params)),
    }
    for kind, leaves in expected.items():
        got = tree.leaves(perturb.direction(kind, params, grads, key))
        for u, e in zip(got, leaves):
            np.testing.assert_allclose(u, e, rtol=1e-12, atol=1e-15)
    for kwargs, kept in (({"layer": 2}, "2.w"), ({}, "1.w")):  # by default the first weight matrix
        single = perturb.direction("single", params, grads, key, **kwargs)
        for name, u, e in zip(tree.leaf_names(single), tree.leaves(single), expected["gradient"]):
            np.testing.assert_allclose(u, e if name == kept else 0.0, rtol=1e-12, atol=1e-15)
    with pytest.raises(TrustError, match="unknown perturbation 'sideways'; choose one of gradient, random"):
        perturb.direction("sideways", params, grads, key)


# the three geometries of docs/theory.md §8
@pytest.fixture
def resnet_params(key):
    """A ResNet-8 with BatchNorm: 3×3 kernels, 1×1 projections, diag(s) scales, shifts and biases."""
    net = nets.resnet((8, 8, 1), 10, norm="batch", width=4)
    params = net.init(key)
    # NumPy draws: an eager float64 jax.random.normal compiles once per tensor shape (~16 s for this net's shapes)
    rng = np.random.default_rng(2)
    grads = jax.tree_util.tree_map(lambda w: rng.standard_normal(w.shape), params)
    return params, grads


def _numpy_sizes(geometry, delta, params):
    """Each geometry's relative size, leaf by leaf, from NumPy's dense SVD (independent of trust.base.linalg)."""
    out = []
    for name, d, w in zip(tree.leaf_names(params), jax.tree_util.tree_leaves(delta), jax.tree_util.tree_leaves(params)):
        d, w = np.asarray(d, dtype=float), np.asarray(w, dtype=float)
        if geometry == "frobenius":
            out.append(np.linalg.norm(d) / np.linalg.norm(w))
        elif geometry == "elementwise":
            out.append(np.max(np.abs(d) / np.abs(w)))
        elif name.endswith("scale"):  # diag(s): σ are |s_i|
            out.append(np.abs(d).max() / np.abs(w).max())
        else:
            as_matrix = (lambda t: t.reshape(1, -1)) if w.ndim == 1 else (lambda t: t.reshape(-1, t.shape[-1]))
            out.append(np.linalg.norm(as_matrix(d), 2) / np.linalg.norm(as_matrix(w), 2))
    return np.array(out)


@pytest.mark.parametrize("geometry", list(perturb.GEOMETRIES))
@pytest.mark.parametrize("model", ["net_params", "resnet_params"])
def test_each_geometry_gives_its_prescribed_sizes_exactly(key, request, model, geometry):
    params, grads = request.getfixturevalue(model)
    params = nets.nonzero_biases(key, params)  # every tensor nonzero, every entry nonzero (Gaussian draws)
    n = len(jax.tree_util.tree_leaves(params))
    sizes = np.linspace(0.2, 1.5, n)
    minus_g = jax.tree_util.tree_map(jnp.negative, grads)
    # a Gaussian raw direction drawn by NumPy: perturb.gaussian's one compiled draw for all of the ResNet's tensors
    # takes ~20 s to compile in float64, and the random direction itself is tested in test_measure
    rng = np.random.default_rng(3)
    gaussian = jax.tree_util.tree_map(lambda w: rng.standard_normal(w.shape), params)
    for raw in (minus_g, perturb.orthogonalised(grads), gaussian):
        u = perturb.GEOMETRIES[geometry].step(params, raw, sizes)
        # float64 norms and SVDs of ≤ 600-entry tensors: the prescribed size to ~1e-15 relative
        np.testing.assert_allclose(_numpy_sizes(geometry, u, params), sizes, rtol=1e-12)
        np.testing.assert_allclose(perturb.GEOMETRIES[geometry].size(u, params), sizes, rtol=1e-12)
        if geometry == "elementwise":  # every entry, not only the largest, moves by s_l·|W_ij|
            for s, ul, wl in zip(sizes, jax.tree_util.tree_leaves(u), jax.tree_util.tree_leaves(params)):
                np.testing.assert_allclose(np.abs(ul), s * np.abs(wl), rtol=1e-15)


def test_geometries_along_minus_g_are_the_papers_directions(net_params):
    params, grads = net_params
    minus_g = jax.tree_util.tree_map(jnp.negative, grads)
    for a, b in [
        (perturb.frobenius_step(params, minus_g), perturb.along_gradient(params, grads)),
        (perturb.elementwise_step(params, minus_g), perturb.madam(params, grads)),
    ]:
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
            np.testing.assert_allclose(x, y, rtol=1e-14)


def test_spectral_step_on_a_layer_beyond_the_exact_svd(key):
    """A 300×300 layer takes the power-iteration path; its size is right to the iteration's tolerance."""
    net = nets.experiment_mlp(300, 300, 2, 3)
    params = net.init(key)
    raw = perturb.gaussian(jax.random.fold_in(key, 1), params)
    u = perturb.spectral_step(params, raw, 0.5, tol=1e-8)
    w0, u0 = np.asarray(params[0]["w"]), np.asarray(u[0]["w"])
    assert min(w0.shape) > linalg.EXACT_BELOW
    # each operator norm is within tol·σ of the true one, so the ratio is within ~2·tol of 0.5
    assert np.linalg.norm(u0, 2) / np.linalg.norm(w0, 2) == pytest.approx(0.5, rel=3e-8)


def test_orthogonalised_gradient_is_minus_the_polar_factor(resnet_params):
    _, grads = resnet_params
    q = perturb.orthogonalised(grads)
    for name, ql, gl in zip(tree.leaf_names(grads), jax.tree_util.tree_leaves(q), jax.tree_util.tree_leaves(grads)):
        ql, gl = np.asarray(ql), np.asarray(gl)
        if name.endswith("scale"):
            np.testing.assert_array_equal(ql, -np.sign(gl))
            continue
        m = ql.reshape(1, -1) if ql.ndim == 1 else ql.reshape(-1, ql.shape[-1])
        s = np.linalg.svd(m, compute_uv=False)
        np.testing.assert_allclose(s, np.ones_like(s), rtol=1e-12)  # orthogonal: every singular value 1
        g = gl.reshape(m.shape)
        assert -np.sum(m * g) == pytest.approx(np.linalg.svd(g, compute_uv=False).sum(), rel=1e-12)  # ⟨−Q, g⟩ = ‖g‖_*


def test_geometry_steps_refuse_an_undefined_direction(net_params):
    params, grads = net_params
    grads[1]["w"] = jnp.zeros_like(grads[1]["w"])
    for step in (perturb.frobenius_step, perturb.spectral_step, perturb.elementwise_step):
        with pytest.raises(TrustError, match=r"direction is zero in tensor 2\.w"):
            step(params, grads)
    grads[1]["w"] = grads[1]["w"].at[0, 0].set(jnp.inf)
    with pytest.raises(TrustError, match="direction has NaN or Inf"):
        perturb.spectral_step(params, grads)
    moved = perturb.elementwise_step(params, jax.tree_util.tree_map(jnp.ones_like, params))
    assert perturb.elementwise_size(moved, jax.tree_util.tree_map(jnp.zeros_like, params)).tolist() == [np.inf] * 8
    np.testing.assert_array_equal(perturb.spectral_size(jax.tree_util.tree_map(jnp.zeros_like, params), params), 0.0)
