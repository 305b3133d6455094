"""Figures of ``trust study breakdown`` (docs/theory.md §5.1): paper Figure 1 per optimiser and the summary across
depth and training, drawn from the study's stored summaries (:class:`~trust.experiments.study_breakdown.NetSummary`)."""

from __future__ import annotations

import numpy as np

from trust.base.schema import Spread
from trust.experiments.study_breakdown import PROBES, NetSummary, StudyBreakdownResult
from trust.views import plots, report

PROBE_005 = PROBES.index(0.05)


def net_name(c, depth: int, residual: bool = False, residual_text: str = " residual") -> str:
    """A net as rows and figures name it: ``L=16`` (an MLP of 16 weight matrices, ``residual_text`` after a residual
    one) or ``B=4`` (a transformer of 4 blocks; its L is 2 + 4B, docs/theory.md §1)."""
    if c.model == "transformer":
        return f"B={depth}"
    return f"L={depth}{residual_text if residual else ''}"


def nets_text(c) -> str:
    """What a study's nets are: relu (or gelu, …) MLPs, or transformers (rows of the image as tokens)."""
    if c.model == "transformer":
        return "transformers (image rows as tokens)"
    return f"{c.activation} MLPs"


def depth_axis_label(c) -> str:
    return "blocks B" if c.model == "transformer" else "depth L"


def _checkpoint_colours(n: int):
    """One colour per checkpoint, early (light) to late (dark) along cividis (colour-blind safe)."""
    return [plots.plt.cm.cividis(0.9 - 0.85 * i / max(1, n - 1)) for i in range(n)]


def optimizer_figure(result: StudyBreakdownResult, optimizer: str):
    """Paper Figure 1 for one optimiser: per net, the loss change and layer 1's relative gradient change
    against η, one colour per checkpoint (median over seeds), with DRT ``(1+η)^L − 1`` (black dashes),
    ``C_eff·DRT`` at the end of training (grey dash-dots) and the Lipschitz-smooth prediction from the
    sharpness at initialisation and at the end (dotted)."""
    nets, c = result.nets_of(optimizer), result.config
    fig, axes = plots.subplots(len(nets), 2, figsize=(11, 2.9 * len(nets)))
    for row, net in enumerate(nets):
        ax_loss, ax_g = axes[row]
        if not net.seeds:
            ax_loss.set_title(f"{net_name(c, net.depth, net.residual)}: every seed diverged")
            continue
        assert net.c_eff_first is not None
        name = f"{net_name(c, net.depth, net.residual)}, {optimizer} lr {net.lr:g}"
        flagged = [f"{int(n[-1])}/{net.seeds} {what}" for n, what in ((net.zero_loss, "at zero loss"),
                   (net.at_chance, "at chance")) if n.size and n[-1]]  # fmt: skip
        if flagged:  # rule flag at the end: a dead or memorised net's flat or exploding curve, marked
            name += "\nend: " + ", ".join(flagged)
        eta = net.eta
        colours = _checkpoint_colours(len(net.checkpoint_epoch))
        grad = net.gradient_first
        for k, epoch in enumerate(net.checkpoint_epoch):
            tag = f"step {net.checkpoint_step[k]}" if result.config.matched else plots.epoch_tag(round(float(epoch), 3))
            ax_loss.plot(eta, net.loss_change[k], color=colours[k], label=tag)
            ax_g.plot(eta, plots.positive(grad[k]), color=colours[k])
        theirs = next((c for c in result.paper or () if (c.depth, c.residual) == (net.depth, net.residual)), None)
        if theirs is not None:  # the authors' runs at the same checkpoint steps: thin dashes in the same colours
            steps = list(net.checkpoint_step)
            for run in theirs.their_change:
                for k, step in enumerate(theirs.their_steps):
                    ax_g.plot(theirs.their_eta, plots.positive(run[k]), color=colours[steps.index(step)], ls="--",
                              lw=0.7, alpha=0.8)  # fmt: skip
        if net.gradient_end is not None and net.seeds > 1:  # the end's spread over seeds
            ax_g.fill_between(eta, plots.positive(net.gradient_end.low), plots.positive(net.gradient_end.high),
                              color=colours[-1], alpha=0.18, lw=0)  # fmt: skip
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
            ax_g.plot([], [], "k--", label=drt_label(c))
            ax_g.plot([], [], color="0.45", ls="-.", label="C_eff·DRT (end)")
            ax_g.plot([], [], "k:", label="Lipschitz λ‖ΔW‖/‖g₁‖ (init, end)")
            if c.seeds > 1:
                ax_g.fill_between([], [], [], color=colours[-1], alpha=0.18, lw=0, label="end: the seeds' range")
            if result.paper:
                ax_g.plot([], [], color="0.3", ls="--", lw=0.7, label="the authors' runs (thin dashes)")
            ax_g.legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("η (every tensor moved by η‖W_l‖ along −g_l/‖g_l‖)")
    fig.suptitle(
        f"Gradient breakdown during training: {optimizer}, {nets_text(c)} of width {c.width} on "
        f"{report.dataset(c)}\n"
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


def _drt_at(result: StudyBreakdownResult, depth: int, eta: float) -> float:
    """DRT with constant 1 at ``eta`` for the nets of ``depth``, as their cells stored it: ``∏(1 + η) − 1`` over
    every layer (an MLP's L weight matrices; a transformer's maps and LayerNorm gains, docs/theory.md §1)."""
    net = next(n for o in result.config.optimizers if (n := result.net(o, depth)) is not None)
    return float(net.drt[int(np.argmin(np.abs(net.eta - eta)))])


def drt_label(c) -> str:
    return "DRT ∏(1+η) − 1 over every layer" if c.model == "transformer" else "DRT (1+η)^L − 1"


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
        drt = [_drt_at(result, d, eta) for d in depths]
        ax.plot(depths, drt, "k:", label=drt_label(c))
        plots.depth_axis(ax, depths)
        title = f"({'ab'[col]}) layer 1 at η = {eta}"
        ax.set(yscale="log", xlabel=depth_axis_label(c), ylabel="‖Δg₁‖/‖g₁‖", title=title)
        ax.legend(fontsize=6.5)
    ax = axes[0, 2]
    for optimizer in c.optimizers:
        ends = [_c_eff(result.net(optimizer, d), -1) for d in depths]
        _band(ax, depths, ends, plots.OPTIMIZER_COLOURS[optimizer], marker="o", label=optimizer)
    ax.axhline(1.0, color="k", lw=0.8)
    plots.depth_axis(ax, depths)
    ax.set(yscale="log", xlabel=depth_axis_label(c), ylabel="C_eff = max_η measured / DRT")
    ax.set_title("(c) C_eff of layer 1, end")
    ax.legend(fontsize=7)
    _measure_check_panel(axes[0, 3], result)
    for col, optimizer in enumerate(c.optimizers):
        ax = axes[1, col]
        for net in result.nets_of(optimizer):
            if net.seeds:
                epochs = net.checkpoint_epoch
                label = net_name(c, net.depth, net.residual)
                spreads = [_c_eff(net, k) for k in range(len(epochs))]
                _band(ax, epochs, spreads, plots.depth_colour(net.depth, net.residual), marker=".", label=label)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xscale("symlog", linthresh=0.1, linscale=0.6)
        ax.set_xticks([0, 0.1, 1, 10], ["0", "0.1", "1", "10"])
        last = max((float(n.checkpoint_epoch[-1]) for n in result.nets_of(optimizer) if n.seeds), default=10.0)
        ax.set_xlim(0, last * 1.15)  # epochs are ≥ 0: no empty negative half of the symlog axis
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
        f"Gradient breakdown across depth and training ({nets_text(c)}, width {c.width}, {report.dataset(c)}, "
        f"{report.count(c.seeds, 'seed')}; bands: the seeds' range)"
    )
    return fig


