"""The ``trust`` command line and run directories: results, reruns, and bad input."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from trust.base import store
from trust.base.errors import TrustError
from trust.base.schema import Verdict
from trust.front import cli
from trust.views import report

SMALL = ["breakdown", "--depth", "3", "--width", "8", "--eta-steps", "5", "--eta-max", "0.05", "--n-examples", "40"]


def test_done_when_command_prints_distances_and_bounds():
    """The issue's acceptance command, through the installed console entry point, in float32."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trust.front.cli",
            "breakdown",
            "--depth",
            "16",
            "--width",
            "64",
            "--perturb",
            "gradient",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["config"]["depth"] == 16
    assert len(result["eta"]) == 100
    eta = np.array(result["eta"])
    drt = np.array(result["drt"])
    np.testing.assert_allclose(drt, (1 + eta) ** 16 - 1, rtol=1e-5)  # a_l = η on each of 16 layers (float32)
    assert set(result["names"]) == {f"{l}.{t}" for l in range(1, 17) for t in "wb"}
    assert np.array(result["gradient"]).shape == (100, 32)
    assert result["function_frob"][0] == 0.0
    assert result["function_frob"][-1] > 0
    # the ratios are undefined at η = 0 only, and the JSON says so
    assert result["ratios"]["gradient_first_over_drt"][0] == "nan"
    assert np.all(np.isfinite(np.array(result["ratios"]["gradient_first_over_drt"][1:], dtype=float)))
    assert "ratios.gradient_first_over_drt" in result["undefined"]


def _sign(run_dir):
    """Recompute a run directory's digest, as the version of trust that wrote its files would have."""
    results = json.loads((run_dir / "results.json").read_text())
    config, arrays = (run_dir / "config.json").read_bytes(), (run_dir / "arrays.npz").read_bytes()
    results[store.DIGEST] = store._digest(config, arrays, results)
    (run_dir / "results.json").write_text(json.dumps(results))


