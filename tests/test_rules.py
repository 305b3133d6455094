"""The verdict rules against closed forms: rule "compare" (a two-sided t-test on log values) against the t statistic
written out by hand, and Holm's correction against a worked example."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from trust.base.schema import Verdict
from trust.experiments.shared import rules


def welch_by_hand(a, b):
    """Welch's t on log values from its definition: t = Δ/√(s²_a/n_a + s²_b/n_b), Welch–Satterthwaite degrees of
    freedom, two-sided p from Student's t, and the 95 % interval Δ ± t*·se."""
    la, lb = np.log(a), np.log(b)
    va, vb = la.var(ddof=1) / la.size, lb.var(ddof=1) / lb.size
    shift, se = la.mean() - lb.mean(), np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (la.size - 1) + vb**2 / (lb.size - 1))
    p = 2 * stats.t.sf(abs(shift / se), df)
    half = stats.t.ppf(0.975, df) * se
    return p, np.exp(shift), np.exp(shift - half), np.exp(shift + half)


def test_compare_is_welchs_t_test_on_log_values():
    rng = np.random.default_rng(0)
    a, b = np.exp(rng.normal(1.0, 0.5, 6)), np.exp(rng.normal(0.0, 0.8, 7))
    v = rules.compare(a, b)
    p, effect, low, high = welch_by_hand(a, b)
    # the same closed form evaluated in float64 two ways: agreement to round-off
    assert v.statistic == pytest.approx(p, rel=1e-9)
    assert (v.effect, v.low, v.high) == pytest.approx((effect, low, high), rel=1e-9)
    assert v.seeds == 6 and v.rule == "compare" and v.threshold == 0.05
    assert v.outcome == ("above" if p < 0.05 else "not separated")
    assert rules.compare(b, a).outcome == ("below" if p < 0.05 else "not separated")


def test_compare_paired_is_the_one_sample_test_of_the_log_ratios():
    rng = np.random.default_rng(1)
    init = np.exp(rng.normal(0.0, 1.0, 8))
    end = init * np.exp(rng.normal(0.7, 0.3, 8))
    v = rules.compare(end, init, paired=True)
    d = np.log(end) - np.log(init)
    se = d.std(ddof=1) / np.sqrt(d.size)
    p = 2 * stats.t.sf(abs(d.mean() / se), d.size - 1)
    assert v.statistic == pytest.approx(p, rel=1e-9)
    assert v.effect == pytest.approx(np.exp(d.mean()), rel=1e-12)
    half = stats.t.ppf(0.975, d.size - 1) * se
    assert (v.low, v.high) == pytest.approx((np.exp(d.mean() - half), np.exp(d.mean() + half)), rel=1e-9)
    assert v.outcome == "above"


def test_compare_needs_five_seeds_and_leaves_out_what_has_no_log():
    four = rules.compare([2, 3, 4, 5], [1, 1.1, 1.2, 1.3])
    assert four.outcome == "too few seeds" and np.isnan(four.statistic) and four.seeds == 4
    # a zero, a NaN and an inf have no finite log: left out, so five values become four
    assert rules.compare([2, 3, 4, 5, 0.0], [1, 1.1, 1.2, 1.3, 1.4]).outcome == "too few seeds"
    assert rules.compare([2, 3, 4, 5, np.nan, 6], [1, 1.1, 1.2, 1.3, 1.4]).seeds == 5
    # no spread at all: the order is certain (p = 0), or there is none (p = 1)
    certain = rules.compare([2.0] * 5, [1.0] * 5)
    assert (certain.outcome, certain.statistic, certain.low, certain.high) == ("above", 0.0, 2.0, 2.0)
    assert rules.compare([1.0] * 5, [1.0] * 5).outcome == "not separated"


def test_holm_adjusts_the_p_values_of_one_table():
    """m = 4, p = 0.01, 0.04, 0.03, 0.005: sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 →
    0.06 (monotone); so 0.03, 0.06, 0.06, 0.02 — the two middle claims are no longer separated."""
    raw = [Verdict("compare", "above", p, 0.05, 2.0, 5, 1.5, 2.5) for p in (0.01, 0.04, 0.03, 0.005)]
    other = Verdict("bound", "holds", 0.5, 1.0, 0.5, 5, 0.5, 0.5)
    out = rules.holm([*raw, other])
    assert [v.statistic for v in out[:4]] == pytest.approx([0.03, 0.06, 0.06, 0.02], rel=1e-12)
    assert [v.outcome for v in out[:4]] == ["above", "not separated", "not separated", "above"]
    assert out[4] is other
    below = rules.holm([Verdict("compare", "below", 0.001, 0.05, 0.5, 5, 0.4, 0.6)])[0]
    assert below.outcome == "below"


