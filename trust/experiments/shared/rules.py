"""How verdicts are decided: every threshold a verdict uses, named once with why that value, and the functions that
apply a rule to measured numbers and return a :class:`~trust.base.schema.Verdict` (docs/theory.md §9, "How
verdicts are decided"). Views render verdicts; only these functions decide them."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from trust.base.schema import Spread, Verdict
from trust.core import estimate

# A bound "with constant 1" (DRT, the Lipschitz-smooth prediction, Theorem 1) is violated where measured/bound
# exceeds 1: the assumption's own statement, so no other threshold is defensible.
BOUND = 1.0
# Our number and the paper's "agree in order of magnitude" when |log10(ours/paper)| ≤ 1: the paper's published
# values are read off log-scale curves that span four to six decades, so a decade is the resolution we can claim.
SAME_ORDER_DECADES = 1.0

RULES = {
    "bound": f"measured/bound ≤ {BOUND:g} on every point: holds; else violated ×(worst measured/bound)",
    "theorem": "zero violations beyond the stated rounding allowance: holds (vacuous where the median measured/bound "
    "≤ 1e-08: the bound says nothing about the measurement there); any: VIOLATED",
    "same_order": f"|log10(ours/paper)| ≤ {SAME_ORDER_DECADES:g} at every probe η: same order of magnitude",
    "within_runs": "our seeds' range meets the range of the authors' runs at every entry: within their runs; else "
    "the factor our median is off the nearest of theirs",
    "chosen": "the sweep's learning rate with the lowest final training loss (a measurement, no threshold)",
    "measured": "a measurement reported as it is (no threshold)",
}


# A theorem that holds with a median measured/bound of 10⁻⁸ or less holds *vacuously*: eight decades between the
# measurement and the bound is further than float32's whole precision, so the bound constrains nothing there.
VACUOUS = 1e-8


def theorem(violations: int, median_ratio: float, worst_ratio: float, cases: int) -> Verdict:
    """Rule "theorem": "VIOLATED" on any violation, else "holds" — "holds, vacuous" where the median measured/bound
    is at most :data:`VACUOUS`. The statistic is the number of violations, the effect the median ratio."""
    outcome = "VIOLATED" if violations else "holds, vacuous" if median_ratio <= VACUOUS else "holds"
    return Verdict("theorem", outcome, violations, 0, median_ratio, cases, median_ratio, worst_ratio)


def finite(values) -> np.ndarray:
    """The finite entries of ``values`` as a flat float array (NaN: a dead or diverged seed)."""
    values = np.asarray(values, dtype=float).ravel()
    return values[np.isfinite(values)]


def finite_median(values) -> float:
    """The median of the finite values (a diverged run's ±inf and NaN left out); NaN when there are none."""
    v = finite(values)
    return float(np.median(v)) if v.size else float("nan")


def median(values, axis=None):
    """The median over seeds, NaN left out; NaN where nothing is left."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN is the answer
        return np.nanmedian(np.asarray(values, dtype=float), axis=axis)


def spread(values) -> Spread:
    """Median and range over seeds (the first axis of ``values``), entry by entry, NaN left out."""
    values = np.asarray(values, dtype=float)
    if values.shape[0] == 0:  # no seed at all
        nan = np.full(values.shape[1:], np.nan)
        return Spread(nan, nan, nan, np.zeros(values.shape[1:], dtype=int))
    finite_count = np.isfinite(values).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN entries: NaN is the answer
        low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    return Spread(median(values, axis=0), np.asarray(low), np.asarray(high), np.asarray(finite_count))


# An ordering claim — depth 16 against depth 2, the end of training against its start, one optimiser against
# another — is decided by a two-sided t-test on the log values (the measurements are ratios spread over
# decades, so their logs are the scale on which a mean and a t-interval mean something): Welch's for two sets of
# seeds, the one-sample test of the per-seed log ratios where the same seeds are measured twice (paired). α = 0.05
# after Holm's correction across the claims of one table (:func:`holm`), which keeps the chance of any false
# ordering in the table at 5 %. At least 5 finite seeds a side: fewer cannot estimate a spread (and a sign test on 5
# cannot reach α: its smallest two-sided p is 0.0625). The effect is the ratio of geometric means with its 95 %
# t-interval (unadjusted).
ALPHA = 0.05
MIN_SEEDS = 5
RULES["compare"] = (
    f"two-sided t-test on log values (Welch's; paired seeds: one-sample on the log ratios), at least {MIN_SEEDS} "
    f"seeds a side, α = {ALPHA:g} after Holm's correction across the claims of one table: 'above' or 'below' when "
    "the adjusted p < α, else 'not separated' ('too few seeds' under the minimum); the effect is the ratio of "
    "geometric means with its 95 % t-interval"
)


def compare(a, b, paired: bool = False) -> Verdict:
    """Rule "compare" for one claim "``a`` above ``b``", before Holm's correction (:func:`holm`): the statistic is
    the two-sided p-value, the effect the ratio of geometric means, ``[low, high]`` its 95 % t-interval. Values that
    are not finite and positive are left out (paired: the seed's pair)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok_a, ok_b = np.isfinite(a) & (a > 0), np.isfinite(b) & (b > 0)
    if paired:
        keep = ok_a & ok_b
        la, lb = np.log(a[keep]), np.log(b[keep])
        diffs, n = la - lb, int(keep.sum())
    else:
        la, lb = np.log(a[ok_a]), np.log(b[ok_b])
        n = int(min(la.size, lb.size))
    nan = float("nan")
    if n == 0:
        return Verdict("compare", "too few seeds", nan, ALPHA, nan, 0, nan, nan)
    shift = float(np.mean(diffs) if paired else np.mean(la) - np.mean(lb))
    if n < MIN_SEEDS:
        return Verdict("compare", "too few seeds", nan, ALPHA, float(np.exp(shift)), n, nan, nan)
    spread = np.std(diffs, ddof=1) if paired else max(np.std(la, ddof=1), np.std(lb, ddof=1))
    if spread == 0:  # no spread at all: the sign of the shift is certain, or there is none
        p, ci = (0.0 if shift else 1.0), (shift, shift)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # one side without spread: Welch is still defined
            res = stats.ttest_1samp(diffs, 0.0) if paired else stats.ttest_ind(la, lb, equal_var=False)
        p, interval = float(res.pvalue), res.confidence_interval(0.95)
        ci = (float(interval.low), float(interval.high))
    return Verdict("compare", _side(p, shift), p, ALPHA, float(np.exp(shift)), n, *np.exp(ci))


def _side(p: float, shift: float) -> str:
    if not p < ALPHA:
        return "not separated"
    return "above" if shift > 0 else "below"


def holm(verdicts: list[Verdict]) -> list[Verdict]:
    """Holm's step-down correction of the "compare" verdicts among ``verdicts`` (one table's claims): the i-th
    smallest of m p-values becomes max over j ≤ i of min(1, (m − j + 1)·p_(j)), and each outcome is decided again
    on it; other verdicts pass unchanged."""
    tested = [i for i, v in enumerate(verdicts) if v.rule == "compare" and np.isfinite(v.statistic)]
    order = sorted(tested, key=lambda i: verdicts[i].statistic)
    out, running, m = list(verdicts), 0.0, len(order)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * verdicts[i].statistic))
        v = verdicts[i]
        out[i] = replace(v, statistic=running, outcome=_side(running, np.log(v.effect)))
    return out


