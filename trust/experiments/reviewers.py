"""``trust reviewers``: the reviewers' training questions, each answered by real training runs on the digits
(docs/theory.md §6.1, §6.5–§6.10).

* **fixed_point** (§6.1): is the end of training stationary? The full-batch gradient norm and the loss change
  per epoch for Fromage, LARS and Madam, and Fromage's weight-norm equilibrium under its ``1/√(1+η²)`` factor.
* **lars** (§6.6): weight-norm growth without the factor — LARS against Fromage at η = 0.01 and 0.1, beside
  the growth ``∏_t √(1+η_t²)`` an update orthogonal to ``W`` would give.
* **clip** (§6.7): the fraction of weights at Madam's clip σ* = p_scale·RMS(p_init), for p_scale 1, 2, 3.
* **lr_grid** (§6.8): Madam, Fromage, SGD and Adam over a dense learning-rate grid around each one's default;
  test error relative to each one's best, and the width (in decades) of the rates within twice the best.
* **biases** (§6.8): Madam with biases from N(0, 0.01²) against biases at exactly 0, which it never moves.
* **low_precision** (§6.9): low-precision Madam's accuracy against the bits B at a fixed dynamic range
  (``(2^B − 1)·base_lr`` = 4.095, :func:`trust.core.optim.lns_base`, so ``lr_factor`` scales as ``1/base_lr``),
  and against the base precision at 8 bits.
* **lemma2** (§6.5): Fromage at Lemma 2's rate for each depth, ``η_L = 2^{1/L} − 1``, against the fixed 0.01.
* **lars_wd** (§6.6): LARS with decoupled weight decay λ = η/2 — per step ``1 − η²/2``, Fromage's
  ``1/√(1+η²)`` to second order — against Fromage at the same η (a reviewer: "Fromage is LARS with weight decay").
* **madam_regularisers** (§6.7): Madam without its clip, and without it but with weight decay, against the clip.
* **grad_clip** (§6.10): SGD with its gradient clipped to a global norm against Fromage's relative step, at the
  config's depth and at 16.
* **speed** (§6.8): epochs to SPEED_TARGET test accuracy at each optimiser's best rate on the lr_grid runs.

Every run is a cell of a study (stored and reused on its own); a run that diverges is kept as diverged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from trust.base.schema import Config, Result, Spread, Verdict, param, value
from trust.core import data, optim, train
from trust.experiments.reviewers_answers import Answers, Band, LrGrid, Series
from trust.experiments.shared import curves, rules
from trust.experiments.shared.curves import RunCurves
from trust.experiments.shared.runner import Experiment, Study, run_study

QUESTIONS = ("fixed_point", "lars", "lars_wd", "clip", "madam_regularisers", "lr_grid", "speed", "biases",
             "low_precision", "lemma2", "grad_clip")  # fmt: skip
MADAM_WEIGHT_DECAYS = (0.01, 0.1)  # λ without the clip: over 10 epochs at η ≈ 0.01 a shrink of ~3 % and ~25 %
CLIP_DEPTHS = (16,)  # grad_clip: beside the config's depth
CLIPPED_SGD = ((0.1, 1.0), (1.0, 0.1))  # (rate, global-norm clip): caps spikes only; every step ≤ 0.1 in norm
SPEED_TARGET = 0.9  # speed: test accuracy to reach
LR_GRID_OPTIMIZERS = ("madam", "fromage", "sgd", "adam")
LNS_RANGE = optim.AUTHORS_LOG_RANGE  # (2^B − 1)·base_lr held at the authors' 4.095 (e^4.095 ≈ 60)


@dataclass(frozen=True)
class ReviewersConfig(Config):
    """The questions and their grids; zeros and empty tuples take the full or ``--quick`` defaults."""

    quick: bool = param(False, "the preview: width 32, 3 epochs, 1 seed, shorter grids")
    questions: tuple[str, ...] = param(QUESTIONS, "which questions to answer", choices=QUESTIONS)
    dataset: str = param("digits", "data set", choices=data.names(data.MNIST_SIZED))
    data_dir: str = param("", "directory of the MNIST IDX files (--dataset mnist)")
    depth: int = param(8, "L of the MLP (lemma2 takes its own depths)", minimum=1)
    width: int = param(0, "hidden width; 0: 128 (32 with --quick)", minimum=0)
    epochs: int = param(0, "training epochs; 0: 10 (3 with --quick)", minimum=0)
    batch_size: int = param(32, "minibatch size", minimum=1)
    seeds: int = param(0, "seeds per configuration; 0: 5 (1 with --quick)", minimum=0)
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
            seeds=self.seeds or (1 if q else 5),
            lr_points=self.lr_points or (3 if q else 7),
            bits=self.bits or ((4, 8) if q else (4, 6, 8, 10, 12)),
            base_lrs=self.base_lrs or ((0.004,) if q else (0.004, 0.008, 0.016, 0.032)),
            depths=self.depths or ((2, 8) if q else (2, 4, 8, 16)),
        )

    def clip_depths(self) -> tuple[int, ...]:
        """grad_clip's depths: the config's and CLIP_DEPTHS."""
        return tuple(sorted({self.depth, *CLIP_DEPTHS}))

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


def _name(c: train.TrainConfig) -> str:
    extra = f"_p{c.p_scale:g}" if c.optimizer.startswith("madam") else ""
    if c.optimizer == "madam_lns":
        extra += f"_b{c.bits}_base{c.base_lr:g}"
    if c.zero_biases:
        extra += "_zerobias"
    if c.weight_decay:
        extra += f"_wd{c.weight_decay:g}"
    if c.clip_norm:
        extra += f"_clip{c.clip_norm:g}"
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
        lns = [(b, optim.lns_base(b)) for b in c.bits] + [(8, base) for base in c.base_lrs]
        out["low_precision"] += [
            c.base(s, optimizer="madam_lns", bits=b, base_lr=base, learning_rate=10.0 * 0.001 / base)
            for b, base in dict.fromkeys(lns)
        ]
        out["lemma2"] += [
            c.base(s, optimizer="fromage", depth=d, learning_rate=lr) for d in c.depths for lr in (lemma2_rate(d), 0.01)
        ]
        out["lars_wd"] += [c.base(s, optimizer="fromage", learning_rate=lr) for lr in (0.01, 0.1)]
        out["lars_wd"] += [c.base(s, optimizer="lars", learning_rate=lr, weight_decay=lr / 2) for lr in (0.01, 0.1)]
        out["madam_regularisers"] += [c.base(s, optimizer="madam"), c.base(s, optimizer="madam", p_scale=0.0)]
        out["madam_regularisers"] += [
            c.base(s, optimizer="madam", p_scale=0.0, weight_decay=wd) for wd in MADAM_WEIGHT_DECAYS
        ]
        out["speed"] += out["lr_grid"][-len(LR_GRID_OPTIMIZERS) * c.lr_points :]  # this seed's grid
        for d in c.clip_depths():
            out["grad_clip"] += [c.base(s, optimizer="fromage", depth=d), c.base(s, optimizer="sgd", depth=d)]
            out["grad_clip"] += [c.base(s, optimizer="sgd", depth=d, learning_rate=lr, clip_norm=clip)
                                 for lr, clip in CLIPPED_SGD]  # fmt: skip
    return {q: {_name(t): t for t in out[q]} for q in c.questions}


def cells(config: ReviewersConfig, done: dict) -> dict[str, train.TrainConfig]:
    return {name: t for runs in _runs(config).values() for name, t in runs.items()}


# ------------------------------------------------------------------------------------------------ result


@dataclass(frozen=True, eq=False)
class ReviewersResult(Result):
    config: ReviewersConfig  # resolved
    runs: dict[str, RunCurves]  # cell name → curves
    questions: dict[str, tuple[str, ...]]  # question → its cells
    answers: Answers | None = value(derived=True)

    def derive(self) -> ReviewersResult:
        return replace(self, answers=_answers(self))

    def select(self, question: str, **match) -> list[RunCurves]:
        """The question's runs whose training config has the ``match``ing field values (floats to rounding)."""

        def agrees(config, name, wanted):
            have = getattr(config, "lr" if name == "lr" else name)
            return bool(np.isclose(have, wanted)) if isinstance(wanted, float) else have == wanted

        runs = [self.runs[n] for n in self.questions.get(question, ())]
        return [r for r in runs if all(agrees(r.config, k, v) for k, v in match.items())]


