"""Views of ``trust geometry``: the CLI summary, the width, rank, ratio and C_eff figures and the report rows
(docs/theory.md §8)."""

from __future__ import annotations

import numpy as np

from trust.base.schema import Spread
from trust.experiments.geometry import TARED_HIDDEN_MASS, GeometryResult
from trust.experiments.geometry_summary import (
    CHECKPOINTS,
    LAYER_GROUPS,
    MODULAR_ALLOWANCE,
    ExponentClaim,
    GeometrySummary,
)
from trust.experiments.shared.geometry_cell import GEOMETRIES, RAW_DIRECTIONS, SPANS
from trust.experiments.shared.rules import CHANCE_FACTOR
from trust.views import plots, report
from trust.views.report import Row, compare_text, count, plus_minus, spread, violation_factor


def _exponent(r: GeometryResult, o: int, k: int, d: int, g: int) -> str:
    """The width exponent of optimiser o, checkpoint k, direction d, geometry g: mean ± its 95 % half-width."""
    return plus_minus(r.exponent[o, k, d, g], r.exponent_half[o, k, d, g], r.config.seeds, 2)


def _band(s: Spread, index: tuple):
    """Median, low and high of one entry of a stored spread."""
    return s.median[index], s.low[index], s.high[index]


def _summary(r: GeometryResult) -> GeometrySummary:
    assert r.summary is not None, "a derived result"
    return r.summary


DIRECTION_COLOURS = dict(zip(RAW_DIRECTIONS, ("tab:blue", "tab:orange", "tab:green", "tab:red")))


def width_figure(r: GeometryResult):
    """Relative function change at the smallest η against width, one panel per geometry, at initialisation (top)
    and at the end of training (bottom): median over optimisers and seeds, band min–max; dotted: slopes ½ and 0."""
    c, sw, s = r.config, r.width, _summary(r)
    fig, axes = plots.subplots(2, len(GEOMETRIES), figsize=(14, 7.5))
    widths = np.asarray(sw.values, dtype=float)
    for k, tag in enumerate(CHECKPOINTS):
        for g, geometry in enumerate(GEOMETRIES):
            ax = axes[k][g]
            for d, direction in enumerate(RAW_DIRECTIONS):
                med, lo, hi = _band(s.width_function, (k, d, g))
                p = s.exponent_mean[k, d, g]
                colour = DIRECTION_COLOURS[direction]
                ax.plot(widths, med, "o-", color=colour, label=f"{direction} (p = {p:.2f})")
                ax.fill_between(widths, lo, hi, color=colour, alpha=0.15)
            ref = s.width_reference[k, g]
            for slope in (0.5, 0.0):
                ax.plot(widths, ref * (widths / widths[0]) ** slope, ":", color="grey", lw=1)
            ax.set(xscale="log", yscale="log", xlabel="width n",
                   ylabel=f"‖ΔF‖/‖F‖ at η = {c.eta[0]:g}", title=f"{geometry} steps, {tag}")  # fmt: skip
            ax.set_xticks(widths, [str(int(w)) for w in widths])
            ax.set_xticks([], minor=True)
            ax.grid(alpha=0.3, which="both")
            low, high = ax.get_ylim()
            ax.set_ylim(low, high * (high / low) ** 0.45)  # headroom: the legend above every curve, none hidden
            ax.legend(fontsize=8, title="direction (width exponent p)", title_fontsize=8, loc="upper left", ncol=2)
    fig.suptitle(
        f"Relative function change per step against width (depth {c.depth}, {c.dataset}; median over "
        f"{count(len(c.optimizers), 'optimiser')} × {count(c.seeds, 'seed')}, band min–max; dotted: n^½ and n^0)"
    )
    return fig


