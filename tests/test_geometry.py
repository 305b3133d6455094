"""`trust geometry` (docs/theory.md §8): the cells measure what they say, the study combines them, the CLI prints
the ratios and the width exponent."""

import json
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from labels import check_array_labels, check_labels

from trust.base import linalg, schema
from trust.base.errors import TrustError
from trust.core import measure, perturb, train
from trust.experiments import geometry, geometry_summary
from trust.experiments.shared import cell, geometry_cell, points, rules, runner
from trust.front import cli
from trust.views import geometry as geometry_views
from trust.views import plots

TINY = dict(dataset="digits", epochs=1, batch_size=100, eta=(0.01, 0.1), n_measure=60)


@pytest.fixture(scope="module")
def study():
    """Widths 8 and 16 at depth 2, depths 2 and 3 at width 8: three cells per seed, two seeds, one optimiser."""
    config = geometry.GeometryConfig(
        quick=True,  # no ResNet cells
        dataset="digits", widths=(8, 16), depth=2, depths=(2, 3), width=8, optimizers=("fromage",), seeds=2,
        epochs=1, eta=(0.01, 0.1), n_measure=60, batch_size=100,
    )  # fmt: skip
    done = {}
    result = runner.run_study(geometry.STUDY, config, lambda name, c: done.setdefault(name, geometry_cell.run(c)))
    return done, result


def test_cells_and_sweeps(study):
    done, result = study
    assert sorted(done) == ["fromage_w16_L2_s0", "fromage_w16_L2_s1", "fromage_w8_L2_s0", "fromage_w8_L2_s1",
                            "fromage_w8_L3_s0", "fromage_w8_L3_s1"]  # fmt: skip
    assert result.width.function.shape == (1, 2, 2, 2, 4, 3, 2)
    assert result.depth.c_eff.shape == (1, 2, 2, 2, 3)
    assert result.diverged == 0
    assert np.all(result.width.train_acc > 0.1)
    # the depth sweep's depth-2 cell is the width sweep's width-8 cell
    np.testing.assert_array_equal(result.depth.function[:, :, 0], result.width.function[:, :, 0])


def test_each_sweep_gathers_its_cells_modular_family_and_feature_learning(study):
    """docs/theory.md §10, §12: per cell and family, the modular family's largest ratio over η to the nominal and
    to the exact bound (a theorem on these bias-free nets: at most 1), ∏‖W_l‖_*, and the first, median hidden and
    last layer's feature learning — each read back from the cells by hand."""
    done, result = study
    for name, (v, sweep) in {"fromage_w16_L2_s1": (1, result.width), "fromage_w8_L3_s0": (1, result.depth)}.items():
        cell = done[name]
        r = int(name[-1])
        expected = np.max(cell.modular_function / cell.modular_nominal, axis=-1)
        np.testing.assert_allclose(sweep.modular_c_eff[0, r, v], expected, rtol=1e-12)
        np.testing.assert_allclose(sweep.atom_product[0, r, v], np.prod(cell.atom_norm, axis=1), rtol=1e-12)
        features = cell.features  # (span, feature, layer)
        hidden = np.median(features[..., 1:-1], axis=-1) if features.shape[-1] > 2 else np.nan
        np.testing.assert_allclose(sweep.features[0, r, v, ..., 0], features[..., 0], rtol=1e-12)
        np.testing.assert_allclose(sweep.features[0, r, v, ..., 1], hidden, rtol=1e-12)
        np.testing.assert_allclose(sweep.features[0, r, v, ..., 2], features[..., -1], rtol=1e-12)
    for sweep in (result.width, result.depth):
        assert np.all(sweep.modular_exact <= 1 + 1e-5)  # the theorem of §10.3 in float32 nets
        assert np.all(rules.finite(sweep.tared_exact) <= 1 + 1e-5)  # the same under the other allocation (§10.1)
    # the hidden layers tared only where there are hidden layers: depth 3, not depth 2
    for r in range(2):
        cell = done[f"fromage_w8_L3_s{r}"]
        assert cell.config.hidden_mass == geometry.TARED_HIDDEN_MASS and cell.tared_function.shape == (2, 4, 2)
        expected = np.max(cell.tared_function / cell.tared_nominal, axis=-1)
        np.testing.assert_allclose(result.depth.tared_c_eff[0, r, 1], expected, rtol=1e-12)
        assert done[f"fromage_w8_L2_s{r}"].tared_function.size == 0
    assert np.all(np.isnan(result.depth.tared_c_eff[:, :, 0]))
    summary = result.summary  # one depth with hidden layers (3): no depth order, the comparison with unit masses
    assert summary.tared_depth is not None and summary.tared_orders == () and len(summary.tared_against_unit) == 1
    np.testing.assert_allclose(
        summary.tared_depth.median[:, 1], np.median(result.depth.tared_c_eff[0, :, 1, :, 0], axis=0)
    )
    assert result.residual is None
    # the first seed's cells measured their layers as modules; the depth sweep's deepest also its curvature
    records = {(r.width, r.depth, r.seed): r for r in result.layers}
    assert sorted(records) == [(8, 2, 0), (8, 3, 0), (16, 2, 0)]
    deep, cell = records[8, 3, 0], done["fromage_w8_L3_s0"]
    np.testing.assert_array_equal(deep.input_sensitivity, cell.input_sensitivity)
    np.testing.assert_array_equal(deep.block_curvature, cell.block_curvature)
    np.testing.assert_array_equal(deep.breakdown, cell.gradient[:, 0, 0])
    assert deep.block_curvature.shape == (2, 3) and records[8, 2, 0].block_curvature.size == 0