def within_runs(ours: Spread, low, high) -> np.ndarray:
    """Per entry, 1 where our seeds' range ``[ours.low, ours.high]`` meets another's runs' ``[low, high]``, else our
    median over the nearest of theirs (rule "within_runs"); NaN where no seed is finite."""
    meets = (ours.high >= low) & (ours.low <= high)
    nearest = np.where(ours.median > high, high, low)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(meets, 1.0, ours.median / nearest)


def within_runs_verdict(factor: np.ndarray, seeds: int) -> Verdict:
    """ "within their runs" when every entry's range meets theirs; else the factor farthest from 1 (rule
    "within_runs")."""
    finite = factor[np.isfinite(factor)]
    worst = float(finite[np.argmax(np.abs(np.log(finite)))]) if finite.size else float("nan")
    outcome = "within their runs" if finite.size and np.all(finite == 1) else "outside their runs"
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (float("nan"), float("nan"))
    return Verdict("within_runs", outcome, worst, 1.0, worst, seeds, low, high)


def bound(worst: float, seeds: int) -> Verdict:
    """An assumption's bound with constant 1 from its worst measured/bound ("bound")."""
    return Verdict("bound", "holds" if worst <= BOUND else "violated", worst, BOUND, worst, seeds, worst, worst)


def same_order(log10_orders, seeds: int) -> Verdict:
    """Our values against the paper's at each probe, as log10(ours/paper) ("same_order"); the effect is the order of
    the largest disagreement, with its sign."""
    orders = np.asarray(log10_orders, dtype=float)
    worst = float(orders[np.argmax(np.abs(orders))])
    outcome = "same order" if abs(worst) <= SAME_ORDER_DECADES else "differs"
    return Verdict("same_order", outcome, abs(worst), SAME_ORDER_DECADES, worst, seeds, orders.min(), orders.max())


