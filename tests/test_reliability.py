"""What trust promises (README, "What trust promises"): every bad input is one clear line and exit status 2;
an internal error says it is a bug; a sweep killed with SIGKILL loses nothing and its rerun equals an
uninterrupted run byte for byte; two writers never share a run directory."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from trust.base import store
from trust.experiments import REGISTRY
from trust.front import cli

SMALL = ["breakdown", "--depth", "3", "--width", "8", "--eta-steps", "5", "--eta-max", "0.05", "--n-examples", "40"]


def _idx(path: Path, array, magic: int, compress: bool = False) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in np.shape(array))
    raw = header + np.asarray(array, np.uint8).tobytes()
    if compress:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def _mnist_dir(root: Path, n_train=20, n_test=7, labels=None, compress=False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 2051, compress)
        y = np.arange(n) % 10 if labels is None else np.full(n, labels)
        _idx(root / f"{prefix}-labels-idx1-ubyte", y, 2049, compress)
    return root


def _broken_data(kind: str, root: Path) -> Path:
    """A data directory with one kind of damage (the table below)."""
    if kind == "missing":
        root.mkdir()
    elif kind == "truncated":
        _mnist_dir(root)
        f = root / "train-images-idx3-ubyte"
        f.write_bytes(f.read_bytes()[:-100])
    elif kind == "corrupt gzip":
        _mnist_dir(root, compress=True)
        f = root / "train-labels-idx1-ubyte.gz"
        f.write_bytes(f.read_bytes()[:-9])  # the gzip trailer cut off
    elif kind == "not gzip":
        _mnist_dir(root)
        (root / "train-labels-idx1-ubyte").rename(root / "train-labels-idx1-ubyte.gz")
    elif kind == "empty":
        _mnist_dir(root, n_train=0)
    elif kind == "one class":
        _mnist_dir(root, labels=3)
    elif kind == "cifar truncated":
        root = root / "cifar-10-batches-bin"
        root.mkdir(parents=True)
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            (root / name).write_bytes(bytes(3073 * 2 - 5))
    return root


DATA_CASES = {  # damage → what the one line must say
    "missing": "not found",
    "truncated": "header promises",
    "corrupt gzip": "cannot read",
    "not gzip": "cannot read",
    "empty": "split is empty",
    "one class": "one class",
    "cifar truncated": "3073-byte records",
}


def _one_line_error(capsys, argv, message: str) -> str:
    assert cli.main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.startswith("trust: error:"), err
    assert err.count("\n") == 1, err
    assert message in err, err
    assert "Traceback" not in err
    return err.strip()


@pytest.mark.parametrize("damage", list(DATA_CASES))
def test_damaged_data_files_are_one_line_errors(tmp_path, capsys, damage):
    root = _broken_data(damage, tmp_path / "data")
    dataset = "cifar10" if damage.startswith("cifar") else "mnist"
    argv = ["study", "depth", "--dataset", dataset, "--data-dir", str(root), "--dry-run"]
    if dataset == "cifar10":
        argv = ["train", "--model", "resnet8", "--dataset", "cifar10", "--data-dir", str(root.parent), "--dry-run"]
    _one_line_error(capsys, argv, DATA_CASES[damage])


def test_sound_local_data_passes_the_dry_run(tmp_path, capsys):
    root = _mnist_dir(tmp_path / "mnist", n_train=60, n_test=10)
    assert cli.main(["study", "depth", "--dataset", "mnist", "--data-dir", str(root), "--dry-run"]) == 0
    assert "60 training and 10 test examples" in capsys.readouterr().out


BAD_VALUES = [  # (argv, what the message must say): every bad command-line value, one table for every subcommand
    (["geometry", "--eta", "nan"], "eta entries must be finite"),
    (["geometry", "--eta", "inf"], "eta entries must be finite"),
    (["geometry", "--eta", "-0.1"], "eta entries must be ≥ 0"),
    (["geometry", "--eta", "0.1", "0.01"], "eta must be strictly increasing"),
    (["study", "depth", "--depths", "8", "2"], "depths must be strictly increasing"),
    (["study", "breakdown", "--checkpoints", "1", "1"], "checkpoints must be strictly increasing"),
    (["study", "breakdown", "--matched", "--width", "100"], "width must be the input size of mnist5k, 784"),
    (["study", "depth", "--read-steps", "30"], "read_steps must be multiples of 20"),
    (["study", "depth", "--steps", "160", "--read-steps", "2400"], "go past the 160 steps trained"),
    (["breakdown", "--depth", "0"], "depth must be ≥ 1"),
    (["breakdown", "--width", "0"], "width must be ≥ 1"),
    (["breakdown", "--activation", "swish"], "unknown activation 'swish'"),
    (["train", "--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'"),
    (["train", "--model", "vgg"], "unknown model 'vgg'"),
    (["train", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["breakdown", "--perturb", "sideways"], "unknown perturb 'sideways'"),
    (["train", "--dataset", "mnist"], "give their directory (--data-dir)"),
    (["train", "--lr", "nan"], "learning_rate (--lr) must be finite"),
    (["train", "--epochs", "-1"], "epochs must be ≥ 1"),
    (["breakdown", "--depth", "1e3"], "invalid int value"),
    (["study", "nowhere"], "invalid choice"),
    (["breakdown", "--no-such-flag"], "unrecognized arguments"),
    (["breakdown", "--eta-max", "inf"], "eta_max must be finite"),
    (["breakdown", "--eta-max", "nan"], "eta_max must be finite"),
    (["breakdown", "--net", "residual", "--depth", "2"], "residual MLP needs depth"),
    (["breakdown", "--depth", "3", "--layer", "5"], "layer must lie in 1..3"),
    (["breakdown", "--n-examples", "-4"], "n_examples must be ≥ 0"),
    (["breakdown", "--depth", "two"], "invalid int value"),
    (["frobnicate"], "invalid choice"),
    (["descent", "--eta-min", "2", "--eta-max", "1"], "eta_min"),
    (["descent", "--steps", "sgd"], "unknown steps 'sgd'"),
    (["constants", "--perturb", "sideways"], "unknown perturb 'sideways'"),
    (["constants", "--depth"], "expected at least one argument"),
    (["cosgamma", "--trials", "0"], "trials must be ≥ 2"),
    (["theorem1", "--slopes", "1.5"], "slopes"),
    (["study", "breakdown", "--epochs", "1", "--checkpoints", "0", "5"], "checkpoints must lie in [0, epochs=1]"),
    (["study", "depth", "--optimizers", "rmsprop"], "unknown optimizers"),
    (["geometry", "--eta", "0"], "eta entries must be > 0"),
    (["assumptions", "--model", "mlp3", "--norm", "batch"], "norm applies to the resnets"),
    (["train", "--optimizer", "lars", "--lr-decay", "1.5"], "lr_decay"),
]


@pytest.mark.parametrize("argv, message", BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_bad_values_are_one_line_errors(capsys, argv, message):
    refused_by_argparse = argv[-1] in ("--no-such-flag", "--depth") or argv == ["frobnicate"]
    _one_line_error(capsys, argv if refused_by_argparse else [*argv, "--dry-run"], message)


def test_unwritable_out_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    # /proc refuses new entries even to root (permission bits do not stop root); a path through a file is no dir
    for out, message in (("/proc/trust-run", "cannot"), (str(tmp_path / "file" / "run"), "cannot create")):
        _one_line_error(capsys, [*SMALL, "--out", out, "--dry-run"], "cannot")
        _one_line_error(capsys, [*SMALL, "--out", out], message)
    _one_line_error(capsys, [*SMALL, "--out", str(tmp_path / "file")], "not a directory")


def test_run_directory_damage_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main([*SMALL, "--out", str(out)]) == 0
    capsys.readouterr()
    good = {name: (out / name).read_bytes() for name in ("config.json", "results.json", "arrays.npz")}

    def damaged(name: str, data: bytes, message: str) -> None:
        (out / name).write_bytes(data)
        _one_line_error(capsys, [*SMALL, "--out", str(out)], message)
        _one_line_error(capsys, [*SMALL, "--out", str(out), "--dry-run"], message)
        (out / name).write_bytes(good[name])

    results = json.loads(good["results.json"])
    edited = {**results, "function_frob": [0.0] * len(results["function_frob"])}
    damaged("results.json", json.dumps(edited).encode(), "changed after it was written")  # edited by hand
    damaged("results.json", good["results.json"][:50], "corrupt")  # truncated
    damaged("arrays.npz", good["arrays.npz"][:30], "corrupt")
    other = json.loads(good["config.json"])
    other["config"]["depth_of_field"] = 3  # a field this version does not know: written by another version
    damaged("config.json", json.dumps(other).encode(), "different config (depth_of_field differ")
    damaged("config.json", b"[]", "corrupt")
    (out / "arrays.npz").unlink()
    _one_line_error(capsys, [*SMALL, "--out", str(out)], "arrays.npz is missing")


def test_half_written_run_directory_is_finished_by_a_rerun(tmp_path, capsys):
    """A run killed between its files (config.json written, results.json not yet) is not a finished run: the
    rerun computes it and writes every file, and stray temporary files of the dead writer are removed."""
    out, reference = tmp_path / "run", tmp_path / "reference"
    assert cli.main([*SMALL, "--out", str(reference)]) == 0
    out.mkdir()
    (out / "config.json").write_bytes((reference / "config.json").read_bytes())
    (out / ".results.json.abc.tmp").write_text('{"half')
    assert cli.main([*SMALL, "--out", str(out)]) == 0
    assert "results in" in capsys.readouterr().out
    assert not list(out.glob(".*.tmp"))
    for name in ("results.json", "arrays.npz", "breakdown.png"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_a_second_writer_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    with store.locked(out):
        err = _one_line_error(capsys, [*SMALL, "--out", str(out)], "in use by another trust process")
        assert f"pid {os.getpid()}" in err
    assert cli.main([*SMALL, "--out", str(out)]) == 0  # released: the run goes ahead


def test_internal_errors_say_they_are_bugs(capsys, monkeypatch):
    def broken(config):
        raise ZeroDivisionError("the code's fault")

    monkeypatch.setitem(REGISTRY, "breakdown", REGISTRY["breakdown"]._replace(run=broken))
    assert cli.main(SMALL) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err  # the report needs it
    assert err.strip().splitlines()[-1].startswith("trust: internal error: ZeroDivisionError: the code's fault")
    assert "bug in trust" in err
    assert "report it" in err


def test_every_subcommand_has_help_and_a_dry_run(capsys):
    """`--help` is formatted by argparse (a '%' in a help text once crashed it) and the default config of
    every subcommand passes its own dry run."""
    for name in REGISTRY:
        with pytest.raises(SystemExit) as exit_:
            cli.main([*name.split(), "--help"])
        assert exit_.value.code == 0
        assert cli.main([*name.split(), "--dry-run"]) == 0, name
        assert "the values are valid" in capsys.readouterr().out


# --------------------------------------------------------------------------------------- nothing lost

STUDY = ["study", "depth", "--dataset", "digits", "--width", "8", "--depths", "2", "4", "--optimizers", "fromage"]
STUDY += ["--seeds", "2", "--epochs", "1"]  # 12 train-only cells on digits (3 rates × 2 depths × 2 seeds), ~6 s


def _trust(*argv) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, "-m", "trust.front.cli", *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _finish(proc: subprocess.Popen) -> int:
    """Wait for a process (closing its pipes) and return its exit status; its stderr on failure."""
    _, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, -signal.SIGKILL), err
    return proc.returncode


def _finished_cells(out: Path) -> int:
    return sum(1 for _ in (out / "cells").glob("*/results.json")) if (out / "cells").is_dir() else 0


def _readable(out: Path) -> None:
    """Every file under a real name is whole: JSON parses, archives load, digests match."""
    for run in [out, *(out / "cells").glob("*")] if (out / "cells").is_dir() else [out]:
        if (run / "results.json").exists():
            store.read_run(run)  # raises on anything partial or inconsistent
        elif (run / "config.json").exists():
            json.loads((run / "config.json").read_text())


def test_sigkill_mid_sweep_loses_nothing(tmp_path):
    """Kill a study with SIGKILL after some of its cells finished, rerun it: the finished cells are reused, no
    partial file was ever under a real name, and every file of the result equals an uninterrupted run's."""
    reference, out = tmp_path / "reference", tmp_path / "killed"
    start = time.perf_counter()
    proc = _trust(*STUDY, "--out", str(reference))
    assert _finish(proc) == 0
    uninterrupted = time.perf_counter() - start
    total = _finished_cells(reference)

    start = time.perf_counter()
    proc = _trust(*STUDY, "--out", str(out))
    while _finished_cells(out) < total // 3 and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    _finish(proc)
    killed_at = time.perf_counter() - start
    assert proc.returncode == -signal.SIGKILL
    finished = _finished_cells(out)
    assert 0 < finished < total, "the kill must land mid-sweep"
    assert not (out / "results.json").exists()
    _readable(out)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*/results.json")}

    start = time.perf_counter()
    proc = _trust(*STUDY, "--out", str(out))
    assert _finish(proc) == 0
    rerun = time.perf_counter() - start
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items()), "finished cells were recomputed"
    assert not list(out.rglob(".*.tmp"))
    files = sorted(p.relative_to(reference) for p in reference.rglob("*") if p.is_file() and p.name != store.LOCK)
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.name != store.LOCK)
    for f in files:
        assert (reference / f).read_bytes() == (out / f).read_bytes(), f
    print(f"SIGKILL test: uninterrupted {uninterrupted:.1f} s; killed at {killed_at:.1f} s with {finished} of "
          f"{total} cells finished; rerun {rerun:.1f} s; {len(files)} files byte-identical")  # fmt: skip


