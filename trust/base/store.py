"""Run directories: ``config.json`` (resolved config, versions, seed), ``results.json`` and ``arrays.npz``.

Every file is written atomically (a temporary file in the same directory, then ``os.replace``), and
``results.json`` is written last, so a directory with a readable ``results.json`` is a finished run and
an interrupted run — even one killed with SIGKILL — leaves no half-written file under a real name (only
hidden ``.*.tmp`` files, removed by the next run). ``results.json`` carries a SHA-256 digest of the run
(config, arrays and results), so a file edited by hand is refused rather than trusted. A run directory
is locked (``.lock``, an advisory ``flock``) while a process writes it: a second process is refused with a
clear message instead of interleaving files. Nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import math
import os
import platform
import tempfile
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from trust.base.errors import TrustError

CONFIG, RESULTS, ARRAYS, LOCK = "config.json", "results.json", "arrays.npz", ".lock"
DIGEST = "sha256"  # the key of results.json that holds the run's digest


def versions() -> dict:
    """Versions of Python, the platform, the JAX backend, trust and the packages a result depends on."""
    import jax

    from trust import __version__

    out: dict[str, str | None] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "backend": jax.default_backend(),
        "trust": __version__,
    }
    for pkg in ("jax", "jaxlib", "optax", "numpy", "scipy", "scikit-learn", "mlxtend"):
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _unwritable(path: Path, err: OSError) -> TrustError:
    return TrustError(f"cannot write {path} ({err.strerror or err}); choose a writable --out")


def atomic_write(path, write) -> None:
    """Write ``path`` through ``write(binary file handle)`` into a hidden temporary file beside it, then rename:
    readers see the old file or the whole new one, never a part. An OS error (a read-only directory, a full
    disk) is a :class:`TrustError` naming the path."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise _unwritable(path, err) from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; a result file gets the permissions open() would give
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())  # the data is on disk before the name points at it (power loss)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _unwritable(path, err) from None
        raise


def write_json(path, obj) -> None:
    write_text(path, dumps(obj))


def write_text(path, text: str) -> None:
    """A text file (UTF-8), atomically."""
    data = text.encode()
    atomic_write(path, lambda fh: fh.write(data))


def _run_dir(path) -> Path:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TrustError(f"run directory {path} exists and is not a directory; choose another --out")
    return path


def make_dir(path) -> Path:
    """``path`` and its parents, created if missing; a clear error if that is impossible."""
    path = _run_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TrustError(f"cannot create the directory {path} ({err.strerror or err}); choose another --out") from None
    return path


@contextlib.contextmanager
def locked(run_dir) -> Iterator[Path]:
    """Hold ``run_dir``'s lock while writing it: a second process (or a second writer in this one) is refused
    with a clear error rather than interleaving files. The lock is an advisory ``flock`` on ``.lock``, released
    by the kernel when its holder exits, however it exits (SIGKILL included): a dead run never blocks a rerun.
    Holding it, temporary files a killed writer left behind are removed."""
    run_dir = make_dir(run_dir)
    try:
        fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise _unwritable(run_dir, err) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            raise TrustError(
                f"{run_dir} is in use by another trust process (pid {holder}); wait for it to finish or choose "
                "another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        for stale in run_dir.glob(".*.tmp"):  # only a dead writer's: we hold the lock
            stale.unlink(missing_ok=True)
        yield run_dir
    finally:
        os.close(fd)  # releases the flock


def _digest(config_bytes: bytes, arrays_bytes: bytes, results: dict) -> str:
    """SHA-256 over the run's three parts (results without the digest itself, in canonical JSON)."""
    h = hashlib.sha256()
    body = json.dumps({k: v for k, v in results.items() if k != DIGEST}, sort_keys=True).encode()
    for part in (config_bytes, arrays_bytes, body):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def write_run(out_dir, config: dict, results: dict, arrays: dict) -> Path:
    """Write a finished run: config (with versions), arrays, then results — with the digest of all three — last."""
    out = make_dir(out_dir)
    config_bytes = dumps({"config": config, "seed": config.get("seed"), "versions": versions()}).encode()
    archive = io.BytesIO()
    named: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}
    np.savez_compressed(archive, **named)
    arrays_bytes = archive.getvalue()
    atomic_write(out / CONFIG, lambda fh: fh.write(config_bytes))
    atomic_write(out / ARRAYS, lambda fh: fh.write(arrays_bytes))
    results = json.loads(dumps(results))  # the JSON form, so the digest is over what is stored
    results[DIGEST] = _digest(config_bytes, arrays_bytes, results)
    write_json(out / RESULTS, results)
    return out


FIX = "delete the run directory to recompute it, or choose another --out"


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise TrustError(f"{path} is missing: not a finished run directory; {FIX}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TrustError(f"{path} is corrupt ({err.__class__.__name__}: {err}); {FIX}") from None
    except OSError as err:
        raise TrustError(f"cannot read {path} ({err.strerror or err}); {FIX}") from None


def read_config(run_dir) -> dict:
    """The ``config`` recorded in a run directory."""
    record = read_json(Path(run_dir) / CONFIG)
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise TrustError(f"{Path(run_dir) / CONFIG} is corrupt (no 'config' object); {FIX}")
    return record["config"]


def read_run(run_dir) -> tuple[dict, dict, dict]:
    """``(config, results, arrays)`` of a finished run; :class:`TrustError` if anything is missing or corrupt."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    results = read_json(run_dir / RESULTS)
    if not isinstance(results, dict):
        raise TrustError(f"{run_dir / RESULTS} is corrupt (not a JSON object); {FIX}")
    try:  # we own the file handle: np.load leaks it when the archive is corrupt
        with open(run_dir / ARRAYS, "rb") as fh:
            raw = fh.read()
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise TrustError(f"{run_dir / ARRAYS} is missing: not a finished run directory; {FIX}") from None
    except Exception as err:  # zipfile.BadZipFile, ValueError (pickled object arrays), OSError, EOFError
        raise TrustError(f"{run_dir / ARRAYS} is corrupt ({err.__class__.__name__}); {FIX}") from None
    if DIGEST in results and results[DIGEST] != _digest((run_dir / CONFIG).read_bytes(), raw, results):
        raise TrustError(f"{run_dir} was changed after it was written (its {DIGEST} digest does not match); {FIX}")
    results.pop(DIGEST, None)
    return config, results, arrays


def finished_run(run_dir, config: dict, canonical: Callable[[dict], dict] = dict):
    """The stored ``(config, results, arrays)`` if ``run_dir`` already holds a finished run of exactly
    ``config`` (a rerun skips it); ``None`` if there is no finished run; an error if it holds another config.
    ``canonical`` brings the stored config into the current layout first (an older layout upgraded, the default
    of a field added since filled in: a new field's default keeps the old behaviour)."""
    run_dir = _run_dir(run_dir)
    if not (run_dir / RESULTS).exists():
        return None
    stored = jsonable(canonical(read_config(run_dir)))
    if stored != jsonable(config):
        differ = sorted(k for k in stored.keys() | jsonable(config).keys() if stored.get(k) != jsonable(config).get(k))
        raise TrustError(
            f"{run_dir} holds a run with a different config ({', '.join(differ)} differ: another version of trust "
            f"or an edited file); {FIX}"
        )
    return read_run(run_dir)
