"""The studies' plumbing on tiny configurations: cells, sweeps, per-cell reuse, results, figures, rows and the CLI.
The science (how the curves look at width 784) is measured in figures/REPORT.md, never asserted here."""

import json
from dataclasses import dataclass, replace

import jax
import numpy as np
import pytest
from labels import check_array_labels, check_labels
from scipy import stats

from trust import views
from trust.base import parallel
from trust.base.errors import TrustError
from trust.base.schema import Config, Result, param, same
from trust.core import train
from trust.experiments import study_breakdown, study_depth, study_depth_authors
from trust.experiments.shared import authors, cell, rules, runner
from trust.experiments.shared.runner import Experiment, Study, run_study
from trust.front import cli
from trust.views import plots

TINY_CELL = dict(dataset="digits", depth=3, width=8, epochs=1, batch_size=100)


def tiny_cell(optimizer: str, lr: float, slices: bool = True, **measure) -> cell.CellConfig:
    checkpoints = (0.0, 0.5, 1.0) if slices else ()
    training = train.TrainConfig(optimizer=optimizer, learning_rate=lr, checkpoints=checkpoints, **TINY_CELL)
    return cell.CellConfig(training=training, slices=slices, **measure)


ETA = (0.0, 0.01, 0.05)
TINY_STUDY = dict(
    dataset="digits",
    optimizers=("fromage", "sgd", "adam"),
    depths=(2, 3),
    residual_depth=0,
    width=8,
    seeds=2,
    epochs=1,
    batch_size=100,
    checkpoints=(0.0, 1.0),
    sweep_lrs=(0.1, 0.01),
    eta_steps=3,
    n_measure=100,
    measure_check=(50, 0),
)


def test_cell_measures_every_checkpoint_against_closed_forms():
    r = cell.run(tiny_cell("fromage", 0.01, eta=ETA, n_measure=200))
    k, e, layers = len(r.step), len(ETA), 3
    assert r.step.tolist() == [0, 6, 13]  # 1348 // 100 = 13 steps per epoch; 0.5 epoch rounds to step 6
    assert r.gradient.shape == (k, e, layers)
    assert r.loss.shape == r.function.shape == (k, e)
    eta = np.asarray(ETA)
    # every weight matrix has a nonzero norm, so a_l = η exactly and DRT is (1+η)^L − 1 (float64 round-off only)
    np.testing.assert_allclose(r.drt, (1 + eta) ** layers - 1, rtol=1e-12, atol=1e-15)
    # C_eff is the largest measured/DRT over η > 0: layer 1 and the worst layer, recomputed from the curves
    np.testing.assert_allclose(r.c_eff_first, (r.gradient[:, 1:, 0] / r.drt[1:]).max(axis=1), rtol=1e-12)
    np.testing.assert_allclose(r.c_eff_worst, (r.gradient[:, 1:, :].max(axis=2) / r.drt[1:]).max(axis=1), rtol=1e-12)
    # the Lipschitz prediction λ‖ΔW‖/‖g₁‖ is linear in η (‖ΔW‖ = η‖U‖) and vanishes at η = 0; the sharpness is
    # measured at initialisation and the end only (NaN between, with its reason)
    ends = r.lipschitz_first[[0, -1]]
    assert np.all(ends[:, 0] == 0)
    assert np.isnan(r.lipschitz_first[1]).all()
    assert np.isnan(r.sharpness[1])
    np.testing.assert_allclose(ends[:, 2] / ends[:, 1], 5.0, rtol=1e-12)
    assert np.all(r.sharpness[[0, -1]] > 0)
    assert np.all(r.gradient[:, 0, :] == 0)
    assert np.all(r.gradient[:, 1:, :] > 0)
    assert "sharpness" in r.to_json()["undefined"]
    assert r.checkpoint_epoch.tolist() == [0.0, 6 / 13, 1.0]
    assert 0 < r.train_acc[-1] <= 1
    assert same(r, cell.CellResult.from_json(json.loads(json.dumps(r.to_json())), r.arrays()))


def test_cell_stores_each_layers_gradient_norm_and_the_companion_against_numpy():
    """‖g_l‖ at each checkpoint on the measurement batch, against plain-NumPy backprop on the same checkpoints (the
    run retrained: same seed, same numbers); the companion ‖Δg_l‖/‖g_l(init)‖ is the relative change rescaled."""
    import numpy_reference as ref

    config = tiny_cell("sgd", 0.1, eta=ETA, n_measure=200)
    r = cell.run(config)
    trained = train.train(config.training, progress=False)
    ds = train.load_data(config.training)
    x, y = np.asarray(ds.x_train[:200], np.float64), np.asarray(ds.y_train[:200])
    net = trained.net
    for k, params in enumerate(trained.checkpoints.values()):
        ws, bs = [np.asarray(p["w"], np.float64) for p in params], [np.asarray(p["b"], np.float64) for p in params]
        _, _, gw, _ = ref.xent_and_grad(ws, bs, x, y, act=net.activation, slope=net.slope,
                                        final_activation=net.final_activation)  # fmt: skip
        # float32 gradients against float64 backprop on the same float32 weights: ~1e-6 relative per sum of 200
        np.testing.assert_allclose(r.gradient_norm[k], [np.linalg.norm(g) for g in gw], rtol=2e-5)
    np.testing.assert_allclose(
        r.gradient_over_initial, r.gradient * r.gradient_norm[:, None, :] / r.gradient_norm[0], rtol=1e-15
    )
    assert np.array_equal(r.gradient_over_initial[0], r.gradient[0])  # at initialisation the two are one
    assert r.chance == 0.1  # digits: 10 classes
    assert r.flags[0] == ""  # at initialisation a net is at chance by construction: never flagged for it


