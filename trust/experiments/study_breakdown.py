"""``trust study breakdown``: the paper's Figure 1 during training, Fromage against SGD and Adam across depths
(docs/theory.md §5.1, §6.4).

Every configuration (optimiser × depth, plus a residual net) is trained with several seeds on MNIST-5k, and at
checkpoints from initialisation to the end the fixed-gradient slice is measured (:mod:`~trust.experiments.shared.cell`):
the loss and the relative change of every layer's gradient as every tensor moves by ``η‖W_l‖`` along
``−g_l/‖g_l‖``, beside ``(1+η)^L − 1`` (DRT with constant 1), ``C_eff·[(1+η)^L − 1]`` and the Lipschitz-smooth
prediction from the sharpness measured at that checkpoint. SGD's learning rate is chosen per depth by a sweep
(the best final training loss, first seed), which the report shows. The measurement batch is checked against
other sizes on depth 16 (the deepest net when 16 is not in the grid).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from trust.base.errors import TrustError
from trust.base.schema import Config, Result, param, value
from trust.core import train
from trust.experiments.shared import cell
from trust.experiments.shared.cell import DIVERGED, CellConfig, CellResult
from trust.experiments.shared.runner import Experiment, Study, run_study
from trust.views import plots, report
from trust.views.report import Row, violation_factor

# The default checkpoints: six of the paper's ten (its iterations 24 and 96 of 240 as fractions of the first
# epoch, the start of epochs 1 and 3, and the end), cut by cost (docs/theory.md §5.1).
CHECKPOINTS = (0.0, 0.1, 0.4, 1.0, 3.0, 10.0)
QUICK_CHECKPOINTS = (0.0, 1.0, 10.0)
PROBES = (0.01, 0.05, 0.099)  # the η of the paper's published numbers
# The paper's range (lowest–highest over its checkpoints) of the first layer's relative gradient change at each
# probe η, from its Figure-1 notebooks (docs/theory.md §5): net → ((low, high) at 0.01, 0.05, 0.099).
PAPER_RANGES = {
    ("L=2", False): ((0.2, 3.9), (0.8, 127.0), (1.05, 326.0)),
    ("L=16", False): ((1.3, 10.0), (8.0, 3.1e3), (144.0, 3.2e5)),
    ("L=16", True): ((1.25, 6.2), (4.6, 1.1e3), (31.0, 7.7e3)),
}


@dataclass(frozen=True)
class StudyBreakdownConfig(Config):
    """The study's grid; zeros and empty tuples take the full or ``--quick`` defaults (see each help)."""

    quick: bool = param(
        False, "the laptop-sized study: width 32, depths 2 4 8 16, 3 seeds, 3 checkpoints, 8 η, 250 examples"
    )
    dataset: str = param("mnist5k", "data set", choices=("mnist5k", "digits", "synthetic", "mnist"))
    data_dir: str = param("", "directory of the MNIST IDX files (--dataset mnist)")
    width: int = param(0, "hidden width; 0: 256 (32 with --quick); the paper's is 784", minimum=0)
    depths: tuple[int, ...] = param(
        (), "plain MLP depths; none given: 2 4 8 16 32 (2 4 8 16 with --quick)", minimum=1, increasing=True
    )
    residual_depth: int = param(16, "depth of the residual MLP (0: none)", minimum=0)
    optimizers: tuple[str, ...] = param(
        ("fromage", "sgd", "adam", "orthogonal_sgd"), "optimisers", choices=train.OPTIMIZERS
    )
    swept: tuple[str, ...] = param(("sgd",), "optimisers whose learning rate a sweep chooses", choices=train.OPTIMIZERS)
    sweep_lrs: tuple[float, ...] = param((1.0, 0.1, 0.01), "the sweep's learning rates", minimum=0)
    seeds: int = param(3, "seeds per configuration (3 also in full mode: 5 do not fit the hour)", minimum=1)
    epochs: int = param(10, "training epochs", minimum=1)
    batch_size: int = param(250, "minibatch size", minimum=1)
    lr_decay: float = param(0.9, "learning-rate factor per epoch", maximum=1)
    checkpoints: tuple[float, ...] = param(
        (),
        f"epochs at which the slice is measured; none given: {' '.join(f'{c:g}' for c in CHECKPOINTS)} (up to "
        "--epochs) and the end",
        minimum=0,
        increasing=True,
    )
    eta_max: float = param(0.099, "largest η", minimum=0)
    eta_steps: int = param(0, "η grid points (plus 0.01 and 0.05); 0: 16 (8 with --quick)", minimum=0)
    n_measure: int = param(0, "measurement batch: the first n training examples; 0: 500 (250 with --quick)", minimum=0)
    measure_check: tuple[int, ...] = param(
        (125, 250, 1000, 0), "batch sizes checked on depth 16 (else the deepest)", minimum=0
    )
    sharpness_tol: float = param(1e-3, "relative tolerance of the Lanczos sharpness", minimum=1e-12)
    seed: int = param(0, "first seed")

    def validate(self):
        if not self.optimizers or not self.sweep_lrs:
            raise TrustError("give at least one optimizer and sweep learning rate")
        if not self.eta_max > 0 or not self.lr_decay > 0:
            raise TrustError("eta_max and lr_decay must be > 0")
        if any(c > self.epochs for c in self.checkpoints):
            raise TrustError(f"checkpoints must lie in [0, epochs={self.epochs}], got {self.checkpoints}")
        if 0 < self.residual_depth < 3:
            raise TrustError("a residual MLP needs depth ≥ 3")

    def resolved(self) -> StudyBreakdownConfig:
        """The config with the mode's defaults filled in."""
        return replace(
            self,
            width=self.width or (32 if self.quick else 256),
            checkpoints=self.checkpoints
            or tuple(c for c in (QUICK_CHECKPOINTS if self.quick else CHECKPOINTS) if c < self.epochs)
            + (float(self.epochs),),
            n_measure=self.n_measure or (250 if self.quick else 500),
            depths=self.depths or ((2, 4, 8, 16) if self.quick else (2, 4, 8, 16, 32)),
            eta_steps=self.eta_steps or (8 if self.quick else 16),
        )

    @property
    def eta(self) -> tuple[float, ...]:
        grid = np.linspace(0.0, self.eta_max, self.eta_steps or 2)
        return tuple(float(e) for e in np.unique(np.r_[grid, [p for p in PROBES[:2] if p < self.eta_max]]))

    @property
    def nets(self) -> list[tuple[int, bool]]:
        """(depth, residual) of every net, plain first."""
        return [(d, False) for d in self.depths] + ([(self.residual_depth, True)] if self.residual_depth else [])