def combine(config: ReviewersConfig, done: dict) -> ReviewersResult:
    runs = _runs(config)
    return ReviewersResult(
        config=config.resolved(),
        runs={name: done[name] for names in runs.values() for name in names},
        questions={q: tuple(names) for q, names in runs.items()},
    ).derive()


def run(config: ReviewersConfig) -> Result:
    return run_study(STUDY, config)


# ------------------------------------------------------------------------------------------------ views


def orthogonal_growth(run: RunCurves) -> np.ndarray:
    """``∏_t √(1+η_t²)`` per epoch for ``run``'s schedule (η decayed by ``lr_decay`` per epoch): the norm growth
    of steps orthogonal to W without Fromage's ``1/√(1+η²)`` factor (docs/theory.md §4.1)."""
    c = run.config
    per_epoch = [0.5 * run.steps_per_epoch * np.log1p((c.lr * c.lr_decay**e) ** 2) for e in range(c.epochs)]
    return np.exp(np.concatenate([[0.0], np.cumsum(per_epoch)]))


def _accuracies(runs: list[RunCurves]) -> list[float]:
    return [100 * (1 - r.final_test_error) for r in runs]


def relative_errors(
    result: ReviewersResult, optimizer: str, question: str = "lr_grid"
) -> tuple[np.ndarray, np.ndarray]:
    """The optimiser's grid and, per rate, the median over seeds of its final test error over the best such
    median on the grid (inf where the median run diverged)."""
    lrs = lr_grid(result.config, optimizer)
    errors = [np.median([r.final_test_error for r in result.select(question, optimizer=optimizer, lr=float(lr))])
              for lr in lrs]  # fmt: skip
    best = max(min(errors), 1e-3)  # a perfect test score would make every ratio infinite
    return lrs, np.array(errors) / best