def test_rule_flag_marks_memorised_and_untrained_checkpoints():
    assert rules.flag(1e-3, 1.0, 0.1, trained=True) == "zero loss"
    assert rules.flag(1.1e-3, 1.0, 0.1, trained=True) == ""
    assert rules.flag(2.3, 0.15, 0.1, trained=True) == "at chance"
    assert rules.flag(2.3, 0.151, 0.1, trained=True) == ""
    assert rules.flag(2.3, 0.1, 0.1, trained=False) == ""  # initialisation
    assert rules.flag(float("nan"), float("nan"), 0.1, trained=True) == ""  # a dead net's NaN: not a flag


def test_a_cell_without_slices_and_a_diverged_cell():
    plain = cell.run(tiny_cell("sgd", 0.1, slices=False))
    assert not plain.measured
    assert plain.epoch.tolist() == [0, 1]
    assert not plain.diverged
    assert plain.best_train_acc == max(plain.train_acc_curve)
    gone = cell.run(tiny_cell("sgd", 1e30, slices=False))
    assert gone.diverged
    assert gone.final_train_loss == float("inf")
    assert "train_loss_curve" in gone.to_json()["undefined"]


def test_study_breakdown_sweeps_measures_and_reuses_cells(tmp_path):
    config = study_breakdown.StudyBreakdownConfig(**TINY_STUDY)
    result, reused = runner.run_or_reuse(tmp_path, config, study_breakdown.EXPERIMENT)
    assert not reused
    # 3 optimisers × 2 depths × 2 seeds measured; the sweep: SGD × 2 depths × 2 rates (first seed only)
    assert len(result.cells) == 12
    assert len(result.sweep) == 4
    for depth in (2, 3):
        sweep = [p for p in result.sweep if p.depth == depth]
        best = min(sweep, key=lambda p: p.final_train_loss)
        assert [p.chosen for p in sweep].count(True) == 1
        assert best.chosen
        assert {r.config.training.lr for r in result.select("sgd", depth)} == {best.lr}
    assert len(result.select("fromage", 3)) == 2
    checked = [r for r in result.cells if r.check_sizes]
    assert len(checked) == 1
    assert checked[0].check_gradient.shape == (2, 2, len(config.resolved().eta))
    # the batch check's deviation from the whole set, signed, by hand: the entry farthest from 0 in log terms
    r, check = checked[0], result.measure_check
    at = [int(np.argmin(np.abs(r.eta - e))) for e in (0.01, 0.05, 0.099)]
    whole = r.check_gradient[:, 1, at]  # sizes (50, 0): the whole set second
    for n, curve in ((100, r.gradient[[0, -1]][:, at, 0]), (50, r.check_gradient[:, 0, at])):
        logs = np.log(curve / whole).ravel()
        expected = np.expm1(logs[np.argmax(np.abs(logs))])
        assert dict(zip(check.sizes, check.deviation))[n] == pytest.approx(expected, rel=1e-12)
    cells_dir = tmp_path / "cells"
    assert len(list(cells_dir.iterdir())) == 12 + 4
    # a study that stopped: its result and one cell gone; the rerun computes that cell only and gets the same result
    (tmp_path / "results.json").unlink()
    victim = cells_dir / "adam_lr0.001_L3_s1"
    mtimes = {p.name: (p / "results.json").stat().st_mtime_ns for p in cells_dir.iterdir() if p != victim}
    (victim / "results.json").unlink()
    again, reused = runner.run_or_reuse(tmp_path, config, study_breakdown.EXPERIMENT)
    assert not reused
    assert same(result, again)
    assert all((cells_dir / n / "results.json").stat().st_mtime_ns == t for n, t in mtimes.items())
    assert runner.run_or_reuse(tmp_path, config, study_breakdown.EXPERIMENT)[1]  # now the whole study is reused
    check_summaries_against_cells(result)
    out = json.loads(json.dumps(result.to_json()))
    assert out["axes"]["cells[0].gradient"]["dims"] == ["checkpoint", "eta", "layer"]
    assert out["axes"]["nets[0].probe.median"]["coords"]["probe"] == [0.01, 0.05, 0.099]
    assert check_labels(out) >= 12 * 18
    check_array_labels(result.arrays())
    rows = views.VIEWS["study breakdown"].rows({"study_breakdown": result})
    for claim in result.depth_claims:  # each claim's verdict is the one its row shows
        row = next(r for r in rows if r.claim.startswith(f"Paper: depth {claim.deep} ") and claim.optimizer in r.claim)
        assert row.verdict.startswith("yes") == (claim.separation.outcome == "above")
        judged = claim.separation.outcome not in ("too few seeds", "not judged: every seed flagged")
        assert row.verdict.startswith("not judged") == (not judged)
    for bound in result.bounds:
        row = next(r for r in rows if r.claim.startswith("DRT with constant 1") and r.claim.endswith(bound.optimizer))
        assert row.verdict == ("holds" if bound.drt.statistic <= 1 else f"violated ×{bound.drt.statistic:.3g}")
    assert any(r.claim.startswith("Learning-rate sweep") for r in rows)
    check_study_breakdown_figures(result, views.VIEWS["study breakdown"].figures({"study_breakdown": result}))


