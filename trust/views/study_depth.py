"""Views of ``trust study depth``: the CLI summary, Figure 3 (trainability against depth; one panel per read step,
the authors' runs beside ours where they logged that step) and its report rows (docs/theory.md §5.2)."""

from __future__ import annotations

import numpy as np

from trust.base.schema import Verdict
from trust.experiments.shared.rules import STOP_RESOLUTION, Transition
from trust.experiments.study_depth import PAPER_STOP, OrderClaim, StudyDepthResult
from trust.views import plots, report
from trust.views.report import Row


def transition_text(t: Transition) -> str:
    """``trains to L=a, none from L=b`` (with the first failure when the curve is not monotone)."""
    if t.last_trains is None:
        return "trains at no depth"
    if t.first_never is None:
        return f"trains to the deepest, L={t.last_trains}" + (
            "" if t.first_fail is None else f" (fails at L={t.first_fail})"
        )
    text = f"trains to L={t.last_trains}, none from L={t.first_never}"
    return text if t.monotone else f"{text} (first fails at L={t.first_fail}: not monotone)"


def _budget(result: StudyDepthResult, step: int) -> str:
    c = result.config
    budget = f"{step:,} steps" if step else f"best over {c.epochs} epochs"
    return budget + (f" on {c.train_images:,} images" if c.train_images else "")


def depth_figure(result: StudyDepthResult):
    """Trainability against depth, one panel per read step: our median over seeds (band: their range, solid) and
    the authors' run (dashed, width 784 on 60,000 images) where they logged that step."""
    c = result.config
    theirs_deepest = max((max(a.depths) for a in result.authors or ()), default=0)
    # the depths of ours (refined ones too), and a few of theirs — their shallowest, 6, every tenth (labelling all
    # of theirs is unreadable) — where it does not touch one of ours on the log axis; of labels closer than that
    # (20, 22, 24) the shallower is kept
    apart = 0.12  # in ln L: two-digit labels at this figure's width
    our_depths = {d for o in c.optimizers for d in result.depths_of(o)}
    some_of_theirs = [
        d for d in (2, 6, 11, 21, 31, 41, 51)
        if d <= theirs_deepest and all(abs(np.log(d / o)) > apart for o in our_depths)
    ]  # fmt: skip
    ticks: list[int] = []
    for d in sorted(our_depths | set(some_of_theirs)):
        if not ticks or np.log(d / ticks[-1]) > apart:
            ticks.append(d)
    fig, axes = plots.subplots(1, len(result.reads), figsize=(8.5 * len(result.reads), 4.5))
    for ax, step in zip(axes[0], result.reads):
        for optimizer in c.optimizers:
            colour = plots.OPTIMIZER_COLOURS[optimizer]
            ours = result.of(optimizer, step)
            s = ours.trainability
            ax.plot(ours.depths, s.median, color=colour, marker="o", label=f"{optimizer} (ours)")
            ax.fill_between(ours.depths, s.low, s.high, color=colour, alpha=0.2)
            theirs = result.authors_of(optimizer, step)
            if theirs is not None:
                ax.plot(theirs.depths, theirs.accuracy, color=colour, ls="--", marker="x", ms=4, lw=1,
                        label=f"{optimizer} (authors)")  # fmt: skip
        ax.axhline(0.1, color="k", ls=":", lw=1, label="chance (10 classes)")
        ax.axhline(c.threshold, color="0.4", ls="--", lw=1, label=f"threshold {c.threshold:g}")
        plots.depth_axis(ax, ticks)
        metric = "mean pre-update minibatch accuracy, last 20" if step else "best full-batch training accuracy"
        title = f"{_budget(result, step)}: ours width {c.width}, {c.dataset}, {report.count(c.seeds, 'seed')}"
        if any(a.read_step == step for a in result.authors or ()):
            title += "\nauthors (dashed): width 784, 60,000 MNIST images, 1 seed"
        ax.set(xlabel="depth L", ylabel=f"{metric} (best rate)", ylim=(0, 1.02), title=title)
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _source(name: str, result: StudyDepthResult) -> str:
    """Which run a row reads — this run's own study or a long job — and its seeds: the full run and the long job
    ``study_depth_2400`` both read 160 steps at width 128, on different seeds."""
    where = "this run" if name == "study_depth" else f"long job {name}"
    return f"{where}, {report.count(result.config.seeds, 'seed')}"


def _order_row(claim: OrderClaim, result: StudyDepthResult, name: str) -> Row:
    ours = claim.ours
    theirs = f"; the authors' run: {claim.authors}" if claim.authors else ""
    return Row(
        f"Paper's order ({_budget(result, claim.read_step)}, width {result.config.width}; {_source(name, result)}): "
        f"{claim.deeper} trains deeper than {claim.shallower}",
        "claim",
        f"stop depths over {report.count(result.config.seeds, 'seed')} (one past the grid where a seed never stops): "
        f"{claim.deeper} / {claim.shallower} ×{ours.effect:.3g} in the geometric means{theirs}",
        "ours: " + report.compare_text(ours, yes="holds", no="reversed"),
        (ours,),
    )