def test_each_family_has_its_prescribed_size_in_its_own_geometry(study):
    """The step of every family has relative size exactly 1 per unit η in its own geometry (closed form: the
    constructor divides by the measured norm), measured again here by NumPy. Training runs in float32, whose
    norms carry ~1e-7 relative rounding; the operator norms are exact SVDs (widths ≤ 256)."""
    done, _ = study
    for r in done.values():
        for g in range(3):
            np.testing.assert_allclose(r.sizes[:, :, g, g], 1.0, rtol=1e-5)
        # the identity b = a·√(srank W / srank ΔW) (docs/theory.md §8.2) on the Frobenius family
        a, b = r.sizes[:, :, 0, 0], r.sizes[:, :, 0, 1]
        w_rank = r.weight_rank[:, None, :]
        np.testing.assert_allclose(b, a * np.sqrt(w_rank / r.step_rank[:, :, 0]), rtol=1e-4)


def test_the_operator_norm_theorem_holds_on_every_family(study):
    """A theorem on bias-free relu nets (docs/theory.md §2.3): zero violations beyond each point's float32
    rounding allowance (bounds.operator_rounding_allowance, itself tested against float64 in test_reliability)."""
    done, result = study
    ratios = np.concatenate([r.operator_ratio.ravel() for r in done.values()])
    allowance = np.concatenate([r.operator_allowance.ravel() for r in done.values()])
    assert ratios.size == 6 * 2 * 12 * 2
    assert np.all(np.isfinite(ratios))
    assert np.all((allowance > 0) & (allowance < 1))  # positive, and small enough to leave the check meaningful
    assert np.all(ratios <= 1 + allowance)
    assert result.operator_violations == 0
    assert result.operator_worst == pytest.approx(np.max(ratios))
    assert result.operator_allowance == pytest.approx(np.max(allowance))


def test_gradient_frobenius_family_is_the_papers_slice(study):
    """The (gradient, Frobenius) family is the fixed-gradient slice of the breakdown cells, measured independently
    through trust.experiments.shared.cell at the same point."""
    done, _ = study
    r = done["fromage_w8_L2_s0"]
    c = r.config
    ds = train.load_data(c.training)
    net, params = train.initial_params(c.training, ds)
    x, y = points.measurement_batch(ds, c.n_measure)
    dist = cell.gradient_slice(net, params, x, y, np.asarray(c.eta))
    np.testing.assert_allclose(r.function[0, 0, 0], dist.function_frob, rtol=1e-5)  # float32: same program
    np.testing.assert_allclose(r.gradient[0, 0, 0], dist.gradient[:, dist.is_weight], rtol=1e-5)