def check_study_breakdown_figures(result, figures):
    """What the figures show: the summary's depth panels with one median line and one seed band per optimiser, the
    initialisation and DRT (1+η)^L − 1 drawn with its values; per optimiser, a row per net whose gradient panel
    carries one curve per checkpoint, the two Lipschitz predictions, DRT and C_eff·DRT."""
    c = result.config
    assert sorted(figures) == sorted(["study_breakdown", *(f"study_breakdown_{o}" for o in c.optimizers)])
    panel_a = figures["study_breakdown"].axes[0]
    assert panel_a.get_xlabel() == "depth L"
    assert panel_a.get_ylabel() == "‖Δg₁‖/‖g₁‖"
    labels = [text.get_text() for text in panel_a.get_legend().get_texts()]
    assert labels == [*(f"{o}, end" for o in c.optimizers), "initialisation", "DRT (1+η)^L − 1"]
    assert len(panel_a.collections) == len(c.optimizers) + 1  # a seed band per optimiser and the initialisation's
    drt = next(line for line in panel_a.get_lines() if line.get_label() == "DRT (1+η)^L − 1")
    np.testing.assert_allclose(drt.get_ydata(), [(1 + 0.01) ** d - 1 for d in c.depths], rtol=1e-12)
    fromage = figures["study_breakdown_fromage"]
    gradient_panels = fromage.axes[1::2]
    assert len(gradient_panels) == len(c.nets)
    for ax, net in zip(gradient_panels, [result.net("fromage", d, r) for d, r in c.nets]):
        assert ax.get_yscale() == "log"
        k = len(net.checkpoint_epoch)
        assert len(ax.get_lines()) >= k + 2 + 2  # checkpoints, Lipschitz at init and end, DRT, C_eff·DRT
        drawn_drt = next(line for line in ax.get_lines() if line.get_linestyle() == "--")
        np.testing.assert_allclose(drawn_drt.get_ydata()[1:], net.drt[1:], rtol=1e-12)
    for fig in figures.values():
        plots.plt.close(fig)


def flagged_by_hand(r) -> np.ndarray:
    """Rule "flag" per checkpoint, from its statement: training loss ≤ 1e-3 nats, or after step 0 a training
    accuracy ≤ 1.5 × chance (10 classes here)."""
    return np.array([
        "zero loss" if loss <= 1e-3 else "at chance" if step and acc <= 0.15 else ""
        for step, loss, acc in zip(r.step, r.train_loss, r.train_acc)
    ])  # fmt: skip


def check_summaries_against_cells(result):
    """The stored summaries and verdicts, recomputed by hand from the cells (NumPy on the raw arrays)."""
    from trust.experiments.study_breakdown_summary import lipschitz_end

    for net in result.nets:
        cells = [r for r in result.select(net.optimizer, net.depth, net.residual) if r.measured]
        assert net.seeds == len(cells)
        at = [int(np.argmin(np.abs(r.eta - 0.05))) for r in cells]
        end = np.array([r.gradient[-1, i, 0] for r, i in zip(cells, at)])
        assert net.probe.median[-1, 1] == np.median(end)
        assert (net.probe.low[-1, 1], net.probe.high[-1, 1]) == (end.min(), end.max())
        np.testing.assert_array_equal(net.gradient_first, np.median([r.gradient[:, :, 0] for r in cells], axis=0))
        norms = np.array([r.gradient_norm[:, 0] for r in cells])
        assert np.all(norms > 0)
        np.testing.assert_array_equal(net.gradient_norm_first.median, np.median(norms, axis=0))
        # the companion: the relative change times ‖g₁‖ at the checkpoint over ‖g₁‖ at initialisation
        companion = np.array([r.gradient[-1, i, 0] * r.gradient_norm[-1, 0] / r.gradient_norm[0, 0]
                              for r, i in zip(cells, at)])  # fmt: skip
        np.testing.assert_allclose(net.probe_initial.median[-1, 1], np.median(companion), rtol=1e-12)
        np.testing.assert_array_equal(net.zero_loss, sum(flagged_by_hand(r) == "zero loss" for r in cells))
        np.testing.assert_array_equal(net.at_chance, sum(flagged_by_hand(r) == "at chance" for r in cells))
        # the Lipschitz constants at the end over seeds (the study measures the sharpness along the slice)
        constants = np.array([lipschitz_end(r)[0] for r in cells])
        np.testing.assert_array_equal(net.lipschitz_constants.median, np.median(constants, axis=0))
    for claim in result.depth_claims:
        deep, shallow = (
            np.array(
                [
                    r.gradient[-1, int(np.argmin(np.abs(r.eta - 0.05))), 0]
                    for r in result.select(claim.optimizer, d)
                    if not flagged_by_hand(r)[-1]
                ]
            )
            for d in (claim.deep, claim.shallow)
        )
        assert (claim.flagged_shallow, claim.flagged_deep) == tuple(
            sum(bool(flagged_by_hand(r)[-1]) for r in result.select(claim.optimizer, d))
            for d in (claim.shallow, claim.deep)
        )
        if not (deep.size and shallow.size):
            assert claim.separation.outcome == "not judged: every seed flagged"
            continue
        # rule compare: the ratio of geometric means; under 5 seeds a side no test
        assert claim.separation.effect == pytest.approx(np.exp(np.log(deep).mean() - np.log(shallow).mean()))
        assert (claim.separation.outcome == "too few seeds") == (min(deep.size, shallow.size) < 5)
    for bound in result.bounds:
        along = [n.lipschitz_ratios.median[1] for n in result.nets if n.optimizer == bound.optimizer and n.seeds]
        assert bound.lipschitz_along.statistic == np.nanmax(along)
        cells = [r for r in result.cells if r.config.training.optimizer == bound.optimizer and r.measured]
        kept = [(r, k) for r in cells for k, f in enumerate(flagged_by_hand(r)) if not f]
        # C_eff_worst per checkpoint is the largest layer gradient/DRT over η > 0: the worst over kept checkpoints
        worst = max(r.c_eff_worst[k] for r, k in kept)
        assert bound.drt.statistic == worst
        assert bound.drt.outcome == ("holds" if worst <= 1 else "violated")
        w = bound.drt_worst
        (r,) = [r for r in cells if (r.config.training.depth, r.config.training.residual, r.config.training.seed)
                == (w.depth, w.residual, w.seed)]  # fmt: skip
        k, e, layer = list(r.step).index(w.step), list(r.eta).index(w.eta), w.layer - 1
        assert r.gradient[k, e, layer] / r.drt[e] == w.factor == worst
        for p, eta in zip(w.at_probes, (0.01, 0.05, 0.099)):
            i = int(np.argmin(np.abs(r.eta - eta)))
            assert p == r.gradient[k, i, layer] / r.drt[i]


