"""Views of ``trust assumptions``: the CLI summary, the fits' summary and curve figures, and one report row per
model (docs/theory.md §2.5)."""

from __future__ import annotations

import numpy as np

from trust.experiments.assumptions import (
    AssumptionsResult,
)
from trust.views import plots
from trust.views.report import Row


def _range(values) -> str:
    """``min…max`` of a per-layer quantity."""
    v = np.asarray(values, dtype=float)
    return f"{v.min():.3g}…{v.max():.3g}"


def _point_name(result: AssumptionsResult, k: int, first: str = "init") -> str:
    """``first`` (the initialisation), ``epoch N``, or ``given parameters`` (an own model's one point)."""
    if result.config.model_file:
        return "given parameters"
    return first if k == 0 else f"epoch {result.points[k].epoch:g}"


def _curves(ax, result: AssumptionsResult, k: int, legend: bool) -> None:
    """Point ``k``: each group's median relative gradient change over its layers (markers), its DRT-shape fit
    (dashed), its Lipschitz-shape fit (dotted) and the DRT curve with constant 1 (black)."""
    p, eta = result.points[k], result.eta
    assert result.curves is not None, "a derived result"
    for n, (g, curves) in enumerate(zip(p.groups, result.curves[k])):
        colour = f"C{n}"
        ax.plot(
            eta,
            curves.measured,
            "o",
            ms=3.5,
            color=colour,
            label=f"{g.group}: {g.verdict}",
        )
        ax.plot(eta, curves.drt_fit, "--", color=colour, lw=1)
        ax.plot(eta, curves.lipschitz_fit, ":", color=colour, lw=1.3)
    ax.plot(eta, p.drt, "k-", lw=1, label="DRT, constant 1")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="η (every tensor moves by η‖W_l‖)",
        ylabel="‖Δg_l‖/‖g_l‖ (median of the group)",
    )
    ax.set_title(f"{result.config.label}, {_point_name(result, k, 'initialisation')}", fontsize=9)
    if legend:
        ax.plot([], [], "k--", lw=1, label="DRT-shape fit (1+η)^(cL) − 1")
        ax.plot([], [], "k:", lw=1.3, label="Lipschitz-shape fit k·λ‖ΔW‖/‖g_l‖")
    ax.legend(fontsize=6.5, loc="upper left")


def summary_figure(results: list[AssumptionsResult]):
    """Per model (x) and group (marker): (a) the DRT-shape exponent c, (b) the Lipschitz-shape factor k, (c) how
    much closer the DRT shape fits than the Lipschitz shape (ratio of RMS log-residuals; > 1: DRT closer); hollow:
    initialisation, filled: end of training (an own model's one point, at its given parameters, filled)."""
    fig, axes = plots.subplots(1, 3, (14, 4.2))
    labels = [r.config.label for r in results]
    groups = ["first", "hidden", "last", "stem", "stage 1", "stage 2", "stage 3", "norm scales", "head"]
    groups += ["embedding", "attention", "mlp", "norm gains"]  # a transformer's
    markers = dict(zip(groups, "o^svDP*Xh<>dp"))
    seen = set()
    for x, r in enumerate(results):
        for k, point in enumerate(r.points):
            last = k == len(r.points) - 1  # the end of training, or an own model's one point: filled, labelled
            for g in point.groups:
                face = "C0" if last else "none"
                label = g.group if g.group not in seen and last else None
                seen |= {g.group} if last else set()
                kw = dict(
                    marker=markers.get(g.group, "o"), mfc=face, mec="C0" if last else "0.4", ls="none", ms=6,
                    label=label,
                )  # fmt: skip
                shift = (k - 0.5) * 0.25 if len(r.points) > 1 else 0.0
                axes[0, 0].plot(x + shift, g.drt_exponent, **kw)
                axes[0, 1].plot(x + shift, g.lipschitz_factor, **kw)
                axes[0, 2].plot(x + shift, g.lipschitz_rms_log / max(g.drt_rms_log, 1e-12), **kw)
    titles = ("(a) DRT shape: c in ln(1+r) = c·L·ln(1+η)", "(b) Lipschitz shape: k in r = k·λ‖ΔW‖/‖g_l‖",
              "(c) rms ln-residual, Lipschitz / DRT")  # fmt: skip
    ylabels = ("DRT-shape exponent c", "Lipschitz-shape factor k", "rms ln-residual ratio")
    for ax, title, ylabel, ref in zip(axes[0], titles, ylabels, (1.0, 1.0, 1.0)):
        ax.axhline(ref, color="k", lw=0.8, ls=":")
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")
        ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
    axes[0, 2].axhspan(0.5, 2.0, color="0.9", zorder=0, label="(c) neither twice as close")
    # one legend beside the panels, so no marker of any model hides under it
    handles, names = axes[0, 0].get_legend_handles_labels()
    band, band_name = axes[0, 2].get_legend_handles_labels()
    fig.legend(handles + band[-1:], names + band_name[-1:], loc="outside right center", fontsize=7,
               title="group (filled: end,\nhollow: init)", title_fontsize=7)  # fmt: skip
    return fig