def _cell(config: StudyBreakdownConfig, optimizer: str, lr: float, depth: int, residual: bool, seed: int, **kw):
    return cell.for_study(
        config,
        optimizer=optimizer,
        lr=lr,
        depth=depth,
        residual=residual,
        checkpoints=tuple(sorted(set(config.checkpoints) | {0.0, float(config.epochs)})),
        eta=config.eta,
        n_measure=config.n_measure,
        sharpness_tol=config.sharpness_tol,
        seed=seed,
        **kw,
    )


def _name(optimizer, lr, depth, residual, seed, prefix="") -> str:
    return f"{prefix}{optimizer}_lr{lr:g}_L{depth}{'_residual' if residual else ''}_s{seed}"


def chosen_lr(sweep: dict[float, CellResult]) -> float:
    """The swept learning rate with the lowest final training loss (a diverged run has loss ∞)."""
    return min(sweep, key=lambda lr: sweep[lr].final_train_loss)


def cells(config: StudyBreakdownConfig, done: dict) -> dict[str, CellConfig]:
    """The sweep cells (train only, first seed) and, once a sweep is finished, the measured cells at its choice."""
    c = config.resolved()
    out = {}
    checked_depth = 16 if 16 in c.depths else max(c.depths)  # the paper's deep net, where it is in the grid
    for optimizer in c.optimizers:
        for depth, residual in c.nets:
            lr = train.OPTIMIZERS[optimizer].default_lr
            if optimizer in c.swept:
                names = {x: _name(optimizer, x, depth, residual, c.seed, "sweep_") for x in c.sweep_lrs}
                out.update({n: _cell(c, optimizer, x, depth, residual, c.seed, slices=False) for x, n in names.items()})
                if not all(n in done for n in names.values()):
                    continue
                lr = chosen_lr({x: done[n] for x, n in names.items()})
            for s in range(c.seeds):
                is_checked = (optimizer, depth, residual, s) == (c.optimizers[0], checked_depth, False, 0)
                check = c.measure_check if is_checked else ()
                out[_name(optimizer, lr, depth, residual, c.seed + s)] = _cell(
                    c, optimizer, lr, depth, residual, c.seed + s, measure_check=check
                )
    return out


