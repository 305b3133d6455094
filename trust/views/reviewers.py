"""Views of ``trust reviewers``: the CLI summary, the reviewers' figure and one report row per question
(docs/theory.md §7)."""

from __future__ import annotations

import numpy as np

from trust.core import train
from trust.experiments.reviewers import (
    LNS_RANGE,
    LR_GRID_OPTIMIZERS,
    ReviewersResult,
    RunCurves,
    _accuracies,
    _med,
    lemma2_rate,
    orthogonal_growth,
    relative_errors,
    robust_decades,
)
from trust.views import plots, report
from trust.views.report import Row


def _spread(values, fmt: str = ".3g") -> str:
    """``median [min, max]`` over seeds (only the median when there is one value)."""
    v = np.asarray(values, dtype=float)
    if v.size == 1:
        return f"{v[0]:{fmt}}"
    return f"{np.median(v):{fmt}} [{v.min():{fmt}}, {v.max():{fmt}}]"


def _seeds(result: ReviewersResult) -> str:
    c = result.config
    return f"{report.count(c.seeds, 'seed')}, depth {c.depth} width {c.width}, {c.epochs} epochs on {c.dataset}"


def _band(ax, runs: list[RunCurves], y, colour, label, log=False, ls="-"):
    """Median over the runs of ``y(run)`` per epoch with the runs' range as a band."""
    finished = [r for r in runs if not r.diverged_epoch]
    if not finished:
        return
    values = np.array([y(r) for r in finished])
    epochs = finished[0].epoch
    ax.plot(epochs, np.median(values, axis=0), color=colour, label=label, ls=ls)
    ax.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=colour, alpha=0.2)
    if log:
        ax.set_yscale("log")


COLOURS = plots.OPTIMIZER_COLOURS


def _norm_panel(ax, result: ReviewersResult) -> None:
    """Weight norms: Fromage's equilibrium against LARS's growth, with the orthogonal-step prediction."""
    for lr, style in ((0.01, ":"), (0.1, "-")):
        for opt in ("fromage", "lars"):
            runs = result.select("lars", optimizer=opt, lr=lr)
            _band(ax, runs, lambda r: r.norm_ratio.mean(axis=1), COLOURS[opt], f"{opt} η={lr:g}", ls=style)
        lars = result.select("lars", optimizer="lars", lr=lr)
        if lars:
            ax.plot(orthogonal_growth(lars[0]), "k" + style, lw=0.8, label=f"∏√(1+η_t²), η={lr:g}")
    ax.set(xlabel="epoch", ylabel="‖W_l(t)‖/‖W_l(0)‖ (mean over layers)", title="§6.6 weight-norm growth")


def _gradient_panel(ax, result: ReviewersResult) -> None:
    for opt in ("fromage", "lars", "madam"):
        _band(ax, result.select("fixed_point", optimizer=opt), lambda r: r.grad_norm, COLOURS[opt], opt, log=True)
    ax.set(xlabel="epoch", ylabel="‖∇ℒ‖ (full training set)", title="§6.1 is the end stationary?")


def _clip_panel(ax, result: ReviewersResult) -> None:
    for n, p in enumerate((1.0, 2.0, 3.0)):
        _band(ax, result.select("clip", p_scale=p), lambda r: 100 * r.clip_fraction, f"C{n}", f"p_scale {p:g}")
    ax.set(xlabel="epoch", ylabel="weights at σ* (%)", title="§6.7 Madam's clip")


def _lr_panel(ax, result: ReviewersResult) -> None:
    for opt in LR_GRID_OPTIMIZERS:
        lrs, rel = relative_errors(result, opt)
        ax.plot(lrs / train.OPTIMIZERS[opt].default_lr, rel, "o-", color=COLOURS[opt], label=opt)
    ax.axhline(2.0, color="k", lw=0.8, ls=":", label="twice the best")
    ax.set(xscale="log", yscale="log", xlabel="learning rate / the optimiser's default",
           ylabel="final test error / the best on the grid", title="§6.8 learning-rate robustness")  # fmt: skip


def _bits_panel(ax, result: ReviewersResult) -> None:
    c = result.config
    by_bits = [_med(_accuracies(result.select("low_precision", bits=b, base_lr=LNS_RANGE / 2**b))) for b in c.bits]
    ax.plot(c.bits, by_bits, "o-", color=COLOURS["madam_lns"], label=f"madam_lns, 2^B·base = {LNS_RANGE}")
    madam = _accuracies(result.select("fixed_point", optimizer="madam"))
    if madam:
        ax.axhline(_med(madam), color=COLOURS["madam"], ls=":", label="madam in float32")
    ax.set(xlabel="bits B", ylabel="final test accuracy (%)", title="§6.9 accuracy against bits")