def robust_decades(lrs, rel, factor: float = 2.0) -> float:
    """The width in decades of the rates whose error is within ``factor`` of the best (grid spacing resolution)."""
    good = np.log10(np.asarray(lrs)[np.asarray(rel) <= factor])
    step = float(np.log10(lrs[1] / lrs[0])) if len(lrs) > 1 else 0.0
    return float(good.max() - good.min() + step) if good.size else 0.0


def _seed_decades(result: ReviewersResult, optimizer: str) -> list[float]:
    """Per seed, the decades of rates within ROBUST_FACTOR of that seed's own best test error."""
    c, lrs = result.config, lr_grid(result.config, optimizer)
    out = []
    for seed in range(c.seed, c.seed + c.seeds):
        errors = np.array([rules.finite_median([r.final_test_error for r in result.select(
            "lr_grid", optimizer=optimizer, lr=float(lr), seed=seed)]) for lr in lrs])  # fmt: skip
        errors = np.where(np.isfinite(errors), errors, np.inf)  # a diverged run: never within the factor
        out.append(robust_decades(lrs, errors / max(errors.min(), 1e-3), rules.ROBUST_FACTOR))
    return out


def _band(runs: list[RunCurves], y) -> Band | None:
    finished = [r for r in runs if not r.diverged_epoch]
    return Band(finished[0].epoch, rules.spread([y(r) for r in finished])) if finished else None


