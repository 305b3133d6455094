"""Views of ``trust study breakdown``: the CLI summary, Figure 1 per optimiser, the summary across depth and
training, and the report rows (docs/theory.md §5.1)."""

from __future__ import annotations

import numpy as np

from trust.experiments.study_breakdown import (
    PAPER_RANGES,
    PROBES,
    StudyBreakdownResult,
    SweepPoint,
    _finite,
    _med,
)
from trust.views import plots, report
from trust.views.report import Row, violation_factor


def _median(values) -> str:
    """``median [min, max]`` over seeds, NaN left out."""
    values = _finite(values)
    if values.size == 0:
        return "n/a"
    return f"{np.median(values):.3g} [{values.min():.3g}, {values.max():.3g}]"


def _checkpoint_colours(n: int):
    """One colour per checkpoint, early (light) to late (dark) along cividis (colour-blind safe)."""
    return [plots.plt.cm.cividis(0.9 - 0.85 * i / max(1, n - 1)) for i in range(n)]


def optimizer_figure(result: StudyBreakdownResult, optimizer: str):
    """Paper Figure 1 for one optimiser: per net, the loss change and layer 1's relative gradient change
    against η, one colour per checkpoint (median over seeds), with DRT ``(1+η)^L − 1`` (black dashes),
    ``C_eff·DRT`` at the end of training (grey dash-dots) and the Lipschitz-smooth prediction from the
    sharpness at initialisation and at the end (dotted)."""
    nets = [(d, r) for d, r in result.config.nets if result.select(optimizer, d, r)]
    fig, axes = plots.subplots(len(nets), 2, figsize=(11, 2.9 * len(nets)))
    for row, (depth, residual) in enumerate(nets):
        sel = [r for r in result.select(optimizer, depth, residual) if r.measured]
        ax_loss, ax_g = axes[row]
        name = f"L={depth}{' residual' if residual else ''}, {optimizer} lr {sel[0].config.lr:g}" if sel else ""
        if not sel:
            ax_loss.set_title(f"L={depth}: every seed diverged")
            continue
        first = sel[0]
        eta = first.eta
        colours = _checkpoint_colours(len(first.checkpoint_epoch))
        loss = _med([r.loss - r.loss[:, :1] for r in sel], axis=0)
        grad = _med([r.gradient[:, :, 0] for r in sel], axis=0)
        lip = _med([r.lipschitz_first for r in sel], axis=0)
        for k, epoch in enumerate(first.checkpoint_epoch):
            tag = plots.epoch_tag(round(float(epoch), 3))
            ax_loss.plot(eta, loss[k], color=colours[k], label=tag)
            ax_g.plot(eta, plots.positive(grad[k]), color=colours[k])
        for k in (0, -1):
            ax_g.plot(eta, plots.positive(lip[k]), color=colours[k], ls=":", lw=1.2)
        ax_g.plot(eta, plots.positive(first.drt), "k--", lw=1.2)
        c_eff = float(_med([r.c_eff_first[-1] for r in sel]))
        ax_g.plot(eta, plots.positive(c_eff * first.drt), color="0.45", ls="-.", lw=1.2)
        ax_loss.set_yscale("symlog", linthresh=1e-3)
        ax_loss.set(ylabel=f"{name}\nℒ(W+ΔW) − ℒ(W)")
        low = min(np.nanmin(plots.positive(grad)), first.drt[1])
        ax_g.set(yscale="log", ylabel="‖Δg₁‖/‖g₁‖", ylim=(max(1e-5, low / 2), None))
        for ax in (ax_loss, ax_g):
            ax.grid(alpha=0.3, which="both")
        if row == 0:
            ax_loss.set_title("change of the loss along the slice")
            ax_g.set_title("relative change of layer 1's gradient")
            ax_loss.legend(fontsize=6.5, ncol=2, title="checkpoint", title_fontsize=7)
            ax_g.plot([], [], "k--", label="DRT (1+η)^L − 1")
            ax_g.plot([], [], color="0.45", ls="-.", label="C_eff·DRT (end)")
            ax_g.plot([], [], "k:", label="Lipschitz λ‖ΔW‖/‖g₁‖ (init, end)")
            ax_g.legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("η (every tensor moved by η‖W_l‖ along −g_l/‖g_l‖)")
    c = result.config
    fig.suptitle(
        f"Gradient breakdown during training: {optimizer}, relu MLPs of width {c.width} on {c.dataset}\n"
        f"median of {report.count(c.seeds, 'seed')}, measured on {c.n_measure or 'all'} training examples"
    )
    return fig


