"""Views of ``trust reviewers``: the CLI summary, the reviewers' figure and one report row per question
(docs/theory.md §7)."""

from __future__ import annotations

import numpy as np

from trust.base.schema import Spread
from trust.experiments.reviewers import (
    CLIP_VARIANTS,
    LNS_RANGE,
    LR_GRID_OPTIMIZERS,
    MADAM_VARIANTS,
    SPEED_TARGET,
    Answers,
    ReviewersResult,
)
from trust.views import plots, report
from trust.views.report import Row


def _answers(result: ReviewersResult) -> Answers:
    assert result.answers is not None, "a derived result"
    return result.answers


def _spread(s: Spread, fmt: str = ".3g") -> str:
    """``median [min, max]`` over seeds, only the median when one seed gave it."""
    return report.spread(s, fmt=fmt, bare_single=True)


def _seeds(result: ReviewersResult) -> str:
    c = result.config
    epochs = report.count(c.epochs, "epoch")
    return f"{report.count(c.seeds, 'seed')}, depth {c.depth} width {c.width}, {epochs} on {c.dataset}"


def _band(ax, result: ReviewersResult, key: str, colour, label, log=False, ls="-"):
    """A stored band: the median per epoch with the seeds' range."""
    band = _answers(result).bands.get(key)
    if band is None:
        return
    ax.plot(band.epoch, band.spread.median, color=colour, label=label, ls=ls)
    ax.fill_between(band.epoch, band.spread.low, band.spread.high, color=colour, alpha=0.2)
    if log:
        ax.set_yscale("log")


COLOURS = plots.OPTIMIZER_COLOURS


def _norm_panel(ax, result: ReviewersResult) -> None:
    """Weight norms: Fromage's equilibrium against LARS's growth, with the orthogonal-step prediction."""
    for lr, style in ((0.01, ":"), (0.1, "-")):
        for opt in ("fromage", "lars"):
            _band(ax, result, f"lars {opt} {lr:g} norm", COLOURS[opt], f"{opt} η={lr:g}", ls=style)
        if result.select("lars", optimizer="lars", lr=lr):
            growth = _answers(result).growth[f"{lr:g}"]
            ax.plot(growth.x, growth.y, "k" + style, lw=0.8, label=f"∏√(1+η_t²), η={lr:g}")
    ax.set(xlabel="epoch", ylabel="‖W_l(t)‖/‖W_l(0)‖ (mean over layers)", title="§6.6 weight-norm growth")


def _gradient_panel(ax, result: ReviewersResult) -> None:
    for opt in ("fromage", "lars", "madam"):
        _band(ax, result, f"fixed_point {opt} gradient", COLOURS[opt], opt, log=True)
    ax.set(xlabel="epoch", ylabel="‖∇ℒ‖ (full training set)", title="§6.1 is the end stationary?")


def _clip_panel(ax, result: ReviewersResult) -> None:
    for n, p in enumerate((1.0, 2.0, 3.0)):
        _band(ax, result, f"clip {p:g} fraction", f"C{n}", f"p_scale {p:g}")
    ax.set(xlabel="epoch", ylabel="weights at σ* (%)", title="§6.7 Madam's clip")


def _lr_panel(ax, result: ReviewersResult) -> None:
    # the error itself, not each optimiser's error over its own best (which made a failing optimiser look robust);
    # the robustness band of each (within ×2 of its best) dotted in its colour
    for opt, grid in _answers(result).lr_grids.items():
        ax.plot(grid.lrs / grid.default, grid.relative * grid.best_error, "o-", color=COLOURS[opt],
                label=f"{opt} (best {grid.best_error:.2g})")  # fmt: skip
        ax.axhline(2.0 * grid.best_error, color=COLOURS[opt], lw=0.8, ls=":")
    ax.plot([], [], color="k", lw=0.8, ls=":", label="twice each one's best")
    ax.set(xscale="log", yscale="log", xlabel="learning rate / the optimiser's default",
           ylabel="final test error", title="§6.8 learning-rate robustness")  # fmt: skip
    ax.set_ylim(top=1.0)  # an error is at most 1: a band past it means every rate is "within ×2"