def test_a_transformer_study_names_its_nets_by_blocks_and_runs_drt_over_every_layer():
    """A study of transformers (issue 28): every cell trains the transformer of its depth's blocks; DRT's product
    runs over every layer — the embedding, six maps and two LayerNorm gains a block, the final gain and the head,
    3 + 8B (docs/theory.md §1) — and rows and figures name the nets B=1, B=2, never by an MLP's L."""
    tiny = {**TINY_STUDY, "model": "transformer", "depths": (1, 2), "optimizers": ("fromage", "adam"), "seeds": 1}
    result = study_breakdown.run(study_breakdown.StudyBreakdownConfig(**{**tiny, "measure_check": ()}))
    assert {r.config.training.model for r in result.cells} == {"transformer"}
    for blocks in (1, 2):
        (r,) = result.select("fromage", blocks)
        assert r.gradient.shape[-1] == 3 + 8 * blocks
        np.testing.assert_allclose(r.drt, (1 + r.eta) ** (3 + 8 * blocks) - 1, rtol=1e-12)
    rows = views.VIEWS["study breakdown"].rows({"study_breakdown": result, "study_breakdown_transformer": result})
    mine = [r for r in rows if "(transformers" in r.claim]
    assert any(r.claim.startswith("Paper: B=2 breaks down faster than B=1 — adam") for r in mine)
    assert any("per block" in r.verdict for r in mine) is False  # two blocks: no depth exponent (it needs three)
    assert len(mine) >= 3 + 2 * 2  # initialisation, then per optimiser the ordering, growth and two bounds
    assert not any("L=" in r.measurement for r in mine)
    figures = views.VIEWS["study breakdown"].figures({"study_breakdown": result, "study_breakdown_transformer": result})
    panel_a = figures["study_breakdown_transformer"].axes[0]
    assert panel_a.get_xlabel() == "blocks B"
    drt = next(line for line in panel_a.get_lines() if line.get_label() == "DRT ∏(1+η) − 1 over every layer")
    np.testing.assert_allclose(drt.get_ydata(), [1.01 ** (3 + 8 * b) - 1 for b in (1, 2)], rtol=1e-12)
    assert figures["study_breakdown_transformer_fromage"].axes[0].get_ylabel().startswith("B=1, fromage")
    for fig in figures.values():
        plots.plt.close(fig)
    with pytest.raises(TrustError, match="transformer study takes no --residual-depth"):
        study_breakdown.StudyBreakdownConfig(**{**tiny, "residual_depth": 16})


def test_a_stored_study_from_before_its_summaries_loads_with_them(tmp_path):
    """A results.json written before the derived fields existed (trust 0.3) is read with them computed."""
    config = study_breakdown.StudyBreakdownConfig(**{**TINY_STUDY, "optimizers": ("fromage",), "seeds": 1})
    result = study_breakdown.run(config)
    old = {
        k: v
        for k, v in result.to_json().items()
        if k not in ("nets", "depth_claims", "paper", "bounds", "measure_check")
    }
    back = study_breakdown.StudyBreakdownResult.from_json(old, result.arrays())
    assert same(back, result)


def test_study_depth_finds_where_each_optimiser_stops():
    config = study_depth.StudyDepthConfig(
        dataset="digits", depths=(2, 3), optimizers=("sgd", "fromage"), width=8, seeds=2, epochs=1, batch_size=100
    )
    result = study_depth.run(config)
    assert len(result.points) == 2 * 2 * 2
    for p in result.points:
        assert p.lrs == study_depth.LR_GRIDS[p.optimizer]
        assert p.trainability() == max(p.best_train_acc)
    for optimizer in ("sgd", "fromage"):
        transitions = result.of(optimizer).transitions
        acc = {(p.seed, p.depth): p.trainability() for p in result.points if p.optimizer == optimizer}
        for s, t in enumerate(transitions):  # by hand: the last depth that trains, the first none deeper does
            trains = [d for d in (2, 3) if acc[s, d] >= config.threshold]
            assert t.last_trains == (trains[-1] if trains else None)
            assert t.first_never == (None if 3 in trains else 3 if trains else 2)
    view = views.VIEWS["study depth"]
    assert len(view.rows({"study_depth": result})) == 2
    assert "study depth" in view.summary(result)
    figure = view.figures({"study_depth": result})["study_depth"]
    ax = figure.axes[0]
    assert ax.get_xlabel() == "depth L"
    assert ax.get_ylabel().startswith("best full-batch training accuracy")
    medians = {line.get_label(): line.get_ydata() for line in ax.get_lines() if line.get_label().endswith("(ours)")}
    for optimizer in ("sgd", "fromage"):  # one median line per optimiser, from the points by hand
        by_depth = [np.median([p.trainability() for p in result.points if (p.optimizer, p.depth) == (optimizer, d)])
                    for d in (2, 3)]  # fmt: skip
        np.testing.assert_allclose(medians[f"{optimizer} (ours)"], by_depth, rtol=1e-12)
    assert any(line.get_label() == f"threshold {config.threshold:g}" for line in ax.get_lines())
    plots.plt.close(figure)


def test_study_depth_runs_only_the_smallest_rates_when_asked():
    """``smallest_rates``: each grid's n smallest rates, and only their cells; the best is taken over those."""
    config = study_depth.StudyDepthConfig(dataset="digits", depths=(2,), optimizers=("adam", "fromage"), width=8,
                                          seeds=1, epochs=1, batch_size=100, smallest_rates=2)  # fmt: skip
    assert study_depth.rates(config, "adam") == (0.001, 0.0001)
    assert study_depth.rates(config, "fromage") == (0.01, 0.001)
    assert sorted(study_depth.cells(config.resolved(), {})) == [
        "adam_lr0.0001_L2_s0", "adam_lr0.001_L2_s0", "fromage_lr0.001_L2_s0", "fromage_lr0.01_L2_s0"
    ]  # fmt: skip
    result = study_depth.run(config)
    assert {p.lrs for p in result.points} == {(0.001, 0.0001), (0.01, 0.001)}
    assert all(p.trainability() == max(p.best_train_acc) for p in result.points)


