"""``trust assumptions --model NAME``: does a network follow deep relative trust or Lipschitz smoothness, at
initialisation and after training to near a minimum (docs/theory.md §2.5, §6.2, §6.4)?

At each of the two points, on a fixed measurement batch: the transmission (α, β) of every φ and the
conditioning κ of every layer (the conditions of Theorem 1, §2.2); then the fixed-gradient slice — every tensor
moves by ``η‖W_l‖`` along ``−g_l/‖g_l‖`` — and every layer's relative gradient change ``r_l(η)``. Two
one-parameter shapes are fitted to each group of layers:

* the **DRT shape**, ``ln(1 + r) = c·L·ln(1+η)`` (``c = 1``: the DRT curve ``(1+η)^L − 1`` itself);
* the **Lipschitz shape**, ``r = k·λ‖ΔW‖/‖g_l‖``, linear in η with the slope of the sharpness λ measured at the
  point (``k ≤ 1``: the local bound holds on average).

Each fit reports its parameter, the RMS of ``ln(measured/fitted)`` and its R²; the verdict names the shape that
fits within a factor 2 and at least twice as closely as the other (:func:`trust.core.estimate.shape_verdict`).
Models: MLPs of depth 3 and 16, a residual MLP of depth 16, ResNet-8 and ResNet-16 with any normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import jax
import numpy as np

from trust.base.errors import TrustError
from trust.base.schema import Config, Result, Verdict, param, value
from trust.base.spec import resolve as spec_of
from trust.base.spec import weight_indices
from trust.base.tree import leaf_names, leaf_norms, leaves
from trust.core import bounds, data, estimate, measure, nets, perturb, train
from trust.experiments.shared import own_model, points, rules
from trust.experiments.shared.cell import loss_and_accuracy
from trust.experiments.shared.runner import Experiment

# name → the training configuration's net fields (docs/theory.md §1)
MODELS: dict[str, dict] = {
    "mlp3": dict(model="mlp", depth=3),
    "mlp16": dict(model="mlp", depth=16),
    "residual_mlp16": dict(model="mlp", depth=16, residual=True),
    "resnet8": dict(model="resnet8"),
    "resnet16": dict(model="resnet16"),
    "transformer2": dict(model="transformer", depth=2),  # 2 blocks; width = --width, tokens = the image's rows
}
SINGULAR = "inf where a layer is numerically singular (κ beyond what its dtype can certify)"


@dataclass(frozen=True)
class AssumptionsConfig(Config):
    """One model, trained once; the two points (initialisation, end of training) and how they are measured."""

    model: str = param("mlp3", "the network", choices=MODELS)
    norm: str = param(
        "none",
        "resnets: normalisation (batch: the slice uses the batch's statistics)",
        choices=nets.NORMS,
    )
    dataset: str = param("digits", "data set (resnets need images)", choices=data.names())
    data_dir: str = param("", "directory of the MNIST IDX / CIFAR-10 files")
    width: int = param(128, "mlp: hidden width", minimum=1)
    activation: str = param("relu", "mlp: the nonlinearity (gelu, softplus: smooth, no kink)", choices=nets.ACTIVATIONS)
    # 8, not the training default 16: the cost of 16 channels is in the README, Costs and cuts
    channels: int = param(8, "resnet: channels of the first stage", minimum=4)
    optimizer: str = param("fromage", "the optimiser that trains to near a minimum", choices=train.OPTIMIZERS)
    lr: float = param(0.0, "learning rate; 0: the optimiser's default", minimum=0)
    epochs: int = param(10, "training epochs", minimum=1)
    batch_size: int = param(64, "minibatch size", minimum=1)
    eta_max: float = param(0.2, "the slice's largest η", minimum=1e-6)
    eta_steps: int = param(12, "log-spaced η from eta_max/1000 to eta_max", minimum=3)
    n_measure: int = param(500, "measurement batch: the first n training examples (0: all)", minimum=0)
    sharpness_tol: float = param(1e-3, "relative tolerance of the Lanczos sharpness", minimum=1e-12)
    seed: int = param(0, "random seed")
    model_file: str = own_model.model_file_param()  # measured at its given parameters, instead of --model
    architecture: str = own_model.architecture_param()
    image: tuple[int, ...] = own_model.image_param()
    model_sha256: str = own_model.sha256_param()

    def validate(self):
        own_model.validate(self)
        if self.norm != "none" and not self.model.startswith("resnet"):
            raise TrustError(f"norm applies to the resnets only, not to model {self.model!r}")
        if self.activation != "relu" and self.model.startswith("resnet"):
            raise TrustError("activation applies to the mlps; the resnets use relu")

    def train_config(self) -> train.TrainConfig:
        return train.TrainConfig(
            optimizer=self.optimizer,
            learning_rate=self.lr,
            width=self.width,
            channels=self.channels,
            norm=self.norm,
            epochs=self.epochs,
            batch_size=self.batch_size,
            dataset=self.dataset,
            data_dir=self.data_dir,
            checkpoints=(0.0,),
            seed=self.seed,
            activation=self.activation,
            **MODELS[self.model],
        )

    @property
    def eta(self) -> np.ndarray:
        return np.geomspace(self.eta_max / 1000, self.eta_max, self.eta_steps)

    @property
    def label(self) -> str:
        if self.model_file:  # the file's name (with its function), not its directory: a figure's tick label
            return f"own model {Path(self.model_file).name}"
        return (
            self.model
            + ("" if self.norm == "none" else f" + {self.norm} norm")
            + ("" if self.activation == "relu" else f" ({self.activation})")
        )


@dataclass(frozen=True)
class GroupFit:
    """Both shapes fitted to one group of layers (all their points pooled) and the verdict."""

    group: str
    layers: tuple[str, ...]
    drt_exponent: float  # c in ln(1 + r) = c·ln(1 + DRT)
    drt_rms_log: float
    drt_r2: float
    lipschitz_factor: float  # k in r = k·λ‖ΔW‖/‖g_l‖
    lipschitz_rms_log: float
    lipschitz_r2: float
    verdict: str
    slope_small: float  # d ln r / d ln η over the smaller half of the η grid (smooth: 1; below 1: r jumps)
    slope_large: float  # over the larger half (DRT's shape rises above 1 there)

    @property
    def as_verdict(self) -> Verdict:
        """The stored verdict with the numbers rule "shape" decided it from."""
        return replace(rules.shape(self.drt_rms_log, self.lipschitz_rms_log, self.slope_small), outcome=self.verdict)


@dataclass(frozen=True)
class PointAssumptions:
    """One point (initialisation or the end of training): how near a minimum it is, Theorem 1's conditions, the
    slice and the fits. Arrays over layers follow ``layers`` of the result; ``(e, l)``: η × layer."""

    epoch: float
    train_loss: float
    train_acc: float
    gradient_norm: float  # ‖g‖ over every tensor, on the measurement batch
    sharpness: float  # λ, the largest |eigenvalue| of the loss Hessian on the measurement batch
    alpha: np.ndarray = value(axes=("site",))  # (φ sites,) min over examples of ‖φ(z)‖/‖z‖
    beta: np.ndarray = value(axes=("site",))  # (φ sites,) max over examples
    conditioning: np.ndarray = value(SINGULAR, axes=("layer",))  # (l,) κ of every layer
    relative_gradient: np.ndarray = value(axes=("eta", "layer"))  # (e, l) ‖Δg_l‖/‖g_l‖
    drt: np.ndarray = value(axes=("eta",))  # (e,) ∏(1 + a_l) − 1 over the layers
    lipschitz: np.ndarray = value(axes=("eta", "layer"))  # (e, l) λ‖ΔW‖/‖g_l‖
    drt_exponent: np.ndarray = value(axes=("layer",))  # (l,) c per layer
    lipschitz_factor: np.ndarray = value(axes=("layer",))  # (l,) k per layer
    groups: tuple[GroupFit, ...] = ()


@dataclass(frozen=True, eq=False)
class GroupCurves:
    """One group at one point, along η: the median over its layers of the measured change and of the Lipschitz
    prediction, and the two fitted shapes evaluated on the grid."""

    group: str
    measured: np.ndarray = value(axes=("eta",))  # (e,) median over the group's layers of ‖Δg_l‖/‖g_l‖
    drt_fit: np.ndarray = value(axes=("eta",))  # (e,) (1 + DRT)^c − 1 with the group's fitted c
    lipschitz_fit: np.ndarray = value(axes=("eta",))  # (e,) k · median over the layers of λ‖ΔW‖/‖g_l‖


@dataclass(frozen=True, eq=False)
class AssumptionsResult(Result):
    config: AssumptionsConfig
    description: str
    layers: tuple[str, ...]  # the layers (kernels, matrices, scales), flatten order
    eta: np.ndarray = value(axes=("eta",))
    points: tuple[PointAssumptions, ...] = value()  # initialisation, end of training
    curves: tuple[tuple[GroupCurves, ...], ...] | None = value(derived=True)  # per point, per group
    verdict_counts: tuple[dict[str, int], ...] | None = value(derived=True)  # per point: groups per verdict

    def derive(self) -> AssumptionsResult:
        curves, counts = [], []
        for p in self.points:
            mine = []
            for g in p.groups:
                ix = [self.layers.index(name) for name in g.layers]
                mine.append(
                    GroupCurves(
                        g.group,
                        np.median(p.relative_gradient[:, ix], axis=1),
                        np.expm1(g.drt_exponent * np.log1p(p.drt)),
                        g.lipschitz_factor * np.median(p.lipschitz[:, ix], axis=1),
                    )
                )
            curves.append(tuple(mine))
            tally: dict[str, int] = {}
            for g in p.groups:
                tally[g.verdict] = tally.get(g.verdict, 0) + 1
            counts.append(tally)
        return replace(self, curves=tuple(curves), verdict_counts=tuple(counts))

    def coordinates(self) -> dict[str, list]:
        return {"eta": list(self.eta), "layer": list(self.layers)}


def layer_groups(net, names: list[str], layers: list[int]) -> dict[str, list[int]]:
    """The layers (indices into ``layers``) by group: an MLP's first, hidden and last matrices; a ResNet's stem,
    each stage's kernels (projections included), the normalisation scales and the head; a transformer's embedding,
    attention maps, MLP maps, LayerNorm gains and head."""
    named = [names[i] for i in layers]
    if isinstance(net, nets.Transformer):
        kinds = {"q": "attention", "k": "attention", "v": "attention", "o": "attention", "up": "mlp", "down": "mlp"}
        groups_t: dict[str, list[int]] = {}
        for i, name in enumerate(named):
            parts = name.split(".")
            group = "norm gains" if parts[-1] == "scale" else kinds.get(parts[1] if len(parts) == 3 else "", "")
            group = group or ("embedding" if parts[0] == "1" else "head")
            groups_t.setdefault(group, []).append(i)
        return groups_t
    if not hasattr(net, "blocks"):
        mlp = {"first": [0], "hidden": list(range(1, len(named) - 1)), "last": [len(named) - 1]}
        return {g: ix for g, ix in mlp.items() if ix}
    stage_of = [s for s, count in enumerate(net.blocks) for _ in range(count)]  # block → stage
    head = str(len(stage_of) + 2)
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(named):
        top = name.split(".")[0]
        if name.endswith(".scale"):
            group = "norm scales"
        elif top == "1":
            group = "stem"
        elif top == head:
            group = "head"
        else:
            group = f"stage {stage_of[int(top) - 2] + 1}"
        groups.setdefault(group, []).append(i)
    return groups


def _fit_group(group: str, names, ix, eta, r, drt, lipschitz) -> GroupFit:
    d = estimate.fit_drt_shape(r[:, ix], drt)
    lip = estimate.fit_lipschitz_shape(r[:, ix], lipschitz[:, ix])
    half = len(eta) // 2
    slopes = (estimate.loglog_slope(eta[:half], r[:half, ix]), estimate.loglog_slope(eta[half:], r[half:, ix]))
    verdict = rules.shape(d.rms_log, lip.rms_log, slopes[0]).outcome
    return GroupFit(group, tuple(names[i] for i in ix), *d, *lip, verdict, *slopes)


@dataclass(frozen=True)
class SliceFits:
    """The fixed-gradient slice at one point of any model and both shapes fitted to it (:func:`slice_fits`)."""

    layers: tuple[str, ...]  # the layers by the spec, flatten order
    sharpness: float
    gradient_norm: float
    relative_gradient: np.ndarray  # (e, l)
    drt: np.ndarray  # (e,)
    lipschitz: np.ndarray  # (e, l)
    drt_exponent: np.ndarray  # (l,)
    lipschitz_factor: np.ndarray  # (l,)
    conditioning: np.ndarray  # (l,)
    groups: tuple[GroupFit, ...]


def slice_fits(apply, params, x, y, eta, spec=None, groups=None, sharpness_tol: float = 1e-3, seed: int = 0):
    """Any model's slice and fits at ``params``: every tensor moves by ``η‖W_l‖`` along ``−g_l/‖g_l‖``, each
    layer's relative gradient change is fitted with the DRT shape and the Lipschitz shape (λ the sharpness at
    ``params``), per layer and per group. ``spec`` says which tensors are layers (:mod:`trust.base.spec`);
    ``groups``: group name → indices into the layers (default: one group of them all). Raises where a tensor's
    gradient is zero (the slice's direction is undefined)."""
    eta = np.asarray(eta, dtype=float)
    roles = spec_of(params, spec)
    layers = [i for i, role in enumerate(roles) if role.is_layer]
    grads = measure.full_batch_gradient(apply, params, x, y)
    zero = [n for n, g in zip(leaf_names(params), leaf_norms(grads)) if not g > 0]
    if zero:
        raise TrustError(f"the gradient of tensor {zero[0]} is zero (a dead net?): the slice is undefined")
    dist = measure.relative_distances(apply, params, x, y, perturb.along_gradient(params, grads), eta, spec=roles)
    r = dist.gradient[:, layers]
    drt = bounds.drt_bound(dist.weight_relative_size)
    lam = estimate.sharpness(apply, params, x, y, tol=sharpness_tol, seed=seed)
    lipschitz = bounds.lipschitz_prediction(lam, dist.delta_norm[:, None], 1.0) / dist.gradient_norm[layers][None, :]
    per_layer = [(estimate.fit_drt_shape(r[:, i], drt), estimate.fit_lipschitz_shape(r[:, i], lipschitz[:, i]))
                 for i in range(len(layers))]  # fmt: skip
    names = [dist.names[i] for i in layers]
    groups = {"all layers": list(range(len(layers)))} if groups is None else groups
    return SliceFits(
        layers=tuple(names),
        sharpness=lam,
        gradient_norm=float(np.linalg.norm(dist.gradient_norm)),
        relative_gradient=r,
        drt=drt,
        lipschitz=lipschitz,
        drt_exponent=np.array([d.parameter for d, _ in per_layer]),
        lipschitz_factor=np.array([lip.parameter for _, lip in per_layer]),
        conditioning=np.array([estimate.layer_conditioning(leaves(params)[i], roles[i]) for i in layers]),
        groups=tuple(_fit_group(g, names, ix, eta, r, drt, lipschitz) for g, ix in groups.items()),
    )


def at_point(config: AssumptionsConfig, net, params, x, y, ds, epoch: float) -> PointAssumptions:
    """Everything measured at one point (see the module docstring)."""
    layers = weight_indices(params)
    groups = layer_groups(net, leaf_names(params), layers)
    try:
        fits = slice_fits(net.apply, params, x, y, config.eta, None, groups, config.sharpness_tol, config.seed)
    except TrustError as err:
        raise TrustError(f"at epoch {epoch:g}: {err}") from None
    trans = estimate.transmission(net, params, x)
    # full training set, training mode for BatchNorm: the function the slice measures
    loss, acc = (float(v) for v in loss_and_accuracy(net.apply, params, ds.x_train, ds.y_train))
    measured = {f.name: getattr(fits, f.name) for f in fields(SliceFits) if f.name != "layers"}
    return PointAssumptions(epoch=epoch, train_loss=loss, train_acc=acc, alpha=trans["alpha"], beta=trans["beta"],
                            **measured)  # fmt: skip


def _own(config: AssumptionsConfig) -> AssumptionsResult:
    """An own model (``--model-file``) at its given parameters: one point, its layers in one group; the
    transmission (α, β) is measured on trust's own nets only."""
    key = jax.random.key(config.seed)
    model, x, y = own_model.load(
        config.model_file, config.architecture, config.image, config.dataset, key, config.n_measure
    )  # fmt: skip
    fits = slice_fits(model.apply, model.params, x, y, config.eta, model.spec, None, config.sharpness_tol, config.seed)
    loss, acc = (float(v) for v in loss_and_accuracy(model.apply, model.params, x, y))
    measured = {f.name: getattr(fits, f.name) for f in fields(SliceFits) if f.name != "layers"}
    point = PointAssumptions(epoch=0.0, train_loss=loss, train_acc=acc, alpha=np.zeros(0), beta=np.zeros(0),
                             **measured)  # fmt: skip
    return AssumptionsResult(
        config=config,
        description=f"{model.source} at its given parameters ({len(fits.layers)} layers in the bounds); slice η ∈ "
        f"[{config.eta[0]:.2g}, {config.eta[-1]:.2g}] on {x.shape[0]} examples",
        layers=fits.layers,
        eta=config.eta,
        points=(point,),
    ).derive()


def run(config: AssumptionsConfig) -> AssumptionsResult:
    """Train the model once and measure at its initialisation and at the end of training (an own model: at its
    given parameters)."""
    if config.model_file:
        return _own(config)
    tc = config.train_config()
    ds = train.load_data(tc)
    trained = train.train(tc, ds, progress=False)
    x, y = points.measurement_batch(ds, config.n_measure)
    params0 = trained.checkpoints[0]
    layers = weight_indices(params0)
    return AssumptionsResult(
        config=config,
        description=(
            f"{config.label} ({trained.net.depth} layers on the main path, {len(layers)} in the bounds) on "
            f"{config.dataset}, {config.optimizer} for {config.epochs} epochs; slice η ∈ [{config.eta[0]:.2g}, "
            f"{config.eta[-1]:.2g}] on {x.shape[0]} examples"
        ),
        layers=tuple(leaf_names(params0)[i] for i in layers),
        eta=config.eta,
        points=tuple(
            at_point(config, trained.net, trained.checkpoints[s], x, y, ds, trained.epoch(s))
            for s in (0, max(trained.checkpoints))
        ),
    ).derive()


def _paper_name(model: str, norm: str, activation: str = "relu") -> str:
    return (
        f"assumptions_{model}"
        + ("" if norm == "none" else f"_{norm}")
        + ("" if activation == "relu" else f"_{activation}")
    )


def paper_configs(quick: bool, seed: int) -> dict[str, AssumptionsConfig]:
    """Every model of the reviewers' question, on the digits (8×8 images): MLPs 3, 16, residual 16; ResNet-8
    and ResNet-16 without and with BatchNorm; and the three MLPs with gelu, a smooth relu (is the breakdown relu's
    kinks?). Quick: MLP-3 and the residual MLP-16."""
    grid = [(m, "none", "relu") for m in MODELS] + [("resnet8", "batch", "relu"), ("resnet16", "batch", "relu")]
    grid += [(m, "none", "gelu") for m in ("mlp3", "mlp16", "residual_mlp16")]
    if quick:  # a ResNet's programs are the costliest compiles (README, Costs and cuts): MLPs only in the preview
        grid = [("mlp3", "none", "relu"), ("residual_mlp16", "none", "relu")]
    size: dict[str, Any] = dict(width=32, epochs=3, eta_steps=8, n_measure=250) if quick else {}
    return {
        _paper_name(m, norm, act): AssumptionsConfig(model=m, norm=norm, activation=act, seed=seed, **size)
        for m, norm, act in grid
    }


EXPERIMENT = Experiment(
    AssumptionsConfig,
    AssumptionsResult,
    run,
    paper_configs,
    help="DRT shape or Lipschitz shape? Fits per layer group at init and near a minimum (MLPs, ResNets ± BN)",
)
