"""The registry of experiments: subcommand name → :class:`trust.base.runner.Experiment`.

Each module owns one question end to end — a validated ``Config``, a pure ``run(config) -> Result`` and a
``Result`` that knows its summary, figure and report rows. The CLI, ``paper_figs.py`` and the report iterate
over :data:`REGISTRY`; adding an experiment is its module and one line here."""

from trust.experiments import (
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
from trust.experiments.shared.runner import Experiment

REGISTRY: dict[str, Experiment] = {
    "breakdown": breakdown.EXPERIMENT,
    "train": training.EXPERIMENT,
    "theorem1": theorem1.EXPERIMENT,
    "constants": constants.EXPERIMENT,
    "descent": descent.EXPERIMENT,
    "cosgamma": cosgamma.EXPERIMENT,
    "study breakdown": study_breakdown.EXPERIMENT,
    "study depth": study_depth.EXPERIMENT,
    "assumptions": assumptions.EXPERIMENT,
    "reviewers": reviewers.EXPERIMENT,
    "geometry": geometry.EXPERIMENT,
}
