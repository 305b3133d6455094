"""Flax Linen models (``pip install 'deep-relative-trust[flax]'``): variables with ``params`` (measured) and any
other collection (``batch_stats``: held fixed). A leaf's role comes from the type of the module that created it,
seen by running the model once on an example batch under ``flax.linen.intercept_methods`` — so a module applied
twice (one tensor, two layers) and ``Embed.attend`` (the embedding reused as the output layer) are seen and refused.

The normalisation mode is the user's own call argument (e.g. ``train=False``): if the model so called updates
``batch_stats`` it runs with batch statistics and the update is dropped, else with the stored statistics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import flax.linen as nn
from flax import errors as flax_errors

from trust.base import spec as specs
from trust.base.errors import TrustError
from trust.base.spec import Leaf
from trust.base.tree import leaf_names
from trust.core.adapters import Model, declared, refuse

SPATIAL = {1: "W", 2: "HW", 3: "DHW"}
NORMS = (nn.BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.InstanceNorm)
OPAQUE = (nn.ConvTranspose, nn.SpectralNorm, nn.WeightNorm, nn.Einsum)


def _role(module: nn.Module, attr: str, name: str, calls: Counter) -> Leaf | TrustError:
    """The role of the parameter ``attr`` of ``module`` by the module's type and how it was called."""
    kind, path = type(module).__name__, module.path
    if calls[(path, "__call__")] > 1:
        return refuse(name, kind, f"the module is applied {calls[(path, '__call__')]} times in one forward pass "
                                  "(one tensor, several layers)")  # fmt: skip
    if isinstance(module, OPAQUE):
        return refuse(name, kind, "a transposed convolution, a reparametrised weight or an einsum is not one "
                                  "linear map trust can read from its type")  # fmt: skip
    if attr == "bias" and isinstance(module, (nn.Dense, nn.DenseGeneral, nn.Conv)):
        return specs.bias()
    if isinstance(module, nn.Dense) and attr == "kernel":
        return specs.dense("in_out")
    if isinstance(module, nn.DenseGeneral) and attr == "kernel":
        if module.batch_dims:
            return refuse(name, kind, "a kernel with batch dimensions is one matrix per batch index")
        n_in = len(module.axis) if isinstance(module.axis, tuple) else 1
        n_out = len(module.features) if isinstance(module.features, tuple) else 1
        return specs.linear(range(n_in), range(n_in, n_in + n_out))
    if isinstance(module, nn.Conv) and attr == "kernel":
        if module.feature_group_count != 1:
            return refuse(name, kind, f"a grouped convolution ({module.feature_group_count} groups) is not one "
                                      "patch matrix")  # fmt: skip
        size = module.kernel_size
        return specs.conv(SPATIAL[len(size) if isinstance(size, tuple | list) else 1] + "IO")
    if isinstance(module, nn.Embed) and attr == "embedding":
        if calls[(path, "attend")]:
            return refuse(name, kind, "Embed.attend reuses the embedding as the output layer (a tied weight: one "
                                      "tensor, two layers)")  # fmt: skip
        return specs.embedding()
    if isinstance(module, NORMS) and attr in ("scale", "bias"):
        return specs.gain() if attr == "scale" else specs.shift()
    return refuse(name, kind, f"trust does not know what {kind}.{attr} is")


def from_linen(module: nn.Module, variables, x, spec: Mapping[str, Leaf] | None = None, **call) -> Model:
    """A Linen module and its ``variables`` as a :class:`~trust.core.adapters.Model`; ``x``: an example batch the
    module is run on once to see its layers; ``call``: the module's own keyword arguments (e.g. ``train=False``);
    ``spec``: roles of leaves the adapter cannot infer (or overrides)."""
    if "params" not in variables:
        raise TrustError(f"the variables have no 'params' collection (they have {sorted(variables)})")
    modules: dict[tuple, nn.Module] = {}
    calls: Counter = Counter()

    def see(next_fun, args, kwargs, context):
        modules[context.module.path] = context.module
        calls[(context.module.path, context.method_name)] += 1
        return next_fun(*args, **kwargs)

    mutable: list[str] | bool = False
    with nn.intercept_methods(see):
        try:
            module.apply(variables, x, **call)
        except flax_errors.ModifyScopeVariableError:  # it updates batch statistics: run it with them mutable
            mutable = ["batch_stats"]
            modules.clear()
            calls.clear()
            module.apply(variables, x, mutable=mutable, **call)
    params = variables["params"]
    fixed = {k: v for k, v in variables.items() if k != "params"}
    names = leaf_names(params)
    inferred: dict[str, Leaf | TrustError] = {}
    for path, m in modules.items():
        prefix = "".join(f"{p}." for p in path)
        for attr in m.variables.get("params", {}):
            if not isinstance(m.variables["params"][attr], Mapping):
                inferred[f"{prefix}{attr}"] = _role(m, attr, f"{prefix}{attr}", calls)

    def apply(p, x):
        out = module.apply({"params": p, **fixed}, x, mutable=mutable, **call)
        return out[0] if mutable else out

    roles = declared(inferred, names, spec)
    mode = "batch statistics" if mutable else "stored statistics"
    return Model(apply, params, roles, f"flax.linen {type(module).__name__} ({mode}, called with {call})")
