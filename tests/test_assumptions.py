"""``trust assumptions``: the two shape fits against closed forms, the layer conditioning, transmission on a
ResNet, and the experiment end to end from the CLI (docs/theory.md §2.5, §6.4)."""

import json

import jax
import numpy as np
import pytest

from trust import cli, estimate, nets, tree
from trust.errors import TrustError
from trust.experiments import assumptions

ETA = np.geomspace(1e-3, 0.3, 10)


def test_drt_shape_recovers_an_exact_exponent():
    # r = (1+η)^{cL} − 1 with c = 1.7, L = 12, for three layers: the fit returns c exactly (float64 logs: 1e-12)
    drt = (1 + ETA) ** 12 - 1
    r = np.stack([(1 + ETA) ** (1.7 * 12) - 1] * 3, axis=1)
    fit = estimate.fit_drt_shape(r, drt)
    assert fit.parameter == pytest.approx(1.7, rel=1e-12)
    assert fit.rms_log < 1e-10 and fit.r2 == pytest.approx(1.0, abs=1e-12)


def test_lipschitz_shape_recovers_an_exact_factor_and_matches_lstsq():
    pred = np.outer(ETA, [2.0, 5.0])  # λ‖ΔW‖/‖g_l‖ for two layers
    fit = estimate.fit_lipschitz_shape(0.3 * pred, pred)
    assert fit.parameter == pytest.approx(0.3, rel=1e-12) and fit.rms_log < 1e-12
    # noisy data: the factor is the least-squares slope through the origin (independently: numpy's lstsq)
    noisy = 0.3 * pred * np.exp(np.random.default_rng(0).normal(0, 0.2, pred.shape))
    k = np.linalg.lstsq(pred.reshape(-1, 1), noisy.ravel(), rcond=None)[0][0]
    assert estimate.fit_lipschitz_shape(noisy, pred).parameter == pytest.approx(k, rel=1e-12)
    rms = np.sqrt(np.mean(np.log(noisy / (k * pred)) ** 2))
    assert estimate.fit_lipschitz_shape(noisy, pred).rms_log == pytest.approx(rms, rel=1e-12)


def test_verdicts_and_slopes_on_known_curves():
    drt = (1 + ETA) ** 16 - 1
    pred = 3.0 * ETA[:, None]
    cases = {
        "DRT shape": (1 + ETA) ** 32 - 1,  # exponential: a line through the origin misses it by far at large η
        # linear and steep: DRT's shape ties a steep start (cL ≈ 20) to explosive growth, (1.3)^20 − 1 ≈ 189 ≫ 6
        "Lipschitz shape": 20 * ETA,
        # linear and shallow: with cL ≈ 0.5, (1+η)^{cL} − 1 is itself nearly linear up to η = 0.3 — no contrast
        "both fit": 0.5 * ETA,
        "neither": 0.05 * np.sqrt(ETA),  # sub-linear, as a relu net's jumping gradient
    }
    for expected, r in cases.items():
        d, lip = estimate.fit_drt_shape(r[:, None], drt), estimate.fit_lipschitz_shape(r[:, None], pred)
        assert estimate.shape_verdict(d, lip) == expected, (expected, d, lip)
    assert estimate.loglog_slope(ETA, 0.05 * np.sqrt(ETA)) == pytest.approx(0.5, rel=1e-12)
    assert estimate.loglog_slope(ETA, 7 * ETA) == pytest.approx(1.0, rel=1e-12)
    # both fit: at tiny cLη the two curves coincide, (1+η)^{cL} − 1 ≈ cLη
    tiny = ETA * 1e-3
    r = (1 + tiny) ** 16 - 1
    d = estimate.fit_drt_shape(r, (1 + tiny) ** 16 - 1)
    lip = estimate.fit_lipschitz_shape(r, 16 * tiny)
    assert estimate.shape_verdict(d, lip) == "both fit"
    with pytest.raises(TrustError, match="no point"):
        estimate.fit_drt_shape(np.zeros(4), np.ones(4))