def ranks_figure(r: GeometryResult):
    """(a) Stable rank of the weights against width, at initialisation and the end of each optimiser's training,
    beside n/4 (a Gaussian matrix); (b) stable rank of the step along each direction (Frobenius family)."""
    c, sw, s = r.config, r.width, _summary(r)
    widths = np.asarray(sw.values, dtype=float)
    fig, axes = plots.subplots(1, 2, figsize=(14, 4.8))
    ax_a, ax_b = axes[0]
    ax_a.plot(widths, s.weight_rank_init, "ko-", label="initialisation")
    for o, opt in enumerate(c.optimizers):
        colour = plots.OPTIMIZER_COLOURS[opt]
        ax_a.plot(widths, s.weight_rank_end[o], "s--", color=colour, label=f"end of {opt}")
    ax_a.plot(widths, widths / 4, ":", color="grey", label="n/4 (n × n Gaussian)")
    ax_a.set(title="(a) srank W_l, mean over layers", ylabel="‖W‖_F² / ‖W‖_op²")
    for d, direction in enumerate(RAW_DIRECTIONS[:3]):  # the same nets at init for every optimiser: the first's
        colour = DIRECTION_COLOURS[direction]
        med, lo, hi = _band(s.step_rank_init, (d,))
        ax_b.plot(widths, med, "o-", color=colour, label=f"{direction}, init")
        ax_b.fill_between(widths, lo, hi, color=colour, alpha=0.15)
    for o, opt in enumerate(c.optimizers):
        for k, style in ((0, "^:"), (1, "s--")):
            ax_b.plot(
                widths,
                s.own_step_rank[o, k],
                style,
                color=plots.OPTIMIZER_COLOURS[opt],
                label=f"{opt}'s step, {CHECKPOINTS[k]}",
            )
    ax_b.set(title="(b) srank ΔW_l, mean over layers (median over seeds)", ylabel="srank ΔW")
    for ax in (ax_a, ax_b):
        ax.set(xscale="log", yscale="log", xlabel="width n")
        ax.set_xticks(widths, [str(int(w)) for w in widths])
        ax.set_xticks([], minor=True)
        ax.grid(alpha=0.3, which="both")
    ax_a.legend(fontsize=8)
    ax_b.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def ratios_figure(r: GeometryResult):
    """Measured / own bound per family: median (bar) and worst (marker) of the function change (left) and of every
    layer's gradient change (right), over η, checkpoints and cells; 1 is a tight bound, above 1 a violation."""
    groups = [("MLPs", r.ratio_function, r.ratio_gradient)]
    if r.config.resnets:
        groups.append(("ResNets", r.resnet_function, r.resnet_gradient))
    fig, axes = plots.subplots(len(groups), 2, figsize=(13, 5.2 * len(groups)))
    x = np.arange(len(RAW_DIRECTIONS))
    width = 0.26
    colours = ("tab:purple", "tab:cyan", "tab:olive")
    panels = [(axes[i][j], ratio, what, name) for i, (name, *ratios) in enumerate(groups)
              for j, (ratio, what) in enumerate(zip(ratios, ("function", "gradient")))]  # fmt: skip
    for ax, ratio, what, name in panels:
        for g, geometry in enumerate(GEOMETRIES):
            pos = x + (g - 1) * width
            ax.bar(pos, ratio[0, :, g], width, color=colours[g], alpha=0.7, label=f"{geometry}: median")
            ax.plot(pos, ratio[1, :, g], "v", color=colours[g], markeredgecolor="k", label=f"{geometry}: worst")
        ax.axhline(1.0, color="k", lw=1)
        ax.set_xticks(x, RAW_DIRECTIONS)
        ax.set(yscale="log", ylabel="measured / own bound", xlabel="direction",
               title=f"{name}: {what} change / own bound ∏(1 + η s_l) − 1")  # fmt: skip
        ax.grid(alpha=0.3, axis="y", which="both")
        ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    c = r.config
    resnets = f"; ResNets: {', '.join(c.resnets)} on {c.resnet_dataset}" if c.resnets else ""
    mlps = f"MLPs: widths {c.widths[0]}–{c.widths[-1]}, depths {c.depths[0]}–{c.depths[-1]}"
    fig.suptitle(
        f"Measured / own bound per family: median (bar) and worst (▼) over η, checkpoints and cells\n{mlps}{resnets}"
    )
    return fig


def ceff_figure(r: GeometryResult):
    """The effective constant of the paper's slice (gradient direction, Frobenius step: C_eff = max_η,l
    measured/bound) with the bound in each geometry's sizes of the same step, against width and depth."""
    fig, axes = plots.subplots(1, 2, figsize=(12, 4.5))
    s = _summary(r)
    sweeps = ((axes[0][0], r.width, s.c_eff_width, "width n"), (axes[0][1], r.depth, s.c_eff_depth, "depth L"))
    for ax, sweep, c_eff, label in sweeps:
        v = np.asarray(sweep.values, dtype=float)
        for g, geometry in enumerate(GEOMETRIES[:2]):  # an elementwise size is a max over entries: C_eff ≪ 1
            for k, style in ((0, "o-"), (1, "s--")):
                med, lo, hi = _band(c_eff, (k, g))
                ax.plot(v, med, style, color=f"C{g}", label=f"sizes in {geometry}, {CHECKPOINTS[k]}")
                if k == 0:
                    ax.fill_between(v, lo, hi, color=f"C{g}", alpha=0.12)
        ax.axhline(1.0, color="k", lw=1)
        ax.set(xscale="log", yscale="log", xlabel=label, ylabel="C_eff = max measured / ∏(1 + η s_l) − 1")
        ax.set_xticks(v, [str(int(t)) for t in v])
        ax.set_xticks([], minor=True)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0][0].set_title(f"(a) against width (depth {r.config.depth})")
    axes[0][1].set_title(f"(b) against depth (width {r.config.width})")
    return fig


