"""Views of ``trust breakdown``: the CLI summary, the Figure-1 slice and theorem figures, and their report rows
(docs/theory.md §2, §4)."""

from __future__ import annotations

import numpy as np

from trust.experiments.breakdown import (
    DEPTHS,
    BreakdownResult,
    BreakdownVerdicts,
)
from trust.experiments.shared.paper import PROBES
from trust.views import plots
from trust.views.report import Row, violation_factor


def breakdown_figure(rows: dict[str, list[BreakdownResult]], title: str):
    """Paper Figure 1 with the bounds drawn: one row per perturbation kind, one curve per net.

    Columns: loss change (symlog); relative function distance (batch Frobenius) with the DRT bound; relative
    gradient distance of the first layer with the DRT bound (dashed) and the Lipschitz-smooth linear prediction
    (dotted); and the DRT violation factor measured/bound."""
    fig, axes = plots.subplots(len(rows), 4, figsize=(17, 3.6 * len(rows)))
    for r, (label, results) in enumerate(rows.items()):
        ax_loss, ax_f, ax_g, ax_v = axes[r]
        for res in results:
            c = plots.depth_colour(res.net.depth, res.net.kind == "residual")
            eta, name = res.eta, res.net.label
            drt = plots.positive(res.drt)
            ax_loss.plot(eta, res.loss - res.loss[0], color=c, label=name)
            ax_f.plot(eta, plots.positive(res.function_frob), color=c, label=name)
            ax_f.plot(eta, drt, color=c, ls="--", lw=1)
            ax_g.plot(eta, plots.positive(res.gradient[:, res.first]), color=c, label=name)
            ax_g.plot(eta, drt, color=c, ls="--", lw=1)
            ax_g.plot(eta, plots.positive(res.lipschitz_first), color=c, ls=":", lw=1)
            ax_v.plot(eta, plots.positive(res.ratios.gradient_first_over_drt), color=c, label=f"{name} layer 1")
            ax_v.plot(eta, plots.positive(res.ratios.gradient_max_over_drt), color=c, ls="-.", lw=1)
        ax_loss.set_yscale("symlog", linthresh=1e-3)
        ax_loss.axhspan(-1e-3, 1e-3, color="0.92", zorder=0)  # symlog's linear band: its bends are the axis's
        loss_title = "change of the full-batch loss\n(symlog: linear in the shaded ±10⁻³)"
        ax_loss.set(ylabel=f"{label}\nℒ(W+ΔW) − ℒ(W)", title=loss_title if r == 0 else None)
        ax_f.set(yscale="log", ylabel="‖Δf‖/‖f‖ (batch)", title="relative function distance" if r == 0 else None)
        ax_g.set(yscale="log", ylabel="‖Δg₁‖/‖g₁‖", title="relative gradient distance, layer 1" if r == 0 else None)
        ax_v.set(
            yscale="log",
            ylabel="measured / DRT bound",
            title="DRT violation factor (−· worst layer)" if r == 0 else None,
        )
        ax_v.axhline(1.0, color="k", lw=0.8)
        for ax in axes[r]:
            ax.set_xlabel("η (relative step per layer)")
            ax.grid(alpha=0.3, which="both")
        ax_f.legend(fontsize=8, loc="upper left")  # the loss panel's lower left is where its curves go
    axes[0, 2].plot([], [], "k--", lw=1, label="DRT ∏(1+a)−1")
    axes[0, 2].plot([], [], "k:", lw=1, label="Lipschitz (λ fit at smallest η)")
    axes[0, 2].legend(fontsize=8)
    fig.suptitle(title)
    return fig


