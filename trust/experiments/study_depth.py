"""``trust study depth``: the paper's Figure 3 (left) — trainability against depth (docs/theory.md §5.2).

For each optimiser, depth and seed, relu MLPs are trained at each learning rate of the optimiser's grid (the
paper's three for SGD, Adam and Fromage; the same decades for Madam). Trainability is either the best full-batch
training accuracy over the epochs, or — matched to the authors' runs (``--steps``, ``--decay-every 240``,
``--read-steps``) — at each step count the mean pre-update minibatch accuracy of the 20 minibatches before it;
the best over the rate grid is kept. Where an optimiser *stops training* follows rule "stop"
(:func:`trust.experiments.shared.rules.transition`): the last depth that reaches the threshold (default 0.5, five
times chance) and the first from which none deeper does. At the authors' step counts their own runs
(:mod:`~trust.experiments.shared.authors`) are read by the same rule and set beside ours, with the paper's order
(SGD, then Adam, then Fromage deepest) checked on both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from trust.base.errors import TrustError
from trust.base.schema import Config, Result, Spread, Verdict, param, value
from trust.core import data, nets
from trust.experiments import study_depth_authors as beside
from trust.experiments.shared import authors, cell, rules
from trust.experiments.shared.cell import CellConfig
from trust.experiments.shared.runner import Experiment, Study, run_study
from trust.experiments.study_depth_authors import AuthorsDepths, OrderClaim

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
    train_images: int = param(0, "train on the first n training images only (0: all; the data-size check)", minimum=0)
    activation: str = param("relu", "the MLPs' nonlinearity (gelu, softplus: smooth)", choices=nets.ACTIVATIONS)
    width: int = param(0, "hidden width; 0: 128 (32 with --quick)", minimum=0)
    depths: tuple[int, ...] = param(
        (), "depths; none given: 2 4 8 16 24 32 (2 8 32 with --quick)", minimum=1, increasing=True
    )
    optimizers: tuple[str, ...] = param(
        tuple(LR_GRIDS), "optimisers (each with its learning-rate grid)", choices=LR_GRIDS
    )
    smallest_rates: int = param(
        0, "run only each grid's n smallest learning rates (the width-784 job: the largest never trains there)",
        minimum=0, maximum=3,
    )  # fmt: skip
    seeds: int = param(3, "seeds per configuration", minimum=1)
    epochs: int = param(0, "training epochs; 0: 10 (3 with --quick)", minimum=0)
    steps: int = param(0, "optimiser steps per run (the authors': 2,400 or 24,000); 0: the epochs", minimum=0)
    batch_size: int = param(250, "minibatch size", minimum=1)
    lr_decay: float = param(0.95, "learning-rate factor per epoch or per --decay-every steps (the paper's)", maximum=1)
    decay_every: int = param(0, "decay the rate every this many steps (the authors: 240); 0: every epoch", minimum=0)
    read_steps: tuple[int, ...] = param(
        (),
        "read trainability at these step counts: the mean pre-update minibatch accuracy of the 20 minibatches before "
        "each (the authors' metric); none: the best full-batch training accuracy over the epochs",
        minimum=authors.WINDOW,
        increasing=True,
    )
    threshold: float = param(0.5, "an optimiser trains a net if its best training accuracy reaches this", minimum=0)
    refine: bool = param(
        False,
        "add depths between each seed's last depth that trains and the first from which none does, halving the gap "
        f"until it is at most {2 * rules.STOP_RESOLUTION} layers (rule 'stop' located to ±{rules.STOP_RESOLUTION})",
    )
    seed: int = param(0, "first seed")

    def validate(self):
        if not self.optimizers:
            raise TrustError("give at least one optimizer")
        if not self.lr_decay > 0 or not self.threshold < 1:
            raise TrustError("lr_decay must be > 0 and threshold < 1")
        if any(s % authors.WINDOW for s in self.read_steps):
            raise TrustError(
                f"read_steps must be multiples of {authors.WINDOW} (the metric's window), got {self.read_steps}"
            )
        if self.steps and self.read_steps and max(self.read_steps) > self.steps:
            raise TrustError(f"read_steps {self.read_steps} go past the {self.steps} steps trained")

    def resolved(self) -> StudyDepthConfig:
        return replace(
            self,
            width=self.width or (32 if self.quick else 128),
            depths=self.depths or ((2, 8, 32) if self.quick else (2, 4, 8, 16, 24, 32)),
            epochs=self.epochs or (3 if self.quick else 10),
        )


def rates(c: StudyDepthConfig, optimizer: str) -> tuple[float, ...]:
    """The learning rates ``optimizer`` runs at: its grid, or the grid's ``smallest_rates`` smallest."""
    grid = LR_GRIDS[optimizer]
    return tuple(sorted(grid, reverse=True)[-c.smallest_rates :]) if c.smallest_rates else grid


