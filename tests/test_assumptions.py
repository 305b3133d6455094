"""``trust assumptions``: the layer groups and the experiment end to end from the CLI (docs/theory.md §6.4; the
shape fits, layer conditioning and transmission it reports are tested in test_estimate.py)."""

import json

import jax
import numpy as np
import pytest
from labels import check_labels

from trust.base import spec, tree
from trust.core import nets
from trust.experiments import assumptions
from trust.experiments.shared import runner
from trust.front import cli


def test_layer_groups_of_an_mlp_and_a_resnet():
    mlp = nets.experiment_mlp(4, 8, 5, 3)
    names = tree.leaf_names(mlp.init(jax.random.key(0)))
    layers = [i for i, n in enumerate(names) if n.endswith(".w")]
    assert assumptions.layer_groups(mlp, names, layers) == {"first": [0], "hidden": [1, 2, 3], "last": [4]}
    net = nets.resnet((8, 8, 1), 10, depth=16, norm="batch", width=4)  # blocks (2, 2, 3)
    params = jax.eval_shape(net.init, jax.random.key(0))  # shapes only: nothing is computed
    names, layers = tree.leaf_names(params), spec.weight_indices(params)
    groups = assumptions.layer_groups(net, names, layers)
    assert sorted(groups) == ["head", "norm scales", "stage 1", "stage 2", "stage 3", "stem"]
    named = {g: [names[layers[i]] for i in ix] for g, ix in groups.items()}
    assert named["stem"] == ["1.w"]
    assert named["head"] == ["9.w"]
    assert named["stage 2"] == ["4.conv1.w", "4.conv2.w", "4.proj.w", "5.conv1.w", "5.conv2.w"]
    assert len(named["norm scales"]) == 2 * 7 + 1
    assert all(n.endswith(".scale") for n in named["norm scales"])


def test_cli_assumptions_mlp3_json(capsys):
    args = ["assumptions", "--model", "mlp3", "--width", "16", "--epochs", "1", "--eta-steps", "4"]
    assert cli.main(args + ["--n-measure", "60", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [g["group"] for g in out["points"][1]["groups"]] == ["first", "hidden", "last"]
    assert out["layers"] == ["1.w", "2.w", "3.w"]
    assert len(out["eta"]) == 4
    relative = out["axes"]["points[1].relative_gradient"]  # read through the labels: which axis is the layer
    assert relative["dims"] == ["eta", "layer"]
    assert relative["coords"]["layer"] == ["1.w", "2.w", "3.w"]
    assert check_labels(out) >= 2 * 8


def test_a_first_run_returns_what_a_rerun_reads_bit_for_bit(tmp_path):
    """Same seed, same numbers, in figures too: a first run's result is the stored one read back, so the curves a
    view derives from it (medians over a group's layers) are a rerun's to the bit and dtype — from the float32
    values in memory they were float32 (a median of two layers then differs in the 8th digit), stored float64."""
    config = assumptions.AssumptionsConfig(model="mlp3", width=16, epochs=1, eta_steps=4, n_measure=60)
    with jax.enable_x64(False):  # float32 nets, as paper_figs.py runs them
        first, reused = runner.run_or_reuse(tmp_path, config, assumptions.EXPERIMENT)
        again, reused_again = runner.run_or_reuse(tmp_path, config, assumptions.EXPERIMENT)
    assert (reused, reused_again) == (False, True)
    assert json.dumps(first.to_json()) == json.dumps(again.to_json())
    for name, array in again.arrays().items():
        np.testing.assert_array_equal(first.arrays()[name], array, strict=True)
    for ours, theirs in zip(first.curves, again.curves, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            for field in ("measured", "drt_fit", "lipschitz_fit"):
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field), strict=True)


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
