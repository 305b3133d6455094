"""Views of one study cell: the CLI summary."""

from __future__ import annotations

import numpy as np

from trust.experiments.shared.cell import (
    CellResult,
)


def summary(result: CellResult) -> str:
    c = result.config
    net = f"L={c.depth}{' residual' if c.residual else ''}" if c.model == "mlp" else f"{c.model} norm {c.norm}"
    head = f"{c.optimizer} lr {c.lr:g} {net} seed {c.seed}"
    if result.diverged:
        return f"{head}: diverged in epoch {result.diverged_epoch}"
    text = f"{head}: train acc {result.train_acc_curve[-1]:.4f}"
    if result.measured:
        k = result.at_eta(0.05)
        text += (
            f"; layer-1 gradient change at η={result.eta[k]:.3f}: init {result.gradient[0, k, 0]:.3g}, "
            f"end {result.gradient[-1, k, 0]:.3g}; C_eff layer 1 up to {np.max(result.c_eff_first):.3g}"
        )
    return text