def curves_figure(results: list[AssumptionsResult]):
    """Every model's slice and fits at initialisation (left) and at the end of training (right)."""
    fig, axes = plots.subplots(len(results), 2, (10, 2.6 * len(results)))
    for k, (row, r) in enumerate(zip(axes, results)):
        _curves(row[0], r, 0, legend=k == 0)  # the fitted shapes named once, in the first panel
        if len(r.points) > 1:
            _curves(row[1], r, 1, legend=False)
        else:
            row[1].set_axis_off()  # an own model: one point
    return fig


def figures(results: dict[str, AssumptionsResult]) -> dict:
    ordered = list(results.values())
    return {"assumptions": summary_figure(ordered), "assumptions_curves": curves_figure(ordered)}


def _verdicts(result: AssumptionsResult, k: int) -> str:
    assert result.verdict_counts is not None, "a derived result"
    total = len(result.points[k].groups)
    return ", ".join(f"{v} {n}/{total}" for v, n in result.verdict_counts[k].items())


def rows(results: dict[str, AssumptionsResult]) -> list[Row]:
    rows = []
    for r in results.values():
        parts = []
        for k, p in enumerate(r.points):
            name = _point_name(r, k)
            fits = "; ".join(
                f"{g.group} c={g.drt_exponent:.2g} (±ln {g.drt_rms_log:.2f}) k={g.lipschitz_factor:.2g} "
                f"(±ln {g.lipschitz_rms_log:.2f}) slope {g.slope_small:.2f}/{g.slope_large:.2f} → {g.verdict}"
                for g in p.groups
            )
            parts.append(
                f"{name} (train loss {p.train_loss:.2g}, acc {p.train_acc:.2f}, ‖g‖ {p.gradient_norm:.2g}, λ "
                f"{p.sharpness:.3g}): {fits}"
            )
        command = f"--model-file {r.config.model_file}" if r.config.model_file else (
            f"--model {r.config.model}"
            + ("" if r.config.norm == "none" else f" --norm {r.config.norm}")
            + ("" if r.config.activation == "relu" else f" --activation {r.config.activation}")
        )  # fmt: skip
        ends = ("init", "end") if len(r.points) > 1 else ("given parameters",)
        rows.append(
            Row(
                f"Reviewers §6.2/§6.4: DRT shape or Lipschitz shape — {r.config.label}, seed {r.config.seed} "
                f"(`trust assumptions {command}`)",
                "measurement",
                " · ".join(parts),
                "; ".join(f"{end}: {_verdicts(r, k)}" for k, end in enumerate(ends)),
                tuple(g.as_verdict for p in r.points for g in p.groups),
            )
        )
    return rows


def summary(result: AssumptionsResult) -> str:
    lines = [result.description]
    names = ("initialisation", "end of training") if len(result.points) > 1 else ("given parameters",)
    for name, p in zip(names, result.points):
        transmission = (
            f"α {p.alpha.min():.2f}…{p.alpha.max():.2f}, β {p.beta.min():.2f}…{p.beta.max():.2f}"
            if p.alpha.size
            else "α, β measured on trust's own nets only"
        )
        lines.append(
            f"{name} (epoch {p.epoch:g}): train loss {p.train_loss:.3g}, acc {p.train_acc:.3f}, ‖g‖ "
            f"{p.gradient_norm:.3g}, sharpness {p.sharpness:.3g}; {transmission}, κ {_range(p.conditioning)}"
        )
        lines += [
            f"  {g.group}: DRT shape c = {g.drt_exponent:.3g} (rms ln {g.drt_rms_log:.2f}), Lipschitz shape "
            f"k = {g.lipschitz_factor:.3g} (rms ln {g.lipschitz_rms_log:.2f}); log-log slope "
            f"{g.slope_small:.2f} (small η), {g.slope_large:.2f} (large η) → {g.verdict}"
            for g in p.groups
        ]
    return "\n".join(lines)
