"""Flax NNX models (``pip install 'deep-relative-trust[flax]'``): split into graph, parameters and the rest (batch
statistics, RNG state), measured as a pure function of a plain dict of parameters.

Normalisation runs in the mode the user chooses: ``"eval"`` (running statistics — the function a trained net
computes at test time) or ``"batch"`` (statistics of the batch it is applied to, never written back). Either way
``apply`` merges a fresh copy of the model inside the traced function, so ``jax.grad`` never mutates a variable
from another trace level; while it is traced, a module applied twice (one tensor, two layers) is seen and refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import jax
from flax import nnx

from trust.base import spec as specs
from trust.base.errors import TrustError
from trust.base.spec import Leaf
from trust.base.tree import leaf_names
from trust.core.adapters import Model, applied_once, declared, refuse

MODES = ("eval", "batch")
SPATIAL = {1: "W", 2: "HW", 3: "DHW"}
NORMS = (nnx.BatchNorm, nnx.LayerNorm, nnx.GroupNorm, nnx.RMSNorm, nnx.InstanceNorm)


def _roles(module: nnx.Module, names: dict[str, Leaf | TrustError], prefix: str) -> None:
    """The role of each parameter a module owns directly, by the module's type (or its refusal)."""
    owner = type(module).__name__
    params = {k: v for k, v in vars(module).items() if isinstance(v, nnx.Param)}
    for attr in params:
        name = f"{prefix}{attr}"
        if isinstance(module, (nnx.ConvTranspose, nnx.SpectralNorm, nnx.WeightNorm, nnx.Einsum)):
            names[name] = refuse(name, owner, "a transposed convolution, a reparametrised weight or an einsum is "
                                              "not one linear map trust can read from its type")  # fmt: skip
        elif attr == "bias" and isinstance(module, (nnx.Linear, nnx.LinearGeneral, nnx.Conv)):
            names[name] = specs.bias()
        elif isinstance(module, nnx.Linear) and attr == "kernel":
            names[name] = specs.dense("in_out")
        elif isinstance(module, nnx.LinearGeneral) and attr == "kernel":
            if module.batch_axis:
                names[name] = refuse(name, owner, "a kernel with batch axes is one matrix per batch index")
            else:
                n_in = len(module.in_features)
                names[name] = specs.linear(range(n_in), range(n_in, n_in + len(module.out_features)))
        elif isinstance(module, nnx.Conv) and attr == "kernel":
            if module.feature_group_count != 1:
                names[name] = refuse(name, owner, f"a grouped convolution ({module.feature_group_count} groups) is "
                                                  "not one patch matrix")  # fmt: skip
            else:
                names[name] = specs.conv(SPATIAL[len(module.kernel_size)] + "IO")
        elif isinstance(module, nnx.Embed) and attr == "embedding":
            names[name] = specs.embedding()
        elif isinstance(module, NORMS) and attr in ("scale", "bias"):
            names[name] = specs.gain() if attr == "scale" else specs.shift()
        else:
            names[name] = refuse(name, owner, f"trust does not know what {owner}.{attr} is")


def _tied(model: nnx.Module) -> None:
    """Refuse a parameter owned by two modules (a tied weight: one tensor, two layers)."""
    owners: dict[int, str] = {}
    for path, module in nnx.iter_graph(model):
        if isinstance(module, nnx.Module):
            for attr, v in vars(module).items():
                if isinstance(v, nnx.Param):
                    here = ".".join(str(p) for p in (*path, attr))
                    if id(v) in owners and owners[id(v)] != here:
                        raise TrustError(
                            f"tensor {owners[id(v)]} is tied to {here} (one tensor, two layers): the "
                            "per-layer bounds would count it twice; untie the weights to measure them"
                        )
                    owners[id(v)] = here


def _param_owners(model: nnx.Module) -> dict[int, tuple[nnx.Module, str]]:
    """The modules that own a parameter directly, by id, with their paths."""
    return {
        id(module): (module, ".".join(map(str, path)) or type(module).__name__)
        for path, module in nnx.iter_graph(model)
        if isinstance(module, nnx.Module) and any(isinstance(v, nnx.Param) for v in vars(module).values())
    }


def from_nnx(model: nnx.Module, mode: str = "eval", spec: Mapping[str, Leaf] | None = None) -> Model:
    """A Flax NNX model as a :class:`~trust.core.adapters.Model`. ``mode``: normalisation with running (``"eval"``)
    or batch (``"batch"``) statistics; ``spec``: roles of leaves the adapter cannot infer (or overrides)."""
    if mode not in MODES:
        raise TrustError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    _tied(model)
    # graph, parameters and the rest (batch statistics, RNG state); flax types the result as a variadic tuple
    graphdef, params, rest = cast(tuple[Any, Any, Any], nnx.split(model, nnx.Param, ...))
    pure = nnx.to_pure_dict(params)
    inferred: dict[str, Leaf | TrustError] = {}
    for path, module in nnx.iter_graph(model):
        if isinstance(module, nnx.Module):
            _roles(module, inferred, "".join(f"{p}." for p in path))

    def apply(p, x):
        state = jax.tree_util.tree_map(lambda v: v, params)  # a fresh copy per trace, filled with p
        nnx.replace_by_pure_dict(state, p)
        net = nnx.merge(graphdef, state, rest, copy=True)
        net.eval() if mode == "eval" else net.train()
        return applied_once(_param_owners(net), lambda: net(x))

    roles = declared(inferred, leaf_names(pure), spec)
    return Model(apply, pure, roles, f"flax.nnx {type(model).__name__} ({mode} mode)")
