"""The training loop: checkpoints, reproducibility, diagnostics, errors, and the CLI."""

import json

import numpy as np
import pytest

from trust import cli
from trust.errors import TrustError
from trust.experiments.training import TrainResult, run
from trust.schema import same
from trust.train import TrainConfig, train

TINY = dict(depth=3, width=16, epochs=2, batch_size=64)


def test_checkpoints_curves_and_reproducibility():
    config = TrainConfig(optimizer="fromage", checkpoints=(0.0, 0.5, 1.5), checkpoint_steps=(3,), **TINY)
    a, b = train(config, progress=False), train(config, progress=False)
    spe = a.steps_per_epoch
    assert spe == 1348 // 64
    assert list(a.checkpoints) == [0, 3, round(0.5 * spe), round(1.5 * spe), 2 * spe]
    assert a.curves.epoch == [0, 1, 2]
    for k in ("train_loss", "test_acc", "norms"):  # same seed, same numbers
        assert getattr(a.curves, k) == getattr(b.curves, k)
    np.testing.assert_array_equal(a.params[0]["w"], b.params[0]["w"])
    assert a.compiles <= 1 and b.compiles == 0  # compiled at most once, then reused by the second run
    assert a.curves.train_loss[-1] < a.curves.train_loss[0]
    assert np.isnan(a.curves.clip_fraction).all()  # not a Madam run


@pytest.mark.parametrize("optimizer", ["madam", "madam_lns"])
def test_multiplicative_runs_report_clip_fraction_and_nonzero_biases(optimizer):
    out = train(TrainConfig(optimizer=optimizer, **dict(TINY, epochs=1)), progress=False)
    assert all(0.0 <= f <= 1.0 for f in out.curves.clip_fraction)
    assert all(np.all(np.asarray(layer["b"]) != 0) for layer in out.params)  # biases were initialised nonzero


def test_divergence_is_a_clear_error():
    with pytest.raises(TrustError, match="diverged"):
        train(TrainConfig(optimizer="sgd", learning_rate=1e30, **TINY), progress=False)


def test_bad_config():
    with pytest.raises(TrustError, match="unknown optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(TrustError, match="checkpoints"):
        TrainConfig(epochs=2, checkpoints=(3.0,))


def test_run_packs_checkpoints_as_arrays():
    config = TrainConfig(optimizer="adam", checkpoints=(0.0, 1.0), **TINY)
    result = run(config)
    assert [c.step for c in result.checkpoints] == [0, 21, 42] and result.compiles <= 1
    trained = train(config, progress=False)
    assert trained.compiles == 0
    for k, params in enumerate(trained.checkpoints.values()):  # every tensor of every checkpoint, exactly
        got = result.params_at(k)
        assert list(got) == ["1.b", "1.w", "2.b", "2.w", "3.b", "3.w"]
        np.testing.assert_array_equal(got["2.w"], params[1]["w"])
    back = TrainResult.from_json(result.to_json(), result.arrays())
    assert same(result, back) and "curves.clip_fraction" in result.to_json()["undefined"]


def test_cli_train_json(capsys):
    args = [
        "train",
        "--optimizer",
        "lars",
        "--depth",
        "3",
        "--width",
        "16",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--json",
    ]
    assert cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["optimizer"] == "lars" and 0 <= out["curves"]["test_acc"][-1] <= 1
    assert cli.main(["train", "--optimizer", "lars", "--lr-decay", "1.5"]) == 2
    assert "lr_decay" in capsys.readouterr().err
