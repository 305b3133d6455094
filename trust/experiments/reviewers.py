"""``trust reviewers``: the reviewers' training questions, each answered by real training runs on the digits
(docs/theory.md §6.1, §6.5–§6.9).

* **fixed_point** (§6.1): is the end of training stationary? The full-batch gradient norm and the loss change
  per epoch for Fromage, LARS and Madam, and Fromage's weight-norm equilibrium under its ``1/√(1+η²)`` factor.
* **lars** (§6.6): weight-norm growth without the factor — LARS against Fromage at η = 0.01 and 0.1, beside
  the growth ``∏_t √(1+η_t²)`` an update orthogonal to ``W`` would give.
* **clip** (§6.7): the fraction of weights at Madam's clip σ* = p_scale·RMS(p_init), for p_scale 1, 2, 3.
* **lr_grid** (§6.8): Madam, Fromage, SGD and Adam over a dense learning-rate grid around each one's default;
  test error relative to each one's best, and the width (in decades) of the rates within twice the best.
* **biases** (§6.8): Madam with biases from N(0, 0.01²) against biases at exactly 0, which it never moves.
* **low_precision** (§6.9): low-precision Madam's accuracy against the bits B at a fixed dynamic range
  (``2^B·base_lr`` = 4.096, so ``lr_factor`` scales as ``1/base_lr``), and against the base precision at 8 bits.
* **lemma2** (§6.5): Fromage at Lemma 2's rate for each depth, ``η_L = 2^{1/L} − 1``, against the fixed 0.01.

Every run is a cell of a study (stored and reused on its own); a run that diverges is kept as diverged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from trust.base.errors import Diverged
from trust.base.schema import Config, Result, param, value
from trust.base.tree import weight_indices
from trust.core import train
from trust.experiments.shared.runner import Experiment, Study, run_study
from trust.views import plots, report
from trust.views.report import Row

QUESTIONS = ("fixed_point", "lars", "clip", "lr_grid", "biases", "low_precision", "lemma2")
LR_GRID_OPTIMIZERS = ("madam", "fromage", "sgd", "adam")
LNS_RANGE = 4.096  # 2^B·base_lr: the authors' 12 bits at base 0.001 (e^4.1 ≈ 60 between the smallest and σ*)
DIVERGED = "training diverged (a non-finite loss) before this epoch"
NOT_MADAM = "NaN: the fraction at Madam's clip exists for madam and madam_lns only"


@dataclass(frozen=True)
class ReviewersConfig(Config):
    """The questions and their grids; zeros and empty tuples take the full or ``--quick`` defaults."""

    quick: bool = param(False, "the preview: width 32, 3 epochs, 1 seed, shorter grids")
    questions: tuple[str, ...] = param(QUESTIONS, "which questions to answer", choices=QUESTIONS)
    dataset: str = param("digits", "data set", choices=("digits", "mnist5k", "synthetic", "mnist"))
    data_dir: str = param("", "directory of the MNIST IDX files (--dataset mnist)")
    depth: int = param(8, "L of the MLP (lemma2 takes its own depths)", minimum=1)
    width: int = param(0, "hidden width; 0: 128 (32 with --quick)", minimum=0)
    epochs: int = param(0, "training epochs; 0: 10 (3 with --quick)", minimum=0)
    batch_size: int = param(32, "minibatch size", minimum=1)
    seeds: int = param(0, "seeds per configuration; 0: 3 (1 with --quick)", minimum=0)
    lr_points: int = param(
        0, "lr_grid: rates per optimiser from default/100 to default·10; 0: 7 (3 with --quick)", minimum=0
    )
    bits: tuple[int, ...] = param((), "low_precision: bits; none given: 4 6 8 10 12 (4 8 with --quick)", minimum=2)
    base_lrs: tuple[float, ...] = param(
        (),
        "low_precision: base precisions at 8 bits; none given: 0.004 0.008 0.016 0.032 (0.004 with --quick)",
        minimum=1e-6,
    )
    depths: tuple[int, ...] = param(
        (), "lemma2: depths; none given: 2 4 8 16 (2 8 with --quick)", minimum=1, increasing=True
    )
    seed: int = param(0, "first seed")

    def resolved(self) -> ReviewersConfig:
        q = self.quick
        return replace(
            self,
            width=self.width or (32 if q else 128),
            epochs=self.epochs or (3 if q else 10),
            seeds=self.seeds or (1 if q else 3),
            lr_points=self.lr_points or (3 if q else 7),
            bits=self.bits or ((4, 8) if q else (4, 6, 8, 10, 12)),
            base_lrs=self.base_lrs or ((0.004,) if q else (0.004, 0.008, 0.016, 0.032)),
            depths=self.depths or ((2, 8) if q else (2, 4, 8, 16)),
        )

    def base(self, seed: int, **fields) -> train.TrainConfig:
        """A run of the study: the shared settings and its own ``fields``."""
        c = self.resolved()
        shared = dict(depth=c.depth, width=c.width, epochs=c.epochs, batch_size=c.batch_size, dataset=c.dataset)
        fields.setdefault("learning_rate", train.OPTIMIZERS[fields["optimizer"]].default_lr)
        return train.TrainConfig(**{**shared, "data_dir": c.data_dir, "checkpoints": (), "seed": seed, **fields})


def lemma2_rate(depth: int) -> float:
    """Lemma 2's largest guaranteed-descent η along Fromage's direction with C = 1: ``2^{1/L} − 1``."""
    return float(np.expm1(np.log(2.0) / depth))


def lr_grid(config: ReviewersConfig, optimizer: str) -> np.ndarray:
    c = config.resolved()
    return train.OPTIMIZERS[optimizer].default_lr * np.geomspace(0.01, 10.0, c.lr_points)


# ------------------------------------------------------------------------------------------------ one run


@dataclass(frozen=True, eq=False)
class RunCurves(Result):
    """One training run's curves (epoch 0: initialisation), cut short if it diverged."""

    config: train.TrainConfig
    steps_per_epoch: int
    diverged_epoch: int  # 0: trained to the end
    epoch: np.ndarray
    train_loss: np.ndarray = value(DIVERGED)
    train_acc: np.ndarray = value(DIVERGED)
    test_acc: np.ndarray = value(DIVERGED)
    clip_fraction: np.ndarray = value(NOT_MADAM + "; " + DIVERGED)
    grad_norm: np.ndarray = value(DIVERGED)  # full-batch training gradient
    norm_ratio: np.ndarray = value(DIVERGED)  # (epochs, weight matrices) ‖W_l(t)‖/‖W_l(0)‖

    @property
    def final_test_error(self) -> float:
        return float("inf") if self.diverged_epoch else float(1.0 - self.test_acc[-1])

    @property
    def final_train_acc(self) -> float:
        return float("nan") if self.diverged_epoch else float(self.train_acc[-1])


