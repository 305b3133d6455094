"""Estimates of the constants in the theory (docs/theory.md §2–3): transmission α, β, conditioning κ, the
exponential constant C, the effective constant, cos θ, cos γ, the descent thresholds, and the sharpness."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
from jax.flatten_util import ravel_pytree
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from trust.base import linalg
from trust.base.errors import TrustError
from trust.base.schema import value
from trust.base.spec import Leaf
from trust.base.tree import check_finite, leaves
from trust.core.losses import loss_function
from trust.core.nets import MLP, ResNet, activation_fn


def transmission(net: MLP | ResNet, params, x) -> dict[str, np.ndarray]:
    """α_l, β_l as min / max over examples of ``‖φ(z)‖/‖z‖`` on the realised input z of every φ in the net
    (``net.phi_inputs``; a convolutional feature map is one vector per example), and the mean
    (docs/theory.md §2.2, condition (i)); examples with z = 0 are skipped. Layers without φ are left out."""
    phi = activation_fn(net.activation, net.slope)
    out: dict[str, list[float]] = {"alpha": [], "beta": [], "mean": []}
    for site in net.phi_inputs(params, x):
        z = np.asarray(site).reshape(len(site), -1)
        zn = np.linalg.norm(z, axis=-1)
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
def hessian_vector_product(apply, loss, params, x, y, v):
    """``∇²ℒ(W)·v`` for a flat ``v``: forward-over-reverse (``jvp`` of ``grad``)."""
    flat, unravel = ravel_pytree(params)
    grad = jax.grad(lambda p: loss_function(loss)(apply(p, x), y))
    return ravel_pytree(jax.jvp(grad, (params,), (unravel(v.astype(flat.dtype)),))[1])[0]


LANCZOS_SUBSPACE = 12  # Lanczos vectors ARPACK keeps (its ``ncv``); a Hessian of at most this size is built densely


def sharpness(apply: Callable, params, x, y, loss: str = "xent", tol: float = 1e-3, seed: int = 0) -> float:
    """The largest |eigenvalue| of the loss Hessian ``∇²ℒ(W)`` on the batch ``(x, y)`` — the local λ of the
    Lipschitz-smooth model (docs/theory.md §2.5; any global λ is at least this).

    Lanczos iteration (ARPACK's ``eigsh``, implicitly restarted) on Hessian-vector products, stopped when the
    Ritz value's relative error is below ``tol``; the start vector is drawn from ``seed`` (same seed, same
    answer); a model with at most :data:`LANCZOS_SUBSPACE` parameters gets the dense Hessian's exact answer
    instead. Raises :class:`TrustError` when it does not converge or the parameters are not finite."""
    check_finite(params, "parameters")
    flat, _ = ravel_pytree(params)
    n = flat.size
    x, y = jnp.asarray(x), jnp.asarray(y)

    def matvec(v):
        return np.asarray(
            hessian_vector_product(apply, loss, params, x, y, jnp.asarray(np.ravel(v), flat.dtype)), dtype=float
        )

    return top_eigenvalue(matvec, n, tol, seed, "the loss Hessian")


def top_eigenvalue(matvec: Callable, n: int, tol: float, seed: int, what: str) -> float:
    """The largest |eigenvalue| of the symmetric ``n × n`` operator ``matvec``: ARPACK's implicitly restarted
    Lanczos to relative tolerance ``tol`` from a start drawn from ``seed``, or the dense answer for ``n`` up to
    :data:`LANCZOS_SUBSPACE` (ARPACK needs n ≥ 3; up to its Krylov subspace's size, ``n`` products give the whole
    matrix). Raises, naming ``what``, when it does not converge or is not finite."""
    if n <= LANCZOS_SUBSPACE:
        dense = np.stack([matvec(column) for column in np.eye(n)])
        lam = float(np.abs(np.linalg.eigvalsh((dense + dense.T) / 2)).max())
    else:
        start = np.random.default_rng(seed).standard_normal(n)
        operator = LinearOperator((n, n), matvec=matvec, dtype=float)
        try:
            values = eigsh(operator, k=1, which="LM", tol=tol, v0=start, ncv=LANCZOS_SUBSPACE,
                           return_eigenvectors=False)  # fmt: skip
        except ArpackNoConvergence:
            raise TrustError(f"the top eigenvalue of {what} (Lanczos) did not reach relative tolerance {tol}") from None
        lam = float(abs(values[0]))
    if not np.isfinite(lam):
        raise TrustError(f"{what} is not finite at these parameters")
    return lam


def layer_conditioning(tensor, leaf: Leaf) -> float:
    """κ of a layer as a matrix (docs/theory.md §2.2, condition (ii)): a linear leaf as its matrix
    (:func:`trust.base.linalg.as_matrix`: a convolution kernel maps an image patch to a pixel's channels); a
    gain ``s`` as ``diag(s)``, whose κ is ``max|s|/min|s|``."""
    t = np.asarray(tensor)
    return conditioning(np.diag(t.ravel()) if leaf.diagonal else linalg.as_matrix(t, leaf))


class ShapeFit(NamedTuple):
    """A one-parameter curve fitted to measured relative gradient changes ``r``: its ``parameter``, the RMS of
    ``ln(r/fitted)`` over the points (0: exact; ln 2: off by a factor 2 on a typical point) and ``r2``, the
    coefficient of determination in the fit's own linear coordinates."""

    parameter: float
    rms_log: float
    r2: float


def _through_origin(x, y):
    """Least squares ``y ≈ p·x`` (no intercept): ``p`` and R² (centred, as for an ordinary regression)."""
    p = float(np.sum(x * y) / np.sum(x * x))
    total = float(np.sum((y - y.mean()) ** 2))
    return p, (1.0 - float(np.sum((y - p * x) ** 2)) / total) if total > 0 else float("nan")


def _rms_log(measured, fitted) -> float:
    return float(np.sqrt(np.mean(np.log(measured / fitted) ** 2)))


def _usable(r, *others):
    """Flattened points with a positive finite measurement (a log needs r > 0); an error if none."""
    r = np.asarray(r, dtype=float)
    arrays = [np.broadcast_to(np.asarray(o, dtype=float), r.shape).ravel() for o in others]
    keep = np.isfinite(r.ravel()) & (r.ravel() > 0) & np.all([np.isfinite(a) & (a > 0) for a in arrays], axis=0)
    if not keep.any():
        raise TrustError("no point with a positive measured change and a positive bound to fit a shape on")
    return r.ravel()[keep], *(a[keep] for a in arrays)


def fit_drt_shape(r, drt) -> ShapeFit:
    """DRT's shape: ``ln(1 + r) = c·ln(1 + DRT)``, one exponent ``c`` by least squares through the origin
    (docs/theory.md §2.1 and §6.4). Along a relative slice ``DRT = ∏(1 + a_l) − 1 = (1+η)^L − 1``, so the log of
    the change is linear in ``L·ln(1+η)``; ``c = 1`` is the DRT curve itself and ``c > 1`` grows faster.
    ``r`` is ``(points, layers)`` or ``(points,)``; ``drt`` is ``(points,)``, one per row."""
    r = np.asarray(r, dtype=float)
    drt = np.asarray(drt, dtype=float).reshape((-1,) + (1,) * (r.ndim - 1))
    r, drt = _usable(r, drt)
    x, y = np.log1p(drt), np.log1p(r)
    c, r2 = _through_origin(x, y)
    return ShapeFit(c, _rms_log(r, np.expm1(c * x)), r2)


def fit_lipschitz_shape(r, lipschitz) -> ShapeFit:
    """The Lipschitz-smooth shape: ``r = k·λ‖ΔW‖/‖g_l‖``, linear in η with the slope that the measured
    sharpness λ gives (docs/theory.md §2.5), one factor ``k`` by least squares through the origin; ``k ≤ 1``
    where the local bound holds on average. ``lipschitz`` has the shape of ``r`` (the prediction per point)."""
    r, pred = _usable(r, lipschitz)
    k, r2 = _through_origin(pred, r)
    return ShapeFit(k, _rms_log(r, k * pred), r2)


def loglog_slope(eta, r) -> float:
    """The slope of ``ln r`` against ``ln η`` by least squares (``r``: ``(points,)`` or ``(points, layers)``, pooled
    over layers). Both smooth shapes have slope 1 at small η (DRT's grows above 1 as ``cLη`` nears 1); a slope
    below 1 means the gradient changes faster than any Lipschitz bound allows at small steps — it jumps, as a
    relu's gradient does where an activation pattern flips."""
    r = np.asarray(r, dtype=float)
    r, eta = _usable(r, np.asarray(eta, dtype=float).reshape((-1,) + (1,) * (r.ndim - 1)))
    x, y = np.log(eta), np.log(r)
    return float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else float("nan")


GOOD_FIT = float(np.log(2.0))  # a shape fits when its typical point is within a factor 2 (RMS of ln(r/fit))
SAME_FIT = float(np.log(1.2))  # two fits within a typical 20 % of the points are not told apart


def shape_verdict(drt: ShapeFit, lipschitz: ShapeFit, good: float = GOOD_FIT, same: float = SAME_FIT) -> str:
    """Which shape the measurements follow: the one whose RMS log-residual is at most ``good`` and less than
    half the other's; ``both fit`` when both are within ``good`` and the worse is within twice the better or
    within ``same`` (at small η·L the curves coincide, ``(1+η)^{cL} − 1 ≈ cLη``); ``neither`` when none is within
    ``good``."""
    fits = {"DRT shape": drt.rms_log, "Lipschitz shape": lipschitz.rms_log}
    best, other = sorted(fits, key=fits.__getitem__)
    if fits[best] > good:
        return "neither"
    if fits[other] <= good and fits[other] <= max(2 * fits[best], same):
        return "both fit"
    return best


ONE_SAMPLE = "no interval from a single sample"


@dataclass(frozen=True)
class MeanCI:
    """Mean with a Student-t 95 % confidence interval (``half_width``) and the standard error."""

    mean: float
    n: int
    half_width: float = value(ONE_SAMPLE)
    sem: float = value(ONE_SAMPLE)


def mean_ci(values, level: float = 0.95) -> MeanCI:
    """Mean with a Student-t confidence interval (``half_width``) and the standard error."""
    v = np.asarray(values, dtype=float)
    sem = float(np.std(v, ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    half = float(scipy.stats.t.ppf(0.5 + level / 2, v.size - 1) * sem) if v.size > 1 else float("nan")
    return MeanCI(mean=float(v.mean()), n=int(v.size), half_width=half, sem=sem)