def test_a_theorem_holds_vacuously_where_its_median_ratio_is_eight_decades_below_the_bound():
    assert rules.theorem(0, 1e-8, 0.2, 100).outcome == "holds, vacuous"
    assert rules.theorem(0, 1.1e-8, 0.2, 100).outcome == "holds"
    assert rules.theorem(1, 1e-19, 1.2, 100).outcome == "VIOLATED"  # a violation is a violation, however rare
    v = rules.theorem(0, 3.7e-19, 0.2, 1000)
    assert (v.statistic, v.effect, v.high, v.seeds) == (0, 3.7e-19, 0.2, 1000)


def test_an_identity_is_labelled_an_identity():
    assert rules.identity(1e-4).outcome == "identity (holds to rounding)"
    assert rules.identity(1e-3).outcome == "VIOLATED"


def _every_rule_on_random_numbers(rng):
    """Verdicts from every deciding rule, on random inputs that reach each of its outcomes."""
    out, stops = [], []
    for _ in range(40):
        n_a, n_b = rng.integers(3, 11, 2)
        a, b = np.exp(rng.normal(rng.normal(0, 0.5), 0.6, n_a)), np.exp(rng.normal(0, 0.6, n_b))
        out += [rules.compare(a, b), rules.compare(a[: min(n_a, n_b)], b[: min(n_a, n_b)], paired=True)]
        x = float(np.exp(rng.normal(0, 1.5)))
        out += [rules.bound(x, 3), rules.identity(x * 1e-3), rules.linear(x, float(np.exp(rng.normal(0, 1))))]
        out += [rules.theorem(int(rng.integers(0, 2)), float(10 ** rng.uniform(-12, -4)), x, 10)]
        out += [rules.same_order(rng.normal(0, 1, 3), 3), rules.stationary(x / 5, x / 50, 3)]
        out += [rules.interval(0.5, float(rng.normal(0.5, 0.1)), float(rng.uniform(0, 0.2)), 5)]
        out += [rules.late_drop(float(rng.uniform(80, 97)), 97.0, 3), rules.every_point(int(rng.integers(0, 3)), 5)]
        out += [rules.explains(np.exp(rng.normal(1, 1, 3)), np.exp(rng.normal(0.5, 1, 3)))]
        factor = np.where(rng.random(4) < 0.7, 1.0, np.exp(rng.normal(0, 1, 4)))
        out += [rules.within_runs_verdict(factor, 3)]
        depths = [2, 4, 8, 12, 16, 24]
        shift = rng.uniform(-0.3, 0.3)  # shared by the seeds: some settings stop shallow, some deep
        curves = [np.sort(rng.random(len(depths)))[::-1] + shift for _ in range(3)]
        stops.append(rules.stop_depth([rules.transition(depths, c, 0.5) for c in curves], 0.5))
    pairs = list(zip(stops[1:], stops[:-1]))
    out += stops + [rules.moved(a, b) for a, b in pairs] + [rules.moved(b, a) for a, b in pairs]  # both directions
    return out + rules.holm([v for v in out if v.rule == "compare"])


def test_decide_gives_every_rules_outcome_from_its_stored_numbers():
    """rules.decide re-derives each rule's outcome from the verdict alone — what the report-row check relies on.
    Every outcome of each rule is reached at least once (else the check would test nothing there)."""
    seen = {}
    for v in _every_rule_on_random_numbers(np.random.default_rng(1)):
        assert rules.decide(v) == v.outcome, v
        seen.setdefault(v.rule, set()).add(v.outcome)
    assert seen["compare"] >= {"above", "below", "not separated", "too few seeds"}
    assert seen["bound"] == {"holds", "violated"} and seen["theorem"] >= {"holds", "VIOLATED", "holds, vacuous"}
    assert seen["stop"] >= {"stops", "trains"} and seen["interval"] == {"consistent", "outside the 95 % CI"}
    assert seen["linear"] == {"linear", "not linear"} and len(seen["within_runs"]) == 2
    assert len(seen["late_drop"]) == 2 and seen["every_point"] == {"holds", "fails"}
    assert seen["moved"] >= {"not moved", "deeper", "shallower", "not comparable"}


