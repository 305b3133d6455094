"""Perturbation directions have the relative sizes they promise (docs/theory.md §1, §3, §5)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trust import nets, perturb, tree
from trust.errors import TrustError


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
    grads[1]["w"] = jnp.zeros_like(grads[1]["w"])
    with pytest.raises(TrustError, match=r"gradient is zero in tensor 2\.w"):
        perturb.along_gradient(params, grads)
    grads[1]["w"] = grads[1]["w"].at[0, 0].set(jnp.nan)
    with pytest.raises(TrustError, match="NaN"):
        perturb.madam(params, grads)
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
