"""Per-layer curvature (docs/theory.md §11) against the dense Hessian of small nets, built here with
``jax.hessian`` of the flat parameters: each block's top eigenvalue, the Hutchinson trace within its own stated
error, and stochastic Lanczos quadrature — its nodes the exact eigenvalues when the order reaches the size of the
net, and its moments exact for polynomials of degree below twice the order at any order."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from trust.base.errors import TrustError
from trust.core import curvature, nets
from trust.core.losses import loss_function


def small_net(key, width=3, depth=3):
    net = nets.experiment_mlp(4, width, depth, 3)
    params = net.init(key)
    x = jax.random.normal(jax.random.fold_in(key, 1), (24, 4))
    y = jnp.arange(24) % 3
    return net, params, x, y


def dense_hessian(net, params, x, y):
    flat, unravel = ravel_pytree(params)
    return np.asarray(jax.hessian(lambda f: loss_function("xent")(net.apply(unravel(f), x), y))(flat))


def test_each_blocks_top_eigenvalue_is_the_dense_blocks(key):
    net, params, x, y = small_net(key)
    h = dense_hessian(net, params, x, y)
    for layer, block in enumerate(curvature.block_slices(params)):
        expected = np.abs(np.linalg.eigvalsh(h[block, block])).max()
        got = curvature.block_sharpness(net.apply, params, x, y, layer, tol=1e-10)
        # float64 Lanczos to relative tolerance 1e-10 (dense below 13 entries): agreement far below 1e-6
        assert got == pytest.approx(expected, rel=1e-6)
    with pytest.raises(TrustError, match="layer 6 is not a leaf of the parameters"):
        curvature.block_sharpness(net.apply, params, x, y, 6)


def test_hutchinsons_trace_is_the_dense_trace_within_its_stated_error(key):
    net, params, x, y = small_net(key, width=6)
    exact = float(np.trace(dense_hessian(net, params, x, y)))
    est = curvature.hessian_trace(net.apply, params, x, y, tol=0.02, seed=3)
    assert est.converged and est.sem <= 0.02 * abs(est.value)  # the stopping rule
    # four standard errors: a seeded draw, wrong by chance about once in 16,000 seeds
    assert abs(est.value - exact) <= 4 * est.sem
    assert est.probes % 16 == 0 and est.probes >= 48
    assert curvature.hessian_trace(net.apply, params, x, y, tol=0.02, seed=3) == est  # same seed, same numbers
    spent = curvature.hessian_trace(net.apply, params, x, y, tol=1e-9, max_probes=64)
    assert (spent.probes, spent.converged) == (64, False) and spent.sem > 1e-9 * abs(spent.value)
    with pytest.raises(TrustError, match="max_probes must allow three batches of 16"):
        curvature.hessian_trace(net.apply, params, x, y, max_probes=40)


def test_lanczos_quadrature_is_exact_for_low_degree_polynomials_and_at_full_order(key):
    net, params, x, y = small_net(key)
    h = dense_hessian(net, params, x, y)
    n = h.shape[0]
    exact = np.linalg.eigvalsh(h)
    full = curvature.spectral_density(net.apply, params, x, y, order=n, probes=2)
    for nodes, weights in zip(full.nodes, full.weights):
        # with full reorthogonalisation in float64 the Ritz values are the eigenvalues (to rounding × ‖H‖)
        np.testing.assert_allclose(np.sort(nodes), exact, atol=1e-8 * np.abs(exact).max())
        assert weights.sum() == pytest.approx(1.0, rel=1e-12)
    order = 5
    density = curvature.spectral_density(net.apply, params, x, y, order=order, probes=3, seed=7)
    probes = jax.random.rademacher(jax.random.key(7), (3, n), dtype=jnp.float64)  # matfree's sampler_signs
    for v, nodes, weights in zip(np.asarray(probes), density.nodes, density.weights):
        for p in range(2 * order):  # Gauss quadrature with `order` nodes: exact up to degree 2·order − 1
            moment = v @ np.linalg.matrix_power(h, p) @ v / (v @ v)
            assert np.sum(weights * nodes**p) == pytest.approx(moment, rel=1e-8, abs=1e-12)
    grid = np.linspace(exact.min() - 1, exact.max() + 1, 4001)
    smoothed = density.smoothed(grid, width=0.05)
    assert np.trapezoid(smoothed, grid) == pytest.approx(1.0, abs=1e-6)  # the Gaussians lie inside the grid