def run_curves(config: train.TrainConfig) -> RunCurves:
    """Train ``config`` (recording gradient norms) and keep its curves; a divergence is a result, not an error."""
    recorded = replace(config, gradient_norms=True)
    try:
        trained = train.train(recorded, progress=False)
    except Diverged as err:
        nan = np.full(err.epoch + 1, np.nan)
        return RunCurves(config, 0, err.epoch, np.arange(err.epoch + 1), nan, nan, nan, nan, nan,
                         np.full((err.epoch + 1, 1), np.nan))  # fmt: skip
    c = trained.curves
    norms = np.asarray(c.norms)[:, weight_indices(trained.params)]
    return RunCurves(
        config,
        trained.steps_per_epoch,
        0,
        np.asarray(c.epoch),
        np.asarray(c.train_loss),
        np.asarray(c.train_acc),
        np.asarray(c.test_acc),
        np.asarray(c.clip_fraction),
        np.asarray(c.grad_norm),
        norms / norms[0],
    )


RUN = Experiment(train.TrainConfig, RunCurves, run_curves, help="one training run's curves")


def _name(c: train.TrainConfig) -> str:
    extra = f"_p{c.p_scale:g}" if c.optimizer.startswith("madam") else ""
    if c.optimizer == "madam_lns":
        extra += f"_b{c.bits}_base{c.base_lr:g}"
    if c.zero_biases:
        extra += "_zerobias"
    return f"{c.optimizer}_lr{c.lr:g}_L{c.depth}{extra}_s{c.seed}"


def _runs(config: ReviewersConfig) -> dict[str, dict[str, train.TrainConfig]]:
    """question → {cell name: training config}; questions share a run where their configs agree."""
    c = config.resolved()
    seeds = range(c.seed, c.seed + c.seeds)
    out: dict[str, list[train.TrainConfig]] = {q: [] for q in QUESTIONS}
    for s in seeds:
        out["fixed_point"] += [c.base(s, optimizer=o) for o in ("fromage", "lars", "madam")]
        out["lars"] += [c.base(s, optimizer=o, learning_rate=lr) for o in ("fromage", "lars") for lr in (0.01, 0.1)]
        out["clip"] += [c.base(s, optimizer="madam", p_scale=p) for p in (1.0, 2.0, 3.0)]
        out["lr_grid"] += [
            c.base(s, optimizer=o, learning_rate=float(lr)) for o in LR_GRID_OPTIMIZERS for lr in lr_grid(c, o)
        ]
        out["biases"] += [c.base(s, optimizer="madam"), c.base(s, optimizer="madam", zero_biases=True)]
        lns = [(b, LNS_RANGE / 2**b) for b in c.bits] + [(8, base) for base in c.base_lrs]
        out["low_precision"] += [
            c.base(s, optimizer="madam_lns", bits=b, base_lr=base, learning_rate=10.0 * 0.001 / base)
            for b, base in dict.fromkeys(lns)
        ]
        out["lemma2"] += [
            c.base(s, optimizer="fromage", depth=d, learning_rate=lr) for d in c.depths for lr in (lemma2_rate(d), 0.01)
        ]
    return {q: {_name(t): t for t in out[q]} for q in c.questions}