def test_layer_conditioning_of_matrices_kernels_and_scales():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 4, 5))
    s = np.linalg.svd(kernel.reshape(36, 5), compute_uv=False)
    assert estimate.layer_conditioning(kernel) == pytest.approx(s[0] / s[-1], rel=1e-12)
    assert estimate.layer_conditioning(np.array([0.5, -2.0, 1.0])) == pytest.approx(4.0, rel=1e-12)  # diag(s)
    assert estimate.layer_conditioning(np.array([1.0, 0.0])) == np.inf


def test_transmission_on_a_resnet_sees_every_phi():
    net = nets.ResNet((6, 6, 1), 3, widths=(4, 8), blocks=(1, 1), norm="batch", activation="leaky_relu", slope=0.1)
    params = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (7, 36))
    t = estimate.transmission(net, params, x)
    assert t["alpha"].shape == (2 * sum(net.blocks) + 1,)  # two φ per block and one before the pooling
    # leaky relu with slope s: s ≤ ‖φ(z)‖/‖z‖ ≤ 1 for every input (a theorem of the activation)
    assert np.all(t["alpha"] >= 0.1 - 1e-7) and np.all(t["beta"] <= 1 + 1e-7)
    assert np.all(t["alpha"] <= t["mean"]) and np.all(t["mean"] <= t["beta"])


def test_layer_groups_of_an_mlp_and_a_resnet():
    mlp = nets.experiment_mlp(4, 8, 5, 3)
    names = tree.leaf_names(mlp.init(jax.random.key(0)))
    layers = [i for i, n in enumerate(names) if n.endswith(".w")]
    assert assumptions.layer_groups(mlp, names, layers) == {"first": [0], "hidden": [1, 2, 3], "last": [4]}
    net = nets.resnet((8, 8, 1), 10, depth=16, norm="batch", width=4)  # blocks (2, 2, 3)
    params = jax.eval_shape(net.init, jax.random.key(0))  # shapes only: nothing is computed
    names, layers = tree.leaf_names(params), tree.weight_indices(params)
    groups = assumptions.layer_groups(net, names, layers)
    assert sorted(groups) == ["head", "norm scales", "stage 1", "stage 2", "stage 3", "stem"]
    named = {g: [names[layers[i]] for i in ix] for g, ix in groups.items()}
    assert named["stem"] == ["1.w"] and named["head"] == ["9.w"]
    assert named["stage 2"] == ["4.conv1.w", "4.conv2.w", "4.proj.w", "5.conv1.w", "5.conv2.w"]
    assert len(named["norm scales"]) == 2 * 7 + 1 and all(n.endswith(".scale") for n in named["norm scales"])


def test_cli_assumptions_mlp3_json(capsys):
    args = ["assumptions", "--model", "mlp3", "--width", "16", "--epochs", "1", "--eta-steps", "4"]
    assert cli.main(args + ["--n-measure", "60", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [g["group"] for g in out["points"][1]["groups"]] == ["first", "hidden", "last"]
    assert out["layers"] == ["1.w", "2.w", "3.w"] and len(out["eta"]) == 4
    assert cli.main(["assumptions", "--model", "mlp3", "--norm", "batch"]) == 2
    assert "norm applies to the resnets" in capsys.readouterr().err


@pytest.mark.slow  # ~40 s of XLA compiles for ResNet-16 on 2 CPU cores; the "done when" command
def test_cli_assumptions_resnet16_json(capsys):
    args = ["assumptions", "--model", "resnet16", "--channels", "4", "--epochs", "1", "--batch-size", "256"]
    args += ["--eta-steps", "4", "--n-measure", "40", "--json"]
    assert cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    init, end = out["points"]
    assert [g["group"] for g in init["groups"]] == ["stem", "stage 1", "stage 2", "stage 3", "head"]
    for g in init["groups"] + end["groups"]:
        assert {"drt_exponent", "drt_rms_log", "lipschitz_factor", "lipschitz_rms_log", "verdict"} <= set(g)
        assert g["verdict"].split(":")[0] in ("DRT shape", "Lipschitz shape", "both fit", "neither")
    assert len(out["layers"]) == 16 + 2  # the main path and the two projections
