"""Per-layer perturbation directions with prescribed relative sizes (THEORY §1, §3, §5).

Every perturbation here is linear in the step η: a *direction* ``U`` (a pytree shaped like the
parameters) and ``ΔW(η) = η·U``. Each constructor scales ``U_l`` so that the relative size of layer l,
``a_l(η) = ‖ΔW_l‖_F/‖W_l‖_F``, equals ``η·s_l`` for a prescribed ``s_l`` (``sizes``; default 1).
A tensor of zero norm (e.g. a zero-initialised bias) has no relative scale and is not moved.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from trust.errors import TrustError
from trust.nets import leaf_names

KINDS = ("gradient", "random", "scaled", "single", "madam")


def _leaves(tree):
    return jax.tree_util.tree_leaves(tree)


def _unflatten_like(tree, leaves):
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(tree), leaves)


def _per_leaf(values, n: int) -> list[float]:
    """A scalar broadcast to ``n`` leaves, or a sequence of exactly ``n`` values."""
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if arr.size == 1:
        arr = np.full(n, arr.item())
    if arr.shape != (n,):
        raise TrustError(f"expected one relative size per tensor ({n}), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise TrustError("relative sizes must be finite")
    return arr.tolist()


def check_finite(tree, what: str) -> None:
    """Raise :class:`TrustError` naming ``what`` and the leaf if any entry is NaN or ±Inf."""
    for name, leaf in zip(leaf_names(tree), _leaves(tree)):
        if not np.all(np.isfinite(np.asarray(leaf))):
            raise TrustError(f"{what} has NaN or Inf entries in tensor {name}")


def frobenius_norms(tree) -> jax.Array:
    """‖T_l‖_F of every leaf, in flatten order (traceable: used inside the jitted grid too)."""
    return jnp.stack([jnp.linalg.norm(jnp.ravel(t)) for t in _leaves(tree)])


def leaf_norms(tree) -> np.ndarray:
    """:func:`frobenius_norms` of concrete arrays, in NumPy (no per-shape compilation)."""
    return np.array([np.linalg.norm(np.asarray(t, dtype=float)) for t in _leaves(tree)])


def relative_size(delta, params) -> np.ndarray:
    """``a_l = ‖ΔW_l‖_F / ‖W_l‖_F`` per leaf (THEORY §1); 0 where both are 0, inf where only ‖W_l‖ is."""
    d, w = leaf_norms(delta), leaf_norms(params)
    ratio = np.divide(d, w, out=np.full_like(d, np.inf), where=w > 0)
    return np.where(d == 0, 0.0, ratio)


def perturbed(params, direction, eta):
    """``W + η·U``, leaf by leaf (a new pytree; the caller's parameters are untouched)."""
    return jax.tree_util.tree_map(lambda w, u: w + eta * u, params, direction)


def scaled(params, eps):
    """``ΔW_l = η·ε_l·W_l``: every tensor rescaled by its own factor (THEORY §2.4, the exact case).

    ``eps`` is a scalar or one value per tensor; ``a_l = η|ε_l|``."""
    return _scale_leaves(params, np.asarray(_per_leaf(eps, len(_leaves(params)))))


def _rescaled(params, raw, sizes, what):
    """``U_l = s_l·‖W_l‖·R_l/‖R_l‖``; R_l must be nonzero wherever W_l is."""
    w_norms, r_norms = leaf_norms(params), leaf_norms(raw)
    for name, w_norm, r_norm in zip(leaf_names(params), w_norms, r_norms):
        if w_norm > 0 and r_norm == 0:
            raise TrustError(f"{what} is zero in tensor {name}; its direction is undefined")
    scale = np.where(w_norms > 0, np.asarray(_per_leaf(sizes, w_norms.size)) * w_norms, 0.0)
    scale = scale / np.where(r_norms > 0, r_norms, 1.0)
    return _scale_leaves(raw, scale)


@jax.jit
def _scale_leaves(tree, scale):
    """Leaf l of ``tree`` times ``scale[l]`` (one compiled call instead of one eager op per shape)."""
    leaves = _leaves(tree)
    return _unflatten_like(tree, [scale[i].astype(t.dtype) * t for i, t in enumerate(leaves)])


def gaussian(key: jax.Array, params, sizes=1.0):
    """A random direction: ``U_l = s_l‖W_l‖·Z_l/‖Z_l‖`` with ``Z_l`` iid N(0, 1), one key fold per tensor."""
    return _rescaled(params, _normal_like(key, params), sizes, "random draw")


@jax.jit
def _normal_like(key, params):
    zs = [jax.random.normal(jax.random.fold_in(key, i), w.shape, w.dtype) for i, w in enumerate(_leaves(params))]
    return _unflatten_like(params, zs)


def along_gradient(params, grads, sizes=1.0):
    """The fixed-gradient slice of the paper's Figure 1: ``U_l = −s_l‖W_l‖·g_l/‖g_l‖`` (THEORY §5)."""
    check_finite(grads, "gradient")
    return _rescaled(params, grads, -np.asarray(sizes, dtype=float), "gradient")


def madam(params, grads):
    """The Madam (sign-multiplicative) direction ``U = −|W| ⊙ sign g`` (THEORY §3): every weight moves by
    the fraction η of its own magnitude, so every subset of weights has relative change η (where g ≠ 0)."""
    check_finite(grads, "gradient")
    return _madam_direction(params, grads)


@jax.jit
def _madam_direction(params, grads):
    return jax.tree_util.tree_map(lambda w, g: -jnp.abs(w) * jnp.sign(g), params, grads)


def direction(kind: str, params, grads, key: jax.Array | None = None, layer: int = 1):
    """The direction U of a perturbation ``kind`` in :data:`KINDS` (relative size 1 per tensor, except
    Madam's own scale): the fixed-gradient slice, a Gaussian draw with ``key``, ``ΔW_l = ηW_l`` (the exact
    homogeneous case, THEORY §2.4), Madam's ``−|W| ⊙ sign g``, or layer ``layer`` alone along its gradient."""
    if kind == "gradient":
        return along_gradient(params, grads)
    if kind == "random":
        return gaussian(key, params)
    if kind == "scaled":
        return scaled(params, 1.0)
    if kind == "madam":
        return madam(params, grads)
    if kind == "single":
        return single_layer(along_gradient(params, grads), f"{layer}.w")
    raise TrustError(f"unknown perturbation {kind!r}; choose one of {', '.join(KINDS)}")


def single_layer(direction, layer: int | str):
    """Keep one tensor of ``direction`` (by flatten index or name such as ``"3.w"``), zero the rest."""
    names, us = leaf_names(direction), _leaves(direction)
    index = names.index(layer) if isinstance(layer, str) and layer in names else layer
    if not isinstance(index, int) or not -len(us) <= index < len(us):
        raise TrustError(f"no tensor {layer!r}; tensors are {', '.join(names)}")
    index %= len(us)
    return _unflatten_like(direction, [u if i == index else jnp.zeros_like(u) for i, u in enumerate(us)])
