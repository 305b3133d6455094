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


def _epoch_style(epochs) -> dict:
    """One line style per training epoch (solid: initialisation)."""
    styles = ["-", "--", ":", "-."]
    return {e: styles[i % len(styles)] for i, e in enumerate(sorted(set(epochs)))}


def theorem1_figure(results: dict, arrays: dict):
    """Theorem 1 checked (:mod:`trust.experiments.theorem1`): the distribution of measured/bound over every
    case and input for the three forms of the bound (a theorem: all mass left of 1), and for the DRT
    assumption (constant 1: mass right of 1 are violations)."""
    fig, ax = plt.subplots(figsize=(8, 4.2), constrained_layout=True)
    labels = {"recursion": "induction step iterated", "per_layer": "∏ c_l · DRT (per layer)",
              "global": "(κ²β/α)^L · DRT", "drt": "DRT, constant 1 (assumption)"}
    logs = {k: np.log10(np.asarray(arrays[f"ratio_{k}"], dtype=float)) for k in labels}
    lo = max(-40.0, min(float(v.min()) for v in logs.values()))
    bins = np.linspace(lo, max(1.0, max(float(v.max()) for v in logs.values())), 90)
    for k, label in labels.items():
        b = results["bounds"][k]
        ax.hist(np.clip(logs[k], lo, None), bins=bins, histtype="step", lw=1.6,
                label=f"{label}: median {b['ratio_quantiles']['median']:.1e}, violations {b['violations']}")
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set(xlabel="log10(measured ‖Δf‖/‖f‖ ÷ bound)", ylabel="inputs",
           title=f"Theorem 1 on {results['n_cases']} random square leaky-relu nets "
                 f"({results['n_evaluations']} inputs)")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def constants_figure(results: dict):
    """The constants across depth (:mod:`trust.experiments.constants`): (a) C_eff for the function and
    the gradients, (b) log10 of the Theorem-1 constant's per-layer forms beside log10 C_eff, (c) C_eff of
    each layer's gradient at the deepest net, (d) the measured transmission α_l, β_l there."""
    rows = results["rows"]
    style = _epoch_style([r["epoch"] for r in rows])
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2), constrained_layout=True)
    for epoch, ls in style.items():
        sel = sorted((r for r in rows if r["epoch"] == epoch), key=lambda r: r["depth"])
        depth = [r["depth"] for r in sel]
        tag = "init" if epoch == 0 else f"epoch {epoch:g}"
        for key, c, name in (("C_eff_gradient", "tab:red", "gradient, worst layer"),
                             ("C_eff_gradient_first", "tab:orange", "gradient, layer 1"),
                             ("C_eff_function", "tab:blue", "function (batch)")):
            axes[0].plot(depth, _arr([r[key] for r in sel]), color=c, ls=ls, marker="o", label=f"{name}, {tag}")
        axes[1].plot(depth, _arr([r["log10_C_layers_op"] for r in sel]), color="tab:purple", ls=ls, marker="s",
                     label=f"∏ κ(W_l)max(1, ρ_l)β/α_l, {tag}")
        axes[1].plot(depth, np.log10(_arr([r["C_eff_function"] for r in sel])), color="tab:blue", ls=ls, marker="o",
                     label=f"C_eff function, {tag}")
        deepest = sel[-1]
        layers = np.arange(1, deepest["depth"] + 1)
        axes[2].plot(layers, _arr(deepest["layers"]["c_eff_gradient"]), color="tab:red", ls=ls, marker=".",
                     label=f"L={deepest['depth']}, {tag}")
        axes[3].plot(layers, _arr(deepest["layers"]["alpha"]), color="tab:green", ls=ls, marker=".", label=f"α_l, {tag}")
        axes[3].plot(layers, _arr(deepest["layers"]["beta"]), color="tab:brown", ls=ls, marker=".", label=f"β_l, {tag}")
    depths = sorted({r["depth"] for r in rows})
    for ax in axes[:2]:
        ax.set_xscale("log")
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.set_xticks([], minor=True)
    axes[0].axhline(1.0, color="k", lw=0.8)
    axes[0].set(yscale="log", xlabel="depth L", ylabel="C_eff = max_η measured / DRT",
                title="(a) effective constant")
    axes[1].set(xlabel="depth L", ylabel="log10 constant",
                title="(b) function distance: Theorem-1 form (κ(ΔW) → ρ) vs C_eff")
    axes[2].set(yscale="log", xlabel="layer l", ylabel="C_eff of layer l's gradient", title="(c) per layer, deepest net")
    axes[3].set(xlabel="layer l", ylabel="‖φ(z)‖/‖z‖ (min, max over examples)", title="(d) transmission, deepest net")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    return fig