def _bits_panel(ax, result: ReviewersResult) -> None:
    a = _answers(result)
    bits = a.series["low_precision bits"]
    ax.plot(bits.x, bits.y, "o-", color=COLOURS["madam_lns"], label=f"madam_lns, (2^B − 1)·base = {LNS_RANGE:.4g}")
    float32 = a.finals.get("fixed_point madam accuracy")
    if float32 is not None and np.isfinite(float32.median):
        ax.axhline(float32.median, color=COLOURS["madam"], ls=":", label="madam in float32")
    ax.set(xlabel="bits B", ylabel="final test accuracy (%)", title="§6.9 accuracy against bits")


def _base_panel(ax, result: ReviewersResult) -> None:
    base = _answers(result).series["low_precision base"]
    ax.plot(base.x, base.y, "o-", color=COLOURS["madam_lns"], label="8 bits")
    ax.set(xscale="log", xlabel="base precision (log-step of a weight)", ylabel="final test accuracy (%)",
           title="§6.9 accuracy against base precision")  # fmt: skip


def _lemma2_panel(ax, result: ReviewersResult) -> None:
    series = _answers(result).series
    for label, key, style in (
        ("Lemma 2: η = 2^(1/L) − 1", "lemma2 lemma", "o-"),
        ("fixed η = 0.01", "lemma2 fixed", "s--"),
    ):
        ax.plot(series[key].x, series[key].y, style, label=label)
    plots.depth_axis(ax, result.config.depths)
    ax.set(xlabel="depth L", ylabel="final training accuracy (%)", title="§6.5 Lemma 2's rate against 0.01")


def _bias_panel(ax, result: ReviewersResult) -> None:
    series = _answers(result).series
    labels = ["biases at 0", "biases ~ N(0, 0.01²)"]
    ax.boxplot([series["biases zero"].y, series["biases normal"].y], tick_labels=labels)
    ax.set(ylabel="final test accuracy (%)", title="§6.8 Madam with zero-initialised biases")


def _lars_wd_panel(ax, result: ReviewersResult) -> None:
    for lr, style in ((0.01, ":"), (0.1, "-")):
        _band(ax, result, f"lars_wd fromage {lr:g} norm", COLOURS["fromage"], f"fromage η={lr:g}", ls=style)
        _band(ax, result, f"lars_wd lars {lr:g} norm", COLOURS["lars"], f"LARS, weight decay η/2, η={lr:g}", ls=style)
    ax.set(xlabel="epoch", ylabel="‖W_l(t)‖/‖W_l(0)‖ (mean over layers)", title="§6.6 LARS with weight decay")


def _finals_panel(ax, result: ReviewersResult, keys: dict[str, str], ylabel: str, title: str, colours) -> None:
    """Median and the seeds' range of stored finals, one label a point (``keys``: label → finals key), each point
    in its optimiser's colour (``colours``, one a key)."""
    finals = _answers(result).finals
    for n, (key, colour) in enumerate(zip(keys.values(), colours)):
        s = finals[key]
        ax.errorbar([n], [s.median], yerr=[[s.median - s.low], [s.high - s.median]], fmt="o", capsize=3,
                    color=colour)  # fmt: skip
    ax.set_xticks(range(len(keys)), list(keys), rotation=30, ha="right", fontsize=7)
    ax.set(ylabel=ylabel, title=title)


def _madam_panel(ax, result: ReviewersResult) -> None:
    keys = {k: f"madam_regularisers {k} accuracy" for k in MADAM_VARIANTS}
    _finals_panel(ax, result, keys, "final test accuracy (%), median and range", "§6.7 Madam: clip or weight decay",
                  [COLOURS["madam"]] * len(keys))  # fmt: skip


def _grad_clip_panel(ax, result: ReviewersResult) -> None:
    depths = result.config.clip_depths()
    keys = {f"L={d}: {k}": f"grad_clip {d} {k} accuracy" for d in depths for k in CLIP_VARIANTS}
    colours = [COLOURS[optimizer] for _ in depths for optimizer, _, _ in CLIP_VARIANTS.values()]
    _finals_panel(ax, result, keys, "final test accuracy (%), median and range", "§6.10 gradient clipping vs Fromage",
                  colours)  # fmt: skip