def _other_nets(ax, r: GeometryResult, residual: Spread | None, resnet: Spread | None) -> None:
    """Beside the plain MLPs: the residual MLPs' medians and bands against depth, each norm-free ResNet's median
    and range at its depth, at initialisation (open) and the end (filled)."""
    c = r.config
    for k, style in ((0, "o--"), (1, "s-")):
        if residual is not None:
            med, lo, hi = _band(residual, (k,))
            ax.plot(c.residual_depths, med, style, color="C8", label=f"residual MLP, {CHECKPOINTS[k]}")
            ax.fill_between(c.residual_depths, lo, hi, color="C8", alpha=0.12)
        for v, name in enumerate(c.resnets):
            med, lo, hi = _band(resnet, (v, k)) if resnet is not None else (np.nan,) * 3
            if np.isfinite(med):
                depth = int(name.partition("_")[0].removeprefix("resnet"))  # resnet8, resnet16: its depth
                label = f"{name} ({c.resnet_dataset}), {CHECKPOINTS[k]}"
                ax.errorbar([depth], [med], yerr=[[med - lo], [hi - med]], fmt="D", color="C9", capsize=3,
                            mfc="none" if k == 0 else "C9", label=label)  # fmt: skip


def modular_figure(r: GeometryResult):
    """docs/theory.md §10, §12: (a) the modular family's effective constant along the gradient against depth, at
    initialisation and the end, under the unit masses and with the hidden layers tared, beside the Frobenius and
    spectral C_eff of the paper's slice; (b) ∏‖W_l‖_*, the factor the nominal bound takes to be 1; (c, d) the first,
    median hidden and last layer's relative feature change and alignment against width, after one step (dashed) and
    after training. Bands: optimisers × seeds."""
    fig, axes = plots.subplots(1, 4, figsize=(20, 6.4))
    s, c = _summary(r), r.config
    assert s.modular_depth is not None and s.atom_product_depth is not None and s.feature_width is not None
    depths, widths = np.asarray(c.depths, dtype=float), np.asarray(c.widths, dtype=float)
    ax = axes[0][0]
    for k, style in ((0, "o--"), (1, "s-")):
        med, lo, hi = _band(s.modular_depth, (k,))
        ax.plot(depths, med, style, color="C3", label=f"modular step (function change), {CHECKPOINTS[k]}")
        ax.fill_between(depths, lo, hi, color="C3", alpha=0.12)
        if s.tared_depth is not None:  # NaN at depth 2, which has no hidden layer to tare
            med, lo, hi = _band(s.tared_depth, (k,))
            label = f"modular step, hidden layers tared to mass {TARED_HIDDEN_MASS:g}, {CHECKPOINTS[k]}"
            ax.plot(depths, med, style, color="C2", mfc="none", label=label)
            if k == 1:
                ax.fill_between(depths, lo, hi, color="C2", alpha=0.12)
        for g, geometry in enumerate(GEOMETRIES[:2]):
            ax.plot(depths, _band(s.c_eff_depth, (k, g))[0], style, color=f"C{g}", lw=0.9, alpha=0.7,
                    label=f"paper's slice (gradient change), {geometry} sizes, {CHECKPOINTS[k]}")  # fmt: skip
    _other_nets(ax, r, s.residual_modular_depth, s.resnet_modular)
    ax.axhline(1.0, color="k", lw=1)
    ax.set(yscale="log", ylabel="effective constant: max_η measured / its nominal bound",
           title=f"(a) modular C_eff against depth (width {c.width})")  # fmt: skip
    ax = axes[0][1]
    for k, style in ((0, "o--"), (1, "s-")):
        med, lo, hi = _band(s.atom_product_depth, (k,))
        ax.plot(depths, med, style, color="C3", label=CHECKPOINTS[k])
        ax.fill_between(depths, lo, hi, color="C3", alpha=0.12)
    _other_nets(ax, r, s.residual_atom_product_depth, s.resnet_atom_product)
    ax.axhline(1.0, color="k", lw=1)
    ax.set(yscale="log", ylabel="∏_l ‖W_l‖_*  (well-normed: ≤ 1)", title="(b) what the nominal bound assumes")
    for ax, f, title in ((axes[0][2], 0, "(c) relative feature change"), (axes[0][3], 1, "(d) alignment")):
        for g, group in enumerate(LAYER_GROUPS):
            for t, style in ((0, "o--"), (1, "s-")):
                med, lo, hi = _band(s.feature_width, (t, f, g))
                ax.plot(widths, med, style, color=f"C{g + 4}", label=f"{group}, after {SPANS[t]}")
                if t == 1:
                    ax.fill_between(widths, lo, hi, color=f"C{g + 4}", alpha=0.12)
        ax.set(yscale="log", xlabel=f"width n (depth {c.depth})", title=title)
        ax.set_ylabel("‖Δh_l‖/‖h_l‖" if f == 0 else "‖ΔW_l Hᵀ‖_F / (‖ΔW_l‖_op ‖H‖_F)")
    for ax in axes[0][:2]:
        ax.set(xscale="log", xlabel="depth L")
        ax.set_xticks(depths, [str(int(d)) for d in depths])
        ax.set_xticks([], minor=True)
    for ax in axes[0][2:]:
        ax.set_xscale("log")
        ax.set_xticks(widths, [str(int(w)) for w in widths])
        ax.set_xticks([], minor=True)
    for ax in axes[0]:  # the legends below the panels: panel (a)'s would hide its curves
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    return fig