def _answers(result: ReviewersResult) -> Answers:
    c, asked = result.config, result.config.questions
    bands: dict[str, Band | None] = {}
    finals: dict[str, Spread] = {}
    verdicts: dict[str, Verdict] = {}
    lr_grids, growth, series = {}, {}, {}
    if "fixed_point" in asked:
        for opt in ("fromage", "lars", "madam"):
            bands[f"fixed_point {opt} gradient"] = _band(
                result.select("fixed_point", optimizer=opt), lambda r: r.grad_norm
            )
            runs = [r for r in result.select("fixed_point", optimizer=opt) if not r.diverged_epoch]
            g = [r.grad_norm[-1] / r.grad_norm.max() for r in runs]
            dl = [abs(r.train_loss[-1] - r.train_loss[-2]) / r.train_loss[-2] for r in runs]
            finals[f"fixed_point {opt} gradient"] = rules.spread(g)
            finals[f"fixed_point {opt} loss_change"] = rules.spread(dl)
            finals[f"fixed_point {opt} norm"] = rules.spread([r.norm_ratio[-1].mean() for r in runs])
            verdicts[f"fixed_point {opt}"] = rules.stationary(max(g), max(dl), len(runs))
        madam = _accuracies(result.select("fixed_point", optimizer="madam"))
        finals["fixed_point madam accuracy"] = rules.spread(madam)
    if "lars" in asked:
        for lr in (0.01, 0.1):
            norm_end = {}  # each optimiser's ‖W‖ end/init per finished seed
            for opt in ("fromage", "lars"):
                runs = result.select("lars", optimizer=opt, lr=lr)
                bands[f"lars {opt} {lr:g} norm"] = _band(runs, lambda r: r.norm_ratio.mean(axis=1))
                norm_end[opt] = [_end_norm(r) for r in runs]  # a diverged run: NaN, left out by spread and compare
                finals[f"lars {opt} {lr:g} norm"] = rules.spread(norm_end[opt])
            lars = result.select("lars", optimizer="lars", lr=lr)
            predicted = orthogonal_growth(lars[0]) if lars else np.array([np.nan])
            growth[f"{lr:g}"] = Series("epoch", np.arange(len(predicted)), predicted)
            verdicts[f"lars {lr:g}"] = rules.compare(norm_end["lars"], norm_end["fromage"])
    if "clip" in asked:
        for p in (1.0, 2.0, 3.0):
            runs = result.select("clip", p_scale=p)
            bands[f"clip {p:g} fraction"] = _band(runs, lambda r: 100 * r.clip_fraction)
            finals[f"clip {p:g} fraction"] = rules.spread([100 * r.clip_fraction[-1] for r in runs])
            finals[f"clip {p:g} accuracy"] = rules.spread(_accuracies(runs))
        best = max((1.0, 2.0, 3.0), key=lambda p: rules.finite_median(_accuracies(result.select("clip", p_scale=p))))
        at_default = rules.finite_median([100 * r.clip_fraction[-1] for r in result.select("clip", p_scale=3.0)])
        verdicts["clip"] = Verdict("best", f"p_scale {best:g}", at_default, float("nan"), best, c.seeds, at_default,
                                   at_default)  # fmt: skip
    if "lr_grid" in asked:
        for opt in LR_GRID_OPTIMIZERS:
            lrs, rel = relative_errors(result, opt)
            at_rate = [result.select("lr_grid", optimizer=opt, lr=float(lr)) for lr in lrs]
            best = min(rules.finite_median([r.final_test_error for r in at]) for at in at_rate)
            lr_grids[opt] = LrGrid(lrs, train.OPTIMIZERS[opt].default_lr, robust_decades(lrs, rel), rel, best)
        verdicts["lr_grid"] = rules.widest({o: g.decades for o, g in lr_grids.items()},
                                           {o: g.best_error for o, g in lr_grids.items()}, c.seeds)  # fmt: skip
        ranked = sorted((o for o, g in lr_grids.items() if g.best_error <= rules.ROBUST_BEST),
                        key=lambda o: -lr_grids[o].decades)  # fmt: skip
        if len(ranked) > 1:  # the widest against the next widest that also reaches ROBUST_BEST, seed by seed
            top = verdicts["lr_grid"].outcome
            second = next(o for o in ranked if o != top)
            verdicts["lr_grid order"] = rules.compare(_seed_decades(result, top), _seed_decades(result, second))
            finals["lr_grid second"] = rules.spread([LR_GRID_OPTIMIZERS.index(second)])
    if "biases" in asked:
        for key, zero_biases in (("biases zero", True), ("biases normal", False)):
            runs = result.select("biases", zero_biases=zero_biases)
            series[key] = Series("seed", np.array([r.config.seed for r in runs]), np.array(_accuracies(runs)))
        zero, normal = series["biases zero"].y, series["biases normal"].y
        finals["biases zero"], finals["biases normal"] = rules.spread(zero), rules.spread(normal)
        cost = rules.finite_median(normal) - rules.finite_median(zero)
        verdicts["biases"] = Verdict("measured", "cost", cost, float("nan"), cost, c.seeds, cost, cost)
    if "low_precision" in asked:
        by_bits = {b: _accuracies(result.select("low_precision", bits=b, base_lr=optim.lns_base(b))) for b in c.bits}
        by_base = {b: _accuracies(result.select("low_precision", bits=8, base_lr=b)) for b in c.base_lrs}
        finals.update({f"low_precision bits {b}": rules.spread(a) for b, a in by_bits.items()})
        finals.update({f"low_precision base {b:g}": rules.spread(a) for b, a in by_base.items()})
        series["low_precision bits"] = Series(
            "bits", np.array(c.bits), np.array([rules.finite_median(by_bits[b]) for b in c.bits])
        )
        series["low_precision base"] = Series(
            "base_lr", np.array(c.base_lrs), np.array([rules.finite_median(by_base[b]) for b in c.base_lrs])
        )
        verdicts["low_precision"] = rules.enough_bits({b: rules.finite_median(a) for b, a in by_bits.items()}, c.seeds)
    if "lemma2" in asked:
        lemma2: dict[str, list[float]] = {"lemma": [], "fixed": []}
        for d in c.depths:
            lemma, fixed = ([100 * r.final_train_acc for r in result.select("lemma2", depth=d, lr=lr)]
                            for lr in (lemma2_rate(d), 0.01))  # fmt: skip
            finals[f"lemma2 {d} lemma"], finals[f"lemma2 {d} fixed"] = rules.spread(lemma), rules.spread(fixed)
            m_lemma, m_fixed = rules.finite_median(lemma), rules.finite_median(fixed)
            verdicts[f"lemma2 {d}"] = rules.compare(lemma, fixed, paired=True)  # the same seeds at the two rates
            lemma2["lemma"].append(m_lemma)
            lemma2["fixed"].append(m_fixed)
        depths = np.array(c.depths)
        series["lemma2 rate"] = Series("depth", depths, np.array([lemma2_rate(d) for d in c.depths]))
        series.update({f"lemma2 {k}": Series("depth", depths, np.array(v)) for k, v in lemma2.items()})
    if "lars_wd" in asked:
        _lars_wd(result, bands, finals, verdicts)
    if "madam_regularisers" in asked:
        _madam_regularisers(result, finals, verdicts)
    if "speed" in asked:
        _speed(result, finals, verdicts)
    if "grad_clip" in asked:
        _grad_clip(result, finals, verdicts)
    # one table: the orderings (rule compare) Holm-corrected together
    ordered = [k for k, v in verdicts.items() if v.rule == "compare"]
    verdicts.update(zip(ordered, rules.holm([verdicts[k] for k in ordered])))
    return Answers({k: b for k, b in bands.items() if b is not None}, finals, lr_grids, verdicts, growth, series)