def depth_rows(result: StudyDepthResult, name: str) -> list[Row]:
    c, rows = result.config, []
    for step in result.reads:
        for optimizer in c.optimizers:
            summary = result.of(optimizer, step)
            stop, theirs = summary.stop, result.authors_of(optimizer, step)
            beside = (
                f"; the authors (width 784, 60,000 images, their k + 1 layers): {transition_text(theirs.transition)}"
                if theirs is not None
                else f"; paper: {PAPER_STOP.get(optimizer, 'not in Figure 3')}"
            )
            rows.append(
                Row(
                    f"Depth at which {optimizer} stops training, {_budget(result, step)}, width {c.width} "
                    f"({_source(name, result)})",
                    "claim",
                    f"trainability per depth (median of {report.count(c.seeds, 'seed')}): "
                    + ", ".join(f"L={d}: {a:.3f}" for d, a in zip(summary.depths, summary.trainability.median))
                    + "; per seed: "
                    + "; ".join(transition_text(t) for t in summary.transitions)
                    + f"; width {c.width}, batch {c.batch_size} on {report.dataset(c)}"
                    + beside,
                    _stop_verdict_text(stop, max(summary.depths)),
                    (stop,),
                )
            )
    rows += [_order_row(claim, result, name) for claim in result.orders or ()]
    return rows


def figures(results: dict[str, StudyDepthResult]) -> dict:
    """``study_depth`` and, where they are stored, the long jobs (``study_depth_2400``, ``study_depth_784``)."""
    return {name: depth_figure(result) for name, result in results.items()}


# the checks of the width-128 study at the authors' 2,400 steps (the long job study_depth_2400): what each changes
REFERENCE = "study_depth_2400"
CHECKS = {
    "study_depth_2000_images": "on 2,000 of MNIST-5k's 4,000 training images (300 passes over them, not 150)",
    "study_depth_784": "at the authors' width 784 (their two smaller rates, depths 16–28, one seed)",
}


def _below_grid_text(v: Verdict) -> str:
    """A rule-"stop" verdict with a seed that trains at no depth (its gap infinite): no located stop."""
    return f"stops at or before L={v.low:g}, its grid's shallowest (a seed trains at no depth)"


def _stop_verdict_text(v: Verdict, deepest: int) -> str:
    """The sentence of a rule-"stop" verdict in its own row (with the rule's words: ``report.verdict_key``)."""
    if v.outcome == "stops":
        return f"stops at L={int(v.statistic)} (±{STOP_RESOLUTION} layers)"
    if v.outcome == "trains":
        return f"trains to L={deepest} in {int(v.effect)} of {v.seeds} seeds"
    if np.isinf(v.effect):
        return _below_grid_text(v) + ": not located"
    return f"stops between L={v.low:g} and {v.high:g}, gap {v.effect:g} layers: not located to ±{STOP_RESOLUTION}"


def _stop_text(v: Verdict) -> str:
    """A rule-"stop" verdict inside another row (rule "moved"), with its seeds' range."""
    if v.outcome == "trains":
        return f"trains to the deepest net in {int(v.effect)} of {v.seeds} seeds"
    if np.isinf(v.effect):
        return _below_grid_text(v)
    return f"stops at L={v.statistic:g} (seeds {v.low:g}–{v.high:g})"


def _moved_text(v: Verdict) -> str:
    if v.outcome in ("deeper", "shallower"):
        return f"{v.outcome} by {abs(v.effect):g} layers (the seeds' ranges {v.statistic:g} apart)"
    return v.outcome + (": a seed's stop lies past its grid" if v.outcome == "not comparable" else "")


def _moved_rows(results: dict[str, StudyDepthResult]) -> list[Row]:
    """Per check of :data:`CHECKS` that is stored and per read step, whether each optimiser's stop depth moved from
    the reference study's (rule "moved")."""
    reference, out = results.get(REFERENCE), []
    for name, what in CHECKS.items():
        if reference is None or name not in results:
            continue
        moved = results[name].moved_from(reference)
        for step in sorted({s for _, s, _ in moved}):
            mine = [(o, v) for o, s, v in moved if s == step]
            measured = "; ".join(
                f"{o}: {_stop_text(results[name].of(o, step).stop)} against {_stop_text(reference.of(o, step).stop)}"
                for o, _ in mine
            )
            rows_of = report.count(reference.config.seeds, "seed")
            out.append(Row(
                f"Does where training stops move {what}? Against width {reference.config.width} on all 4,000 "
                f"images ({rows_of}), {_budget(reference, step)}",
                "claim",
                measured,
                "; ".join(f"{o}: {_moved_text(v)}" for o, v in mine),
                tuple(v for _, v in mine),
            ))  # fmt: skip
    return out


def rows(results: dict[str, StudyDepthResult]) -> list[Row]:
    return [row for name, result in results.items() for row in depth_rows(result, name)] + _moved_rows(results)


def summary(result: StudyDepthResult) -> str:
    c = result.config
    seeds = report.count(c.seeds, "seed")
    lines = [f"study depth: width {c.width}, {seeds}, threshold {c.threshold}"]
    for step in result.reads:
        lines.append(f"{_budget(result, step)}:")
        for optimizer in c.optimizers:
            s = result.of(optimizer, step)
            accs = ", ".join(f"L={d}: {a:.3f}" for d, a in zip(s.depths, s.trainability.median))
            lines.append(f"{optimizer:>13} {accs}; " + "; ".join(transition_text(t) for t in s.transitions))
    return "\n".join(lines)