def layers_figure(r: GeometryResult):
    """docs/theory.md §10.4, §11, on the chosen cells: (a) every layer's input sensitivity at initialisation
    (dashed) and the end, against the nominal 1; (b) every layer's Hessian-block top |eigenvalue|; (c) the measured
    gradient change of each layer along the paper's slice over its per-layer Lipschitz prediction at the end, at
    the smallest η; (d) the Hessian's spectral density (stochastic Lanczos quadrature, smoothed) of the deepest
    cell of the first optimiser, at initialisation and the end."""
    fig, axes = plots.subplots(1, 4, figsize=(20, 4.6))
    records = [rec for rec in r.layers if rec.input_sensitivity.size]
    curved = [rec for rec in r.layers if rec.block_curvature.size]
    colours = {opt: f"C{i}" for i, opt in enumerate(r.config.optimizers)}
    for ax, recs, field, title in (
        (axes[0][0], [rec for rec in records if rec.width == r.config.width], "input_sensitivity",
         f"(a) input sensitivity (width {r.config.width})"),
        (axes[0][1], curved, "block_curvature", "(b) Hessian block λ_l"),
    ):  # fmt: skip
        for rec in recs:
            values = getattr(rec, field)
            layers = np.arange(1, values.shape[1] + 1)
            for k, style in ((0, "--"), (1, "-")):
                ax.plot(layers, values[k], style, color=colours[rec.optimizer], marker=".", lw=1,
                        label=f"{rec.optimizer} L={rec.depth}, {CHECKPOINTS[k]}")  # fmt: skip
        ax.set(yscale="log", xlabel="layer l", title=title)
        ax.legend(fontsize=6)
    axes[0][0].axhline(1.0, color="k", lw=1)
    axes[0][0].set_ylabel("√(d_in/d_out)·max_x ‖J_x‖_op  (nominal 1)")
    axes[0][1].set_ylabel("top |eigenvalue| of the Hessian's block of W_l")
    ax = axes[0][2]
    at_chance = _summary(r).layer_lipschitz_at_chance
    for rec in curved:
        ratio = rec.breakdown[1, 0] / rec.lipschitz_layer[1, 0]
        marker = "s" if rec.depth == max(x.depth for x in curved) else "o"
        left_out = rec.name in at_chance  # rule flag: not judged
        ax.plot(np.arange(1, ratio.size + 1), plots.positive(ratio), ":" if left_out else "-", marker=marker,
                color=colours[rec.optimizer], alpha=0.5 if left_out else 1.0,
                label=f"{rec.optimizer} L={rec.depth}" + (" (at chance: left out)" if left_out else ""))  # fmt: skip
    ax.axhline(1.0, color="k", lw=1)
    ax.set(yscale="log", xlabel="layer l", ylabel="measured ‖Δg_l‖/‖g_l‖ / (λ_l‖ΔW_l‖/‖g_l‖)",
           title=f"(c) per-layer Lipschitz model, end, η = {r.config.eta[0]:g}")  # fmt: skip
    ax.legend(fontsize=6)
    ax = axes[0][3]
    s = _summary(r)
    if s.density.size:
        for k, style in ((0, "--"), (1, "-")):
            ax.plot(s.density_grid, s.density[k], style, color="C3", label=CHECKPOINTS[k])
        top = 2 * float(np.max(s.density))
        ax.set(yscale="log", ylim=(top * 1e-7, top), xlabel="eigenvalue of ∇²ℒ", ylabel="density (smoothed)",
               title=f"(d) spectral density: {s.density_record}")  # fmt: skip
        ax.legend(fontsize=7)
    for ax in axes[0][:3]:
        ax.xaxis.set_major_locator(plots.plt.MaxNLocator(integer=True))
    for ax in axes[0]:
        ax.grid(alpha=0.3, which="both")
    return fig


