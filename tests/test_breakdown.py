"""The breakdown experiment end to end, for the perturbation kinds the CLI test does not take."""

import numpy as np
import pytest

from trust.base.errors import TrustError
from trust.base.schema import same
from trust.experiments.breakdown import BreakdownConfig, BreakdownResult, run
from trust.views import breakdown as views

SMALL = dict(depth=4, width=10, eta_steps=6, eta_max=0.2, n_examples=60, x64=True)


def test_single_layer_moves_only_that_layer():
    res = run(BreakdownConfig(perturb="single", layer=3, **SMALL))
    sizes = res.relative_size  # (η, tensors) in flatten order 1.b, 1.w, 2.b, …
    moved = [n for n, s in zip(res.names, sizes[-1]) if s > 0]
    assert moved == ["3.w"]
    np.testing.assert_allclose(sizes[:, res.names.index("3.w")], res.eta, rtol=1e-12)
    # one layer of four moved by η: the DRT bound is (1 + η) − 1 = η
    np.testing.assert_allclose(res.drt, res.eta, rtol=1e-12)


def test_madam_direction_has_relative_size_eta():
    # |ΔW_ij| = η|W_ij| wherever g_ij ≠ 0. With tanh and Gaussian inputs every gradient entry is nonzero
    # (relu's dead units and digits' constant pixels would give exact zeros, which Madam does not move).
    res = run(BreakdownConfig(perturb="madam", activation="tanh", dataset="synthetic", **SMALL))
    np.testing.assert_allclose(res.relative_size, res.eta[:, None] * np.ones(8), rtol=1e-12)


def test_theorem1_net_reports_operator_norm_ratio_below_one():
    res = run(BreakdownConfig(net="theorem1", activation="tanh", init="gaussian", perturb="random", **SMALL))
    assert np.isnan(res.operator_norm_ratio[0])  # η = 0: the bound is 0, the ratio undefined (and says why)
    assert 0 < np.nanmax(res.operator_norm_ratio) <= 1  # a theorem: holds on every grid point
    assert "operator_norm_ratio" in res.to_json()["undefined"]


def test_result_round_trips_through_json_and_npz():
    res = run(BreakdownConfig(**SMALL))
    back = BreakdownResult.from_json(res.to_json(), res.arrays())
    assert same(res, back)
    np.testing.assert_array_equal(back.ratios.gradient_first_over_drt, res.ratios.gradient_first_over_drt)
    assert back.net == res.net
    assert views.summary(back) == views.summary(res)


def test_config_rejects_nonsense():
    with pytest.raises(TrustError, match="unknown net"):
        BreakdownConfig(net="transformer")
    with pytest.raises(TrustError, match="eta_max"):
        BreakdownConfig(eta_max=-1.0)
    with pytest.raises(TrustError, match="eta_max must be finite"):
        BreakdownConfig(eta_max=float("inf"))


def test_a_violation_factor_is_given_at_each_probe_eta_and_where_its_maximum_sits():
    """The DRT row: worst layer gradient/DRT at η = 0.01, 0.05, 0.099 (the grid points nearest), and the worst over
    the grid with its η — recomputed by hand from the stored ratios."""
    res = run(BreakdownConfig(**dict(SMALL, eta_steps=100, eta_max=0.099)))
    ratio = res.ratios.gradient_max_over_drt
    v = res.verdicts
    assert v.drt.statistic == np.nanmax(ratio)
    assert v.drt_worst_eta == res.eta[np.nanargmax(ratio)]
    (row,) = [r for r in views.breakdown_rows([res], []) if r.claim.startswith("DRT")]
    for eta in (0.01, 0.05, 0.099):
        i = int(np.argmin(np.abs(res.eta - eta)))
        assert f"{ratio[i]:.3g} at η={res.eta[i]:.3f}" in row.measurement
    assert f"max {np.nanmax(ratio):.3g} over the grid, at η={v.drt_worst_eta:.3f}" in row.measurement
