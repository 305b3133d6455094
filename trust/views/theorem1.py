"""Views of ``trust theorem1``: the CLI summary, the ratio histogram and the report rows (docs/theory.md §3)."""

from __future__ import annotations

import numpy as np

from trust.base.schema import Verdict
from trust.experiments.theorem1 import (
    LABELS,
    Theorem1Result,
)
from trust.views import plots
from trust.views.report import Row, violation_factor


def summary(result: Theorem1Result) -> str:
    lines = [
        f"{result.n_cases} random square leaky-relu nets, {result.n_evaluations} inputs; measured/bound:",
        f"{'bound':>10} {'kind':>24} {'violations':>10} {'median':>10} {'q95':>10} {'max':>10}",
    ]
    for name, b in result.bounds.items():
        q = b.ratio_quantiles
        lines.append(f"{name:>10} {b.kind:>24} {b.violations:>10} {q.median:10.3g} {q.q95:10.3g} {q.max:10.3g}")
    return "\n".join(lines)


def figure(result: Theorem1Result):
    """The distribution of measured/bound over every case and input for the three forms of the bound (a
    theorem: all mass left of 1), and for the DRT assumption (constant 1: mass right of 1 are violations)."""
    fig, axes = plots.subplots(1, 1, figsize=(8, 4.2))
    ax = axes[0, 0]
    logs = {k: np.log10(result.ratio(k)) for k in LABELS}
    floor = min(float(v.min()) for v in logs.values())
    lo = max(-40.0, floor)
    bins = np.linspace(lo, max(1.0, max(float(v.max()) for v in logs.values())), 90)
    for k, label in LABELS.items():
        b = result.bounds[k]
        ax.hist(
            np.clip(logs[k], lo, None),
            bins=bins,
            histtype="step",
            lw=1.6,
            label=f"{label}: median {b.ratio_quantiles.median:.1e}, violations {b.violations}",
        )
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set(
        xlabel="log10(measured ‖Δf‖/‖f‖ ÷ bound)"
        + (f"; ratios below 10^{lo:g} are drawn in the first bin (clipped)" if floor < lo else ""),
        ylabel="inputs",
        title=f"Theorem 1 on {result.n_cases} random square leaky-relu nets ({result.n_evaluations} inputs)",
    )
    ax.legend(fontsize=8, loc="upper left")
    return fig


def _outcome(v: Verdict) -> str:
    return f"{v.outcome} (median ratio {v.effect:.2g})" if v.outcome == "holds, vacuous" else v.outcome


def result_rows(result: Theorem1Result) -> list[Row]:
    """Theorem 1 on square leaky-relu nets (a theorem) and DRT on the same cases (an assumption)."""
    cases = f"{result.n_cases} random square leaky-relu nets ({result.n_evaluations} inputs)"
    rows = []
    for name, label in (
        ("recursion", "induction step iterated"),
        ("per_layer", "∏c_l·[∏(1+a)−1]"),
        ("global", "(κ²β/α)^L·[∏(1+a)−1]"),
    ):
        b = result.bounds[name]
        q = b.ratio_quantiles
        rows.append(
            Row(
                f"Theorem 1, {label}, measured α, β = 1, κ — {cases}",
                "theorem",
                f"violations {b.violations}; measured/bound median {q.median:.2g}, 95 % {q.q95:.2g}, max {q.max:.2g}",
                _outcome(result.outcomes[name]) if result.outcomes else "",
                (result.outcomes[name],) if result.outcomes else (),
            )
        )
    b = result.bounds["drt"]
    q = b.ratio_quantiles
    rows.append(
        Row(
            f"DRT with constant 1 on the same nets — {cases}",
            "assumption",
            f"violated on {b.violations} inputs ({b.violated_cases} nets); "
            f"measured/DRT median {q.median:.2g}, 95 % {q.q95:.2g}, max {q.max:.3g}"
            + (
                f" (a net of depth {result.drt_worst_case.depth}, width {result.drt_worst_case.width}, largest "
                f"relative size {result.drt_worst_case.max_a:.2g}: random sizes per case, no η grid)"
                if result.drt_worst_case
                else ""
            ),
            violation_factor(q.max),
            (result.outcomes["drt"],) if result.outcomes else (),
        )
    )
    return rows


def figures(results: dict[str, Theorem1Result]) -> dict:
    """One figure per run, named after the run."""
    return {name: figure(r) for name, r in results.items()}


def rows(results: dict[str, Theorem1Result]) -> list[Row]:
    return [row for r in results.values() for row in result_rows(r)]