@dataclass(frozen=True)
class SweepPoint:
    optimizer: str
    depth: int
    residual: bool
    lr: float
    chosen: bool
    final_train_loss: float = value(DIVERGED)
    final_train_acc: float = value(DIVERGED)


@dataclass(frozen=True, eq=False)
class StudyBreakdownResult(Result):
    config: StudyBreakdownConfig  # resolved
    sweep: tuple[SweepPoint, ...]
    cells: tuple[CellResult, ...]

    def select(self, optimizer: str, depth: int, residual: bool = False) -> list[CellResult]:
        """The measured cells (one per seed) of one configuration."""
        return [
            r
            for r in self.cells
            if (r.config.optimizer, r.config.depth, r.config.residual) == (optimizer, depth, residual)
        ]

    def probe(self, optimizer: str, depth: int, residual: bool, eta: float, checkpoint: int) -> np.ndarray:
        """Layer 1's relative gradient change at the grid point nearest ``eta`` and a checkpoint (0: init, −1:
        the end), one value per seed (diverged seeds left out)."""
        got = [r for r in self.select(optimizer, depth, residual) if r.measured]
        return _finite([r.gradient[checkpoint, r.at_eta(eta), 0] for r in got])

    def summary(self) -> str:
        c = self.config
        lines = [f"study breakdown: {len(self.cells)} measured cells, {len(self.sweep)} sweep runs, width {c.width}"]
        for optimizer in c.optimizers:
            for depth, residual in c.nets:
                sel = self.select(optimizer, depth, residual)
                if not sel:
                    continue
                init, end = (self.probe(optimizer, depth, residual, 0.05, k) for k in (0, -1))
                lines.append(
                    f"{optimizer:>8} lr {sel[0].config.lr:<6g} L={depth:<2}{' res' if residual else '    '} "
                    f"train acc {np.median([r.final_train_acc for r in sel]):.3f}; layer-1 gradient change at "
                    f"η=0.05: init {_median(init)}, end {_median(end)}; C_eff layer 1 (end) "
                    f"{_median([r.c_eff_first[-1] for r in sel if r.measured])}"
                )
        return "\n".join(lines)

    def figure(self):
        return summary_figure(self)

    def report_rows(self) -> list[Row]:
        return report_rows(self)


