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

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from trust.base.errors import TrustError
from trust.base.schema import Config, Result, param, value
from trust.core import data, nets, train
from trust.experiments import study_breakdown_summary as summary
from trust.experiments.shared import authors, cell, paper
from trust.experiments.shared.cell import DIVERGED, CellConfig, CellResult, MeasureCheck
from trust.experiments.shared.paper import PROBES, AuthorsComparison
from trust.experiments.shared.runner import Experiment, Study, run_study
from trust.experiments.study_breakdown_summary import BoundClaims, DepthClaim, NetSummary

MODELS = ("mlp", "transformer")  # the nets a study trains (train.MODELS: its ResNets have no depth grid)

# The default checkpoints: six of the paper's ten (its iterations 24 and 96 of 240 as fractions of the first
# epoch, the start of epochs 1 and 3, and the end), cut by cost (docs/theory.md §5.1).
CHECKPOINTS = (0.0, 0.1, 0.4, 1.0, 3.0, 10.0)
QUICK_CHECKPOINTS = (0.0, 1.0, 10.0)


@dataclass(frozen=True)
class StudyBreakdownConfig(Config):
    """The study's grid; zeros and empty tuples take the full or ``--quick`` defaults (see each help)."""

    quick: bool = param(
        False, "the laptop-sized study: width 32, depths 2 4 8 16, 3 seeds, 3 checkpoints, 8 η, 250 examples"
    )
    dataset: str = param("mnist5k", "data set", choices=data.names(data.MNIST_SIZED))
    data_dir: str = param("", "directory of the MNIST IDX files (--dataset mnist)")
    train_images: int = param(0, "train on the first n training images only (0: all; the data-size check)", minimum=0)
    activation: str = param("relu", "the MLPs' nonlinearity (gelu, softplus: smooth)", choices=nets.ACTIVATIONS)
    model: str = param(
        "mlp", "the nets: MLPs, or transformers reading an image's rows as tokens (depths: blocks; width: the token "
        "width; every block is residual, so no --residual-depth)", choices=MODELS,
    )  # fmt: skip
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
    measure_all: bool = param(False, "measure on the whole training set (the authors measured on all 60,000 images)")
    measure_check: tuple[int, ...] = param(
        (125, 250, 1000, 0), "batch sizes checked on depth 16 (else the deepest)", minimum=0
    )
    sharpness_tol: float = param(1e-3, "relative tolerance of the Lanczos sharpness", minimum=1e-12)
    sharpness_along: bool = param(
        True, "the sharpness at W + ηU for the probe η too, at the end of training (the largest is the constant a "
        "Lipschitz-smooth model needs along the slice; three more Lanczos runs a cell)",
    )  # fmt: skip
    matched: bool = param(
        False,
        "the authors' Figure-1 schedule: 2,400 steps (their 10 epochs of 240), the rate ×lr_decay every 240 steps, "
        "slices at their checkpoint steps (depth 16: every 240; the others 0 12 24 48 96 240 720 1200 1680 2160) "
        "and their residual net (the first layer skipped too: width 784)",
    )
    seed: int = param(0, "first seed")

    def validate(self):
        if not self.optimizers or not self.sweep_lrs:
            raise TrustError("give at least one optimizer and sweep learning rate")
        if not self.eta_max > 0 or not self.lr_decay > 0:
            raise TrustError("eta_max and lr_decay must be > 0")
        if any(c > self.epochs for c in self.checkpoints):
            raise TrustError(f"checkpoints must lie in [0, epochs={self.epochs}], got {self.checkpoints}")
        if self.model == "transformer" and (self.residual_depth or self.matched or self.activation != "relu"):
            raise TrustError("a transformer study takes no --residual-depth (give 0), --matched or --activation")
        if 0 < self.residual_depth < 3:
            raise TrustError("a residual MLP needs depth ≥ 3")
        if self.measure_all and self.n_measure:
            raise TrustError("--measure-all measures on the whole training set: drop --n-measure")
        features = data.DATASETS[self.dataset].features
        if self.matched and self.residual_depth and self.hidden_width != features:
            raise TrustError(
                f"--matched: the authors' residual net skips its first layer too, so its width must be the input size "
                f"of {self.dataset}, {features}; got {self.hidden_width} (or give --residual-depth 0)"
            )

    @property
    def hidden_width(self) -> int:
        """The width, or its mode's default."""
        return self.width or (32 if self.quick else 256)

    def resolved(self) -> StudyBreakdownConfig:
        """The config with the mode's defaults filled in."""
        return replace(
            self,
            width=self.hidden_width,
            checkpoints=self.checkpoints
            or tuple(c for c in (QUICK_CHECKPOINTS if self.quick else CHECKPOINTS) if c < self.epochs)
            + (float(self.epochs),),
            n_measure=0 if self.measure_all else self.n_measure or (250 if self.quick else 500),
            # measured on the whole set, the check compares the smaller batches with it
            measure_check=tuple(n for n in self.measure_check if n) if self.measure_all else self.measure_check,
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


def _cell(
    config: StudyBreakdownConfig, optimizer: str, lr: float, depth: int, residual: bool, seed: int, slices=True, **kw
):
    measure = dict(eta=config.eta, n_measure=config.n_measure, sharpness_tol=config.sharpness_tol, **kw)
    if slices and config.sharpness_along:  # a sweep cell (no slices) keeps the default: its stored runs are reused
        measure["sharpness_along"] = True
    schedule: dict[str, Any] = dict(checkpoints=tuple(sorted(set(config.checkpoints) | {0.0, float(config.epochs)})))
    if config.matched:  # the authors' steps, decay and checkpoints (authors.CURVATURE_STEPS), their residual net
        steps = authors.CURVATURE_STEPS[authors.curvature_net(depth, residual)]
        schedule = dict(checkpoints=(), checkpoint_steps=steps if slices else (), steps=authors.FIGURE1_STEPS,
                        decay_every=authors.FIGURE1_DECAY_EVERY, residual_first=residual)  # fmt: skip
    return cell.for_study(
        config, slices=slices, measure=measure, optimizer=optimizer, lr=lr, model=config.model, depth=depth,
        residual=residual, seed=seed, **schedule,
    )  # fmt: skip


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
    nets: tuple[NetSummary, ...] | None = value(derived=True)
    depth_claims: tuple[DepthClaim, ...] | None = value(derived=True)
    paper: tuple[AuthorsComparison, ...] | None = value(derived=True)  # matched studies only: the authors' runs
    bounds: tuple[BoundClaims, ...] | None = value(derived=True)
    measure_check: MeasureCheck | None = value(derived=True)
    depth_exponents: tuple[summary.DepthExponent, ...] | None = value(derived=True)

    def select(self, optimizer: str, depth: int, residual: bool = False) -> list[CellResult]:
        """The cells (one per seed) of one configuration."""
        return [
            r
            for r in self.cells
            if (r.config.training.optimizer, r.config.training.depth, r.config.training.residual)
            == (optimizer, depth, residual)
        ]

    def net(self, optimizer: str, depth: int, residual: bool = False) -> NetSummary | None:
        """The summary of one configuration, or None if the study has no cell of it."""
        assert self.nets is not None, "derive() first"
        return next((n for n in self.nets if (n.optimizer, n.depth, n.residual) == (optimizer, depth, residual)), None)

    def nets_of(self, optimizer: str) -> list[NetSummary]:
        """The summaries of one optimiser's configurations, in the order of ``config.nets``."""
        return [n for d, r in self.config.nets if (n := self.net(optimizer, d, r)) is not None]

    def derive(self) -> StudyBreakdownResult:
        nets = tuple(
            summary.net_summary(self.select(o, d, r), o, d, r)
            for o in self.config.optimizers
            for d, r in self.config.nets
            if self.select(o, d, r)
        )
        done = replace(self, nets=nets)
        return replace(
            done,
            depth_claims=summary.depth_claims(done),
            paper=tuple(
                cmp
                for d, r in self.config.nets
                if self.config.matched and (cmp := paper.comparison(d, r, self.select("fromage", d, r))) is not None
            ),
            bounds=summary.bound_claims(done),
            measure_check=cell.measure_check(self.cells, PROBES),
            depth_exponents=summary.depth_exponents(done),
        )


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
    return StudyBreakdownResult(c, tuple(sweep), measured).derive()


def run(config: StudyBreakdownConfig) -> StudyBreakdownResult:
    result = run_study(STUDY, config)
    assert isinstance(result, StudyBreakdownResult)
    return result


def paper_configs(quick: bool, seed: int) -> dict[str, StudyBreakdownConfig]:
    """Across depths (width 32 quick, 256 full) with Fromage, SGD and Adam; in full mode also the paper's own
    Figure-1 nets at its width 784 — depth 2, 16 and residual 16 under Fromage — for the published numbers,
    without the measurement-batch check (at width 784 its whole-set slices are the costliest part; the
    width-256 study keeps it)."""
    # the quick preview: depths 2 and 16, one seed, SGD at its default rate (no sweep) — its time goes to the
    # other experiments' previews
    preview: dict[str, Any] = dict(depths=(2, 16), seeds=1, swept=()) if quick else {}
    return {"study_breakdown": StudyBreakdownConfig(quick=quick, seed=seed, **preview)}


def long_configs(seed: int) -> dict[str, StudyBreakdownConfig]:
    """The authors' Figure-1 nets at their width 784 and schedule (``matched``) — depth 2, 16 and residual 16 under
    Fromage, two seeds as their two runs — compared with their runs, measured on the whole training set as theirs
    were (500 images measure about half as much: the width-256 study's check); without the sharpness along the
    slice (three more Lanczos runs on 4,000 images a cell, about 6 minutes; the width-256 study has it); and one
    seed of the same on 2,000 of MNIST-5k's 4,000 training images, which says how the data size moves the
    comparison; the study's depth and training claims at depths 2, 16 and 32 on 10 seeds; the study with gelu
    (no relu kinks) at depths 2, 8, 16 under Fromage and Adam, 5 seeds; and the study on transformers of 1, 2 and
    4 blocks (width 64) under Fromage, SGD and Adam, 5 seeds."""
    paper = StudyBreakdownConfig(
        width=784, depths=(2, 16), residual_depth=16, optimizers=("fromage",), seeds=2, measure_check=(), matched=True,
        measure_all=True, sharpness_along=False, seed=seed,
    )  # fmt: skip
    # the data-size check: the same 2,400 steps on half the images (300 passes over each instead of 150), one seed
    half = replace(paper, train_images=2000, seeds=1)
    # the headline depth and training claims on 10 seeds (rule "compare"): the full run's study has 3
    seeds = StudyBreakdownConfig(depths=(2, 16, 32), residual_depth=0, seeds=10, measure_check=(), seed=seed)
    # kinks or depth? the headline study with gelu, a smooth relu (docs/theory.md §5.1)
    smooth = StudyBreakdownConfig(depths=(2, 8, 16), residual_depth=0, optimizers=("fromage", "adam"), seeds=5,
                                  activation="gelu", measure_check=(), seed=seed)  # fmt: skip
    # a model the paper never had (issue 28): transformers of 1, 2 and 4 blocks reading MNIST-5k's rows as tokens
    transformer = StudyBreakdownConfig(
        model="transformer", width=64, depths=(1, 2, 4), residual_depth=0, optimizers=("fromage", "sgd", "adam"),
        seeds=5, measure_check=(), seed=seed,
    )  # fmt: skip
    return {"study_breakdown_paper": paper, "study_breakdown_paper_2000_images": half, "study_breakdown_seeds": seeds,
            "study_breakdown_gelu": smooth, "study_breakdown_transformer": transformer}  # fmt: skip


STUDY = Study(cell.EXPERIMENT, cells, combine)

EXPERIMENT = Experiment(
    StudyBreakdownConfig,
    StudyBreakdownResult,
    run,
    paper_configs,
    help="Figure 1 during training: Fromage vs SGD vs Adam across depths, with the bounds",
    study=STUDY,
    long_configs=long_configs,
)