def test_study_depth_at_matched_steps_sets_the_authors_beside_ours():
    """160 steps with the authors' schedule (×0.95 every 240 steps: no decay yet), read as the mean pre-update
    minibatch accuracy of the 20 minibatches before step 160; the authors' runs at 160 steps are read from the
    committed table by the same rule."""
    config = study_depth.StudyDepthConfig(dataset="digits", depths=(2, 3), optimizers=("sgd_momentum", "adam"),
                                          width=8, seeds=1, steps=40, decay_every=240, read_steps=(20, 40),
                                          batch_size=100)  # fmt: skip
    result = study_depth.run(config)
    for p in result.points:
        assert len(p.at_steps) == 2  # per read step, per rate
        assert all(0 <= a <= 1 for row in p.at_steps for a in row)
    assert [o.read_step for o in result.optimizers or ()] == [20, 20, 40, 40]
    assert result.authors == ()  # they logged 160, 2,400 and 24,000 steps, not 20 or 40
    matched = replace(config, steps=160, read_steps=(160,))
    authors = study_depth_authors.authors_depths(matched)
    sgd = next(a for a in authors if a.optimizer == "sgd_momentum")
    assert sgd.depths[:10] == tuple(range(2, 12))  # their k = 1 … 10 hidden layers: L = k + 1
    # 0.46 < 0.5 at k = 8 (L = 9), 0.11 from k = 9: trains to L = 8, none from L = 9
    assert (sgd.transition.last_trains, sgd.transition.first_never) == (8, 9)
    adam = next(a for a in authors if a.optimizer == "adam")
    assert round(adam.accuracy[adam.depths.index(16)], 2) == 0.51  # the fact: 0.51 at k = 15
    with pytest.raises(TrustError, match="multiples of 20"):
        replace(config, read_steps=(30,)).validate()


def test_the_checks_against_the_2400_step_study_say_whether_each_stop_moved():
    """Hand-made studies on the grid 4–28: the reference stops at L=12 in every seed under both optimisers; the
    2,000-image check stops SGD at 12 too (not moved) and Adam at 24 (deeper by 12 layers): one row per read step,
    its verdicts rule "moved" (conftest decides them again)."""

    def study(stops: dict, train_images: int = 0):
        c = study_depth.StudyDepthConfig(
            dataset="digits", depths=(4, 8, 12, 16, 20, 24, 28), optimizers=("sgd", "adam"), width=8, seeds=3,
            steps=2400, decay_every=240, read_steps=(160, 2400), batch_size=100, train_images=train_images,
        ).resolved()  # fmt: skip
        points = []
        for o, stop in stops.items():
            for d in c.depths:
                a = 1.0 if d < stop else 0.1
                points += [study_depth.DepthPoint(o, d, c.seed + s, (0.01,), (a,), ((a,), (a,))) for s in range(3)]
        return study_depth.StudyDepthResult(c, tuple(points)).derive()

    reference, check = study({"sgd": 12, "adam": 12}), study({"sgd": 12, "adam": 24}, train_images=2000)
    view = views.VIEWS["study depth"]
    rows = [r for r in view.rows({"study_depth_2400": reference, "study_depth_2000_images": check})
            if r.claim.startswith("Does where training stops move")]  # fmt: skip
    assert [r.claim.endswith(f"{n} steps") for r, n in zip(rows, ("160", "2,400"))] == [True, True]
    for row in rows:
        assert [v.outcome for v in row.verdicts] == ["not moved", "deeper"]
        assert "adam: deeper by 12 layers" in row.verdict and "stops at L=24 (seeds 24–24)" in row.measurement
    assert not [r for r in view.rows({"study_depth_2000_images": check}) if r.claim.startswith("Does where")]


@pytest.mark.parametrize(
    ("accuracies", "expected"),
    [
        ((0.9, 0.8, 0.2, 0.1), (6, 4, 6)),  # monotone: trains to 4, none from 6
        ((0.9, 0.3, 0.8, 0.1), (4, 6, 8)),  # a dip at 4, trains again at 6: the transition is after 6
        ((0.9, 0.45, 0.49, 0.48), (4, 2, 4)),  # a plateau just under the threshold: it stops at 4
        ((0.9, 0.9, 0.9, 0.9), (None, 8, None)),  # trains at every depth
        ((0.2, 0.1, 0.6, 0.1), (2, 6, 8)),  # fails first, trains at 6 only
        ((0.1, 0.1, 0.1, 0.1), (2, None, 2)),  # trains nowhere
    ],
)
def test_stop_rule_on_hand_made_curves(accuracies, expected):
    t = rules.transition((2, 4, 6, 8), accuracies, 0.5)
    assert (t.first_fail, t.last_trains, t.first_never) == expected
    assert t.monotone == (t.first_fail == t.first_never)


def test_stop_verdict_locates_the_transition_only_within_the_resolution():
    near = [rules.transition((8, 10, 12), (0.9, 0.9, 0.1), 0.5), rules.transition((8, 10, 12), (0.9, 0.1, 0.1), 0.5)]
    v = rules.stop_depth(near, 0.5)
    assert (v.outcome, v.statistic, v.low, v.high, v.effect) == ("stops", 11.0, 10, 12, 2.0)
    far = [rules.transition((2, 8, 16), (0.9, 0.9, 0.1), 0.5)]  # 8 layers apart: beyond ±2
    assert rules.stop_depth(far, 0.5).outcome == "stops, not located"
    never = [rules.transition((2, 8), (0.9, 0.9), 0.5), near[0]]
    v = rules.stop_depth(never, 0.5)
    assert (v.outcome, v.statistic) == ("trains", 1)


