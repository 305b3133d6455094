"""Descent along a Fromage step and a Madam step (docs/theory.md §3, Lemmas 1–2): the largest η that still
decreases the loss, measured, beside the thresholds the theory predicts — across depths, at
initialisation and at checkpoints of training with that same optimiser.

At a point W with full-batch gradient g, the step is the line ``W + η·U``:

- Fromage: ``U_l = −‖W_l‖·g_l/‖g_l‖`` for every tensor (the step without its ``1/√(1+η²)`` factor);
  ``cos θ_l = 1``;
- Madam (linear form, its first step): ``U = −|W| ⊙ sign g``; ``cos θ_l = cos γ_l``.

On a log grid of η (plus η = 0), measured in float64 (training runs in float32; the checkpoint is cast) —
at depth 16 a step of η = 1e-4 changes the loss by less than float32 resolves, and the sign of that
change is what is measured:

- ``eta_descent`` — the largest grid η with ℒ(W + tU) < ℒ(W) at every grid t ≤ η (the descent interval
  connected to 0), and ``eta_fail``, the next grid η, where it does not: the boundary lies between them;
  ``censored`` when the loss still decreases at the grid's end;
- ``eta_lemma1`` — the largest grid η at which every moved tensor satisfies Lemma 1's condition
  ``‖g_l(W + tU) − g_l(W)‖/‖g_l(W)‖ < cos θ_l`` at every grid t ≤ η. Lemma 1 is a theorem, so
  ``eta_lemma1 ≤ eta_descent`` must hold (up to the grid sampling the max over t);
- predicted: Lemma 2 ``(1 + cos θ)^{1/L} − 1`` (C = 1, θ = max_l θ_l over the L weight matrices), and the
  same with the effective constant ``C_eff`` measured along U on the paper's range η ∈ [0.001, 0.1].

Why a range for C_eff: for relu nets the loss gradient is discontinuous in W (a unit crossing its kink
switches φ'), so ‖Δg‖/‖g‖ need not fall off linearly as η → 0 and its ratio to DRT need not settle (at
depth 2 at initialisation on digits: 11 at η = 10⁻⁴ against 3.9 over [0.001, 0.1]). C_eff is therefore
quoted with the η range it was fitted on, and the ratio at the grid's smallest η is recorded beside it
(``drt_ratio_at_eta_min``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import numpy as np

from trust.base.errors import TrustError
from trust.base.schema import Config, Result, Verdict, param, value
from trust.core import bounds, data, estimate, measure, perturb
from trust.experiments.shared import points, rules
from trust.experiments.shared.runner import Experiment

STEPS = ("fromage", "madam")
DIRECTION_OF_STEP = {"fromage": "gradient", "madam": "madam"}  # the step's direction in trust.core.perturb


@dataclass(frozen=True)
class DescentConfig(Config):
    """Everything that determines a descent run (recorded in its ``config.json``)."""

    depths: tuple[int, ...] = param((2, 4, 8, 16, 32), "depths (weight matrices)", minimum=1, increasing=True)
    width: int = param(128, "hidden width", minimum=1)
    steps: tuple[str, ...] = param(STEPS, "the steps to descend along", choices=STEPS)
    epochs: tuple[float, ...] = param(
        (0.0, 1.0, 5.0), "checkpoints of training with the step's own optimiser (0: initialisation)", minimum=0
    )
    eta_min: float = param(1e-4, "smallest positive η of the log grid")
    eta_max: float = param(1.0, "largest η of the log grid")
    eta_steps: int = param(80, "log-spaced points in [eta_min, eta_max], plus η = 0", minimum=2)
    c_eff_eta_min: float = param(1e-3, "C_eff is fitted on grid η ≥ this …")
    c_eff_eta_max: float = param(0.1, "… and ≤ this (the paper's grid 0.001 … 0.099)")
    dataset: str = param("digits", "data set", choices=data.names(data.SMALL))
    n_examples: int = param(0, "measure on the first n training examples; 0: all", minimum=0)
    seed: int = param(0, "random seed")

    def validate(self):
        if not 0 < self.eta_min < self.eta_max:
            raise TrustError(f"the η grid needs 0 < eta_min < eta_max, got {self.eta_min:g} and {self.eta_max:g}")
        if not (0 < self.c_eff_eta_min < self.c_eff_eta_max) or not np.any(self.c_eff_window):
            raise TrustError(
                f"no grid η in the C_eff range [{self.c_eff_eta_min:g}, {self.c_eff_eta_max:g}]; "
                f"the grid spans [{self.eta_min:g}, {self.eta_max:g}]"
            )

    @property
    def etas(self) -> np.ndarray:
        return np.concatenate([[0.0], np.geomspace(self.eta_min, self.eta_max, self.eta_steps)])

    @property
    def c_eff_window(self) -> np.ndarray:
        """Which grid points C_eff is fitted on."""
        return (self.etas >= self.c_eff_eta_min) & (self.etas <= self.c_eff_eta_max)


@dataclass(frozen=True)
class DescentPoint:
    """Measured and predicted descent thresholds along one step at one point (module docstring)."""

    step: str
    epoch: float
    depth: int
    loss: float
    eta_descent: float
    eta_fail: float | None  # None: the loss still falls at the grid's end (censored)
    censored: bool
    eta_lemma1: float
    lemma1_holds: bool
    cos_theta_min: float
    cos_theta: np.ndarray = value(axes=("layer",))  # per weight matrix, numbered from 1 (input side)
    C_eff: float = value()
    drt_ratio_at_eta_min: float = value()
    lemma2: float = value()
    lemma2_C_eff: float = value()

    def coordinates(self) -> dict[str, list]:
        return {"layer": list(range(1, len(self.cos_theta) + 1))}


@dataclass(frozen=True)
class Lemma2Claim:
    """Lemma 2's threshold against the measured largest descent η along one step: points where descent provably
    fails below the threshold and points the grid cannot decide, with and without the measured C_eff put back; and
    the range of the DRT ratio at the grid's smallest η over C_eff (how far the fitted constant is from there)."""

    step: str
    points: int
    fails: int
    unclear: int
    fails_c_eff: int
    unclear_c_eff: int
    ratio_low: float
    ratio_high: float

    @property
    def verdict(self) -> Verdict:
        """Rule "every_point": Lemma 2's prediction holds where descent fails at no point."""
        return rules.every_point(self.fails, self.points, self.unclear)


