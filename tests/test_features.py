"""Feature learning per layer (docs/theory.md §12) against a NumPy forward pass written here, the alignment's
bound ‖ΔW Hᵀ‖_F ≤ ‖ΔW‖_op‖H‖_F (a theorem: zero violations) and its two closed forms."""

import jax
import numpy as np
import pytest

from trust.base.errors import TrustError
from trust.core import features, nets


def numpy_features(params, x, residual):
    """h_0 = x, h_l = relu(W_l h_{l−1} + b_l) (plus h_{l−1} on residual hidden layers), the output linear."""
    hs, h = [x], x
    for l, layer in enumerate(params):
        z = h @ np.asarray(layer["w"]).T + np.asarray(layer["b"])
        last = l == len(params) - 1
        h = z if last else (h + np.maximum(z, 0) if residual and l > 0 else np.maximum(z, 0))
        hs.append(h)
    return hs


@pytest.mark.parametrize("residual", [False, True])
def test_relative_feature_change_and_alignment_against_numpy(key, residual):
    net = nets.experiment_mlp(5, 6, 4, 3, residual=residual)
    params = net.init(key)
    new = net.init(jax.random.fold_in(key, 1))
    new = [{k: p[k] + 0.1 * q[k] for k in p} for p, q in zip(params, new)]
    x = np.asarray(jax.random.normal(jax.random.fold_in(key, 2), (40, 5)))
    got = features.feature_change(net, params, new, x)
    hs, hs_new = numpy_features(params, x, residual), numpy_features(new, x, residual)
    for l in range(1, 5):
        delta = np.asarray(new[l - 1]["w"]) - np.asarray(params[l - 1]["w"])
        # float64 forward passes of a 6-wide net: agreement to rounding
        assert got.relative[l - 1] == pytest.approx(np.linalg.norm(hs_new[l] - hs[l]) / np.linalg.norm(hs[l]), 1e-10)
        expected = np.linalg.norm(hs[l - 1] @ delta.T) / (np.linalg.norm(delta, 2) * np.linalg.norm(hs[l - 1]))
        assert got.alignment[l - 1] == pytest.approx(expected, rel=1e-10)
        assert got.step[l - 1] == pytest.approx(np.linalg.norm(delta, 2) / np.linalg.norm(params[l - 1]["w"], 2), 1e-10)


def test_alignment_is_at_most_one_and_one_when_the_change_reads_the_features(key):
    net = nets.experiment_mlp(8, 8, 2, 8)
    rng = np.random.default_rng(0)
    params = net.init(key)
    x = rng.normal(size=(30, 8))
    for _ in range(50):  # a theorem: zero violations beyond rounding
        new = [{"w": p["w"] + rng.normal(size=p["w"].shape) * rng.uniform(0.01, 1), "b": p["b"]} for p in params]
        assert np.all(features.feature_change(net, params, new, x).alignment <= 1 + 1e-12)
    # every input a multiple of one direction v, and ΔW_1 = u vᵀ: ‖ΔW Hᵀ‖ = ‖u‖‖H‖ — alignment exactly 1
    v, u = rng.normal(size=8), rng.normal(size=8)
    x = rng.normal(size=(30, 1)) * v[None, :]
    new = [{"w": params[0]["w"] + np.outer(u, v), "b": params[0]["b"]}, params[1] | {"w": params[1]["w"] + 0.1}]
    assert features.feature_change(net, params, new, x).alignment[0] == pytest.approx(1.0, rel=1e-12)
    # a change orthogonal to every input reads nothing: alignment 0
    w = rng.normal(size=8)
    w -= v * (w @ v) / (v @ v)
    new[0] = {"w": params[0]["w"] + np.outer(u, w), "b": params[0]["b"]}
    assert features.feature_change(net, params, new, x).alignment[0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(TrustError, match="layer 2: its weights do not move"):
        features.feature_change(net, params, [new[0], params[1]], x)