def test_cli_study_breakdown_json_and_errors(capsys):
    args = ["study", "breakdown", "--dataset", "digits", "--depths", "2", "--residual-depth", "0", "--width", "8"]
    args += ["--seeds", "1", "--epochs", "1", "--checkpoints", "0", "1", "--optimizers", "fromage", "sgd"]
    args += [
        "--sweep-lrs",
        "0.1",
        "--eta-steps",
        "3",
        "--n-measure",
        "100",
        "--measure-check",
        "50",
        "--batch-size",
        "100",
    ]
    assert cli.main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["config"]["training"]["optimizer"] for c in out["cells"]] == ["fromage", "sgd"]
    assert out["config"]["depths"] == [2]
    assert out["sweep"][0]["chosen"] is True


# A toy study, with no JAX: the second cell depends on the first one's result (as SGD's rate on its sweep).
@dataclass(frozen=True)
class Toy(Config):
    x: int = param(1, "input")


@dataclass(frozen=True, eq=False)
class ToyResult(Result):
    y: int


TOY_CELL = Experiment(Toy, ToyResult, lambda c: ToyResult(c.x * 10))


def test_a_study_may_ask_for_cells_that_depend_on_finished_ones():
    def cells(config, done):
        first = {"a": Toy(config.x)}
        return first if "a" not in done else {**first, "b": Toy(done["a"].y + 1)}

    study = Study(TOY_CELL, cells, lambda config, done: ToyResult(done["b"].y))
    assert run_study(study, Toy(2)).y == 210
    asked = []
    assert run_study(study, Toy(3), lambda name, c: asked.append(name) or TOY_CELL.run(c)).y == 310
    assert asked == ["a", "b"]
    with pytest.raises(TrustError, match="must be ≥"):
        study_depth.StudyDepthConfig(seeds=0)


def test_a_process_of_a_job_computes_its_share_of_each_round_and_reads_the_rest(monkeypatch):
    # Process 1 of 2 (faked: no JAX job is started): it computes every second cell of each round, waits at a
    # barrier, reads the other process's cells, and combines them all in the study's order.
    def cells(config, done):
        first = {f"c{i}": Toy(i) for i in range(5)}
        return first if len(done) < 5 else {**first, "last": Toy(sum(r.y for r in done.values()))}

    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    barriers: list[str] = []
    monkeypatch.setattr(parallel, "barrier", barriers.append)
    computed, read = [], []
    order = Study(TOY_CELL, cells, lambda config, done: ToyResult(list(done)))
    result = run_study(
        order,
        Toy(0),
        lambda name, c: computed.append(name) or TOY_CELL.run(c),
        lambda name, c: read.append(name) or TOY_CELL.run(c),
    )
    assert computed == ["c1", "c3"]
    assert read == ["c0", "c2", "c4", "last"]  # round 2 has one cell: process 0's
    assert barriers == ["Toy round 1", "Toy round 2"]
    assert result.y == ["c0", "c1", "c2", "c3", "c4", "last"]


def test_a_cell_stored_flat_by_trust_0_3_is_read_into_the_nested_layout():
    """trust 0.3 wrote a cell's training fields beside its measurement ones; such a config.json is the same run."""
    flat = dict(optimizer="sgd", lr=0.1, model="mlp", depth=3, width=8, residual=False, norm="none", channels=16,
                dataset="digits", data_dir="", epochs=1, batch_size=100, lr_decay=0.9, checkpoints=(0.0, 0.5, 1.0),
                eta=list(ETA), n_measure=200, sharpness_tol=1e-3, measure_check=[], slices=True, seed=4)  # fmt: skip
    nested = cell.CellConfig.from_dict(flat)
    assert nested.training == train.TrainConfig(
        optimizer="sgd", learning_rate=0.1, depth=3, width=8, dataset="digits", epochs=1, batch_size=100,
        lr_decay=0.9, checkpoints=(0.0, 0.5, 1.0), seed=4,
    )  # fmt: skip
    assert (nested.eta, nested.n_measure, nested.slices) == (ETA, 200, True)
    sweep = cell.CellConfig.from_dict({**flat, "slices": False})  # 0.3 dropped a sweep's checkpoints when training
    assert sweep.training.checkpoints == ()
    assert runner.canonical(cell.CellConfig, flat) == nested.to_dict()


def test_a_matched_study_trains_on_the_authors_schedule_and_compares_with_their_runs():
    """--matched: 2,400 steps, ×0.9 every 240, slices at their checkpoint steps; layer 1 at the probe η set beside
    their two runs of the depth-2 net (the committed table), factors checked by hand."""
    config = study_breakdown.StudyBreakdownConfig(dataset="digits", depths=(2,), residual_depth=0, width=8, seeds=2,
                                                  optimizers=("fromage",), matched=True, eta_steps=4, n_measure=40,
                                                  measure_check=())  # fmt: skip
    result = study_breakdown.run(config)
    training = result.cells[0].config.training
    assert (training.steps, training.decay_every, training.lr_decay) == (2400, 240, 0.9)
    assert list(result.cells[0].step) == [0, 12, 24, 48, 96, 240, 720, 1200, 1680, 2160, 2400]  # theirs, and the end
    (cmp,) = result.paper or ()
    assert cmp.runs == 2  # their depth-2 net ran twice (two folders)
    table = authors.table()["figure1"]
    runs = [r for r in table["rows"] if r["net"] == "depth1"]
    column = table["eta"].index(0.05)
    their_last = [r["layer1_change"][r["steps"].index(2160)][column] for r in runs]
    assert cmp.theirs_low[2, 1] == min(their_last)
    assert cmp.theirs_high[2, 1] == max(their_last)
    ours = [r.gradient[list(r.step).index(0), r.at_eta(0.05), 0] for r in result.cells]
    assert cmp.ours.median[0, 1] == pytest.approx(np.median(ours))
    for k in range(3):
        for p in range(3):  # 1 where the ranges meet, else our median over the nearest of theirs
            lo, hi, s = cmp.theirs_low[k, p], cmp.theirs_high[k, p], cmp.ours
            expected = (
                1.0
                if s.high[k, p] >= lo and s.low[k, p] <= hi
                else s.median[k, p] / (hi if s.median[k, p] > hi else lo)
            )
            assert cmp.factor[k, p] == pytest.approx(expected)
    assert (cmp.verdict.outcome == "within their runs") == bool(np.all(cmp.factor == 1))
    figure = views.VIEWS["study breakdown"].figures({"study_breakdown": result, "study_breakdown_paper": result})
    panel = figure["study_breakdown_paper"].axes[1]  # layer 1's gradient change against η
    dashed = [line for line in panel.get_lines() if line.get_linestyle() == "--" and line.get_linewidth() == 0.7]
    theirs = [line for line in dashed if len(line.get_xdata())]  # the legend's entry has no data
    assert len(theirs) == 2 * 10  # their two runs, ten checkpoints each, the table's curves
    np.testing.assert_allclose(theirs[0].get_xdata(), table["eta"])
    np.testing.assert_allclose(theirs[0].get_ydata(), plots.positive(np.asarray(runs[0]["layer1_change"][0])))
    assert "step 2160" in [t.get_text() for t in figure["study_breakdown_paper"].axes[0].get_legend().get_texts()]
    plots.plt.close("all")
    unmatched = views.VIEWS["study breakdown"].rows(
        {"study_breakdown": replace(result, config=replace(config, matched=False))}
    )
    assert any(row.verdict == "no comparison" for row in unmatched)