def test_json_and_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(SMALL + ["--json", "--out", str(out), "--seed", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    config, results, arrays = store.read_run(out)
    assert config["seed"] == 3
    assert config["depth"] == 3
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["seed"] == 3
    assert recorded["versions"]["jax"]
    assert results == {k: v for k, v in printed.items() if k != "config"}
    assert arrays["gradient_change"].shape == (5, 6)
    assert (out / "breakdown.png").exists()
    assert (out / "breakdown.pdf").exists()

    # a rerun of the same config reuses the finished run; another config in the same place is refused
    assert cli.main(SMALL + ["--out", str(out), "--seed", "3"]) == 0
    assert "reused" in capsys.readouterr().out
    assert cli.main(SMALL + ["--out", str(out), "--seed", "4"]) == 2
    assert "different config" in capsys.readouterr().err

    # a hand edit that makes the run look like another config's is caught by the digest, not reused
    record = json.loads((out / "config.json").read_text())
    record["config"]["seed"] = 4
    (out / "config.json").write_text(json.dumps(record))
    assert cli.main(SMALL + ["--out", str(out), "--seed", "4"]) == 2
    assert "changed after it was written" in capsys.readouterr().err

    # a run recorded before a field existed (its config.json lacks it, digest and all) is still a run of the
    # field's default
    record["config"]["seed"] = 3
    del record["config"]["perturb"]
    (out / "config.json").write_text(json.dumps(record))
    _sign(out)
    assert cli.main(SMALL + ["--out", str(out), "--seed", "3"]) == 0
    assert "reused" in capsys.readouterr().out
    assert cli.main(SMALL + ["--out", str(out), "--seed", "3", "--perturb", "random"]) == 2
    assert "different config" in capsys.readouterr().err


def test_same_seed_same_numbers(capsys):
    runs = []
    for _ in range(2):
        assert cli.main(SMALL + ["--json", "--perturb", "random", "--seed", "11"]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("corruption", ["results", "config", "arrays", "pickle"])
def test_corrupt_run_directory_is_a_clear_error(tmp_path, capsys, corruption):
    out = tmp_path / "run"
    assert cli.main(SMALL + ["--out", str(out)]) == 0
    capsys.readouterr()
    if corruption == "results":
        (out / "results.json").write_text('{"eta": [0.0, ')
    elif corruption == "config":
        (out / "config.json").write_bytes(b"\x80\x04not json")
    elif corruption == "arrays":
        (out / "arrays.npz").write_bytes(b"PK\x03\x04truncated")
    else:  # an object array needs pickle to load: it must be refused, never unpickled
        np.savez(out / "arrays.npz", evil=np.array([{"a": 1}], dtype=object))
    with pytest.raises(TrustError, match="corrupt"):
        store.read_run(out)
    assert cli.main(SMALL + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trust: error:")
    assert "corrupt" in err
    assert err.count("\n") == 1


def test_user_error_has_no_traceback_in_a_real_process(tmp_path):
    (tmp_path / "notadir").write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "trust.front.cli", *SMALL, "--out", str(tmp_path / "notadir")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    class Boom(Exception):
        pass

    def explode(fh):
        fh.write(b"partial")
        raise Boom

    with pytest.raises(Boom):
        store.atomic_write(tmp_path / "results.json", explode)
    assert list(tmp_path.iterdir()) == []


def test_json_has_no_nan(tmp_path):
    store.write_json(tmp_path / "r.json", {"a": np.array([1.0, np.nan, np.inf]), "b": np.float32(2.5)})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": [1.0, None, None], "b": 2.5}


def test_two_runs_give_byte_identical_files(tmp_path, capsys):
    """Same command, same seed: every file of the run directory — results, arrays, config and both figures
    (saved with fixed metadata, no timestamps) — is byte-identical."""
    for name in ("a", "b"):
        assert cli.main([*SMALL, "--perturb", "random", "--seed", "5", "--out", str(tmp_path / name)]) == 0
    capsys.readouterr()
    files = sorted(p.name for p in (tmp_path / "a").iterdir() if p.name != store.LOCK)  # .lock: the writer's pid
    assert files == ["arrays.npz", "breakdown.pdf", "breakdown.png", "config.json", "results.json"]
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_report_wording():
    # the words a row or title is built from: numbers in their grammatical number, verdicts, intervals, powers
    assert [report.count(n, "seed") for n in (1, 2, 0)] == ["1 seed", "2 seeds", "0 seeds"]
    assert report.violation_factor(1.0) == "holds"
    assert report.violation_factor(2.5) == "violated ×2.5"
    assert report.plus_minus(0.5, 0.125, 3) == "0.500 ± 0.125"
    assert report.plus_minus(0.5, float("nan"), 1) == "0.500 (n = 1: no interval)"
    assert report.power10(2.04) == "10^2.0"
    assert report.power10(float("inf")) == "∞"
    text = report.markdown([report.Row("c", "claim", "m", "v")], "# h")
    assert text.splitlines()[-1] == "| c | claim | m | v | measured |"  # no verdict stored: a measurement
    bound = Verdict("bound", "violated", 2.5, 1.0, 2.5, 3, 2.5, 2.5)
    text = report.markdown([report.Row("c", "assumption", "m", "violated ×2.5", (bound, bound))], "# h")
    assert text.splitlines()[-1] == "| c | assumption | m | violated ×2.5 | bound |"  # each rule named once


def test_load_gives_back_the_typed_result_of_any_run_directory(tmp_path, capsys):
    """trust.load reads a run directory into its Result type from the type results.json names; a run written by
    trust 0.3 (no format, no type, no digest) is recognised by its config's fields."""
    import trust
    from trust.base.schema import FORMAT, same
    from trust.experiments.breakdown import BreakdownResult

    assert cli.main([*SMALL, "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    stored = json.loads((tmp_path / "run" / "results.json").read_text())
    assert stored["format"] == FORMAT
    assert stored["result"] == "trust.experiments.breakdown.BreakdownResult"
    result = trust.load(tmp_path / "run")
    assert isinstance(result, BreakdownResult)
    old = {k: v for k, v in stored.items() if k not in ("format", "result", "verdicts", store.DIGEST)}
    (tmp_path / "run" / "results.json").write_text(json.dumps(old))
    assert same(trust.load(tmp_path / "run"), result)  # the derived verdicts computed again on load
    # derived fields in an older layout (a summary record since grown a field) are computed again, not an error
    (tmp_path / "run" / "results.json").write_text(json.dumps({**old, "verdicts": {"drt": {"rule": "bound"}}}))
    assert same(trust.load(tmp_path / "run"), result)
    broken = {**old, "loss0": "not a number"}  # a measured field that does not match is an error
    (tmp_path / "run" / "results.json").write_text(json.dumps(broken))
    with pytest.raises(TrustError, match="stored results do not match BreakdownResult"):
        trust.load(tmp_path / "run")
    (tmp_path / "run" / "results.json").write_text(json.dumps({**old, "result": "os.system"}))  # never imported
    with pytest.raises(TrustError, match="no result of a known experiment"):
        trust.load(tmp_path / "run")


def test_paper_figs_sets_a_changed_run_aside_and_skips_a_changed_long_job(tmp_path, capsys):
    """paper_figs.py owns its run directories: one whose config the code changed moves to ``<name>.old`` (nothing
    deleted) before it is recomputed; a long job stored for another config is not drawn, and says why."""
    import paper_figs
    from trust.experiments.breakdown import BreakdownConfig

    run = tmp_path / "runs" / "breakdown_small"
    assert cli.main([*SMALL, "--out", str(run)]) == 0
    stored = (run / "results.json").read_bytes()
    same_config = BreakdownConfig(depth=3, width=8, eta_steps=5, eta_max=0.05, n_examples=40)
    paper_figs.set_aside_if_changed(run, same_config)
    assert (run / "results.json").read_bytes() == stored  # the same config: kept where it is
    assert paper_figs.stored_for(run, same_config)
    changed = replace(same_config, width=9)
    assert not paper_figs.stored_for(run, changed)
    assert "not drawn" in capsys.readouterr().err
    paper_figs.set_aside_if_changed(run, changed)
    assert not run.exists()
    assert (tmp_path / "runs" / "breakdown_small.old" / "results.json").read_bytes() == stored