def _band(ax, x, values, colour, **kw) -> None:
    """Median line and the seeds' range as a band (``values``: one array of seeds per x; empty ones skipped)."""
    values = [_finite(v) for v in values]
    ok = [i for i, v in enumerate(values) if np.size(v)]
    xs = [x[i] for i in ok]
    ax.plot(xs, [np.median(values[i]) for i in ok], color=colour, **kw)
    ax.fill_between(xs, [np.min(values[i]) for i in ok], [np.max(values[i]) for i in ok], color=colour, alpha=0.2)


def summary_figure(result: StudyBreakdownResult):
    """(a, b) layer 1's gradient change at η = 0.01 and 0.05 against depth after training (median, band: the
    seeds' range) per optimiser, at initialisation (grey) and DRT (dotted); (c) C_eff at the end of training
    against depth; (d) the measurement-batch check; (e…) C_eff through training, one panel per optimiser."""
    c = result.config
    n_opt = len(c.optimizers)
    cols = max(4, n_opt)
    fig, axes = plots.subplots(2, cols, figsize=(4.3 * cols, 7.8))
    depths = list(c.depths)
    for col, eta in enumerate((0.01, 0.05)):
        ax = axes[0, col]
        for optimizer in c.optimizers:
            vals = [result.probe(optimizer, d, False, eta, -1) for d in depths]
            _band(ax, depths, vals, plots.OPTIMIZER_COLOURS[optimizer], marker="o", label=f"{optimizer}, end")
        init = [result.probe(c.optimizers[0], d, False, eta, 0) for d in depths]
        _band(ax, depths, init, "0.5", ls="--", label="initialisation")
        ax.plot(depths, [(1 + eta) ** d - 1 for d in depths], "k:", label="DRT (1+η)^L − 1")
        plots.depth_axis(ax, depths)
        ax.set(yscale="log", xlabel="depth L", ylabel="‖Δg₁‖/‖g₁‖", title=f"({'ab'[col]}) layer 1 at η = {eta}")
        ax.legend(fontsize=6.5)
    ax = axes[0, 2]
    for optimizer in c.optimizers:
        c_eff = [np.array([r.c_eff_first[-1] for r in result.select(optimizer, d) if r.measured]) for d in depths]
        _band(ax, depths, c_eff, plots.OPTIMIZER_COLOURS[optimizer], marker="o", label=optimizer)
    ax.axhline(1.0, color="k", lw=0.8)
    plots.depth_axis(ax, depths)
    ax.set(yscale="log", xlabel="depth L", ylabel="C_eff = max_η measured / DRT", title="(c) C_eff of layer 1, end")
    ax.legend(fontsize=7)
    _measure_check_panel(axes[0, 3], result)
    for col, optimizer in enumerate(c.optimizers):
        ax = axes[1, col]
        for depth, residual in c.nets:
            sel = [r for r in result.select(optimizer, depth, residual) if r.measured]
            if sel:
                epochs = np.asarray(sel[0].checkpoint_epoch)
                vals = list(np.array([r.c_eff_first for r in sel]).T)
                label = f"L={depth}{' residual' if residual else ''}"
                _band(ax, epochs, vals, plots.depth_colour(depth, residual), marker=".", label=label)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xscale("symlog", linthresh=0.1, linscale=0.6)
        ax.set_xticks([0, 0.1, 1, 10], ["0", "0.1", "1", "10"])
        ax.set(
            yscale="log",
            xlabel="epoch",
            ylabel="C_eff (layer 1)",
            title=f"({'efgh'[col]}) C_eff in training: {optimizer}",
        )
        ax.legend(fontsize=7)
    for ax in axes.ravel():
        ax.grid(alpha=0.3, which="both")
    for ax in axes[1, n_opt:]:
        ax.axis("off")
    fig.suptitle(
        f"Gradient breakdown across depth and training (relu MLPs, width {c.width}, {c.dataset}, "
        f"{report.count(c.seeds, 'seed')}; bands: the seeds' range)"
    )
    return fig


