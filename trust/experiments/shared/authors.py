"""The Fromage authors' own runs as reference data (docs/theory.md §5.1, §5.2): their published training logs
(github.com/jxbz/fromage at commit 4a6593b, licence CC BY-NC-SA 4.0), read from a local clone into a small
table of numbers that the repository commits (``authors_runs.json``: numbers with their provenance, not the
authors' files).

* **Figure 3** (``make-plots/logs/mnist-depth/{10,100}_epochs/<OPT>_layers_<k>_initlr_<lr>[_epochs100].npy``):
  plain float64 arrays, the training accuracy of each minibatch of 250 measured before its update; ``k`` hidden
  layers of width 784, so depth ``L = k + 1``. The table holds, per file, the mean over the :data:`WINDOW`
  minibatches before each step count of :data:`DEPTH_STEPS` the run reached.
* **Figure 1** (``make-plots/logs/mnist-curvature/`` and ``classify-mnist/logs/curvature/``, two runs):
  ``<net>_grad_changes.npy`` (object arrays of pickled CUDA scalar tensors, decoded by
  :mod:`trust.base.tensor_records`) and ``<net>_loss_slices.npy`` (plain float64), checkpoint × η with
  ``η = 0.001·i``, i = 0 … 99: layer 1's relative gradient change and the loss along the fixed-gradient slice.
  The table keeps the η of :data:`CURVE_INDICES`.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import numpy as np

from trust.base.errors import TrustError
from trust.base.tensor_records import load_tensor_array

COMMIT = "4a6593b628dd74c51086e205a5c96a78fbd06750"
SOURCE = "https://github.com/jxbz/fromage"
LICENCE = (
    "The logs are the authors' (CC BY-NC-SA 4.0); this table records numbers computed from them "
    "(trust.experiments.shared.authors.build), not their files."
)
ENVIRONMENT = "TRUST_AUTHORS_DIR"  # a local clone of the authors' repository, when no path is given
TABLE = Path(__file__).with_name("authors_runs.json")

STEPS_PER_EPOCH = 240  # 60,000 MNIST images in minibatches of 250
BATCH_SIZE = 250
WINDOW = 20  # minibatches before a step count whose accuracies are averaged (Figure 3's metric here)
DEPTH_STEPS = (160, 2400, 24000)
DEPTH_FOLDERS = ("10_epochs", "100_epochs")  # 2,400 and 24,000 steps, the rate ×0.95 every 240 steps
OPTIMIZERS = {"SGD": "sgd_momentum", "SGDwithoutmomentum": "sgd", "adam": "adam", "fromage": "fromage"}
DEPTH_FILE = re.compile(r"(SGD|SGDwithoutmomentum|adam|fromage)_layers_(\d+)_initlr_([0-9.e-]+?)(_epochs100)?\.npy")

CURVATURE_FOLDERS = ("make-plots/logs/mnist-curvature", "classify-mnist/logs/curvature")
# their file prefix → (depth L = hidden layers + 1, residual); the residual net skips every hidden layer
CURVATURE_NETS = {"depth1": (2, False), "depth15": (16, False), "residualTrue_depth15": (16, True)}
# the optimiser steps of their checkpoints: depth 16 at the start of epochs 0–9, the others early and sparse
CURVATURE_STEPS = {
    "depth1": (0, 12, 24, 48, 96, 240, 720, 1200, 1680, 2160),
    "depth15": tuple(range(0, 2400, 240)),
    "residualTrue_depth15": (0, 12, 24, 48, 96, 240, 720, 1200, 1680, 2160),
}
CURVATURE_ETA_STEP = 0.001  # η = 0.001·i along their slice
FIGURE1_STEPS = 2400  # their 10 epochs of 240 steps
FIGURE1_DECAY_EVERY = STEPS_PER_EPOCH  # their rate ×0.9 at each of their epochs


def curvature_net(depth: int, residual: bool) -> str:
    """Their Figure-1 net of that shape (file prefix), or the one whose checkpoint schedule a depth shares: depth 16
    plain is checkpointed at every epoch, every other net early and sparsely (as their depth 2 and residual 16)."""
    if residual:
        return "residualTrue_depth15"
    return "depth15" if depth == 16 else "depth1"


def figure1_runs(depth: int, residual: bool) -> list[dict]:
    """Their distinct Figure-1 runs of exactly this net (empty for a depth they did not run)."""
    if (depth, residual) not in CURVATURE_NETS.values():
        return []
    net = curvature_net(depth, residual)
    return [r for r in table()["figure1"]["rows"] if r["net"] == net and r["duplicate_of"] is None]


CURVE_INDICES = (0, 1, 2, *range(5, 100, 5), 99)  # the η indices the table keeps (0.099 = index 99)


def locate(path: str | None = None) -> Path:
    """The authors' repository: ``path``, else the :data:`ENVIRONMENT` variable; a clear error if neither is a
    clone holding their logs."""
    chosen = path or os.environ.get(ENVIRONMENT, "")
    if not chosen:
        raise TrustError(f"no clone of {SOURCE} given: pass its path or set {ENVIRONMENT}")
    repo = Path(chosen).expanduser()
    if not (repo / "make-plots" / "logs" / "mnist-depth").is_dir():
        raise TrustError(f"{repo} is not a clone of {SOURCE} (no make-plots/logs/mnist-depth)")
    return repo


def read_plain(path: Path) -> np.ndarray:
    """A plain float64 log (``allow_pickle=False``): a pickled one is refused here, in one line."""
    try:
        values = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise TrustError(f"{path}: not a plain numeric array ({err})") from None
    except OSError as err:
        raise TrustError(f"{path}: unreadable ({err})") from None
    if values.dtype != np.float64:
        raise TrustError(f"{path}: expected float64, found {values.dtype}")
    return values


def accuracy_before(accuracy: np.ndarray, step: int, window: int = WINDOW) -> float:
    """The mean pre-update minibatch accuracy of the ``window`` minibatches before optimiser step ``step``
    (steps ``step − window … step − 1``); NaN if the run stopped earlier."""
    if step < window or step > len(accuracy):
        return float("nan")
    return float(np.mean(accuracy[step - window : step]))


def depth_rows(repo: Path) -> list[dict]:
    """Figure 3's table: one row per log file (optimiser, k, rate, folder, steps logged, accuracy per step count)."""
    rows = []
    for folder in DEPTH_FOLDERS:
        for path in sorted((repo / "make-plots" / "logs" / "mnist-depth" / folder).glob("*.npy")):
            match = DEPTH_FILE.fullmatch(path.name)
            if match is None:
                raise TrustError(f"{path}: not a Figure-3 log name (<OPT>_layers_<k>_initlr_<lr>[_epochs100].npy)")
            accuracy = read_plain(path)
            rows.append(
                {
                    "file": f"{folder}/{path.name}",
                    "optimizer": OPTIMIZERS[match[1]],
                    "k": int(match[2]),
                    "lr": float(match[3]),
                    "steps": len(accuracy),
                    "accuracy": {
                        str(s): round(accuracy_before(accuracy, s), 6) for s in DEPTH_STEPS if s <= len(accuracy)
                    },
                }
            )
    return sorted(rows, key=lambda r: (r["file"].split("/")[0], r["optimizer"], r["k"], r["lr"]))


