"""Theorem 1 on networks that meet its conditions: zero violations (a theorem), the exact homogeneous
case through the same code, and negative controls showing the check can fail."""

import numpy as np
import pytest

from trust.base.errors import TrustError
from trust.core import bounds
from trust.experiments import theorem1

CONFIG = theorem1.Theorem1Config(n_cases=600, n_inputs=8, seed=20201123)


@pytest.fixture(scope="module")
def checked():
    return theorem1.run(CONFIG)


def test_theorem1_has_zero_violations_on_600_random_square_leaky_relu_nets(checked):
    assert checked.n_cases == 600
    assert checked.n_evaluations == 4800
    assert checked.measured.shape == (4800,)
    for name in theorem1.BOUNDS:  # a theorem: every sampled case, every input
        assert checked.bounds[name].violations == 0, name
        assert np.all(checked.measured <= checked.bound(name) * (1 + theorem1.RTOL)), name
    assert checked.theorem_violations == 0
    # The forms are nested: recursion ≤ per-layer ≤ global (the per-layer form bounds the recursion by
    # ‖ΔW‖_op/‖W‖_op ≤ κ(ΔW)·a and c_l ≥ 1; the global one takes the worst c over layers and inputs).
    assert np.all(checked.recursion <= checked.per_layer * (1 + 1e-12))
    assert np.all(checked.per_layer <= checked.global_ * (1 + 1e-12))
    # DRT with constant 1 is an assumption: only measured. On these nets it is violated (docs/theory.md §2.1),
    # and its violation count is what the run says it is.
    assert checked.bounds["drt"].violations == int(np.sum(checked.measured > checked.drt * (1 + theorem1.RTOL)))


def test_one_case_against_an_independent_computation():
    """Case 0 recomputed from docs/theory.md §2.2 with NumPy only: its own forward pass, the leaky-relu
    transmission in closed form √(‖z₊‖² + s²‖z₋‖²)/‖z‖, κ from ``np.linalg.cond`` and the bound
    ∏_l κ(W_l)κ(ΔW_l)/α_l(x) · [∏(1 + a_l) − 1]."""
    case = theorem1.draw_case(np.random.default_rng([CONFIG.seed, 0]), CONFIG)
    out = theorem1.check_case(case)
    s, x = case["slope"], case["x"]
    h, per_layer = x, np.ones(len(x))
    h_new = x
    for w, dw, a in zip(case["ws"], case["dws"], case["a"]):
        assert np.linalg.norm(dw) == pytest.approx(a * np.linalg.norm(w), rel=1e-12)  # a_l as drawn
        z = h @ w.T
        alpha = np.sqrt((np.maximum(z, 0) ** 2).sum(1) + s**2 * (np.minimum(z, 0) ** 2).sum(1)) / np.linalg.norm(
            z, axis=1
        )
        per_layer *= np.linalg.cond(w) * np.linalg.cond(dw) / alpha
        h = np.maximum(z, 0) + s * np.minimum(z, 0)
        z_new = h_new @ (w + dw).T
        h_new = np.maximum(z_new, 0) + s * np.minimum(z_new, 0)
    measured = np.linalg.norm(h_new - h, axis=1) / np.linalg.norm(h, axis=1)
    per_layer *= np.prod(1 + case["a"]) - 1
    # float64 through ≤ 7 layers of width ≤ 11: ~1e-14 relative; κ via SVD in both, 1e-9 is ample.
    np.testing.assert_allclose(out["measured"], measured, rtol=1e-9)
    np.testing.assert_allclose(out["per_layer"], per_layer, rtol=1e-9)
    np.testing.assert_allclose(out["drt"], np.prod(1 + case["a"]) - 1, rtol=1e-12)


def test_negative_controls_are_rejected():
    """Dropping a factor the proof needs (κ(W_l), or 1/α_l) from the iterated induction step must produce
    violations on the same cases — the zero-violation check can fail."""
    without_kappa = without_alpha = 0
    for i in range(300):
        case = theorem1.draw_case(np.random.default_rng([CONFIG.seed, i]), CONFIG)
        out = theorem1.check_case(case)
        ones = np.ones_like(out["kappa_w"])
        without_kappa += np.sum(out["measured"] > theorem1.recursion_bound(out["alpha"], ones, out["op_ratio"]))
        without_alpha += np.sum(
            out["measured"] > theorem1.recursion_bound(np.ones_like(out["alpha"]), out["kappa_w"], out["op_ratio"])
        )
    assert without_kappa > 0
    assert without_alpha > 0


def test_exact_homogeneous_case_through_the_same_code():
    """ΔW_l = ε_l W_l: the measured distance is |∏(1+ε_l) − 1| exactly (docs/theory.md §2.4), κ(ΔW_l) = κ(W_l)."""
    rng = np.random.default_rng(3)
    case = theorem1.draw_case(rng, theorem1.Theorem1Config(min_depth=4, max_depth=4))
    eps = np.array([0.1, -0.05, 0.2, 0.03])
    case["dws"] = [e * w for e, w in zip(eps, case["ws"])]
    case["a"] = np.abs(eps)
    out = theorem1.check_case(case)
    # float64 forward through 4 small layers: relative error ~1e-15 per op; 1e-12 leaves margin.
    np.testing.assert_allclose(out["measured"], abs(np.prod(1 + eps) - 1), rtol=1e-12)
    assert np.all(out["measured"] <= out["per_layer"])
    assert np.all(out["measured"] <= bounds.drt_bound(case["a"]) + 1e-15)  # here DRT holds (and is tight for ε ≥ 0)


def test_config_rejects_conditions_outside_the_theorem():
    with pytest.raises(TrustError, match="slopes"):
        theorem1.Theorem1Config(slopes=(0.0,))  # relu: α = 0, the bound is vacuous
    with pytest.raises(TrustError, match="width"):
        theorem1.Theorem1Config(min_width=5, max_width=4)


def test_the_views_show_what_the_run_decided(checked):
    """The figure draws one histogram of log10(measured/bound) per form with its median and violations in the
    legend and the line at 0 (ratio 1); each row's verdict is the run's stored outcome, worded."""
    from trust.views import VIEWS, plots

    view = VIEWS["theorem1"]
    figure = view.figures({"theorem1": checked})["theorem1"]
    ax = figure.axes[0]
    assert ax.get_xlabel().startswith("log10(measured")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(legend) == len(theorem1.LABELS)  # one histogram per form and the DRT assumption
    for text, name in zip(legend, theorem1.LABELS):
        assert f"violations {checked.bounds[name].violations}" in text
    assert any(list(line.get_xdata()) == [0.0, 0.0] for line in ax.get_lines())  # ratio 1
    plots.plt.close(figure)
    rows = view.rows({"theorem1": checked})
    theorem_rows = [r for r in rows if r.kind == "theorem"]
    for r, name in zip(theorem_rows, theorem1.BOUNDS, strict=True):  # rule theorem, applied to the stored numbers
        b = checked.bounds[name]
        median = b.ratio_quantiles.median
        outcome = "VIOLATED" if b.violations else "holds, vacuous" if median <= 1e-8 else "holds"
        assert checked.outcomes[name].outcome == outcome
        assert r.verdict == (f"{outcome} (median ratio {median:.2g})" if outcome == "holds, vacuous" else outcome)
    assert rows[-1].kind == "assumption"
    assert rows[-1].verdict == (
        "holds"
        if checked.bounds["drt"].ratio_quantiles.max <= 1
        else f"violated ×{checked.bounds['drt'].ratio_quantiles.max:.3g}"
    )
