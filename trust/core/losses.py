"""Losses ``loss(outputs, labels) -> scalar``, by name (used by training and by the measurements)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from trust.base.errors import TrustError


def cross_entropy(logits, y):
    """Mean softmax cross-entropy with integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def square_loss(outputs, y):
    """``½·mean_i ‖f(x_i) − onehot(y_i)‖²``."""
    target = jax.nn.one_hot(y, outputs.shape[-1], dtype=outputs.dtype)
    return 0.5 * jnp.mean(jnp.sum((outputs - target) ** 2, -1))


LOSSES: dict[str, Callable] = {"xent": cross_entropy, "mse": square_loss}


def loss_function(loss: str | Callable) -> Callable:
    """``loss(outputs, y)`` for a name in :data:`LOSSES`, or the callable itself."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise TrustError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[loss]
