"""What the figures of breakdown, constants, cos γ, descent, assumptions and reviewers show: built from the
smallest real runs, each figure is read back — its axis labels, its series (legend texts), the bounds and
reference lines the view draws, one line or band per series, and the plotted numbers against the result's stored
fields (recomputed by hand from the raw arrays where the view derives them)."""

from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from trust.experiments import REGISTRY, assumptions, breakdown, constants, cosgamma, descent, reviewers
from trust.views import VIEWS
from trust.views import breakdown as breakdown_view

# Every slice below is measured in float64 on 40 examples at 4 values of η (descent: 3 and η = 0), so that runs of
# one net share its compiled grid (trust.core.measure) and the file stays within its time.
TINY_BREAKDOWN = dict(width=8, eta_steps=4, n_examples=40, x64=True)


def legend_texts(legend) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


def line(ax, label):
    """The one line of ``ax`` labelled ``label``."""
    found = [ln for ln in ax.get_lines() if ln.get_label() == label]
    assert len(found) == 1, (label, [ln.get_label() for ln in ax.get_lines()])
    return found[0]


def hlines(ax) -> list[float]:
    """The y of every horizontal line across the axes (axhline: x from 0 to 1 in axes coordinates)."""
    return [ln.get_ydata()[0] for ln in ax.get_lines() if is_hline(ax, ln)]


def is_hline(ax, ln) -> bool:
    return ln.get_transform() != ax.transData and list(ln.get_xdata()) == [0, 1]


def bands(ax) -> list[PolyCollection]:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def masked(y):
    """What a log axis is handed: values ≤ 0 or NaN replaced by NaN (trust.views.plots.positive)."""
    y = np.asarray(y, dtype=float)
    return np.where(y > 0, y, np.nan)


def assert_band(band, x, low, high):
    """A fill_between band spans [low, high] at each x."""
    vertices = band.get_paths()[0].vertices
    for xi, lo, hi in zip(x, low, high):
        ys = vertices[np.isclose(vertices[:, 0], xi), 1]
        assert ys.size >= 2, f"no band edge at x = {xi}"
        np.testing.assert_allclose([ys.min(), ys.max()], [lo, hi], rtol=1e-12)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------------------------------------ breakdown


@pytest.fixture(scope="module")
def breakdown_paper():
    """The paper set (paper_configs' names and configs) at depth 2 only, shrunk; the residual net at depth 3 (its
    least). The view is told the paper's depths are (2,) in the test that draws it."""
    configs = REGISTRY["breakdown"].paper_configs(True, 0)
    picked = {n: c for n, c in configs.items() if c.depth == 2}
    picked["breakdown_gradient_L16_residual"] = replace(configs["breakdown_gradient_L16_residual"], depth=3)
    return {n: breakdown.run(replace(c, **TINY_BREAKDOWN)) for n, c in picked.items()}