def figures(results: dict) -> dict:
    r = results["geometry"]
    out = {
        "geometry_width": width_figure(r),
        "geometry_ranks": ranks_figure(r),
        "geometry_ratios": ratios_figure(r),
        "geometry_ceff": ceff_figure(r),
    }
    if _summary(r).modular_depth is not None:  # a result from before trust measured the modular family has none
        out["geometry_modular"] = modular_figure(r)
    if r.layers:
        out["geometry_layers"] = layers_figure(r)
    for name in (LONG_RESIDUAL, LONG_WIDE):  # the long jobs' modular figures: residual MLPs; widths to 1024
        if name in results and _summary(results[name]).modular_depth is not None:
            out[name] = modular_figure(results[name])
    return out


def _tightest_row(ratio: np.ndarray, tightest: tuple[str, ...], where: str, runner_up=(), orders=()) -> Row:
    """Which geometry's own bound is tightest per direction: the one whose worst case is nearest 1 in log, and,
    where per-seed worsts are stored, whether the seeds separate it from the next tightest (rule compare)."""
    cells = "; ".join(
        f"{d}: " + ", ".join(f"{g} {ratio[0, i, j]:.2g}/{ratio[1, i, j]:.2g}" for j, g in enumerate(GEOMETRIES))
        for i, d in enumerate(RAW_DIRECTIONS)
    )

    def against(i: int) -> str:
        if not orders:
            return ""
        separated = report.compare_text(orders[i], yes="tighter", no=runner_up[i] + " tighter")
        return f" (against {runner_up[i]}, seed by seed: {separated})"

    verdict = "tightest worst case — " + ", ".join(
        f"{d}: {t}{against(i)}" for i, (d, t) in enumerate(zip(RAW_DIRECTIONS, tightest))
    )
    return Row(
        f"Which geometry's relative bound ∏(1 + η s_l) − 1 is tightest on the function — {where}",
        "assumption",
        f"measured/bound, median/worst: {cells}",
        verdict,
        tuple(orders),
    )


def _exponent_row(claim: ExponentClaim, c) -> Row:
    cells = ", ".join(
        f"{o} {plus_minus(m, h, c.seeds, 2)}" for o, m, h in zip(claim.optimizers, claim.mean, claim.half_width)
    )
    verdicts = claim.verdicts(c.seeds)
    return Row(
        f"Width exponent of the function change per {claim.geometry} step along the gradient, {claim.checkpoint}: "
        f"predicted {claim.predicted:g} (docs/theory.md §8.5)",
        "claim",
        f"p (95 % CI over seeds) at η = {c.eta[0]:g}: {cells}",
        "; ".join(f"{o}: {v.outcome}" for o, v in zip(claim.optimizers, verdicts))
        + ("" if claim.consistent else f" (mean p = {claim.mean_of_means:.2f})"),
        verdicts,
    )


def study_rows(r: GeometryResult) -> list[Row]:
    c, s = r.config, _summary(r)
    where = f"`trust geometry` ({count(len(c.optimizers), 'optimiser')}, {count(c.seeds, 'seed')}, widths " \
            f"{c.widths[0]}–{c.widths[-1]}, depths {c.depths[0]}–{c.depths[-1]}, {c.dataset})"  # fmt: skip
    out = [_tightest_row(r.ratio_function, s.tightest, where, s.runner_up, s.tightest_orders)]
    if c.resnets:
        where = (
            f"`trust geometry` ResNets ({', '.join(c.resnets)}, 8 channels; {', '.join(c.resnet_optimizers)}; "
            f"{count(c.resnet_seeds, 'seed')}, {c.resnet_dataset})"
        )
        out.append(_tightest_row(r.resnet_function, s.resnet_tightest, where))
    if s.operator is not None:
        out.append(
            Row(
                "Operator-norm bound ‖Δf(x)‖ ≤ ∏‖W_l‖_op‖x‖[∏(1 + b_l) − 1] on bias-free relu MLPs, all 12 families",
                "theorem",
                f"worst measured/bound {r.operator_worst:.3g} over {r.operator_points} (η, family, checkpoint) "
                f"points; {r.operator_violations} above 1 + their float32 rounding allowance (largest "
                f"{r.operator_allowance:.2g})",
                s.operator.outcome,
                (s.operator,),
            )
        )
    out += [_exponent_row(claim, c) for claim in s.exponents]
    med = s.c_eff_widest  # (k, s)
    cells = "; ".join(
        f"{tag}: " + ", ".join(f"{g} {med[k, j]:.3g}" for j, g in enumerate(GEOMETRIES[:2]))
        for k, tag in enumerate(CHECKPOINTS)
    )
    explained = {
        "explained": "explained: spectral sizes bring C_eff to ≈ 1",
        "partly": f"partly: C_eff stays at {s.explains.low:.3g}–{s.explains.high:.3g} in spectral sizes",
        "not explained": "not explained by the geometry",
    }[s.explains.outcome]
    out.append(
        Row(
            f"Does C_eff of the paper's slice shrink towards 1 with the step measured in the spectral geometry "
            f"(width {c.widths[-1]}, depth {c.depth})?",
            "measurement",
            f"median C_eff with the bound in each geometry's sizes — {cells}; after training, cells at chance "
            f"(rule flag: training accuracy ≤ {CHANCE_FACTOR:g}× chance; an untrained net's end) by depth: "
            + ", ".join(f"L={d}: {a} of {n}" for d, a, n in zip(c.depths, s.depth_at_chance, s.depth_cells)),
            ", ".join(f"{tag}: ÷{f / sp:.3g}" for tag, (f, sp) in zip(CHECKPOINTS, med)) + f" — {explained}",
            (s.explains,),
        )
    )
    return out


