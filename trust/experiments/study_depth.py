"""``trust study depth``: the paper's Figure 3 (left) scaled to this machine — trainability against depth
(docs/theory.md §5.2).

For each optimiser, depth and seed, relu MLPs are trained at each learning rate of the optimiser's grid (the
paper's three for SGD, Adam and Fromage; the same decades for Madam), learning rate ×0.95 per epoch, and the best
full-batch training accuracy over the grid and the epochs is kept. The depth at which an optimiser *stops
training* is the first depth of the grid where that accuracy falls below a threshold (default 0.5, five times
chance on ten classes), per seed. The paper's claim: SGD stops past depth ~10, Adam past ~21, and Fromage
trains deeper still.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from trust.base.errors import TrustError
from trust.base.schema import Config, Result, Spread, Verdict, param, value
from trust.core import data
from trust.experiments.shared import cell, rules
from trust.experiments.shared.cell import CellConfig
from trust.experiments.shared.runner import Experiment, Study, run_study

# Learning-rate grids: the paper's for SGD (with and without momentum), Adam and Fromage (Figure 3); Madam takes
# the three decades around its default 0.01.
LR_GRIDS: dict[str, tuple[float, ...]] = {
    "sgd": (1.0, 0.1, 0.01),
    "sgd_momentum": (1.0, 0.1, 0.01),
    "adam": (0.01, 0.001, 0.0001),
    "fromage": (0.1, 0.01, 0.001),
    "madam": (0.1, 0.01, 0.001),
    "orthogonal_sgd": (0.5, 0.05, 0.005),  # the decade around its default 0.05 (an operator-norm step per layer)
}
# The paper's claim: the depth past which each optimiser stops training (Fromage: beyond the depths it tried).
PAPER_STOP = {"sgd": "past ~10", "sgd_momentum": "past ~10", "adam": "past ~21", "fromage": "trains deeper than both"}


@dataclass(frozen=True)
class StudyDepthConfig(Config):
    """The grid of the trainability study; zeros and empty tuples take the full or ``--quick`` defaults."""

    quick: bool = param(False, "the laptop-sized study: width 32, depths 2 8 32, 3 epochs")
    dataset: str = param("mnist5k", "data set", choices=data.names(data.MNIST_SIZED))
    data_dir: str = param("", "directory of the MNIST IDX files (--dataset mnist)")
    width: int = param(0, "hidden width; 0: 128 (32 with --quick)", minimum=0)
    depths: tuple[int, ...] = param(
        (), "depths; none given: 2 4 8 16 24 32 (2 8 32 with --quick)", minimum=1, increasing=True
    )
    optimizers: tuple[str, ...] = param(
        tuple(LR_GRIDS), "optimisers (each with its learning-rate grid)", choices=LR_GRIDS
    )
    seeds: int = param(3, "seeds per configuration", minimum=1)
    epochs: int = param(0, "training epochs; 0: 10 (3 with --quick)", minimum=0)
    batch_size: int = param(250, "minibatch size", minimum=1)
    lr_decay: float = param(0.95, "learning-rate factor per epoch (the paper's Figure 3)", maximum=1)
    threshold: float = param(0.5, "an optimiser trains a net if its best training accuracy reaches this", minimum=0)
    seed: int = param(0, "first seed")

    def validate(self):
        if not self.optimizers:
            raise TrustError("give at least one optimizer")
        if not self.lr_decay > 0 or not self.threshold < 1:
            raise TrustError("lr_decay must be > 0 and threshold < 1")

    def resolved(self) -> StudyDepthConfig:
        return replace(
            self,
            width=self.width or (32 if self.quick else 128),
            depths=self.depths or ((2, 8, 32) if self.quick else (2, 4, 8, 16, 24, 32)),
            epochs=self.epochs or (3 if self.quick else 10),
        )


def _name(optimizer: str, lr: float, depth: int, seed: int) -> str:
    return f"{optimizer}_lr{lr:g}_L{depth}_s{seed}"


def cells(config: StudyDepthConfig, done: dict) -> dict[str, CellConfig]:
    c = config.resolved()
    return {
        _name(optimizer, lr, depth, c.seed + s): cell.for_study(
            c, slices=False, optimizer=optimizer, lr=lr, depth=depth, seed=c.seed + s
        )
        for optimizer in c.optimizers
        for depth in c.depths
        for s in range(c.seeds)
        for lr in LR_GRIDS[optimizer]
    }


@dataclass(frozen=True)
class DepthPoint:
    """One optimiser, depth and seed: the best training accuracy at each learning rate (0 where it diverged)."""

    optimizer: str
    depth: int
    seed: int
    lrs: tuple[float, ...] = value(axes=("lr",))
    best_train_acc: tuple[float, ...] = value(axes=("lr",))

    def coordinates(self) -> dict[str, list]:
        return {"lr": list(self.lrs)}

    @property
    def trainability(self) -> float:
        return max(self.best_train_acc)

    @property
    def best_lr(self) -> float:
        return self.lrs[int(np.argmax(self.best_train_acc))]


@dataclass(frozen=True, eq=False)
class OptimizerDepths:
    """One optimiser across the depth grid: its trainability over seeds, where each seed stops and the verdict."""

    optimizer: str
    trainability: Spread = value(axes=("depth",))  # best training accuracy over the rate grid, over seeds
    stops: tuple[int | None, ...] = value(axes=("seed",))  # the first depth below the threshold (None: none)
    stop: Verdict = value()  # rules.stop_depth


@dataclass(frozen=True, eq=False)
class StudyDepthResult(Result):
    config: StudyDepthConfig  # resolved
    points: tuple[DepthPoint, ...]
    optimizers: tuple[OptimizerDepths, ...] | None = value(derived=True)

    def derive(self) -> StudyDepthResult:
        summaries = tuple(
            OptimizerDepths(
                o,
                rules.spread(np.array(self.trainability(o)).T),
                tuple(self.stop_depths(o)),
                rules.stop_depth(self.stop_depths(o), self.config.threshold),
            )
            for o in self.config.optimizers
        )
        return replace(self, optimizers=summaries)

    def coordinates(self) -> dict[str, list]:
        c = self.config
        return {"depth": list(c.depths), "seed": [c.seed + s for s in range(c.seeds)]}

    def of(self, optimizer: str) -> OptimizerDepths:
        assert self.optimizers is not None, "derive() first"
        return next(s for s in self.optimizers if s.optimizer == optimizer)

    def trainability(self, optimizer: str) -> list[np.ndarray]:
        """Per depth of the grid, the seeds' best training accuracies."""
        return [
            np.array([p.trainability for p in self.points if (p.optimizer, p.depth) == (optimizer, d)])
            for d in self.config.depths
        ]

    def stop_depths(self, optimizer: str) -> list[int | None]:
        """Per seed, the first depth whose best training accuracy is below the threshold (None: it trains all)."""
        c = self.config
        out = []
        for s in range(c.seeds):
            accs = {p.depth: p.trainability for p in self.points if (p.optimizer, p.seed) == (optimizer, c.seed + s)}
            out.append(next((d for d in c.depths if accs[d] < c.threshold), None))
        return out