def _measure_check_panel(ax, result: StudyBreakdownResult) -> None:
    """How the checked net's layer-1 curve moves with the measurement batch (solid: end, dashed: init)."""
    checked = [r for r in result.cells if r.check_sizes]
    if not checked:
        ax.text(0.5, 0.5, "no check run", ha="center", transform=ax.transAxes)
        return
    r = checked[0]
    ax.set_title(f"(d) measurement batch: {r.config.optimizer} L={r.config.depth}")
    assert r.check_gradient.size
    colours = _checkpoint_colours(len(r.check_sizes))
    for i, n in enumerate(r.check_sizes):
        ax.plot(r.eta, plots.positive(r.check_gradient[1, i]), color=colours[i], label=f"n = {n or 'all'}")
        ax.plot(r.eta, plots.positive(r.check_gradient[0, i]), color=colours[i], ls="--", lw=1)
    used = r.config.n_measure or "all"
    ax.plot(r.eta, plots.positive(r.gradient[-1, :, 0]), "k", lw=2.5, alpha=0.35, label=f"n = {used} (used)")
    ax.plot(r.eta, plots.positive(r.gradient[0, :, 0]), "k--", lw=2.5, alpha=0.35, label="dashed: initialisation")
    ax.set(yscale="log", xlabel="η", ylabel="‖Δg₁‖/‖g₁‖")
    ax.legend(fontsize=7)


def _depth_rows(result: StudyBreakdownResult) -> list[Row]:
    """Does depth 16 (the paper's) and the deepest net break down faster than depth 2, and faster after training
    than at initialisation? With each net's final training accuracy: a net that did not train did not move."""
    c, rows = result.config, []
    shallow = min(c.depths)
    for optimizer in c.optimizers:
        for deep in sorted({d for d in (16, max(c.depths)) if d in c.depths and d > shallow}):
            at = {(d, k): result.probe(optimizer, d, False, 0.05, k) for d in (shallow, deep) for k in (0, -1)}
            if any(v.size == 0 for v in at.values()):
                continue
            end_s, end_d, init_d = at[shallow, -1], at[deep, -1], at[deep, 0]
            ratio = np.median(end_d) / np.median(end_s)
            acc = {d: _median([r.final_train_acc for r in result.select(optimizer, d)]) for d in (shallow, deep)}
            rows.append(
                Row(
                    f"Paper: depth {deep} breaks down faster than depth {shallow} — {optimizer}, after training",
                    "claim",
                    f"layer-1 gradient change at η=0.05, median [range] over {report.count(c.seeds, 'seed')}: "
                    f"L={shallow}: {_median(end_s)}, L={deep}: {_median(end_d)} (at initialisation "
                    f"{_median(at[shallow, 0])} and {_median(init_d)}); final training accuracy "
                    f"L={shallow}: {acc[shallow]}, L={deep}: {acc[deep]}",
                    f"yes, ×{ratio:.3g} (every seed)"
                    if end_d.min() > end_s.max()
                    else f"not separated (×{ratio:.3g} in the medians)",
                )
            )
            grew, shrank = end_d.min() > init_d.max(), end_d.max() < init_d.min()
            rows.append(
                Row(
                    f"Breakdown grows with training at depth {deep} — {optimizer}",
                    "claim",
                    f"layer-1 gradient change at η=0.05: initialisation {_median(init_d)}, end {_median(end_d)}",
                    f"{'yes' if grew else 'no, it shrinks' if shrank else 'mixed over seeds'} "
                    f"(end/init ×{np.median(end_d) / np.median(init_d):.3g})",
                )
            )
    return rows


