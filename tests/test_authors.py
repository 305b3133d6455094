"""The authors' runs as reference data: the tensor-record decoder, the reader of their folders, the committed
table (docs/theory.md §5.1, §5.2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from authors_fixture import save_tensor_array, tensor_record, write_repo

from trust.base.errors import TrustError
from trust.base.tensor_records import load_tensor_array
from trust.experiments.shared import authors


def test_a_tensor_array_decodes_to_its_float32_values(tmp_path):
    values = np.array([[0.0, 0.0201855, 3.5], [1e-3, 325.90927, 7.7e3]], dtype=np.float32)
    save_tensor_array(tmp_path / "g.npy", values)
    decoded = load_tensor_array(tmp_path / "g.npy")
    assert decoded.shape == (2, 3)
    assert decoded.dtype == np.float64
    np.testing.assert_array_equal(decoded, values.astype(np.float64))  # float32 → float64 is exact


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (tensor_record(1.0, rebuild=("os", "system")), "refused a foreign object os.system"),
        (tensor_record(1.0, rebuild=("builtins", "eval")), "refused a foreign object builtins.eval"),
        (b"(ios\nsystem\n", "refused pickle opcode INST"),  # an opcode outside the records' grammar
        (b"K\x05", "refused an item of type int"),
    ],
)
def test_anything_but_a_tensor_record_is_refused_in_one_line(tmp_path, item, message):
    save_tensor_array(tmp_path / "bad.npy", np.zeros(1), items=[item])
    with pytest.raises(TrustError, match=message) as err:
        load_tensor_array(tmp_path / "bad.npy")
    assert "\n" not in str(err.value)


def test_a_plain_array_is_sent_to_numpy(tmp_path):
    np.save(tmp_path / "plain.npy", np.ones(3))
    with pytest.raises(TrustError, match="plain float64 array"):
        load_tensor_array(tmp_path / "plain.npy")


def test_a_pickled_log_is_refused_by_the_plain_reader(tmp_path):
    save_tensor_array(tmp_path / "acc.npy", np.ones(4))
    with pytest.raises(TrustError, match="not a plain numeric array"):
        authors.read_plain(tmp_path / "acc.npy")


def test_accuracy_before_a_step_is_the_mean_of_the_window_before_it():
    accuracy = np.arange(100) / 100
    assert authors.accuracy_before(accuracy, 30, window=20) == pytest.approx(np.mean(np.arange(10, 30)) / 100)
    assert np.isnan(authors.accuracy_before(accuracy, 101))  # the run stopped before the step
    assert np.isnan(authors.accuracy_before(accuracy, 10, window=20))


def test_the_table_from_a_copy_of_their_folders(tmp_path):
    written = write_repo(tmp_path, np.random.default_rng(0))
    built = authors.build(authors.locate(str(tmp_path)))
    rows = {r["file"]: r for r in built["figure3"]["rows"]}
    assert sorted(rows) == sorted(written["depth"])
    sgd = rows["10_epochs/SGD_layers_8_initlr_0.1.npy"]
    assert (sgd["optimizer"], sgd["k"], sgd["lr"], sgd["steps"]) == ("sgd_momentum", 8, 0.1, 2400)
    assert sorted(sgd["accuracy"]) == ["160", "2400"]  # 24,000 steps were not run
    log = written["depth"]["100_epochs/adam_layers_21_initlr_0.0001_epochs100.npy"]
    for step in (160, 2400, 24000):  # by hand: the 20 minibatches before the step
        expected = sum(log[step - 20 : step]) / 20
        assert rows["100_epochs/adam_layers_21_initlr_0.0001_epochs100.npy"]["accuracy"][str(step)] == pytest.approx(
            expected,
            abs=5e-7,  # the table keeps 6 decimals
        )
    runs = {(r["folder"], r["net"]): r for r in built["figure1"]["rows"]}
    assert len(runs) == 6
    first = runs["make-plots/logs/mnist-curvature", "depth15"]
    assert first["steps"] == [0, 240, 480, 720, 960, 1200, 1440, 1680, 1920, 2160]
    change = written["curvature"]["make-plots/logs/mnist-curvature", "depth15"]
    # 6 significant digits: a relative rounding error of at most 5e-6 (a leading digit 1)
    np.testing.assert_allclose(first["layer1_change"], change[:, authors.CURVE_INDICES], rtol=5e-6)
    assert built["figure1"]["eta"][-1] == 0.099
    assert runs["classify-mnist/logs/curvature", "residualTrue_depth15"]["duplicate_of"] == (
        "make-plots/logs/mnist-curvature"
    )
    assert runs["classify-mnist/logs/curvature", "depth15"]["duplicate_of"] is None
    assert json.loads(authors.dumps(built)) == built  # the writer's layout is JSON of the same table


def test_a_wrong_clone_or_log_name_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv(authors.ENVIRONMENT, raising=False)
    with pytest.raises(TrustError, match="TRUST_AUTHORS_DIR"):
        authors.locate(None)
    with pytest.raises(TrustError, match="not a clone"):
        authors.locate(str(tmp_path))
    write_repo(tmp_path, np.random.default_rng(1))
    monkeypatch.setenv(authors.ENVIRONMENT, str(tmp_path))
    assert authors.locate(None) == tmp_path
    np.save(tmp_path / "make-plots/logs/mnist-depth/10_epochs/notes.npy", np.ones(2))
    with pytest.raises(TrustError, match="not a Figure-3 log name"):
        authors.build(tmp_path)


def _best(rows, folder: str, optimizer: str, k: int, step: int) -> float:
    """The best rate's accuracy at ``step`` (an independent reading of the committed rows)."""
    values = [r["accuracy"][str(step)] for r in rows if r["file"].startswith(folder)
              and (r["optimizer"], r["k"]) == (optimizer, k) and str(step) in r["accuracy"]]  # fmt: skip
    return max(values)