def curvature_rows(repo: Path) -> list[dict]:
    """Figure 1's table: per run folder and net, layer 1's change and the loss at the kept η, per checkpoint."""
    rows: list[dict] = []
    for folder in CURVATURE_FOLDERS:
        for net, (depth, residual) in CURVATURE_NETS.items():
            change = load_tensor_array(repo / folder / f"{net}_grad_changes.npy")
            loss = read_plain(repo / folder / f"{net}_loss_slices.npy")
            expected = (len(CURVATURE_STEPS[net]), 100)
            if change.shape != expected or loss.shape != expected:
                raise TrustError(f"{repo / folder}: {net} logs of shape {change.shape}, {loss.shape}, not {expected}")
            row = {
                "folder": folder,
                "net": net,
                "depth": depth,
                "residual": residual,
                "steps": list(CURVATURE_STEPS[net]),
                "layer1_change": _significant(change[:, CURVE_INDICES]),
                "loss": _significant(loss[:, CURVE_INDICES]),
            }
            # the same run in two folders (their residual net's files are byte-identical): one run, noted
            same = [r["folder"] for r in rows if r["net"] == net and r["layer1_change"] == row["layer1_change"]]
            rows.append({**row, "duplicate_of": same[0] if same else None})
    return rows


def _significant(values: np.ndarray, digits: int = 6) -> list:
    """Values rounded to ``digits`` significant digits (the table records float32 measurements)."""
    return [[float(f"{v:.{digits}g}") for v in row] for row in np.asarray(values, dtype=float)]


def build(repo: Path) -> dict:
    """The committed table (:data:`TABLE`) from a clone of the authors' repository."""
    return {
        "source": SOURCE,
        "commit": COMMIT,
        "licence": LICENCE,
        "figure3": {
            "metric": f"mean pre-update minibatch training accuracy over the {WINDOW} minibatches before the step",
            "batch_size": BATCH_SIZE,
            "steps_per_epoch": STEPS_PER_EPOCH,
            "rate_decay_per_epoch": 0.95,
            "width": 784,
            "depth": "L = k + 1",
            "rows": depth_rows(repo),
        },
        "figure1": {
            "eta": [round(i * CURVATURE_ETA_STEP, 6) for i in CURVE_INDICES],
            "learning_rate": 0.01,
            "rate_decay_per_epoch": 0.9,
            "batch_size": BATCH_SIZE,
            "measured_on": 60000,
            "rows": curvature_rows(repo),
        },
    }


def dumps(built: dict) -> str:
    """The table as JSON with one row per line (a readable diff when it is rebuilt)."""
    rows = {key: built[key].pop("rows") for key in ("figure3", "figure1")}
    text = json.dumps(built, indent=1, ensure_ascii=False)
    for key, items in rows.items():
        built[key]["rows"] = items
        lines = ",\n".join("   " + json.dumps(r, ensure_ascii=False, allow_nan=False) for r in items)
        head = f'"{key}": {{'
        text = text.replace(head, head + f'\n  "rows": [\n{lines}\n  ],', 1)
    return text + "\n"


@functools.cache
def table(path: Path = TABLE) -> dict:
    """The committed table (or another written by :func:`build`), read once per path: every derived comparison
    reads it, so callers must treat it as read-only."""
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise TrustError(f"{path}: not a readable table of the authors' runs ({err})") from None
    if out.get("commit") != COMMIT:
        raise TrustError(f"{path}: built from commit {out.get('commit')!r}, not {COMMIT}")
    return out
