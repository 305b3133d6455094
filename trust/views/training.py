"""Views of ``trust train``: the CLI summary."""

from __future__ import annotations

from trust.experiments.training import TrainResult


def summary(result: TrainResult) -> str:
    c = result.curves
    return (
        f"{result.description}: train acc {c.train_acc[-1]:.4f}, test acc {c.test_acc[-1]:.4f}, "
        f"test loss {c.test_loss[-1]:.4f}"
    )


def figures(results: dict[str, TrainResult]) -> dict:
    """None: a training run's curves are in its JSON (``trust train --json``)."""
    return {}


def rows(results: dict[str, TrainResult]) -> list:
    return []
