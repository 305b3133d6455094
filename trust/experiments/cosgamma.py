"""Madam's angle ``cos γ = ⟨|W|, |g|⟩/(‖W‖‖g‖)`` (THEORY §3): the value the descent lemma needs, which the
paper sets to cos(π/4) ≈ 0.707 and a reviewer asked to measure.

Two parts:

- Monte Carlo: W and g with n iid entries, Gaussian (E cos γ → 2/π as n → ∞) or with uniform
  magnitudes (→ 3/4); the mean over trials with a 95 % confidence interval (Student t), for several n.
- Through training: cos γ_l of every weight matrix with the full-batch gradient, at checkpoints of Madam
  and SGD training on digits, over seeds; the mean over layers of each seed, with a 95 % interval across
  seeds (none for one seed), and the spread across layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
import scipy.stats

from trust import estimate, measure, nets, train
from trust.config import Config
from trust.errors import TrustError
from trust.experiments import points

LIMITS = {"gaussian": 2 / np.pi, "uniform": 0.75}
PAPER = float(np.cos(np.pi / 4))


@dataclass(frozen=True)
class CosGammaConfig(Config):
    """Everything that determines a cos γ run (recorded in its ``config.json``)."""

    sizes: tuple[int, ...] = (10, 100, 1000, 10000)
    trials: int = 2000
    optimizers: tuple[str, ...] = ("madam", "sgd")
    depth: int = 8
    width: int = 128
    epochs: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0)
    seeds: int = 3
    dataset: str = "digits"
    seed: int = 0

    def __post_init__(self):
        if not self.sizes or min(self.sizes) < 1 or self.trials < 2 or self.seeds < 1:
            raise TrustError("need sizes ≥ 1, trials ≥ 2 and seeds ≥ 1")
        for name in self.optimizers:
            train.TrainConfig(optimizer=name)  # validates the name
        if not self.epochs or min(self.epochs) < 0:
            raise TrustError(f"epochs must be ≥ 0, got {self.epochs}")


def mean_ci(values, level: float = 0.95) -> dict:
    """Mean with a Student-t confidence interval (``half_width``) and the standard error."""
    v = np.asarray(values, dtype=float)
    sem = float(np.std(v, ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    half = float(scipy.stats.t.ppf(0.5 + level / 2, v.size - 1) * sem) if v.size > 1 else float("nan")
    return {"mean": float(v.mean()), "half_width": half, "sem": sem, "n": int(v.size)}


def monte_carlo(rng: np.random.Generator, kind: str, n: int, trials: int) -> np.ndarray:
    """cos γ for ``trials`` independent pairs of n-vectors (Gaussian, or uniform magnitudes on [0, 1]
    with random signs — the signs do not enter cos γ)."""
    draw = rng.standard_normal if kind == "gaussian" else (lambda shape: rng.uniform(-1.0, 1.0, shape))
    w, g = draw((trials, n)), draw((trials, n))
    return np.sum(np.abs(w * g), -1) / (np.linalg.norm(w, axis=-1) * np.linalg.norm(g, axis=-1))


def run(config: CosGammaConfig) -> tuple[dict, dict]:
    rng = np.random.default_rng([config.seed, 0])
    mc = {kind: [{"size": n, **mean_ci(monte_carlo(rng, kind, n, config.trials))} for n in config.sizes]
          for kind in LIMITS}
    arrays, training = {}, {}
    for opt in config.optimizers:
        per_seed = []
        for s in range(config.seeds):
            tc = train.TrainConfig(optimizer=opt, depth=config.depth, width=config.width, dataset=config.dataset,
                                   seed=config.seed + s)
            ds, net, pts = points.checkpoints(tc, config.epochs)
            weights = [i for i, w in enumerate(jax.tree_util.tree_leaves(pts[0][1])) if nets.is_weight_matrix(w)]
            per_seed.append([estimate.cos_gamma(p, measure.full_batch_gradient(net.apply, p, ds.x_train, ds.y_train))[weights]
                             for _, p in pts])
        cos = np.array(per_seed)  # (seeds, checkpoints, layers)
        arrays[f"{opt}/cos_gamma"] = cos
        training[opt] = {
            "epochs": [float(e) for e, _ in pts],
            # Layers of one run are correlated, so the independent unit is a seed: its mean over layers.
            "mean": [mean_ci(cos[:, k].mean(axis=-1)) for k in range(cos.shape[1])],
            "layer_min": cos.min(axis=(0, 2)), "layer_max": cos.max(axis=(0, 2)),
            "per_layer_mean": cos.mean(axis=0),
        }
    return {"monte_carlo": mc, "limits": LIMITS, "paper": PAPER, "training": training}, arrays
