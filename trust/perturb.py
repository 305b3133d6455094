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
        if not bool(jnp.all(jnp.isfinite(leaf))):
            raise TrustError(f"{what} has NaN or Inf entries in tensor {name}")


def frobenius_norms(tree) -> jax.Array:
    """‖T_l‖_F of every leaf, in flatten order."""
    return jnp.stack([jnp.linalg.norm(jnp.ravel(t)) for t in _leaves(tree)])


def relative_size(delta, params) -> jax.Array:
    """``a_l = ‖ΔW_l‖_F / ‖W_l‖_F`` per leaf (THEORY §1); 0 where both are 0, inf where only ‖W_l‖ is."""
    d, w = frobenius_norms(delta), frobenius_norms(params)
    return jnp.where(d == 0, 0.0, d / jnp.where(w == 0, 0.0, w))


def perturbed(params, direction, eta):
    """``W + η·U``, leaf by leaf (a new pytree; the caller's parameters are untouched)."""
    return jax.tree_util.tree_map(lambda w, u: w + eta * u, params, direction)


def scaled(params, eps):
    """``ΔW_l = η·ε_l·W_l``: every tensor rescaled by its own factor (THEORY §2.4, the exact case).

    ``eps`` is a scalar or one value per tensor; ``a_l = η|ε_l|``."""
    ws = _leaves(params)
    return _unflatten_like(params, [e * w for e, w in zip(_per_leaf(eps, len(ws)), ws)])


def _rescaled(params, raw, sizes, what):
    """``U_l = s_l·‖W_l‖·R_l/‖R_l‖``; R_l must be nonzero wherever W_l is."""
    ws, rs = _leaves(params), _leaves(raw)
    out = []
    for name, s, w, r in zip(leaf_names(params), _per_leaf(sizes, len(ws)), ws, rs):
        w_norm, r_norm = jnp.linalg.norm(jnp.ravel(w)), jnp.linalg.norm(jnp.ravel(r))
        if w_norm == 0:
            out.append(jnp.zeros_like(w))
        elif r_norm == 0:
            raise TrustError(f"{what} is zero in tensor {name}; its direction is undefined")
        else:
            out.append((s * w_norm / r_norm) * r)
    return _unflatten_like(params, out)


def gaussian(key: jax.Array, params, sizes=1.0):
    """A random direction: ``U_l = s_l‖W_l‖·Z_l/‖Z_l‖`` with ``Z_l`` iid N(0, 1), one key fold per tensor."""
    ws = _leaves(params)
    zs = [jax.random.normal(jax.random.fold_in(key, i), w.shape, w.dtype) for i, w in enumerate(ws)]
    return _rescaled(params, _unflatten_like(params, zs), sizes, "random draw")


def along_gradient(params, grads, sizes=1.0):
    """The fixed-gradient slice of the paper's Figure 1: ``U_l = −s_l‖W_l‖·g_l/‖g_l‖`` (THEORY §5)."""
    check_finite(grads, "gradient")
    neg = jax.tree_util.tree_map(jnp.negative, grads)
    return _rescaled(params, neg, sizes, "gradient")


def madam(params, grads):
    """The Madam (sign-multiplicative) direction ``U = −|W| ⊙ sign g`` (THEORY §3): every weight moves by
    the fraction η of its own magnitude, so every subset of weights has relative change η (where g ≠ 0)."""
    check_finite(grads, "gradient")
    return jax.tree_util.tree_map(lambda w, g: -jnp.abs(w) * jnp.sign(g), params, grads)


def single_layer(direction, layer: int | str):
    """Keep one tensor of ``direction`` (by flatten index or name such as ``"3.w"``), zero the rest."""
    names, us = leaf_names(direction), _leaves(direction)
    index = names.index(layer) if isinstance(layer, str) and layer in names else layer
    if not isinstance(index, int) or not -len(us) <= index < len(us):
        raise TrustError(f"no tensor {layer!r}; tensors are {', '.join(names)}")
    index %= len(us)
    return _unflatten_like(direction, [u if i == index else jnp.zeros_like(u) for i, u in enumerate(us)])
