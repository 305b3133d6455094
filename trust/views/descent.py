"""Views of ``trust descent``: the CLI summary, the descent figure and the report rows (docs/theory.md §6)."""

from __future__ import annotations

import numpy as np

from trust.experiments.descent import (
    STEPS,
    DescentResult,
)
from trust.views import plots
from trust.views.report import Row


def summary(result: DescentResult) -> str:
    lines = [
        f"{'step':>8} {'L':>3} {'epoch':>5} {'loss':>7} {'descent η':>10} {'Lemma 1 η':>10} {'Lemma 2':>8} "
        f"{'cos θ':>6} {'C_eff':>7} {'L2, C_eff':>9}"
    ]
    for r in result.rows:
        mark = ">" if r.censored else " "
        lines.append(
            f"{r.step:>8} {r.depth:3d} {r.epoch:5g} {r.loss:7.4f} {mark}{r.eta_descent:9.4g} "
            f"{r.eta_lemma1:10.4g} {r.lemma2:8.4g} {r.cos_theta_min:6.3f} {r.C_eff:7.3g} {r.lemma2_C_eff:9.3g}"
        )
    n = len(result.rows)
    lines.append(
        f"Lemma 1 (a theorem): certified η ≤ measured descent η at {n - result.lemma1_violations} of {n} "
        "points; '>' marks a loss still falling at the grid's end"
    )
    return "\n".join(lines)


def figure(result: DescentResult):
    """Largest loss-decreasing η along each step across depth, beside Lemma 2 (C = 1), Lemma 2 with the
    measured C_eff, the Lemma-1 certificate and the paper's η = 0.01."""
    steps = [s for s in STEPS if any(r.step == s for r in result.rows)]
    fig, axes = plots.subplots(1, len(steps), figsize=(6 * len(steps) + 3.5, 4.6))
    for ax, step in zip(axes[0], steps):
        rows = [r for r in result.rows if r.step == step]
        style = plots.epoch_style([r.epoch for r in rows])
        for epoch, ls in style.items():
            sel = sorted((r for r in rows if r.epoch == epoch), key=lambda r: r.depth)
            d = np.array([r.depth for r in sel])
            tag = plots.epoch_tag(epoch)
            measured = np.array([r.eta_descent for r in sel])
            ax.plot(
                d,
                plots.positive(measured),
                color="tab:blue",
                ls=ls,
                marker="o",
                label=f"measured largest descent η, {tag}",
            )
            cens = np.array([r.censored for r in sel])
            ax.plot(d[cens], measured[cens], "^", color="tab:blue", ms=9)
            ax.plot(
                d,
                plots.positive([r.eta_lemma1 for r in sel]),
                color="tab:green",
                ls=ls,
                marker="x",
                label=f"Lemma 1 certified (measured gradients), {tag}",
            )
            ax.plot(
                d,
                plots.positive([r.lemma2_C_eff for r in sel]),
                color="tab:red",
                ls=ls,
                marker=".",
                label=f"Lemma 2 with C_eff, {tag}",
            )
            ax.plot(  # each epoch's own threshold: cos θ is measured at that point
                d,
                plots.positive([r.lemma2 for r in sel]),
                color="k",
                ls=ls,
                lw=2 if epoch == min(style) else 1.2,
                label=f"Lemma 2, C = 1: (1+cos θ)^{{1/L}} − 1, {tag}",
            )
        ax.axhline(0.01, color="grey", lw=1, ls="--", label="paper's default η = 0.01")
        ax.set(
            yscale="log",
            xlabel="depth L (weight matrices)",
            ylabel="η (relative step per layer)",
            title=f"{step} step (▲: loss still falling at the grid's end)",
        )
        plots.depth_axis(ax, {r.depth for r in rows})
        ax.grid(alpha=0.3, which="both")
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def result_rows(result: DescentResult) -> list[Row]:
    """Measured largest descent η against Lemma 2 (an assumption-based prediction) and Lemma 1 (a theorem)."""
    rows = []
    for claim in result.lemma2 or ():
        sel = [r for r in result.rows if r.step == claim.step]
        cells = "; ".join(
            f"L={r.depth} ep {r.epoch:g}: {'>' if r.censored else ''}{r.eta_descent:.3g} vs {r.lemma2:.3g}" for r in sel
        )
        rows.append(
            Row(
                f"Lemma 2 predicts descent for η < (1+cos θ)^{{1/L}} − 1 along a {claim.step} step",
                "assumption",
                f"measured largest descent η vs threshold — {cells}. With the measured C_eff put back — fitted on the "
                f"same step's slice (η ∈ [0.001, 0.1]), so this check is by construction, not a test: fails at "
                f"{claim.fails_c_eff}, undecided by the grid at {claim.unclear_c_eff} of {claim.points} points. (The "
                f"DRT ratio at the grid's smallest η is ×{claim.ratio_low:.2g} to ×{claim.ratio_high:.2g} of C_eff.)",
                "holds"
                if claim.verdict.outcome == "holds"
                else f"fails at {claim.fails} of {claim.points} points"
                + (f" ({claim.unclear} undecided by the grid)" if claim.unclear else ""),
                (claim.verdict,),
            )
        )
    n = len(result.rows)
    rows.append(
        Row(
            "Lemma 1: measured gradient change < cos θ_l on [0, η] ⇒ descent (certified η ≤ measured η)",
            "theorem",
            f"{n - result.lemma1_violations} of {n} points consistent",
            result.lemma1.outcome if result.lemma1 else "",
            (result.lemma1,) if result.lemma1 else (),
        )
    )
    return rows


def figures(results: dict[str, DescentResult]) -> dict:
    """One figure per run, named after the run."""
    return {name: figure(r) for name, r in results.items()}


def rows(results: dict[str, DescentResult]) -> list[Row]:
    return [row for r in results.values() for row in result_rows(r)]