def test_the_committed_table_holds_the_numbers_read_from_their_logs():
    """The facts quoted from the authors' logs in issue 26 (best rate, two decimals), against the committed table."""
    t = authors.table()
    assert t["commit"] == authors.COMMIT
    assert "CC BY-NC-SA 4.0" in t["licence"]
    rows = t["figure3"]["rows"]
    assert len(rows) == 498
    facts = [
        ("10_epochs", "sgd_momentum", 8, 160, 0.46), ("10_epochs", "sgd_momentum", 9, 160, 0.11),
        ("10_epochs", "adam", 15, 160, 0.51), ("10_epochs", "adam", 20, 160, 0.12),
        ("10_epochs", "fromage", 10, 160, 0.36), ("10_epochs", "fromage", 15, 160, 0.26),
        ("10_epochs", "sgd_momentum", 11, 2400, 0.97), ("10_epochs", "sgd_momentum", 12, 2400, 0.12),
        ("10_epochs", "sgd", 8, 2400, 0.98), ("10_epochs", "sgd", 9, 2400, 0.35),
        ("10_epochs", "adam", 20, 2400, 0.95), ("10_epochs", "adam", 21, 2400, 0.12),
        ("10_epochs", "adam", 22, 2400, 0.89), ("10_epochs", "fromage", 15, 2400, 0.99),
        ("10_epochs", "fromage", 20, 2400, 0.88), ("10_epochs", "fromage", 25, 2400, 0.57),
        ("100_epochs", "sgd_momentum", 11, 24000, 0.11), ("100_epochs", "adam", 22, 24000, 0.98),
        ("100_epochs", "adam", 23, 24000, 0.12),
    ]  # fmt: skip
    for folder, optimizer, k, step, value in facts:
        assert round(_best(rows, folder, optimizer, k, step), 2) == value, (folder, optimizer, k, step)
    plateau = [_best(rows, "10_epochs", "fromage", k, 2400) for k in (27, 30, 32, 35, 37, 40, 42, 45, 50)]
    assert round(min(plateau), 2) == 0.30  # "0.30–0.49 from 27 to 50"
    assert round(max(plateau), 2) == 0.49
    deep = [_best(rows, "100_epochs", "fromage", k, 24000) for k in (30, 35, 40, 45, 50)]
    assert round(min(deep), 2) >= 0.65  # "Fromage 0.65–1.0 to 50"
    runs = t["figure1"]["rows"]
    assert sorted({(r["net"], r["depth"], r["residual"]) for r in runs}) == [
        ("depth1", 2, False), ("depth15", 16, False), ("residualTrue_depth15", 16, True)
    ]  # fmt: skip
    assert sum(r["duplicate_of"] is None for r in runs) == 5  # their residual net is one run in two folders
    for r in runs:
        assert np.shape(r["layer1_change"]) == (10, len(t["figure1"]["eta"]))
        assert all(v == 0 for v in np.asarray(r["layer1_change"])[:, 0])  # η = 0: no change
