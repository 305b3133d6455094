"""A jitted training loop over optax optimisers, with checkpoints and diagnostics (docs/theory.md §4–5).

Minibatch steps are one compiled function; the learning rate decays by ``lr_decay`` per epoch (an
optax staircase schedule — for low-precision Madam the decay divides ``lr_factor``). Checkpoints are
requested in (fractional) epochs, as in the paper's Figure 1; curves are full-batch train and test
loss and accuracy per epoch, per-tensor norms, and the fraction of weights at Madam's clip σ*.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from trust.base.errors import Diverged, TrustError
from trust.base.schema import Config, param
from trust.base.tree import leaf_names, leaves
from trust.core import data, nets, optim
from trust.core.losses import cross_entropy

Net = nets.MLP | nets.ResNet


class Optimiser(NamedTuple):
    """How a named optimiser is built: ``make(schedule, config)``, its default learning rate, and whether its
    update is multiplicative (zero weights never move, so biases start nonzero — docs/theory.md §4)."""

    make: Callable
    default_lr: float
    multiplicative: bool = False


OPTIMIZERS: dict[str, Optimiser] = {
    "sgd": Optimiser(lambda lr, c: optim.sgd(lr), 0.1),
    "sgd_momentum": Optimiser(lambda lr, c: optim.sgd(lr, momentum=0.9), 0.01),
    "adam": Optimiser(lambda lr, c: optim.adam(lr), 0.001),
    "fromage": Optimiser(lambda lr, c: optim.fromage(lr), 0.01),
    "lars": Optimiser(lambda lr, c: optim.lars(lr), 0.01),
    "madam": Optimiser(lambda lr, c: optim.madam(lr, p_scale=c.p_scale), 0.01, multiplicative=True),
    "orthogonal_sgd": Optimiser(lambda lr, c: optim.orthogonal_sgd(lr), 0.05),
    "muon": Optimiser(lambda lr, c: optim.muon(lr), 0.02),
    # madam_lns: the learning rate is lr_factor (integer exponent steps per unit of Madam's g*)
    "madam_lns": Optimiser(
        lambda lr, c: optim.madam_lns(levels=2**c.bits, base_lr=c.base_lr, lr_factor=lr, p_scale=c.p_scale),
        10.0,
        multiplicative=True,
    ),
}


def _image(ds: data.Dataset) -> tuple[int, int, int]:
    if ds.image is None:
        raise TrustError("a ResNet needs an image data set (digits, mnist5k, mnist or cifar10), not synthetic vectors")
    return ds.image


# name → ``build(config, dataset)``: the network a run trains (docs/theory.md §1).
MODELS: dict[str, Callable] = {
    "mlp": lambda c, ds: nets.experiment_mlp(
        ds.x_train.shape[1],
        c.width,
        c.depth,
        ds.n_classes,
        residual=c.residual,
        bias=c.bias,
        residual_first=c.residual_first,
        activation=c.activation,
    ),
    "resnet8": lambda c, ds: nets.resnet(_image(ds), ds.n_classes, 8, c.norm, c.channels),
    "resnet16": lambda c, ds: nets.resnet(_image(ds), ds.n_classes, 16, c.norm, c.channels),
    "transformer": lambda c, ds: nets.transformer(_image(ds), ds.n_classes, c.width, c.depth, c.activation),
}


@dataclass(frozen=True)
class TrainConfig(Config):
    """Everything that determines a training run (recorded in its ``config.json``)."""

    optimizer: str = param("fromage", "the optimiser", choices=OPTIMIZERS)
    learning_rate: float = param(0.0, "0: the optimiser's default (madam_lns: lr_factor)", flag="--lr", minimum=0)
    model: str = param(
        "mlp",
        "the network: an MLP (depth, width, residual), a ResNet (norm, channels) or a transformer (depth, width)",
        choices=MODELS,
    )
    depth: int = param(8, "mlp: L, the number of weight matrices; transformer: its blocks", minimum=1)
    width: int = param(128, "mlp: hidden width; transformer: the token width", minimum=1)
    residual: bool = param(False, "mlp: residual hidden layers h + φ(Wh + b)")
    activation: str = param("relu", "mlp, transformer: the nonlinearity φ (gelu, softplus: smooth, no kink)",
                            choices=nets.ACTIVATIONS)  # fmt: skip
    residual_first: bool = param(
        False, "mlp: the first layer too, x + φ(W₁x + b₁) (the authors' residual net; width = the input size)"
    )
    bias: bool = param(True, "mlp: layers carry biases (off: the bias-free nets of the operator-norm theorem)")
    norm: str = param("none", "resnet: normalisation (batch: running statistics for evaluation)", choices=nets.NORMS)
    channels: int = param(16, "resnet: channels of the first stage (then 2× and 4×)", minimum=4)
    epochs: int = param(20, "training epochs", minimum=1)
    batch_size: int = param(8, "minibatch size", minimum=1)
    lr_decay: float = param(0.9, "learning-rate factor per epoch (or per --decay-every steps), in (0, 1]", maximum=1)
    decay_every: int = param(0, "decay the rate every this many optimiser steps (the authors: 240); 0: each epoch",
                             minimum=0)  # fmt: skip
    steps: int = param(0, "optimiser steps to train (the last epoch may be partial); 0: all the epochs", minimum=0)
    dataset: str = param("digits", "data set", choices=data.DATASETS)
    data_dir: str = param("", "directory of the MNIST IDX / CIFAR-10 binary files")
    train_images: int = param(0, "train on the first n training images of the split only (0: all of them)", minimum=0)
    checkpoints: tuple[float, ...] = param(
        (0.0, 0.5, 1.0),
        "epochs (fractions allowed) at which parameters are kept; the end is always kept",
        minimum=0,
        increasing=True,
    )
    checkpoint_steps: tuple[int, ...] = param((), "optimiser steps at which parameters are kept", minimum=0)
    bias_std: float = param(
        0.0, "> 0: biases from N(0, bias_std²); multiplicative optimisers default to 0.01", minimum=0
    )
    gradient_norms: bool = param(False, "record the full-batch training gradient's norm each epoch (+50 % cost)")
    zero_biases: bool = param(False, "biases start at exactly 0 (a multiplicative optimiser never moves them)")
    p_scale: float = param(3.0, "Madam's σ* = p_scale·RMS(p_init); 0: Madam without the clip", minimum=0)
    weight_decay: float = param(
        0.0, "decoupled weight decay: each step also p ← p − η_t·weight_decay·p, every parameter", minimum=0
    )
    clip_norm: float = param(0.0, "> 0: each minibatch gradient clipped to this global norm first", minimum=0)
    bits: int = param(12, "madam_lns: levels = 2^bits", minimum=1, maximum=24)
    base_lr: float = param(0.001, "madam_lns: base precision")
    seed: int = param(0, "random seed")

    def validate(self):
        if self.model == "mlp" and self.norm != "none":
            raise TrustError(f"norm applies to the resnets only, not to model {self.model!r}")
        if self.model != "mlp" and (self.residual or not self.bias or self.activation != "relu"):
            raise TrustError("residual, bias and activation apply to the mlp; a resnet has its own (relu)")
        if self.residual_first and not self.residual:
            raise TrustError("residual_first extends a residual mlp: set residual too")
        if not self.lr_decay > 0:
            raise TrustError(f"lr_decay must lie in (0, 1], got {self.lr_decay}")
        if any(c > self.epochs for c in self.checkpoints):
            raise TrustError(f"checkpoints must lie in [0, epochs={self.epochs}], got {self.checkpoints}")
        if self.base_lr <= 0:
            raise TrustError("base_lr must be > 0")
        if self.p_scale == 0 and self.optimizer != "madam":
            raise TrustError("p_scale 0 (no clip) is for madam; madam_lns needs its σ* > 0")
        if self.zero_biases and (self.bias_std or self.model != "mlp"):
            raise TrustError("zero_biases is for the mlp's biases and excludes bias_std")

    @property
    def lr(self) -> float:
        return self.learning_rate or OPTIMIZERS[self.optimizer].default_lr


def nest_flat_0_3(d: dict, flat_defaults: dict, **training) -> dict:
    """A study cell's config as trust 0.3 stored it — its training fields flat beside the others, ``lr`` for the
    rate, ``flat_defaults`` for those it lacks — in the nested layout ``{"training": {…}, …}``; ``training``
    overrides fields of the nested run (what 0.3 derived when it built it). Unchanged if already nested."""
    if "training" in d:
        return d
    flat = {**flat_defaults, **{k: d[k] for k in flat_defaults if k in d}}
    nested = {k: v for k, v in flat.items() if k != "lr"} | {"learning_rate": flat["lr"]}
    nested.update({k: v(flat) if callable(v) else v for k, v in training.items()})
    return {"training": nested, **{k: v for k, v in d.items() if k not in flat_defaults}}


def learning_rate_at(step, lr, lr_decay, period: int):
    """``lr·lr_decay^⌊step/period⌋``: the rate decayed once every ``period`` optimiser steps (an epoch, or the
    authors' 240 steps) — the formula of ``optax.exponential_decay(lr, period, lr_decay, staircase=True)``, here
    with ``lr`` and ``lr_decay`` as traced values so one compiled step serves every learning rate."""
    return jnp.where(step <= 0, lr, lr * jnp.power(lr_decay, jnp.floor(step / period)))


def total_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    """The optimiser steps of a run: ``config.steps``, or every step of ``config.epochs`` epochs."""
    return config.steps or config.epochs * steps_per_epoch


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """The named optimiser with its learning rate as an injected hyperparameter (``optax.inject_hyperparams``):
    the training step sets it at every step from :func:`learning_rate_at`. With ``clip_norm`` the gradient is
    first clipped to that global norm (``optax.clip_by_global_norm``); with ``weight_decay`` λ the step then adds
    ``−η_t·λ·p`` (decoupled weight decay, ``optax.add_decayed_weights``)."""
    named = OPTIMIZERS[config.optimizer]

    def make(learning_rate):
        chain = [named.make(learning_rate, config)]
        if config.clip_norm:
            chain.insert(0, optax.clip_by_global_norm(config.clip_norm))
        if config.weight_decay:
            chain.append(optax.add_decayed_weights(-learning_rate * config.weight_decay))
        return optax.chain(*chain) if len(chain) > 1 else chain[0]

    return optax.inject_hyperparams(make)(learning_rate=config.lr)


def clip_fraction(opt_state, params) -> float:
    """Fraction of weights at Madam's clip |w| = σ* (for madam_lns: exponent 0); NaN for other optimisers.
    The state is searched by field name, so chained and ``inject_hyperparams`` states work too."""
    exponent = optax.tree.get(opt_state, "exponent")
    if exponent is not None:
        n = leaves(exponent)
        return float(sum(int(jnp.sum(e == 0)) for e in n) / sum(e.size for e in n))
    sigma_max = optax.tree.get(opt_state, "sigma_max")
    if sigma_max is not None:
        at = jax.tree_util.tree_map(lambda p, m: jnp.sum(jnp.abs(p) >= m * (1 - 1e-6)), params, sigma_max)
        return float(sum(int(a) for a in leaves(at)) / sum(p.size for p in leaves(params)))
    return float("nan")


def _keys(config: TrainConfig) -> dict[str, jax.Array]:
    """Separate streams for data, init, biases, the LNS re-draw and the shuffling (explicit keys)."""
    key = jax.random.key(config.seed)
    return {name: jax.random.fold_in(key, i) for i, name in enumerate(("data", "init", "bias", "lns", "shuffle"))}


def load_data(config: TrainConfig) -> data.Dataset:
    """The data set a run of ``config`` trains on (its split is drawn from the run's data key; with
    ``train_images`` the first n training images of that split, the test set unchanged)."""
    ds = data.load(config.dataset, _keys(config)["data"], path=config.data_dir or None)
    return data.first_images(ds, config.train_images) if config.train_images else ds


def initial_params(config: TrainConfig, ds: data.Dataset) -> tuple[Net, list[dict]]:
    """The net and the parameters a run of ``config`` starts from: the net's own init (the MLP: PyTorch's
    default), biases from N(0, bias_std²) for multiplicative optimisers (docs/theory.md §4), log-uniform
    magnitudes for madam_lns."""
    keys = _keys(config)
    net = MODELS[config.model](config, ds)
    params = net.init(keys["init"])
    bias_std = config.bias_std or (0.01 if OPTIMIZERS[config.optimizer].multiplicative else 0.0)
    if config.zero_biases:
        params = [{k: jnp.zeros_like(v) if k == "b" else v for k, v in layer.items()} for layer in params]
    elif bias_std:
        params = nets.nonzero_biases(keys["bias"], params, bias_std)
    if config.optimizer == "madam_lns":
        params = optim.lns_init(keys["lns"], params, 2**config.bits, config.base_lr, config.p_scale)
    return net, params


@dataclass
class Curves:
    """Per-epoch diagnostics (epoch 0 is the initialisation): full-batch loss and accuracy on both splits,
    the fraction of weights at Madam's clip (NaN for other optimisers), every tensor's norm and the norm of the
    full-batch training gradient if asked for (how near a stationary point, docs/theory.md §6.1)."""

    epoch: list[float] = field(default_factory=list)  # whole epochs; the last a fraction if the steps end early
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    clip_fraction: list[float] = field(default_factory=list)
    norms: list[list[float]] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Trained:
    """A finished training run: the net, curves, the kept parameters by optimiser step, and bookkeeping."""

    net: Net
    curves: Curves
    checkpoints: dict[int, list]  # step → params (the last step is the final parameters)
    steps_per_epoch: int
    names: list[str]
    compiles: int  # how often this run traced the minibatch step (0: an earlier run's program was reused)
    minibatch_acc: np.ndarray  # (steps,) each minibatch's training accuracy measured before its update

    @property
    def params(self):
        return self.checkpoints[max(self.checkpoints)]

    def epoch(self, step: int) -> float:
        return step / self.steps_per_epoch


def _checkpoint_steps(config: TrainConfig, steps_per_epoch: int) -> set[int]:
    steps = {int(round(c * steps_per_epoch)) for c in config.checkpoints} | set(config.checkpoint_steps)
    last = total_steps(config, steps_per_epoch)
    if max(steps, default=0) > last:
        raise TrustError(f"checkpoint step {max(steps)} is past the last step {last}")
    return steps


class _Program(NamedTuple):
    """The compiled pieces of a training run: the optimiser, the minibatch step, the full-batch evaluation
    and a count of the step's traces (a Python side effect, so it counts compilations). Both carry the
    BatchNorm running statistics (``None`` for nets without them): the step trains on batch statistics and
    updates the running ones (:func:`trust.core.nets.update_stats`), the evaluation uses the running ones."""

    opt: optax.GradientTransformation
    step: Callable
    evaluate: Callable
    gradient_norm: Callable
    traces: list[int]


_PROGRAMS: dict[tuple, _Program] = {}


def _batchnorm(net: Net) -> nets.ResNet | None:
    """The net if it keeps BatchNorm running statistics, else ``None``."""
    return net if isinstance(net, nets.ResNet) and net.norm == "batch" else None


def _program(net: Net, config: TrainConfig, period: int) -> _Program:
    """One compiled program per net and optimiser, shared by every seed, learning rate and decay (the fields in
    the key are all that the optimiser's construction reads besides the learning rate)."""
    key = (net, config.optimizer, config.p_scale, config.bits, config.base_lr, config.weight_decay, config.clip_norm,
           period)  # fmt: skip
    if key in _PROGRAMS:
        return _PROGRAMS[key]
    opt = make_optimizer(config)
    traces = [0]

    bn = _batchnorm(net)

    def training_loss(params, xb, yb):
        if bn is not None:
            logits, batch = bn.apply_with_stats(params, xb)
            return cross_entropy(logits, yb), (batch, logits)
        logits = net.apply(params, xb)
        return cross_entropy(logits, yb), (None, logits)

    @jax.jit
    def step(params, opt_state, stats, xb, yb, t, lr, lr_decay):
        """One update; returns the minibatch's loss and accuracy measured before it (the authors' metric)."""
        traces[0] += 1  # Python side effect: runs once per trace, i.e. per compilation
        (loss, (batch, logits)), grads = jax.value_and_grad(training_loss, has_aux=True)(params, xb, yb)
        accuracy = jnp.mean(jnp.argmax(logits, -1) == yb)
        rate = learning_rate_at(t, lr, lr_decay, period).astype(opt_state.hyperparams["learning_rate"].dtype)
        opt_state = opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": rate})
        updates, opt_state = opt.update(grads, opt_state, params)
        stats = nets.update_stats(stats, batch) if bn is not None else stats
        return optax.apply_updates(params, updates), opt_state, stats, loss, accuracy

    @jax.jit
    def evaluate(params, stats, x, y):
        logits = bn.apply(params, x, stats) if bn is not None else net.apply(params, x)
        return cross_entropy(logits, y), jnp.mean(jnp.argmax(logits, -1) == y)

    @jax.jit
    def gradient_norm(params, x, y):
        grads = jax.grad(lambda p: training_loss(p, x, y)[0])(params)
        return jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree_util.tree_leaves(grads)))

    _PROGRAMS[key] = program = _Program(opt, step, evaluate, gradient_norm, traces)
    return program


