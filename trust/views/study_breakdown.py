"""Views of ``trust study breakdown``: the CLI summary, Figure 1 per optimiser, the summary across depth and
training, and the report rows (docs/theory.md §5.1). Every number is read from the study's stored summaries
(:class:`~trust.experiments.study_breakdown.NetSummary`, its verdicts); nothing here computes a statistic."""

from __future__ import annotations

import numpy as np

from trust.base.schema import Spread, Verdict
from trust.experiments.study_breakdown import PROBES, NetSummary, StudyBreakdownResult, SweepPoint
from trust.views import plots, report
from trust.views.report import Row, violation_factor

PROBE_005 = PROBES.index(0.05)


def _checkpoint_colours(n: int):
    """One colour per checkpoint, early (light) to late (dark) along cividis (colour-blind safe)."""
    return [plots.plt.cm.cividis(0.9 - 0.85 * i / max(1, n - 1)) for i in range(n)]


def _nets(result: StudyBreakdownResult, optimizer: str) -> list[NetSummary]:
    return [n for d, r in result.config.nets if (n := result.net(optimizer, d, r)) is not None]


def optimizer_figure(result: StudyBreakdownResult, optimizer: str):
    """Paper Figure 1 for one optimiser: per net, the loss change and layer 1's relative gradient change
    against η, one colour per checkpoint (median over seeds), with DRT ``(1+η)^L − 1`` (black dashes),
    ``C_eff·DRT`` at the end of training (grey dash-dots) and the Lipschitz-smooth prediction from the
    sharpness at initialisation and at the end (dotted)."""
    nets = _nets(result, optimizer)
    fig, axes = plots.subplots(len(nets), 2, figsize=(11, 2.9 * len(nets)))
    for row, net in enumerate(nets):
        ax_loss, ax_g = axes[row]
        if not net.seeds:
            ax_loss.set_title(f"L={net.depth}: every seed diverged")
            continue
        assert net.c_eff_first is not None
        name = f"L={net.depth}{' residual' if net.residual else ''}, {optimizer} lr {net.lr:g}"
        eta = net.eta
        colours = _checkpoint_colours(len(net.checkpoint_epoch))
        grad = net.gradient_first
        for k, epoch in enumerate(net.checkpoint_epoch):
            tag = plots.epoch_tag(round(float(epoch), 3))
            ax_loss.plot(eta, net.loss_change[k], color=colours[k], label=tag)
            ax_g.plot(eta, plots.positive(grad[k]), color=colours[k])
        for k in (0, -1):
            ax_g.plot(eta, plots.positive(net.lipschitz_first[k]), color=colours[k], ls=":", lw=1.2)
        ax_g.plot(eta, plots.positive(net.drt), "k--", lw=1.2)
        c_eff = float(net.c_eff_first.median[-1])
        ax_g.plot(eta, plots.positive(c_eff * net.drt), color="0.45", ls="-.", lw=1.2)
        ax_loss.set_yscale("symlog", linthresh=1e-3)
        ax_loss.set(ylabel=f"{name}\nℒ(W+ΔW) − ℒ(W)")
        low = min(np.nanmin(plots.positive(grad)), net.drt[1])  # the axis floor: the lowest curve drawn
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


def _band(ax, x, spreads: list[tuple[Spread | None, tuple]], colour, **kw) -> None:
    """Median line and the seeds' range as a band, from one stored spread entry per x (those without a finite
    seed skipped)."""
    ok = [(xi, s, i) for xi, (s, i) in zip(x, spreads) if s is not None and s.n[i]]
    xs = [xi for xi, _, _ in ok]
    ax.plot(xs, [s.median[i] for _, s, i in ok], color=colour, **kw)
    ax.fill_between(xs, [s.low[i] for _, s, i in ok], [s.high[i] for _, s, i in ok], color=colour, alpha=0.2)


def _probe(net: NetSummary | None, k: int, p: int) -> tuple[Spread | None, tuple]:
    return (net.probe if net is not None else None), (k, p)


