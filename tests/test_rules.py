"""The verdict rules against closed forms: rule "compare" (a two-sided t-test on log values) against the t statistic
written out by hand, and Holm's correction against a worked example."""

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
