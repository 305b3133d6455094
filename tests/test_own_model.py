"""A model the library has never seen — any ``apply(params, x)`` over a pytree of dicts (docs/theory.md §1):
with its spec declared (which tensor is what), the gradient, the slice, the measurements and the optimisers run on
it unchanged; without one, a tensor whose role is not certain is refused by name."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from trust.base import spec, tree
from trust.base.errors import TrustError
from trust.core import measure, optim, perturb

SPEC = {"encoder.kernel": spec.dense("in_out"), "decoder.kernel": spec.dense("in_out"), "decoder.offset": spec.bias()}


def apply(params, x):
    """A tanh encoder and an affine decoder with its own key names (not the library's w/b)."""
    return (
        jnp.tanh(x @ params["encoder"]["kernel"]) @ params["decoder"]["kernel"] + params["decoder"]["offset"][None, :]
    )


def _setup(key, n=16, d=5, h=7, k=3):
    keys = jax.random.split(key, 4)
    params = {
        "encoder": {"kernel": jax.random.normal(keys[0], (d, h)) / d**0.5},
        "decoder": {"kernel": jax.random.normal(keys[1], (h, k)) / h**0.5, "offset": 0.1 * jnp.ones(k)},
    }
    return params, jax.random.normal(keys[2], (n, d)), jax.random.randint(keys[3], (n,), 0, k)


def test_gradient_of_an_unseen_model_matches_hand_backprop(key):
    params, x, y = _setup(key)
    got = measure.full_batch_gradient(apply, params, x, y, "mse")
    e, dec, o = (
        np.asarray(v) for v in (params["encoder"]["kernel"], params["decoder"]["kernel"], params["decoder"]["offset"])
    )
    xn, n = np.asarray(x), x.shape[0]
    h = np.tanh(xn @ e)
    r = (h @ dec + o - np.eye(3)[np.asarray(y)]) / n  # ∂(½·mean‖f − onehot‖²)/∂f
    # float64, a few dozen products: agreement to ~1e-15
    np.testing.assert_allclose(got["decoder"]["kernel"], h.T @ r, rtol=1e-12)
    np.testing.assert_allclose(got["decoder"]["offset"], r.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(got["encoder"]["kernel"], xn.T @ ((r @ dec.T) * (1 - h**2)), rtol=1e-12)


def test_slice_measurements_and_optimisers_run_on_an_unseen_model(key):
    params, x, y = _setup(key)
    grads = measure.full_batch_gradient(apply, params, x, y)
    assert tree.leaf_names(params) == ["decoder.kernel", "decoder.offset", "encoder.kernel"]
    with pytest.raises(TrustError, match=r"tensor decoder\.kernel .* not named as in trust's own nets.*spec="):
        spec.weight_indices(params)
    assert spec.weight_indices(params, SPEC) == [0, 2]  # the two matrices; the offset is a bias
    u = perturb.along_gradient(params, grads)
    np.testing.assert_allclose(tree.relative_size(u, params), 1.0, rtol=1e-12)
    with pytest.raises(TrustError, match=r"tensor decoder\.kernel"):
        measure.relative_distances(apply, params, x, y, u, np.array([0.0, 0.01, 0.1]))
    d = measure.relative_distances(apply, params, x, y, u, np.array([0.0, 0.01, 0.1]), spec=SPEC)
    assert d.is_weight == (True, False, True)
    np.testing.assert_array_equal(d.gradient[0], 0.0)
    assert np.all(np.isfinite(d.gradient))
    assert np.all(d.function_frob[1:] > 0)
    for opt in (optim.fromage(0.01), optim.madam(0.01), optax.adam(1e-3)):
        updates, _ = opt.update(grads, opt.init(params), params)
        new = optax.apply_updates(params, updates)
        assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(params)
    # Fromage: Δp = (c − 1)·p − η·c·‖p‖·ĝ with c = 1/√(1+η²), so per tensor
    # ‖Δp‖²/‖p‖² = (1 − c)² + η²c² + 2(1 − c)·η·c·cos(p, g) — closed form, float64 to rounding
    eta = 0.01
    c = 1 / (1 + eta**2) ** 0.5
    updates, _ = optim.fromage(eta).update(grads, optim.fromage(eta).init(params), params)
    for p, g, dp in zip(tree.leaves(params), tree.leaves(grads), tree.leaves(updates)):
        p, g = np.ravel(p), np.ravel(g)
        cos = p @ g / (np.linalg.norm(p) * np.linalg.norm(g))
        expected = ((1 - c) ** 2 + eta**2 * c**2 + 2 * (1 - c) * eta * c * cos) ** 0.5
        assert float(np.linalg.norm(dp) / np.linalg.norm(p)) == pytest.approx(expected, rel=1e-9)
