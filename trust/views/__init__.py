"""The views: every figure, report row and CLI summary is drawn from a stored Result, never from a computation.

:data:`VIEWS` has one module per registered experiment (the names of :data:`trust.experiments.REGISTRY`), each
with ``summary(result) -> str`` (the CLI's words), ``figures(results) -> {stem: figure}`` and ``rows(results) ->
[Row]`` over a set of named runs: the runs ``paper_configs`` names for ``paper_figs.py``, or ``{stem: result}``
for one run of the command line. ``plots`` and ``report`` are the shared drawing and table helpers."""

from types import ModuleType

from trust.views import (
    assumptions,
    breakdown,
    constants,
    cosgamma,
    descent,
    geometry,
    reviewers,
    study_breakdown,
    study_depth,
    theorem1,
    training,
)

VIEWS: dict[str, ModuleType] = {
    "breakdown": breakdown,
    "train": training,
    "theorem1": theorem1,
    "constants": constants,
    "descent": descent,
    "cosgamma": cosgamma,
    "study breakdown": study_breakdown,
    "study depth": study_depth,
    "assumptions": assumptions,
    "reviewers": reviewers,
    "geometry": geometry,
}
