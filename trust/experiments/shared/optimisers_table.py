"""``scripts/optimisers.py``'s stored table — every optimiser at its default rate, over seeds — summarised for the
report: the median and range of the final test accuracy, the best epoch's median and rule "late_drop"."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trust.base.schema import Verdict
from trust.experiments.shared import rules


@dataclass(frozen=True)
class DefaultRate:
    """One optimiser at its default rate: final test accuracy (%) median and range over seeds, the median of each
    seed's best epoch, and whether it ends far below that best (rule "late_drop")."""

    name: str
    lr: float
    seeds: int
    final: float
    final_low: float
    final_high: float
    best: float
    late: Verdict


def summarise(table: dict) -> list[DefaultRate]:
    """The rows of ``optimisers.json`` (name → its config, rate and per-seed accuracies)."""
    out = []
    for name, row in table.items():
        final, best = (100 * np.asarray(row[k], dtype=float) for k in ("test_acc", "best_test_acc"))
        median, best_median = float(np.median(final)), float(np.median(best))
        late = rules.late_drop(median, best_median, final.size)
        out.append(DefaultRate(name, float(row["lr"]), int(final.size), median, float(final.min()),
                               float(final.max()), best_median, late))  # fmt: skip
    return out