def _med(values, axis=None):
    """The median over seeds, leaving out NaN (a dead net's undefined slice); NaN if nothing is left."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN is the answer
        return np.nanmedian(np.asarray(values, dtype=float), axis=axis)


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def _median(values) -> str:
    """``median [min, max]`` over seeds, NaN left out."""
    values = _finite(values)
    if values.size == 0:
        return "n/a"
    return f"{np.median(values):.3g} [{values.min():.3g}, {values.max():.3g}]"


def combine(config: StudyBreakdownConfig, done: dict) -> StudyBreakdownResult:
    c = config.resolved()
    wanted = cells(config, done)
    sweep = []
    for optimizer in c.swept:
        if optimizer not in c.optimizers:
            continue
        for depth, residual in c.nets:
            runs = {x: done[_name(optimizer, x, depth, residual, c.seed, "sweep_")] for x in c.sweep_lrs}
            best = chosen_lr(runs)
            sweep += [
                SweepPoint(
                    optimizer,
                    depth,
                    residual,
                    x,
                    x == best,
                    r.final_train_loss,
                    r.final_train_acc,
                )
                for x, r in runs.items()
            ]
    measured = tuple(done[n] for n, cc in wanted.items() if cc.slices)
    return StudyBreakdownResult(c, tuple(sweep), measured)


def run(config: StudyBreakdownConfig) -> StudyBreakdownResult:
    result = run_study(STUDY, config)
    assert isinstance(result, StudyBreakdownResult)
    return result


# ------------------------------------------------------------------------------------------------ figures


def _checkpoint_colours(n: int):
    """One colour per checkpoint, early (light) to late (dark) along cividis (colour-blind safe)."""
    return [plots.plt.cm.cividis(0.9 - 0.85 * i / max(1, n - 1)) for i in range(n)]


def optimizer_figure(result: StudyBreakdownResult, optimizer: str):
    """Paper Figure 1 for one optimiser: per net, the loss change and layer 1's relative gradient change
    against η, one colour per checkpoint (median over seeds), with DRT ``(1+η)^L − 1`` (black dashes),
    ``C_eff·DRT`` at the end of training (grey dash-dots) and the Lipschitz-smooth prediction from the
    sharpness at initialisation and at the end (dotted)."""
    nets = [(d, r) for d, r in result.config.nets if result.select(optimizer, d, r)]
    fig, axes = plots.subplots(len(nets), 2, figsize=(11, 2.9 * len(nets)))
    for row, (depth, residual) in enumerate(nets):
        sel = [r for r in result.select(optimizer, depth, residual) if r.measured]
        ax_loss, ax_g = axes[row]
        name = f"L={depth}{' residual' if residual else ''}, {optimizer} lr {sel[0].config.lr:g}" if sel else ""
        if not sel:
            ax_loss.set_title(f"L={depth}: every seed diverged")
            continue
        first = sel[0]
        eta = first.eta
        colours = _checkpoint_colours(len(first.checkpoint_epoch))
        loss = _med([r.loss - r.loss[:, :1] for r in sel], axis=0)
        grad = _med([r.gradient[:, :, 0] for r in sel], axis=0)
        lip = _med([r.lipschitz_first for r in sel], axis=0)
        for k, epoch in enumerate(first.checkpoint_epoch):
            tag = plots.epoch_tag(round(float(epoch), 3))
            ax_loss.plot(eta, loss[k], color=colours[k], label=tag)
            ax_g.plot(eta, plots.positive(grad[k]), color=colours[k])
        for k in (0, -1):
            ax_g.plot(eta, plots.positive(lip[k]), color=colours[k], ls=":", lw=1.2)
        ax_g.plot(eta, plots.positive(first.drt), "k--", lw=1.2)
        c_eff = float(_med([r.c_eff_first[-1] for r in sel]))
        ax_g.plot(eta, plots.positive(c_eff * first.drt), color="0.45", ls="-.", lw=1.2)
        ax_loss.set_yscale("symlog", linthresh=1e-3)
        ax_loss.set(ylabel=f"{name}\nℒ(W+ΔW) − ℒ(W)")
        low = min(np.nanmin(plots.positive(grad)), first.drt[1])
        ax_g.set(yscale="log", ylabel="‖Δg₁‖/‖g₁‖", ylim=(max(1e-5, low / 2), None))
        for ax in (ax_loss, ax_g):
            ax.grid(alpha=0.3, which="both")
        if row == 0:
            ax_loss.set_title("change of the loss along the slice")
            ax_g.set_title("relative change of layer 1's gradient")
            ax_loss.legend(fontsize=6.5, ncol=2, title="checkpoint", title_fontsize=7)
            ax_g.plot([], [], "k--", label="DRT (1+η)^L − 1")
            ax_g.plot([], [], color="0.45", ls="-.", label="C_eff·DRT (end)")
            ax_g.plot([], [], "k:", label="Lipschitz λ‖ΔW‖/‖g₁‖ (init, end)")
            ax_g.legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("η (every tensor moved by η‖W_l‖ along −g_l/‖g_l‖)")
    c = result.config
    fig.suptitle(
        f"Gradient breakdown during training: {optimizer}, relu MLPs of width {c.width} on {c.dataset}\n"
        f"median of {report.count(c.seeds, 'seed')}, measured on {c.n_measure or 'all'} training examples"
    )
    return fig


def _band(ax, x, values, colour, **kw) -> None:
    """Median line and the seeds' range as a band (``values``: one array of seeds per x; empty ones skipped)."""
    values = [_finite(v) for v in values]
    ok = [i for i, v in enumerate(values) if np.size(v)]
    xs = [x[i] for i in ok]
    ax.plot(xs, [np.median(values[i]) for i in ok], color=colour, **kw)
    ax.fill_between(xs, [np.min(values[i]) for i in ok], [np.max(values[i]) for i in ok], color=colour, alpha=0.2)