def _finished(runs: list[RunCurves]) -> list[RunCurves]:
    return [r for r in runs if not r.diverged_epoch]


def _lars_wd(result: ReviewersResult, bands: dict, finals: dict, verdicts: dict) -> None:
    """LARS with weight decay η/2 against Fromage at η: end/init weight norm and test accuracy, paired by seed
    (the same seed: the same initialisation and minibatches)."""
    for lr in (0.01, 0.1):
        runs = {o: result.select("lars_wd", optimizer=o, lr=lr) for o in ("fromage", "lars")}
        for o, rs in runs.items():
            bands[f"lars_wd {o} {lr:g} norm"] = _band(rs, lambda r: r.norm_ratio.mean(axis=1))
            finals[f"lars_wd {o} {lr:g} norm"] = rules.spread([_end_norm(r) for r in rs])
            finals[f"lars_wd {o} {lr:g} accuracy"] = rules.spread(_accuracies(rs))
        norms = {o: [_end_norm(r) for r in rs] for o, rs in runs.items()}
        verdicts[f"lars_wd {lr:g} norm"] = rules.compare(norms["lars"], norms["fromage"], paired=True)
        accuracy = {o: _accuracies(rs) for o, rs in runs.items()}
        verdicts[f"lars_wd {lr:g} accuracy"] = rules.compare(accuracy["lars"], accuracy["fromage"], paired=True)


def _end_norm(run: RunCurves) -> float:
    return float("nan") if run.diverged_epoch else float(run.norm_ratio[-1].mean())


MADAM_VARIANTS = {  # key → (p_scale, weight decay)
    "clip": (3.0, 0.0),
    "no clip": (0.0, 0.0),
    **{f"no clip, weight decay {wd:g}": (0.0, wd) for wd in MADAM_WEIGHT_DECAYS},
}


def _madam_regularisers(result: ReviewersResult, finals: dict, verdicts: dict) -> None:
    """Madam without its clip (and with weight decay instead) against the clip: test accuracy, final training
    loss, weight-norm growth and divergences; each variant against the clip, paired by seed."""
    accuracy = {}
    for key, (p, wd) in MADAM_VARIANTS.items():
        runs = result.select("madam_regularisers", p_scale=p, weight_decay=wd)
        accuracy[key] = _accuracies(runs)
        finals[f"madam_regularisers {key} accuracy"] = rules.spread(accuracy[key])
        finals[f"madam_regularisers {key} loss"] = rules.spread([r.train_loss[-1] for r in _finished(runs)])
        finals[f"madam_regularisers {key} norm"] = rules.spread([_end_norm(r) for r in runs])
        finals[f"madam_regularisers {key} diverged"] = rules.spread([float(len(runs) - len(_finished(runs)))])
    for key in MADAM_VARIANTS:
        if key != "clip":
            verdicts[f"madam_regularisers {key}"] = rules.compare(accuracy[key], accuracy["clip"], paired=True)


