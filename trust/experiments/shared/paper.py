"""The papers' published numbers that ours are set beside, and the comparison (docs/theory.md §5): Figure 1's
range of the first layer's relative gradient change over the checkpoints, at the probe η."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from trust.base.schema import Verdict, value
from trust.experiments.shared import rules

PROBES = (0.01, 0.05, 0.099)  # the η of the paper's published numbers
# The paper's range (lowest–highest over its checkpoints) of the first layer's relative gradient change at each
# probe η, from its Figure-1 notebooks (docs/theory.md §5): net → ((low, high) at 0.01, 0.05, 0.099).
PAPER_RANGES = {
    ("L=2", False): ((0.2, 3.9), (0.8, 127.0), (1.05, 326.0)),
    ("L=16", False): ((1.3, 10.0), (8.0, 3.1e3), (144.0, 3.2e5)),
    ("L=16", True): ((1.25, 6.2), (4.6, 1.1e3), (31.0, 7.7e3)),
}


@dataclass(frozen=True)
class PaperComparison:
    """Our layer-1 range over the checkpoints (of the per-checkpoint medians) beside the paper's, per probe η."""

    label: str  # the paper's net: "L=2", "L=16"
    depth: int
    residual: bool
    ours_low: np.ndarray = value(axes=("probe",))
    ours_high: np.ndarray = value(axes=("probe",))
    paper_low: np.ndarray = value(axes=("probe",))
    paper_high: np.ndarray = value(axes=("probe",))
    verdict: Verdict = value()  # same_order of ours_high against paper_high

    def coordinates(self) -> dict[str, list]:
        return {"probe": list(PROBES)}


def comparisons(net_of: Callable) -> tuple[PaperComparison, ...]:
    """Our Fromage nets beside the paper's: ``net_of(depth, residual)`` gives a net's summary over seeds (its
    ``probe`` spread per checkpoint and probe η, and its ``seeds``), or None where the study has no such net."""
    out = []
    for (label, residual), paper in PAPER_RANGES.items():
        depth = int(label.split("=")[1])
        net = net_of(depth, residual)
        if net is None or not net.seeds:
            continue
        curves = [rules.finite(net.probe.median[:, p]) for p in range(len(PROBES))]  # per checkpoint
        if any(curve.size == 0 for curve in curves):
            continue
        low, high = np.array(paper, dtype=float).T
        ours_high = np.array([curve.max() for curve in curves])
        verdict = rules.same_order(np.log10(ours_high / high), net.seeds)
        ours_low = np.array([curve.min() for curve in curves])
        out.append(PaperComparison(label, depth, residual, ours_low, ours_high, low, high, verdict))
    return tuple(out)