def test_two_processes_on_one_run_directory(tmp_path):
    """Two sweeps started on the same --out: one runs, the other is refused in one line — no interleaving."""
    out = tmp_path / "run"
    first = _trust(*STUDY, "--out", str(out))
    while not (out / store.LOCK).exists() or not (out / store.LOCK).read_text():
        time.sleep(0.01)
    second = _trust(*STUDY, "--out", str(out))
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2
    assert "in use by another trust process" in err
    assert err.count("\n") == 1
    assert _finish(first) == 0
    _readable(out)


# ------------------------------------------------------------------------------------------- reproducible


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_do_not_depend_on_the_chunk_size_of_the_grid(dtype):
    """The η grid is evaluated in chunks of b points (``lax.map`` over ``vmap``); b changes how XLA batches the
    matmuls, not what is computed. Tolerances: float64 rounding 1e-12 relative; float32 unit roundoff 6e-8 times
    the cancellation of a gradient *change* at small η (‖g‖/‖Δg‖ ≈ 10² here) and a few dozen accumulated
    products, so 1e-4 relative plus 1e-6·‖g‖ absolute."""
    import jax

    from trust.core import measure, nets, perturb

    etas = np.linspace(0.0, 0.1, 11)
    rtol, atol = (1e-12, 1e-14) if dtype == "float64" else (1e-4, 1e-6)
    with jax.enable_x64(dtype == "float64"):
        net = nets.experiment_mlp(12, 16, 4, 5)
        key = jax.random.key(7)
        params = net.init(key, np.dtype(dtype))
        x = jax.random.normal(jax.random.fold_in(key, 1), (30, 12), np.dtype(dtype))
        y = jax.numpy.arange(30) % 5
        u = perturb.along_gradient(params, measure.full_batch_gradient(net.apply, params, x, y))
        runs = {b: measure.relative_distances(net.apply, params, x, y, u, etas, batch_size=b) for b in (1, 2, 3, 11)}
    ref = runs[1]
    for b, d in runs.items():
        np.testing.assert_allclose(d.loss, ref.loss, rtol=rtol, err_msg=f"b={b}")
        scale = ref.gradient_norm[None, :]
        np.testing.assert_allclose(d.gradient_change, ref.gradient_change, rtol=rtol, atol=atol * scale.max())
        np.testing.assert_allclose(d.function_change, ref.function_change, rtol=rtol, atol=atol * ref.output_norm.max())


