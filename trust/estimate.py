"""Estimates of the constants in the theory (docs/theory.md §2–3): transmission α, β, conditioning κ, the
exponential constant C, the effective constant, cos θ, cos γ, the descent thresholds, and the sharpness."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from trust.errors import TrustError
from trust.losses import loss_function
from trust.nets import MLP, activation_fn
from trust.tree import check_finite, leaves


def transmission(net: MLP, params, x) -> dict[str, np.ndarray]:
    """α_l, β_l as min / max over examples of ``‖φ(z)‖/‖z‖`` on layer l's realised pre-activations z, and the
    mean (docs/theory.md §2.2, condition (i)); examples with z = 0 are skipped. Layers without φ are left out."""
    phi = activation_fn(net.activation, net.slope)
    _, zs = net.preactivations(params, x)
    if not net.final_activation:
        zs = zs[:-1]
    out: dict[str, list[float]] = {"alpha": [], "beta": [], "mean": []}
    for z in zs:
        zn = np.linalg.norm(np.asarray(z), axis=-1)
        ratio = np.linalg.norm(np.asarray(phi(z)), axis=-1)[zn > 0] / zn[zn > 0]
        if ratio.size == 0:
            raise TrustError("a layer's pre-activation is zero on every example: transmission is undefined")
        out["alpha"].append(ratio.min())
        out["beta"].append(ratio.max())
        out["mean"].append(ratio.mean())
    return {k: np.array(v) for k, v in out.items()}


def conditioning(matrix) -> float:
    """κ = σ_max/σ_min of a matrix (docs/theory.md §2.2, condition (ii)); ``inf`` if it is numerically singular,
    i.e. ``σ_min ≤ σ_max·max(m, n)·ε`` with ε the machine epsilon of the matrix's own dtype (NumPy's
    ``matrix_rank`` rule): a float32 matrix cannot certify a condition number beyond ~1/(n·ε)."""
    eps = np.finfo(np.asarray(matrix).dtype if np.issubdtype(np.asarray(matrix).dtype, np.floating) else float).eps
    s = np.linalg.svd(np.asarray(matrix, dtype=float), compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > s[0] * max(np.shape(matrix)) * eps else float("inf")


def effective_constant(measured, bound) -> float:
    """The smallest C with ``measured ≤ C·bound`` on every point where the bound is positive — the
    constant that would make DRT hold on these measurements (docs/theory.md §3)."""
    measured, bound = np.asarray(measured, dtype=float), np.asarray(bound, dtype=float)
    keep = bound > 0
    if not keep.any():
        raise TrustError("no point with a positive bound to fit an effective constant on")
    return float(np.max(measured[keep] / bound[keep]))


def _pairs(a_tree, b_tree):
    return zip(leaves(a_tree), leaves(b_tree))


def cos_theta(direction, grads) -> np.ndarray:
    """``cos θ_l = −⟨ΔW_l, g_l⟩/(‖ΔW_l‖‖g_l‖)`` per tensor (docs/theory.md §3, Lemma 1); NaN where a norm is 0."""
    out = []
    for u, g in _pairs(direction, grads):
        den = float(jnp.linalg.norm(u) * jnp.linalg.norm(g))
        out.append(-float(jnp.vdot(u, g)) / den if den > 0 else np.nan)
    return np.array(out)


def cos_gamma(params, grads) -> np.ndarray:
    """Madam's angle ``cos γ_l = ⟨|W_l|, |g_l|⟩/(‖W_l‖‖g_l‖)`` per tensor (docs/theory.md §3); NaN where a norm is 0."""
    out = []
    for w, g in _pairs(params, grads):
        den = float(jnp.linalg.norm(w) * jnp.linalg.norm(g))
        out.append(float(jnp.vdot(jnp.abs(w), jnp.abs(g))) / den if den > 0 else np.nan)
    return np.array(out)


def lemma2_threshold(cos, depth: int, constant: float = 1.0) -> np.ndarray:
    """Largest η with guaranteed descent: ``(1 + cos/C)^{1/L} − 1`` (docs/theory.md §3; C = 1 is Lemma 2, where the
    Fromage direction gives ``2^{1/L} − 1``). For large C it is ≈ cos/(L·C). 0 where cos ≤ 0: no step
    is guaranteed to descend."""
    cos = np.asarray(cos, dtype=float)
    positive = np.where(cos > 0, cos, 1.0)
    return np.where(cos > 0, np.expm1(np.log1p(positive / constant) / depth), 0.0)


@partial(jax.jit, static_argnums=(0, 1))
def _hvp(apply, loss, params, x, y, v):
    """``∇²ℒ(W)·v`` for a flat ``v``: forward-over-reverse (``jvp`` of ``grad``)."""
    flat, unravel = ravel_pytree(params)
    grad = jax.grad(lambda p: loss_function(loss)(apply(p, x), y))
    return ravel_pytree(jax.jvp(grad, (params,), (unravel(v.astype(flat.dtype)),))[1])[0]


def sharpness(apply: Callable, params, x, y, loss: str = "xent", tol: float = 1e-3, seed: int = 0) -> float:
    """The largest |eigenvalue| of the loss Hessian ``∇²ℒ(W)`` on the batch ``(x, y)`` — the local λ of the
    Lipschitz-smooth model (docs/theory.md §2.5; any global λ is at least this).

    Lanczos iteration (ARPACK's ``eigsh``, implicitly restarted) on Hessian-vector products, stopped when the
    Ritz value's relative error is below ``tol``; the start vector is drawn from ``seed`` (same seed, same
    answer). Raises :class:`TrustError` when it does not converge or the parameters are not finite."""
    check_finite(params, "parameters")
    flat, _ = ravel_pytree(params)
    n = flat.size
    x, y = jnp.asarray(x), jnp.asarray(y)

    def matvec(v):
        return np.asarray(_hvp(apply, loss, params, x, y, jnp.asarray(np.ravel(v), flat.dtype)), dtype=float)

    if n == 1:  # ARPACK needs n > k + 1; a 1×1 Hessian is its own eigenvalue
        return float(abs(matvec(np.ones(1))[0]))
    start = np.random.default_rng(seed).standard_normal(n)
    operator = LinearOperator((n, n), matvec=matvec, dtype=float)
    try:
        values = eigsh(operator, k=1, which="LM", tol=tol, v0=start, ncv=min(n - 1, 12), return_eigenvectors=False)
    except ArpackNoConvergence:
        raise TrustError(f"the sharpness (Lanczos) did not reach relative tolerance {tol}") from None
    lam = float(abs(values[0]))
    if not np.isfinite(lam):
        raise TrustError("the loss Hessian is not finite at these parameters")
    return lam