def _measure_check_panel(ax, result: StudyBreakdownResult) -> None:
    """How the checked net's layer-1 curve moves with the measurement batch (solid: end, dashed: init): the
    checked cell's own curves."""
    checked = [r for r in result.cells if r.check_sizes]
    if not checked:
        ax.set_axis_off()  # no measurement-batch check in this study: an empty panel, not an empty axis
        ax.text(0.5, 0.5, "(d) no measurement-batch check\nin this study", ha="center", transform=ax.transAxes)
        return
    r = checked[0]
    net = net_name(result.config, r.config.training.depth)
    ax.set_title(f"(d) measurement batch: {r.config.training.optimizer} {net}")
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


def figures(results: dict[str, StudyBreakdownResult]) -> dict:
    result = results["study_breakdown"]
    figures = {"study_breakdown": summary_figure(result)}
    for optimizer in result.config.optimizers:
        figures[f"study_breakdown_{optimizer}"] = optimizer_figure(result, optimizer)
    if "study_breakdown_gelu" in results:  # kinks or depth? the smooth-relu study
        figures["study_breakdown_gelu"] = summary_figure(results["study_breakdown_gelu"])
    for name in ("study_breakdown_paper", "study_breakdown_paper_2000_images"):  # the long jobs, where stored
        if name in results:
            figures[name] = optimizer_figure(results[name], "fromage")
    if "study_breakdown_transformer" in results:  # a model the paper never had: its summary and its Figure 1
        transformer = results["study_breakdown_transformer"]
        figures["study_breakdown_transformer"] = summary_figure(transformer)
        figures["study_breakdown_transformer_fromage"] = optimizer_figure(transformer, "fromage")
    return figures
