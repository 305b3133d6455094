"""How an experiment runs: the registry record (:class:`Experiment`), a study made of stored, reusable cells
(:class:`Study`, :func:`run_study`, shared across the processes of a job) and :func:`run_or_reuse`, which
computes a run or reads it back from its run directory (:mod:`trust.base.store`)."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from trust.base import parallel
from trust.base.errors import TrustError
from trust.base.schema import Config, Result, same
from trust.base.store import finished_run, locked, write_run


class Study(NamedTuple):
    """An experiment made of many cells (configuration × seed), each a run of the ``cell`` experiment that is
    stored and reused on its own (:func:`trust.base.runner.run_or_reuse`), so a long study that stops loses at most
    the cell in progress. ``cells(config, done)`` names the cells needed given the finished ones ``done``
    (``{name: result}``) — called again until it asks for nothing new, so later cells may depend on earlier
    ones (a learning rate chosen by a sweep) — and ``combine(config, done)`` makes the study's result."""

    cell: Experiment
    cells: Callable
    combine: Callable


def run_study(
    study: Study, config: Config, run_cell: Callable | None = None, read_cell: Callable | None = None
) -> Result:
    """Run every cell ``study.cells`` asks for (``run_cell(name, cell_config)``; default: compute it), then
    combine them. In a job of many processes (:mod:`trust.base.parallel`) each computes its share of every round and
    reads the others' cells with ``read_cell(name, cell_config)`` after a barrier."""
    run_cell = run_cell or (lambda name, cell_config: study.cell.run(cell_config))
    done: dict[str, Result] = {}
    rounds = 0
    while todo := {n: c for n, c in study.cells(config, done).items() if n not in done}:
        mine = parallel.share(list(todo))
        finished = {}
        for name in tqdm(mine, desc=type(config).__name__, unit="cell", leave=False, delay=3):
            finished[name] = run_cell(name, todo[name])
        if parallel.count() > 1:
            assert read_cell is not None, "a study across processes reads the others' cells from the run directory"
            rounds += 1
            parallel.barrier(f"{type(config).__name__} round {rounds}")
            finished.update({n: read_cell(n, todo[n]) for n in todo if n not in finished})
        done.update({n: finished[n] for n in todo})  # in the study's order, however the cells were shared
    return study.combine(config, done)


class Experiment(NamedTuple):
    """One question, compute side: its ``config`` and ``result`` types, ``run(config) -> result`` and, for
    ``paper_figs.py``, the named runs it contributes (``paper_configs(quick, seed)``). A ``study`` is run cell by
    cell (:class:`Study`). Its figures, report rows and CLI summary are views of the result (:mod:`trust.views`)."""

    config: type[Config]
    result: type[Result]
    run: Callable
    paper_configs: Callable | None = None
    help: str = ""  # one line for ``trust --help``
    study: Study | None = None
    # ``long_configs(seed)``: named runs beyond the full run's budget (``paper_figs.py --long NAME``); the full run
    # draws them from their stored run directories when they are there
    long_configs: Callable | None = None


def finished(run_dir, config: Config):
    """:func:`finished_run` for a :class:`Config`: the stored config is read into the current layout
    (:meth:`Config.upgrade`, defaults for fields added since) before it is compared."""
    return finished_run(run_dir, config.to_dict(), lambda stored: canonical(type(config), stored))


def canonical(cls: type[Config], stored: dict) -> dict:
    """``stored`` as a config of ``cls`` would write it today; keys ``cls`` no longer has are kept (they differ)."""
    upgraded = cls.upgrade(stored)
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        current = cls.from_dict(upgraded).to_dict()
    except TrustError:  # not a valid config today: compared as stored, it differs
        return upgraded
    return {**current, **{k: v for k, v in upgraded.items() if k not in names}}


