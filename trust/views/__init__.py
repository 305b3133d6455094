"""The views: every figure, report row and CLI summary is drawn from a stored Result, never from a computation.

:data:`VIEWS` has one module per registered experiment (the names of :data:`trust.experiments.REGISTRY`), each
with ``summary(result) -> str`` (the CLI's words), ``figures(results) -> {stem: figure}`` and ``rows(results) ->
[Row]`` over a set of named runs: the runs ``paper_configs`` names for ``paper_figs.py``, or ``{stem: result}``
for one run of the command line. ``plots`` and ``report`` are the shared drawing and table helpers."""

import importlib
from types import ModuleType

from trust.experiments import REGISTRY

# each registered experiment's view module carries the experiment module's name (trust/views/<name>.py)
VIEWS: dict[str, ModuleType] = {
    name: importlib.import_module(f"trust.views.{experiment.run.__module__.rsplit('.', 1)[1]}")
    for name, experiment in REGISTRY.items()
}