# ------------------------------------------------------------------------------------------------ numerics


def _aligned_net(rng, widths, cond, scales):
    """Bias-free layers ``W = s(σ·11ᵀ/√(mn) + (σ/cond)·R)`` with R a random orthonormal-column matrix: positive
    top singular vectors shared by consecutive layers, so for a positive input relu acts as the identity and the
    operator-norm bound is attained to within 1/cond — the hardest case for rounding. Condition number ≈ cond."""
    layers = []
    for (m, n), s in zip(zip(widths[1:], widths[:-1]), scales):
        q, _ = np.linalg.qr(rng.standard_normal((m, n)) if m >= n else rng.standard_normal((n, m)))
        r = q if m >= n else q.T
        w = np.ones((m, n)) / np.sqrt(m * n) + r / cond
        layers.append({"w": s * np.abs(w) if cond >= 1e3 else s * w})
    return layers


def _cast(tree, dtype):
    import jax

    return jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), tree)


def test_no_false_operator_theorem_violations_from_rounding():
    """On near-degenerate layers (condition numbers 10 … 1e6) and near-zero layers (scaled by 1e-12 … 1e-30), where
    the bound is nearly attained, the float32 ratio measured/bound lies within its rounding allowance of the float64
    ratio (so the allowance bounds the actual rounding), the float64 ratio never exceeds 1 + 1e-9, and the float32
    check with its allowance reports zero violations — while the bare comparison ``ratio > 1`` would report some."""
    import jax

    from trust.base import linalg
    from trust.core import bounds, nets

    rng = np.random.default_rng(11)
    bare, cases = 0, 0
    for depth, width, cond, tiny in [
        (d, w, c, t) for d in (2, 4, 8) for w in (8, 64, 300) for c in (10.0, 1e3, 1e6) for t in (1.0, 1e-12, 1e-30)
    ]:
        widths = (width,) * (depth + 1)
        scales = [1.0] * depth
        scales[depth // 2] = tiny
        params = _aligned_net(rng, widths, cond, scales)
        net = nets.MLP(widths, activation="relu")
        # positive inputs near the top right singular vector 1/√n: relu is the identity and the bound nearly attained
        x = 1.0 + 1e-3 * np.abs(rng.standard_normal((4, width)))
        w_op = np.array([linalg.operator_norm(p["w"]) for p in params])
        srank = np.array([linalg.stable_rank(p["w"], op=op) for p, op in zip(params, w_op)])
        etas = (1e-4, 1e-2, 0.5)
        moved = [[{"w": (1 + eta) * p["w"]} for p in params] for eta in etas]  # W + ΔW, ΔW = ηW: homogeneous
        changes = {}  # per dtype, the function change at each η (one precision switch per dtype, not per η)
        for dtype in (np.float32, np.float64):
            with jax.enable_x64(dtype == np.float64):
                base, xs = _cast((params, x), dtype)
                y = net.apply(base, xs)
                changes[dtype] = [np.asarray(net.apply(_cast(m, dtype), xs) - y, dtype=float) for m in moved]
        for e, eta in enumerate(etas):
            # ‖ηW‖_op = η‖W‖_op: in float64 the product's relative rounding (1e-16) is far below the 1e-9 asserted
            d_op = eta * w_op
            bound = bounds.operator_norm_bound(w_op, d_op, np.linalg.norm(x, axis=1))
            ratios = {dtype: np.linalg.norm(changes[dtype][e], axis=1) / bound for dtype in changes}
            a = np.full(depth, eta)  # ‖ΔW_l‖_F/‖W_l‖_F
            allowance = bounds.operator_rounding_allowance([width] * depth, srank, a, d_op / w_op, np.float32)
            where = (depth, width, cond, tiny, eta)
            assert np.all(ratios[np.float64] <= 1 + 1e-9), where
            assert np.all(np.abs(ratios[np.float32] - ratios[np.float64]) <= allowance), where
            assert np.all(ratios[np.float32] <= 1 + allowance), where
            bare += int(np.sum(ratios[np.float32] > 1))
            cases += ratios[np.float32].size
    print(f"operator-norm theorem in float32: {bare} of {cases} ratios above 1 from rounding, 0 beyond the allowance")
