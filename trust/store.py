"""Run directories: ``config.json`` (resolved config, versions, seed), ``results.json`` and ``arrays.npz``.

Every file is written atomically (a temporary file in the same directory, then ``os.replace``), and
``results.json`` is written last, so a directory with a readable ``results.json`` is a finished run and
an interrupted run leaves no half-written file. Nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from trust.errors import TrustError
from trust.schema import Config, Experiment, Result, run_study

CONFIG, RESULTS, ARRAYS = "config.json", "results.json", "arrays.npz"


def versions() -> dict:
    """Versions of Python, the platform, the JAX backend and the packages a result depends on."""
    import jax

    out: dict[str, str | None] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "backend": jax.default_backend(),
    }
    for pkg in ("trust", "jax", "jaxlib", "optax", "numpy", "scipy", "scikit-learn", "mlxtend"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def jsonable(obj):
    """Plain JSON values: NumPy scalars/arrays become Python numbers/lists, NaN and ±Inf become ``None``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    return obj


def dumps(obj) -> str:
    return json.dumps(jsonable(obj), indent=2, allow_nan=False)


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    text = dumps(obj).encode()
    _atomic_write(Path(path), lambda fh: fh.write(text))


def _run_dir(path) -> Path:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TrustError(f"run directory {path} exists and is not a directory")
    return path


def write_run(out_dir, config: dict, results: dict, arrays: dict) -> Path:
    """Write a finished run: config (with versions), arrays, then results last."""
    out = _run_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / CONFIG, {"config": config, "seed": config.get("seed"), "versions": versions()})
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    _atomic_write(out / ARRAYS, lambda fh: np.savez_compressed(fh, **arrays))
    write_json(out / RESULTS, results)
    return out


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise TrustError(f"{path} is missing: not a finished run directory") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TrustError(f"{path} is corrupt ({err.__class__.__name__}: {err})") from None


def read_config(run_dir) -> dict:
    """The ``config`` recorded in a run directory."""
    record = _read_json(Path(run_dir) / CONFIG)
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise TrustError(f"{Path(run_dir) / CONFIG} is corrupt (no 'config' object)")
    return record["config"]


def read_run(run_dir) -> tuple[dict, dict, dict]:
    """``(config, results, arrays)`` of a finished run; :class:`TrustError` if anything is missing or corrupt."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    results = _read_json(run_dir / RESULTS)
    try:  # we own the file handle: np.load leaks it when the archive is corrupt
        with open(run_dir / ARRAYS, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise TrustError(f"{run_dir / ARRAYS} is missing: not a finished run directory") from None
    except Exception as err:  # zipfile.BadZipFile, ValueError (pickled object arrays), OSError, EOFError
        raise TrustError(f"{run_dir / ARRAYS} is corrupt ({err.__class__.__name__})") from None
    return config, results, arrays


def finished_run(run_dir, config: dict, defaults: dict | None = None):
    """The stored ``(config, results, arrays)`` if ``run_dir`` already holds a finished run of exactly
    ``config`` (a rerun skips it); ``None`` if there is no finished run; an error if it holds another config.
    A field of ``defaults`` that the stored config lacks (added to the code after the run) counts as its default:
    a new field's default keeps the old behaviour, so the run is still a run of ``config`` when both agree."""
    run_dir = _run_dir(run_dir)
    if not (run_dir / RESULTS).exists():
        return None
    if {**jsonable(defaults or {}), **read_config(run_dir)} != jsonable(config):
        raise TrustError(f"{run_dir} holds a run with a different config; choose another --out")
    return read_run(run_dir)


def run_or_reuse(run_dir, config: Config, experiment: Experiment) -> tuple[Result, bool]:
    """The result of ``experiment`` for ``config``: read back from ``run_dir`` if it already holds a finished run
    of exactly this config, else computed (and, with a ``run_dir``, written there). Also says whether it was
    reused. A directory holding another config is refused. A study stores each cell under ``run_dir/cells/``
    as it finishes, and a rerun reuses the finished cells."""
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    stored = finished_run(run_dir, config.to_dict(), defaults) if run_dir is not None else None
    if stored is not None:
        return experiment.result.from_json(stored[1], stored[2]), True
    if experiment.study is not None and run_dir is not None:
        study = experiment.study
        result = run_study(
            study, config, lambda name, cell: run_or_reuse(Path(run_dir) / "cells" / name, cell, study.cell)[0]
        )
    else:
        result = experiment.run(config)
    if run_dir is not None:
        write_run(run_dir, config.to_dict(), result.to_json(), result.arrays())
    return result, False
