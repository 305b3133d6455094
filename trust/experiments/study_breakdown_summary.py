"""The summary of ``trust study breakdown`` (docs/theory.md §5.1, §6.4): each configuration over its seeds
(:class:`NetSummary`), the depth claims and the bound claims — every number the study's figures and rows show,
computed from the combined cells (``StudyBreakdownResult.derive``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from trust.base.schema import NO_SEED, Spread, Verdict, value
from trust.core import estimate
from trust.core.estimate import MeanCI
from trust.experiments.shared import rules
from trust.experiments.shared.cell import SHARPNESS_ENDS, CellResult
from trust.experiments.shared.paper import PROBES

if TYPE_CHECKING:
    from trust.experiments.study_breakdown import StudyBreakdownResult


@dataclass(frozen=True, eq=False)
class NetSummary:
    """One configuration (optimiser × net) over its seeds: every number its figures and rows show. Medians are
    over the measured seeds, NaN left out (a dead net's undefined slice); ``seeds`` counts the measured ones."""

    optimizer: str
    depth: int
    residual: bool
    lr: float
    seeds: int
    final_train_acc: Spread  # over every seed (a diverged one left out)
    eta: np.ndarray = value(empty=True, axes=("eta",))
    checkpoint_epoch: np.ndarray = value(empty=True, axes=("checkpoint",))
    checkpoint_step: np.ndarray = value(empty=True, axes=("checkpoint",))  # the optimiser step of each
    steps_per_epoch: int = 0
    drt: np.ndarray = value(empty=True, axes=("eta",))  # (1+η)^L − 1
    loss_change: np.ndarray = value(NO_SEED, empty=True, axes=("checkpoint", "eta"))  # median ℒ(W+ΔW) − ℒ(W)
    gradient_first: np.ndarray = value(NO_SEED, empty=True, axes=("checkpoint", "eta"))  # median ‖Δg₁‖/‖g₁‖
    gradient_end: Spread | None = value(default=None, axes=("eta",))  # ‖Δg₁‖/‖g₁‖ at the end over seeds
    lipschitz_first: np.ndarray = value(f"{NO_SEED}; {SHARPNESS_ENDS}", empty=True, axes=("checkpoint", "eta"))
    probe: Spread | None = value(default=None, axes=("checkpoint", "probe"))  # layer 1 at the probe η
    # layer 1's ‖g₁‖ per checkpoint, and ‖Δg₁‖ over ‖g₁‖ at initialisation at the probe η (the companion a vanishing
    # gradient cannot inflate); None for cells stored before the gradient norms were
    gradient_norm_first: Spread | None = value(default=None, axes=("checkpoint",))
    probe_initial: Spread | None = value(default=None, axes=("checkpoint", "probe"))
    # per checkpoint, how many measured seeds rule "flag" marks "zero loss" and "at chance"
    zero_loss: np.ndarray = value(empty=True, axes=("checkpoint",))
    at_chance: np.ndarray = value(empty=True, axes=("checkpoint",))
    c_eff_first: Spread | None = value(default=None, axes=("checkpoint",))  # C_eff of layer 1
    # median measured/predicted at the end, η > 0
    lipschitz_ratio_end: np.ndarray = value(NO_SEED, empty=True, axes=("eta_positive",))
    # at the end, the constants a Lipschitz-smooth model could take (docs/theory.md §2.5): the sharpness at the point
    # (the smallest any such model can use), the largest sharpness along the slice (the point and the probe η) and
    # the largest secant ‖Δ∇ℒ‖/‖ΔW‖ along it (what the slice itself needs); and layer 1's measured/predicted change
    # with each at the probe η. None without the sharpness along the slice.
    lipschitz_constants: Spread | None = value(default=None, axes=("constant",))
    lipschitz_ratios: Spread | None = value(default=None, axes=("constant", "probe"))

    def coordinates(self) -> dict[str, list]:
        return {"checkpoint": list(self.checkpoint_epoch), "eta": list(self.eta), "eta_positive": list(self.eta[1:]),
                "probe": list(PROBES), "constant": list(LIPSCHITZ_CONSTANTS)}  # fmt: skip


LIPSCHITZ_CONSTANTS = ("sharpness at the point", "largest sharpness along the slice", "largest secant along the slice")


def lipschitz_end(r: CellResult) -> tuple[np.ndarray, np.ndarray]:
    """At the end of training: the three constants of :data:`LIPSCHITZ_CONSTANTS`, and layer 1's measured over
    predicted relative change ``C‖ΔW‖/‖g₁‖`` with each at the probe η (the stored prediction uses the sharpness
    at the point, so another constant rescales it)."""
    lam = r.sharpness[-1]
    with np.errstate(invalid="ignore"):
        constants = np.array([lam, np.nanmax([lam, *r.sharpness_along[-1]]), np.nanmax(r.secant[-1, 1:])])
    at = [r.at_eta(p) for p in PROBES]
    measured, predicted = r.gradient[-1, at, 0], r.lipschitz_first[-1, at]
    return constants, measured[None, :] / (predicted[None, :] * (constants / lam)[:, None])


@dataclass(frozen=True)
class DepthClaim:
    """Depth ``deep`` against ``shallow`` after training (``separation``) and at initialisation (``initial``: the
    same nets for every optimiser), and ``deep``'s growth from initialisation to the end (``growth``), at η = 0.05
    (the nets' ``probe``); seeds that rule "flag" marks at the end are left out of the end's verdicts (counted in
    ``flagged_shallow`` and ``flagged_deep``), which read "not judged" when no seed is left."""

    optimizer: str
    shallow: int
    deep: int
    separation: Verdict
    growth: Verdict
    initial: Verdict
    flagged_shallow: int = 0  # seeds flagged at the end (rule "flag"), kept out of the end's verdicts
    flagged_deep: int = 0
    # the two nets' median final training accuracies over seeds; rules.trained_alike decides on them
    accuracy_shallow: float = float("nan")
    accuracy_deep: float = float("nan")

    @property
    def accuracy_gap(self) -> float:
        return abs(self.accuracy_shallow - self.accuracy_deep)

    @property
    def trained_alike(self) -> bool:
        return rules.trained_alike(self.accuracy_shallow, self.accuracy_deep)


@dataclass(frozen=True, eq=False)
class WorstPoint:
    """Where a bound's worst measured/bound sits — the net, seed, checkpoint (its optimiser step), layer (1: the
    first weight matrix) and η — with the same layer's factor at each probe η there and the checkpoint's flag
    (rule "flag"): a factor at the smallest η is relu kinks, one at a memorised checkpoint a vanished ‖g_l‖."""

    depth: int
    residual: bool
    seed: int
    step: int
    layer: int
    eta: float
    factor: float
    flag: str
    at_probes: np.ndarray = value(axes=("probe",))

    def coordinates(self) -> dict[str, list]:
        return {"probe": list(PROBES)}


def worst_point(cells: list[CellResult], flagged: bool) -> WorstPoint | None:
    """The largest layer gradient change / DRT over the cells' η > 0, layers and checkpoints that rule "flag"
    marks (``flagged``) or leaves unmarked; None where there is no finite one."""
    worst: tuple | None = None
    for r in (r for r in cells if r.measured):
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = r.gradient[:, 1:, :] / r.drt[1:, None]  # (k, e − 1, l)
        for k, f in enumerate(r.flags):
            if bool(f) == flagged and np.isfinite(ratio[k]).any():
                e, layer = np.unravel_index(np.nanargmax(ratio[k]), ratio[k].shape)
                if worst is None or ratio[k, e, layer] > worst[0]:
                    worst = (float(ratio[k, e, layer]), r, k, int(e) + 1, int(layer))
    if worst is None:
        return None
    factor, r, k, e, layer = worst
    t = r.config.training
    probes = np.array([r.gradient[k, i, layer] / r.drt[i] for i in (r.at_eta(p) for p in PROBES)])
    return WorstPoint(t.depth, t.residual, t.seed, int(r.step[k]), layer + 1, float(r.eta[e]), factor, r.flags[k],
                      probes)  # fmt: skip


@dataclass(frozen=True)
class BoundClaims:
    """DRT with constant 1 (the worst layer gradient change / DRT over nets, seeds, unflagged checkpoints, layers
    and η > 0 — where it sits in ``drt_worst``, the worst over flagged checkpoints apart in ``drt_flagged``) and
    the Lipschitz-smooth model at the end of training (worst median measured/predicted over nets and η > 0), for
    one optimiser."""

    optimizer: str
    drt: Verdict
    lipschitz: Verdict
    drt_worst: WorstPoint | None = None
    drt_flagged: WorstPoint | None = None
    # the Lipschitz-smooth model with the largest sharpness along the slice (worst median measured/predicted over
    # nets and the probe η); None without the sharpness along the slice
    lipschitz_along: Verdict | None = None
    lipschitz_at: str = ""  # where the worst Lipschitz factor (λ at the point) sits: the net and η


def net_summary(sel: list[CellResult], optimizer: str, depth: int, residual: bool) -> NetSummary:
    measured = [r for r in sel if r.measured]
    common: dict[str, Any] = dict(
        optimizer=optimizer, depth=depth, residual=residual, lr=sel[0].config.training.lr, seeds=len(measured)
    )
    acc = rules.spread([r.final_train_acc for r in sel])
    if not measured:
        return NetSummary(**common, final_train_acc=acc)
    first = measured[0]
    probes = [[r.at_eta(e) for e in PROBES] for r in measured]
    normed = all(r.gradient_norm.size for r in measured)
    along = all(r.sharpness_along.size and np.isfinite(r.sharpness_along[-1]).all() for r in measured)
    lipschitz = [lipschitz_end(r) for r in measured] if along else []
    return NetSummary(
        **common,
        final_train_acc=acc,
        eta=first.eta,
        checkpoint_epoch=np.asarray(first.checkpoint_epoch),
        checkpoint_step=np.asarray(first.step),
        steps_per_epoch=int(round(first.step[-1] / first.checkpoint_epoch[-1])),
        drt=first.drt,
        loss_change=rules.median([r.loss - r.loss[:, :1] for r in measured], axis=0),
        gradient_first=rules.median([r.gradient[:, :, 0] for r in measured], axis=0),
        gradient_end=rules.spread([r.gradient[-1, :, 0] for r in measured]),
        lipschitz_first=rules.median([r.lipschitz_first for r in measured], axis=0),
        probe=rules.spread([r.gradient[:, p, 0] for r, p in zip(measured, probes)]),
        gradient_norm_first=rules.spread([r.gradient_norm[:, 0] for r in measured]) if normed else None,
        probe_initial=rules.spread([r.gradient_over_initial[:, p, 0] for r, p in zip(measured, probes)])
        if normed
        else None,
        zero_loss=np.sum([[f == "zero loss" for f in r.flags] for r in measured], axis=0),
        at_chance=np.sum([[f == "at chance" for f in r.flags] for r in measured], axis=0),
        c_eff_first=rules.spread([r.c_eff_first for r in measured]),
        lipschitz_ratio_end=rules.median([r.gradient[-1, 1:, 0] / r.lipschitz_first[-1, 1:] for r in measured], axis=0),
        lipschitz_constants=rules.spread([c for c, _ in lipschitz]) if along else None,
        lipschitz_ratios=rules.spread([q for _, q in lipschitz]) if along else None,
    )


def layer1_at(r: CellResult, eta: float, checkpoint: int) -> float:
    """Layer 1's relative gradient change of cell ``r`` at the probe ``eta`` (one of PROBES) and a checkpoint."""
    return float(r.gradient[checkpoint, r.at_eta(PROBES[PROBES.index(eta)]), 0])


def probe_values(result: StudyBreakdownResult, optimizer: str, depth: int, eta: float, checkpoint: int):
    """Layer 1's change at the probe ``eta`` and a checkpoint (0: init, −1: the end), one value per measured seed
    that rule "flag" leaves in (a memorised or untrained net's ratio measures its loss, not the geometry)."""
    kept = [r for r in result.select(optimizer, depth) if r.measured and not r.flags[checkpoint]]
    return rules.finite([layer1_at(r, eta, checkpoint) for r in kept])


def flagged_seeds(result: StudyBreakdownResult, optimizer: str, depth: int) -> int:
    """How many measured seeds of the net rule "flag" marks at the end of training."""
    return sum(bool(r.flags[-1]) for r in result.select(optimizer, depth) if r.measured)


def probe_pairs(result: StudyBreakdownResult, optimizer: str, depth: int, eta: float) -> np.ndarray:
    """(2, seeds) layer 1's change at the probe ``eta`` at initialisation and the end, for the measured seeds whose
    end rule "flag" leaves in (the pairs of the paired growth test)."""
    kept = [r for r in result.select(optimizer, depth) if r.measured and not r.flags[-1]]
    return np.array([[layer1_at(r, eta, k) for r in kept] for k in (0, -1)]).reshape(2, len(kept))


def _median_accuracy(result: StudyBreakdownResult, optimizer: str, depth: int) -> float:
    """The net's median final training accuracy over seeds (its :class:`NetSummary`'s)."""
    net = result.net(optimizer, depth)
    assert net is not None, "a depth claim's nets have cells"
    return float(net.final_train_acc.median)


def depth_claims(result: StudyBreakdownResult) -> tuple[DepthClaim, ...]:
    """Depth 16 (the paper's) and the deepest net against the shallowest, per optimiser, at η = 0.05, by rule
    "compare" (Welch on log values; the growth paired by seed), Holm-corrected across the study's claims (the
    initialisation claim, the same nets for every optimiser, counted once per pair of depths)."""
    c, raw = result.config, []
    shallow = min(c.depths)
    for optimizer in c.optimizers:
        for deep in sorted({d for d in (16, max(c.depths)) if d in c.depths and d > shallow}):
            at = {(d, k): probe_values(result, optimizer, d, 0.05, k) for d in (shallow, deep) for k in (0, -1)}
            if at[shallow, 0].size == 0 or at[deep, 0].size == 0:
                continue
            end = at[shallow, -1].size and at[deep, -1].size
            pairs = probe_pairs(result, optimizer, deep, 0.05)
            raw.append(
                DepthClaim(
                    optimizer,
                    shallow,
                    deep,
                    rules.compare(at[deep, -1], at[shallow, -1]) if end else rules.unjudged(),
                    rules.compare(pairs[1], pairs[0], paired=True) if pairs.size else rules.unjudged(),
                    rules.compare(at[deep, 0], at[shallow, 0]),
                    flagged_seeds(result, optimizer, shallow),
                    flagged_seeds(result, optimizer, deep),
                    _median_accuracy(result, optimizer, shallow),
                    _median_accuracy(result, optimizer, deep),
                )
            )
    initial = {(d.shallow, d.deep): d.initial for d in raw}  # one per pair of depths
    tested = rules.holm([v for d in raw for v in (d.separation, d.growth)] + list(initial.values()))
    adjusted_initial = dict(zip(initial, tested[2 * len(raw) :]))
    return tuple(
        replace(d, separation=tested[2 * i], growth=tested[2 * i + 1], initial=adjusted_initial[d.shallow, d.deep])
        for i, d in enumerate(raw)
    )


@dataclass(frozen=True)
class DepthExponent:
    """How fast layer 1's gradient change at η = 0.05 grows with depth (a reviewer's question): per seed the
    least-squares slope b of ``ln r = a + b·L`` over the plain (not residual) depths that seed has unflagged, then
    the mean of b over seeds with its 95 % t-interval; ``e^b`` is the factor per layer."""

    optimizer: str
    checkpoint: str  # "initialisation" or "end"
    depths: tuple[int, ...]
    slope: MeanCI  # b per layer, over seeds


def depth_exponents(result: StudyBreakdownResult) -> tuple[DepthExponent, ...]:
    """:class:`DepthExponent` per optimiser at initialisation and the end (seeds with fewer than three of the
    study's plain depths unflagged are left out: two points fit any line)."""
    out = []
    depths = sorted({d for d, residual in result.config.nets if not residual})
    for optimizer in result.config.optimizers:
        for k, tag in ((0, "initialisation"), (-1, "end")):
            per_seed: dict[int, list[tuple[int, float]]] = {}
            for d in depths:
                for r in result.select(optimizer, d):
                    change = layer1_at(r, 0.05, k) if r.measured and not r.flags[k] else np.nan
                    if np.isfinite(change) and change > 0:
                        per_seed.setdefault(r.config.training.seed, []).append((d, float(change)))
            slopes = [np.polyfit([d for d, _ in p], np.log([v for _, v in p]), 1)[0]
                      for p in per_seed.values() if len(p) >= 3]  # fmt: skip
            if slopes:
                out.append(DepthExponent(optimizer, tag, tuple(depths), estimate.mean_ci(slopes)))
    return tuple(out)


def bound_claims(result: StudyBreakdownResult) -> tuple[BoundClaims, ...]:
    out = []
    for optimizer in result.config.optimizers:
        nets = [n for n in result.nets or () if n.optimizer == optimizer and n.seeds]
        if not nets:
            continue
        seeds = min(n.seeds for n in nets)
        cells = [r for n in nets for r in result.select(optimizer, n.depth, n.residual)]
        kept, flagged = worst_point(cells, flagged=False), worst_point(cells, flagged=True)
        lip, lip_at = 0.0, ""
        unit = "B" if result.config.model == "transformer" else "L"  # a transformer's depth: its blocks
        for n in nets:  # the worst median measured/predicted and where it sits
            ratios = np.where(np.isfinite(n.lipschitz_ratio_end), n.lipschitz_ratio_end, -np.inf)
            if ratios.size and ratios.max() > lip:
                lip, lip_at = (
                    float(ratios.max()),
                    f"{unit}={n.depth}{'r' if n.residual else ''} η={n.eta[1 + ratios.argmax()]:g}",
                )
        drt = rules.bound(kept.factor, seeds) if kept else rules.unjudged()
        along = [n.lipschitz_ratios.median[1] for n in nets if n.lipschitz_ratios is not None]
        lip_along = rules.bound(float(np.nanmax(along)), seeds) if len(along) == len(nets) else None
        out.append(BoundClaims(optimizer, drt, rules.bound(lip, seeds), kept, flagged, lip_along, lip_at))
    return tuple(out)