@dataclass(frozen=True, eq=False)
class DescentResult(Result):
    eta: np.ndarray = value(axes=("eta",))
    rows: tuple[DescentPoint, ...] = value()
    loss_curves: np.ndarray = value(bulk=True, axes=("point", "eta"))  # the loss along each row's step
    lemma2: tuple[Lemma2Claim, ...] | None = value(derived=True)  # per step
    lemma1: Verdict | None = value(derived=True)  # a theorem: points where the certified η exceeds the measured

    def derive(self) -> DescentResult:
        claims = []
        for step in STEPS:
            sel = [r for r in self.rows if r.step == step]
            if sel:
                fails, unclear = _against(sel, "lemma2")
                fails_eff, unclear_eff = _against(sel, "lemma2_C_eff")
                ratio = [r.drt_ratio_at_eta_min / r.C_eff for r in sel]
                claims.append(
                    Lemma2Claim(step, len(sel), fails, unclear, fails_eff, unclear_eff, min(ratio), max(ratio))
                )
        bad = self.lemma1_violations
        lemma1 = rules.theorem(bad, float("nan"), float("nan"), 1)  # a count of violations: no ratio to a bound
        return replace(self, lemma2=tuple(claims), lemma1=lemma1)

    def coordinates(self) -> dict[str, list]:
        """η, and each row's point: its step, depth and epoch."""
        return {"eta": list(self.eta), "point": [f"{r.step} L={r.depth} epoch {r.epoch:g}" for r in self.rows]}

    @property
    def lemma1_violations(self) -> int:
        return sum(not r.lemma1_holds for r in self.rows)

    @property
    def censored(self) -> int:
        return sum(r.censored for r in self.rows)


def _against(rows: list[DescentPoint], threshold: str) -> tuple[int, int]:
    """Points where descent provably fails below the threshold (a grid η < threshold already fails), and
    points the grid cannot decide (the boundary lies between two grid points around the threshold)."""
    fails = sum(r.eta_fail is not None and r.eta_fail < getattr(r, threshold) for r in rows)
    unclear = sum(r.eta_fail is not None and r.eta_descent < getattr(r, threshold) <= r.eta_fail for r in rows)
    return fails, unclear