def summary_figure(result: StudyBreakdownResult):
    """(a, b) layer 1's gradient change at η = 0.01 and 0.05 against depth after training (median, band: the
    seeds' range) per optimiser, at initialisation (grey) and DRT (dotted); (c) C_eff at the end of training
    against depth; (d) the measurement-batch check; (e…) C_eff through training, one panel per optimiser."""
    c = result.config
    n_opt = len(c.optimizers)
    cols = max(4, n_opt)
    fig, axes = plots.subplots(2, cols, figsize=(4.3 * cols, 7.8))
    depths = list(c.depths)
    for col, eta in enumerate((0.01, 0.05)):
        ax = axes[0, col]
        for optimizer in c.optimizers:
            vals = [result.probe(optimizer, d, False, eta, -1) for d in depths]
            _band(ax, depths, vals, plots.OPTIMIZER_COLOURS[optimizer], marker="o", label=f"{optimizer}, end")
        init = [result.probe(c.optimizers[0], d, False, eta, 0) for d in depths]
        _band(ax, depths, init, "0.5", ls="--", label="initialisation")
        ax.plot(depths, [(1 + eta) ** d - 1 for d in depths], "k:", label="DRT (1+η)^L − 1")
        plots.depth_axis(ax, depths)
        ax.set(yscale="log", xlabel="depth L", ylabel="‖Δg₁‖/‖g₁‖", title=f"({'ab'[col]}) layer 1 at η = {eta}")
        ax.legend(fontsize=6.5)
    ax = axes[0, 2]
    for optimizer in c.optimizers:
        c_eff = [np.array([r.c_eff_first[-1] for r in result.select(optimizer, d) if r.measured]) for d in depths]
        _band(ax, depths, c_eff, plots.OPTIMIZER_COLOURS[optimizer], marker="o", label=optimizer)
    ax.axhline(1.0, color="k", lw=0.8)
    plots.depth_axis(ax, depths)
    ax.set(yscale="log", xlabel="depth L", ylabel="C_eff = max_η measured / DRT", title="(c) C_eff of layer 1, end")
    ax.legend(fontsize=7)
    _measure_check_panel(axes[0, 3], result)
    for col, optimizer in enumerate(c.optimizers):
        ax = axes[1, col]
        for depth, residual in c.nets:
            sel = [r for r in result.select(optimizer, depth, residual) if r.measured]
            if sel:
                epochs = np.asarray(sel[0].checkpoint_epoch)
                vals = list(np.array([r.c_eff_first for r in sel]).T)
                label = f"L={depth}{' residual' if residual else ''}"
                _band(ax, epochs, vals, plots.depth_colour(depth, residual), marker=".", label=label)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xscale("symlog", linthresh=0.1, linscale=0.6)
        ax.set_xticks([0, 0.1, 1, 10], ["0", "0.1", "1", "10"])
        ax.set(
            yscale="log",
            xlabel="epoch",
            ylabel="C_eff (layer 1)",
            title=f"({'efgh'[col]}) C_eff in training: {optimizer}",
        )
        ax.legend(fontsize=7)
    for ax in axes.ravel():
        ax.grid(alpha=0.3, which="both")
    for ax in axes[1, n_opt:]:
        ax.axis("off")
    fig.suptitle(
        f"Gradient breakdown across depth and training (relu MLPs, width {c.width}, {c.dataset}, "
        f"{report.count(c.seeds, 'seed')}; bands: the seeds' range)"
    )
    return fig


