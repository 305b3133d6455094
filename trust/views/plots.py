"""Generic figure helpers: styles, log axes, masking, and saving with fixed metadata. No experiment's figure
lives here — each experiment draws its own from its result (plots read results; they never recompute)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from trust.base import store

# Fixed metadata: no creation date and no version string, so the same figure gives the same bytes.
PNG_METADATA = {"Software": None}
PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None}


# One colour per optimiser in every figure (the Okabe–Ito palette, colour-blind safe).
OPTIMIZER_COLOURS = {
    "fromage": "#0072B2",
    "sgd": "#D55E00",
    "adam": "#009E73",
    "sgd_momentum": "#CC79A7",
    "madam": "#E69F00",
    "lars": "#56B4E9",
    "madam_lns": "#7F6000",
    "orthogonal_sgd": "#000000",
    "muon": "#882255",
}


def subplots(rows: int, cols: int, figsize):
    """A figure with a 2-D array of axes (always 2-D) and constrained layout."""
    return plt.subplots(rows, cols, figsize=figsize, squeeze=False, constrained_layout=True)


def positive(y) -> np.ndarray:
    """Log axes cannot show 0 (η = 0) or NaN: mask them."""
    y = np.asarray(y, dtype=float)
    return np.where(y > 0, y, np.nan)


# the depths the experiments use, each its own categorical colour (neighbouring depths on a sequential map were
# indistinguishable); red is kept for residual nets
DEPTH_COLOURS = {2: "tab:blue", 3: "tab:cyan", 4: "tab:orange", 8: "tab:green", 12: "tab:olive", 16: "tab:purple",
                 20: "tab:gray", 24: "tab:brown", 32: "tab:pink"}  # fmt: skip


def depth_colour(depth: int, residual: bool = False):
    """One colour per depth (categorical for the usual depths, else log-spaced along viridis) and red for residual
    nets, fixed across panels."""
    if residual:
        return "tab:red"
    return DEPTH_COLOURS.get(depth) or plt.cm.viridis(min(0.9, np.log2(depth) / 5.0))


def epoch_style(epochs) -> dict:
    """One line style per training epoch (solid: initialisation)."""
    styles = ["-", "--", ":", "-."]
    return {e: styles[i % len(styles)] for i, e in enumerate(sorted(set(epochs)))}


def epoch_tag(epoch: float) -> str:
    return "init" if epoch == 0 else f"epoch {epoch:g}"


def depth_axis(ax, depths) -> None:
    """A log x-axis labelled with exactly the given depths."""
    ax.set_xscale("log")
    ax.set_xticks(sorted(depths), [str(d) for d in sorted(depths)])
    ax.set_xticks([], minor=True)


def save(fig, stem: Path, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Write ``stem.png`` and/or ``stem.pdf`` with fixed metadata (byte-identical on a rerun); returns the paths."""
    stem = Path(stem)
    store.make_dir(stem.parent)
    options: dict[str, dict] = {"png": {"dpi": 130, "metadata": PNG_METADATA}, "pdf": {"metadata": PDF_METADATA}}
    paths = [stem.with_suffix("." + fmt) for fmt in formats]
    for path, fmt in zip(paths, formats):  # atomic: a reader never sees half a figure
        store.atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, **options[fmt]))
    plt.close(fig)
    return paths