class _FakeCell:
    """A finished train-only cell whose accuracy depends on depth alone (the refinement sees nothing else)."""

    def __init__(self, accuracy: float):
        self.best_train_acc, self.diverged = accuracy, False

    def accuracy_before(self, step: int) -> float:
        return self.best_train_acc


def test_refinement_halves_each_bracket_until_the_stop_is_located():
    """Depth 2 trains, 16 does not, the true transition between 9 and 10: the grid gains 9 (the midpoint of 2 and
    16), then 12 (of 9 and 16); 9 and 12 are 3 apart (≤ 4): located, no more cells."""
    config = study_depth.StudyDepthConfig(depths=(2, 16), optimizers=("fromage",), seeds=2, refine=True)
    done: dict = {}
    rounds = 0
    while todo := {n: c for n, c in study_depth.cells(config, done).items() if n not in done}:
        rounds += 1
        done.update({n: _FakeCell(0.9 if c.training.depth <= 9 else 0.1) for n, c in todo.items()})
    assert study_depth.depth_grid(config.resolved(), "fromage", done) == (2, 9, 12, 16)
    assert rounds == 3
    assert len(done) == 4 * 2 * 3  # depths × seeds × rates
    unrefined = replace(config, refine=False)
    assert study_depth.depth_grid(unrefined.resolved(), "fromage", done) == (2, 16)


def test_a_flagged_checkpoints_worst_factor_is_reported_apart():
    """Rule "flag" on a memorised end (training loss set to 0): the worst DRT factor over unflagged checkpoints
    leaves it out, and the flagged worst is that checkpoint's own largest layer gradient/DRT."""
    from trust.experiments.study_breakdown_summary import worst_point

    r = cell.run(tiny_cell("fromage", 0.01, eta=ETA, n_measure=200))
    # a net that trained (accuracy 0.9, then 1.0 at zero loss): only the end is flagged
    memorised = replace(r, train_loss=np.array([2.3, 0.3, 0.0]), train_acc=np.array([0.1, 0.9, 1.0]))
    assert memorised.flags == ("", "", "zero loss")
    ratio = r.gradient[:, 1:, :] / r.drt[1:, None]
    kept, flagged = worst_point([memorised], flagged=False), worst_point([memorised], flagged=True)
    assert kept.factor == np.max(ratio[:-1]) and kept.flag == ""
    assert flagged.factor == np.max(ratio[-1]) and flagged.flag == "zero loss" and flagged.step == r.step[-1]
    trained = replace(memorised, train_loss=np.array([2.3, 0.3, 0.1]))
    assert worst_point([trained], flagged=True) is None


def test_the_constants_a_lipschitz_model_needs_along_the_slice():
    """The secant ‖Δ∇ℒ‖/‖ΔW‖ and the sharpness at W + ηU for the probe η (recomputed here on the retrained
    checkpoints); with the largest secant as its constant the Lipschitz prediction bounds layer 1's change by
    construction (‖Δg₁‖ ≤ ‖Δ∇ℒ‖ = secant·‖ΔW‖), so that ratio is at most 1 at every probe η."""
    from trust.core import estimate, measure, perturb
    from trust.experiments.study_breakdown_summary import lipschitz_end

    config = tiny_cell("sgd", 0.1, eta=(0.0, 0.01, 0.05, 0.099), n_measure=200, sharpness_along=True)
    r = cell.run(config)
    assert np.isnan(r.secant[:, 0]).all() and np.all(r.secant[:, 1:] > 0)
    assert np.isnan(r.sharpness_along[:-1]).all() and np.isfinite(r.sharpness_along[-1]).all()
    trained = train.train(config.training, progress=False)
    ds = train.load_data(config.training)
    x, y = ds.x_train[:200], ds.y_train[:200]
    end = list(trained.checkpoints.values())[-1]
    u = perturb.along_gradient(end, measure.full_batch_gradient(trained.net.apply, end, x, y))
    for p, eta in enumerate((0.01, 0.05, 0.099)):
        lam = estimate.sharpness(trained.net.apply, perturb.perturbed(end, u, eta), x, y, tol=1e-3, seed=0)
        assert r.sharpness_along[-1, p] == pytest.approx(lam, rel=1e-9)  # the same computation, deterministic
    constants, ratios = lipschitz_end(r)
    assert constants[0] == r.sharpness[-1]
    assert constants[1] == max(r.sharpness[-1], *r.sharpness_along[-1])
    assert constants[2] == np.nanmax(r.secant[-1, 1:])
    assert np.all(ratios[2] <= 1 + 1e-9)  # by construction (float round-off only)
    np.testing.assert_allclose(ratios[0], r.gradient[-1, 1:, 0] / r.lipschitz_first[-1, 1:], rtol=1e-12)