def test_step_direction_is_the_optimisers_first_step(study):
    """The 'step' family at initialisation moves along W₁ − W₀ of the training run: its stable rank equals that
    of the actual Fromage step (computed here from a second, identical training run)."""
    done, _ = study
    r = done["fromage_w16_L2_s1"]
    c = r.config
    trained = train.train(replace(c.training, checkpoint_steps=(0, 1)), progress=False)
    step = jax.tree_util.tree_map(jnp.subtract, trained.checkpoints[1], trained.checkpoints[0])
    np.testing.assert_allclose(r.step_rank[0, 3, 0], linalg.stable_ranks(step), rtol=1e-4)


def own_bound_by_hand(r, k: int, d: int, g: int) -> np.ndarray:
    """∏_l (1 + η·s_l) − 1 over η, each layer's size s_l in the family's own geometry (docs/theory.md §8), as a plain
    NumPy product — not the cell's bound() nor bounds.drt_bound."""
    return np.prod(1.0 + np.outer(r.eta, r.sizes[k, d, g, g]), axis=1) - 1.0


def test_combined_ratios_and_exponent(study):
    done, result = study
    # measured/bound of the (gradient, spectral) family, every η and checkpoint and cell; at initialisation only
    # the first optimiser's cells count (here there is one optimiser, so all)
    measured = np.concatenate(
        [r.function_max[k, 0, 1] / own_bound_by_hand(r, k, 0, 1) for r in done.values() for k in (0, 1)]
    )
    assert result.ratio_function[0, 0, 1] == pytest.approx(np.median(measured), rel=1e-12)
    assert result.ratio_function[1, 0, 1] == pytest.approx(np.max(measured), rel=1e-12)
    # the width exponent: per seed the least-squares slope of log change against log width (NumPy's lstsq on the
    # design [log n, 1], not trust's width_exponent), then the mean over seeds
    design = np.stack([np.log([8.0, 16.0]), np.ones(2)], axis=1)
    per_seed = [
        np.linalg.lstsq(design, np.log(result.width.function[0, s, :, 0, 0, 0, 0]), rcond=None)[0][0] for s in range(2)
    ]
    assert result.exponent[0, 0, 0, 0] == pytest.approx(np.mean(per_seed), rel=1e-9)
    # two seeds: a Student-t interval, t_{0.975, 1}·s/√2 = 12.706·|p₁ − p₀|/2
    assert result.exponent_half[0, 0, 0, 0] == pytest.approx(12.7062047 * abs(per_seed[1] - per_seed[0]) / 2, rel=1e-6)
    rt = geometry.GeometryResult.from_json(result.to_json(), result.arrays())
    assert schema.same(result, rt)
    rows = geometry_views.rows({"geometry": result})
    # the tightest geometry, the operator-norm theorem, four exponents, C_eff; the modular bound (a theorem) and its
    # constant across depth; feature learning per span and layer group
    # and the chosen cells' layers: input sensitivity, output change per unit modular step, per-layer Lipschitz
    assert [r.kind for r in rows] == ["assumption", "theorem", *["claim"] * 4, "measurement", "theorem", "claim",
                                      "claim", *["claim"] * 6, "measurement", "theorem", "assumption"]  # fmt: skip
    assert rows[-2].verdict == result.summary.weight_theorem.outcome == "holds"
    assert result.summary.records == ("fromage w8 L2 s0", "fromage w16 L2 s0", "fromage w8 L3 s0")  # grid order
    modular = rows[7]
    assert modular.verdict == result.summary.modular_theorem.outcome == "holds"
    tared = rows[9]  # the other allocation against the unit masses (one depth with hidden layers: no depth order)
    assert tared.claim.startswith("Modular norm with the other mass allocation") and len(tared.verdicts) == 1
    assert "deepest against shallowest" not in tared.verdict
    assert "L=2" not in tared.measurement and "L=3" in tared.measurement  # depth 2 has no hidden layer to tare
    features = [r for r in rows if r.claim.startswith("Feature learning across width")]
    assert [len(r.verdicts) for r in features] == [1] * 6  # one optimiser in this study
    exponent_rows = [r for r in rows if r.claim.startswith("Width exponent")]
    for row, claim in zip(exponent_rows, result.summary.exponents):
        # one rule "interval" verdict per optimiser, each named with its outcome
        assert [v.outcome == "consistent" for v in row.verdicts] == list(claim.inside)
        assert row.verdict.count(": consistent") == claim.consistent
    figures = geometry_views.figures({"geometry": result})
    assert sorted(figures) == ["geometry_ceff", "geometry_layers", "geometry_modular", "geometry_ranks",
                               "geometry_ratios", "geometry_width"]  # fmt: skip
    layers = figures["geometry_layers"].axes
    # (b) each record with curvature draws its λ_l at init and end, the values the record holds
    drawn = [line for line in layers[1].get_lines() if line.get_label() == "fromage L=3, end"]
    np.testing.assert_allclose(drawn[0].get_ydata(), result.layers[-1].block_curvature[1], rtol=1e-12)
    modular = figures["geometry_modular"].axes
    # (a) the modular C_eff's medians at init and end are the summary's; (c, d) one line per group and span
    for summary, label in ((result.summary.modular_depth, "modular step (function change)"),
                           (result.summary.tared_depth, "modular step, hidden layers tared to mass 1")):  # fmt: skip
        for k, tag in enumerate(geometry_summary.CHECKPOINTS):
            drawn = [line for line in modular[0].get_lines() if line.get_label() == f"{label}, {tag}"]
            np.testing.assert_allclose(drawn[0].get_ydata(), summary.median[k], rtol=1e-12)
    assert len([line for line in modular[2].get_lines() if "after" in line.get_label()]) == 6
    width = figures["geometry_width"]
    for ax in width.axes:
        assert ax.get_xlabel() == "width n"
        assert ax.get_ylabel().startswith("‖ΔF‖/‖F‖")
        assert len(ax.get_legend().get_texts()) == len(geometry_cell.RAW_DIRECTIONS)  # one line per direction
    for fig in figures.values():
        plots.plt.close(fig)


