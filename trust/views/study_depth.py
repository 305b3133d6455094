"""Views of ``trust study depth``: the CLI summary, Figure 3 (trainability against depth) and its report rows
(docs/theory.md §5.2)."""

from __future__ import annotations

from trust.experiments.study_depth import (
    PAPER_STOP,
    StudyDepthResult,
)
from trust.views import plots, report
from trust.views.report import Row


def _stops(stops: tuple[int | None, ...]) -> str:
    return ", ".join("none" if s is None else str(s) for s in stops)


def depth_figure(result: StudyDepthResult):
    """Best training accuracy over the learning-rate grid against depth (median, band: the seeds' range)."""
    c = result.config
    fig, axes = plots.subplots(1, 1, figsize=(7, 4.5))
    ax = axes[0, 0]
    for optimizer in c.optimizers:
        s = result.of(optimizer).trainability
        ax.plot(
            c.depths,
            s.median,
            color=plots.OPTIMIZER_COLOURS[optimizer],
            marker="o",
            label=optimizer,
        )
        ax.fill_between(
            c.depths,
            s.low,
            s.high,
            color=plots.OPTIMIZER_COLOURS[optimizer],
            alpha=0.2,
        )
    ax.axhline(0.1, color="k", ls=":", lw=1, label="chance (10 classes)")
    ax.axhline(c.threshold, color="0.4", ls="--", lw=1, label=f"threshold {c.threshold:g}")
    plots.depth_axis(ax, c.depths)
    ax.set(
        xlabel="depth L",
        ylabel="best training accuracy (over lr grid and epochs)",
        ylim=(0, 1.02),
        title=f"Trainability against depth: relu MLPs, width {c.width}, {c.dataset}, {c.epochs} epochs, "
        f"{report.count(c.seeds, 'seed')}",
    )
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def depth_rows(result: StudyDepthResult) -> list[Row]:
    c, rows = result.config, []
    for optimizer in c.optimizers:
        summary = result.of(optimizer)
        stops, stop = summary.stops, summary.stop
        rows.append(
            Row(
                f"Depth at which {optimizer} stops training (paper: {PAPER_STOP.get(optimizer, 'not in Figure 3')})",
                "claim",
                f"best training accuracy per depth (median of {report.count(c.seeds, 'seed')}): "
                + ", ".join(f"L={d}: {a:.3f}" for d, a in zip(c.depths, summary.trainability.median))
                + f"; first depth below {c.threshold:g} per seed: {_stops(stops)}; trained {c.epochs} epochs at "
                f"batch {c.batch_size} on {c.dataset}, width {c.width} (the paper: 100 epochs at batch 250 on the "
                "60,000 MNIST images, 24,000 steps, width 784)",
                f"stops at L={int(stop.effect)}"
                if stop.outcome == "stops"
                else (f"trains to L={max(c.depths)} in {int(stop.effect)} of {stop.seeds} seeds"),
            )
        )
    return rows


def figures(results: dict[str, StudyDepthResult]) -> dict:
    return {"study_depth": depth_figure(results["study_depth"])}


def rows(results: dict[str, StudyDepthResult]) -> list[Row]:
    return depth_rows(results["study_depth"])


def summary(result: StudyDepthResult) -> str:
    c = result.config
    seeds = report.count(c.seeds, "seed")
    lines = [f"study depth: width {c.width}, {c.epochs} epochs, {seeds}, threshold {c.threshold}"]
    lines.append(f"{'optimizer':>13} " + " ".join(f"{'L=' + str(d):>7}" for d in c.depths) + "   stops at")
    for optimizer in c.optimizers:
        summary = result.of(optimizer)
        accs = " ".join(f"{a:7.3f}" for a in summary.trainability.median)
        lines.append(f"{optimizer:>13} {accs}   {_stops(summary.stops)}")
    return "\n".join(lines)
