"""Views of ``trust cosgamma``: the CLI summary, the cos γ figure and the report rows (docs/theory.md §6)."""

from __future__ import annotations

import matplotlib.ticker

from trust.base.schema import Verdict
from trust.core.estimate import MeanCI
from trust.experiments.cosgamma import (
    CosGammaResult,
)
from trust.views import plots
from trust.views.report import Row, plus_minus


def _pm(m: MeanCI, digits: int = 3) -> str:
    return plus_minus(m.mean, m.half_width, m.n, digits)


def summary(result: CosGammaResult) -> str:
    lines = []
    for kind, rows in result.monte_carlo.items():
        cells = ", ".join(f"n={r.size}: {_pm(r.estimate, 4)}" for r in rows)
        lines.append(f"Monte Carlo {kind} (limit {result.limits[kind]:.4f}): {cells}")
    for opt, tr in result.training.items():
        cells = ", ".join(f"ep {e:g}: {_pm(m)}" for e, m in zip(tr.epochs, tr.mean))
        lines.append(f"{opt} (cos π/4 = {result.paper:.3f}): {cells}")
    return "\n".join(lines)


def figure(result: CosGammaResult):
    """(a) Monte Carlo cos γ with 95 % intervals against 2/π and 3/4; (b) cos γ through training (mean over
    layers, 95 % interval across seeds; band: layer min–max) against the paper's cos(π/4)."""
    fig, axes = plots.subplots(1, 2, figsize=(12, 4.3))
    ax_a, ax_b = axes[0]
    for (kind, rows), c in zip(result.monte_carlo.items(), ("tab:blue", "tab:orange")):
        ax_a.errorbar(
            [r.size for r in rows],
            [r.estimate.mean for r in rows],
            yerr=[r.estimate.half_width for r in rows],
            color=c,
            marker="o",
            capsize=3,
            label=f"{kind}",
        )
        ax_a.axhline(result.limits[kind], color=c, ls="--", lw=1, label=f"{kind} limit {result.limits[kind]:.4f}")
    ax_a.set(xscale="log", xlabel="entries n", ylabel="E cos γ (95 % CI)", title="(a) Monte Carlo, iid entries")
    for i, (opt, tr) in enumerate(result.training.items()):
        colour = plots.plt.cm.tab10((i + 4) % 10)
        ax_b.errorbar(
            tr.epochs,
            [m.mean for m in tr.mean],
            yerr=[m.half_width for m in tr.mean],
            color=colour,
            marker="o",
            capsize=3,
            label=f"{opt}: mean over layers, 95 % CI over seeds",
        )
        ax_b.fill_between(tr.epochs, tr.layer_min, tr.layer_max, color=colour, alpha=0.15)
    ax_b.axhline(result.paper, color="k", lw=1, label="paper: cos(π/4) = 0.707")
    ax_b.axhline(result.limits["gaussian"], color="tab:blue", ls="--", lw=1, label="2/π = 0.637")
    ax_b.set_xscale("symlog", linthresh=1.0)
    epochs = sorted({float(e) for tr in result.training.values() for e in tr.epochs})
    ax_b.set_xticks(epochs, [f"{e:g}" for e in epochs])  # the measured epochs, not symlog's 10^k
    ax_b.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax_b.set(xlabel="epoch (symlog: linear to 1, logarithmic beyond)", ylabel="cos γ_l",
             title="(b) through training on digits (band: layer range)")  # fmt: skip
    ax_b.set_xlim(left=0)
    ax_b.set_ylim(top=max(0.75, ax_b.get_ylim()[1]))  # keep the paper's line clear of the frame
    for ax in (ax_a, ax_b):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return fig


def _paper_text(v: Verdict, mean: float) -> str:
    return v.outcome if v.outcome == "consistent" else f"{v.outcome}: measured {mean:.3f}"


def result_rows(result: CosGammaResult) -> list[Row]:
    rows = []
    for kind, mc in result.monte_carlo.items():
        last, limit = mc[-1], result.limits[kind]
        assert result.limit_verdicts is not None and result.paper_verdicts is not None, "a derived result"
        rows.append(
            Row(
                f"E cos γ → {limit:.4f} for iid {kind} entries",
                "theorem (limit n → ∞)",
                f"n = {last.size}: {_pm(last.estimate, 4)} (95 % CI, {last.estimate.n} trials)",
                result.limit_verdicts[kind].outcome,
                (result.limit_verdicts[kind],),
            )
        )
    for opt, tr in result.training.items():
        m = tr.mean[-1]
        assert result.paper_verdicts is not None, "a derived result"
        rows.append(
            Row(
                f"Paper: γ = π/4 (cos γ = {result.paper:.3f}) — {opt} training on digits",
                "assumption",
                f"cos γ at epoch {tr.epochs[-1]:g}: {_pm(m)} (95 % CI over {m.n} seeds) "
                f"(layers {min(tr.per_layer_mean[-1]):.3f}–{max(tr.per_layer_mean[-1]):.3f}); at init "
                f"{tr.mean[0].mean:.3f}",
                _paper_text(result.paper_verdicts[opt], m.mean),
                (result.paper_verdicts[opt],),
            )
        )
    return rows


def figures(results: dict[str, CosGammaResult]) -> dict:
    """One figure per run, named after the run."""
    return {name: figure(r) for name, r in results.items()}


def rows(results: dict[str, CosGammaResult]) -> list[Row]:
    return [row for r in results.values() for row in result_rows(r)]
