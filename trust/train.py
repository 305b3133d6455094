"""A jitted training loop over optax optimisers, with checkpoints and diagnostics (THEORY §4–5).

Minibatch steps are one compiled function; the learning rate decays by ``lr_decay`` per epoch (an
optax staircase schedule — for low-precision Madam the decay divides ``lr_factor``). Checkpoints are
requested in (fractional) epochs, as in the paper's Figure 1; curves are full-batch train and test
loss and accuracy per epoch, per-tensor norms, and the fraction of weights at Madam's clip σ*.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from trust import data, nets, optim
from trust.config import Config
from trust.errors import TrustError
from trust.measure import cross_entropy

OPTIMIZERS = ("sgd", "sgd_momentum", "adam", "fromage", "lars", "madam", "madam_lns")
DEFAULT_LR = {"sgd": 0.1, "sgd_momentum": 0.01, "adam": 0.001, "fromage": 0.01, "lars": 0.01, "madam": 0.01,
              "madam_lns": 10.0}  # madam_lns: the learning rate is lr_factor (integer steps per unit g*)
MULTIPLICATIVE = ("madam", "madam_lns")


@dataclass(frozen=True)
class TrainConfig(Config):
    """Everything that determines a training run (recorded in its ``config.json``)."""

    optimizer: str = "fromage"
    learning_rate: float = 0.0  # 0: the optimiser's default (DEFAULT_LR)
    depth: int = 8
    width: int = 128
    residual: bool = False
    epochs: int = 20
    batch_size: int = 8
    lr_decay: float = 0.9  # × per epoch
    dataset: str = "digits"
    data_path: str = ""
    checkpoints: tuple[float, ...] = (0.0, 0.5, 1.0)  # in epochs; the end of training is always kept
    checkpoint_steps: tuple[int, ...] = ()  # in optimiser steps, besides the epochs
    bias_std: float = 0.0  # > 0: re-draw biases from N(0, bias_std²); multiplicative optimisers default to 0.01
    p_scale: float = 3.0  # Madam's σ* = p_scale·RMS(p_init)
    bits: int = 12  # madam_lns: levels = 2^bits
    base_lr: float = 0.001  # madam_lns: base precision
    seed: int = 0

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise TrustError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if min(self.depth, self.width, self.epochs, self.batch_size) < 1:
            raise TrustError("depth, width, epochs and batch_size must be ≥ 1")
        if not (np.isfinite(self.learning_rate) and self.learning_rate >= 0):
            raise TrustError(f"learning rate must be finite and ≥ 0, got {self.learning_rate}")
        if not 0 < self.lr_decay <= 1:
            raise TrustError(f"lr_decay must lie in (0, 1], got {self.lr_decay}")
        if any(not 0 <= c <= self.epochs for c in self.checkpoints):
            raise TrustError(f"checkpoints must lie in [0, epochs={self.epochs}], got {self.checkpoints}")
        if any(c < 0 for c in self.checkpoint_steps):
            raise TrustError(f"checkpoint steps must be ≥ 0, got {self.checkpoint_steps}")
        if not 1 <= self.bits <= 24 or self.base_lr <= 0 or self.p_scale <= 0 or self.bias_std < 0:
            raise TrustError("need 1 ≤ bits ≤ 24, base_lr > 0, p_scale > 0 and bias_std ≥ 0")

    @property
    def lr(self) -> float:
        return self.learning_rate or DEFAULT_LR[self.optimizer]


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """The named optimiser with its learning rate decayed by ``lr_decay`` once per epoch."""
    schedule = optax.exponential_decay(config.lr, steps_per_epoch, config.lr_decay, staircase=True)
    name = config.optimizer
    if name == "sgd":
        return optim.sgd(schedule)
    if name == "sgd_momentum":
        return optim.sgd(schedule, momentum=0.9)
    if name == "adam":
        return optim.adam(schedule)
    if name == "fromage":
        return optim.fromage(schedule)
    if name == "lars":
        return optim.lars(schedule)
    if name == "madam":
        return optim.madam(schedule, p_scale=config.p_scale)
    return optim.madam_lns(levels=2**config.bits, base_lr=config.base_lr, lr_factor=schedule, p_scale=config.p_scale)


def _clip_fraction(opt_state, params) -> float:
    """Fraction of weights at Madam's clip |w| = σ* (for madam_lns: exponent 0); NaN for other optimisers."""
    if isinstance(opt_state, optim.MadamLNSState):
        n = jax.tree_util.tree_leaves(opt_state.exponent)
        return float(sum(int(jnp.sum(e == 0)) for e in n) / sum(e.size for e in n))
    if isinstance(opt_state, optim.MadamState):
        at = jax.tree_util.tree_map(lambda p, m: jnp.sum(jnp.abs(p) >= m * (1 - 1e-6)), params, opt_state.max)
        return float(sum(int(a) for a in jax.tree_util.tree_leaves(at)) / sum(p.size for p in jax.tree_util.tree_leaves(params)))
    return float("nan")


def _keys(config: TrainConfig) -> dict[str, jax.Array]:
    """Separate streams for data, init, biases, the LNS re-draw and the shuffling (DESIGN: explicit keys)."""
    key = jax.random.key(config.seed)
    return {name: jax.random.fold_in(key, i) for i, name in enumerate(("data", "init", "bias", "lns", "shuffle"))}


