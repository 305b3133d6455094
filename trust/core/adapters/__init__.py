"""A user's network as trust measures it (README: Your own model): ``apply(params, x)``, its parameters as a pytree
of arrays, and the spec of every leaf (:mod:`trust.base.spec`).

One adapter per framework, each an optional extra (the core stays JAX and optax): Flax NNX (:mod:`.nnx`), Flax
Linen (:mod:`.linen`), Equinox (:mod:`.equinox`) and PyTorch through a safetensors file (:mod:`.torch_file`). An
adapter infers a leaf's role only from the layer type that owns it — a ``Linear``'s kernel, a ``Conv``'s kernel
in the framework's layout, a normalisation's scale — and refuses, by name, a leaf of any other layer unless the
user declares it (``spec={name: trust.spec.…}``); grouped and transposed convolutions, reparametrised weights and
tied weights are refused outright."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trust.base import spec as specs
from trust.base.errors import TrustError
from trust.base.spec import Leaf


@dataclass(frozen=True)
class Model:
    """A network ready for :func:`trust.relative_distances` and the rest: ``apply(params, x) → outputs`` over the
    batch, ``params`` a pytree of arrays (a nested dict; Equinox's partitioned model), ``spec`` every leaf's role
    by name, ``source`` what it was built from (recorded in a run directory)."""

    apply: Callable
    params: Any
    spec: dict[str, Leaf]
    source: str

    def record(self) -> dict:
        """The spec and the source, as a run directory's config records them."""
        return {"source": self.source, "spec": specs.record(self.params, self.spec)}


def file_digest(path) -> str:
    """The SHA-256 of a model file, recorded with the model (its source, a run's config)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def refuse(name: str, owner: str, why: str) -> TrustError:
    """The one-line refusal of a leaf an adapter cannot read with certainty."""
    return TrustError(f"tensor {name} of {owner}: {why}; declare it with spec={{{name!r}: trust.spec.…}} if you "
                      "know what it is")  # fmt: skip


def declared(inferred: Mapping[str, Leaf | TrustError], names: list[str], spec: Mapping[str, Leaf] | None) -> dict:
    """The inferred roles, overridden and completed by the user's declared ``spec``; raises the refusal of the
    first leaf still without a role (in flatten order)."""
    spec = dict(spec or {})
    unknown = sorted(set(spec) - set(names))
    if unknown:
        raise TrustError(f"the spec names {unknown[0]!r}, which is not a parameter of the model")
    out = {}
    for name in names:
        role = spec.get(name, inferred.get(name))
        if role is None:
            raise TrustError(f"tensor {name}: no layer of the model owns it; declare it with spec={{{name!r}: …}}")
        if isinstance(role, TrustError):
            raise role
        out[name] = role
    return out


def applied_once(modules: Mapping[int, tuple[Any, str]], forward: Callable[[], Any]) -> Any:
    """``forward()``, counting how often each of ``modules`` (``id → (module, its name)``: those that own
    parameters) is called, and refusing one called more than once: one tensor, several layers, which the per-layer
    bounds would count once. The count runs while JAX traces ``forward``, so a compiled function pays nothing; a
    ``__call__`` that reaches its parent's (``super().__call__``) is one call."""
    counts: Counter = Counter()
    active: set[int] = set()
    originals: dict[type, Any] = {}
    for module, _ in modules.values():
        owner = next(c for c in type(module).__mro__ if "__call__" in vars(c))
        originals.setdefault(owner, vars(owner)["__call__"])

    def counted(original):
        def call(self, *args, **kwargs):
            bound = original.__get__(self, type(self))
            if id(self) in active:  # a parent's __call__ reached through super(): the same application
                return bound(*args, **kwargs)
            active.add(id(self))
            counts[id(self)] += 1
            try:
                return bound(*args, **kwargs)
            finally:
                active.discard(id(self))

        return call

    for owner, original in originals.items():
        type.__setattr__(owner, "__call__", counted(original))
    try:
        out = forward()
    finally:
        for owner, original in originals.items():
            type.__setattr__(owner, "__call__", original)
    for key, (_, name) in modules.items():
        if counts[key] > 1:
            raise TrustError(f"module {name} is applied {counts[key]} times in one forward pass (one tensor, "
                             "several layers): the per-layer bounds would count it once; untie the weights to "
                             "measure them")  # fmt: skip
    return out
