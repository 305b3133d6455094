"""Deprecated module paths of trust 0.3 (``trust.measure``, ``trust.store``, …), kept for one release: importing
one warns (DeprecationWarning) and gives the module at its new place in the package's floors (README, Layout)."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    **{f"trust.{name}": f"trust.base.{name}" for name in ("errors", "tree", "linalg", "schema", "parallel", "store")},
    **{
        f"trust.{name}": f"trust.core.{name}"
        for name in ("nets", "data", "losses", "perturb", "measure", "bounds", "estimate", "optim", "train")
    },
    **{f"trust.{name}": f"trust.views.{name}" for name in ("plots", "report")},
    "trust.cli": "trust.front.cli",
    "trust.experiments.cell": "trust.experiments.shared.cell",
    "trust.experiments.points": "trust.experiments.shared.points",
}


def moved(old: str):
    """The module now at ``MOVED[old]``, with a DeprecationWarning naming the new path."""
    new = MOVED[old]
    warnings.warn(f"{old} moved to {new} in trust 0.4; the old path goes in 0.5", DeprecationWarning, stacklevel=3)
    return importlib.import_module(new)


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import trust.measure`` finds ``trust.core.measure`` (the same module object)."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        return moved(spec.name)

    def exec_module(self, module):
        """The module was executed at its new place."""


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
