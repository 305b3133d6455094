"""``trust reviewers``: the closed forms it draws beside the runs, zero-initialised biases under Madam, a
diverged run kept as a result, and a small study end to end (docs/theory.md §6)."""

import numpy as np
import pytest

from trust.base.schema import same
from trust.core.train import TrainConfig, train
from trust.experiments import reviewers
from trust.experiments.shared import curves
from trust.front import cli

TINY = dict(depth=3, width=8, epochs=2, batch_size=128)


def test_lemma2_rate_is_the_closed_form():
    assert reviewers.lemma2_rate(1) == pytest.approx(1.0, rel=1e-15)
    assert reviewers.lemma2_rate(2) == pytest.approx(np.sqrt(2) - 1, rel=1e-15)
    assert reviewers.lemma2_rate(16) == pytest.approx(2 ** (1 / 16) - 1, rel=1e-14)


def test_orthogonal_growth_is_the_product_of_the_step_factors():
    # η = 0.1 decayed ×0.5 per epoch, 3 steps per epoch: ∏ over steps √(1 + η_t²), by hand
    config = TrainConfig(optimizer="lars", learning_rate=0.1, lr_decay=0.5, epochs=2, depth=3)
    nan = np.full(3, np.nan)  # the curves do not enter the prediction
    run = reviewers.RunCurves(config, 3, 0, np.arange(3), nan, nan, nan, nan, nan, nan)
    by_hand = [1.0, (1 + 0.1**2) ** 1.5, (1 + 0.1**2) ** 1.5 * (1 + 0.05**2) ** 1.5]
    np.testing.assert_allclose(reviewers.orthogonal_growth(run), by_hand, rtol=1e-14)


def test_robust_decades_counts_grid_cells_within_the_factor():
    lrs = np.array([1e-3, 1e-2, 1e-1, 1.0])
    assert reviewers.robust_decades(lrs, [5.0, 1.5, 1.0, 3.0]) == pytest.approx(2.0)  # 0.01 and 0.1: 1 + 1 step
    assert reviewers.robust_decades(lrs, [5.0, 5.0, 5.0, 3.0]) == 0.0


def test_madam_never_moves_a_zero_bias_and_sgd_does():
    madam = train(TrainConfig(optimizer="madam", zero_biases=True, **TINY), progress=False)
    assert all(np.all(np.asarray(layer["b"]) == 0.0) for layer in madam.params)  # multiplicative: 0·anything = 0
    sgd = train(TrainConfig(optimizer="sgd", zero_biases=True, **TINY), progress=False)
    assert all(np.any(np.asarray(layer["b"]) != 0.0) for layer in sgd.params)


def test_a_diverged_run_is_a_result_with_its_reason():
    run = curves.run_curves(TrainConfig(optimizer="sgd", learning_rate=1e30, **TINY))
    assert run.diverged_epoch == 1
    assert run.final_test_error == np.inf
    stored = run.to_json()
    assert "train_loss" in stored["undefined"]
    assert "diverged" in stored["undefined"]["train_loss"]
    assert same(curves.RunCurves.from_json(stored, run.arrays()), run)


def test_cli_reviewers_small_study(tmp_path, capsys):
    args = ["reviewers", "--questions", "clip", "biases", "--quick", "--width", "8", "--epochs", "1"]
    assert cli.main(args + ["--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "Madam's clip σ*" in out
    assert "zero-initialised biases" in out
    cells = sorted(p.name for p in (tmp_path / "r" / "cells").iterdir())
    # p_scale 1, 2, 3 and the zero-bias run; p_scale 3 with N(0, 0.01²) biases is shared by both questions
    assert cells == ["madam_lr0.01_L8_p1_s0", "madam_lr0.01_L8_p2_s0", "madam_lr0.01_L8_p3_s0",
                     "madam_lr0.01_L8_p3_zerobias_s0"]  # fmt: skip
    assert cli.main(args + ["--out", str(tmp_path / "r")]) == 0  # every cell reused
    assert "reused" in capsys.readouterr().out


def test_lemma2_and_lars_orderings_are_rule_compare_holm_corrected_together():
    """Five seeds: each depth's Lemma-2-rate-against-0.01 claim is the paired t-test on the seeds' final training
    accuracies, and the LARS claims Welch on the weight-norm ratios — then Holm across all of them (one table)."""
    from trust.experiments.shared import rules

    config = reviewers.ReviewersConfig(questions=("lemma2", "lars"), width=8, depth=3, epochs=1, seeds=5, depths=(2, 3))
    result = reviewers.run(config)
    answers = result.answers
    raw = {}
    for d in (2, 3):
        lemma, fixed = ([100 * r.final_train_acc for r in result.select("lemma2", depth=d, lr=lr)]
                        for lr in (reviewers.lemma2_rate(d), 0.01))  # fmt: skip
        raw[f"lemma2 {d}"] = rules.compare(lemma, fixed, paired=True)
    for lr in (0.01, 0.1):
        norm = {
            o: [r.norm_ratio[-1].mean() for r in result.select("lars", optimizer=o, lr=lr)] for o in ("lars", "fromage")
        }
        raw[f"lars {lr:g}"] = rules.compare(norm["lars"], norm["fromage"])
    tested = [k for k, v in raw.items() if v.rule == "compare" and np.isfinite(v.statistic)]
    p = np.array([raw[k].statistic for k in tested])
    order = np.argsort(p)
    adjusted = np.maximum.accumulate(np.minimum(1.0, (len(p) - np.arange(len(p))) * p[order]))  # Holm by hand
    for k, q in zip(np.array(tested)[order], adjusted):
        assert answers.verdicts[k].statistic == pytest.approx(q, rel=1e-12)
        assert answers.verdicts[k].effect == pytest.approx(raw[k].effect, rel=1e-12)