def cells(config: ReviewersConfig, done: dict) -> dict[str, train.TrainConfig]:
    return {name: t for runs in _runs(config).values() for name, t in runs.items()}


# ------------------------------------------------------------------------------------------------ result


@dataclass(frozen=True, eq=False)
class ReviewersResult(Result):
    config: ReviewersConfig  # resolved
    runs: dict[str, RunCurves]  # cell name → curves
    questions: dict[str, tuple[str, ...]]  # question → its cells

    def select(self, question: str, **match) -> list[RunCurves]:
        """The question's runs whose training config has the ``match``ing field values (floats to rounding)."""

        def agrees(config, name, wanted):
            have = getattr(config, "lr" if name == "lr" else name)
            return bool(np.isclose(have, wanted)) if isinstance(wanted, float) else have == wanted

        runs = [self.runs[n] for n in self.questions.get(question, ())]
        return [r for r in runs if all(agrees(r.config, k, v) for k, v in match.items())]

    def summary(self) -> str:
        return "\n".join(f"{r.claim}: {r.measurement} → {r.verdict}" for r in self.report_rows())

    def figure(self):
        return reviewers_figure(self)

    def report_rows(self) -> list[Row]:
        return report_rows(self)


def combine(config: ReviewersConfig, done: dict) -> ReviewersResult:
    runs = _runs(config)
    return ReviewersResult(
        config=config.resolved(),
        runs={name: done[name] for names in runs.values() for name in names},
        questions={q: tuple(names) for q, names in runs.items()},
    )


def run(config: ReviewersConfig) -> Result:
    return run_study(STUDY, config)


# ------------------------------------------------------------------------------------------------ views


def _med(values) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else float("nan")


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


def orthogonal_growth(run: RunCurves) -> np.ndarray:
    """``∏_t √(1+η_t²)`` per epoch for ``run``'s schedule (η decayed by ``lr_decay`` per epoch): the norm growth
    of steps orthogonal to W without Fromage's ``1/√(1+η²)`` factor (docs/theory.md §4.1)."""
    c = run.config
    per_epoch = [0.5 * run.steps_per_epoch * np.log1p((c.lr * c.lr_decay**e) ** 2) for e in range(c.epochs)]
    return np.exp(np.concatenate([[0.0], np.cumsum(per_epoch)]))


def _accuracies(runs: list[RunCurves]) -> list[float]:
    return [100 * (1 - r.final_test_error) for r in runs]


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


def relative_errors(result: ReviewersResult, optimizer: str) -> tuple[np.ndarray, np.ndarray]:
    """The optimiser's grid and, per rate, the median over seeds of its final test error over the best such
    median on the grid (inf where the median run diverged)."""
    lrs = lr_grid(result.config, optimizer)
    errors = [np.median([r.final_test_error for r in result.select("lr_grid", optimizer=optimizer, lr=float(lr))])
              for lr in lrs]  # fmt: skip
    best = max(min(errors), 1e-3)  # a perfect test score would make every ratio infinite
    return lrs, np.array(errors) / best


def robust_decades(lrs, rel, factor: float = 2.0) -> float:
    """The width in decades of the rates whose error is within ``factor`` of the best (grid spacing resolution)."""
    good = np.log10(np.asarray(lrs)[np.asarray(rel) <= factor])
    step = float(np.log10(lrs[1] / lrs[0])) if len(lrs) > 1 else 0.0
    return float(good.max() - good.min() + step) if good.size else 0.0


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


def report_rows(result: ReviewersResult) -> list[Row]:
    """One row per question asked: claim (with the seeds, net and command), measurement, verdict."""
    rows = []
    for question in result.config.questions:
        claim, measurement, verdict = ROWS[question](result)
        where = f"{_seeds(result)} (`trust reviewers --questions {question}`)"
        rows.append(Row(f"{claim} — {where}", "claim" if question == "lars" else "measurement", measurement, verdict))
    return rows


def paper_configs(quick: bool, seed: int) -> dict[str, ReviewersConfig]:
    return {"reviewers": ReviewersConfig(quick=quick, seed=seed)}


STUDY = Study(RUN, cells, combine)

EXPERIMENT = Experiment(
    ReviewersConfig,
    ReviewersResult,
    run,
    paper_configs,
    help="reviewers' training questions: stationarity, LARS, Madam's clip, lr grid, biases, bits, Lemma 2's rate",
    study=STUDY,
)
