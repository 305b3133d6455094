"""The points in weight space the constants, descent and cos γ experiments measure at: a network at
initialisation and at checkpoints of a real training run (:mod:`trust.core.train`), with its data."""

from __future__ import annotations

from dataclasses import replace

from trust.base.errors import TrustError
from trust.core import data, train


def check_eta_max(eta_max: float) -> None:
    if not eta_max > 0:
        raise TrustError(f"eta_max must be > 0, got {eta_max}")


def train_config(optimizer: str, depth: int, width: int, dataset: str, seed: int) -> train.TrainConfig:
    """The training run a sweep measures at (every other setting at the training loop's default)."""
    return train.TrainConfig(optimizer=optimizer, depth=depth, width=width, dataset=dataset, seed=seed)


def measurement_batch(ds: data.Dataset, n_examples: int):
    """The full training batch the distances are measured on, or its first ``n_examples`` (0: all)."""
    if n_examples:
        return ds.x_train[:n_examples], ds.y_train[:n_examples]
    return ds.x_train, ds.y_train


def checkpoints(config: train.TrainConfig, epochs: tuple[float, ...]) -> tuple[data.Dataset, train.Net, list]:
    """``(dataset, net, [(epoch, params), …])`` for each requested epoch of a training run of ``config``.

    Epoch 0 alone needs no training: the parameters are the run's own initialisation
    (:func:`trust.core.train.initial_params`), so they equal the training run's step-0 checkpoint."""
    ds = train.load_data(config)
    last = max(epochs)
    if last == 0:
        net, params = train.initial_params(config, ds)
        return ds, net, [(0.0, params)]
    config = replace(config, epochs=int(-(-last // 1)), checkpoints=tuple(epochs))
    trained = train.train(config, ds, progress=False)
    wanted = {int(round(e * trained.steps_per_epoch)) for e in epochs}
    return ds, trained.net, [(trained.epoch(s), p) for s, p in trained.checkpoints.items() if s in wanted]