def _modular_rows(r: GeometryResult, s) -> list[Row]:
    """docs/theory.md §10.3: the exact bound of a modular step (a theorem), and whether the modular family's
    effective constant along the gradient stays the same across depth."""
    if s.modular_theorem is None:
        return []
    c, t = r.config, s.modular_theorem
    depth, atoms = s.modular_depth, s.atom_product_depth
    per_depth, products = _per_depth(depth, c.depths), _per_depth(atoms, c.depths)
    orders = _orders(c.optimizers, s.modular_orders)
    rows = [
        _modular_theorem_row(t),
        Row(
            f"Modular norm: is the effective constant (measured over the nominal ∏(1 + η s_l) − 1, which assumes "
            f"well-normed layers) the same at every depth? Along the gradient, width {c.width}",
            "claim",
            f"largest measured/nominal over η, median [range] over optimisers × seeds — {per_depth}; "
            f"∏‖W_l‖_* (the factor the nominal bound takes to be 1) — {products}",
            f"deepest against shallowest at the end — {orders}",
            s.modular_orders,
        ),
    ]
    if s.tared_depth is not None:
        rows.append(_tared_row(r, s))
    if s.residual_modular_depth is not None and s.residual_atom_product_depth is not None:
        rows.append(_residual_row(r, s))
    if s.resnet_modular is not None and s.resnet_atom_product is not None:
        rows.append(_resnet_row(r, s))
    return rows


def _tared_row(r: GeometryResult, s) -> Row:
    """docs/theory.md §10.1: the alternative mass allocation's constant across depth, and against the unit masses'."""
    c = r.config
    assert s.tared_depth is not None
    against = "; ".join(
        f"{o}: {compare_text(v, yes='tared larger', no='tared smaller')}"
        for o, v in zip(c.optimizers, s.tared_against_unit)
    )
    return Row(
        f"Modular norm with the other mass allocation — the hidden layers tared together to mass m = "
        f"{TARED_HIDDEN_MASS:g} beside the first and last layers' 1 each (shares 1/(2 + m) for the first and last, "
        f"m/((2 + m)(L − 2)) a hidden layer; docs/theory.md §10.1): is its effective constant the same at every "
        f"depth, and is it the unit masses'? Along the gradient, width {c.width}",
        "claim",
        "largest measured/nominal over η, median [range] over optimisers × seeds — "
        + _per_depth(s.tared_depth, c.depths),
        (f"deepest against shallowest at the end — {_orders(c.optimizers, s.tared_orders)}; " if s.tared_orders else "")
        + f"against the unit masses on the same cells at L={c.depths[-1]}, paired by seed — {against}",
        s.tared_orders + s.tared_against_unit,
    )


def _modular_theorem_row(t, where: str = "") -> Row:
    """docs/theory.md §10.3, §10.5: the exact bound of a modular step, a theorem (``where``: a long job's)."""
    return Row(
        "Modular norm: a step of modular norm η moves the output of an MLP (plain or residual) or of a ResNet "
        "without normalisation by at most the bound of docs/theory.md §10.3 with the measured atom norms "
        f"(∏(‖W_l‖_* + η s_l) − ∏‖W_l‖_* for a plain MLP; in RMS units), every raw direction, under the unit masses "
        f"and, where measured, the hidden layers tared{where}",
        "theorem",
        f"worst measured/bound {t.high:.3g}, median {t.effect:.3g}, {t.statistic} above 1 + "
        f"{MODULAR_ALLOWANCE:g} (float32 outputs differenced at the smallest η)",
        t.outcome,
        (t,),
    )


def _orders(optimizers, verdicts) -> str:
    return "; ".join(
        f"{o}: {compare_text(v, yes='deeper larger', no='deeper smaller')}" for o, v in zip(optimizers, verdicts)
    )


def _per_depth(values: Spread, depths) -> str:
    """``init: L=… spread, …; end: …`` of a spread over (checkpoint, depth), leaving out the depths measured at
    neither checkpoint (the tared allocation at depth 2, which has no hidden layer)."""
    measured = [(v, d) for v, d in enumerate(depths) if np.isfinite(values.median[:, v]).any()]
    return "; ".join(
        f"{tag}: " + ", ".join(f"L={d} {spread(values, (k, v))}" for v, d in measured)
        for k, tag in enumerate(CHECKPOINTS)
    )