# question → its panels, in the figure's order
PANELS = {
    "lars": (_norm_panel,),
    "lars_wd": (_lars_wd_panel,),
    "madam_regularisers": (_madam_panel,),
    "grad_clip": (_grad_clip_panel,),
    "fixed_point": (_gradient_panel,),
    "clip": (_clip_panel,),
    "lr_grid": (_lr_panel,),
    "low_precision": (_bits_panel, _base_panel),
    "lemma2": (_lemma2_panel,),
    "biases": (_bias_panel,),
}


def reviewers_figure(result: ReviewersResult):
    """One panel per question asked (two for low precision), bands: the seeds' range around the median."""
    draw = [panel for q in PANELS if q in result.config.questions for panel in PANELS[q]]
    cols = min(4, len(draw))
    rows = -(-len(draw) // cols)
    fig, axes = plots.subplots(rows, cols, (4.5 * cols, 4 * rows))
    for n, (ax, panel) in enumerate(zip(axes.ravel(), draw)):
        panel(ax, result)
        ax.set_title(f"({chr(97 + n)}) {ax.get_title()}", fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for ax in axes.ravel()[len(draw) :]:
        ax.set_axis_off()
    fig.suptitle(f"Reviewers' questions — {_seeds(result)}", fontsize=10)
    return fig


def _fixed_point(result: ReviewersResult) -> tuple[str, str, str]:
    a, parts, verdicts = _answers(result), [], []
    for opt in ("fromage", "lars", "madam"):
        g, dl, norm = (a.finals[f"fixed_point {opt} {q}"] for q in ("gradient", "loss_change", "norm"))
        parts.append(
            f"{opt}: ‖∇ℒ‖ end/peak {_spread(g)}, last epoch's loss change {_spread(dl)}, ‖W‖ end/init {_spread(norm)}"
        )
        verdicts.append(f"{opt} {a.verdicts[f'fixed_point {opt}'].outcome}")
    return "Reviewer §6.1: is the end of training a stationary point?", "; ".join(parts), ", ".join(verdicts)


def _lars(result: ReviewersResult) -> tuple[str, str, str]:
    a, parts, separated = _answers(result), [], []
    for lr in (0.01, 0.1):
        f, g = (a.finals[f"lars {o} {lr:g} norm"] for o in ("fromage", "lars"))
        pred = a.growth[f"{lr:g}"].y[-1]
        parts.append(f"η={lr:g}: Fromage ‖W‖ end/init {_spread(f)}, LARS {_spread(g)} (orthogonal steps: {pred:.3g})")
        separated.append(f"η={lr:g}: " + report.compare_text(a.verdicts[f"lars {lr:g}"], no="Fromage grows more"))
    verdict = "LARS grows more than Fromage (rule compare) — " + "; ".join(separated)
    return "Paper (§6.6): without the 1/√(1+η²) factor the weight norm grows", "; ".join(parts), verdict


def _clip(result: ReviewersResult) -> tuple[str, str, str]:
    a, parts = _answers(result), []
    for p in (1.0, 2.0, 3.0):
        at_clip, accuracy = (
            _spread(a.finals[f"clip {p:g} fraction"], ".2f"),
            _spread(a.finals[f"clip {p:g} accuracy"], ".1f"),
        )
        parts.append(f"p_scale {p:g}: {at_clip} % at σ*, test acc {accuracy} %")
    v = a.verdicts["clip"]
    verdict = f"p_scale 3 (the default) leaves {v.statistic:.2f} % at the clip; best accuracy at p_scale {v.effect:g}"
    return "Reviewer §6.7: Madam's clip σ* at the end of training", "; ".join(parts), verdict


def _lr_grid(result: ReviewersResult) -> tuple[str, str, str]:
    a = _answers(result)
    claim = (
        f"Reviewer §6.8: learning-rate robustness — decades of rates with test error within 2× each optimiser's "
        f"best, {result.config.lr_points} rates from default/100 to default·10"
    )
    parts = ", ".join(
        f"{o} {g.decades:.1f} decades (its best test error {100 * g.best_error:.1f} %)" for o, g in a.lr_grids.items()
    )
    v = a.verdicts["lr_grid"]
    verdict = f"widest of those reaching ≤ 10 % error: {v.outcome}" if v.outcome != "none" else "none reaches 10 %"
    if "lr_grid order" in a.verdicts:
        second = LR_GRID_OPTIMIZERS[int(a.finals["lr_grid second"].median)]
        verdict += f"; against {second}, seed by seed (rule compare): " + report.compare_text(
            a.verdicts["lr_grid order"], yes="wider", no=f"{second} wider"
        )
    return claim, parts, verdict


def _biases(result: ReviewersResult) -> tuple[str, str, str]:
    a = _answers(result)
    zero, normal = _spread(a.finals["biases zero"], ".1f"), _spread(a.finals["biases normal"], ".1f")
    text = f"test acc with biases at 0: {zero} %; biases N(0, 0.01²): {normal} %"
    return (
        "Reviewer §6.8: Madam with zero-initialised biases (never moved)",
        text,
        f"zero biases cost {a.verdicts['biases'].effect:.1f} points",
    )


def _low_precision(result: ReviewersResult) -> tuple[str, str, str]:
    c, a = result.config, _answers(result)
    text = "; ".join(f"{b} bits {_spread(a.finals[f'low_precision bits {b}'], '.1f')} %" for b in c.bits)
    text += " · at 8 bits: " + "; ".join(
        f"base {b:g} {_spread(a.finals[f'low_precision base {b:g}'], '.1f')} %" for b in c.base_lrs
    )
    held = f"(2^B − 1)·base = {LNS_RANGE:.4g}"
    claim = f"Reviewer §6.9: low-precision Madam, test accuracy against bits ({held}) and base precision"
    return claim, text, f"within 1 point of {max(c.bits)} bits from {int(a.verdicts['low_precision'].effect)} bits"


def _lemma2(result: ReviewersResult) -> tuple[str, str, str]:
    a, parts, better = _answers(result), [], []
    rates = a.series["lemma2 rate"]
    for d, rate in zip(rates.x, rates.y):
        lemma, fixed = _spread(a.finals[f"lemma2 {d} lemma"], ".1f"), _spread(a.finals[f"lemma2 {d} fixed"], ".1f")
        parts.append(f"L={d}: η={rate:.3f} → {lemma} % vs 0.01 → {fixed} %")
        better.append(f"L={d}: " + report.compare_text(a.verdicts[f"lemma2 {d}"], no="0.01 better"))
    claim = "Reviewer §6.5: Fromage at Lemma 2's rate 2^(1/L) − 1 against 0.01, final training accuracy"
    verdict = "Lemma 2's rate trains better (rule compare, paired seeds) — " + "; ".join(better)
    return claim, "; ".join(parts), verdict


def _lars_wd(result: ReviewersResult) -> tuple[str, str, str]:
    a, parts, verdicts = _answers(result), [], []
    for lr in (0.01, 0.1):
        f = {q: _spread(a.finals[f"lars_wd fromage {lr:g} {q}"]) for q in ("norm", "accuracy")}
        w = {q: _spread(a.finals[f"lars_wd lars {lr:g} {q}"]) for q in ("norm", "accuracy")}
        parts.append(f"η={lr:g}: ‖W‖ end/init Fromage {f['norm']}, LARS+wd {w['norm']}; test acc Fromage "
                     f"{f['accuracy']} %, LARS+wd {w['accuracy']} %")  # fmt: skip
        for q in ("norm", "accuracy"):
            v = a.verdicts[f"lars_wd {lr:g} {q}"]
            verdicts.append(f"η={lr:g} {q}: " + report.compare_text(v, no="Fromage above"))
    claim = "Reviewer §6.6: Fromage is LARS with weight decay — LARS with decoupled weight decay η/2 against Fromage"
    verdict = "LARS+wd above Fromage (rule compare, paired seeds; ratio and interval) — " + "; ".join(verdicts)
    return claim, "; ".join(parts), verdict


def _madam_regularisers(result: ReviewersResult) -> tuple[str, str, str]:
    a, parts, verdicts = _answers(result), [], []
    for key in MADAM_VARIANTS:
        f = {q: a.finals[f"madam_regularisers {key} {q}"] for q in ("accuracy", "loss", "norm", "diverged")}
        diverged = int(f["diverged"].median)
        parts.append(f"{key}: test acc {_spread(f['accuracy'], '.1f')} %, train loss {_spread(f['loss'])}, "
                     f"‖W‖ end/init {_spread(f['norm'])}" + (f", {diverged} diverged" if diverged else ""))  # fmt: skip
        if key != "clip":
            verdicts.append(f"{key}: " + report.compare_text(a.verdicts[f"madam_regularisers {key}"],
                                                             no="the clip above"))  # fmt: skip
    claim = "Reviewer §6.7: Madam without its clip σ*, and with weight decay instead, against the clip (p_scale 3)"
    verdict = "test accuracy above the clip's (rule compare, paired seeds) — " + "; ".join(verdicts)
    return claim, "; ".join(parts), verdict


def _speed(result: ReviewersResult) -> tuple[str, str, str]:
    a, parts = _answers(result), []
    for opt in LR_GRID_OPTIMIZERS:
        epochs, never = a.finals[f"speed {opt} epochs"], int(a.finals[f"speed {opt} never"].median)
        rate = a.finals[f"speed {opt} rate"].median
        parts.append(f"{opt} (η={rate:.3g}): {_spread(epochs, '.0f')} epochs" + (f", {never} never" if never else ""))
    order = [LR_GRID_OPTIMIZERS[int(i)] for i in a.finals["speed order"].median]
    claim = (f"Reviewer §6.8: convergence speed — epochs to {100 * SPEED_TARGET:.0f} % test accuracy at each "
             f"optimiser's best rate of the grid (resolution one epoch)")  # fmt: skip
    if a.verdicts["speed"].rule != "compare":
        return claim, "; ".join(parts), a.verdicts["speed"].outcome + " in the run"
    verdict = f"{order[0]} faster than {order[1]} (rule compare): " + report.compare_text(
        a.verdicts["speed"], no=f"{order[1]} faster"
    )
    return claim, "; ".join(parts), verdict


def _grad_clip(result: ReviewersResult) -> tuple[str, str, str]:
    a, parts, verdicts = _answers(result), [], []
    for d in result.config.clip_depths():
        g = a.finals[f"grad_clip {d} sgd gradient"]
        acc = ", ".join(f"{k} {_spread(a.finals[f'grad_clip {d} {k} accuracy'], '.1f')} %" for k in CLIP_VARIANTS)
        parts.append(f"L={d}: {acc}; SGD's full-batch ‖∇ℒ‖ at init {_spread(g)}")
        best = list(CLIP_VARIANTS)[int(a.finals[f"grad_clip {d} best sgd"].median)]
        verdicts.append(f"L={d} vs {best}: " + report.compare_text(a.verdicts[f"grad_clip {d}"], no=f"{best} above"))
    claim = ("Reviewer §6.10: gradient clipping (a global-norm cap on SGD's step) against Fromage's relative step, "
             "final test accuracy")  # fmt: skip
    verdict = "Fromage above the best SGD variant (rule compare, paired seeds) — " + "; ".join(verdicts)
    return claim, "; ".join(parts), verdict


ROWS = {"fixed_point": _fixed_point, "lars": _lars, "clip": _clip, "lr_grid": _lr_grid, "biases": _biases,
        "low_precision": _low_precision, "lemma2": _lemma2, "lars_wd": _lars_wd,
        "madam_regularisers": _madam_regularisers, "speed": _speed, "grad_clip": _grad_clip}  # fmt: skip


def result_rows(result: ReviewersResult) -> list[Row]:
    """One row per question asked: claim (with the seeds, net and command), measurement, verdict."""
    rows = []
    for question in result.config.questions:
        claim, measurement, verdict = ROWS[question](result)
        where = f"{_seeds(result)} (`trust reviewers --questions {question}`)"
        kind = "claim" if question in ("lars", "lars_wd") else "measurement"
        verdicts = tuple(v for k, v in _answers(result).verdicts.items() if k.split(" ", 1)[0] == question)
        rows.append(Row(f"{claim} — {where}", kind, measurement, verdict, verdicts))
    return rows


def summary(result: ReviewersResult) -> str:
    return "\n".join(f"{r.claim}: {r.measurement} → {r.verdict}" for r in result_rows(result))


def figures(results: dict[str, ReviewersResult]) -> dict:
    """One figure per run, named after the run."""
    return {name: reviewers_figure(r) for name, r in results.items()}


def rows(results: dict[str, ReviewersResult]) -> list[Row]:
    return [row for r in results.values() for row in result_rows(r)]