def descent_figure(results: dict):
    """Largest loss-decreasing η along each step (:mod:`trust.experiments.descent`) across depth, beside
    Lemma 2 (C = 1), Lemma 2 with the measured C_eff, the Lemma-1 certificate and the paper's η = 0.01."""
    steps = sorted({r["step"] for r in results["rows"]}, key=["fromage", "madam"].index)
    fig, axes = plt.subplots(1, len(steps), figsize=(6 * len(steps) + 3.5, 4.6), squeeze=False, constrained_layout=True)
    for ax, step in zip(axes[0], steps):
        rows = [r for r in results["rows"] if r["step"] == step]
        style = _epoch_style([r["epoch"] for r in rows])
        for epoch, ls in style.items():
            sel = sorted((r for r in rows if r["epoch"] == epoch), key=lambda r: r["depth"])
            d = np.array([r["depth"] for r in sel])
            tag = "init" if epoch == 0 else f"epoch {epoch:g}"
            measured = _arr([r["eta_descent"] for r in sel])
            ax.plot(d, _positive(measured), color="tab:blue", ls=ls, marker="o", label=f"measured largest descent η, {tag}")
            cens = np.array([r["censored"] for r in sel])
            ax.plot(d[cens], measured[cens], "^", color="tab:blue", ms=9)
            ax.plot(d, _positive([r["eta_lemma1"] for r in sel]), color="tab:green", ls=ls, marker="x",
                    label=f"Lemma 1 certified (measured gradients), {tag}")
            ax.plot(d, _positive([r["lemma2_C_eff"] for r in sel]), color="tab:red", ls=ls, marker=".",
                    label=f"Lemma 2 with C_eff, {tag}")
            if epoch == min(style):
                ax.plot(d, _positive([r["lemma2"] for r in sel]), color="k", lw=2, label="Lemma 2, C = 1: (1+cos θ)^{1/L} − 1")
        ax.axhline(0.01, color="grey", lw=1, ls="--", label="paper's default η = 0.01")
        ax.set(xscale="log", yscale="log", xlabel="depth L (weight matrices)", ylabel="η (relative step per layer)",
               title=f"{step} step (▲: loss still falling at the grid's end)")
        ax.set_xticks(sorted({r["depth"] for r in rows}), [str(v) for v in sorted({r["depth"] for r in rows})])
        ax.set_xticks([], minor=True)
        ax.grid(alpha=0.3, which="both")
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def cosgamma_figure(results: dict):
    """(a) Monte Carlo cos γ with 95 % intervals against 2/π and 3/4; (b) cos γ through training (mean over
    layers, 95 % interval across seeds; band: layer min–max) against the paper's cos(π/4)."""
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(12, 4.3), constrained_layout=True)
    for (kind, rows), c in zip(results["monte_carlo"].items(), ("tab:blue", "tab:orange")):
        n = _arr([r["size"] for r in rows])
        ax_a.errorbar(n, _arr([r["mean"] for r in rows]), yerr=_arr([r["half_width"] for r in rows]), color=c,
                      marker="o", capsize=3, label=f"{kind}")
        ax_a.axhline(results["limits"][kind], color=c, ls="--", lw=1, label=f"{kind} limit {results['limits'][kind]:.4f}")
    ax_a.set(xscale="log", xlabel="entries n", ylabel="E cos γ (95 % CI)", title="(a) Monte Carlo, iid entries")
    for i, (opt, tr) in enumerate(results["training"].items()):
        c = plt.cm.tab10((i + 4) % 10)
        e = _arr(tr["epochs"])
        ax_b.errorbar(e, _arr([m["mean"] for m in tr["mean"]]), yerr=_arr([m["half_width"] for m in tr["mean"]]),
                      color=c, marker="o", capsize=3, label=f"{opt}: mean over layers, 95 % CI over seeds")
        ax_b.fill_between(e, _arr(tr["layer_min"]), _arr(tr["layer_max"]), color=c, alpha=0.15)
    ax_b.axhline(results["paper"], color="k", lw=1, label="paper: cos(π/4) = 0.707")
    ax_b.axhline(results["limits"]["gaussian"], color="tab:blue", ls="--", lw=1, label="2/π = 0.637")
    ax_b.set_xscale("symlog", linthresh=1.0)
    ax_b.set(xlabel="epoch", ylabel="cos γ_l", title="(b) through training on digits (band: layer range)")
    ax_b.set_xlim(left=0)
    ax_b.set_ylim(top=max(0.75, ax_b.get_ylim()[1]))  # keep the paper's line clear of the frame
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
