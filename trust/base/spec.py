"""What each leaf of a parameter tree is (docs/theory.md §1, "Leaf roles"): a linear layer with the axes it maps
from and to, a normalisation gain (the diagonal layer ``diag(s)``), a bias, a normalisation shift, or state that is
not a parameter (running statistics). Every measurement that must know — which leaves are the bounds' layers, which
are diagonal, how a kernel reads as a matrix — reads a spec, never a leaf's number of dimensions.

A spec is declared by the user (a mapping from leaf names, :func:`trust.base.tree.leaf_names`, to :class:`Leaf`;
or a pytree of :class:`Leaf` shaped like the parameters), built by a framework adapter (:mod:`trust.adapters`), or
read from trust's own nets' names (:func:`trust_naming`). A leaf that no rule covers with certainty is refused with
a one-line message naming it and how to declare it — never guessed."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from trust.base.errors import TrustError
from trust.base.tree import leaf_names, leaves

ROLES = ("linear", "gain", "bias", "shift", "state")
"""A leaf's role. ``linear`` and ``gain`` are the bounds' layers; a bias, a shift and state are not."""

SPATIAL = "DHWL"
"""The letters a convolution layout may use for kernel axes besides ``I`` (input channels) and ``O`` (outputs)."""


@dataclass(frozen=True)
class Leaf:
    """One leaf's role; for a ``linear`` leaf also the axes contracted with its input (``inputs``: a kernel's
    spatial axes and input channels) and the axes of its output (``outputs``). As a matrix it is
    ``(∏ inputs, ∏ outputs)``: the map from an input patch to one output position's features."""

    role: str
    inputs: tuple[int, ...] = ()
    outputs: tuple[int, ...] = ()

    def __post_init__(self):
        if self.role not in ROLES:
            raise TrustError(f"a leaf's role is one of {', '.join(ROLES)}; got {self.role!r}")
        axes = self.inputs + self.outputs
        if self.role == "linear" and (not self.inputs or not self.outputs or len(set(axes)) != len(axes)):
            raise TrustError(f"a linear leaf needs disjoint, nonempty input and output axes; got {self.describe()}")
        if self.role != "linear" and axes:
            raise TrustError(f"only a linear leaf has input and output axes; got {self.describe()}")

    @property
    def is_layer(self) -> bool:
        """A layer of the bounds (docs/theory.md §1): a linear map or a normalisation gain."""
        return self.role in ("linear", "gain")

    @property
    def diagonal(self) -> bool:
        """A gain ``s`` acts as the diagonal layer ``diag(s)``."""
        return self.role == "gain"

    def describe(self) -> str:
        """``linear (0,)→(1,)``, ``gain``, … — as a run directory records it."""
        return f"linear {self.inputs}→{self.outputs}" if self.role == "linear" else self.role

    def check(self, name: str, shape: tuple[int, ...]) -> None:
        """Raise naming the tensor if this role cannot describe a leaf of ``shape``."""
        if self.role == "linear" and sorted(self.inputs + self.outputs) != list(range(len(shape))):
            raise TrustError(
                f"tensor {name} has shape {shape}, but its spec {self.describe()} does not name each of its "
                f"{len(shape)} axes once as an input or an output"
            )


def linear(inputs: Sequence[int], outputs: Sequence[int]) -> Leaf:
    """A linear layer contracting the ``inputs`` axes with its input and producing the ``outputs`` axes, e.g. an
    attention query kernel ``(features, heads, head_dim)`` is ``linear((0,), (1, 2))`` and its output kernel
    ``(heads, head_dim, features)`` is ``linear((0, 1), (2,))``."""
    return Leaf("linear", tuple(int(a) for a in inputs), tuple(int(a) for a in outputs))