def _name(optimizer: str, lr: float, depth: int, seed: int) -> str:
    return f"{optimizer}_lr{lr:g}_L{depth}_s{seed}"


def _cell(c: StudyDepthConfig, optimizer: str, lr: float, depth: int, seed: int) -> CellConfig:
    return cell.for_study(c, slices=False, optimizer=optimizer, lr=lr, depth=depth, seed=seed, steps=c.steps,
                          decay_every=c.decay_every)  # fmt: skip


def _point(c: StudyDepthConfig, done: dict, optimizer: str, depth: int, seed: int) -> DepthPoint:
    """A finished configuration's :class:`DepthPoint`: per rate its best training accuracy (0 where it diverged)
    and its accuracy before each read step."""
    lrs = rates(c, optimizer)
    runs = [done[_name(optimizer, lr, depth, seed)] for lr in lrs]
    best = tuple(0.0 if r.diverged else r.best_train_acc for r in runs)
    at_steps = tuple(tuple(r.accuracy_before(step) for r in runs) for step in c.read_steps)
    if any(np.isnan(a) for row in at_steps for a in row):
        raise TrustError(f"read_steps {c.read_steps} go past the steps of {optimizer} L={depth}'s runs")
    return DepthPoint(optimizer, depth, seed, lrs, best, at_steps)


