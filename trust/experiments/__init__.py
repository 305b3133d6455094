"""The registry of experiments: subcommand name → :class:`trust.base.runner.Experiment`.

Each module owns one question end to end — a validated ``Config``, a pure ``run(config) -> Result`` and a
``Result`` that knows its summary, figure and report rows. The CLI, ``paper_figs.py`` and the report iterate
over :data:`REGISTRY`; adding an experiment is its module and one line here."""

from dataclasses import fields

from trust.base import store
from trust.base.errors import TrustError
from trust.base.schema import Result, type_name
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


def experiments() -> list[Experiment]:
    """Every experiment a run directory can hold: the registered ones and the cells of their studies."""
    studies = [e.study.cell for e in REGISTRY.values() if e.study is not None]
    return list(REGISTRY.values()) + list({id(c): c for c in studies}.values())


def load(run_dir) -> Result:
    """The typed result stored in ``run_dir`` (its digest checked), whichever experiment or study cell wrote it.
    A run of layout 2 names its result type; one of layout 1 (trust ≤ 0.3) is recognised by its config's fields."""
    config, results, arrays = store.read_run(run_dir)
    known = experiments()
    if "result" in results:
        match = [e for e in known if type_name(e.result) == results["result"]]
    else:  # the configs whose fields hold every stored key (fields added since are missing), the closest first
        keys = {e_: set(e_.config.upgrade(config)) for e_ in known}
        fits = [e for e in known if keys[e] <= {f.name for f in fields(e.config)}]
        match = [e for e in fits if len(keys[e]) == max(len(keys[f]) for f in fits)]
        stored = set(results) - {"undefined"}  # two experiments of one config type differ in their results
        match = [e for e in match if stored <= {f.name for f in fields(e.result)}] if len(match) > 1 else match
    if len(match) != 1:
        named = results.get("result", "a config of trust 0.3")
        raise TrustError(f"{run_dir} holds no result of a known experiment ({named}); rerun it with this trust")
    return match[0].result.from_json(results, arrays)