def _base_panel(ax, result: ReviewersResult) -> None:
    c = result.config
    by_base = [_med(_accuracies(result.select("low_precision", bits=8, base_lr=b))) for b in c.base_lrs]
    ax.plot(c.base_lrs, by_base, "o-", color=COLOURS["madam_lns"], label="8 bits")
    ax.set(xscale="log", xlabel="base precision (log-step of a weight)", ylabel="final test accuracy (%)",
           title="§6.9 accuracy against base precision")  # fmt: skip


def _lemma2_panel(ax, result: ReviewersResult) -> None:
    depths = result.config.depths
    for label, rate, style in (
        ("Lemma 2: η = 2^(1/L) − 1", lemma2_rate, "o-"),
        ("fixed η = 0.01", lambda d: 0.01, "s--"),
    ):
        accs = [_med([100 * r.final_train_acc for r in result.select("lemma2", depth=d, lr=rate(d))]) for d in depths]
        ax.plot(depths, accs, style, label=label)
    plots.depth_axis(ax, depths)
    ax.set(xlabel="depth L", ylabel="final training accuracy (%)", title="§6.5 Lemma 2's rate against 0.01")


def _bias_panel(ax, result: ReviewersResult) -> None:
    values = [_accuracies(result.select("biases", zero_biases=z)) for z in (True, False)]
    ax.boxplot(values, tick_labels=["biases at 0", "biases ~ N(0, 0.01²)"])
    ax.set(ylabel="final test accuracy (%)", title="§6.8 Madam with zero-initialised biases")