# The spectral geometry "explains" the paper's effective constant when C_eff measured in spectral sizes is at most
# 1.5 at every checkpoint (the bound then within 50 % of the worst measured change: "≈ 1"), and "partly" explains it
# when spectral sizes shrink C_eff at least ×2 at every checkpoint (a change of the constant, not of its last digit).
EXPLAINED_C_EFF = 1.5
PARTLY_SHRINK = 2.0
RULES["explains"] = (
    f"C_eff in spectral sizes ≤ {EXPLAINED_C_EFF:g} at every checkpoint: explained; else shrunk ≥ ×{PARTLY_SHRINK:g} "
    "at every checkpoint: partly; else not explained"
)
RULES["tightest"] = "the geometry whose worst measured/bound is nearest 1 in log (a measurement, no threshold)"
RULES["interval"] = "the prediction inside the 95 % Student-t interval over seeds: consistent"


def explains(frobenius, spectral) -> Verdict:
    """Does measuring the step in spectral sizes bring C_eff to ≈ 1 ("explains")? Per checkpoint medians."""
    frobenius, spectral = np.asarray(frobenius, dtype=float), np.asarray(spectral, dtype=float)
    shrink = frobenius / spectral
    if np.all(spectral <= EXPLAINED_C_EFF):
        outcome = "explained"
    elif np.all(shrink >= PARTLY_SHRINK):
        outcome = "partly"
    else:
        outcome = "not explained"
    return Verdict(
        "explains", outcome, float(spectral.max()), EXPLAINED_C_EFF, float(shrink.min()), 0, spectral.min(),
        spectral.max(),
    )  # fmt: skip


def inside_interval(predicted: float, mean: float, half_width: float) -> bool:
    """Is ``predicted`` inside ``mean ± half_width`` ("interval")? Without an interval (one seed) only an exact hit."""
    return abs(mean - predicted) <= (half_width if np.isfinite(half_width) else 0.0)


def interval(predicted: float, mean: float, half_width: float, n: int) -> Verdict:
    """Rule "interval" as a verdict: "consistent" when ``predicted`` lies inside ``mean ± half_width`` (the 95 %
    Student-t interval over ``n`` samples), else "outside the 95 % CI"; the statistic is the distance."""
    outcome = "consistent" if inside_interval(predicted, mean, half_width) else "outside the 95 % CI"
    return Verdict("interval", outcome, abs(mean - predicted), half_width, mean, n, mean - half_width,
                   mean + half_width)  # fmt: skip


def finite_mean(values) -> float:
    """The mean of the finite values; NaN (without a warning) when there are none."""
    v = finite(values)
    return float(np.mean(v)) if v.size else float("nan")