def _measure_check_panel(ax, result: StudyBreakdownResult) -> None:
    """How the checked net's layer-1 curve moves with the measurement batch (solid: end, dashed: init)."""
    checked = [r for r in result.cells if r.check_sizes]
    if not checked:
        ax.text(0.5, 0.5, "no check run", ha="center", transform=ax.transAxes)
        return
    r = checked[0]
    ax.set_title(f"(d) measurement batch: {r.config.optimizer} L={r.config.depth}")
    assert r.check_gradient.size
    colours = _checkpoint_colours(len(r.check_sizes))
    for i, n in enumerate(r.check_sizes):
        ax.plot(r.eta, plots.positive(r.check_gradient[1, i]), color=colours[i], label=f"n = {n or 'all'}")
        ax.plot(r.eta, plots.positive(r.check_gradient[0, i]), color=colours[i], ls="--", lw=1)
    used = r.config.n_measure or "all"
    ax.plot(r.eta, plots.positive(r.gradient[-1, :, 0]), "k", lw=2.5, alpha=0.35, label=f"n = {used} (used)")
    ax.plot(r.eta, plots.positive(r.gradient[0, :, 0]), "k--", lw=2.5, alpha=0.35, label="dashed: initialisation")
    ax.set(yscale="log", xlabel="η", ylabel="‖Δg₁‖/‖g₁‖")
    ax.legend(fontsize=7)


# ------------------------------------------------------------------------------------------------ report


def _depth_rows(result: StudyBreakdownResult) -> list[Row]:
    """Does depth 16 (the paper's) and the deepest net break down faster than depth 2, and faster after training
    than at initialisation? With each net's final training accuracy: a net that did not train did not move."""
    c, rows = result.config, []
    shallow = min(c.depths)
    for optimizer in c.optimizers:
        for deep in sorted({d for d in (16, max(c.depths)) if d in c.depths and d > shallow}):
            at = {(d, k): result.probe(optimizer, d, False, 0.05, k) for d in (shallow, deep) for k in (0, -1)}
            if any(v.size == 0 for v in at.values()):
                continue
            end_s, end_d, init_d = at[shallow, -1], at[deep, -1], at[deep, 0]
            ratio = np.median(end_d) / np.median(end_s)
            acc = {d: _median([r.final_train_acc for r in result.select(optimizer, d)]) for d in (shallow, deep)}
            rows.append(
                Row(
                    f"Paper: depth {deep} breaks down faster than depth {shallow} — {optimizer}, after training",
                    "claim",
                    f"layer-1 gradient change at η=0.05, median [range] over {report.count(c.seeds, 'seed')}: "
                    f"L={shallow}: {_median(end_s)}, L={deep}: {_median(end_d)} (at initialisation "
                    f"{_median(at[shallow, 0])} and {_median(init_d)}); final training accuracy "
                    f"L={shallow}: {acc[shallow]}, L={deep}: {acc[deep]}",
                    f"yes, ×{ratio:.3g} (every seed)"
                    if end_d.min() > end_s.max()
                    else f"not separated (×{ratio:.3g} in the medians)",
                )
            )
            grew, shrank = end_d.min() > init_d.max(), end_d.max() < init_d.min()
            rows.append(
                Row(
                    f"Breakdown grows with training at depth {deep} — {optimizer}",
                    "claim",
                    f"layer-1 gradient change at η=0.05: initialisation {_median(init_d)}, end {_median(end_d)}",
                    f"{'yes' if grew else 'no, it shrinks' if shrank else 'mixed over seeds'} "
                    f"(end/init ×{np.median(end_d) / np.median(init_d):.3g})",
                )
            )
    return rows