def _residual_row(r: GeometryResult, s) -> Row:
    """docs/theory.md §10.5: the residual MLPs' modular constant across depth, their C_eff in the paper's sizes."""
    c = r.config
    assert s.residual_modular_depth is not None and s.residual_atom_product_depth is not None
    assert s.residual_c_eff is not None
    depths = c.residual_depths
    sizes = "; ".join(
        f"{geometry} sizes, {tag}: "
        + ", ".join(f"L={d} {spread(s.residual_c_eff, (k, g, v))}" for v, d in enumerate(depths))
        for g, geometry in enumerate(GEOMETRIES[:2])
        for k, tag in enumerate(CHECKPOINTS)
    )
    orders = _orders(c.optimizers, s.residual_modular_orders)
    return Row(
        f"Modular norm on residual MLPs (h + φ(Wh), sensitivity 2 a block; docs/theory.md §10.5): is the effective "
        f"constant the same at every depth? Along the gradient, width {c.width}",
        "claim",
        f"largest measured/nominal over η — {_per_depth(s.residual_modular_depth, depths)}; ∏‖W_l‖_* — "
        f"{_per_depth(s.residual_atom_product_depth, depths)}; beside them the paper's slice's C_eff — {sizes}",
        f"deepest against shallowest at the end — {orders}",
        s.residual_modular_orders,
    )


def _resnet_row(r: GeometryResult, s) -> Row:
    """docs/theory.md §10.5: the ResNets without normalisation in the modular norm (a measurement)."""
    c = r.config
    assert s.resnet_modular is not None and s.resnet_atom_product is not None
    measured = [v for v in range(len(c.resnets)) if np.isfinite(s.resnet_modular.median[v]).any()]
    text = "; ".join(
        f"{c.resnets[v]}: constant {spread(s.resnet_modular, (v, 0))} → {spread(s.resnet_modular, (v, 1))}, "
        f"∏‖W_l‖_* {spread(s.resnet_atom_product, (v, 0))} → {spread(s.resnet_atom_product, (v, 1))}"
        for v in measured
    )
    return Row(
        "Modular norm on ResNets without normalisation (convolutions and the head's bias as atoms; "
        "docs/theory.md §10.5): the effective constant along the gradient and ∏‖W_l‖_*",
        "measurement",
        f"initialisation → end, median [range] over {', '.join(c.resnet_optimizers)} × "
        f"{count(c.resnet_seeds, 'seed')} on {c.resnet_dataset} — {text}",
        "measured",
    )


def _feature_rows(r: GeometryResult, s, where: str = "") -> list[Row]:
    """docs/theory.md §12: the width exponent of each layer group's relative feature change (predicted 0);
    ``where`` names a long job's study."""
    if not len(s.feature_verdicts):
        return []
    c, out = r.config, []
    n_span, n_group = len(SPANS), len(LAYER_GROUPS)
    for t, span in enumerate(SPANS):
        for g, group in enumerate(LAYER_GROUPS):
            verdicts = [s.feature_verdicts[(o * n_span + t) * n_group + g] for o in range(len(c.optimizers))]
            cells = ", ".join(
                f"{o} {plus_minus(s.feature_exponent[i, t, g], s.feature_exponent_half[i, t, g], c.seeds, 2)}"
                for i, o in enumerate(c.optimizers)
            )
            out.append(
                Row(
                    f"Feature learning across width: the {group} layer's relative feature change ‖Δh_l‖/‖h_l‖ "
                    f"after {span}, ∝ n^p — the spectral condition predicts p = 0 (docs/theory.md §12){where}",
                    "claim",
                    f"p (95 % CI over seeds), widths {c.widths[0]}–{c.widths[-1]} at depth {c.depth}: {cells}",
                    "; ".join(f"{o}: {v.outcome}" for o, v in zip(c.optimizers, verdicts)),
                    tuple(verdicts),
                )
            )
    return out


def _grouped(values: np.ndarray, records: tuple[str, ...]) -> str:
    """Per record, its first / median hidden / last layer at initialisation → the end."""

    def at(k: int, i: int) -> str:
        return "/".join(f"{x:.3g}" for x in values[i, k])

    return "; ".join(f"{name}: {at(0, i)} → {at(1, i)}" for i, name in enumerate(records))