# Where training stops along a depth grid is located to within ±2 layers when the last depth that trains and the
# first depth from which none deeper does are at most 4 layers apart: the paper's own grid steps by 5 beyond 10
# layers, so ±2 is the finest resolution a comparison with it can use.
STOP_RESOLUTION = 2
RULES["stop"] = (
    "per seed, the last depth whose training accuracy reaches the threshold and the first depth from which no deeper "
    "one does (a non-monotone curve or a plateau does not move it); every seed stops: stops at the median of the "
    f"latter, located when the two are at most {2 * STOP_RESOLUTION} layers apart (±{STOP_RESOLUTION}); else "
    "trains to the deepest net in the seeds that never stop"
)


@dataclass(frozen=True)
class Transition:
    """Where one accuracy-against-depth curve stops training (rule "stop"): the first depth below the threshold,
    the last depth at or above it, and the first depth from which every deeper one is below it (None: the
    deepest trains). A curve is monotone when its first failure is that last transition."""

    first_fail: int | None
    last_trains: int | None
    first_never: int | None

    @property
    def monotone(self) -> bool:
        return self.first_fail == self.first_never

    @property
    def gap(self) -> float:
        """Layers between the last depth that trains and the first from which none does (inf: unbracketed)."""
        if self.first_never is None or self.last_trains is None:
            return float("inf")
        return float(self.first_never - self.last_trains)


def transition(depths, accuracies, threshold: float) -> Transition:
    """The :class:`Transition` of accuracies over increasing ``depths`` (NaN counts as not training)."""
    trains = [bool(a >= threshold) for a in np.asarray(accuracies, dtype=float)]
    first_fail = next((d for d, t in zip(depths, trains) if not t), None)
    last = max((k for k, t in enumerate(trains) if t), default=None)
    first_never = depths[0] if last is None else depths[last + 1] if last + 1 < len(depths) else None
    return Transition(first_fail, None if last is None else int(depths[last]), first_never)


def stop_depth(transitions, threshold: float) -> Verdict:
    """Where an optimiser stops training over seeds ("stop"), from each seed's :class:`Transition`: the statistic
    is the median first depth from which none deeper trains, its range over seeds in ``low``/``high``, and the
    ``effect`` the widest gap to the last depth that trains (located when ≤ 2·STOP_RESOLUTION)."""
    stops = [t.first_never for t in transitions]
    if all(s is not None for s in stops):
        gap = max(t.gap for t in transitions)
        outcome = "stops" if gap <= 2 * STOP_RESOLUTION else "stops, not located"
        return Verdict("stop", outcome, float(np.median(stops)), threshold, gap, len(stops), min(stops), max(stops))
    nan = float("nan")
    trains = sum(s is None for s in stops)
    return Verdict("stop", "trains", trains, threshold, trains, len(stops), nan, nan)


RULES["moved"] = (
    "two settings' stop depths (rule stop, every seed of both stopping): moved deeper or shallower when their ranges "
    f"over seeds, each widened by its ±{STOP_RESOLUTION} layers, do not meet (more than {2 * STOP_RESOLUTION} layers "
    "apart); else not moved; not comparable where a seed of either never stops, or trains at no depth of its grid "
    "(its stop is then at or before the grid's shallowest depth, not located)"
)


def _moved_outcome(gap: float, shift: float) -> str:
    """Rule "moved" on the gap between two settings' stop-depth ranges and the shift of their medians."""
    if not np.isfinite(gap):
        return "not comparable"
    return "not moved" if gap <= 2 * STOP_RESOLUTION else ("deeper" if shift > 0 else "shallower")


def moved(a: Verdict, b: Verdict) -> Verdict:
    """Whether the stop depth of setting ``a`` moved from that of ``b`` (rule "moved"; both rule-"stop" verdicts):
    the statistic is the gap in layers between their ranges over seeds (negative where they overlap; NaN where a
    seed trains to the deepest net or at no depth — its gap to the last depth that trains infinite — so there is no
    located stop to compare), the effect the difference of their median stop depths, ``low``/``high`` ``a``'s range."""
    stops = all(np.isfinite(v.low) and np.isfinite(v.effect) for v in (a, b))
    gap = float(max(a.low - b.high, b.low - a.high)) if stops else float("nan")
    shift = float(a.statistic - b.statistic) if stops else float("nan")
    return Verdict("moved", _moved_outcome(gap, shift), gap, 2 * STOP_RESOLUTION, shift, min(a.seeds, b.seeds),
                   a.low, a.high)  # fmt: skip


