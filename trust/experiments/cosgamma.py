"""Madam's angle ``cos γ = ⟨|W|, |g|⟩/(‖W‖‖g‖)`` (docs/theory.md §3): the value the descent lemma needs, which the
paper sets to cos(π/4) ≈ 0.707 and a reviewer asked to measure.

Two parts:

- Monte Carlo: W and g with n iid entries, Gaussian (E cos γ → 2/π as n → ∞) or with uniform
  magnitudes (→ 3/4); the mean over trials with a 95 % confidence interval (Student t), for several n.
- Through training: cos γ_l of every weight matrix with the full-batch gradient, at checkpoints of Madam
  and SGD training on digits, over seeds; the mean over layers of each seed, with a 95 % interval across
  seeds (none for one seed), and the spread across layers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from trust.base.schema import Config, Result, Verdict, param, value
from trust.base.spec import weight_indices
from trust.core import data, estimate, measure, train
from trust.core.estimate import MeanCI, mean_ci
from trust.experiments.shared import points, rules
from trust.experiments.shared.runner import Experiment

LIMITS = {"gaussian": 2 / np.pi, "uniform": 0.75}
PAPER = float(np.cos(np.pi / 4))


@dataclass(frozen=True)
class CosGammaConfig(Config):
    """Everything that determines a cos γ run (recorded in its ``config.json``)."""

    sizes: tuple[int, ...] = param((10, 100, 1000, 10000), "Monte Carlo: entries n of W and g", minimum=1)
    trials: int = param(2000, "Monte Carlo: pairs per size", minimum=2)
    optimizers: tuple[str, ...] = param(("madam", "sgd"), "train with these", choices=train.OPTIMIZERS)
    depth: int = param(8, "L, the number of weight matrices", minimum=1)
    width: int = param(128, "hidden width", minimum=1)
    epochs: tuple[float, ...] = param((0.0, 0.5, 1.0, 2.0, 5.0, 10.0), "checkpoints (epochs)", minimum=0)
    seeds: int = param(3, "training runs per optimiser (seeds seed, seed+1, …)", minimum=1)
    dataset: str = param("digits", "data set", choices=data.names(data.SMALL))
    seed: int = param(0, "random seed")


@dataclass(frozen=True)
class MonteCarloPoint:
    size: int
    estimate: MeanCI


@dataclass(frozen=True)
class Training:
    """cos γ_l through training with one optimiser."""

    epochs: tuple[float, ...] = value(axes=("checkpoint",))
    cos_gamma: np.ndarray = value(axes=("seed", "checkpoint", "layer"))
    mean: tuple[MeanCI, ...] = value()  # per checkpoint: the mean over layers, CI across seeds
    layer_min: np.ndarray = value(axes=("checkpoint",))  # min over seeds and layers
    layer_max: np.ndarray = value(axes=("checkpoint",))
    per_layer_mean: np.ndarray = value(axes=("checkpoint", "layer"))  # mean over seeds
    seeds: tuple[int, ...] = value(default=(), axes=("seed",))  # the training seeds (empty before 0.4)

    def coordinates(self) -> dict[str, list]:
        """Checkpoints in epochs, seeds, and the weight matrices numbered from 1 (input side)."""
        seeds = list(self.seeds) if self.seeds else list(range(self.cos_gamma.shape[0]))
        return {"checkpoint": list(self.epochs), "seed": seeds, "layer": list(range(1, self.cos_gamma.shape[2] + 1))}


@dataclass(frozen=True, eq=False)
class CosGammaResult(Result):
    monte_carlo: dict[str, tuple[MonteCarloPoint, ...]]  # by distribution in LIMITS
    limits: dict[str, float]
    paper: float
    training: dict[str, Training]  # by optimiser
    # the limit inside the 95 % interval at the largest n (by distribution); π/4 inside it at the end (by optimiser)
    limit_verdicts: dict[str, Verdict] | None = value(derived=True)  # rule "interval"
    paper_verdicts: dict[str, Verdict] | None = value(derived=True)

    def derive(self) -> CosGammaResult:
        limit = {k: _inside(self.limits[k], mc[-1].estimate) for k, mc in self.monte_carlo.items()}
        paper = {o: _inside(self.paper, tr.mean[-1]) for o, tr in self.training.items()}
        return replace(self, limit_verdicts=limit, paper_verdicts=paper)


def _inside(predicted: float, m: MeanCI) -> Verdict:
    return rules.interval(predicted, m.mean, m.half_width, m.n)


def monte_carlo(rng: np.random.Generator, kind: str, n: int, trials: int) -> np.ndarray:
    """cos γ for ``trials`` independent pairs of n-vectors (Gaussian, or uniform magnitudes on [0, 1]
    with random signs — the signs do not enter cos γ)."""
    draw = rng.standard_normal if kind == "gaussian" else (lambda shape: rng.uniform(-1.0, 1.0, shape))
    w, g = draw((trials, n)), draw((trials, n))
    return np.sum(np.abs(w * g), -1) / (np.linalg.norm(w, axis=-1) * np.linalg.norm(g, axis=-1))


def through_training(config: CosGammaConfig, optimizer: str) -> Training:
    """cos γ_l of every weight matrix with the full-batch gradient at each checkpoint, for every seed."""
    per_seed = []
    for s in range(config.seeds):
        tc = points.train_config(optimizer, config.depth, config.width, config.dataset, config.seed + s)
        ds, net, pts = points.checkpoints(tc, config.epochs)
        weights = weight_indices(pts[0][1])
        per_seed.append(
            [
                estimate.cos_gamma(p, measure.full_batch_gradient(net.apply, p, ds.x_train, ds.y_train))[weights]
                for _, p in pts
            ]
        )
    cos = np.array(per_seed)  # (seeds, checkpoints, layers)
    return Training(
        epochs=tuple(float(e) for e, _ in pts),
        cos_gamma=cos,
        # Layers of one run are correlated, so the independent unit is a seed: its mean over layers.
        mean=tuple(mean_ci(cos[:, k].mean(axis=-1)) for k in range(cos.shape[1])),
        layer_min=cos.min(axis=(0, 2)),
        layer_max=cos.max(axis=(0, 2)),
        per_layer_mean=cos.mean(axis=0),
        seeds=tuple(config.seed + s for s in range(config.seeds)),
    )


def run(config: CosGammaConfig) -> CosGammaResult:
    rng = np.random.default_rng([config.seed, 0])
    mc = {
        kind: tuple(MonteCarloPoint(n, mean_ci(monte_carlo(rng, kind, n, config.trials))) for n in config.sizes)
        for kind in LIMITS
    }
    return CosGammaResult(
        monte_carlo=mc,
        limits=dict(LIMITS),
        paper=PAPER,
        training={opt: through_training(config, opt) for opt in config.optimizers},
    ).derive()


def paper_configs(quick: bool, seed: int) -> dict[str, CosGammaConfig]:
    return {
        "cosgamma": CosGammaConfig(
            trials=500 if quick else 2000,
            seeds=2 if quick else 3,
            width=64 if quick else 128,
            epochs=(0.0, 1.0, 2.0) if quick else (0.0, 0.5, 1.0, 2.0, 5.0, 10.0),
            seed=seed,
        )
    }


EXPERIMENT = Experiment(
    CosGammaConfig,
    CosGammaResult,
    run,
    paper_configs,
    help="Madam's cos γ: Monte Carlo (2/π, 3/4) and through Madam/SGD training vs π/4",
)
