"""Views of ``trust constants``: the CLI summary, the constants figure and the report rows (docs/theory.md §3)."""

from __future__ import annotations

import numpy as np

from trust.experiments.constants import (
    ConstantsResult,
)
from trust.views import plots
from trust.views.report import Row, power10, violation_factor


def summary(result: ConstantsResult) -> str:
    lines = []
    for row in result.rows:
        lay = row.layers
        lines.append(f"L = {row.depth}, epoch {row.epoch:g}: loss {row.loss:.4f}")
        lines.append(
            f"  {'layer':>6} {'alpha':>7} {'beta':>7} {'kappa(W)':>9} {'kappa(dW)':>9} {'rho':>7} "
            f"{'cos th':>7} {'cos gam':>7} {'C_eff g':>8}"
        )
        for i, name in enumerate(lay.name):
            lines.append(
                f"  {name:>6} {lay.alpha[i]:7.3f} {lay.beta[i]:7.3f} {lay.kappa_w[i]:9.3g} "
                f"{lay.kappa_dw[i]:9.3g} {lay.op_over_frobenius[i]:7.3f} {lay.cos_theta[i]:7.4f} "
                f"{lay.cos_gamma[i]:7.4f} {lay.c_eff_gradient[i]:8.3g}"
            )
        lines.append(
            f"  log10 C = {row.log10_C:.3g} (κ(ΔW) as measured), log10 ∏c_l = {row.log10_C_layers:.3g}, "
            f"with ρ for κ(ΔW): {row.log10_C_layers_op:.3g}"
        )
        lines.append(
            f"  C_eff: function {row.C_eff_function:.3g}, gradient worst layer {row.C_eff_gradient:.3g}, "
            f"layer 1 {row.C_eff_gradient_first:.3g}; Lemma-2 η: C=1 {row.thresholds.lemma2:.3g}, "
            f"C_eff {row.thresholds.lemma2_C_eff:.3g}"
        )
    for epoch, fit in result.growth.items():
        if fit.C_eff_gradient and fit.C_eff_function:
            lines.append(
                f"epoch {epoch}: C_eff (gradient) grows ×{fit.C_eff_gradient.factor_per_layer:.3f} per "
                f"layer, function ×{fit.C_eff_function.factor_per_layer:.3f}"
            )
    return "\n".join(lines)


def figure(result: ConstantsResult):
    """(a) C_eff for the function and the gradients across depth, (b) the Theorem-1 constant's per-layer form
    beside C_eff on a log axis, (c) C_eff of each layer's gradient at the deepest net, (d) the
    measured transmission α_l, β_l there."""
    style = plots.epoch_style([r.epoch for r in result.rows])
    fig, axes = plots.subplots(1, 4, figsize=(19, 4.2))
    axes = axes[0]
    for epoch, ls in style.items():
        sel = sorted((r for r in result.rows if r.epoch == epoch), key=lambda r: r.depth)
        depth = [r.depth for r in sel]
        tag = plots.epoch_tag(epoch)
        for attr, c, name in (
            ("C_eff_gradient", "tab:red", "gradient, worst layer"),
            ("C_eff_gradient_first", "tab:orange", "gradient, layer 1"),
            ("C_eff_function", "tab:blue", "function (batch)"),
        ):
            axes[0].plot(depth, [getattr(r, attr) for r in sel], color=c, ls=ls, marker="o", label=f"{name}, {tag}")
        axes[1].plot(
            depth,
            [10.0**r.log10_C_layers_op for r in sel],
            color="tab:purple",
            ls=ls,
            marker="s",
            label=f"∏ κ(W_l)max(1, ρ_l)β/α_l, {tag}",
        )
        axes[1].plot(
            depth,
            [r.C_eff_function for r in sel],
            color="tab:blue",
            ls=ls,
            marker="o",
            label=f"C_eff function, {tag}",
        )
        deepest = sel[-1]
        layers = np.arange(1, deepest.depth + 1)
        axes[2].plot(
            layers,
            deepest.layers.c_eff_gradient,
            color="tab:red",
            ls=ls,
            marker=".",
            label=f"L={deepest.depth}, {tag}",
        )
        axes[3].plot(layers, deepest.layers.alpha, color="tab:green", ls=ls, marker=".", label=f"α_l, {tag}")
        axes[3].plot(layers, deepest.layers.beta, color="tab:brown", ls=ls, marker=".", label=f"β_l, {tag}")
    for ax in axes[:2]:
        plots.depth_axis(ax, {r.depth for r in result.rows})
    axes[0].axhline(1.0, color="k", lw=0.8)
    axes[0].set(yscale="log", xlabel="depth L", ylabel="C_eff = max_η measured / DRT", title="(a) effective constant")
    low, high = axes[0].get_ylim()
    axes[0].set_ylim(low, high * (high / low) ** 0.6)  # headroom: the legend above the data, not over a point
    axes[1].set(
        yscale="log",
        xlabel="depth L",
        ylabel="constant (log scale)",
        title="(b) function distance: Theorem-1 form (κ(ΔW) → ρ) vs C_eff",
    )
    axes[2].set(
        yscale="log", xlabel="layer l", ylabel="C_eff of layer l's gradient", title="(c) per layer, deepest net"
    )
    axes[3].set(xlabel="layer l", ylabel="‖φ(z)‖/‖z‖ (min, max over examples)", title="(d) transmission, deepest net")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    return fig