def run_or_reuse(run_dir, config: Config, experiment: Experiment) -> tuple[Result, bool]:
    """The result of ``experiment`` for ``config``: read back from ``run_dir`` if it already holds a finished run
    of exactly this config, else computed (and, with a ``run_dir``, written there and read back: a first run
    returns what a rerun reads, bit for bit, so its figures and rows are a rerun's). Also says whether it was
    reused. A directory holding another config is refused. A study stores each cell under ``run_dir/cells/``
    as it finishes, and a rerun reuses the finished cells and combines them again (cheap), so a stored study
    result never outlives a change in which cells the study asks for; it is rewritten only if the combination
    differs from it. In a job of many processes (:mod:`trust.base.parallel`)
    they share a study's cells; anything else process 0 computes and the others read."""
    if run_dir is None:
        if experiment.study is not None and parallel.count() > 1:
            raise TrustError("a study across processes shares its cells through the run directory: give --out")
        return experiment.run(config), False
    if parallel.count() > 1:
        return _run_or_reuse_together(Path(run_dir), config, experiment)
    return _run_or_reuse_alone(Path(run_dir), config, experiment)


def _run_or_reuse_alone(run_dir: Path, config: Config, experiment: Experiment) -> tuple[Result, bool]:
    with locked(run_dir):
        stored = _reuse(run_dir, config, experiment)
        if stored is not None and experiment.study is None:
            return stored, True
        result = _compute(run_dir, config, experiment)
        if stored is not None and same(stored, result):
            return stored, True
        write_run(run_dir, config.to_dict(), result.to_json(), result.arrays())
    return _read_finished(run_dir, config, experiment), False


def _compute(run_dir: Path, config: Config, experiment: Experiment) -> Result:
    if experiment.study is None:
        return experiment.run(config)
    study = experiment.study

    def run_cell(name: str, cell: Config) -> Result:
        set_aside_stale(run_dir / "cells" / name, cell)
        return _run_or_reuse_alone(run_dir / "cells" / name, cell, study.cell)[0]

    return run_study(
        study, config, run_cell, lambda name, cell: _read_finished(run_dir / "cells" / name, cell, study.cell)
    )


def set_aside_stale(cell_dir: Path, config: Config) -> None:
    """A study's cell whose stored config is no longer the one the study asks for (the code measures more, or
    otherwise) is moved to ``cells.old/<name>`` beside the study's cells — replacing an older one — and
    recomputed: the study owns its cells, and nothing is deleted unseen."""
    try:
        finished(cell_dir, config)
    except TrustError:
        old = cell_dir.parent.with_name("cells.old") / cell_dir.name
        if old.exists():
            shutil.rmtree(old)
        old.parent.mkdir(parents=True, exist_ok=True)
        cell_dir.rename(old)
        print(f"trust: cell {cell_dir.name}: its config changed; moved to {old}, recomputing", file=sys.stderr)


def _reuse(run_dir: Path, config: Config, experiment: Experiment) -> Result | None:
    """The result of the finished run of ``config`` stored in ``run_dir``, or ``None``."""
    stored = finished(run_dir, config)
    return None if stored is None else experiment.result.from_json(stored[1], stored[2])


def _read_finished(run_dir: Path, config: Config, experiment: Experiment) -> Result:
    result = _reuse(run_dir, config, experiment)
    if result is None:
        raise TrustError(f"{run_dir} is not finished: another process of the job failed before writing it")
    return result


def _run_or_reuse_together(run_dir: Path, config: Config, experiment: Experiment) -> tuple[Result, bool]:
    """Many processes, one run directory: every process checks for a finished run before any writes; a study's
    cells are split among them; process 0 writes the run while the others wait, then they read it."""
    stored = _reuse(run_dir, config, experiment)
    parallel.barrier(f"checked {run_dir}")
    if stored is not None and experiment.study is None:
        return stored, True
    if experiment.study is not None or parallel.is_lead():
        result = _compute(run_dir, config, experiment)
    if stored is not None and same(stored, result):  # a study every process combined again
        return stored, True
    if parallel.is_lead():
        with locked(run_dir):
            write_run(run_dir, config.to_dict(), result.to_json(), result.arrays())
    parallel.barrier(f"written {run_dir}")
    return _read_finished(run_dir, config, experiment), False