def largest_prefix(etas, ok) -> tuple[float, float | None]:
    """The largest η whose grid prefix (η > 0) is all ``ok`` (0.0 when the first positive grid point already
    fails), and the first grid η that is not ``ok`` — ``None`` when the whole grid is (censored). The true
    boundary lies between the two."""
    ok = np.asarray(ok, dtype=bool)[1:]
    n = int(np.argmin(ok)) if not ok.all() else ok.size
    return (float(etas[n]) if n > 0 else 0.0), (None if ok.all() else float(etas[n + 1]))


def descent_at(net, params, x, y, step: str, etas, c_eff_window) -> tuple[dict, np.ndarray]:
    """Measured and predicted descent thresholds along one step at one point, and the loss along it."""
    grads = measure.full_batch_gradient(net.apply, params, x, y)
    u = perturb.direction(DIRECTION_OF_STEP[step], params, grads)
    dist = measure.relative_distances(net.apply, params, x, y, u, etas)
    cos = estimate.cos_theta(u, grads)  # per tensor; NaN where a tensor does not move
    moved = np.isfinite(cos)
    weights = np.array(dist.is_weight)
    depth = int(weights.sum())
    eta_descent, eta_fail = largest_prefix(etas, dist.loss < dist.loss0)
    lemma1_ok = np.all(dist.gradient[:, moved] < cos[moved][None, :], axis=1)
    eta_lemma1, _ = largest_prefix(etas, lemma1_ok)
    cos_min = float(np.min(cos[weights & moved]))
    drt = bounds.drt_bound(dist.weight_relative_size)
    worst = dist.gradient[:, weights].max(axis=1)
    c_eff = estimate.effective_constant(worst[c_eff_window], drt[c_eff_window])
    point = dict(
        depth=depth,
        loss=dist.loss0,
        eta_descent=eta_descent,
        eta_fail=eta_fail,
        censored=eta_fail is None,
        eta_lemma1=eta_lemma1,
        lemma1_holds=bool(eta_lemma1 <= eta_descent),
        cos_theta_min=cos_min,
        cos_theta=cos[weights],
        C_eff=c_eff,
        drt_ratio_at_eta_min=float(worst[1] / drt[1]),  # grows as η → 0 for relu (module docstring)
        lemma2=float(estimate.lemma2_threshold(cos_min, depth)),
        lemma2_C_eff=float(estimate.lemma2_threshold(cos_min, depth, c_eff)),
    )
    return point, np.asarray(dist.loss, dtype=float)


def run(config: DescentConfig) -> DescentResult:
    """Every (step, depth, checkpoint): one row each, and the loss curves."""
    etas = config.etas
    rows, curves = [], []
    for step in config.steps:
        for depth in config.depths:
            tc = points.train_config(step, depth, config.width, config.dataset, config.seed)
            ds, net, pts = points.checkpoints(tc, config.epochs)
            x, y = points.measurement_batch(ds, config.n_examples)
            for epoch, params in pts:
                with jax.enable_x64(True):  # loss differences at η = 1e-4 are below float32 resolution
                    params64, x64 = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), (params, x))
                    point, curve = descent_at(net, params64, x64, y, step, etas, config.c_eff_window)
                rows.append(DescentPoint(step=step, epoch=float(epoch), **point))
                curves.append(curve)
    return DescentResult(eta=etas, rows=tuple(rows), loss_curves=np.array(curves)).derive()


def paper_configs(quick: bool, seed: int) -> dict[str, DescentConfig]:
    return {
        "descent": DescentConfig(
            depths=(2, 16) if quick else (2, 4, 8, 16, 32),
            epochs=(0.0, 1.0) if quick else (0.0, 1.0, 5.0),
            width=64 if quick else 128,
            eta_steps=30 if quick else 80,
            seed=seed,
        )
    }


EXPERIMENT = Experiment(
    DescentConfig,
    DescentResult,
    run,
    paper_configs,
    help="largest loss-decreasing η along Fromage and Madam steps vs Lemma 1/2 thresholds",
)