def _layer_rows(s) -> list[Row]:
    """docs/theory.md §10.4, §11: the layers as modules and the per-layer curvature, on the chosen cells."""
    if s.weight_theorem is None:
        return []
    rows = [
        Row(
            "Well-normed modules: each layer's input sensitivity (top singular value of its input Jacobian, RMS → "
            "RMS) against the modular norm's nominal 1",
            "measurement",
            "first/median hidden/last layer, initialisation → end: " + _grouped(s.input_sensitivity, s.records),
            "measured",
        ),
        Row(
            "A layer's output change per unit modular step along the modular optimiser's direction is at most 1 "
            "(1-Lipschitz layers; docs/theory.md §10.4)",
            "theorem",
            f"worst {s.weight_theorem.high:.3g}, median {s.weight_theorem.effect:.3g} over the chosen cells' layers "
            f"and both points; first/median hidden/last: " + _grouped(s.weight_sensitivity, s.records),
            s.weight_theorem.outcome,
            (s.weight_theorem,),
        ),
    ]
    if s.layer_lipschitz is not None:
        curvature = [i for i in range(len(s.records)) if np.isfinite(s.block_curvature[i]).any()]
        rows.append(
            Row(
                "Per-layer Lipschitz model: each layer's gradient change along the paper's slice at most "
                "λ_l‖ΔW_l‖/‖g_l‖, λ_l its Hessian block's top |eigenvalue| (docs/theory.md §11.1), end of training",
                "assumption",
                "λ_l, first/median hidden/last, initialisation → end: "
                + _grouped(s.block_curvature[curvature], tuple(s.records[i] for i in curvature))
                + f"; worst measured/predicted at the end {s.layer_lipschitz.statistic:.3g}"
                + (
                    f" over the trained nets (at chance after training, left out by rule flag: "
                    f"{', '.join(s.layer_lipschitz_at_chance)})"
                    if s.layer_lipschitz_at_chance
                    else ""
                ),
                violation_factor(s.layer_lipschitz.statistic),
                (s.layer_lipschitz,),
            )
        )
    return rows


LONG_RESIDUAL, LONG_WIDE = "geometry_residual", "geometry_width_1024"  # the long jobs (geometry.long_configs)


def rows(results: dict) -> list[Row]:
    r = results["geometry"]
    s = _summary(r)
    out = study_rows(r) + _modular_rows(r, s) + _feature_rows(r, s) + _layer_rows(s)
    if LONG_RESIDUAL in results and _summary(results[LONG_RESIDUAL]).residual_modular_depth is not None:
        residual = _summary(results[LONG_RESIDUAL])
        assert residual.modular_theorem is not None
        out += [_modular_theorem_row(residual.modular_theorem, f" — long job {LONG_RESIDUAL}, residual MLPs included"),
                _residual_row(results[LONG_RESIDUAL], residual)]  # fmt: skip
    if LONG_WIDE in results:
        wide = results[LONG_WIDE]
        out += _feature_rows(wide, _summary(wide), f" — long job {LONG_WIDE}")
    return out


def summary(result: GeometryResult) -> str:
    c = result.config
    lines = [f"{count(len(c.optimizers), 'optimiser')}, {count(c.seeds, 'seed')}; widths {c.widths} at depth "
             f"{c.depth}, depths {c.depths} at width {c.width}; {result.diverged} cells diverged"]  # fmt: skip
    for g, geometry in enumerate(GEOMETRIES):
        cells = ", ".join(
            f"{d} {result.ratio_function[0, i, g]:.3g}/{result.ratio_function[1, i, g]:.3g}"
            for i, d in enumerate(RAW_DIRECTIONS)
        )
        lines.append(f"{geometry}: function change / own bound, median/worst: {cells}")
    if c.resnets:
        cells = ", ".join(
            f"{geometry} {result.resnet_function[0, 0, g]:.3g}/{result.resnet_function[1, 0, g]:.3g}"
            for g, geometry in enumerate(GEOMETRIES)
        )
        lines.append(f"ResNets ({', '.join(c.resnets)}), gradient direction, median/worst: {cells}")
    lines.append(
        f"operator-norm theorem: worst ratio {result.operator_worst:.3g} over {result.operator_points} points, "
        f"{result.operator_violations} beyond their rounding allowance (at most {result.operator_allowance:.2g})"
    )
    shared = ", ".join(
        f"{geometry} {d} {_exponent(result, 0, 0, i, g)}"
        for g, geometry in enumerate(GEOMETRIES[:2])
        for i, d in enumerate(RAW_DIRECTIONS[:3])
    )
    lines.append(f"width exponent at init: {shared}")
    step = RAW_DIRECTIONS.index("step")
    for o, opt in enumerate(c.optimizers):
        cells = ", ".join(
            f"{geometry} {d} {_exponent(result, o, 1, i, g)}"
            for g, geometry in enumerate(GEOMETRIES[:2])
            for i, d in enumerate(RAW_DIRECTIONS)
        )
        own = ", ".join(f"{geometry} {_exponent(result, o, 0, step, g)}" for g, geometry in enumerate(GEOMETRIES[:2]))
        lines.append(f"width exponent, {opt}: own first step {own}; at the end {cells}")
    return "\n".join(lines)