# A checkpoint is flagged where the relative gradient change ‖Δg_l‖/‖g_l‖ measures the loss, not the geometry:
# "zero loss" when the mean training cross-entropy is at most 10⁻³ nats (every example's probability ≈ 0.999: the
# net has memorised its data and its gradient all but vanished, so the ratio divides by almost nothing); "at chance"
# when, after training started, the training accuracy is at most 1.5× chance (0.15 with 10 classes: the net did
# not train, or died). Flagged checkpoints are reported apart and kept out of the "breakdown grows" verdicts.
ZERO_LOSS = 1e-3
CHANCE_FACTOR = 1.5
RULES["flag"] = (
    f"a checkpoint is 'zero loss' when its training loss ≤ {ZERO_LOSS:g} nats, 'at chance' when after training "
    f"started its training accuracy ≤ {CHANCE_FACTOR:g}× chance; flagged seeds are kept out of the growth and "
    "depth verdicts and reported apart"
)


def at_chance(train_acc, chance: float):
    """Rule "flag"'s accuracy test: training accuracy at most CHANCE_FACTOR× chance (elementwise on arrays)."""
    return train_acc <= CHANCE_FACTOR * chance


def flag(train_loss: float, train_acc: float, chance: float, trained: bool) -> str:
    """Rule "flag" for one checkpoint: "zero loss", "at chance" (only once training started: a net at
    initialisation is at chance by construction) or ""."""
    if train_loss <= ZERO_LOSS:
        return "zero loss"
    if trained and at_chance(train_acc, chance):
        return "at chance"
    return ""


# Two nets are "trained alike" when their median final training accuracies are within 0.1 of each other (a tenth of
# the range, well above the 1–2 points seeds of one net differ by); otherwise a depth ordering after training
# compares a trained net with a less trained one, and its row says so.
TRAINED_ALIKE = 0.1


def trained_alike(accuracy_a: float, accuracy_b: float) -> bool:
    """Whether two nets' median final training accuracies lie within :data:`TRAINED_ALIKE` of each other."""
    return bool(abs(accuracy_a - accuracy_b) <= TRAINED_ALIKE)


def unjudged() -> Verdict:
    """The verdict of a claim every seed of whose one side rule "flag" left out."""
    nan = float("nan")
    return Verdict("flag", "not judged: every seed flagged", nan, nan, nan, 0, nan, nan)


# A run is near-stationary at the end when its full-batch gradient norm fell below a tenth of its peak and its
# training loss moved less than 5 % in the last epoch: an order of magnitude is the least fall that says "the
# gradient went away", and 5 % the loss change an epoch of a converging run makes at its plateau.
STATIONARY_GRADIENT = 0.1
STATIONARY_LOSS = 0.05
# Learning-rate robustness: the rates within twice each optimiser's best test error, ranked only among
# optimisers whose best error is at most 10 % (robustness around a poor best is no robustness).
ROBUST_FACTOR = 2.0
ROBUST_BEST = 0.1
# Low precision: the fewest bits whose median accuracy is within 1 point of the most bits tried.
BITS_POINTS = 1.0
RULES.update(
    stationary=f"every seed: ‖∇ℒ‖ end/peak < {STATIONARY_GRADIENT:g} and the last epoch's loss change < "
    f"{STATIONARY_LOSS:g}: near-stationary",
    widest=f"the optimiser with the most decades of rates within ×{ROBUST_FACTOR:g} of its best test error, among "
    f"those whose best error ≤ {ROBUST_BEST:g}",
    bits=f"the fewest bits whose median accuracy is within {BITS_POINTS:g} point of the most bits tried",
    best="the setting with the highest median accuracy (a measurement)",
    better="the setting with the higher median accuracy (a measurement)",
)