def _paper_rows(result: StudyBreakdownResult) -> list[Row]:
    """Our first-layer ranges over the checkpoints beside the paper's published ones (Fromage)."""
    rows = []
    for (label, residual), paper in PAPER_RANGES.items():
        depth = int(label.split("=")[1])
        sel = [r for r in result.select("fromage", depth, residual) if r.measured]
        if not sel:
            continue
        ours, orders = [], []
        for eta, (low, high) in zip(PROBES, paper):
            curve = _finite(_med([r.gradient[:, r.at_eta(eta), 0] for r in sel], axis=0))  # per checkpoint
            if curve.size == 0:
                break
            ours.append(f"η={eta}: {curve.min():.3g}–{curve.max():.3g} (paper {low:g}–{high:.3g})")
            orders.append(np.log10(curve.max() / high))
        if len(orders) < len(PROBES):
            continue
        worst = max(orders, key=abs)
        first = sel[0]
        steps_per_epoch = int(round(first.step[-1] / first.checkpoint_epoch[-1]))
        acc = _median([r.final_train_acc for r in sel])
        differences = (
            f"{steps_per_epoch} steps per epoch against the paper's 240 (final training accuracy {acc}), "
            f"{result.config.n_measure} measurement examples against its 60,000, {len(first.step)} checkpoints "
            f"against its 10{'' if result.config.width == 784 else f', width {result.config.width} against 784'}"
        )
        magnitude = "same order of magnitude" if abs(worst) <= 1 else f"highest value 10^{worst:+.1f} of the paper's"
        rows.append(
            Row(
                f"Our Figure 1 beside the paper's — Fromage {label}{' residual' if residual else ''}, layer 1, "
                "lowest–highest over the checkpoints",
                "measurement",
                "; ".join(ours) + f" (width {result.config.width}, {result.config.dataset}, "
                f"median of {report.count(len(sel), 'seed')})",
                f"{magnitude} ({differences})",
            )
        )
    return rows


def _bound_rows(result: StudyBreakdownResult) -> list[Row]:
    """DRT with constant 1 and the Lipschitz-smooth model, as violation factors (assumptions: measured)."""
    c, rows = result.config, []
    for optimizer in c.optimizers:
        per_net, worst, lip, lip_worst = [], 0.0, [], 0.0
        for depth, residual in c.nets:
            sel = [r for r in result.select(optimizer, depth, residual) if r.measured]
            if not sel:
                continue
            name = f"L={depth}{'r' if residual else ''}"
            first = _med([r.c_eff_first for r in sel], axis=0)
            worst = max(worst, max(float(np.nanmax(r.c_eff_worst, initial=0.0)) for r in sel))
            per_net.append(f"{name}: {first[0]:.3g}→{first[-1]:.3g}")
            ratio = _med([r.gradient[-1, 1:, 0] / r.lipschitz_first[-1, 1:] for r in sel], axis=0)  # at the end
            lip_worst = max(lip_worst, float(np.nanmax(ratio, initial=0.0)))
            lip.append(f"{name}: {ratio[0]:.2g}…{ratio[-1]:.2g}")
        if not per_net:
            continue
        rows.append(
            Row(
                f"DRT with constant 1 bounds every layer's gradient change along the slice — {optimizer}",
                "assumption",
                f"C_eff of layer 1, initialisation→end (median over seeds): {', '.join(per_net)}; worst layer, "
                f"seed and checkpoint: {worst:.3g}",
                violation_factor(worst),
            )
        )
        rows.append(
            Row(
                f"Lipschitz-smooth model, λ = the sharpness at the checkpoint — {optimizer}, end of training",
                "assumption",
                f"measured/predicted layer-1 gradient change, smallest η>0…η={c.eta_max:g}: {', '.join(lip)}",
                violation_factor(lip_worst),
            )
        )
    return rows


def _all_last(n: int) -> float:
    """Sort key for batch sizes: 0 (the whole training set) last."""
    return n or np.inf