def combine(config: StudyDepthConfig, done: dict) -> StudyDepthResult:
    c = config.resolved()
    points = []
    for optimizer in c.optimizers:
        for depth in c.depths:
            for s in range(c.seeds):
                lrs = LR_GRIDS[optimizer]
                runs = [done[_name(optimizer, lr, depth, c.seed + s)] for lr in lrs]
                accs = tuple(0.0 if r.diverged else r.best_train_acc for r in runs)
                points.append(DepthPoint(optimizer, depth, c.seed + s, lrs, accs))
    return StudyDepthResult(c, tuple(points)).derive()


def run(config: StudyDepthConfig) -> StudyDepthResult:
    result = run_study(STUDY, config)
    assert isinstance(result, StudyDepthResult)
    return result


def paper_configs(quick: bool, seed: int) -> dict[str, StudyDepthConfig]:
    # the quick preview: one seed and SGD, Adam, Fromage only (the CLI's --quick keeps three seeds and all five)
    preview: dict[str, Any] = dict(seeds=1, optimizers=("sgd", "adam", "fromage", "orthogonal_sgd")) if quick else {}
    return {"study_depth": StudyDepthConfig(quick=quick, seed=seed, **preview)}


STUDY = Study(cell.EXPERIMENT, cells, combine)

EXPERIMENT = Experiment(
    StudyDepthConfig,
    StudyDepthResult,
    run,
    paper_configs,
    help="Figure 3: trainability against depth for SGD, SGD+momentum, Adam, Fromage and Madam",
    study=STUDY,
)