def test_a_row_whose_sentence_or_stored_outcome_disagrees_with_its_rule_fails_the_check():
    """The check run on every view's rows (conftest) catches a wrong stored outcome and a sentence that shows
    another verdict than the stored one."""
    from conftest import assert_rows_follow_rules

    from trust.views.report import Row, compare_text

    v = rules.compare([2.0, 2.1, 2.2, 2.3, 2.4], [1.0, 1.1, 1.05, 1.08, 1.02])
    assert v.outcome == "above"
    assert_rows_follow_rules([Row("claim", "claim", "m", compare_text(v), (v,))])
    with pytest.raises(AssertionError, match="rule compare gives"):
        assert_rows_follow_rules([Row("claim", "claim", "m", compare_text(v), (replace(v, outcome="below"),))])
    with pytest.raises(AssertionError, match="lacks"):
        assert_rows_follow_rules([Row("claim", "claim", "m", "yes, ×2.0", (v,))])
    bound = rules.bound(3.2, 3)
    with pytest.raises(AssertionError, match="lacks"):
        assert_rows_follow_rules([Row("claim", "assumption", "m", "holds", (bound,))])


LONG = Path(__file__).resolve().parents[1] / "figures" / "long"


@pytest.mark.parametrize("run", sorted(p.name for p in LONG.glob("*") if (p / "results.json").exists()))
def test_the_committed_long_runs_rows_follow_their_rules(run):
    """The long jobs' committed results, judged by today's rules and rendered by today's views: every row's
    verdicts follow their rules (the check of conftest runs inside ``rows``)."""
    from trust.experiments import REGISTRY, load
    from trust.views import VIEWS

    result = load(LONG / run)
    (name,) = [n for n, e in REGISTRY.items() if isinstance(result, e.result)]
    anchor = {"study breakdown": "study_breakdown", "study depth": "study_depth", "geometry": "geometry"}.get(name, run)
    rows = VIEWS[name].rows({anchor: result})
    assert rows and any(r.verdicts for r in rows)


def test_a_stop_depth_moves_only_beyond_both_resolutions():
    """Rule "moved" on hand-made curves: stops at 12 in every seed against 12–16 is not moved; against 20–24 (ranges
    8 layers apart, more than 2 × ±2) it moved shallower; a setting whose seed trains to the deepest net is not
    comparable, and so is one whose seed trains at no depth of its grid (its stop at or before the shallowest, not
    located); a non-monotone curve counts by the depth from which none deeper trains."""
    depths = [4, 8, 12, 16, 20, 24, 28]

    def stop(*firsts_never):  # curves that train below each seed's given depth and not from it on
        return rules.stop_depth([rules.transition(depths, [1.0 if d < f else 0.1 for d in depths], 0.5)
                                 for f in firsts_never], 0.5)  # fmt: skip

    assert rules.moved(stop(12, 12, 12), stop(12, 16, 16)).outcome == "not moved"
    far = rules.moved(stop(12, 12, 12), stop(24, 28, 28))
    assert (far.outcome, far.statistic, far.effect) == ("shallower", 12.0, -16.0)
    assert rules.moved(stop(24, 28, 28), stop(12, 12, 12)).outcome == "deeper"
    assert rules.moved(stop(12, 12, 12), stop(12, 12, 40)).outcome == "not comparable"  # 40: past the grid
    below = stop(4, 4, 4)  # no seed trains at any depth: stops at or before L=4 (the 784 job's Fromage at 160 steps)
    assert (below.outcome, below.low, below.effect) == ("stops, not located", 4.0, float("inf"))
    for pair in ((below, stop(24, 28, 28)), (stop(24, 28, 28), below), (stop(4, 8, 8), below)):
        assert rules.moved(*pair).outcome == "not comparable"
    bumpy = rules.transition(depths, [1, 1, 0.1, 1, 0.1, 0.1, 0.1], 0.5)  # fails at 12, trains at 16
    # it stops at 20, not at its first failure (12): 8 layers from 12, beyond both resolutions
    assert rules.moved(rules.stop_depth([bumpy] * 3, 0.5), stop(12, 12, 12)).outcome == "deeper"


def test_trained_alike_is_a_tenth_of_accuracy():
    """The label on depth orderings: within rules.TRAINED_ALIKE (0.1) of each other, else not alike."""
    assert rules.trained_alike(0.994, 0.994)
    assert rules.trained_alike(0.95, 0.85 + 1e-9)
    assert not rules.trained_alike(0.939, 0.254)
    assert not rules.trained_alike(0.5, 0.65)