def theorem_figure(exact: list[BreakdownResult], opnorm: list[BreakdownResult]):
    """Where the maths is exact: (a) homogeneous nets with ΔW = ηW lie on the DRT curve; (b) the
    operator-norm bound (a theorem) holds — max over examples of measured/bound stays below 1."""
    fig, axes = plots.subplots(1, 2, figsize=(11, 4))
    ax_a, ax_b = axes[0]
    for res in exact:
        c = plots.depth_colour(res.net.depth)
        ax_a.plot(res.eta, plots.positive(res.drt), color=c, lw=3, alpha=0.35)
        ax_a.plot(
            res.eta,
            plots.positive(res.function_max),
            color=c,
            ls="--",
            label=f"L={res.net.depth}: measured (max over x)",
        )
    ax_a.set(
        yscale="log",
        xlabel="η",
        ylabel="‖Δf‖/‖f‖",
        title="(a) exact case ΔW_l = ηW_l, leaky relu, no biases\nthick: (1+η)^L − 1, dashed: measured",
    )
    for res in opnorm:
        ax_b.plot(
            res.eta,
            plots.positive(res.operator_norm_ratio),
            color=plots.depth_colour(res.net.depth),
            label=f"L={res.net.depth}",
        )
    ax_b.axhline(1.0, color="k", lw=0.8)
    ax_b.set(
        yscale="log",
        xlabel="η",
        ylabel="max_x ‖Δf(x)‖ / bound",
        title="(b) operator-norm bound (a theorem), random direction",
    )
    for ax in (ax_a, ax_b):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return fig


def _verdicts(result: BreakdownResult) -> BreakdownVerdicts:
    assert result.verdicts is not None, "a derived result"
    return result.verdicts


def _probes(result: BreakdownResult) -> list[int]:
    """Grid indices of the probe η (0.01, 0.05, 0.099) the grid reaches, each once."""
    return sorted({result.at_eta(eta) for eta in PROBES if eta <= result.eta[-1] + 1e-12})


def breakdown_rows(gradient_runs: list[BreakdownResult], random_runs: list[BreakdownResult]) -> list[Row]:
    """Rows for the gradient-breakdown experiment (paper Figure 1 at initialisation)."""
    rows = []
    for label, runs in (("fixed-gradient slice", gradient_runs), ("random direction", random_runs)):
        for res in runs:
            r, k, v = res.ratios, res.probe, _verdicts(res)
            name = f"{res.net.kind} L={res.net.depth}, width {res.net.widths[1]}, {label}"
            rows.append(
                Row(
                    f"DRT (constant 1, an assumption) bounds the layer-gradient change — {name}",
                    "assumption",
                    "worst layer gradient/DRT: "
                    + ", ".join(f"{r.gradient_max_over_drt[i]:.3g} at η={res.eta[i]:.3f}" for i in _probes(res))
                    + f"; max {v.drt.statistic:.3g} over the grid, at η={v.drt_worst_eta:.3f}; first layer "
                    f"{r.gradient_first_over_drt[k]:.3g} at η={res.eta[k]:.3f}; with biases counted as layers "
                    f"{r.gradient_max_over_drt_all_tensors[k]:.3g} "
                    f"(max {v.worst_all_tensors:.3g})",
                    violation_factor(v.drt.statistic),
                    (v.drt,),
                )
            )
    for res in gradient_runs:
        r, k = res.ratios, res.probe
        rows.append(
            Row(
                f"Lipschitz-smooth model: gradient change linear in ‖ΔW‖ — L={res.net.depth} {res.net.kind}",
                "model",
                f"measured/linear prediction (λ fit at smallest η) at η={res.eta[k]:.3f}: "
                f"first layer {r.gradient_first_over_lipschitz[k]:.3g}, "
                f"all layers {r.gradient_total_over_lipschitz[k]:.3g}",
                "linear within 2×" if _verdicts(res).linear.outcome == "linear" else "not linear",
                (_verdicts(res).linear,),
            )
        )
    return rows


def theorem_rows(exact: list[BreakdownResult], opnorm: list[BreakdownResult]) -> list[Row]:
    rows = []
    for res in exact:
        gap = _verdicts(res).exact
        rows.append(
            Row(
                f"Exact case: ΔW = ηW, homogeneous φ, no biases ⇒ ‖Δf‖/‖f‖ = (1+η)^L − 1 (L={res.net.depth})",
                "identity",
                f"max relative gap measured vs closed form: {gap.statistic:.2g}",
                gap.outcome,
                (gap,),
            )
        )
    for res in opnorm:
        operator = _verdicts(res).operator
        assert operator is not None, "operator-norm runs use theorem1 nets"
        rows.append(
            Row(
                f"Operator-norm bound (L={res.net.depth}, random direction)",
                "theorem",
                f"violations {int(operator.statistic)}; measured/bound over η and examples: median "
                f"{operator.effect:.3g}, max {operator.high:.3g}",
                f"{operator.outcome} (median ratio {operator.effect:.2g})"
                if operator.outcome == "holds, vacuous"
                else operator.outcome,
                (operator,),
            )
        )
    return rows


