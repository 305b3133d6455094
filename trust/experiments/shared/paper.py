"""Our Figure 1 beside the authors' own runs at matched steps (docs/theory.md §5.1): layer 1's relative gradient
change at the probe η, at initialisation, its peak over the checkpoints and at their last checkpoint (step 2,160),
ours over seeds against their runs (:mod:`trust.experiments.shared.authors`). A comparison is made only for a study
run on their schedule (``--matched``): the same optimiser steps, rate decay and checkpoint steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trust.base.schema import Spread, Verdict, value
from trust.experiments.shared import authors, rules

PROBES = (0.01, 0.05, 0.099)  # the η compared (their slice steps by 0.001 to 0.099)
STATISTICS = ("initialisation", "peak", "last")  # step 0, the largest over the checkpoints, step 2,160
LAST_STEP = 2160  # their last checkpoint (they kept none at the end of training)


@dataclass(frozen=True, eq=False)
class AuthorsComparison:
    """One net (Fromage) beside the authors' runs of it: per statistic and probe η, ours over seeds and theirs over
    their distinct runs, and how far ours is from theirs (rule "within_runs": 1 where our seeds' range meets theirs,
    else our median over the nearest of theirs)."""

    depth: int
    residual: bool
    runs: int  # their distinct runs of this net
    ours: Spread = value(axes=("statistic", "probe"))
    theirs_low: np.ndarray = value(axes=("statistic", "probe"))
    theirs_high: np.ndarray = value(axes=("statistic", "probe"))
    factor: np.ndarray = value("a seed without a finite value", axes=("statistic", "probe"))
    verdict: Verdict = value()
    # their curves, to draw beside ours: layer 1's change per run, checkpoint (their steps) and η of the table
    their_eta: tuple[float, ...] = value(axes=("their_eta",))
    their_steps: tuple[int, ...] = value(axes=("their_checkpoint",))
    their_change: np.ndarray = value(axes=("run", "their_checkpoint", "their_eta"))

    def coordinates(self) -> dict[str, list]:
        return {"statistic": list(STATISTICS), "probe": list(PROBES), "their_eta": list(self.their_eta),
                "their_checkpoint": list(self.their_steps)}  # fmt: skip


def _statistics(curves: np.ndarray, steps) -> np.ndarray:
    """(statistic, probe) from one run's (checkpoint, probe) values at checkpoint ``steps``."""
    steps = list(steps)
    return np.stack([curves[steps.index(0)], np.nanmax(curves, axis=0), curves[steps.index(LAST_STEP)]])


def comparison(depth: int, residual: bool, cells) -> AuthorsComparison | None:
    """Our measured Fromage ``cells`` (one per seed, on the authors' schedule) beside their runs of the net; None
    where they did not run it or no seed was measured."""
    theirs = authors.figure1_runs(depth, residual)
    measured = [r for r in cells if r.measured]
    if not theirs or not measured:
        return None
    eta = authors.table()["figure1"]["eta"]
    columns = [eta.index(p) for p in PROBES]
    their_stats = np.stack([_statistics(np.asarray(r["layer1_change"])[:, columns], r["steps"]) for r in theirs])
    ours = np.stack([_statistics(r.gradient[:, [r.at_eta(p) for p in PROBES], 0], r.step) for r in measured])
    spread = rules.spread(ours)
    low, high = their_stats.min(axis=0), their_stats.max(axis=0)
    factor = rules.within_runs(spread, low, high)
    curves = np.stack([np.asarray(r["layer1_change"], dtype=float) for r in theirs])
    return AuthorsComparison(depth, residual, len(theirs), spread, low, high, factor,
                             rules.within_runs_verdict(factor, len(measured)), tuple(eta), tuple(theirs[0]["steps"]),
                             curves)  # fmt: skip
