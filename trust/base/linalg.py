"""Per-layer matrix geometry (docs/theory.md §8): a layer as a matrix, its operator norm (exact SVD on small
layers, power iteration to a stated tolerance on large ones), its stable rank and its polar factor.

How a leaf reads as a matrix is its spec (:mod:`trust.base.spec`), never its shape: a linear leaf (a weight
matrix, a convolution kernel in any layout) is the ``(∏ inputs, ∏ outputs)`` matrix that maps an input patch to
one output position's features; a normalisation gain ``s`` is the diagonal matrix ``diag(s)``; a bias or shift is a
``1 × n`` row, whose operator norm is its Euclidean norm. Everything here is NumPy float64 on concrete arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg

from trust.base import spec as specs
from trust.base.errors import TrustError
from trust.base.spec import Leaf
from trust.base.tree import check_finite, leaves

MATRIX = specs.dense("in_out")
"""The default leaf of the single-tensor functions: a plain matrix, read as it is."""

EXACT_BELOW = 256
"""A matrix whose smaller side is at most this gets the exact SVD; larger ones the power iteration."""


def as_matrix(t, leaf: Leaf = MATRIX) -> np.ndarray:
    """A leaf as a float64 matrix (:func:`trust.base.spec.to_matrix`), its spec checked against its shape."""
    a = np.asarray(t, dtype=float)
    leaf.check("the tensor", a.shape)
    return specs.to_matrix(a, leaf)


def svd(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The thin SVD ``U, σ, Vᵀ`` of a finite float64 matrix: LAPACK's divide-and-conquer ``gesdd`` (NumPy's), and
    the slower QR-iteration ``gesvd`` where ``gesdd`` reports no convergence — which it rarely does on finite
    input (seen once in a geometry cell, not reproduced on rerunning it)."""
    try:
        return np.linalg.svd(m, full_matrices=False)
    except np.linalg.LinAlgError:
        return scipy.linalg.svd(m, full_matrices=False, lapack_driver="gesvd")


class TopSingular(NamedTuple):
    """The top singular triple ``M v = σ u`` and the iterations it took (0 for an exact SVD)."""

    sigma: float
    u: np.ndarray
    v: np.ndarray
    iterations: int


def power_iteration(m, tol: float = 1e-6, max_iter: int = 100_000, seed: int = 0) -> TopSingular:
    """The top singular triple of ``m`` by power iteration on ``MᵀM`` from a seeded Gaussian start.

    Stops when the residual of the pair is small: ``‖Mᵀu − σv‖ ≤ tol·σ`` with ``u = Mv/σ``, ``σ = ‖Mv‖``. Then
    ``σ`` is within ``tol·σ`` of a singular value of ``M`` (Weyl's bound for the symmetric dilation), and
    ``σ ≤ σ_max`` always (it is a Rayleigh quotient), so from a generic start it is the top one to ``tol``.
    Raises :class:`TrustError` if the matrix is not finite or ``max_iter`` passes first."""
    m = np.asarray(m, dtype=float)
    if not np.all(np.isfinite(m)):
        raise TrustError("the matrix has NaN or Inf entries; its operator norm is undefined")
    v = np.random.default_rng(seed).standard_normal(m.shape[1])
    v /= np.linalg.norm(v)
    for iteration in range(1, max_iter + 1):
        mv = m @ v
        sigma = float(np.linalg.norm(mv))
        if sigma == 0.0:
            return TopSingular(0.0, np.zeros(m.shape[0]), v, iteration)
        u = mv / sigma
        mtu = m.T @ u
        if np.linalg.norm(mtu - sigma * v) <= tol * sigma:
            return TopSingular(sigma, u, v, iteration)
        v = mtu / np.linalg.norm(mtu)
    raise TrustError(f"the power iteration did not reach relative residual {tol} in {max_iter} iterations")


FALLBACK_AFTER = 2000
"""Power iterations after which :func:`top_singular` takes the exact SVD instead (about the SVD's cost at 1024²)."""


