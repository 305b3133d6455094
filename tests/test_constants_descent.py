"""The constants, descent and cos γ experiments on small nets: invariants the maths fixes, closed forms,
and the CLIs' output and errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from trust import cli, estimate
from trust.experiments import constants, cosgamma, descent

SMALL = dict(width=16, n_examples=120)


@pytest.fixture(scope="module")
def const_run():
    config = constants.ConstantsConfig(depths=(2, 3), epochs=(0.0, 0.25), eta_steps=8, **SMALL)
    return constants.run(config)[0]


def test_constants_invariants(const_run):
    rows = const_run["rows"]
    assert [(r["depth"], r["epoch"]) for r in rows] == [(2, 0.0), (2, 0.25), (3, 0.0), (3, 0.25)]
    for r in rows:
        lay = r["layers"]
        assert len(lay["name"]) == r["depth"] == len(lay["alpha"]) == len(lay["kappa_w"])
        assert np.all(lay["alpha"] <= lay["beta"] + 1e-12) and np.all(lay["beta"] <= 1 + 1e-12)  # relu: β ≤ 1
        assert np.all(lay["kappa_w"] >= 1)
        # ρ_l ≤ κ(U_l) wherever κ(U_l) is finite (‖U‖_op/‖U‖_F ≤ κ(U)·‖W‖_op/‖W‖_F... see constants docstring)
        finite = np.isfinite(lay["kappa_dw"])
        assert np.all(lay["op_over_frobenius"][finite] <= lay["kappa_dw"][finite] * (1 + 1e-9))
        # The fixed-gradient direction is −g/‖g‖ per tensor: cos θ = 1 (float32 network).
        np.testing.assert_allclose(lay["cos_theta"], 1.0, atol=1e-5)
        assert 0 < min(lay["cos_gamma"]) and max(lay["cos_gamma"]) <= 1
        assert r["C_eff_gradient"] == pytest.approx(max(lay["c_eff_gradient"]))
        # Lemma 2 with C = 1 for cos θ = 1 is 2^{1/L} − 1 (cos θ holds to float32 rounding).
        assert r["thresholds"]["lemma2"] == pytest.approx(2 ** (1 / r["depth"]) - 1, rel=1e-5)
        assert r["thresholds"]["lemma2_C_eff"] == pytest.approx(
            estimate.lemma2_threshold(r["cos_theta_min"], r["depth"], r["C_eff_gradient"]), rel=1e-12)
    assert set(const_run["growth"]) == {"0", "0.25"}
    assert const_run["growth"]["0"]["C_eff_gradient"]["factor_per_layer"] > 0


def test_growth_fit_recovers_a_closed_form():
    depths = np.array([2, 4, 8, 16])
    fit = constants.growth(depths, np.log10(2.0 * 3.0**depths))
    assert fit["factor_per_layer"] == pytest.approx(3.0, rel=1e-12)
    assert np.exp(fit["intercept"]) == pytest.approx(2.0, rel=1e-12)
    fit = constants.growth(depths, 1000.0 * depths)  # log10 C = 1000·L: C overflows a float, the fit does not
    assert fit["slope_per_layer"] == pytest.approx(1000 * np.log(10), rel=1e-12)
    assert fit["factor_per_layer"] == float("inf")
    assert constants.growth([4, 4], [1.0, 2.0]) == {}


def test_log10_threshold_matches_lemma2_and_its_asymptote():
    for cos, depth in ((1.0, 16), (0.6, 3)):
        for log10_c in (0.0, 3.0, 14.9):
            exact = float(np.log10(estimate.lemma2_threshold(cos, depth, 10.0**log10_c)))
            assert constants.log10_threshold(cos, depth, log10_c) == pytest.approx(exact, rel=1e-12)
        # Just past the switch the asymptote cos/(L·C) agrees with the exact form to ~cos/C ≈ 1e-15.
        exact = float(np.log10(estimate.lemma2_threshold(cos, depth, 10.0**15.5)))
        assert constants.log10_threshold(cos, depth, 15.5) == pytest.approx(exact, abs=1e-12)
    assert constants.log10_threshold(-0.1, 4, 1.0) == float("-inf")


def test_largest_prefix():
    etas = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    assert descent.largest_prefix(etas, [True, True, True, False, True]) == (0.2, 0.3)
    assert descent.largest_prefix(etas, [True, False, True, True, True]) == (0.0, 0.1)
    assert descent.largest_prefix(etas, [True] * 5) == (0.4, None)


def test_lemma2_threshold_is_zero_without_a_descent_direction():
    np.testing.assert_array_equal(estimate.lemma2_threshold([-1.0, -0.3, 0.0], 4), 0.0)
    assert estimate.lemma2_threshold(0.5, 1) == pytest.approx(0.5)  # L = 1: η < cos θ


def test_descent_invariants():
    config = descent.DescentConfig(depths=(2, 3), epochs=(0.0,), eta_steps=24, **SMALL)
    results, arrays = descent.run(config)
    etas = config.etas
    assert results["summary"]["lemma1_violations"] == 0  # Lemma 1 is a theorem
    for r in results["rows"]:
        assert r["eta_lemma1"] <= r["eta_descent"]
        loss = arrays[f"{r['step']}/L{r['depth']}/epoch0/loss"]
        k = int(np.searchsorted(etas, r["eta_descent"]))
        assert np.all(loss[1:k + 1] < loss[0])  # descent on the whole prefix …
        if not r["censored"]:
            assert loss[k + 1] >= loss[0] and etas[k + 1] == r["eta_fail"]  # … and not at the next grid point
        if r["step"] == "fromage":
            assert r["cos_theta_min"] == pytest.approx(1.0, abs=1e-5)
        else:  # Madam's direction: cos θ_l = cos γ_l (THEORY §3)
            assert 0 < r["cos_theta_min"] < 1
        assert r["lemma2"] == pytest.approx(estimate.lemma2_threshold(r["cos_theta_min"], r["depth"]))


def test_cos_gamma_confidence_interval_closed_form_and_limits():
    ci = cosgamma.mean_ci([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, s = √(5/3), sem = s/2, t_{0.975, 3} = 3.182446305284263
    assert ci["mean"] == 2.5 and ci["sem"] == pytest.approx(np.sqrt(5 / 3) / 2, rel=1e-12)
    assert ci["half_width"] == pytest.approx(3.182446305284263 * np.sqrt(5 / 3) / 2, rel=1e-9)
    rng = np.random.default_rng(0)
    for kind, limit in cosgamma.LIMITS.items():
        values = cosgamma.monte_carlo(rng, kind, 100_000, 40)
        # The standard error is ~1e-4 here and the finite-n bias O(1/n) ≈ 1e-5: 5 standard errors.
        assert abs(values.mean() - limit) < 5 * values.std(ddof=1) / np.sqrt(values.size) + 1e-4


def test_cosgamma_through_training_shapes():
    config = cosgamma.CosGammaConfig(sizes=(10,), trials=20, optimizers=("madam",), depth=2, width=8,
                                     epochs=(0.0, 0.25), seeds=2)
    results, arrays = cosgamma.run(config)
    cos = arrays["madam/cos_gamma"]
    assert cos.shape == (2, 2, 2) and np.all((cos > 0) & (cos <= 1))
    assert results["training"]["madam"]["mean"][0]["mean"] == pytest.approx(cos[:, 0].mean())


def test_constants_cli_json_has_every_quantity(tmp_path):
    out = subprocess.run([sys.executable, "-m", "trust.cli", "constants", "--depth", "2", "--width", "8",
                          "--n-examples", "60", "--eta-steps", "4", "--json", "--out", str(tmp_path / "c")],
                         capture_output=True, text=True, check=True)
    row = json.loads(out.stdout)["rows"][0]
    for key in ("alpha", "beta", "kappa_w", "kappa_dw", "cos_theta", "cos_gamma", "c_eff_gradient"):
        assert len(row["layers"][key]) == 2
    for key in ("C", "C_layers", "log10_C", "log10_C_layers", "C_eff_function", "C_eff_gradient"):
        assert key in row
    assert (tmp_path / "c" / "constants.png").exists() and (tmp_path / "c" / "results.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["descent", "--eta-min", "2", "--eta-max", "1"], "eta_min"),
    (["constants", "--perturb", "sideways"], "invalid choice"),
    (["cosgamma", "--trials", "0"], "must be ≥ 1"),
    (["theorem1", "--slopes", "1.5"], "slopes"),
])
def test_bad_values_give_one_line_errors(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err and err.startswith("trust: error:")
