"""Per-layer curvature of the loss (docs/theory.md §11): the top eigenvalue of each layer's block of the Hessian,
the Hessian's trace (Hutchinson) and its spectral density (stochastic Lanczos quadrature), all from
Hessian-vector products, never the Hessian itself.

The block's top eigenvalue is ARPACK's Lanczos (:func:`trust.core.estimate.top_eigenvalue`) stopped at a relative
tolerance; the trace draws Rademacher probes in batches (matfree's Monte-Carlo estimator) until the standard error
is a stated fraction of the estimate; the density runs matfree's Lanczos tridiagonalisation (full
reorthogonalisation) from Rademacher probes, whose Ritz values and weights are Gauss quadrature nodes of the
spectral measure seen from each probe."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from matfree import decomp, stochtrace

from trust.base.errors import TrustError
from trust.base.tree import check_finite, leaf_names, leaves
from trust.core import estimate


def _hvp(apply, params, x, y, loss: str):
    """``(product, args, n, dtype)``: ``product(v, *args) = ∇²ℒ(W)·v`` on flat vectors
    (:func:`trust.core.estimate.hessian_vector_product`) with the parameters and the data in ``args`` — passed as
    arguments through matfree's jitted loops (closed over, XLA would fold them as constants, slowly) — and the flat
    size."""
    check_finite(params, "parameters")
    flat, _ = ravel_pytree(params)

    def product(v, p, x, y):
        return estimate.hessian_vector_product(apply, loss, p, x, y, v)

    return product, (params, jnp.asarray(x), jnp.asarray(y)), flat.size, flat.dtype


def block_slices(params) -> list[slice]:
    """Where each leaf of ``params`` sits in the flat parameter vector (``ravel_pytree``'s order)."""
    out, start = [], 0
    for t in leaves(params):
        out.append(slice(start, start + int(np.size(t))))
        start += int(np.size(t))
    return out


def block_sharpness(apply, params, x, y, layer: int, loss: str = "xent", tol: float = 1e-3, seed: int = 0) -> float:
    """``max |λ(H_ll)|`` for the block of leaf ``layer`` (flatten index): the curvature of the loss when only that
    tensor moves — the constant of a per-layer Lipschitz-smooth model (§11.1). Lanczos on the block's
    Hessian-vector products (the full HVP of a vector zero outside the block, read on the block) to relative
    tolerance ``tol``; a block of at most :data:`~trust.core.estimate.LANCZOS_SUBSPACE` entries is built densely."""
    hvp, args, n, dtype = _hvp(apply, params, x, y, loss)
    blocks = block_slices(params)
    if not 0 <= layer < len(blocks):
        raise TrustError(f"layer {layer} is not a leaf of the parameters (0 … {len(blocks) - 1})")
    block = blocks[layer]

    def matvec(v):
        full = np.zeros(n)
        full[block] = np.ravel(v)
        return np.asarray(hvp(jnp.asarray(full, dtype), *args), dtype=float)[block]

    size = block.stop - block.start
    return estimate.top_eigenvalue(matvec, size, tol, seed, f"the Hessian block of {leaf_names(params)[layer]}")


class Trace(NamedTuple):
    """A Hutchinson estimate: the trace, its standard error, the probes it took and whether the standard error
    reached the stated fraction of the estimate (an indefinite Hessian whose trace nearly cancels may not)."""

    value: float
    sem: float
    probes: int
    converged: bool


def hessian_trace(
    apply, params, x, y, loss: str = "xent", tol: float = 0.05, batch: int = 16, max_probes: int = 4096, seed: int = 0
) -> Trace:
    """``tr ∇²ℒ(W)`` by Hutchinson's estimator ``E[vᵀHv]`` over Rademacher ``v`` (§11.2): batches of ``batch``
    probes (matfree's Monte-Carlo estimator), each batch mean one sample, until the standard error of their mean is
    at most ``tol·|estimate|`` (three batches at least), or ``max_probes`` are spent — then the estimate is returned
    with its standard error and ``converged`` false."""
    hvp, args, n, dtype = _hvp(apply, params, x, y, loss)
    flat = jnp.zeros(n, dtype)
    estimator = jax.jit(
        stochtrace.estimator_monte_carlo(stochtrace.monte_carlo_trace(), stochtrace.sampler_signs(flat, num=batch)),
        static_argnums=(0,),
    )
    if max_probes < 3 * batch:
        raise TrustError(f"max_probes must allow three batches of {batch}, got {max_probes}")
    key, means = jax.random.key(seed), list[float]()
    while True:
        key, sub = jax.random.split(key)
        means.append(float(estimator(hvp, sub, *args)))
        if len(means) >= 3:
            mean, sem = float(np.mean(means)), float(np.std(means, ddof=1) / np.sqrt(len(means)))
            if sem <= tol * abs(mean) or (len(means) + 1) * batch > max_probes:
                return Trace(mean, sem, len(means) * batch, sem <= tol * abs(mean))


class Density(NamedTuple):
    """Stochastic Lanczos quadrature: per probe the Ritz values (nodes) and their weights (they sum to 1)."""

    nodes: np.ndarray  # (probes, order)
    weights: np.ndarray  # (probes, order)

    def smoothed(self, grid, width: float) -> np.ndarray:
        """The density on ``grid``: every node a Gaussian of standard deviation ``width``, weighted, averaged over
        the probes (it integrates to 1 over a grid that covers the nodes)."""
        t = np.asarray(grid, dtype=float)[:, None, None]
        kernel = np.exp(-0.5 * ((t - self.nodes[None]) / width) ** 2) / (width * np.sqrt(2 * np.pi))
        return np.mean(np.sum(kernel * self.weights[None], axis=2), axis=1)


def spectral_density(apply, params, x, y, order: int = 40, probes: int = 8, loss: str = "xent", seed: int = 0):
    """The Hessian's spectral density by stochastic Lanczos quadrature (§11.3): ``order`` Lanczos steps from each of
    ``probes`` Rademacher vectors; the ``order`` Ritz values of a probe and the squared first components of their
    eigenvectors are the nodes and weights of the Gauss quadrature of ``vᵀf(H)v/vᵀv`` — exact for every polynomial
    ``f`` of degree below ``2·order``. ``order`` sets the resolution (as a histogram's bins do), not a stopping
    point: a larger order resolves more of the spectrum; an order at the size of the net gives its eigenvalues."""
    hvp, args, n, dtype = _hvp(apply, params, x, y, loss)
    if not 1 <= order <= n or probes < 1:
        raise TrustError(f"order must lie in 1 … {n} (the parameters) and probes be ≥ 1, got {order}, {probes}")
    lanczos = jax.jit(decomp.tridiag_sym(order, materialize=True, reortho="full"), static_argnums=(0,))
    signs = stochtrace.sampler_signs(jnp.zeros(n, dtype), num=probes)(jax.random.key(seed))
    nodes, weights = [], []
    for v in signs:
        small = np.asarray(lanczos(hvp, v, *args).J_small, dtype=float)
        theta, vectors = np.linalg.eigh((small + small.T) / 2)
        nodes.append(theta)
        weights.append(vectors[0] ** 2)
    return Density(np.asarray(nodes), np.asarray(weights))