def test_width_exponent_recovers_a_power_law():
    widths = np.array([32, 64, 128, 256])
    assert geometry.width_exponent(widths, 0.3 * widths**0.5) == pytest.approx(0.5, abs=1e-12)
    assert geometry.width_exponent(widths, np.full(4, 0.02)) == pytest.approx(0.0, abs=1e-12)


def test_bounds_of_a_cell_are_each_geometrys_product(study):
    done, _ = study
    r = done["fromage_w8_L3_s0"]
    own = r.bound()
    for g in range(3):
        np.testing.assert_allclose(own[1, 2, g], own_bound_by_hand(r, 1, 2, g), rtol=1e-12)
    by_hand = (
        np.prod(1.0 + np.outer(r.eta, r.sizes[0, 0, 0, 1]), axis=1) - 1.0
    )  # family (gradient, Frobenius), spectral sizes
    np.testing.assert_allclose(r.bound(1)[0, 0, 0], by_hand, rtol=1e-12)


def test_cli_geometry_json_and_bad_values(capsys):
    args = [
        "geometry",
        "--quick",
        "--dataset",
        "digits",
        "--widths",
        "8",
        "16",
        "--depth",
        "2",
        "--depths",
        "2",
        "--width",
        "8",
    ]
    args += ["--optimizers", "orthogonal_sgd", "--seeds", "1", "--epochs", "1", "--eta", "0.01", "--n-measure", "60"]
    args += ["--batch-size", "100"]
    assert cli.main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert np.asarray(out["ratio_function"]).shape == (2, 4, 3)
    assert np.asarray(out["exponent"]).shape == (1, 2, 4, 3)
    assert out["exponent_half"][0][0][0][0] == "nan"
    assert "exponent_half" in out["undefined"]  # one seed


