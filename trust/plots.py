"""Figures from stored results (plots read results; they never recompute)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _arr(x):
    return np.asarray([np.nan if v is None else v for v in x], dtype=float)


def _positive(y):
    """Log axes cannot show 0 (η = 0): mask it."""
    y = _arr(y)
    return np.where(y > 0, y, np.nan)


def net_colour(net: dict):
    """One colour per depth (log-spaced along viridis) and red for residual nets, fixed across panels."""
    if net["kind"] == "residual":
        return "tab:red"
    return plt.cm.viridis(min(0.9, np.log2(net["depth"]) / 5.0))


def breakdown_figure(rows: dict[str, list[dict]], title: str):
    """Paper Figure 1 with the bounds drawn: one row per perturbation kind, one curve per net.

    ``rows`` maps a row label to a list of breakdown ``results`` (see :mod:`trust.experiments.breakdown`).
    Columns: loss change (symlog); relative function distance (batch Frobenius) with the DRT bound; relative gradient
    distance of the first layer with the DRT bound (dashed) and the Lipschitz-smooth linear prediction
    (dotted); and the DRT violation factor measured/bound."""
    n_rows = len(rows)
    fig, axes = plt.subplots(n_rows, 4, figsize=(17, 3.6 * n_rows), squeeze=False, constrained_layout=True)
    for r, (label, results) in enumerate(rows.items()):
        ax_loss, ax_f, ax_g, ax_v = axes[r]
        for res in results:
            c = net_colour(res["net"])
            eta = _arr(res["eta"])
            name = f"L={res['net']['depth']}" + (" residual" if res["net"]["kind"] == "residual" else "")
            first = res["weight_names"][0]
            drt = _positive(res["bounds"]["drt"])
            ax_loss.plot(eta, _arr(res["loss"]) - _arr(res["loss"])[0], color=c, label=name)
            ax_f.plot(eta, _positive(res["function"]["frob"]), color=c, label=name)
            ax_f.plot(eta, drt, color=c, ls="--", lw=1)
            ax_g.plot(eta, _positive(res["gradient"][first]), color=c, label=name)
            ax_g.plot(eta, drt, color=c, ls="--", lw=1)
            ax_g.plot(eta, _positive(res["bounds"]["lipschitz"]["gradient_first"]), color=c, ls=":", lw=1)
            ax_v.plot(eta, _positive(res["ratios"]["gradient_first_over_drt"]), color=c, label=f"{name} layer 1")
            ax_v.plot(eta, _positive(res["ratios"]["gradient_max_over_drt"]), color=c, ls="-.", lw=1)
        ax_loss.set_yscale("symlog", linthresh=1e-3)
        ax_loss.set(ylabel=f"{label}\nℒ(W+ΔW) − ℒ(W)", title="change of the full-batch loss" if r == 0 else None)
        ax_f.set(yscale="log", ylabel="‖Δf‖/‖f‖ (batch)", title="relative function distance" if r == 0 else None)
        ax_g.set(yscale="log", ylabel="‖Δg₁‖/‖g₁‖", title="relative gradient distance, layer 1" if r == 0 else None)
        ax_v.set(yscale="log", ylabel="measured / DRT bound",
                 title="DRT violation factor (−· worst layer)" if r == 0 else None)
        ax_v.axhline(1.0, color="k", lw=0.8)
        for ax in axes[r]:
            ax.set_xlabel("η (relative step per layer)")
            ax.grid(alpha=0.3, which="both")
        ax_loss.legend(fontsize=8)
    axes[0, 2].plot([], [], "k--", lw=1, label="DRT ∏(1+a)−1")
    axes[0, 2].plot([], [], "k:", lw=1, label="Lipschitz (λ fit at smallest η)")
    axes[0, 2].legend(fontsize=8)
    fig.suptitle(title)
    return fig


def theorem_figure(exact: list[dict], opnorm: list[dict]):
    """Where the maths is exact: (a) homogeneous nets with ΔW = ηW lie on the DRT curve; (b) the
    operator-norm bound (a theorem) holds — max over examples of measured/bound stays below 1."""
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for res in exact:
        c = net_colour(res["net"])
        eta, L = _arr(res["eta"]), res["net"]["depth"]
        ax_a.plot(eta, _positive(res["bounds"]["drt"]), color=c, lw=3, alpha=0.35)
        ax_a.plot(eta, _positive(res["function"]["max"]), color=c, ls="--", label=f"L={L}: measured (max over x)")
    ax_a.set(yscale="log", xlabel="η", ylabel="‖Δf‖/‖f‖",
             title="(a) exact case ΔW_l = ηW_l, leaky relu, no biases\nthick: (1+η)^L − 1, dashed: measured")
    for res in opnorm:
        c = net_colour(res["net"])
        eta = _arr(res["eta"])
        ratio = _positive(res["bounds"]["operator_norm"]["max_over_examples_of_measured_over_bound"])
        ax_b.plot(eta, ratio, color=c, label=f"L={res['net']['depth']}")
    ax_b.axhline(1.0, color="k", lw=0.8)
    ax_b.set(yscale="log", xlabel="η", ylabel="max_x ‖Δf(x)‖ / bound",
             title="(b) operator-norm bound (a theorem), random direction")
    for ax in (ax_a, ax_b):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return fig


def save(fig, stem: Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf``; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=130)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths
