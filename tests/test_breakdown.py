"""The breakdown experiment end to end, for the perturbation kinds the CLI test does not take."""

import numpy as np
import pytest

from trust.experiments.breakdown import BreakdownConfig, run
from trust.errors import TrustError

SMALL = dict(depth=4, width=10, eta_steps=6, eta_max=0.2, n_examples=60, x64=True)


def test_single_layer_moves_only_that_layer():
    res, arrays = run(BreakdownConfig(perturb="single", layer=3, **SMALL))
    sizes = arrays["relative_size"]  # (η, tensors) in flatten order 1.b, 1.w, 2.b, …
    moved = [n for n, s in zip(res["names"], sizes[-1]) if s > 0]
    assert moved == ["3.w"]
    np.testing.assert_allclose(sizes[:, res["names"].index("3.w")], arrays["eta"], rtol=1e-12)
    # one layer of four moved by η: the DRT bound is 1 + η − 1 = η
    np.testing.assert_allclose(res["bounds"]["drt"], arrays["eta"], rtol=1e-12)


def test_madam_direction_has_relative_size_eta():
    # |ΔW_ij| = η|W_ij| wherever g_ij ≠ 0. With tanh and Gaussian inputs every gradient entry is nonzero
    # (relu's dead units and digits' constant pixels would give exact zeros, which Madam does not move).
    res, arrays = run(BreakdownConfig(perturb="madam", activation="tanh", dataset="synthetic", **SMALL))
    np.testing.assert_allclose(arrays["relative_size"], arrays["eta"][:, None] * np.ones(8), rtol=1e-12)


def test_theorem1_net_reports_operator_norm_ratio_below_one():
    res, _ = run(BreakdownConfig(net="theorem1", activation="tanh", init="gaussian", perturb="random", **SMALL))
    assert 0 < res["summary"]["operator_norm_max_ratio"] <= 1  # a theorem: holds on every grid point


def test_config_rejects_nonsense():
    with pytest.raises(TrustError, match="unknown net"):
        BreakdownConfig(net="transformer")
    with pytest.raises(TrustError, match="η grid"):
        BreakdownConfig(eta_max=-1.0)
