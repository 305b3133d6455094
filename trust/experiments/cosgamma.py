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

from dataclasses import dataclass

import matplotlib.ticker
import numpy as np

from trust.base.schema import Config, Result, param
from trust.base.tree import weight_indices
from trust.core import estimate, measure, train
from trust.core.estimate import MeanCI, mean_ci
from trust.experiments.shared import points
from trust.experiments.shared.runner import Experiment
from trust.views import plots
from trust.views.report import Row, plus_minus

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
    dataset: str = param("digits", "data set", choices=("digits", "synthetic"))
    seed: int = param(0, "random seed")


@dataclass(frozen=True)
class MonteCarloPoint:
    size: int
    estimate: MeanCI


@dataclass(frozen=True)
class Training:
    """cos γ_l through training with one optimiser."""

    epochs: tuple[float, ...]
    cos_gamma: np.ndarray  # (seeds, checkpoints, layers)
    mean: tuple[MeanCI, ...]  # per checkpoint: the mean over layers, CI across seeds
    layer_min: np.ndarray
    layer_max: np.ndarray
    per_layer_mean: np.ndarray  # (checkpoints, layers), mean over seeds


@dataclass(frozen=True, eq=False)
class CosGammaResult(Result):
    monte_carlo: dict[str, tuple[MonteCarloPoint, ...]]  # by distribution in LIMITS
    limits: dict[str, float]
    paper: float
    training: dict[str, Training]  # by optimiser

    def summary(self) -> str:
        lines = []
        for kind, rows in self.monte_carlo.items():
            cells = ", ".join(f"n={r.size}: {_pm(r.estimate, 4)}" for r in rows)
            lines.append(f"Monte Carlo {kind} (limit {self.limits[kind]:.4f}): {cells}")
        for opt, tr in self.training.items():
            cells = ", ".join(f"ep {e:g}: {_pm(m)}" for e, m in zip(tr.epochs, tr.mean))
            lines.append(f"{opt} (cos π/4 = {self.paper:.3f}): {cells}")
        return "\n".join(lines)

    def figure(self):
        """(a) Monte Carlo cos γ with 95 % intervals against 2/π and 3/4; (b) cos γ through training (mean over
        layers, 95 % interval across seeds; band: layer min–max) against the paper's cos(π/4)."""
        fig, axes = plots.subplots(1, 2, figsize=(12, 4.3))
        ax_a, ax_b = axes[0]
        for (kind, rows), c in zip(self.monte_carlo.items(), ("tab:blue", "tab:orange")):
            ax_a.errorbar(
                [r.size for r in rows],
                [r.estimate.mean for r in rows],
                yerr=[r.estimate.half_width for r in rows],
                color=c,
                marker="o",
                capsize=3,
                label=f"{kind}",
            )
            ax_a.axhline(self.limits[kind], color=c, ls="--", lw=1, label=f"{kind} limit {self.limits[kind]:.4f}")
        ax_a.set(xscale="log", xlabel="entries n", ylabel="E cos γ (95 % CI)", title="(a) Monte Carlo, iid entries")
        for i, (opt, tr) in enumerate(self.training.items()):
            colour = plots.plt.cm.tab10((i + 4) % 10)
            ax_b.errorbar(
                tr.epochs,
                [m.mean for m in tr.mean],
                yerr=[m.half_width for m in tr.mean],
                color=colour,
                marker="o",
                capsize=3,
                label=f"{opt}: mean over layers, 95 % CI over seeds",
            )
            ax_b.fill_between(tr.epochs, tr.layer_min, tr.layer_max, color=colour, alpha=0.15)
        ax_b.axhline(self.paper, color="k", lw=1, label="paper: cos(π/4) = 0.707")
        ax_b.axhline(self.limits["gaussian"], color="tab:blue", ls="--", lw=1, label="2/π = 0.637")
        ax_b.set_xscale("symlog", linthresh=1.0)
        epochs = sorted({float(e) for tr in self.training.values() for e in tr.epochs})
        ax_b.set_xticks(epochs, [f"{e:g}" for e in epochs])  # the measured epochs, not symlog's 10^k
        ax_b.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax_b.set(xlabel="epoch", ylabel="cos γ_l", title="(b) through training on digits (band: layer range)")
        ax_b.set_xlim(left=0)
        ax_b.set_ylim(top=max(0.75, ax_b.get_ylim()[1]))  # keep the paper's line clear of the frame
        for ax in (ax_a, ax_b):
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8)
        return fig

    def report_rows(self) -> list[Row]:
        rows = []
        for kind, mc in self.monte_carlo.items():
            last, limit = mc[-1], self.limits[kind]
            half = last.estimate.half_width if np.isfinite(last.estimate.half_width) else 0.0
            rows.append(
                Row(
                    f"E cos γ → {limit:.4f} for iid {kind} entries",
                    "theorem (limit n → ∞)",
                    f"n = {last.size}: {_pm(last.estimate, 4)} (95 % CI, {last.estimate.n} trials)",
                    "consistent" if abs(last.estimate.mean - limit) <= half else "outside the 95 % CI",
                )
            )
        for opt, tr in self.training.items():
            m = tr.mean[-1]
            half = m.half_width if np.isfinite(m.half_width) else 0.0
            rows.append(
                Row(
                    f"Paper: γ = π/4 (cos γ = {self.paper:.3f}) — {opt} training on digits",
                    "assumption",
                    f"cos γ at epoch {tr.epochs[-1]:g}: {_pm(m)} (95 % CI over {m.n} seeds) "
                    f"(layers {min(tr.per_layer_mean[-1]):.3f}–{max(tr.per_layer_mean[-1]):.3f}); at init "
                    f"{tr.mean[0].mean:.3f}",
                    "consistent" if abs(m.mean - self.paper) <= half else f"measured {m.mean:.3f}",
                )
            )
        return rows


def _pm(m: MeanCI, digits: int = 3) -> str:
    return plus_minus(m.mean, m.half_width, m.n, digits)


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
    )


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
