"""Equinox models (``pip install 'deep-relative-trust[equinox]'``): the model's floating-point arrays are the
parameters (``eqx.partition(model, eqx.is_inexact_array)``), read in Equinox's own layouts — a ``Linear`` weight
``(out, in)``, a convolution weight ``(out, in, *kernel)`` with its bias ``(out, 1, …)``, a ``LayerNorm`` gain over
the whole normalised shape — and the model, which takes one example, is mapped over the batch.

A model with state (``eqx.nn.BatchNorm`` with ``axis_name="batch"``) is applied with the ``state`` given, in the
mode the user chooses: ``"eval"`` (``eqx.nn.inference_mode``: running statistics) or ``"batch"`` (statistics of
the batch; the updated state is dropped). While the forward pass is traced, a module applied twice (one tensor,
two layers) is seen and refused."""

from __future__ import annotations

from collections.abc import Mapping

import equinox as eqx
import jax

from trust.base import spec as specs
from trust.base.errors import TrustError
from trust.base.spec import Leaf
from trust.base.tree import leaf_names
from trust.core.adapters import Model, applied_once, declared, refuse

MODES = ("eval", "batch")
SPATIAL = {1: "W", 2: "HW", 3: "DHW"}
NORMS = (eqx.nn.LayerNorm, eqx.nn.GroupNorm, eqx.nn.RMSNorm, eqx.nn.BatchNorm)
OPAQUE = (eqx.nn.ConvTranspose, eqx.nn.SpectralNorm, eqx.nn.WeightNorm)


def _role(owner: eqx.Module, attr: str, name: str) -> Leaf | TrustError:
    """The role of the array ``owner.attr`` by the owner's type (or its refusal)."""
    kind = type(owner).__name__
    if isinstance(owner, eqx.nn.Shared):
        return refuse(name, kind, "a shared (tied) weight is one tensor in two layers; the per-layer bounds would "
                                  "count it twice")  # fmt: skip
    if isinstance(owner, OPAQUE):
        return refuse(name, kind, "a transposed convolution or a reparametrised weight is not one linear map trust "
                                  "can read from its type")  # fmt: skip
    if isinstance(owner, (eqx.nn.Linear, eqx.nn.Conv)) and attr == "bias":
        return specs.bias()
    if isinstance(owner, eqx.nn.Linear) and attr == "weight":
        return specs.dense("out_in")
    if isinstance(owner, eqx.nn.Conv) and attr == "weight":
        if owner.groups != 1:
            return refuse(name, kind, f"a grouped convolution ({owner.groups} groups) is not one patch matrix")
        return specs.conv("OI" + SPATIAL[owner.num_spatial_dims])
    if isinstance(owner, eqx.nn.Embedding) and attr == "weight":
        return specs.embedding()
    if isinstance(owner, NORMS) and attr in ("weight", "bias"):
        return specs.gain() if attr == "weight" else specs.shift()
    return refuse(name, kind, f"trust does not know what {kind}.{attr} is")


def _owner(model, path) -> tuple[eqx.Module, str] | None:
    """The module that holds the leaf at ``path`` as a field of its own, and the field's name; ``None`` if the leaf
    sits inside a container of a module (a list or dict of arrays)."""
    node, owner, attr = model, None, None
    for key in path:
        if isinstance(key, jax.tree_util.GetAttrKey):
            owner, attr = node, key.name
            node = getattr(node, key.name)
        else:
            owner, attr = None, None
            node = node[key.idx if isinstance(key, jax.tree_util.SequenceKey) else key.key]
    return (owner, attr) if isinstance(owner, eqx.Module) and attr else None


def _module_at(model, path) -> eqx.Module | None:
    """The module that owns the leaf at ``path`` (:func:`_owner`), if one does."""
    found = _owner(model, path)
    return found[0] if found else None


def _shared(params) -> None:
    """Refuse parameters that hold one array at two places (a tied weight not wrapped in ``eqx.nn.Shared``)."""
    seen: dict[int, str] = {}
    for name, leaf in zip(leaf_names(params), jax.tree_util.tree_leaves(params)):
        if id(leaf) in seen:
            raise TrustError(f"tensor {seen[id(leaf)]} is tied to {name} (one tensor, two layers): the per-layer "
                             "bounds would count it twice; untie the weights to measure them")  # fmt: skip
        seen[id(leaf)] = name


def from_equinox(model: eqx.Module, state=None, mode: str = "eval", spec: Mapping[str, Leaf] | None = None) -> Model:
    """An Equinox model as a :class:`~trust.core.adapters.Model`; ``state``: its ``eqx.nn.State`` if it has one;
    ``mode``: normalisation with running (``"eval"``) or batch (``"batch"``) statistics; ``spec``: roles of leaves
    the adapter cannot infer (or overrides)."""
    if mode not in MODES:
        raise TrustError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    params, static = eqx.partition(model, eqx.is_inexact_array)
    _shared(params)
    names = leaf_names(params)
    inferred: dict[str, Leaf | TrustError] = {}
    for name, (path, _) in zip(names, jax.tree_util.tree_flatten_with_path(params)[0]):
        found = _owner(model, path)
        inferred[name] = _role(*found, name) if found else refuse(name, "the model", "it is not a field of a layer")

    paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]

    def apply(p, x):
        net = eqx.combine(p, static)
        if mode == "eval":
            net = eqx.nn.inference_mode(net)
        owners = {
            id(m): (m, name.rsplit(".", 1)[0]) for name, path in zip(names, paths) if (m := _module_at(net, path))
        }
        if state is None:
            return applied_once(owners, lambda: jax.vmap(net)(x))
        batched = jax.vmap(net, axis_name="batch", in_axes=(0, None), out_axes=(0, None))
        return applied_once(owners, lambda: batched(x, state)[0])

    roles = declared(inferred, names, spec)
    return Model(apply, params, roles, f"equinox {type(model).__name__} ({mode} mode)")