# question → its panels, in the figure's order
PANELS = {
    "lars": (_norm_panel,),
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
    parts, verdicts = [], []
    for opt in ("fromage", "lars", "madam"):
        runs = [r for r in result.select("fixed_point", optimizer=opt) if not r.diverged_epoch]
        g = [r.grad_norm[-1] / r.grad_norm.max() for r in runs]
        dl = [abs(r.train_loss[-1] - r.train_loss[-2]) / r.train_loss[-2] for r in runs]
        norm = [r.norm_ratio[-1].mean() for r in runs]
        parts.append(
            f"{opt}: ‖∇ℒ‖ end/peak {_spread(g)}, last epoch's loss change {_spread(dl)}, ‖W‖ end/init {_spread(norm)}"
        )
        # near-stationary: the gradient fell below a tenth of its peak and the loss moved < 5 % in the last epoch
        verdicts.append(f"{opt} {'near-stationary' if max(g) < 0.1 and max(dl) < 0.05 else 'not stationary'}")
    return "Reviewer §6.1: is the end of training a stationary point?", "; ".join(parts), ", ".join(verdicts)


def _lars(result: ReviewersResult) -> tuple[str, str, str]:
    parts, separated = [], []
    for lr in (0.01, 0.1):
        fromage, lars = ([r for r in result.select("lars", optimizer=o, lr=lr) if not r.diverged_epoch]
                         for o in ("fromage", "lars"))  # fmt: skip
        f, g = ([r.norm_ratio[-1].mean() for r in runs] for runs in (fromage, lars))
        pred = orthogonal_growth(lars[0])[-1] if lars else float("nan")
        parts.append(f"η={lr:g}: Fromage ‖W‖ end/init {_spread(f)}, LARS {_spread(g)} (orthogonal steps: {pred:.3g})")
        if f and g and min(g) > max(f):
            separated.append(f"η={lr:g}")
    verdict = f"LARS grows more than Fromage in every seed at {', '.join(separated) or 'no η'}"
    return "Paper (§6.6): without the 1/√(1+η²) factor the weight norm grows", "; ".join(parts), verdict


def _clip(result: ReviewersResult) -> tuple[str, str, str]:
    parts = []
    for p in (1.0, 2.0, 3.0):
        runs = result.select("clip", p_scale=p)
        at_clip = _spread([100 * r.clip_fraction[-1] for r in runs], ".2f")
        parts.append(f"p_scale {p:g}: {at_clip} % at σ*, test acc {_spread(_accuracies(runs), '.1f')} %")
    at_default = _med([100 * r.clip_fraction[-1] for r in result.select("clip", p_scale=3.0)])
    best = max((1.0, 2.0, 3.0), key=lambda p: _med(_accuracies(result.select("clip", p_scale=p))))
    verdict = f"p_scale 3 (the default) leaves {at_default:.2f} % at the clip; best accuracy at p_scale {best:g}"
    return "Reviewer §6.7: Madam's clip σ* at the end of training", "; ".join(parts), verdict


def _lr_grid(result: ReviewersResult) -> tuple[str, str, str]:
    widths, best = {}, {}
    for opt in LR_GRID_OPTIMIZERS:
        lrs, rel = relative_errors(result, opt)
        widths[opt] = robust_decades(lrs, rel)
        best[opt] = min(_med([r.final_test_error for r in result.select("lr_grid", optimizer=opt, lr=float(lr))])
                        for lr in lrs)  # fmt: skip
    claim = (
        f"Reviewer §6.8: learning-rate robustness — decades of rates with test error within 2× each optimiser's "
        f"best, {result.config.lr_points} rates from default/100 to default·10"
    )
    parts = ", ".join(f"{o} {widths[o]:.1f} decades (its best test error {100 * best[o]:.1f} %)" for o in widths)
    # robustness around a poor best is no robustness: rank only the optimisers whose best error is ≤ 10 %
    good = {o: w for o, w in widths.items() if best[o] <= 0.1}
    verdict = (
        f"widest of those reaching ≤ 10 % error: {max(good, key=good.__getitem__)}" if good else "none reaches 10 %"
    )
    return claim, parts, verdict


def _biases(result: ReviewersResult) -> tuple[str, str, str]:
    zero, normal = (_accuracies(result.select("biases", zero_biases=z)) for z in (True, False))
    text = f"test acc with biases at 0: {_spread(zero, '.1f')} %; biases N(0, 0.01²): {_spread(normal, '.1f')} %"
    cost = _med(normal) - _med(zero)
    return (
        "Reviewer §6.8: Madam with zero-initialised biases (never moved)",
        text,
        f"zero biases cost {cost:.1f} points",
    )


def _low_precision(result: ReviewersResult) -> tuple[str, str, str]:
    c = result.config
    by_bits = {b: _accuracies(result.select("low_precision", bits=b, base_lr=LNS_RANGE / 2**b)) for b in c.bits}
    by_base = {b: _accuracies(result.select("low_precision", bits=8, base_lr=b)) for b in c.base_lrs}
    text = "; ".join(f"{b} bits {_spread(a, '.1f')} %" for b, a in by_bits.items())
    text += " · at 8 bits: " + "; ".join(f"base {b:g} {_spread(a, '.1f')} %" for b, a in by_base.items())
    top = _med(by_bits[max(c.bits)])
    enough = min(b for b, a in by_bits.items() if _med(a) >= top - 1)
    claim = (
        f"Reviewer §6.9: low-precision Madam, test accuracy against bits (2^B·base = {LNS_RANGE}) and base precision"
    )
    return claim, text, f"within 1 point of {max(c.bits)} bits from {enough} bits"


def _lemma2(result: ReviewersResult) -> tuple[str, str, str]:
    parts, better = [], []
    for d in result.config.depths:
        lemma, fixed = ([100 * r.final_train_acc for r in result.select("lemma2", depth=d, lr=lr)]
                        for lr in (lemma2_rate(d), 0.01))  # fmt: skip
        parts.append(f"L={d}: η={lemma2_rate(d):.3f} → {_spread(lemma, '.1f')} % vs 0.01 → {_spread(fixed, '.1f')} %")
        if _med(lemma) > _med(fixed):
            better.append(str(d))
    claim = "Reviewer §6.5: Fromage at Lemma 2's rate 2^(1/L) − 1 against 0.01, final training accuracy"
    verdict = (
        f"Lemma 2's rate trains better at L = {', '.join(better)}" if better else "0.01 trains better at every depth"
    )
    return claim, "; ".join(parts), verdict


ROWS = {"fixed_point": _fixed_point, "lars": _lars, "clip": _clip, "lr_grid": _lr_grid, "biases": _biases,
        "low_precision": _low_precision, "lemma2": _lemma2}  # fmt: skip


def result_rows(result: ReviewersResult) -> list[Row]:
    """One row per question asked: claim (with the seeds, net and command), measurement, verdict."""
    rows = []
    for question in result.config.questions:
        claim, measurement, verdict = ROWS[question](result)
        where = f"{_seeds(result)} (`trust reviewers --questions {question}`)"
        rows.append(Row(f"{claim} — {where}", "claim" if question == "lars" else "measurement", measurement, verdict))
    return rows


def summary(result: ReviewersResult) -> str:
    return "\n".join(f"{r.claim}: {r.measurement} → {r.verdict}" for r in result_rows(result))


def figures(results: dict[str, ReviewersResult]) -> dict:
    """One figure per run, named after the run."""
    return {name: reviewers_figure(r) for name, r in results.items()}


def rows(results: dict[str, ReviewersResult]) -> list[Row]:
    return [row for r in results.values() for row in result_rows(r)]