def test_geometry_measure_refuses_a_dead_point(key):
    """A zero gradient somewhere makes every family undefined there: the cell reports NaN, never a number."""
    net = train.MODELS["mlp"](train.TrainConfig(depth=2, width=4, bias=False), train.load_data(train.TrainConfig()))
    params = net.init(key)
    params[0]["w"] = jnp.zeros_like(params[0]["w"])
    ds = train.load_data(train.TrainConfig())
    x, y = ds.x_train[:20], ds.y_train[:20]
    step = jax.tree_util.tree_map(jnp.ones_like, params)
    _, raws = geometry_cell._directions(net, params, step, x, y, key)
    assert raws is None and geometry_cell._measure(net, params, raws, x, y, np.array([0.1])) is None
    with pytest.raises(TrustError):
        measure.relative_distances(net.apply, params, x, y, perturb.gaussian(key, params), [0.1])


@pytest.mark.slow
def test_a_geometry_cell_stored_flat_by_trust_0_3_is_the_same_run():
    """trust 0.3 wrote the cell's training fields flat (``lr`` for the rate, a ResNet's biases implied)."""
    flat = dict(optimizer="adam", lr=0.0, model="resnet8", depth=4, width=128, bias=False, norm="batch", channels=8,
                dataset="digits", data_dir="", epochs=1, batch_size=100, lr_decay=0.9, eta=[0.01], n_measure=60,
                seed=2)  # fmt: skip
    c = geometry_cell.GeometryCellConfig.from_dict(flat)
    assert (c.training.optimizer, c.training.model, c.training.norm, c.training.seed) == ("adam", "resnet8", "batch", 2)
    assert c.training.bias
    assert not c.theorem_applies  # 0.3 trained a ResNet with its biases
    assert runner.canonical(geometry_cell.GeometryCellConfig, flat) == c.to_dict()


def test_run_geometry_is_a_deprecated_alias(monkeypatch):
    """trust 0.3's name for the study warns and runs the study (geometry.run; the cell is geometry_cell.run)."""
    monkeypatch.setattr(geometry, "run", lambda config: ("the study", config))
    with pytest.warns(DeprecationWarning, match="geometry.run"):
        assert geometry.run_geometry("config") == ("the study", "config")


def test_the_json_is_read_through_its_labels_only(study):
    """A reader of ``trust geometry --json`` finds which axis is which, and the values along it, in "axes"."""
    done, result = study
    out = json.loads(json.dumps(result.to_json()))
    label = out["axes"]["ratio_function"]
    coords = label["coords"]
    index = tuple(coords[d].index(v) for d, v in zip(label["dims"], ("worst", "gradient", "spectral")))
    assert np.asarray(out["ratio_function"], dtype=float)[index] == result.ratio_function[1, 0, 1]
    width = out["axes"]["width.function"]
    assert width["coords"]["value"] == [8, 16]
    assert width["coords"]["seed"] == [0, 1]
    assert check_labels(out) >= 10 + 6  # the two sweeps' five arrays and the six summaries
    check_array_labels(result.arrays())
    cell = done["fromage_w8_L2_s0"]
    bulk = json.loads(str(cell.arrays()["__axes__"]))
    assert bulk["gradient"]["dims"] == ["checkpoint", "direction", "geometry", "eta", "layer"]
    assert np.shape(cell.gradient)[:4] == tuple(
        len(bulk["gradient"]["coords"][d]) for d in bulk["gradient"]["dims"][:4]
    )


