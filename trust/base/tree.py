"""Pytree helpers, the ground floor every other module stands on: leaf names, per-leaf norms and the relative
size of a perturbation (docs/theory.md §1). Which leaves are layers is :mod:`trust.base.spec`'s.

Nothing here knows about networks, data or experiments; everything above imports from here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from trust.base.errors import TrustError


def leaves(tree) -> list:
    """The leaves of ``tree`` in flatten order."""
    return jax.tree_util.tree_leaves(tree)


def unflatten_like(tree, new_leaves: Sequence):
    """A pytree with the structure of ``tree`` and the given leaves."""
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(tree), list(new_leaves))


def leaf_names(tree) -> list[str]:
    """Readable names of the leaves in flatten order, e.g. ``1.w``, ``1.b`` (list entries counted from 1)."""
    names = []
    for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]:
        parts = []
        for k in path:
            if isinstance(k, jax.tree_util.SequenceKey):
                parts.append(str(k.idx + 1))
            elif isinstance(k, jax.tree_util.DictKey):
                parts.append(str(k.key))
            else:
                parts.append(str(getattr(k, "name", k)))
        names.append(".".join(parts))
    return names


def same_structure(a, b) -> bool:
    """Whether two pytrees have the same structure and leaf shapes."""
    structure_a: Any = jax.tree_util.tree_structure(a)  # PyTreeDef's stubs lack __eq__
    return structure_a == jax.tree_util.tree_structure(b) and all(
        jnp.shape(x) == jnp.shape(y) for x, y in zip(leaves(a), leaves(b))
    )


def check_finite(tree, what: str) -> None:
    """Raise :class:`TrustError` naming ``what`` and the leaf if any entry is NaN or ±Inf, or if a nonzero tensor
    holds only subnormal numbers: XLA's CPU and GPU kernels flush those to zero, so every computed quantity would
    treat the tensor as zero while its norm in NumPy is not."""
    for name, leaf in zip(leaf_names(tree), leaves(tree)):
        arr = np.asarray(leaf)
        if not np.all(np.isfinite(arr)):
            raise TrustError(f"{what} has NaN or Inf entries in tensor {name}")
        if arr.dtype.kind == "f" and arr.size:
            largest = np.max(np.abs(arr))
            if 0 < largest < np.finfo(arr.dtype).smallest_normal:
                raise TrustError(
                    f"{what}: tensor {name} is nonzero but subnormal in {arr.dtype} (|entries| ≤ {largest:.3g}), "
                    "which XLA flushes to zero; rescale it or use float64"
                )


def per_leaf(values, n: int) -> np.ndarray:
    """A scalar broadcast to ``n`` leaves, or a sequence of exactly ``n`` finite values."""
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if arr.size == 1:
        arr = np.full(n, arr.item())
    if arr.shape != (n,):
        raise TrustError(f"expected one value per tensor ({n}), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise TrustError("per-tensor values must be finite")
    return arr


def frobenius_norms(tree) -> jax.Array:
    """‖T_l‖_F of every leaf, in flatten order (traceable: used inside jitted code), scaled by ``max|T_l|`` first as
    :func:`leaf_norms` is: the squares of a memorised net's float32 gradient entries (below 1e-19) underflow to 0,
    and an unscaled norm would call a nonzero gradient zero."""
    return jnp.stack([_scaled_norm(jnp.ravel(t)) for t in leaves(tree)])


def _scaled_norm(t: jax.Array) -> jax.Array:
    largest = jnp.max(jnp.abs(t), initial=0.0)
    safe = jnp.where((largest > 0) & jnp.isfinite(largest), largest, 1.0)
    return jnp.where((largest > 0) & jnp.isfinite(largest), safe * jnp.linalg.norm(t / safe), largest)


def _norm(t) -> float:
    """‖t‖_F in float64, scaled by max|t| first: the sum of squares of entries near 1e200 would overflow."""
    a = np.asarray(t, dtype=float)
    largest = float(np.max(np.abs(a))) if a.size else 0.0
    return largest * float(np.linalg.norm(a / largest)) if 0 < largest < np.inf else largest


def leaf_norms(tree) -> np.ndarray:
    """:func:`frobenius_norms` of concrete arrays, in NumPy float64 (no per-shape compilation), free of overflow."""
    return np.array([_norm(t) for t in leaves(tree)])


def size_ratio(d, w) -> np.ndarray:
    """``d_l / w_l`` for per-leaf norms of a step and of the weights: 0 where both are 0, inf where only ``w_l`` is."""
    d, w = np.asarray(d, dtype=float), np.asarray(w, dtype=float)
    with np.errstate(over="ignore"):  # a ratio past the largest float is inf, as it is for w_l = 0
        ratio = np.divide(d, w, out=np.full_like(d, np.inf), where=w > 0)
    return np.where(d == 0, 0.0, ratio)


def relative_size(delta, params) -> np.ndarray:
    """``a_l = ‖ΔW_l‖_F / ‖W_l‖_F`` per leaf (docs/theory.md §1); 0 where both are 0, inf where only ‖W_l‖ is."""
    return size_ratio(leaf_norms(delta), leaf_norms(params))