def load_data(config: TrainConfig) -> data.Dataset:
    """The data set a run of ``config`` trains on (its split is drawn from the run's data key)."""
    return data.load(config.dataset, _keys(config)["data"], path=config.data_path or None)


def initial_params(config: TrainConfig, ds: data.Dataset) -> tuple[nets.MLP, list[dict]]:
    """The net and the parameters a run of ``config`` starts from: torch-default init, biases from
    N(0, bias_std²) for multiplicative optimisers (THEORY §4), log-uniform magnitudes for madam_lns."""
    keys = _keys(config)
    net = nets.experiment_mlp(ds.x_train.shape[1], config.width, config.depth, ds.n_classes, residual=config.residual)
    params = net.init(keys["init"])
    bias_std = config.bias_std or (0.01 if config.optimizer in MULTIPLICATIVE else 0.0)
    if bias_std:
        params = nets.nonzero_biases(keys["bias"], params, bias_std)
    if config.optimizer == "madam_lns":
        params = optim.lns_init(keys["lns"], params, 2**config.bits, config.base_lr, config.p_scale)
    return net, params


def train(config: TrainConfig, ds: data.Dataset | None = None, progress: bool = True) -> dict:
    """Train ``config``'s MLP; returns curves, checkpoints (params per requested epoch) and final params."""
    if ds is None:
        ds = load_data(config)
    k_shuffle = _keys(config)["shuffle"]
    n_train = ds.x_train.shape[0]
    if config.batch_size > n_train:
        raise TrustError(f"batch size {config.batch_size} exceeds the {n_train} training examples")
    steps_per_epoch = n_train // config.batch_size
    net, params = initial_params(config, ds)
    opt = make_optimizer(config, steps_per_epoch)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        loss, grads = jax.value_and_grad(lambda p: cross_entropy(net.apply(p, xb), yb))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def evaluate(params, x, y):
        logits = net.apply(params, x)
        return cross_entropy(logits, y), jnp.mean(jnp.argmax(logits, -1) == y)

    ckpt_steps = {int(round(c * steps_per_epoch)) for c in config.checkpoints} | set(config.checkpoint_steps)
    if max(ckpt_steps, default=0) > config.epochs * steps_per_epoch:
        raise TrustError(f"checkpoint step {max(ckpt_steps)} is past the last step {config.epochs * steps_per_epoch}")
    checkpoints = {0: params} if 0 in ckpt_steps else {}
    curves = {k: [] for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "clip_fraction", "norms")}

    def record(epoch, params, opt_state):
        for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
            loss, acc = evaluate(params, x, y)
            curves[f"{split}_loss"].append(float(loss))
            curves[f"{split}_acc"].append(float(acc))
        curves["epoch"].append(epoch)
        curves["clip_fraction"].append(_clip_fraction(opt_state, params))
        curves["norms"].append([float(jnp.linalg.norm(p)) for p in jax.tree_util.tree_leaves(params)])

    record(0, params, opt_state)
    t = 0
    bar = tqdm(range(1, config.epochs + 1), desc=f"{config.optimizer} L={config.depth}", unit="epoch",
               disable=not progress, delay=3.0, leave=False)
    for epoch in bar:
        order = data.host_rng(jax.random.fold_in(k_shuffle, epoch)).permutation(n_train)
        for b in range(steps_per_epoch):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            params, opt_state, loss = step(params, opt_state, ds.x_train[idx], ds.y_train[idx])
            t += 1
            if t in ckpt_steps:
                checkpoints[t] = params
        if not np.isfinite(float(loss)):
            raise TrustError(f"{config.optimizer} diverged (loss {float(loss)}) in epoch {epoch}; lower the learning rate")
        record(epoch, params, opt_state)
        bar.set_postfix(test_acc=f"{curves['test_acc'][-1]:.3f}")
    checkpoints[t] = params
    return {
        "curves": curves,
        "checkpoints": {s: checkpoints[s] for s in sorted(checkpoints)},
        "checkpoint_epochs": {s: s / steps_per_epoch for s in sorted(checkpoints)},
        "steps_per_epoch": steps_per_epoch,
        "params": params,
        "names": nets.leaf_names(params),
        "compiles": step._cache_size(),
    }


def run(config: TrainConfig) -> tuple[dict, dict]:
    """Train and package for a run directory: JSON-ready results, and every checkpoint as arrays
    named ``step<k>/<tensor>`` (the final parameters are the last checkpoint)."""
    out = train(config)
    c = out["curves"]
    results = {
        "curves": c,
        "names": out["names"],
        "steps_per_epoch": out["steps_per_epoch"],
        "checkpoints": [{"step": s, "epoch": e} for s, e in out["checkpoint_epochs"].items()],
        "summary": {"train_acc": c["train_acc"][-1], "test_acc": c["test_acc"][-1], "test_loss": c["test_loss"][-1],
                    "clip_fraction": c["clip_fraction"][-1], "compiles": out["compiles"]},
    }
    arrays = {f"step{s}/{n}": np.asarray(leaf) for s, params in out["checkpoints"].items()
              for n, leaf in zip(out["names"], jax.tree_util.tree_leaves(params))}
    return results, arrays
