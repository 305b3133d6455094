"""The constants, descent and cos γ experiments on small nets: invariants the maths fixes, closed forms,
and the CLIs' output and errors."""

import json
import subprocess
import sys

import mpmath
import numpy as np
import numpy_reference as ref
import pytest

from trust.experiments import constants, cosgamma, descent
from trust.experiments.shared import points

SMALL = dict(width=16, n_examples=120)


@pytest.fixture(scope="module")
def const_run():
    config = constants.ConstantsConfig(depths=(2, 3), epochs=(0.0, 0.25), eta_steps=8, **SMALL)
    return config, constants.run(config)


def test_constants_invariants(const_run):
    _, result = const_run
    rows = result.rows
    assert [(r.depth, r.epoch) for r in rows] == [(2, 0.0), (2, 0.25), (3, 0.0), (3, 0.25)]
    for r in rows:
        lay = r.layers
        assert len(lay.name) == r.depth == len(lay.alpha) == len(lay.kappa_w)
        assert np.all(lay.alpha <= lay.beta + 1e-12)
        assert np.all(lay.beta <= 1 + 1e-12)  # relu: β ≤ 1
        assert np.all(lay.kappa_w >= 1)
        # ρ_l ≤ κ(U_l) wherever κ(U_l) is finite: ‖U‖_op ≤ ‖U‖_F ≤ … (docs/theory.md §2.2, the conversion)
        finite = np.isfinite(lay.kappa_dw)
        assert np.all(lay.op_over_frobenius[finite] <= lay.kappa_dw[finite] * (1 + 1e-9))
        # The fixed-gradient direction is −g/‖g‖ per tensor: cos θ = 1 (float64 in the tests: 1e-12).
        np.testing.assert_allclose(lay.cos_theta, 1.0, atol=1e-12)
        assert min(lay.cos_gamma) > 0
        assert max(lay.cos_gamma) <= 1
        # Lemma 2 with C = 1 for cos θ = 1 is the closed form 2^{1/L} − 1 (docs/theory.md §3.2).
        assert r.thresholds.lemma2 == pytest.approx(2 ** (1 / r.depth) - 1, rel=1e-12)
        # The corrected threshold η* is defined by C_eff·[(1 + η*)^L − 1] = cos θ: plug it back in.
        eta = r.thresholds.lemma2_C_eff
        assert r.C_eff_gradient * ((1 + eta) ** r.depth - 1) == pytest.approx(r.cos_theta_min, rel=1e-9)
    assert set(result.growth) == {"0", "0.25"}
    assert result.growth["0"].C_eff_gradient.factor_per_layer > 0


def test_effective_constant_matches_an_independent_numpy_computation(const_run):
    """C_eff of each layer's gradient at initialisation, recomputed with the plain-NumPy reference
    (hand-written backpropagation, docs/theory.md §3.3): max over η > 0 of ‖Δg_l‖/‖g_l‖ ÷ ((1 + η)^L − 1)."""
    config, result = const_run
    etas = np.linspace(0.0, config.eta_max, config.eta_steps)[1:]
    for row in (r for r in result.rows if r.epoch == 0):
        tc = points.train_config(config.optimizer, row.depth, config.width, config.dataset, config.seed)
        ds, _, [(_, params)] = points.checkpoints(tc, (0.0,))
        x, y = (np.asarray(a) for a in points.measurement_batch(ds, config.n_examples))
        ws, bs = [np.asarray(p["w"]) for p in params], [np.asarray(p["b"]) for p in params]
        _, _, gw, gb = ref.xent_and_grad(ws, bs, x, y, "relu")
        step = lambda t, g: -np.linalg.norm(t) * g / np.linalg.norm(g)  # noqa: E731  U_l = −‖W_l‖ g_l/‖g_l‖
        ratios = []
        for eta in etas:
            w1 = [w + eta * step(w, g) for w, g in zip(ws, gw)]
            b1 = [b + eta * step(b, g) for b, g in zip(bs, gb)]
            _, _, gw1, _ = ref.xent_and_grad(w1, b1, x, y, "relu")
            ratios.append(np.array(ref.relative_gradient_distance(gw, gw1)) / ((1 + eta) ** row.depth - 1))
        # float64 on both sides; the distances agree to ~1e-12 (test_measure), the ratio at the smallest η
        # loses ~3 digits to cancellation in g(W + ηU) − g(W): 1e-8 is ample.
        np.testing.assert_allclose(row.layers.c_eff_gradient, np.max(ratios, axis=0), rtol=1e-8)
        assert row.C_eff_gradient == pytest.approx(np.max(ratios), rel=1e-8)
        # what the relative change divides by, beside it: ‖g_l‖ and the batch's accuracy (same reference)
        np.testing.assert_allclose(row.gradient_norm, [np.linalg.norm(g) for g in gw], rtol=1e-10)
        logits, _ = ref.forward(ws, bs, x, "relu")
        # a count over 120 examples, averaged in float32 by jnp.mean of booleans: 1e-6 covers its rounding
        assert row.accuracy == pytest.approx(np.mean(np.argmax(logits, -1) == y), abs=1e-6)
        assert row.chance == pytest.approx(0.1) and row.flag == ""  # digits: 10 classes; at init never flagged