def _c_eff(net: NetSummary | None, k: int) -> tuple[Spread | None, tuple]:
    return (net.c_eff_first if net is not None else None), (k,)


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
        ax, p = axes[0, col], PROBES.index(eta)
        for optimizer in c.optimizers:
            ends = [_probe(result.net(optimizer, d), -1, p) for d in depths]
            _band(ax, depths, ends, plots.OPTIMIZER_COLOURS[optimizer], marker="o", label=f"{optimizer}, end")
        init = [_probe(result.net(c.optimizers[0], d), 0, p) for d in depths]
        _band(ax, depths, init, "0.5", ls="--", label="initialisation")
        ax.plot(depths, [(1 + eta) ** d - 1 for d in depths], "k:", label="DRT (1+η)^L − 1")
        plots.depth_axis(ax, depths)
        ax.set(yscale="log", xlabel="depth L", ylabel="‖Δg₁‖/‖g₁‖", title=f"({'ab'[col]}) layer 1 at η = {eta}")
        ax.legend(fontsize=6.5)
    ax = axes[0, 2]
    for optimizer in c.optimizers:
        ends = [_c_eff(result.net(optimizer, d), -1) for d in depths]
        _band(ax, depths, ends, plots.OPTIMIZER_COLOURS[optimizer], marker="o", label=optimizer)
    ax.axhline(1.0, color="k", lw=0.8)
    plots.depth_axis(ax, depths)
    ax.set(yscale="log", xlabel="depth L", ylabel="C_eff = max_η measured / DRT", title="(c) C_eff of layer 1, end")
    ax.legend(fontsize=7)
    _measure_check_panel(axes[0, 3], result)
    for col, optimizer in enumerate(c.optimizers):
        ax = axes[1, col]
        for net in _nets(result, optimizer):
            if net.seeds:
                epochs = net.checkpoint_epoch
                label = f"L={net.depth}{' residual' if net.residual else ''}"
                spreads = [_c_eff(net, k) for k in range(len(epochs))]
                _band(ax, epochs, spreads, plots.depth_colour(net.depth, net.residual), marker=".", label=label)
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
    """How the checked net's layer-1 curve moves with the measurement batch (solid: end, dashed: init): the
    checked cell's own curves."""
    checked = [r for r in result.cells if r.check_sizes]
    if not checked:
        ax.text(0.5, 0.5, "no check run", ha="center", transform=ax.transAxes)
        return
    r = checked[0]
    ax.set_title(f"(d) measurement batch: {r.config.training.optimizer} L={r.config.training.depth}")
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


def separation_text(v: Verdict) -> str:
    if v.outcome == "separated":
        return f"yes, ×{v.effect:.3g} (every seed)"
    return f"not separated (×{v.effect:.3g} in the medians)"


def growth_text(v: Verdict) -> str:
    words = {"grows": "yes", "shrinks": "no, it shrinks", "mixed": "mixed over seeds"}[v.outcome]
    return f"{words} (end/init ×{v.effect:.3g})"


def _depth_rows(result: StudyBreakdownResult) -> list[Row]:
    """Does depth 16 (the paper's) and the deepest net break down faster than depth 2, and faster after training
    than at initialisation? With each net's final training accuracy: a net that did not train did not move."""
    c, rows = result.config, []
    for claim in result.depth_claims or ():
        optimizer, shallow, deep = claim.optimizer, claim.shallow, claim.deep
        s, d = result.net(optimizer, shallow), result.net(optimizer, deep)
        assert s is not None and d is not None
        rows.append(
            Row(
                f"Paper: depth {deep} breaks down faster than depth {shallow} — {optimizer}, after training",
                "claim",
                f"layer-1 gradient change at η=0.05, median [range] over {report.count(c.seeds, 'seed')}: "
                f"L={shallow}: {report.spread(s.probe, (-1, PROBE_005))}, "
                f"L={deep}: {report.spread(d.probe, (-1, PROBE_005))} (at initialisation "
                f"{report.spread(s.probe, (0, PROBE_005))} and {report.spread(d.probe, (0, PROBE_005))}); final "
                f"training accuracy L={shallow}: {report.spread(s.final_train_acc)}, "
                f"L={deep}: {report.spread(d.final_train_acc)}",
                separation_text(claim.separation),
            )
        )
        rows.append(
            Row(
                f"Breakdown grows with training at depth {deep} — {optimizer}",
                "claim",
                f"layer-1 gradient change at η=0.05: initialisation {report.spread(d.probe, (0, PROBE_005))}, end "
                f"{report.spread(d.probe, (-1, PROBE_005))}",
                growth_text(claim.growth),
            )
        )
    return rows