PAPER_GROUPS = ("breakdown_gradient", "breakdown_random", "exact", "opnorm")


def _paper_groups(results: dict[str, BreakdownResult]):
    """The paper set's four groups across DEPTHS (paper_configs' names), or None if ``results`` is another set."""
    names = [f"{group}_L{d}" for group in PAPER_GROUPS for d in DEPTHS] + ["breakdown_gradient_L16_residual"]
    if not all(n in results for n in names):
        return None

    def pick(prefix):
        return [results[f"{prefix}_L{d}"] for d in DEPTHS]

    return (
        pick("breakdown_gradient") + [results["breakdown_gradient_L16_residual"]],
        pick("breakdown_random"),
        pick("exact"),
        pick("opnorm"),
    )


def figures(results: dict[str, BreakdownResult]) -> dict:
    """The paper set (``paper_configs``): the breakdown figure across depths and the theorem figure; any other
    set of runs: one figure per run, named after it."""
    groups = _paper_groups(results)
    if groups is None:
        return {name: figure(r) for name, r in results.items()}
    gradient, random, exact, opnorm = groups
    return {
        "breakdown": breakdown_figure(
            {"fixed-gradient slice −g/‖g‖": gradient, "random direction": random},
            "Gradient breakdown at initialisation on digits (relu MLP, biases, cross-entropy); "
            "every tensor moved by η·‖W_l‖",
        ),
        "theorems": theorem_figure(exact, opnorm),
    }


def rows(results: dict[str, BreakdownResult]) -> list[Row]:
    """The paper set's rows across depths (a single run's numbers are its summary)."""
    groups = _paper_groups(results)
    if groups is None:
        return []
    gradient, random, exact, opnorm = groups
    return breakdown_rows(gradient, random) + theorem_rows(exact, opnorm)


def summary(result: BreakdownResult) -> str:
    eta, r, k = result.eta, result.ratios, result.probe
    weights = [result.names.index(n) for n in result.weight_names]
    grads = result.gradient[:, weights]
    lines = [
        f"net {result.net.kind} widths {list(result.net.widths)} (L = {result.net.depth}), "
        f"{result.net.n_examples} examples",
        f"{'eta':>7} {'loss':>9} {'f frob':>10} {'f max':>10} {'g ' + result.weight_names[0]:>10} "
        f"{'g max':>10} {'DRT':>10} {'gmax/DRT':>9}",
    ]
    for i in sorted({int(np.argmin(np.abs(eta - e))) for e in (0, 0.001, 0.01, 0.025, 0.05, eta[-1])}):
        lines.append(
            f"{eta[i]:7.4f} {result.loss[i]:9.4f} {result.function_frob[i]:10.3e} {result.function_max[i]:10.3e} "
            f"{grads[i, 0]:10.3e} {grads[i].max():10.3e} {result.drt[i]:10.3e} "
            f"{r.gradient_max_over_drt[i]:9.3g}"
        )
    lines.append(
        f"at eta = {eta[k]:.3f}: gradient/DRT first layer {r.gradient_first_over_drt[k]:.3g}, worst layer "
        f"{r.gradient_max_over_drt[k]:.3g}; worst over the grid {_verdicts(result).drt.statistic:.3g}"
    )
    operator = _verdicts(result).operator
    if operator is not None:
        lines.append(f"operator-norm bound (a theorem): max measured/bound {operator.high:.3g}")
    return "\n".join(lines)


def figure(result: BreakdownResult):
    return breakdown_figure({f"{result.net.kind} net": [result]}, "Gradient breakdown")