def test_growth_fit_recovers_a_closed_form():
    depths = np.array([2, 4, 8, 16])
    fit = constants.growth(depths, np.log10(2.0 * 3.0**depths))
    assert fit.factor_per_layer == pytest.approx(3.0, rel=1e-12)
    assert np.exp(fit.intercept) == pytest.approx(2.0, rel=1e-12)
    fit = constants.growth(depths, 1000.0 * depths)  # log10 C = 1000·L: C overflows a float, the fit does not
    assert fit.slope_per_layer == pytest.approx(1000 * np.log(10), rel=1e-12)
    assert fit.factor_per_layer == float("inf")
    assert constants.growth([4, 4], [1.0, 2.0]) is None


def test_log10_threshold_against_500_digit_arithmetic():
    """log10 of (1 + cos/C)^{1/L} − 1 (docs/theory.md §3.3) computed with mpmath at 500 digits (the naive formula,
    exact at that precision), on both sides
    of the switch to the asymptote cos/(L·C) at C = 1e15 and far beyond float64's range (C = 10^400)."""
    with mpmath.workdps(500):
        for cos, depth in ((1.0, 16), (0.6, 3)):
            for log10_c in (0.0, 3.0, 14.9, 15.5, 400.0):
                c = mpmath.mpf(10) ** log10_c
                exact = float(mpmath.log10((1 + cos / c) ** (mpmath.mpf(1) / depth) - 1))
                # the exact branch keeps ~1e-15 relative precision (expm1/log1p); the asymptote's relative
                # error is < cos/C ≤ 1e-15 — both well inside 1e-12 of log10 (absolute).
                assert constants.log10_threshold(cos, depth, log10_c) == pytest.approx(exact, abs=1e-12)
    assert constants.log10_threshold(-0.1, 4, 1.0) == float("-inf")


def test_largest_prefix():
    etas = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    assert descent.largest_prefix(etas, [True, True, True, False, True]) == (0.2, 0.3)
    assert descent.largest_prefix(etas, [True, False, True, True, True]) == (0.0, 0.1)
    assert descent.largest_prefix(etas, [True] * 5) == (0.4, None)


def test_descent_invariants():
    config = descent.DescentConfig(depths=(2, 3), epochs=(0.0,), eta_steps=24, **SMALL)
    result = descent.run(config)
    etas = config.etas
    assert result.lemma1_violations == 0  # Lemma 1 is a theorem
    assert len(result.rows) == 4
    assert result.loss_curves.shape == (4, etas.size)
    for r, loss in zip(result.rows, result.loss_curves):
        assert r.eta_lemma1 <= r.eta_descent
        k = int(np.searchsorted(etas, r.eta_descent))
        assert np.all(loss[1 : k + 1] < loss[0])  # descent on the whole prefix …
        if not r.censored:
            assert loss[k + 1] >= loss[0]
            assert etas[k + 1] == r.eta_fail  # … and not at the next grid point
        if r.step == "fromage":
            assert r.cos_theta_min == pytest.approx(1.0, abs=1e-12)
        else:  # Madam's direction: cos θ_l = cos γ_l < 1 (docs/theory.md §3.4)
            assert 0 < r.cos_theta_min < 1
        # Lemma 2's η* solves (1 + η*)^L − 1 = cos θ (docs/theory.md §3.2): plug it back in.
        assert (1 + r.lemma2) ** r.depth - 1 == pytest.approx(r.cos_theta_min, rel=1e-12)


def test_cos_gamma_monte_carlo_limits():
    rng = np.random.default_rng(0)
    for kind, limit in cosgamma.LIMITS.items():
        values = cosgamma.monte_carlo(rng, kind, 100_000, 40)
        # The standard error is ~1e-4 here and the finite-n bias O(1/n) ≈ 1e-5: 5 standard errors.
        assert abs(values.mean() - limit) < 5 * values.std(ddof=1) / np.sqrt(values.size) + 1e-4


def test_cosgamma_through_training_shapes():
    config = cosgamma.CosGammaConfig(
        sizes=(10,), trials=20, optimizers=("madam",), depth=2, width=8, epochs=(0.0, 0.25), seeds=2
    )
    result = cosgamma.run(config)
    cos = result.training["madam"].cos_gamma
    assert cos.shape == (2, 2, 2)
    assert np.all((cos > 0) & (cos <= 1))
    assert result.training["madam"].mean[0].mean == pytest.approx(cos[:, 0].mean())


def test_constants_cli_json_has_every_quantity(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "trust.front.cli",
            "constants",
            "--depth",
            "2",
            "--width",
            "8",
            "--n-examples",
            "60",
            "--eta-steps",
            "4",
            "--json",
            "--out",
            str(tmp_path / "c"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    printed = json.loads(out.stdout)
    row = printed["rows"][0]
    for key in ("alpha", "beta", "kappa_w", "kappa_dw", "cos_theta", "cos_gamma", "c_eff_gradient"):
        assert len(row["layers"][key]) == 2
    for key in ("C", "C_layers", "log10_C", "log10_C_layers", "C_eff_function", "C_eff_gradient"):
        assert key in row
    # every non-finite number in the JSON is a string, and its field says why it is undefined
    for path, reason in printed["undefined"].items():
        assert path.startswith("rows[")
        assert reason
    assert (tmp_path / "c" / "constants.png").exists()
    assert (tmp_path / "c" / "results.json").exists()