def _paper_rows(result: StudyBreakdownResult) -> list[Row]:
    """Our first-layer ranges over the checkpoints beside the paper's published ones (Fromage)."""
    rows, c = [], result.config
    for cmp in result.paper or ():
        net = result.net("fromage", cmp.depth, cmp.residual)
        assert net is not None
        ours = [
            f"η={eta}: {lo:.3g}–{hi:.3g} (paper {plo:g}–{phi:.3g})"
            for eta, lo, hi, plo, phi in zip(PROBES, cmp.ours_low, cmp.ours_high, cmp.paper_low, cmp.paper_high)
        ]
        differences = (
            f"{net.steps_per_epoch} steps per epoch against the paper's 240 (final training accuracy "
            f"{report.spread(net.final_train_acc)}), {c.n_measure} measurement examples against its 60,000, "
            f"{len(net.checkpoint_epoch)} checkpoints against its 10"
            f"{'' if c.width == 784 else f', width {c.width} against 784'}"
        )
        v = cmp.verdict
        magnitude = (
            "same order of magnitude"
            if v.outcome == "same order"
            else f"highest value 10^{v.effect:+.1f} of the paper's"
        )
        rows.append(
            Row(
                f"Our Figure 1 beside the paper's — Fromage {cmp.label}{' residual' if cmp.residual else ''}, layer 1, "
                "lowest–highest over the checkpoints",
                "measurement",
                "; ".join(ours) + f" (width {c.width}, {c.dataset}, median of {report.count(net.seeds, 'seed')})",
                f"{magnitude} ({differences})",
            )
        )
    return rows


def _bound_rows(result: StudyBreakdownResult) -> list[Row]:
    """DRT with constant 1 and the Lipschitz-smooth model, as violation factors (assumptions: measured)."""
    c, rows = result.config, []
    for claims in result.bounds or ():
        nets = [n for n in _nets(result, claims.optimizer) if n.seeds]
        per_net, lip = [], []
        for n in nets:
            assert n.c_eff_first is not None
            name = f"L={n.depth}{'r' if n.residual else ''}"
            per_net.append(f"{name}: {n.c_eff_first.median[0]:.3g}→{n.c_eff_first.median[-1]:.3g}")
            lip.append(f"{name}: {n.lipschitz_ratio_end[0]:.2g}…{n.lipschitz_ratio_end[-1]:.2g}")
        rows.append(
            Row(
                f"DRT with constant 1 bounds every layer's gradient change along the slice — {claims.optimizer}",
                "assumption",
                f"C_eff of layer 1, initialisation→end (median over seeds): {', '.join(per_net)}; worst layer, "
                f"seed and checkpoint: {claims.drt.statistic:.3g}",
                violation_factor(claims.drt.statistic),
            )
        )
        rows.append(
            Row(
                f"Lipschitz-smooth model, λ = the sharpness at the checkpoint — {claims.optimizer}, end of training",
                "assumption",
                f"measured/predicted layer-1 gradient change, smallest η>0…η={c.eta_max:g}: {', '.join(lip)}",
                violation_factor(claims.lipschitz.statistic),
            )
        )
    return rows


def _method_rows(result: StudyBreakdownResult) -> list[Row]:
    """The measurement batch check and the SGD learning-rate sweep."""
    rows = []
    check = result.measure_check
    if check is not None:
        used = check.used or "all"
        ref_name = "all" if check.reference == 0 else check.reference
        deviation = dict(zip(check.sizes, check.deviation))
        rows.append(
            Row(
                f"Measurement batch: layer 1's curve on the first n training examples against n = {ref_name} "
                f"({check.optimizer} L={check.depth}, width {result.config.width}, seed {check.seed})",
                "measurement",
                f"largest relative deviation at η = {', '.join(f'{e:g}' for e in PROBES)}, initialisation and end: "
                + ", ".join(f"n={n or 'all'}: {deviation[n] * 100:.0f} %" for n in sorted(deviation, key=_all_last)),
                f"n = {used} used ({deviation[check.used] * 100:.0f} % from n = {ref_name})"
                if check.used in deviation
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


def _all_last(n: int) -> float:
    """Sort key for batch sizes: 0 (the whole training set) last."""
    return n or np.inf


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
    for net in result.nets or ():
        lines.append(
            f"{net.optimizer:>8} lr {net.lr:<6g} L={net.depth:<2}{' res' if net.residual else '    '} "
            f"train acc {net.final_train_acc.median:.3f}; layer-1 gradient change at "
            f"η=0.05: init {report.spread(net.probe, (0, PROBE_005))}, "
            f"end {report.spread(net.probe, (-1, PROBE_005))}; "
            f"C_eff layer 1 (end) {report.spread(net.c_eff_first, (-1,))}"
        )
    return "\n".join(lines)
