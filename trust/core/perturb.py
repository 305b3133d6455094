"""Per-layer perturbation directions with prescribed relative sizes (docs/theory.md §1, §3, §5).

Every perturbation here is linear in the step η: a *direction* ``U`` (a pytree shaped like the
parameters) and ``ΔW(η) = η·U``. Each constructor scales ``U_l`` so that the relative size of layer l,
``a_l(η) = ‖ΔW_l‖_F/‖W_l‖_F``, equals ``η·s_l`` for a prescribed ``s_l`` (``sizes``; default 1).
A tensor of zero norm (e.g. a zero-initialised bias) has no relative scale and is not moved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from trust.base import linalg
from trust.base.errors import TrustError
from trust.base.tree import (
    check_finite,
    leaf_names,
    leaf_norms,
    leaves,
    per_leaf,
    relative_size,
    size_ratio,
    unflatten_like,
)


def perturbed(params, direction, eta):
    """``W + η·U``, leaf by leaf (a new pytree; the caller's parameters are untouched)."""
    return jax.tree_util.tree_map(lambda w, u: w + eta * u, params, direction)


def scaled(params, eps):
    """``ΔW_l = η·ε_l·W_l``: every tensor rescaled by its own factor (docs/theory.md §2.4, the exact case).

    ``eps`` is a scalar or one value per tensor; ``a_l = η|ε_l|``."""
    return _scale_leaves(params, per_leaf(eps, len(leaves(params))))


def _rescaled(params, raw, sizes, what, norms: Callable = leaf_norms):
    """``U_l = s_l·‖W_l‖·R_l/‖R_l‖`` in the per-leaf norm ``norms`` (Frobenius by default); R_l must be nonzero
    wherever W_l is."""
    check_finite(params, "parameters")
    w_norms, r_norms = norms(params), norms(raw)
    for name, w_norm, r_norm in zip(leaf_names(params), w_norms, r_norms):
        if w_norm > 0 and r_norm == 0:
            raise TrustError(f"{what} is zero in tensor {name}; its direction is undefined")
    scale = np.where(w_norms > 0, per_leaf(sizes, w_norms.size) * w_norms, 0.0)
    scale = scale / np.where(r_norms > 0, r_norms, 1.0)
    return _scale_leaves(raw, scale)


@jax.jit
def _scale_leaves(tree, scale):
    """Leaf l of ``tree`` times ``scale[l]`` (one compiled call instead of one eager op per shape)."""
    return unflatten_like(tree, [scale[i].astype(t.dtype) * t for i, t in enumerate(leaves(tree))])


def gaussian(key: jax.Array, params, sizes=1.0):
    """A random direction: ``U_l = s_l‖W_l‖·Z_l/‖Z_l‖`` with ``Z_l`` iid N(0, 1), one key fold per tensor."""
    return _rescaled(params, _normal_like(key, params), sizes, "random draw")


@jax.jit
def _normal_like(key, params):
    zs = [jax.random.normal(jax.random.fold_in(key, i), w.shape, w.dtype) for i, w in enumerate(leaves(params))]
    return unflatten_like(params, zs)


def along_gradient(params, grads, sizes=1.0):
    """The fixed-gradient slice of the paper's Figure 1: ``U_l = −s_l‖W_l‖·g_l/‖g_l‖`` (docs/theory.md §5)."""
    check_finite(grads, "gradient")
    return _rescaled(params, grads, -np.asarray(sizes, dtype=float), "gradient")


def madam(params, grads):
    """The Madam (sign-multiplicative) direction ``U = −|W| ⊙ sign g`` (docs/theory.md §3): every weight moves
    by the fraction η of its own magnitude, so every subset of weights has relative change η (where g ≠ 0)."""
    check_finite(grads, "gradient")
    return _madam_direction(params, grads)


@jax.jit
def _madam_direction(params, grads):
    return jax.tree_util.tree_map(lambda w, g: -jnp.abs(w) * jnp.sign(g), params, grads)


def single_layer(direction, layer: int | str):
    """Keep one tensor of ``direction`` (by flatten index or name such as ``"3.w"``), zero the rest."""
    names, us = leaf_names(direction), leaves(direction)
    index = names.index(layer) if isinstance(layer, str) and layer in names else layer
    if not isinstance(index, int) or not -len(us) <= index < len(us):
        raise TrustError(f"no tensor {layer!r}; tensors are {', '.join(names)}")
    index %= len(us)
    return unflatten_like(direction, [u if i == index else jnp.zeros_like(u) for i, u in enumerate(us)])


# name → ``make(params, grads, key, layer)``: the direction U (relative size 1 per tensor, except Madam's own
# scale). ``key`` is used by the random draw only, ``layer`` (1-based weight matrix) by ``single`` only.
DIRECTIONS: dict[str, Callable] = {
    "gradient": lambda params, grads, key, layer: along_gradient(params, grads),
    "random": lambda params, grads, key, layer: gaussian(key, params),
    "scaled": lambda params, grads, key, layer: scaled(params, 1.0),
    "madam": lambda params, grads, key, layer: madam(params, grads),
    "single": lambda params, grads, key, layer: single_layer(along_gradient(params, grads), f"{layer}.w"),
}


def direction(kind: str, params, grads, key: jax.Array | None = None, layer: int = 1):
    """The direction U of a perturbation ``kind`` in :data:`DIRECTIONS`: the fixed-gradient slice, a Gaussian
    draw with ``key``, ``ΔW_l = ηW_l`` (the exact homogeneous case, docs/theory.md §2.4), Madam's
    ``−|W| ⊙ sign g``, or weight matrix ``layer`` alone along its gradient."""
    if kind not in DIRECTIONS:
        raise TrustError(f"unknown perturbation {kind!r}; choose one of {', '.join(DIRECTIONS)}")
    return DIRECTIONS[kind](params, grads, key, layer)


# Three per-layer geometries of equal nominal size η (docs/theory.md §8). A *raw* direction R (the negative
# gradient, its polar factor, a random draw, an optimiser's step) becomes the direction U whose step ΔW = η·U
# has relative size η·s_l in the geometry's own norm.


def frobenius_step(params, raw, sizes=1.0):
    """``‖ΔW_l‖_F = η·s_l·‖W_l‖_F``: ``U_l = s_l‖W_l‖_F·R_l/‖R_l‖_F`` (deep relative trust's geometry; Fromage)."""
    check_finite(raw, "direction")
    return _rescaled(params, raw, sizes, "the direction")


def spectral_step(params, raw, sizes=1.0, tol: float = 1e-6, spec=None):
    """``‖ΔW_l‖_op = η·s_l·‖W_l‖_op``: ``U_l = s_l‖W_l‖_op·R_l/‖R_l‖_op``, operator norms from :mod:`trust.base.linalg`
    (exact SVD on small layers, power iteration to relative residual ``tol`` on large ones; a diagonal layer's is
    ``max|s|``, a bias's its Euclidean norm); ``spec`` says what each tensor is (:mod:`trust.base.spec`)."""
    check_finite(raw, "direction")
    return _rescaled(params, raw, sizes, "the direction", lambda tree: linalg.operator_norms(tree, tol, spec))


def elementwise_step(params, raw, sizes=1.0):
    """``|ΔW_ij| = η·s_l·|W_ij|`` wherever ``R_ij ≠ 0``: ``U_l = s_l·|W_l| ⊙ sign R_l`` (Madam's geometry; along
    ``R = −g`` it is :func:`madam` times ``s_l``). Raises where R_l is zero on a tensor whose W_l is not."""
    check_finite(raw, "direction")
    check_finite(params, "parameters")
    w, r = leaves(params), leaves(raw)
    for name, w_l, r_l in zip(leaf_names(params), w, r):
        if np.any(np.asarray(w_l) != 0) and not np.any(np.asarray(r_l) != 0):
            raise TrustError(f"the direction is zero in tensor {name}; its direction is undefined")
    s = per_leaf(sizes, len(w))
    return unflatten_like(
        params, [jnp.asarray(s_l, w_l.dtype) * jnp.abs(w_l) * jnp.sign(r_l) for s_l, w_l, r_l in zip(s, w, r)]
    )


def spectral_size(delta, params, tol: float = 1e-6, spec=None) -> np.ndarray:
    """``b_l = ‖ΔW_l‖_op/‖W_l‖_op`` per leaf; 0 where ΔW_l = 0, inf where only W_l is 0."""
    return size_ratio(linalg.operator_norms(delta, tol, spec), linalg.operator_norms(params, tol, spec))


def elementwise_size(delta, params) -> np.ndarray:
    """``e_l = max_ij |ΔW_ij|/|W_ij|`` per leaf; inf if some entry moves where ``W_ij = 0``, 0 if none moves."""
    out = []
    for d_l, w_l in zip(leaves(delta), leaves(params)):
        d_abs, w_abs = np.abs(np.asarray(d_l, dtype=float)), np.abs(np.asarray(w_l, dtype=float))
        moved = d_abs > 0
        if not moved.any():
            out.append(0.0)
        elif np.any(moved & (w_abs == 0)):
            out.append(np.inf)
        else:
            out.append(float(np.max(d_abs[moved] / w_abs[moved])))
    return np.array(out)


class Geometry(NamedTuple):
    """A per-layer geometry: ``step(params, raw, sizes)`` → direction U, ``size(delta, params)`` → per-leaf size."""

    step: Callable
    size: Callable


GEOMETRIES: dict[str, Geometry] = {
    "frobenius": Geometry(frobenius_step, relative_size),
    "spectral": Geometry(spectral_step, spectral_size),
    "elementwise": Geometry(elementwise_step, elementwise_size),
}


def orthogonalised(grads, spec=None):
    """``−polar(g_l)`` per tensor (:func:`trust.base.linalg.polar`): the orthogonalised negative gradient of Muon-like
    steps (``−sign g`` on a gain, ``−g/‖g‖`` on a bias); ``spec`` as in :func:`spectral_step`."""
    return unflatten_like(
        grads, [-jnp.asarray(q, dtype=jnp.asarray(g).dtype) for q, g in zip(linalg.polars(grads, spec), leaves(grads))]
    )
