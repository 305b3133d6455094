"""One training run's curves (per epoch: loss, accuracies, gradient norm, weight norms, Madam's clip fraction):
the cell of ``trust reviewers`` (docs/theory.md §6)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from trust.base.errors import Diverged
from trust.base.schema import Result, value
from trust.base.spec import weight_indices
from trust.core import train
from trust.experiments.shared.runner import Experiment

DIVERGED = "training diverged (a non-finite loss) before this epoch"
NOT_MADAM = "NaN: the fraction at Madam's clip exists for madam and madam_lns only"


@dataclass(frozen=True, eq=False)
class RunCurves(Result):
    """One training run's curves (epoch 0: initialisation), cut short if it diverged."""

    config: train.TrainConfig
    steps_per_epoch: int
    diverged_epoch: int  # 0: trained to the end
    epoch: np.ndarray = value(axes=("epoch",))
    train_loss: np.ndarray = value(DIVERGED, axes=("epoch",))
    train_acc: np.ndarray = value(DIVERGED, axes=("epoch",))
    test_acc: np.ndarray = value(DIVERGED, axes=("epoch",))
    clip_fraction: np.ndarray = value(NOT_MADAM + "; " + DIVERGED, axes=("epoch",))
    grad_norm: np.ndarray = value(DIVERGED, axes=("epoch",))  # full-batch training gradient
    norm_ratio: np.ndarray = value(DIVERGED, axes=("epoch", "layer"))  # (epochs, weight matrices) ‖W_l(t)‖/‖W_l(0)‖

    @property
    def final_test_error(self) -> float:
        return float("inf") if self.diverged_epoch else float(1.0 - self.test_acc[-1])

    @property
    def final_train_acc(self) -> float:
        return float("nan") if self.diverged_epoch else float(self.train_acc[-1])

    def coordinates(self) -> dict[str, list]:
        return {"epoch": list(self.epoch)}


def run_curves(config: train.TrainConfig) -> RunCurves:
    """Train ``config`` (recording gradient norms) and keep its curves; a divergence is a result, not an error."""
    recorded = replace(config, gradient_norms=True)
    try:
        trained = train.train(recorded, progress=False)
    except Diverged as err:
        nan = np.full(err.epoch + 1, np.nan)
        return RunCurves(config, 0, err.epoch, np.arange(err.epoch + 1), nan, nan, nan, nan, nan,
                         np.full((err.epoch + 1, 1), np.nan))  # fmt: skip
    c = trained.curves
    norms = np.asarray(c.norms)[:, weight_indices(trained.params)]
    return RunCurves(
        config,
        trained.steps_per_epoch,
        0,
        np.asarray(c.epoch),
        np.asarray(c.train_loss),
        np.asarray(c.train_acc),
        np.asarray(c.test_acc),
        np.asarray(c.clip_fraction),
        np.asarray(c.grad_norm),
        norms / norms[0],
    )


EXPERIMENT = Experiment(train.TrainConfig, RunCurves, run_curves, help="one training run's curves")