def top_singular(m, tol: float = 1e-6) -> TopSingular:
    """The top singular triple of a matrix: the exact SVD when ``min(shape) ≤ EXACT_BELOW``, else
    :func:`power_iteration` to relative residual ``tol`` — and the exact SVD after all if the iteration has not
    met ``tol`` in :data:`FALLBACK_AFTER` steps. That happens when the top singular values form a cluster wider
    than ``tol`` but too narrow to separate quickly, e.g. a float32 step of orthogonalised SGD, whose singular
    values are all equal up to rounding."""
    m = np.asarray(m, dtype=float)
    if not np.all(np.isfinite(m)):
        raise TrustError("the matrix has NaN or Inf entries; its operator norm is undefined")
    if min(m.shape) > EXACT_BELOW:
        try:
            return power_iteration(m, tol, max_iter=FALLBACK_AFTER)
        except TrustError:  # not converged (the matrix is finite): a cluster at the top
            pass
    u, s, vt = svd(m)
    return TopSingular(float(s[0]), u[:, 0], vt[0], 0)


def operator_norm(t, leaf: Leaf = MATRIX, tol: float = 1e-6) -> float:
    """``‖T‖_op`` of a leaf as a matrix (:func:`as_matrix`); of ``diag(t)``, ``max|t|``, for a gain."""
    if leaf.diagonal:
        return float(np.max(np.abs(np.asarray(t, dtype=float)), initial=0.0))
    return top_singular(as_matrix(t, leaf), tol).sigma


def stable_rank(t, leaf: Leaf = MATRIX, tol: float = 1e-6, op: float | None = None) -> float:
    """``‖T‖_F²/‖T‖_op²`` (1 for a rank-one matrix, the rank for one with equal singular values); NaN for 0.
    ``op``: ``‖T‖_op`` if already computed."""
    op = operator_norm(t, leaf, tol) if op is None else op
    frobenius = float(np.linalg.norm(np.asarray(t, dtype=float)))
    return frobenius**2 / op**2 if op > 0 else float("nan")


def rank_cutoff(shape, dtype) -> float:
    """``max(shape)·ε``: singular values at or below this fraction of ``σ_max`` are rounding noise of a tensor held
    in ``dtype`` (NumPy's rank rule, with the ε of the precision the tensor was computed in, not of the SVD's)."""
    return max(shape) * float(np.finfo(dtype if np.issubdtype(dtype, np.floating) else np.float64).eps)


def polar(t, leaf: Leaf = MATRIX) -> np.ndarray:
    """The orthogonal polar factor ``U_r V_rᵀ`` of ``T = U Σ Vᵀ`` over the numerically nonzero singular values
    (``σ > rank_cutoff·σ_max``), in ``t``'s shape: the nearest semi-orthogonal matrix on ``T``'s range, the
    steepest-descent direction in the operator norm (docs/theory.md §8). A gain ``diag(s)`` has the polar factor
    ``diag(sign s)``; a bias row ``t/‖t‖``; a zero tensor zeros."""
    a = np.asarray(t)
    cutoff = rank_cutoff(as_matrix(a, leaf).shape, a.dtype)
    a = a.astype(float)
    if leaf.diagonal:
        return np.sign(a) * (np.abs(a) > cutoff * np.max(np.abs(a), initial=0.0))
    u, s, vt = svd(as_matrix(a, leaf))
    keep = s > cutoff * (s[0] if s.size else 0.0)
    return specs.from_matrix(u[:, keep] @ vt[keep], leaf, a.shape)


def operator_norms(tree, tol: float = 1e-6, spec=None) -> np.ndarray:
    """:func:`operator_norm` of every leaf in flatten order, each read by its spec (:func:`trust.base.spec.resolve`)."""
    return np.array([operator_norm(t, leaf, tol) for t, leaf in zip(leaves(tree), specs.parameters(tree, spec))])


def stable_ranks(tree, tol: float = 1e-6, operator: np.ndarray | None = None, spec=None) -> np.ndarray:
    """:func:`stable_rank` of every leaf in flatten order (NaN for a zero tensor); ``operator``: the leaves'
    operator norms (:func:`operator_norms`) if already computed."""
    resolved = specs.parameters(tree, spec)
    operator = operator_norms(tree, tol, resolved) if operator is None else operator
    return np.array([stable_rank(t, leaf, op=op) for t, leaf, op in zip(leaves(tree), resolved, operator)])


def polars(tree, spec=None) -> list[np.ndarray]:
    """:func:`polar` of every leaf in flatten order; raises :class:`TrustError` naming a tensor that is not
    finite (a NaN gradient has no polar factor)."""
    check_finite(tree, "the tensor to orthogonalise")
    return [polar(t, leaf) for t, leaf in zip(leaves(tree), specs.parameters(tree, spec))]