def train(config: TrainConfig, ds: data.Dataset | None = None, progress: bool = True) -> Trained:
    """Train ``config``'s net; returns its curves, checkpoints (params per requested step) and final params.
    A BatchNorm net's curves are in evaluation mode (running statistics); its checkpoints are the parameters."""
    ds = load_data(config) if ds is None else ds
    n_train = ds.x_train.shape[0]
    if config.batch_size > n_train:
        raise TrustError(f"batch size {config.batch_size} exceeds the {n_train} training examples")
    steps_per_epoch = n_train // config.batch_size
    ckpt_steps = _checkpoint_steps(config, steps_per_epoch)
    net, params = initial_params(config, ds)
    opt, step, evaluate, gradient_norm, traces = _program(net, config, config.decay_every or steps_per_epoch)
    last = total_steps(config, steps_per_epoch)
    traces_before = traces[0]
    opt_state = opt.init(params)
    bn = _batchnorm(net)
    stats = bn.initial_stats(params) if bn is not None else None
    dtype = opt_state.hyperparams["learning_rate"].dtype
    rate = (np.asarray(config.lr, dtype), np.asarray(config.lr_decay, dtype))  # traced: no recompilation per rate
    curves = Curves()

    def record(epoch, params, opt_state):
        for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
            loss, acc = evaluate(params, stats, x, y)
            getattr(curves, f"{split}_loss").append(float(loss))
            getattr(curves, f"{split}_acc").append(float(acc))
        curves.epoch.append(epoch)
        curves.clip_fraction.append(clip_fraction(opt_state, params))
        curves.norms.append([float(jnp.linalg.norm(p)) for p in leaves(params)])
        if config.gradient_norms:
            curves.grad_norm.append(float(gradient_norm(params, ds.x_train, ds.y_train)))

    checkpoints = {0: params} if 0 in ckpt_steps else {}
    record(0, params, opt_state)
    t, k_shuffle, minibatch_acc = 0, _keys(config)["shuffle"], []
    x_host, y_host = np.asarray(ds.x_train), np.asarray(ds.y_train)  # minibatches gathered on the host: no op per step
    bar = tqdm(
        range(1, -(-last // steps_per_epoch) + 1),  # the last epoch partial when the steps end inside it
        desc=f"{config.optimizer} L={config.depth}",
        unit="epoch",
        disable=not progress,
        delay=3.0,
        leave=False,
    )
    for epoch in bar:
        order = data.host_rng(jax.random.fold_in(k_shuffle, epoch)).permutation(n_train)
        for b in range(min(steps_per_epoch, last - t)):
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            params, opt_state, stats, loss, acc = step(params, opt_state, stats, x_host[idx], y_host[idx], t, *rate)
            minibatch_acc.append(acc)  # a device scalar: no wait for the step here
            t += 1
            if t in ckpt_steps:
                checkpoints[t] = params
        if not np.isfinite(float(loss)):
            raise Diverged(
                f"{config.optimizer} diverged (loss {float(loss)}) in epoch {epoch}; lower the learning rate", epoch
            )
        record(epoch if t % steps_per_epoch == 0 else t / steps_per_epoch, params, opt_state)
        bar.set_postfix(test_acc=f"{curves.test_acc[-1]:.3f}")
    checkpoints[t] = params
    return Trained(
        net,
        curves,
        {s: checkpoints[s] for s in sorted(checkpoints)},
        steps_per_epoch,
        leaf_names(params),
        traces[0] - traces_before,
        np.asarray(jnp.stack(minibatch_acc), dtype=np.float64) if minibatch_acc else np.empty(0),
    )
