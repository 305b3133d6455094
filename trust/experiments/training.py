"""Training runs as an experiment (``trust train``): the curves and every kept checkpoint of one run of
:func:`trust.core.train.train` with any optimiser (docs/theory.md §4)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from trust.base.schema import Result, value
from trust.core import train
from trust.experiments.shared.runner import Experiment

NOT_MADAM = "NaN: the fraction of weights at Madam's clip σ* exists for madam and madam_lns only"


@dataclass(frozen=True)
class TrainCurves:
    """Per epoch (epoch 0: initialisation): full-batch loss and accuracy on both splits, the fraction of
    weights at Madam's clip, and every tensor's norm (epochs × tensors)."""

    epoch: np.ndarray = value(axes=("epoch",))
    train_loss: np.ndarray = value(axes=("epoch",))
    train_acc: np.ndarray = value(axes=("epoch",))
    test_loss: np.ndarray = value(axes=("epoch",))
    test_acc: np.ndarray = value(axes=("epoch",))
    clip_fraction: np.ndarray = value(NOT_MADAM, axes=("epoch",))
    norms: np.ndarray = value(axes=("epoch", "tensor"))
    grad_norm: np.ndarray = value(empty=True, axes=("epoch",))  # the full-batch training gradient's norm (if asked)


@dataclass(frozen=True)
class Checkpoint:
    step: int
    epoch: float


@dataclass(frozen=True, eq=False)
class TrainResult(Result):
    description: str
    curves: TrainCurves
    names: tuple[str, ...]  # tensors, flatten order
    shapes: tuple[tuple[int, ...], ...]  # each tensor's shape
    steps_per_epoch: int
    checkpoints: tuple[Checkpoint, ...]
    compiles: int  # traces of the minibatch step in this run: ≤ 1 means it never recompiled
    # each checkpoint's tensors, flattened and joined in the order of ``names``
    params: np.ndarray = value(bulk=True, axes=("checkpoint", "parameter"))

    def coordinates(self) -> dict[str, list]:
        """Epochs of the curves, tensors by name, checkpoints by optimiser step."""
        steps = [c.step for c in self.checkpoints]
        return {"epoch": list(self.curves.epoch), "tensor": list(self.names), "checkpoint": steps}

    def params_at(self, k: int) -> dict[str, np.ndarray]:
        """Checkpoint ``k``'s tensors by name (the last checkpoint is the end of training)."""
        sizes = [int(np.prod(s)) for s in self.shapes]
        parts = np.split(self.params[k], np.cumsum(sizes)[:-1])
        return {n: p.reshape(s) for n, p, s in zip(self.names, parts, self.shapes)}


def net_label(config: train.TrainConfig) -> str:
    """The trained net in words: ``depth 8 width 128`` (MLP) or ``resnet8 norm batch, 16 channels``."""
    if config.model == "mlp":
        return f"{'residual ' if config.residual else ''}depth {config.depth} width {config.width}"
    return f"{config.model} norm {config.norm}, {config.channels} channels"


def run(config: train.TrainConfig) -> TrainResult:
    """Train and keep the curves and every checkpoint."""
    trained = train.train(config)
    c = trained.curves
    final = jax.tree_util.tree_leaves(trained.params)  # shapes are the same at every checkpoint
    return TrainResult(
        description=(
            f"{config.optimizer} (lr {config.lr}) {net_label(config)} on {config.dataset}, {config.epochs} epochs"
        ),
        curves=TrainCurves(
            epoch=np.asarray(c.epoch),
            train_loss=np.asarray(c.train_loss),
            train_acc=np.asarray(c.train_acc),
            test_loss=np.asarray(c.test_loss),
            test_acc=np.asarray(c.test_acc),
            clip_fraction=np.asarray(c.clip_fraction),
            norms=np.asarray(c.norms),
            grad_norm=np.asarray(c.grad_norm),
        ),
        names=tuple(trained.names),
        shapes=tuple(tuple(p.shape) for p in final),
        steps_per_epoch=trained.steps_per_epoch,
        checkpoints=tuple(Checkpoint(s, trained.epoch(s)) for s in trained.checkpoints),
        compiles=trained.compiles,
        params=np.stack(
            [
                np.concatenate([np.ravel(p) for p in jax.tree_util.tree_leaves(params)])
                for params in trained.checkpoints.values()
            ]
        ),
    )


EXPERIMENT = Experiment(
    train.TrainConfig,
    TrainResult,
    run,
    help="train an MLP or a ResNet with Fromage, LARS, Madam, low-precision Madam, SGD or Adam",
)