def dense(layout: str = "in_out") -> Leaf:
    """A weight matrix stored ``in_out`` (``(fan_in, fan_out)``: Flax's ``kernel``) or ``out_in`` (PyTorch's and
    Equinox's ``weight``, trust's ``w``). The norms do not depend on it; a run directory records it."""
    if layout not in ("in_out", "out_in"):
        raise TrustError(f"a dense layout is 'in_out' or 'out_in'; got {layout!r}")
    return linear((0,), (1,)) if layout == "in_out" else linear((1,), (0,))


def conv(layout: str) -> Leaf:
    """A convolution kernel with its axes named in order: ``O`` output channels, ``I`` input channels, spatial
    axes from ``D``, ``H``, ``W``, ``L`` — ``HWIO`` (Flax, trust), ``OIHW`` (PyTorch, Equinox), ``OIL`` (1-D). Its
    matrix maps an input patch (spatial × input channels) to one output pixel's channels. Grouped and transposed
    convolutions are not this map; adapters refuse them by name."""
    letters = layout.upper()
    spatial = set(letters) - {"I", "O"}
    if len(set(letters)) != len(letters) or not {"I", "O"} <= set(letters) or not spatial <= set(SPATIAL):
        raise TrustError(f"a convolution layout names O, I and distinct spatial axes from {SPATIAL}; got {layout!r}")
    patch = [i for i, c in enumerate(letters) if c in SPATIAL] + [letters.index("I")]  # rows ordered as HWIO's
    return linear(patch, [letters.index("O")])


def embedding() -> Leaf:
    """A lookup table ``(vocabulary, features)``: row ``i`` is the output for the one-hot input ``i``, so it is the
    linear map ``(vocabulary → features)``."""
    return linear((0,), (1,))


def gain() -> Leaf:
    """A normalisation's per-feature gain ``s``: the diagonal layer ``diag(s)`` (any shape: every entry scales one
    feature)."""
    return Leaf("gain")


def bias() -> Leaf:
    """An additive bias: not a layer of the bounds, moved by the perturbations and optimisers like any tensor."""
    return Leaf("bias")


def shift() -> Leaf:
    """A normalisation's additive shift: like a bias."""
    return Leaf("shift")


def state() -> Leaf:
    """Running statistics and other state a model carries: not a parameter. Refused where parameters are
    measured — split it out (the adapters do) and close over it in ``apply``."""
    return Leaf("state")


TRUST_NAMES = {"b": bias(), "scale": gain(), "shift": shift()}
"""trust's own nets' vector names; ``w`` is a weight matrix ``(out, in)`` or a kernel ``HWIO``."""


def trust_naming(tree) -> list[Leaf]:
    """The leaves of one of trust's own nets (:mod:`trust.core.nets`), by name: ``w`` is a weight matrix stored
    ``out_in`` or a convolution kernel ``HWIO``, ``b`` a bias, ``scale`` a normalisation gain, ``shift`` its shift.
    Any other leaf is refused with how to declare it."""
    out = []
    for name, leaf in zip(leaf_names(tree), leaves(tree)):
        key, ndim = name.rsplit(".", 1)[-1], np.ndim(leaf)
        if key == "w" and ndim in (2, 4):
            out.append(dense("out_in") if ndim == 2 else conv("HWIO"))
        elif key in TRUST_NAMES and ndim == 1:
            out.append(TRUST_NAMES[key])
        else:
            raise TrustError(
                f"tensor {name} (shape {np.shape(leaf)}) is not named as in trust's own nets, so its role is not "
                f"certain: pass spec={{{name!r}: trust.spec.dense('in_out')}} (or conv('OIHW'), gain(), bias(), …) "
                "or build the model with an adapter (README: Your own model)"
            )
    return out