def stationary(gradient_worst: float, loss_change_worst: float, seeds: int) -> Verdict:
    """Is the end of training near-stationary in every seed ("stationary")?"""
    ok = gradient_worst < STATIONARY_GRADIENT and loss_change_worst < STATIONARY_LOSS
    return Verdict("stationary", "near-stationary" if ok else "not stationary", gradient_worst, STATIONARY_GRADIENT,
                   loss_change_worst, seeds, gradient_worst, loss_change_worst)  # fmt: skip


def widest(decades: dict[str, float], best_error: dict[str, float], seeds: int) -> Verdict:
    """The optimiser robust over the widest range of rates among those that reach ROBUST_BEST ("widest")."""
    good = {o: w for o, w in decades.items() if best_error[o] <= ROBUST_BEST}
    if not good:
        return Verdict("widest", "none", float("nan"), ROBUST_BEST, float("nan"), seeds, float("nan"), float("nan"))
    top = max(good, key=good.__getitem__)
    return Verdict("widest", top, good[top], ROBUST_BEST, good[top], seeds, min(good.values()), good[top])


def enough_bits(accuracy: dict[int, float], seeds: int) -> Verdict:
    """The fewest bits within BITS_POINTS of the most bits ("bits"); ``accuracy``: median accuracy (%) per bits."""
    top = accuracy[max(accuracy)]
    within = [b for b, a in accuracy.items() if a >= top - BITS_POINTS]
    if not within:  # no finite accuracy at the most bits
        nan = float("nan")
        return Verdict("bits", "none", nan, BITS_POINTS, nan, seeds, nan, top)
    enough = min(within)
    return Verdict("bits", "enough", enough, BITS_POINTS, enough, seeds, accuracy[enough], top)


# The Lipschitz-smooth model's gradient change is "linear in ‖ΔW‖" when measured/linear prediction lies within a
# factor 2 either way at the probe η, for layer 1 and for all layers together (λ is fitted at the smallest η, so
# the ratio is 1 there by construction; a factor 2 is far outside the grid's own resolution).
LINEAR_FACTOR = 2.0
# An identity holds to floating-point rounding: the exact homogeneous case runs in float64, where a relative gap
# above 1e-3 can only be a wrong formula, never rounding.
IDENTITY_GAP = 1e-3
RULES.update(
    linear=f"measured/linear prediction within ×{LINEAR_FACTOR:g} either way (layer 1 and all layers): linear",
    identity=f"largest relative gap to the closed form < {IDENTITY_GAP:g}: holds (an identity, float64)",
)


def linear(first: float, total: float) -> Verdict:
    """Is the gradient change linear in ‖ΔW‖, as the Lipschitz-smooth model has it ("linear")?"""
    ratios = (first, total)
    ok = all(1 / LINEAR_FACTOR <= x <= LINEAR_FACTOR for x in ratios)
    worst = max(ratios, key=lambda x: abs(np.log(x)) if x > 0 else np.inf)
    return Verdict("linear", "linear" if ok else "not linear", worst, LINEAR_FACTOR, worst, 1, min(ratios), max(ratios))


# Below this log-log slope at small η a relative gradient change is sub-linear in η: no smooth shape (both the DRT
# and the Lipschitz shape have slope ≥ 1) can fit it — the gradient jumps (relu kinks).
JUMPS = 0.8
RULES["shape"] = (
    f"the shape (DRT or Lipschitz) whose RMS log-residual is ≤ {estimate.GOOD_FIT:.3g} and under half the other's; "
    f"'both fit' when both are within it and within twice (or {estimate.SAME_FIT:.3g} of) each other; 'neither' "
    f"else ('neither: jumps at small η' where the log-log slope at small η is under {JUMPS:g})"
)


def shape(drt_rms: float, lipschitz_rms: float, slope_small: float) -> Verdict:
    """Rule "shape" for one group of layers (:func:`trust.core.estimate.shape_verdict` on the two fits' RMS
    log-residuals, and the jumps at small η); the statistic is the DRT fit's residual, the effect the Lipschitz's."""
    outcome = estimate.shape_verdict(estimate.ShapeFit(np.nan, drt_rms, np.nan),
                                     estimate.ShapeFit(np.nan, lipschitz_rms, np.nan))  # fmt: skip
    if outcome == "neither" and slope_small < JUMPS:
        outcome = "neither: jumps at small η"
    return Verdict("shape", outcome, drt_rms, estimate.GOOD_FIT, lipschitz_rms, 1, slope_small, slope_small)


