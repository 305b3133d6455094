"""What ``trust reviewers`` answers, as records (docs/theory.md §6): bands per epoch, final values over seeds,
each optimiser's learning-rate grid, the lines its figure draws and one verdict per decided claim — computed by
``trust.experiments.reviewers`` from the runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trust.base.schema import Spread, Verdict, value
from trust.experiments.shared.curves import DIVERGED


@dataclass(frozen=True, eq=False)
class Band:
    """A quantity per epoch over a set of runs (diverged runs left out): its median and range over seeds."""

    epoch: np.ndarray = value(axes=("epoch",))
    spread: Spread = value(axes=("epoch",))

    def coordinates(self) -> dict[str, list]:
        return {"epoch": list(self.epoch)}


@dataclass(frozen=True, eq=False)
class Series:
    """A line a panel draws: ``y`` against ``x``, the values of ``axis`` (bits, a base, a depth, a seed, an epoch)."""

    axis: str
    x: np.ndarray = value(axes=("x",))
    y: np.ndarray = value(f"{DIVERGED} (a median over no finite run)", axes=("x",))

    def coordinates(self) -> dict[str, list]:
        return {"x": list(self.x)}


@dataclass(frozen=True, eq=False)
class LrGrid:
    """One optimiser's learning-rate grid: per rate the median final test error over the best such median (inf
    where the median run diverged), the width in decades of the rates within RULES' factor of the best, the best."""

    lrs: np.ndarray = value(axes=("lr",))
    default: float = value()  # the optimiser's default rate (the grid spans default/100 … default·10)
    decades: float = value()
    relative: np.ndarray = value(DIVERGED, axes=("lr",))
    best_error: float = value(DIVERGED)

    def coordinates(self) -> dict[str, list]:
        return {"lr": list(self.lrs)}


@dataclass(frozen=True, eq=False)
class Answers:
    """What the reviewers' figure and rows show, by key ("<question> <selection> <quantity>"): bands per epoch,
    final values over seeds, each optimiser's learning-rate grid, LARS's orthogonal-step growth per rate, the
    series drawn against an axis (medians per bits, base or depth; the bias box plot's per-seed accuracies), and
    one verdict per decided claim (rules)."""

    bands: dict[str, Band]
    finals: dict[str, Spread]
    lr_grids: dict[str, LrGrid]
    verdicts: dict[str, Verdict]
    growth: dict[str, Series]  # by LARS's rate: the orthogonal-step prediction per epoch (NaN: no run at the rate)
    series: dict[str, Series]