def _context(r) -> str:
    """What a relative gradient change divides by: the loss, accuracy and ‖g₁‖ there, and rule flag's mark."""
    if not np.isfinite(r.accuracy):  # stored by trust ≤ 0.3
        return f"loss {r.loss:.3g}"
    flag = f" — flagged: {r.flag} (rule flag), left out of the growth fits" if r.flag else ""
    return f"loss {r.loss:.3g}, accuracy {r.accuracy:.2f}, ‖g₁‖ {r.gradient_norm[0]:.2g}{flag}"


def result_rows(result: ConstantsResult) -> list[Row]:
    """C (Theorem-1 formula with measured pieces) and C_eff per depth and epoch, and the C_eff growth."""
    rows = []
    assert result.drt is not None, "a derived result"
    for r, drt in zip(result.rows, result.drt):
        rows.append(
            Row(
                f"Exponential constant — relu MLP L={r.depth}, {r.tag} "
                f"({result.direction} direction, η ≤ {result.eta_max:g})",
                "measurement",
                f"C = (κ²β/α)^L: {power10(r.log10_C)}; ∏c_l: {power10(r.log10_C_layers)}; with measured "
                f"ρ for κ(ΔW): {power10(r.log10_C_layers_op)}. C_eff: function {r.C_eff_function:.3g}, "
                f"gradient worst layer {r.C_eff_gradient:.3g}, layer 1 {r.C_eff_gradient_first:.3g}; " + _context(r),
                "DRT needs C_eff ≤ 1: holds"
                if drt.outcome == "holds"
                else f"DRT {violation_factor(drt.statistic)}: needs C_eff {r.C_eff_gradient:.3g}",
                (drt,),
            )
        )
    for epoch, fit in result.growth.items():
        g, f = fit.C_eff_gradient, fit.C_eff_function
        if g and f:
            tag = "initialisation" if float(epoch) == 0 else f"after {float(epoch):g} epochs"
            fitted = [r.depth for r in result.rows if r.epoch == float(epoch) and not r.flag]
            flagged = [f"L={r.depth} ({r.flag})" for r in result.rows if r.epoch == float(epoch) and r.flag]
            tag += f", depths {', '.join(map(str, fitted))}" + (f"; left out (rule flag): {', '.join(flagged)}"
                                                                 if flagged else "")  # fmt: skip
            formula = power10(fit.C_layers_op.slope_per_layer / np.log(10)) if fit.C_layers_op else "—"
            rows.append(
                Row(
                    f"Reviewer: C grows exponentially with depth — fit ln C = a + bL, {tag}",
                    "claim",
                    f"function distance (what Theorem 1 bounds): C_eff ×{f.factor_per_layer:.3g} per layer, "
                    f"Theorem-1 formula with ρ for κ(ΔW) ×{formula} per layer. Gradients (worst layer; no "
                    "constant exists in general — proofs_checks theorem1_gradient): "
                    f"C_eff ×{g.factor_per_layer:.3g} per layer",
                    f"function: measured ×{f.factor_per_layer:.3g}/layer vs formula ×{formula}/layer",
                )
            )
    return rows


def figures(results: dict[str, ConstantsResult]) -> dict:
    """One figure per run, named after the run."""
    return {name: figure(r) for name, r in results.items()}


def rows(results: dict[str, ConstantsResult]) -> list[Row]:
    return [row for r in results.values() for row in result_rows(r)]