def test_measure_all_measures_on_the_whole_training_set():
    c = study_breakdown.StudyBreakdownConfig(measure_all=True).resolved()
    assert c.n_measure == 0  # a cell's 0: every training example
    assert c.measure_check == (125, 250, 1000)  # the smaller batches, checked against the whole set
    with pytest.raises(TrustError, match="drop --n-measure"):
        study_breakdown.StudyBreakdownConfig(measure_all=True, n_measure=500)


def test_study_breakdown_decides_depth_claims_by_welch_and_holm_over_its_table():
    """Five seeds: every depth claim's p by hand (Welch on logs; the growth paired by seed; seeds flagged at the end
    left out), then Holm over the study's claims (the initialisation claim once) — the stored verdicts are these."""
    from test_rules import welch_by_hand

    five = dict(optimizers=("fromage",), seeds=5, measure_check=(), sharpness_along=False, epochs=2, width=32)
    config = study_breakdown.StudyBreakdownConfig(**{**TINY_STUDY, **five})
    result = study_breakdown.run(config)
    claims = result.depth_claims
    assert len(claims) == 1

    def probe(d, optimizer, k, kept=True):
        cells = [r for r in result.select(optimizer, d) if not (kept and flagged_by_hand(r)[-1])]
        return np.array([r.gradient[k, r.at_eta(0.05), 0] for r in cells])

    raw, tested = [], []  # the p-values by hand, and the verdicts they belong to
    for claim in claims:
        deep, shallow = probe(3, claim.optimizer, -1), probe(2, claim.optimizer, -1)
        if min(deep.size, shallow.size) >= 5:
            raw.append(welch_by_hand(deep, shallow)[0])
            tested.append(claim.separation)
        else:
            assert claim.separation.outcome in ("too few seeds", "not judged: every seed flagged")
        d = np.log(probe(3, claim.optimizer, -1)) - np.log(probe(3, claim.optimizer, 0))
        if d.size >= 5:
            raw.append(2 * stats.t.sf(abs(d.mean() / (d.std(ddof=1) / np.sqrt(d.size))), d.size - 1))
            tested.append(claim.growth)
        else:
            assert claim.growth.outcome in ("too few seeds", "not judged: every seed flagged")
    raw.append(welch_by_hand(probe(3, "fromage", 0, kept=False), probe(2, "fromage", 0, kept=False))[0])
    tested.append(claims[0].initial)
    assert len(raw) >= 3  # enough claims tested for Holm to matter
    order = np.argsort(raw)
    adjusted = np.empty(len(raw))
    running = 0.0
    for rank, i in enumerate(order):  # Holm by hand
        running = max(running, min(1.0, (len(raw) - rank) * raw[i]))
        adjusted[i] = running
    np.testing.assert_allclose([v.statistic for v in tested], adjusted, rtol=1e-9)
    for v, p in zip(tested, adjusted):
        assert (v.outcome == "not separated") == (p >= 0.05)


def test_the_papers_order_is_decided_by_rule_compare_on_stop_depths_with_holm():
    """Five seeds' stop depths per optimiser (one past the grid where a seed never stops), by hand: Welch on their
    logs, then Holm over the study's two order claims."""
    from types import SimpleNamespace

    from test_rules import welch_by_hand

    grid = (2, 4, 8, 16, 24, 32)
    stops = {"sgd_momentum": [8, 8, 16, 8, 8], "adam": [24, 16, 24, 24, 32], "fromage": [16, 24, 24, 16, 24]}

    def transition(stop):  # a curve that trains below ``stop`` and nowhere from it
        return rules.transition(grid, [0.9 if d < stop else 0.1 for d in grid], 0.5)

    result = SimpleNamespace(
        config=SimpleNamespace(optimizers=("sgd_momentum", "adam", "fromage")),
        reads=(2400,),
        of=lambda o, step: SimpleNamespace(transitions=[transition(s) for s in stops[o]]),
        depths_of=lambda o: grid,
        authors_of=lambda o, step: None,
    )
    claims = study_depth_authors.order_claims(result)
    assert [(c.shallower, c.deeper) for c in claims] == [("sgd_momentum", "adam"), ("adam", "fromage")]
    raw = [welch_by_hand(np.array(stops[b], float), np.array(stops[a], float))[0] for a, b in
           (("sgd_momentum", "adam"), ("adam", "fromage"))]  # fmt: skip
    first, second = sorted(range(2), key=lambda k: raw[k])  # Holm with m = 2
    adjusted = {first: min(1, 2 * raw[first]), second: max(min(1, 2 * raw[first]), raw[second])}
    for k, claim in enumerate(claims):
        assert claim.ours.rule == "compare"
        assert claim.ours.statistic == pytest.approx(adjusted[k], rel=1e-9)
    assert claims[0].ours.outcome == "above"  # Adam deeper than SGD: separated
    assert claims[1].ours.outcome == "not separated"  # Fromage below Adam in these seeds, inside the noise


def test_a_cell_whose_config_changed_is_set_aside_and_recomputed(tmp_path, capsys):
    """A study owns its cells: one stored for another config (the code now measures more) is moved to cells.old and
    computed again, not refused; a cell of the current config stays where it is."""
    stale, current = tiny_cell("sgd", 0.1, slices=False), tiny_cell("sgd", 0.05, slices=False)
    cell_dir = tmp_path / "cells" / "sgd"
    runner.run_or_reuse(cell_dir, stale, cell.EXPERIMENT)
    runner.set_aside_stale(cell_dir, stale)
    assert (cell_dir / "results.json").exists()  # the same config: left in place
    runner.set_aside_stale(cell_dir, current)
    assert not cell_dir.exists()
    assert (tmp_path / "cells.old" / "sgd" / "results.json").exists()
    assert "its config changed; moved to" in capsys.readouterr().err
    assert runner.run_or_reuse(cell_dir, current, cell.EXPERIMENT)[1] is False  # computed afresh