def _paper_rows(result: StudyBreakdownResult) -> list[Row]:
    """Our first-layer ranges over the checkpoints beside the paper's published ones (Fromage)."""
    rows = []
    for (label, residual), paper in PAPER_RANGES.items():
        depth = int(label.split("=")[1])
        sel = [r for r in result.select("fromage", depth, residual) if r.measured]
        if not sel:
            continue
        ours, orders = [], []
        for eta, (low, high) in zip(PROBES, paper):
            curve = _finite(_med([r.gradient[:, r.at_eta(eta), 0] for r in sel], axis=0))  # per checkpoint
            if curve.size == 0:
                break
            ours.append(f"η={eta}: {curve.min():.3g}–{curve.max():.3g} (paper {low:g}–{high:.3g})")
            orders.append(np.log10(curve.max() / high))
        if len(orders) < len(PROBES):
            continue
        worst = max(orders, key=abs)
        first = sel[0]
        steps_per_epoch = int(round(first.step[-1] / first.checkpoint_epoch[-1]))
        acc = _median([r.final_train_acc for r in sel])
        differences = (
            f"{steps_per_epoch} steps per epoch against the paper's 240 (final training accuracy {acc}), "
            f"{result.config.n_measure} measurement examples against its 60,000, {len(first.step)} checkpoints "
            f"against its 10{'' if result.config.width == 784 else f', width {result.config.width} against 784'}"
        )
        magnitude = "same order of magnitude" if abs(worst) <= 1 else f"highest value 10^{worst:+.1f} of the paper's"
        rows.append(
            Row(
                f"Our Figure 1 beside the paper's — Fromage {label}{' residual' if residual else ''}, layer 1, "
                "lowest–highest over the checkpoints",
                "measurement",
                "; ".join(ours) + f" (width {result.config.width}, {result.config.dataset}, "
                f"median of {report.count(len(sel), 'seed')})",
                f"{magnitude} ({differences})",
            )
        )
    return rows


def _bound_rows(result: StudyBreakdownResult) -> list[Row]:
    """DRT with constant 1 and the Lipschitz-smooth model, as violation factors (assumptions: measured)."""
    c, rows = result.config, []
    for optimizer in c.optimizers:
        per_net, worst, lip, lip_worst = [], 0.0, [], 0.0
        for depth, residual in c.nets:
            sel = [r for r in result.select(optimizer, depth, residual) if r.measured]
            if not sel:
                continue
            name = f"L={depth}{'r' if residual else ''}"
            first = _med([r.c_eff_first for r in sel], axis=0)
            worst = max(worst, max(float(np.nanmax(r.c_eff_worst, initial=0.0)) for r in sel))
            per_net.append(f"{name}: {first[0]:.3g}→{first[-1]:.3g}")
            ratio = _med([r.gradient[-1, 1:, 0] / r.lipschitz_first[-1, 1:] for r in sel], axis=0)  # at the end
            lip_worst = max(lip_worst, float(np.nanmax(ratio, initial=0.0)))
            lip.append(f"{name}: {ratio[0]:.2g}…{ratio[-1]:.2g}")
        if not per_net:
            continue
        rows.append(
            Row(
                f"DRT with constant 1 bounds every layer's gradient change along the slice — {optimizer}",
                "assumption",
                f"C_eff of layer 1, initialisation→end (median over seeds): {', '.join(per_net)}; worst layer, "
                f"seed and checkpoint: {worst:.3g}",
                violation_factor(worst),
            )
        )
        rows.append(
            Row(
                f"Lipschitz-smooth model, λ = the sharpness at the checkpoint — {optimizer}, end of training",
                "assumption",
                f"measured/predicted layer-1 gradient change, smallest η>0…η={c.eta_max:g}: {', '.join(lip)}",
                violation_factor(lip_worst),
            )
        )
    return rows


def _all_last(n: int) -> float:
    """Sort key for batch sizes: 0 (the whole training set) last."""
    return n or np.inf