def resolve(tree, spec=None) -> list[Leaf]:
    """The :class:`Leaf` of every leaf of ``tree`` in flatten order, each checked against its shape.

    ``spec``: ``None`` (:func:`trust_naming`), a mapping from leaf names to :class:`Leaf`, a pytree of :class:`Leaf`
    with ``tree``'s structure, or a sequence of :class:`Leaf` in flatten order (already resolved)."""
    names, shapes = leaf_names(tree), [tuple(np.shape(t)) for t in leaves(tree)]
    if spec is None:
        resolved = trust_naming(tree)
    elif isinstance(spec, Mapping) and all(isinstance(k, str) and isinstance(v, Leaf) for k, v in spec.items()):
        unknown = sorted(set(spec) - set(names))
        if unknown:
            raise TrustError(f"the spec names {unknown[0]!r}, which is not a tensor of the parameters ({names[:4]}…)")
        missing = [n for n in names if n not in spec]
        if missing:
            raise TrustError(f"tensor {missing[0]} has no entry in the spec: declare it, e.g. trust.spec.bias()")
        resolved = [spec[n] for n in names]
    elif isinstance(spec, Sequence) and spec and all(isinstance(s, Leaf) for s in spec) and len(spec) == len(names):
        resolved = list(spec)
    else:
        flat, structure = jax.tree_util.tree_flatten(spec, is_leaf=lambda s: isinstance(s, Leaf))
        expected: Any = jax.tree_util.tree_structure(tree)  # PyTreeDef's stubs lack __eq__
        if expected != structure or not all(isinstance(s, Leaf) for s in flat):
            raise TrustError("the spec is neither a mapping from tensor names to trust.spec leaves nor a tree of "
                             "them shaped like the parameters")  # fmt: skip
        resolved = flat
    for name, shape, leaf in zip(names, shapes, resolved):
        if not isinstance(leaf, Leaf):
            raise TrustError(f"the spec of tensor {name} is {leaf!r}, not a trust.spec leaf")
        leaf.check(name, shape)
    return resolved


def parameters(tree, spec=None) -> list[Leaf]:
    """:func:`resolve`, refusing state: what perturbations, gradients and bounds run over are parameters only."""
    resolved = resolve(tree, spec)
    for name, leaf in zip(leaf_names(tree), resolved):
        if leaf.role == "state":
            raise TrustError(
                f"tensor {name} is state (running statistics), not a parameter: split it out of the parameters "
                "and close over it in apply (the adapters do)"
            )
    return resolved


def layer_flags(tree, spec=None) -> list[bool]:
    """Which leaves are the layers the bounds are about (docs/theory.md §1): linear maps and gains."""
    return [leaf.is_layer for leaf in parameters(tree, spec)]


def weight_indices(tree, spec=None) -> list[int]:
    """Flatten indices of the layers of ``tree`` (:func:`layer_flags`)."""
    return [i for i, layer in enumerate(layer_flags(tree, spec)) if layer]


def matrix_shape(leaf: Leaf, shape: Sequence[int]) -> tuple[int, int]:
    """The ``(rows, columns)`` of a leaf as a matrix: ``(∏ inputs, ∏ outputs)`` for a linear leaf, one row else."""
    if leaf.role == "linear":
        return math.prod(shape[a] for a in leaf.inputs), math.prod(shape[a] for a in leaf.outputs)
    return 1, math.prod(shape)


def to_matrix(t, leaf: Leaf):
    """A NumPy or JAX array as its matrix (:func:`matrix_shape`): inputs first, then outputs, each flattened."""
    if leaf.role == "linear":
        return t.transpose(leaf.inputs + leaf.outputs).reshape(matrix_shape(leaf, t.shape))
    return t.reshape(1, -1)


def from_matrix(m, leaf: Leaf, shape: Sequence[int]):
    """The inverse of :func:`to_matrix`: a matrix back in the leaf's own ``shape`` and axis order."""
    if leaf.role == "linear":
        order = leaf.inputs + leaf.outputs
        return m.reshape([shape[a] for a in order]).transpose(tuple(int(a) for a in np.argsort(order)))
    return m.reshape(shape)


def record(tree, spec=None) -> dict[str, str]:
    """``{tensor name: role}`` for a run directory's config (:meth:`Leaf.describe`)."""
    return {name: leaf.describe() for name, leaf in zip(leaf_names(tree), resolve(tree, spec))}