def epochs_to(run: RunCurves, target: float = SPEED_TARGET) -> float:
    """The first epoch whose test accuracy reaches ``target`` (inf: never, or diverged first)."""
    reached = np.flatnonzero(np.nan_to_num(run.test_acc, nan=0.0) >= target)
    return float(run.epoch[reached[0]]) if reached.size else float("inf")


def _speed(result: ReviewersResult, finals: dict, verdicts: dict) -> None:
    """Epochs to SPEED_TARGET test accuracy at each optimiser's best rate of the grid (the lowest median final
    error); the fastest against the second fastest (rule compare on the seeds' epochs; never reached: left out)."""
    epochs = {}
    for opt in LR_GRID_OPTIMIZERS:
        lrs, rel = relative_errors(result, opt, "speed")
        best = float(lrs[int(np.argmin(rel))])
        runs = result.select("speed", optimizer=opt, lr=best)
        epochs[opt] = [epochs_to(r) for r in runs]
        finals[f"speed {opt} epochs"] = rules.spread(epochs[opt])
        finals[f"speed {opt} rate"] = rules.spread([best])
        finals[f"speed {opt} never"] = rules.spread([float(np.sum(~np.isfinite(epochs[opt])))])
    by_speed = sorted(epochs, key=lambda o: (rules.finite_median(epochs[o]) if np.isfinite(epochs[o]).any()
                                             else np.inf))  # fmt: skip
    if not any(np.isfinite(e).any() for e in epochs.values()):
        nan = float("nan")
        verdicts["speed"] = Verdict("measured", f"none reaches {100 * SPEED_TARGET:.0f} %", nan, SPEED_TARGET, nan,
                                    len(epochs[by_speed[0]]), nan, nan)  # fmt: skip
    else:
        verdicts["speed"] = rules.compare(epochs[by_speed[1]], epochs[by_speed[0]])
    finals["speed order"] = rules.spread([[LR_GRID_OPTIMIZERS.index(o) for o in by_speed]])  # one row: the order


CLIP_VARIANTS = {  # key → (optimizer, rate or 0 for the default, global-norm clip)
    "fromage": ("fromage", 0.0, 0.0),
    "sgd": ("sgd", 0.0, 0.0),
    **{f"sgd {lr:g} clipped to {clip:g}": ("sgd", lr, clip) for lr, clip in CLIPPED_SGD},
}


def _grad_clip(result: ReviewersResult, finals: dict, verdicts: dict) -> None:
    """Per depth: test accuracy of Fromage, SGD and clipped SGD, the full-batch gradient norm at initialisation
    (does a clip act?), and Fromage against the best SGD variant (rule compare, paired by seed)."""
    for d in result.config.clip_depths():
        accuracy = {}
        for key, (opt, lr, clip) in CLIP_VARIANTS.items():
            match = dict(optimizer=opt, depth=d, clip_norm=clip) | ({"lr": lr} if lr else {})
            runs = result.select("grad_clip", **match)
            accuracy[key] = _accuracies(runs)
            finals[f"grad_clip {d} {key} accuracy"] = rules.spread(accuracy[key])
            finals[f"grad_clip {d} {key} gradient"] = rules.spread([r.grad_norm[0] for r in runs])
        sgd = max((k for k in CLIP_VARIANTS if k != "fromage"), key=lambda k: rules.finite_median(accuracy[k]))
        verdicts[f"grad_clip {d}"] = rules.compare(accuracy["fromage"], accuracy[sgd], paired=True)
        finals[f"grad_clip {d} best sgd"] = rules.spread([list(CLIP_VARIANTS).index(sgd)])


def paper_configs(quick: bool, seed: int) -> dict[str, ReviewersConfig]:
    return {"reviewers": ReviewersConfig(quick=quick, seed=seed)}


STUDY = Study(curves.EXPERIMENT, cells, combine)

EXPERIMENT = Experiment(
    ReviewersConfig,
    ReviewersResult,
    run,
    paper_configs,
    help="reviewers' training questions: stationarity, LARS, Madam's clip, lr grid, biases, bits, Lemma 2's rate",
    study=STUDY,
)