def test_breakdown_figure_of_one_run_draws_its_distances_and_bounds(breakdown_paper):
    """A single run's figure (any set but the paper's): loss change, function distance with DRT, layer-1 gradient
    distance with DRT and the Lipschitz prediction, and the violation factor with the line at 1 — each the stored
    array; DRT is (1+η)^L − 1 for the fixed-gradient slice (every matrix moved by η‖W_l‖)."""
    res = breakdown_paper["breakdown_gradient_L2"]
    figures = VIEWS["breakdown"].figures({"one": res})
    assert sorted(figures) == ["one"]
    ax_loss, ax_f, ax_g, ax_v = figures["one"].axes[:4]
    for ax in (ax_loss, ax_f, ax_g, ax_v):
        assert ax.get_xlabel() == "η (relative step per layer)"
    assert ax_loss.get_ylabel() == "mlp net\nℒ(W+ΔW) − ℒ(W)"
    assert ax_f.get_ylabel() == "‖Δf‖/‖f‖ (batch)"
    assert ax_g.get_ylabel() == "‖Δg₁‖/‖g₁‖"
    assert ax_v.get_ylabel() == "measured / DRT bound"
    for ax in (ax_f, ax_g, ax_v):
        assert ax.get_yscale() == "log"
    assert ax_loss.get_yscale() == "symlog"
    # the series: the net in the function panel's legend, the two bounds in the gradient panel's
    assert legend_texts(ax_f.get_legend()) == ["L=2"]
    assert ax_loss.get_legend() is None  # its lower left is where the curves go
    assert legend_texts(ax_g.get_legend()) == ["L=2", "DRT ∏(1+a)−1", "Lipschitz (λ fit at smallest η)"]
    drt_by_hand = (1 + res.eta) ** 2 - 1
    np.testing.assert_allclose(res.drt, drt_by_hand, rtol=1e-12)
    np.testing.assert_allclose(line(ax_loss, "L=2").get_ydata(), res.loss - res.loss[0], rtol=1e-12)
    np.testing.assert_allclose(line(ax_f, "L=2").get_ydata(), masked(res.function_frob), rtol=1e-12)
    f_drt = [ln for ln in ax_f.get_lines() if ln.get_linestyle() == "--"]
    assert len(f_drt) == 1
    np.testing.assert_allclose(f_drt[0].get_ydata()[1:], res.drt[1:], rtol=1e-12)
    layer1 = res.gradient[:, res.names.index("1.w")]
    np.testing.assert_allclose(line(ax_g, "L=2").get_ydata(), masked(layer1), rtol=1e-12)
    g_drt = [ln for ln in ax_g.get_lines() if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    g_lip = [ln for ln in ax_g.get_lines() if ln.get_linestyle() == ":" and len(ln.get_xdata())]
    assert len(g_drt) == 1
    assert len(g_lip) == 1
    np.testing.assert_allclose(g_drt[0].get_ydata()[1:], res.drt[1:], rtol=1e-12)
    np.testing.assert_allclose(g_lip[0].get_ydata(), masked(res.lipschitz_first), rtol=1e-12)
    # the violation factor: layer 1 over DRT (solid) and the worst layer (−·), and the line at 1
    first = line(ax_v, "L=2 layer 1").get_ydata()
    np.testing.assert_allclose(first[1:], layer1[1:] / res.drt[1:], rtol=1e-9)
    worst = [ln for ln in ax_v.get_lines() if ln.get_linestyle() == "-."]
    assert len(worst) == 1
    np.testing.assert_allclose(worst[0].get_ydata(), masked(res.ratios.gradient_max_over_drt), rtol=1e-12)
    assert hlines(ax_v) == [1.0]


def test_breakdown_paper_figures_draw_every_net_and_the_theorems(breakdown_paper):
    """The paper set: one breakdown row per perturbation kind with a curve per net (the residual net in the
    gradient row only), and the theorem figure — (a) the exact case measured against (1+η)^L − 1, (b) the
    operator-norm ratio with the line at 1."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(breakdown_view, "DEPTHS", (2,))
        figures = VIEWS["breakdown"].figures(breakdown_paper)
    assert sorted(figures) == ["breakdown", "theorems"]
    fig = figures["breakdown"]
    assert len(fig.axes) == 2 * 4
    gradient_row, random_row = fig.axes[:4], fig.axes[4:]
    assert gradient_row[0].get_ylabel() == "fixed-gradient slice −g/‖g‖\nℒ(W+ΔW) − ℒ(W)"
    assert random_row[0].get_ylabel() == "random direction\nℒ(W+ΔW) − ℒ(W)"
    assert legend_texts(gradient_row[1].get_legend()) == ["L=2", "L=3 residual"]  # in the function panel
    assert legend_texts(random_row[1].get_legend()) == ["L=2"]
    residual = breakdown_paper["breakdown_gradient_L16_residual"]
    assert residual.net.kind == "residual"
    np.testing.assert_allclose(
        line(gradient_row[1], "L=3 residual").get_ydata(), masked(residual.function_frob), rtol=1e-12
    )
    random = breakdown_paper["breakdown_random_L2"]
    np.testing.assert_allclose(line(random_row[1], "L=2").get_ydata(), masked(random.function_frob), rtol=1e-12)
    for ax in (gradient_row[3], random_row[3]):
        assert hlines(ax) == [1.0]

    ax_a, ax_b = figures["theorems"].axes
    exact, opnorm = breakdown_paper["exact_L2"], breakdown_paper["opnorm_L2"]
    assert ax_a.get_xlabel() == "η"
    assert ax_a.get_ylabel() == "‖Δf‖/‖f‖"
    assert ax_b.get_xlabel() == "η"
    assert ax_b.get_ylabel() == "max_x ‖Δf(x)‖ / bound"
    assert legend_texts(ax_a.get_legend()) == ["L=2: measured (max over x)"]
    assert legend_texts(ax_b.get_legend()) == ["L=2"]
    closed_form = (1 + exact.eta) ** 2 - 1  # ΔW = ηW, homogeneous φ, no biases: the DRT curve itself
    curve = [ln for ln in ax_a.get_lines() if ln.get_linewidth() == 3]
    assert len(curve) == 1
    np.testing.assert_allclose(curve[0].get_ydata()[1:], closed_form[1:], rtol=1e-9)
    measured = line(ax_a, "L=2: measured (max over x)").get_ydata()
    np.testing.assert_allclose(measured, masked(exact.function_max), rtol=1e-12)
    np.testing.assert_allclose(measured[1:], closed_form[1:], rtol=1e-6)  # the theorem: on the curve
    assert hlines(ax_b) == [1.0]
    ratio = line(ax_b, "L=2").get_ydata()
    np.testing.assert_allclose(ratio, masked(opnorm.operator_norm_ratio), rtol=1e-12)
    assert np.nanmax(ratio) <= 1  # a theorem: below the line


# ------------------------------------------------------------------------------------------------ constants


@pytest.fixture(scope="module")
def constants_result():
    config = constants.ConstantsConfig(depths=(2, 3), epochs=(0.0, 1.0), width=8, eta_steps=4, n_examples=40)
    return constants.run(config)


def test_constants_figure_draws_each_constant_per_depth_and_epoch(constants_result):
    """(a) the three C_eff against depth, one line per epoch each, with the line at 1; (b) log10 of the
    Theorem-1 form and of C_eff (function); (c) C_eff per layer and (d) α_l, β_l of the deepest net."""
    result = constants_result
    figures = VIEWS["constants"].figures({"constants": result})
    assert sorted(figures) == ["constants"]
    ax_a, ax_b, ax_c, ax_d = figures["constants"].axes
    assert ax_a.get_xlabel() == "depth L"
    assert ax_a.get_ylabel() == "C_eff = max_η measured / DRT"
    assert ax_b.get_xlabel() == "depth L"
    assert ax_b.get_ylabel() == "constant (log scale)"
    assert ax_b.get_yscale() == "log"  # the constants themselves on a log axis, not their log10 on a linear one
    assert ax_c.get_xlabel() == "layer l"
    assert ax_c.get_ylabel() == "C_eff of layer l's gradient"
    assert ax_d.get_xlabel() == "layer l"
    assert ax_d.get_ylabel() == "‖φ(z)‖/‖z‖ (min, max over examples)"
    assert ax_a.get_yscale() == "log"
    assert hlines(ax_a) == [1.0]  # DRT's constant 1
    for epoch, tag in ((0.0, "init"), (1.0, "epoch 1")):
        rows = sorted((r for r in result.rows if r.epoch == epoch), key=lambda r: r.depth)
        assert [r.depth for r in rows] == [2, 3]
        for attr, name in (
            ("C_eff_gradient", "gradient, worst layer"),
            ("C_eff_gradient_first", "gradient, layer 1"),
            ("C_eff_function", "function (batch)"),
        ):
            drawn = line(ax_a, f"{name}, {tag}")
            np.testing.assert_array_equal(drawn.get_xdata(), [2, 3])
            np.testing.assert_allclose(drawn.get_ydata(), [getattr(r, attr) for r in rows], rtol=1e-12)
        # the worst layer's C_eff is the largest of the per-layer ones the deepest net shows in (c)
        worst = [max(r.layers.c_eff_gradient) for r in rows]
        np.testing.assert_allclose(line(ax_a, f"gradient, worst layer, {tag}").get_ydata(), worst, rtol=1e-12)
        np.testing.assert_allclose(
            line(ax_b, f"∏ κ(W_l)max(1, ρ_l)β/α_l, {tag}").get_ydata(),
            [10.0**r.log10_C_layers_op for r in rows],
            rtol=1e-12,
        )
        np.testing.assert_allclose(
            line(ax_b, f"C_eff function, {tag}").get_ydata(), [r.C_eff_function for r in rows], rtol=1e-12
        )
        deepest = rows[-1]
        per_layer = line(ax_c, f"L=3, {tag}")
        np.testing.assert_array_equal(per_layer.get_xdata(), [1, 2, 3])
        np.testing.assert_allclose(per_layer.get_ydata(), deepest.layers.c_eff_gradient, rtol=1e-12)
        np.testing.assert_allclose(line(ax_d, f"α_l, {tag}").get_ydata(), deepest.layers.alpha, rtol=1e-12)
        np.testing.assert_allclose(line(ax_d, f"β_l, {tag}").get_ydata(), deepest.layers.beta, rtol=1e-12)
    assert len(ax_a.get_legend().get_texts()) == 3 * 2  # three constants × two epochs
    assert len(ax_c.get_lines()) == 2  # one per epoch
    assert len(ax_d.get_lines()) == 2 * 2


# ------------------------------------------------------------------------------------------------ descent


@pytest.fixture(scope="module")
def descent_result():
    config = descent.DescentConfig(depths=(2, 3), epochs=(0.0,), width=8, eta_steps=3, n_examples=40)
    return descent.run(config)


def test_descent_figure_draws_the_measured_eta_against_the_lemmas(descent_result):
    """One panel per step, against depth: the measured largest descent η (▲ where censored), Lemma 1's
    certificate, Lemma 2 with C_eff, Lemma 2 with C = 1 — (1+cos θ)^{1/L} − 1 from the stored cos θ, 2^{1/L} − 1
    along Fromage's step (cos θ = 1) — and the paper's η = 0.01."""
    result = descent_result
    figures = VIEWS["descent"].figures({"descent": result})
    assert sorted(figures) == ["descent"]
    axes = figures["descent"].axes
    assert len(axes) == len(descent.STEPS)
    for ax, step in zip(axes, descent.STEPS):
        assert ax.get_title().startswith(f"{step} step")
        assert ax.get_xlabel() == "depth L (weight matrices)"
        assert ax.get_ylabel() == "η (relative step per layer)"
        assert ax.get_yscale() == "log"
        assert hlines(ax) == [0.01]
        assert line(ax, "paper's default η = 0.01").get_ydata()[0] == 0.01
        rows = sorted((r for r in result.rows if r.step == step), key=lambda r: r.depth)
        assert [(r.depth, r.epoch) for r in rows] == [(2, 0.0), (3, 0.0)]
        measured = line(ax, "measured largest descent η, init")
        np.testing.assert_array_equal(measured.get_xdata(), [2, 3])
        np.testing.assert_allclose(measured.get_ydata(), masked([r.eta_descent for r in rows]), rtol=1e-12)
        np.testing.assert_allclose(
            line(ax, "Lemma 1 certified (measured gradients), init").get_ydata(),
            masked([r.eta_lemma1 for r in rows]),
            rtol=1e-12,
        )
        np.testing.assert_allclose(
            line(ax, "Lemma 2 with C_eff, init").get_ydata(), masked([r.lemma2_C_eff for r in rows]), rtol=1e-12
        )
        lemma2 = line(ax, "Lemma 2, C = 1: (1+cos θ)^{1/L} − 1, init").get_ydata()  # each epoch its own
        np.testing.assert_allclose(lemma2, [(1 + min(r.cos_theta)) ** (1 / r.depth) - 1 for r in rows], rtol=1e-12)
        if step == "fromage":  # −‖W_l‖g_l/‖g_l‖: cos θ = 1
            np.testing.assert_allclose(lemma2, [2 ** (1 / 2) - 1, 2 ** (1 / 3) - 1], rtol=1e-9)
        [marks] = [ln for ln in ax.get_lines() if ln.get_marker() == "^"]  # one epoch: one set of marks
        censored = [r for r in rows if r.censored]
        np.testing.assert_array_equal(marks.get_xdata(), [r.depth for r in censored])
        np.testing.assert_allclose(marks.get_ydata(), [r.eta_descent for r in censored], rtol=1e-12)
    assert axes[0].get_legend() is None  # one legend, beside the last panel
    assert legend_texts(axes[-1].get_legend()) == [
        "measured largest descent η, init",
        "Lemma 1 certified (measured gradients), init",
        "Lemma 2 with C_eff, init",
        "Lemma 2, C = 1: (1+cos θ)^{1/L} − 1, init",
        "paper's default η = 0.01",
    ]


# ------------------------------------------------------------------------------------------------ cos γ


@pytest.fixture(scope="module")
def cosgamma_result():
    config = cosgamma.CosGammaConfig(
        sizes=(10, 100), trials=20, optimizers=("madam", "fromage"), depth=2, width=8, epochs=(0.0, 1.0), seeds=2
    )
    return cosgamma.run(config)


def test_cosgamma_figure_draws_the_estimates_against_2_over_pi_and_pi_over_4(cosgamma_result):
    """(a) the Monte Carlo means with their intervals and each distribution's limit (2/π, 3/4); (b) per
    optimiser the mean over layers of cos γ (by hand from the per-seed, per-layer values) with its interval and
    a band over the layers' range, against cos(π/4) and 2/π."""
    result = cosgamma_result
    figures = VIEWS["cosgamma"].figures({"cosgamma": result})
    assert sorted(figures) == ["cosgamma"]
    ax_a, ax_b = figures["cosgamma"].axes
    assert ax_a.get_xlabel() == "entries n"
    assert ax_a.get_ylabel() == "E cos γ (95 % CI)"
    assert ax_b.get_xlabel() == "epoch (symlog: linear to 1, logarithmic beyond)"
    assert ax_b.get_ylabel() == "cos γ_l"
    assert sorted(legend_texts(ax_a.get_legend())) == sorted(
        ["gaussian", "gaussian limit 0.6366", "uniform", "uniform limit 0.7500"]
    )
    np.testing.assert_allclose(sorted(hlines(ax_a)), [2 / np.pi, 0.75], rtol=1e-15)
    assert len(ax_a.containers) == 2  # one errorbar series per distribution
    for container, (kind, mc) in zip(ax_a.containers, result.monte_carlo.items()):
        assert container.get_label() == kind
        data = container.lines[0]
        np.testing.assert_array_equal(data.get_xdata(), [10, 100])
        np.testing.assert_allclose(np.asarray(data.get_ydata(), float), [p.estimate.mean for p in mc], rtol=1e-12)

    labels = legend_texts(ax_b.get_legend())
    assert "paper: cos(π/4) = 0.707" in labels
    assert "2/π = 0.637" in labels
    np.testing.assert_allclose(sorted(hlines(ax_b)), [2 / np.pi, np.cos(np.pi / 4)], rtol=1e-15)
    assert len(ax_b.containers) == 2  # one per optimiser …
    assert len(bands(ax_b)) == 2  # … and one band each
    for container, band, (opt, tr) in zip(ax_b.containers, bands(ax_b), result.training.items()):
        assert container.get_label() == f"{opt}: mean over layers, 95 % CI over seeds"
        data = container.lines[0]
        np.testing.assert_array_equal(data.get_xdata(), [0.0, 1.0])
        assert tr.cos_gamma.shape == (2, 2, 2)  # (seed, checkpoint, layer)
        by_hand = tr.cos_gamma.mean(axis=2).mean(axis=0)
        np.testing.assert_allclose(np.asarray(data.get_ydata(), float), by_hand, rtol=1e-12)
        assert_band(band, [0.0, 1.0], tr.cos_gamma.min(axis=(0, 2)), tr.cos_gamma.max(axis=(0, 2)))


# ------------------------------------------------------------------------------------------------ assumptions


@pytest.fixture(scope="module")
def assumptions_result():
    config = assumptions.AssumptionsConfig(model="mlp3", width=8, epochs=1, eta_steps=4, n_measure=40, batch_size=8)
    return assumptions.run(config)


def test_assumptions_curves_draw_each_group_its_fits_and_the_drt_curve(assumptions_result):
    """Per point (initialisation, end): each group's median relative gradient change over its layers (by hand
    from the per-layer array), its DRT-shape fit (1+DRT)^c − 1 and Lipschitz-shape fit k·median λ‖ΔW‖/‖g_l‖,
    and the DRT curve with constant 1, (1+η)^3 − 1 for the three matrices of mlp3."""
    result = assumptions_result
    figures = VIEWS["assumptions"].figures({"assumptions_mlp3": result})
    assert sorted(figures) == ["assumptions", "assumptions_curves"]
    axes = figures["assumptions_curves"].axes
    assert len(axes) == 2  # one model: initialisation and end of training
    for k, (ax, title) in enumerate(zip(axes, ("mlp3, initialisation", "mlp3, epoch 1"))):
        p = result.points[k]
        assert ax.get_title() == title
        assert ax.get_xlabel() == "η (every tensor moves by η‖W_l‖)"
        assert ax.get_ylabel() == "‖Δg_l‖/‖g_l‖ (median of the group)"
        assert ax.get_xscale() == "log"
        assert ax.get_yscale() == "log"
        assert [g.group for g in p.groups] == ["first", "hidden", "last"]
        labels = legend_texts(ax.get_legend())
        assert labels[:4] == [f"{g.group}: {g.verdict}" for g in p.groups] + ["DRT, constant 1"]
        drt = line(ax, "DRT, constant 1")
        np.testing.assert_allclose(drt.get_ydata(), p.drt, rtol=1e-12)
        np.testing.assert_allclose(drt.get_ydata(), (1 + result.eta) ** 3 - 1, rtol=1e-12)
        for g in p.groups:
            ix = [result.layers.index(name) for name in g.layers]
            measured = line(ax, f"{g.group}: {g.verdict}")
            np.testing.assert_allclose(measured.get_xdata(), result.eta, rtol=1e-15)
            np.testing.assert_allclose(measured.get_ydata(), np.median(p.relative_gradient[:, ix], axis=1), rtol=1e-12)
            same_colour = [ln for ln in ax.get_lines() if ln.get_color() == measured.get_color()]
            drt_fit = [ln for ln in same_colour if ln.get_linestyle() == "--"]
            lip_fit = [ln for ln in same_colour if ln.get_linestyle() == ":"]
            assert len(drt_fit) == 1
            assert len(lip_fit) == 1
            np.testing.assert_allclose(drt_fit[0].get_ydata(), (1 + p.drt) ** g.drt_exponent - 1, rtol=1e-9)
            np.testing.assert_allclose(
                lip_fit[0].get_ydata(), g.lipschitz_factor * np.median(p.lipschitz[:, ix], axis=1), rtol=1e-12
            )


def test_assumptions_curves_legend_names_the_two_fitted_shapes(assumptions_result):
    """The dashed and dotted lines are the two fitted shapes: the first row's first panel says so in its legend
    (curves_figure passes legend=True to the first row), and only there."""
    figures = VIEWS["assumptions"].figures({"assumptions_mlp3": assumptions_result})
    first, end = figures["assumptions_curves"].axes
    shapes = ["DRT-shape fit (1+η)^(cL) − 1", "Lipschitz-shape fit k·λ‖ΔW‖/‖g_l‖"]
    assert legend_texts(first.get_legend())[-2:] == shapes
    assert not set(shapes) & set(legend_texts(end.get_legend()))


def test_assumptions_summary_draws_every_fit_parameter(assumptions_result):
    """Per model and group, at both points: (a) the DRT-shape exponent c, (b) the Lipschitz-shape factor k, (c)
    the ratio of RMS log-residuals — hollow at initialisation — each against the reference 1 on a log axis, and
    one legend naming the groups and the 'neither twice as close' band."""
    result = assumptions_result
    fig = VIEWS["assumptions"].figures({"assumptions_mlp3": result})["assumptions"]
    axes = fig.axes
    assert len(axes) == 3
    titles = [ax.get_title() for ax in axes]
    assert titles[0].startswith("(a) DRT shape: c in")
    assert titles[1].startswith("(b) Lipschitz shape: k in")
    assert titles[2] == "(c) rms ln-residual, Lipschitz / DRT"
    groups = [g for p in result.points for g in p.groups]
    values = (
        [g.drt_exponent for g in groups],
        [g.lipschitz_factor for g in groups],
        [g.lipschitz_rms_log / g.drt_rms_log for g in groups],
    )
    for ax, expected in zip(axes, values):
        assert ax.get_yscale() == "log"
        assert hlines(ax) == [1.0]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["mlp3"]
        points = [ln for ln in ax.get_lines() if not is_hline(ax, ln)]
        assert len(points) == len(groups)  # one marker per group and point
        np.testing.assert_allclose([ln.get_ydata()[0] for ln in points], expected, rtol=1e-12)
        hollow = [ln.get_markerfacecolor() == "none" for ln in points]
        assert hollow == [True] * 3 + [False] * 3  # initialisation hollow, end filled
    [band] = axes[2].patches  # the band 0.5 … 2 (axhspan)
    np.testing.assert_allclose([band.get_y(), band.get_y() + band.get_height()], [0.5, 2.0], rtol=1e-15)
    assert len(fig.legends) == 1
    assert legend_texts(fig.legends[0]) == ["first", "hidden", "last", "(c) neither twice as close"]


# ------------------------------------------------------------------------------------------------ reviewers


@pytest.fixture(scope="module")
def reviewers_result():
    config = reviewers.ReviewersConfig(
        questions=("lars", "biases"), quick=True, depth=2, width=8, epochs=1, batch_size=8
    )
    return reviewers.run(config)


def test_reviewers_figure_draws_the_norm_bands_the_growth_and_the_bias_boxes(reviewers_result):
    """One panel per question asked: (a) ‖W‖ end/init per epoch for Fromage and LARS at η = 0.01 and 0.1, a
    median line and a seed band each (the run's norm ratio, mean over layers), beside the growth of steps
    orthogonal to W, (1+η²)^(steps/2) after one epoch; (b) the box of final test accuracies with zero and with
    N(0, 0.01²) biases (100 × (1 − the run's final test error))."""
    result = reviewers_result
    assert result.config.seeds == 1
    figures = VIEWS["reviewers"].figures({"reviewers": result})
    assert sorted(figures) == ["reviewers"]
    fig = figures["reviewers"]
    assert fig.get_suptitle().startswith("Reviewers' questions — 1 seed, depth 2 width 8, 1 ")
    ax_norm, ax_bias = fig.axes
    assert ax_norm.get_title() == "(a) §6.6 weight-norm growth"
    assert ax_norm.get_xlabel() == "epoch"
    assert ax_norm.get_ylabel() == "‖W_l(t)‖/‖W_l(0)‖ (mean over layers)"
    assert legend_texts(ax_norm.get_legend()) == [
        "fromage η=0.01",
        "lars η=0.01",
        "∏√(1+η_t²), η=0.01",
        "fromage η=0.1",
        "lars η=0.1",
        "∏√(1+η_t²), η=0.1",
    ]
    assert len(bands(ax_norm)) == 4  # one seed band per optimiser and rate
    runs = [(opt, lr) for lr in (0.01, 0.1) for opt in ("fromage", "lars")]
    for (opt, lr), band in zip(runs, bands(ax_norm)):
        [run] = result.select("lars", optimizer=opt, lr=lr)
        norm = run.norm_ratio.mean(axis=1)
        drawn = line(ax_norm, f"{opt} η={lr:g}")
        np.testing.assert_array_equal(drawn.get_xdata(), run.epoch)
        np.testing.assert_allclose(drawn.get_ydata(), norm, rtol=1e-12)
        assert_band(band, run.epoch, norm, norm)  # one seed: no width
    for lr in (0.01, 0.1):
        [lars] = result.select("lars", optimizer="lars", lr=lr)
        growth = line(ax_norm, f"∏√(1+η_t²), η={lr:g}")
        np.testing.assert_array_equal(growth.get_xdata(), [0, 1])
        np.testing.assert_allclose(growth.get_ydata(), [1.0, (1 + lr**2) ** (lars.steps_per_epoch / 2)], rtol=1e-12)

    assert ax_bias.get_title() == "(b) §6.8 Madam with zero-initialised biases"
    assert ax_bias.get_ylabel() == "final test accuracy (%)"
    assert [t.get_text() for t in ax_bias.get_xticklabels()] == ["biases at 0", "biases ~ N(0, 0.01²)"]
    for position, zero_biases in ((1, True), (2, False)):
        [run] = result.select("biases", zero_biases=zero_biases)
        accuracy = 100 * (1 - run.final_test_error)
        at = [ln for ln in ax_bias.get_lines() if len(ln.get_xdata()) and abs(np.mean(ln.get_xdata()) - position) < 0.5]
        assert len(at) >= 5  # box, median, two whiskers, two caps (fliers: none)
        for ln in at:  # one seed: every element of the box sits at its accuracy
            np.testing.assert_allclose(ln.get_ydata(), accuracy, rtol=1e-12)
