"""The training loop: checkpoints, reproducibility, diagnostics, errors, and the CLI."""

import json
from dataclasses import replace

import numpy as np
import pytest

from trust.base.errors import TrustError
from trust.base.schema import same
from trust.core.train import TrainConfig, train
from trust.experiments.training import TrainResult, run
from trust.front import cli

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
    assert a.compiles <= 1
    assert b.compiles == 0  # compiled at most once, then reused by the second run
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
    assert [c.step for c in result.checkpoints] == [0, 21, 42]
    assert result.compiles <= 1
    trained = train(config, progress=False)
    assert trained.compiles == 0
    for k, params in enumerate(trained.checkpoints.values()):  # every tensor of every checkpoint, exactly
        got = result.params_at(k)
        assert list(got) == ["1.b", "1.w", "2.b", "2.w", "3.b", "3.w"]
        np.testing.assert_array_equal(got["2.w"], params[1]["w"])
    back = TrainResult.from_json(result.to_json(), result.arrays())
    assert same(result, back)
    assert "curves.clip_fraction" in result.to_json()["undefined"]


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
    assert out["config"]["optimizer"] == "lars"
    assert 0 <= out["curves"]["test_acc"][-1] <= 1


def test_resnet_with_batchnorm_trains_and_evaluates_with_running_statistics():
    # ResNet-8 on the 8×8 digits, BatchNorm: the step trains on batch statistics and keeps running ones,
    # and the curves are in evaluation mode (docs/theory.md §1)
    config = TrainConfig(model="resnet8", norm="batch", channels=4, dataset="digits", epochs=1, batch_size=128)
    out = train(config, progress=False)
    net = out.net
    assert net.depth == 8
    assert net.norm == "batch"
    assert out.compiles <= 1
    # at initialisation the running statistics are (0, 1) and every scale 1, shift 0: evaluation mode is the
    # net without normalisation, so its curve starts where the unnormalised ResNet's does (same init key)
    plain = train(TrainConfig(**{**config.to_dict(), "norm": "none", "epochs": 1}), progress=False)
    assert out.curves.train_loss[0] == pytest.approx(plain.curves.train_loss[0], rel=1e-6)
    assert out.curves.train_loss[-1] < out.curves.train_loss[0]
    # the scales were trained as layers (they moved off 1) and the shifts moved off 0
    scales = np.concatenate([np.ravel(b["norm1"]["scale"]) for b in out.params[1:-1]])
    assert np.all(scales != 1.0)
    with pytest.raises(TrustError, match="image data set"):
        train(TrainConfig(model="resnet8", dataset="synthetic", epochs=1), progress=False)
    with pytest.raises(TrustError, match="norm applies to the resnets"):
        TrainConfig(norm="batch")
    with pytest.raises(TrustError, match="residual, bias and activation apply to the mlp"):
        TrainConfig(model="resnet16", residual=True)
    with pytest.raises(TrustError, match="residual, bias and activation apply to the mlp"):
        TrainConfig(model="resnet8", activation="gelu")


def test_batchnorm_running_statistics_follow_the_batches():
    # the evaluation pass uses what update_stats accumulated: with momentum 0.9 per step, after t steps the
    # running mean is Σ 0.1·0.9^{t−s}·mean_s; here checked for one step against the batch's own statistics
    import jax

    from trust.core import nets

    net = nets.resnet((8, 8, 1), 10, 8, "batch", 4)
    params = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (16, 64))
    batch = net.batch_stats(params, x)
    running = nets.update_stats(net.initial_stats(params), batch)
    for (m, v), (bm, bv) in zip(running, batch):
        np.testing.assert_allclose(m, 0.1 * bm, rtol=1e-6)  # float32: one multiply-add, a few ulp
        np.testing.assert_allclose(v, 0.9 + 0.1 * bv, rtol=1e-6)


def test_the_rate_decays_every_n_steps_as_optax_staircase():
    """The authors' schedule: ×0.95 every 240 optimiser steps, against optax.exponential_decay(staircase=True)."""
    import optax

    from trust.core.train import learning_rate_at

    reference = optax.exponential_decay(0.01, transition_steps=240, decay_rate=0.95, staircase=True)
    for t in (0, 1, 239, 240, 241, 479, 480, 2399, 23999):
        # float32 steps: the power of 0.95 to ≤ 99 in float32 is good to ~1e-6 relative
        np.testing.assert_allclose(float(learning_rate_at(t, 0.01, 0.95, 240)), float(reference(t)), rtol=2e-6)
    assert float(learning_rate_at(240, 0.01, 0.95, 240)) == pytest.approx(0.01 * 0.95)  # closed form


def test_a_step_budget_ends_inside_an_epoch_and_records_each_minibatch():
    """``steps`` trains exactly that many optimiser steps (the last epoch partial); each minibatch's accuracy is
    measured before its update: the first one is the initial net's accuracy on that minibatch."""
    config = TrainConfig(optimizer="sgd", learning_rate=0.05, depth=2, width=8, batch_size=64, steps=30, seed=4)
    out = train(config, progress=False)
    spe = out.steps_per_epoch  # 21 on digits' 1,348 training examples
    assert spe == 21
    assert max(out.checkpoints) == 30
    assert out.minibatch_acc.shape == (30,)
    assert out.curves.epoch == [0, 1, 30 / 21]
    assert set(np.round(out.minibatch_acc * 64).astype(int) / 64) == set(out.minibatch_acc)  # k/64 each
    # before its update: the first minibatch's accuracy is the initial net's, whatever the rate does to it
    other = train(replace(config, learning_rate=5.0, steps=2, checkpoints=(0.0,)), progress=False)
    assert other.minibatch_acc[0] == out.minibatch_acc[0]
    assert other.minibatch_acc[1] != out.minibatch_acc[1]  # the second sees the first update


def test_fewer_training_images_are_the_first_of_the_same_split():
    """``train_images``: the first n images of the run's split, standardised as the whole, the test set unchanged;
    the same steps then pass over each image more often (digits: 1,348 images, 21 steps of 64 an epoch; 640: 10)."""
    from trust.core.train import load_data

    whole, part = load_data(TrainConfig(**TINY)), load_data(TrainConfig(train_images=640, **TINY))
    np.testing.assert_array_equal(part.x_train, whole.x_train[:640])
    np.testing.assert_array_equal(part.y_train, whole.y_train[:640])
    np.testing.assert_array_equal(part.x_test, whole.x_test)
    out = train(TrainConfig(train_images=640, steps=30, **TINY), progress=False)
    assert out.steps_per_epoch == 10 and max(out.checkpoints) == 30
    with pytest.raises(TrustError, match="train_images 5000 exceeds the 1348 training images"):
        load_data(TrainConfig(train_images=5000, **TINY))
