"""Descent along a Fromage step and a Madam step (THEORY §3, Lemmas 1–2): the largest η that still
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

from dataclasses import dataclass

import jax
import numpy as np

from trust import bounds, estimate, measure, perturb, train
from trust.config import Config
from trust.errors import TrustError
from trust.experiments import points

STEPS = ("fromage", "madam")


@dataclass(frozen=True)
class DescentConfig(Config):
    """Everything that determines a descent run (recorded in its ``config.json``)."""

    depths: tuple[int, ...] = (2, 4, 8, 16, 32)
    width: int = 128
    steps: tuple[str, ...] = STEPS
    epochs: tuple[float, ...] = (0.0, 1.0, 5.0)  # checkpoints of training with the step's own optimiser
    eta_min: float = 1e-4
    eta_max: float = 1.0
    eta_steps: int = 80  # log-spaced in [eta_min, eta_max], plus η = 0
    c_eff_eta_min: float = 1e-3  # C_eff is fitted on η in [min, max]: the paper's grid 0.001 … 0.099
    c_eff_eta_max: float = 0.1
    dataset: str = "digits"
    n_examples: int = 0  # measure on the first n training examples; 0: all
    seed: int = 0

    def __post_init__(self):
        points.check_sweep(self.depths, self.epochs, self.n_examples)
        if not self.steps or any(s not in STEPS for s in self.steps):
            raise TrustError(f"steps must be among {', '.join(STEPS)}, got {self.steps}")
        if not (0 < self.eta_min < self.eta_max and np.isfinite(self.eta_max)) or self.eta_steps < 2:
            raise TrustError("the η grid needs 0 < eta_min < eta_max (finite) and eta_steps ≥ 2")
        if not (0 < self.c_eff_eta_min < self.c_eff_eta_max) or not np.any(self.c_eff_window):
            raise TrustError(f"no grid η in the C_eff range [{self.c_eff_eta_min:g}, {self.c_eff_eta_max:g}]; "
                             f"the grid spans [{self.eta_min:g}, {self.eta_max:g}]")

    @property
    def etas(self) -> np.ndarray:
        return np.concatenate([[0.0], np.geomspace(self.eta_min, self.eta_max, self.eta_steps)])

    @property
    def c_eff_window(self) -> np.ndarray:
        """Which grid points C_eff is fitted on."""
        return (self.etas >= self.c_eff_eta_min) & (self.etas <= self.c_eff_eta_max)


def largest_prefix(etas, ok) -> tuple[float, float | None]:
    """The largest η whose grid prefix (η > 0) is all ``ok`` (0.0 when the first positive grid point already
    fails), and the first grid η that is not ``ok`` — ``None`` when the whole grid is (censored). The true
    boundary lies between the two."""
    ok = np.asarray(ok, dtype=bool)[1:]
    n = int(np.argmin(ok)) if not ok.all() else ok.size
    return (float(etas[n]) if n > 0 else 0.0), (None if ok.all() else float(etas[n + 1]))


def at_point(net, params, x, y, step: str, etas, c_eff_window) -> dict:
    """Measured and predicted descent thresholds along one step at one point (module docstring)."""
    grads = measure.full_batch_gradient(net.apply, params, x, y)
    u = perturb.direction({"fromage": "gradient", "madam": "madam"}[step], params, grads)
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
    return {
        "depth": depth,
        "loss": dist.loss0,
        "eta_descent": eta_descent,
        "eta_fail": eta_fail,
        "censored": eta_fail is None,
        "eta_lemma1": eta_lemma1,
        "lemma1_holds": bool(eta_lemma1 <= eta_descent),
        "cos_theta_min": cos_min,
        "cos_theta": cos[weights],
        "C_eff": c_eff,
        "drt_ratio_at_eta_min": float(worst[1] / drt[1]),  # grows as η → 0 for relu (module docstring)
        "lemma2": float(estimate.lemma2_threshold(cos_min, depth)),
        "lemma2_C_eff": float(estimate.lemma2_threshold(cos_min, depth, c_eff)),
        "loss_curve": dist.loss,
    }


def run(config: DescentConfig) -> tuple[dict, dict]:
    """Every (step, depth, checkpoint); JSON-ready results (one row each) and the loss curves."""
    etas = config.etas
    rows, arrays = [], {"eta": etas}
    for step in config.steps:
        for depth in config.depths:
            tc = train.TrainConfig(optimizer=step, depth=depth, width=config.width, dataset=config.dataset,
                                   seed=config.seed)
            ds, net, pts = points.checkpoints(tc, config.epochs)
            x, y = points.measurement_batch(ds, config.n_examples)
            for epoch, params in pts:
                with jax.enable_x64(True):  # loss differences at η = 1e-4 are below float32 resolution
                    params64, x64 = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), (params, x))
                    row = at_point(net, params64, x64, y, step, etas, config.c_eff_window)
                arrays[f"{step}/L{depth}/epoch{epoch:g}/loss"] = row.pop("loss_curve")
                rows.append({"step": step, "epoch": float(epoch), **row})
    lemma1 = [r for r in rows if not r["lemma1_holds"]]
    summary = {"n_points": len(rows), "lemma1_violations": len(lemma1),
               "censored": sum(r["censored"] for r in rows)}
    return {"rows": rows, "summary": summary}, arrays