# A run "drops late" when its final test accuracy (median over seeds) is more than 5 points below the median of
# its best epochs: 5 points is several times the seeds' spread of a run that ends where it peaked (≤ 1 point here).
LATE_DROP_POINTS = 5.0
RULES["late_drop"] = f"final test accuracy more than {LATE_DROP_POINTS:g} points below the best epoch's (medians)"


def late_drop(final: float, best: float, seeds: int) -> Verdict:
    """Rule "late_drop": "drops late" when the final accuracy (%) is LATE_DROP_POINTS below the best epoch's."""
    drop = best - final
    outcome = "drops late" if drop > LATE_DROP_POINTS else "ends near its best"
    return Verdict("late_drop", outcome, drop, LATE_DROP_POINTS, drop, seeds, final, best)


RULES["every_point"] = "a prediction checked point by point: holds when it fails at no point; else fails at k of n"


def every_point(fails: int, points: int, unclear: int = 0) -> Verdict:
    """Rule "every_point": "holds" when the prediction fails at none of ``points`` (``unclear``: points the grid
    cannot decide, shown beside), else "fails"; the statistic is the count of failures."""
    outcome = "holds" if fails == 0 else "fails"
    return Verdict("every_point", outcome, fails, 0, unclear, points, fails, fails)


def identity(gap: float) -> Verdict:
    """Does a closed form hold to rounding ("identity")? ``gap``: the largest relative gap measured."""
    outcome = "identity (holds to rounding)" if gap < IDENTITY_GAP else "VIOLATED"
    return Verdict("identity", outcome, gap, IDENTITY_GAP, gap, 1, gap, gap)


def decide(v: Verdict) -> str:
    """The outcome ``v``'s rule gives on ``v``'s own stored numbers: a stored verdict is checked against its rule
    by deciding it again (tests/test_rules.py, REPORT rows). Rules that pick among settings ("best", "widest",
    "bits", …) or only report ("measured") keep their stored outcome: one verdict does not hold what they compared.
    Where a verdict keeps every input of its rule, the rule's own function decides it again."""
    nan_safe = np.nan_to_num
    match v.rule:
        case "compare":
            if v.seeds < MIN_SEEDS or not np.isfinite(v.statistic):
                return "too few seeds"
            return _side(v.statistic, float(np.log(v.effect)))
        case "theorem":
            return theorem(int(v.statistic), v.effect, v.high, v.seeds).outcome
        case "shape":
            return shape(v.statistic, v.effect, v.low).outcome
        case "late_drop":
            return late_drop(v.low, v.high, v.seeds).outcome
        case "every_point":
            return every_point(int(v.statistic), v.seeds, int(v.effect)).outcome
        case "identity":
            return identity(v.statistic).outcome
        case "bound":
            return bound(v.statistic, v.seeds).outcome
        case "same_order":
            return "same order" if v.statistic <= v.threshold else "differs"
        case "linear":
            return linear(v.low, v.high).outcome
        case "stationary":
            return stationary(v.statistic, v.effect, v.seeds).outcome
        case "within_runs":
            return "within their runs" if v.low == v.high == 1.0 else "outside their runs"
        case "interval":
            return "consistent" if v.statistic <= np.nan_to_num(v.threshold, nan=0.0) else "outside the 95 % CI"
        case "explains":
            if v.statistic <= v.threshold:
                return "explained"
            return "partly" if v.effect >= PARTLY_SHRINK else "not explained"
        case "moved":
            return _moved_outcome(v.statistic, v.effect)
        case "stop":
            if not np.isfinite(v.low):
                return "trains"
            return "stops" if nan_safe(v.effect, nan=np.inf) <= 2 * STOP_RESOLUTION else "stops, not located"
    return v.outcome
