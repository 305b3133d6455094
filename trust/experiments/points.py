"""The points in weight space the constants, descent and cos γ experiments measure at: a network at
initialisation and at checkpoints of a real training run (:mod:`trust.train`), with its data."""

from __future__ import annotations

from dataclasses import replace


from trust import data, nets, train
from trust.errors import TrustError


def check_sweep(depths, epochs, n_examples: int) -> None:
    """The checks every depth × checkpoint sweep config shares (one-line errors)."""
    if not depths or min(depths) < 1:
        raise TrustError(f"depths must be ≥ 1, got {depths}")
    if not epochs or min(epochs) < 0:
        raise TrustError(f"epochs must be ≥ 0, got {epochs}")
    if n_examples < 0:
        raise TrustError(f"n_examples must be ≥ 0, got {n_examples}")


def measurement_batch(ds: data.Dataset, n_examples: int):
    """The full training batch the distances are measured on, or its first ``n_examples`` (0: all)."""
    if n_examples:
        return ds.x_train[:n_examples], ds.y_train[:n_examples]
    return ds.x_train, ds.y_train


def checkpoints(config: train.TrainConfig, epochs: tuple[float, ...]) -> tuple[data.Dataset, nets.MLP, list]:
    """``(dataset, net, [(epoch, params), …])`` for each requested epoch of a training run of ``config``.

    Epoch 0 alone needs no training: the parameters are the run's own initialisation
    (:func:`trust.train.initial_params`), so they equal the training run's step-0 checkpoint."""
    ds = train.load_data(config)
    last = max(epochs)
    if last == 0:
        net, params = train.initial_params(config, ds)
        return ds, net, [(0.0, params)]
    config = replace(config, epochs=int(-(-last // 1)), checkpoints=tuple(epochs))
    net, _ = train.initial_params(config, ds)
    out = train.train(config, ds, progress=False)
    wanted = {int(round(e * out["steps_per_epoch"])) for e in epochs}
    return ds, net, [(out["checkpoint_epochs"][s], p) for s, p in out["checkpoints"].items() if s in wanted]