def _method_rows(result: StudyBreakdownResult) -> list[Row]:
    """The measurement batch check and the SGD learning-rate sweep."""
    rows = []
    checked = [r for r in result.cells if r.check_sizes and r.check_gradient.size]
    if checked:
        r = checked[0]
        used = r.config.n_measure or "all"
        # curves per n (the used one first); reference: the whole training set when it was checked
        sizes = (r.config.n_measure, *r.check_sizes)
        curves = np.concatenate([r.gradient[[0, -1], None, :, 0], r.check_gradient], axis=1)  # (2, n, e)
        ref = sizes.index(0) if 0 in sizes else 0
        probes = [r.at_eta(e) for e in PROBES]
        deviation = {  # largest |relative deviation| from the reference over the probe η, init and end
            n: max(np.expm1(np.nanmax(np.abs(np.log(curves[k, i, probes] / curves[k, ref, probes])))) for k in (0, 1))
            for i, n in enumerate(sizes)
            if i != ref
        }
        ref_name = "all" if sizes[ref] == 0 else sizes[ref]
        rows.append(
            Row(
                f"Measurement batch: layer 1's curve on the first n training examples against n = {ref_name} "
                f"({r.config.optimizer} L={r.config.depth}, width {result.config.width}, seed {r.config.seed})",
                "measurement",
                f"largest relative deviation at η = {', '.join(f'{e:g}' for e in PROBES)}, initialisation and end: "
                + ", ".join(f"n={n or 'all'}: {deviation[n] * 100:.0f} %" for n in sorted(deviation, key=_all_last)),
                f"n = {used} used ({deviation[r.config.n_measure] * 100:.0f} % from n = {ref_name})"
                if r.config.n_measure in deviation
                else f"n = {used} used",
            )
        )
    by_net: dict[tuple, list[SweepPoint]] = {}
    for p in result.sweep:
        by_net.setdefault((p.optimizer, p.depth, p.residual), []).append(p)
    for (optimizer, depth, residual), sweep in by_net.items():
        rows.append(
            Row(
                f"Learning-rate sweep — {optimizer} L={depth}{' residual' if residual else ''} (first seed)",
                "measurement",
                "final training loss: "
                + ", ".join(
                    f"lr {p.lr:g}: {'diverged' if not np.isfinite(p.final_train_loss) else f'{p.final_train_loss:.3g}'}"
                    for p in sweep
                ),
                f"lr {next(p.lr for p in sweep if p.chosen):g} chosen",
            )
        )
    return rows


def result_rows(result: StudyBreakdownResult) -> list[Row]:
    return _depth_rows(result) + _paper_rows(result) + _bound_rows(result) + _method_rows(result)


def figures(results: dict[str, StudyBreakdownResult]) -> dict:
    result = results["study_breakdown"]
    figures = {"study_breakdown": summary_figure(result)}
    for optimizer in result.config.optimizers:
        figures[f"study_breakdown_{optimizer}"] = optimizer_figure(result, optimizer)
    if "study_breakdown_paper" in results:
        figures["study_breakdown_paper"] = optimizer_figure(results["study_breakdown_paper"], "fromage")
    return figures


def rows(results: dict[str, StudyBreakdownResult]) -> list[Row]:
    """The across-depth rows; the published-number comparison from the width-784 study when there is one."""
    across = results["study_breakdown"]
    paper = results.get("study_breakdown_paper")
    rows = _depth_rows(across) + _paper_rows(paper or across) + _bound_rows(across) + _method_rows(across)
    if paper is not None:
        rows += _bound_rows(paper) + _method_rows(paper)
    return rows


def summary(result: StudyBreakdownResult) -> str:
    c = result.config
    lines = [f"study breakdown: {len(result.cells)} measured cells, {len(result.sweep)} sweep runs, width {c.width}"]
    for optimizer in c.optimizers:
        for depth, residual in c.nets:
            sel = result.select(optimizer, depth, residual)
            if not sel:
                continue
            init, end = (result.probe(optimizer, depth, residual, 0.05, k) for k in (0, -1))
            lines.append(
                f"{optimizer:>8} lr {sel[0].config.lr:<6g} L={depth:<2}{' res' if residual else '    '} "
                f"train acc {np.median([r.final_train_acc for r in sel]):.3f}; layer-1 gradient change at "
                f"η=0.05: init {_median(init)}, end {_median(end)}; C_eff layer 1 (end) "
                f"{_median([r.c_eff_first[-1] for r in sel if r.measured])}"
            )
    return "\n".join(lines)