def test_residual_mlps_and_a_norm_free_resnet_in_the_modular_norm(tmp_path):
    """docs/theory.md §10.5: residual MLPs across depth and a ResNet-8 without normalisation carry the modular
    family (its exact bound a theorem there too: at most 1 beyond float32 rounding), a normalised ResNet NaN with
    its reason; the summary, the rows and the modular figure show both. (Madam: no per-layer detail cells.) The
    ResNet with BatchNorm in every geometry (kernels as patch matrices, scales as diag(s)): every family has its
    size in its own geometry, and the operator-norm theorem is not claimed (NaN with its reason)."""
    config = geometry.GeometryConfig(
        dataset="digits", widths=(8,), depth=3, depths=(3, 4), width=8, residual_depths=(3, 4), optimizers=("madam",),
        seeds=1, epochs=1, eta=(0.01, 0.1), n_measure=60, batch_size=100, resnets=("resnet8", "resnet8_batch"),
        resnet_optimizers=("fromage",), resnet_seeds=1,
    )  # fmt: skip
    done = {}
    result = runner.run_study(geometry.STUDY, config, lambda name, c: done.setdefault(name, geometry_cell.run(c)))
    assert result.residual is not None and result.residual.modular_c_eff.shape == (1, 1, 2, 2, 4)
    assert np.all(result.residual.modular_exact <= 1 + 1e-5)  # float32 nets
    assert result.resnet_modular_c_eff.shape == (1, 1, 2, 2, 4)
    plain, batch = result.resnet_modular_c_eff[:, :, 0], result.resnet_modular_c_eff[:, :, 1]
    assert np.all(np.isfinite(plain)) and np.all(np.isnan(batch))
    assert np.all(result.resnet_modular_exact[:, :, 0] <= 1 + 1e-5)
    cell = done["fromage_resnet8_s0"]
    np.testing.assert_allclose(
        result.resnet_modular_c_eff[0, 0, 0], np.max(cell.modular_function / cell.modular_nominal, axis=-1), rtol=1e-12
    )
    batch_cell = done["fromage_resnet8_batch_s0"]
    assert batch_cell.modular_function.size == 0  # not measured: NOT_MODULAR says why
    assert np.all(np.isfinite(result.resnet_function)) and result.resnet_function.shape == (2, 4, 3)
    for g in range(3):
        np.testing.assert_allclose(batch_cell.sizes[:, :, g, g], 1.0, rtol=1e-5)  # float32 norms
    assert np.isnan(batch_cell.operator_ratio).all() and "operator_ratio" in batch_cell.to_json()["undefined"]
    s = result.summary
    assert s.residual_modular_depth is not None and s.resnet_modular is not None
    assert s.modular_theorem.statistic == 0 and len(s.residual_modular_orders) == 1
    claims = [row.claim for row in geometry_views.rows({"geometry": result})]
    assert any(c.startswith("Modular norm on residual MLPs") for c in claims)
    assert any(c.startswith("Modular norm on ResNets without normalisation") for c in claims)
    # the same result as the long job geometry_residual: its residual row again, and its own modular figure
    both = {"geometry": result, geometry_views.LONG_RESIDUAL: result}
    claims = [row.claim for row in geometry_views.rows(both)]
    assert sum(c.startswith("Modular norm on residual") for c in claims) == 2
    assert sum(c.endswith("residual MLPs included") for c in claims) == 1
    assert geometry_views.LONG_RESIDUAL in geometry_views.figures(both)
    figure = geometry_views.figures({"geometry": result})["geometry_modular"]
    labels = [line.get_label() for ax in figure.axes for line in ax.get_lines()]
    assert "residual MLP, end" in labels
    plots.save(figure, tmp_path / "modular")


def test_the_per_layer_lipschitz_verdict_leaves_out_nets_at_chance():
    """Rule flag: a curvature cell at chance after training (an untrained deep net, its gradients and curvature
    vanished) is named and left out of the per-layer Lipschitz verdict, whose worst ratio is the trained nets'."""
    from types import SimpleNamespace

    from trust.experiments import geometry_summary

    def record(acc, ratio):
        k, e, l = 2, 1, 3
        return geometry.LayerRecord(
            "sgd", 8, 3, False, 0, acc, block_curvature=np.ones((k, l)), trace=np.ones((k, 4)),
            breakdown=np.full((k, e, l), ratio), lipschitz_layer=np.ones((k, e, l)),
            density_nodes=np.ones((k, 1, 2)), density_weights=np.full((k, 1, 2), 0.5),
        )  # fmt: skip

    out = geometry_summary._layers(SimpleNamespace(layers=(record(0.9, 2.0), record(0.1, 1e12))))
    assert out["layer_lipschitz"].statistic == 2.0 and out["layer_lipschitz"].outcome.startswith("violated")
    assert out["layer_lipschitz_at_chance"] == ("sgd w8 L3 s0",)