def depth_grid(c: StudyDepthConfig, optimizer: str, done: dict) -> tuple[int, ...]:
    """The optimiser's depths: the config's and, with ``refine``, once every cell of the grid so far is done, the
    midpoint of each seed's bracket (last depth that trains, first from which none does; any read step) wider than
    2·STOP_RESOLUTION, round after round."""
    depths = list(c.depths)
    seeds = range(c.seed, c.seed + c.seeds)
    while c.refine and all(
        _name(optimizer, lr, d, s) in done for d in depths for s in seeds for lr in rates(c, optimizer)
    ):
        added = set()
        for read in range(len(c.read_steps)) if c.read_steps else (-1,):
            for s in seeds:
                t = rules.transition(depths, [_point(c, done, optimizer, d, s).trainability(read) for d in depths],
                                     c.threshold)  # fmt: skip
                if t.last_trains is not None and t.first_never is not None and t.gap > 2 * rules.STOP_RESOLUTION:
                    added.add((t.last_trains + t.first_never) // 2)
        if not added - set(depths):
            break
        depths = sorted(set(depths) | added)
    return tuple(depths)


def cells(config: StudyDepthConfig, done: dict) -> dict[str, CellConfig]:
    c = config.resolved()
    return {
        _name(optimizer, lr, depth, c.seed + s): _cell(c, optimizer, lr, depth, c.seed + s)
        for optimizer in c.optimizers
        for depth in depth_grid(c, optimizer, done)
        for s in range(c.seeds)
        for lr in rates(c, optimizer)
    }


@dataclass(frozen=True)
class DepthPoint:
    """One optimiser, depth and seed: the best training accuracy at each learning rate (0 where it diverged), and at
    each read step the mean pre-update minibatch accuracy before it (``at_steps``, read step × rate)."""

    optimizer: str
    depth: int
    seed: int
    lrs: tuple[float, ...] = value(axes=("lr",))
    best_train_acc: tuple[float, ...] = value(axes=("lr",))
    at_steps: tuple[tuple[float, ...], ...] = value(default=(), axes=("read_step", "lr"))

    def coordinates(self) -> dict[str, list]:
        return {"lr": list(self.lrs)}

    def trainability(self, read: int = -1) -> float:
        """The best over the rates: at read step ``read`` (an index of the config's), or -1: over the epochs."""
        return max(self.best_train_acc) if read < 0 else max(self.at_steps[read])

    @property
    def best_lr(self) -> float:
        return self.lrs[int(np.argmax(self.best_train_acc))]


@dataclass(frozen=True, eq=False)
class OptimizerDepths:
    """One optimiser across the depth grid at one read step (0: the best over the epochs): its trainability over
    seeds, where each seed stops (rule "stop") and the verdict."""

    optimizer: str
    read_step: int
    depths: tuple[int, ...] = value(axes=("depth",))  # the config's, and those refinement added
    trainability: Spread = value(axes=("depth",))  # best training accuracy over the rate grid, over seeds
    transitions: tuple[rules.Transition, ...] = value(axes=("seed",))
    stop: Verdict = value()  # rules.stop_depth

    def coordinates(self) -> dict[str, list]:
        return {"depth": list(self.depths)}


@dataclass(frozen=True, eq=False)
class StudyDepthResult(Result):
    config: StudyDepthConfig  # resolved
    points: tuple[DepthPoint, ...]
    optimizers: tuple[OptimizerDepths, ...] | None = value(derived=True)  # per optimiser and read step
    authors: tuple[AuthorsDepths, ...] | None = value(derived=True)  # at the read steps the authors logged
    orders: tuple[OrderClaim, ...] | None = value(derived=True)

    @property
    def reads(self) -> tuple[int, ...]:
        """The read steps, or (0,): the best over the epochs."""
        return self.config.read_steps or (0,)

    def derive(self) -> StudyDepthResult:
        c = self.config
        summaries = []
        for k, step in enumerate(self.reads):
            for o in c.optimizers:
                depths = self.depths_of(o)
                curves = np.array(self.trainability(o, k if step else -1))  # per depth, per seed
                transitions = tuple(rules.transition(depths, seed, c.threshold) for seed in curves.T)
                summaries.append(OptimizerDepths(o, step, depths, rules.spread(curves.T), transitions,
                                                 rules.stop_depth(transitions, c.threshold)))  # fmt: skip
        done = replace(self, optimizers=tuple(summaries), authors=beside.authors_depths(c))
        return replace(done, orders=beside.order_claims(done))

    def coordinates(self) -> dict[str, list]:
        c = self.config
        return {"depth": list(c.depths), "seed": [c.seed + s for s in range(c.seeds)], "read_step": list(c.read_steps)}

    def of(self, optimizer: str, read_step: int = 0) -> OptimizerDepths:
        assert self.optimizers is not None, "derive() first"
        return next(s for s in self.optimizers if (s.optimizer, s.read_step) == (optimizer, read_step))

    def authors_of(self, optimizer: str, read_step: int) -> AuthorsDepths | None:
        return next((a for a in self.authors or () if (a.optimizer, a.read_step) == (optimizer, read_step)), None)

    def moved_from(self, reference: StudyDepthResult) -> tuple[tuple[str, int, Verdict], ...]:
        """``(optimiser, read step, verdict)`` for each optimiser and read step both studies have: whether this
        study's stop depth moved from ``reference``'s (rule "moved") — the data-size and width checks."""
        return tuple(
            (o, step, rules.moved(self.of(o, step).stop, reference.of(o, step).stop))
            for step in self.reads
            if step in reference.reads
            for o in self.config.optimizers
            if o in reference.config.optimizers
        )

    def depths_of(self, optimizer: str) -> tuple[int, ...]:
        """The optimiser's depths: the config's grid and those its refinement added."""
        return tuple(sorted({p.depth for p in self.points if p.optimizer == optimizer}))

    def trainability(self, optimizer: str, read: int = -1) -> list[np.ndarray]:
        """Per depth of the optimiser's grid, the seeds' trainability (:meth:`DepthPoint.trainability`)."""
        return [
            np.array([p.trainability(read) for p in self.points if (p.optimizer, p.depth) == (optimizer, d)])
            for d in self.depths_of(optimizer)
        ]


def combine(config: StudyDepthConfig, done: dict) -> StudyDepthResult:
    c = config.resolved()
    points = []
    for optimizer in c.optimizers:
        for depth in depth_grid(c, optimizer, done):
            for s in range(c.seeds):
                points.append(_point(c, done, optimizer, depth, c.seed + s))
    return StudyDepthResult(c, tuple(points)).derive()


def run(config: StudyDepthConfig) -> StudyDepthResult:
    result = run_study(STUDY, config)
    assert isinstance(result, StudyDepthResult)
    return result


# the authors' Figure-3 budgets: 160 steps (ours before 0.4: 10 epochs of MNIST-5k), 2,400 (their 10 epochs)
MATCHED: dict[str, Any] = dict(decay_every=authors.STEPS_PER_EPOCH, refine=True)
PAPER_OPTIMIZERS = ("sgd_momentum", "sgd", "adam", "fromage")  # the ones they ran


def paper_configs(quick: bool, seed: int) -> dict[str, StudyDepthConfig]:
    """Figure 3 at 160 matched steps (the authors' schedule and metric, refined to ±2 layers); the quick preview:
    one seed, width 32, the paper's SGD, Adam and Fromage."""
    preview: dict[str, Any] = dict(seeds=1, optimizers=("sgd_momentum", "adam", "fromage")) if quick else {}
    return {"study_depth": StudyDepthConfig(quick=quick, seed=seed, steps=160, read_steps=(160,), **MATCHED, **preview)}


def long_configs(seed: int) -> dict[str, StudyDepthConfig]:
    """Figure 3 at 2,400 matched steps (read at 160 and 2,400) at width 128 with five seeds (rule "compare" needs
    five a side to order two optimisers); at the authors' width 784 near the transitions of Adam and Fromage with
    one seed at their two smaller rates (the finding if the order depends on width); and the width-128 study on
    2,000 of MNIST-5k's 4,000 training images (how the data size moves the verdict)."""
    at_2400: dict[str, Any] = dict(steps=2400, read_steps=(160, 2400), seed=seed, **MATCHED)
    return {
        "study_depth_2400": StudyDepthConfig(optimizers=PAPER_OPTIMIZERS, seeds=5, **at_2400),
        # the data-size check: the same steps on half the images (300 passes over each instead of 150)
        "study_depth_2000_images": StudyDepthConfig(optimizers=PAPER_OPTIMIZERS, train_images=2000, **at_2400),
        # their width; their largest rates (Adam 0.01, Fromage 0.1) never train from their k = 15 (L = 16) on; L = 22
        # is where their Adam first fails (k = 21), and resolves whether Adam's stop moved from width 128's 28
        "study_depth_784": StudyDepthConfig(
            width=784, depths=(16, 20, 22, 24, 28), optimizers=("adam", "fromage"), smallest_rates=2, seeds=1, **at_2400
        ),
    }


STUDY = Study(cell.EXPERIMENT, cells, combine)

EXPERIMENT = Experiment(
    StudyDepthConfig,
    StudyDepthResult,
    run,
    paper_configs,
    help="Figure 3: trainability against depth for SGD, SGD+momentum, Adam, Fromage and Madam",
    study=STUDY,
    long_configs=long_configs,
)