def _method_rows(result: StudyBreakdownResult) -> list[Row]:
    """The measurement batch check and the SGD learning-rate sweep."""
    rows = []
    checked = [r for r in result.cells if r.check_sizes and r.check_gradient.size]
    if checked:
        r = checked[0]
        used = r.config.n_measure or "all"
        # curves per n (the used one first); reference: the whole training set when it was checked
        sizes = (r.config.n_measure, *r.check_sizes)
        curves = np.concatenate([r.gradient[[0, -1], None, :, 0], r.check_gradient], axis=1)  # (2, n, e)
        ref = sizes.index(0) if 0 in sizes else 0
        probes = [r.at_eta(e) for e in PROBES]
        deviation = {  # largest |relative deviation| from the reference over the probe η, init and end
            n: max(np.expm1(np.nanmax(np.abs(np.log(curves[k, i, probes] / curves[k, ref, probes])))) for k in (0, 1))
            for i, n in enumerate(sizes)
            if i != ref
        }
        ref_name = "all" if sizes[ref] == 0 else sizes[ref]
        rows.append(
            Row(
                f"Measurement batch: layer 1's curve on the first n training examples against n = {ref_name} "
                f"({r.config.optimizer} L={r.config.depth}, width {result.config.width}, seed {r.config.seed})",
                "measurement",
                f"largest relative deviation at η = {', '.join(f'{e:g}' for e in PROBES)}, initialisation and end: "
                + ", ".join(f"n={n or 'all'}: {deviation[n] * 100:.0f} %" for n in sorted(deviation, key=_all_last)),
                f"n = {used} used ({deviation[r.config.n_measure] * 100:.0f} % from n = {ref_name})"
                if r.config.n_measure in deviation
                else f"n = {used} used",
            )
        )
    by_net: dict[tuple, list[SweepPoint]] = {}
    for p in result.sweep:
        by_net.setdefault((p.optimizer, p.depth, p.residual), []).append(p)
    for (optimizer, depth, residual), sweep in by_net.items():
        rows.append(
            Row(
                f"Learning-rate sweep — {optimizer} L={depth}{' residual' if residual else ''} (first seed)",
                "measurement",
                "final training loss: "
                + ", ".join(
                    f"lr {p.lr:g}: {'diverged' if not np.isfinite(p.final_train_loss) else f'{p.final_train_loss:.3g}'}"
                    for p in sweep
                ),
                f"lr {next(p.lr for p in sweep if p.chosen):g} chosen",
            )
        )
    return rows


def report_rows(result: StudyBreakdownResult) -> list[Row]:
    return _depth_rows(result) + _paper_rows(result) + _bound_rows(result) + _method_rows(result)


def paper_configs(quick: bool, seed: int) -> dict[str, StudyBreakdownConfig]:
    """Across depths (width 32 quick, 256 full) with Fromage, SGD and Adam; in full mode also the paper's own
    Figure-1 nets at its width 784 — depth 2, 16 and residual 16 under Fromage — for the published numbers,
    without the measurement-batch check (at width 784 its whole-set slices cost 3 of the hour's minutes; the
    width-256 study keeps it)."""
    # the quick preview: depths 2 and 16, one seed, SGD at its default rate (no sweep) — its time goes to the
    # other experiments' previews
    preview: dict[str, Any] = dict(depths=(2, 16), seeds=1, swept=()) if quick else {}
    runs = {"study_breakdown": StudyBreakdownConfig(quick=quick, seed=seed, **preview)}
    if not quick:
        runs["study_breakdown_paper"] = StudyBreakdownConfig(
            width=784, depths=(2, 16), residual_depth=16, optimizers=("fromage",), seeds=2, measure_check=(), seed=seed
        )
    return runs


def paper_figures(results: dict[str, StudyBreakdownResult]) -> dict:
    result = results["study_breakdown"]
    figures = {"study_breakdown": summary_figure(result)}
    for optimizer in result.config.optimizers:
        figures[f"study_breakdown_{optimizer}"] = optimizer_figure(result, optimizer)
    if "study_breakdown_paper" in results:
        figures["study_breakdown_paper"] = optimizer_figure(results["study_breakdown_paper"], "fromage")
    return figures


def paper_rows(results: dict[str, StudyBreakdownResult]) -> list[Row]:
    """The across-depth rows; the published-number comparison from the width-784 study when there is one."""
    across = results["study_breakdown"]
    paper = results.get("study_breakdown_paper")
    rows = _depth_rows(across) + _paper_rows(paper or across) + _bound_rows(across) + _method_rows(across)
    if paper is not None:
        rows += _bound_rows(paper) + _method_rows(paper)
    return rows


STUDY = Study(cell.EXPERIMENT, cells, combine)

EXPERIMENT = Experiment(
    StudyBreakdownConfig,
    StudyBreakdownResult,
    run,
    paper_configs,
    paper_figures,
    paper_rows,
    help="Figure 1 during training: Fromage vs SGD vs Adam across depths, with the bounds",
    study=STUDY,
)
