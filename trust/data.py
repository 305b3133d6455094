"""Data sets. The default is scikit-learn's bundled digits (no download); a synthetic teacher task is
the other built-in. Every split and draw takes an explicit JAX key."""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from trust.errors import TrustError
from trust.nets import experiment_mlp

DATASETS = ("digits", "synthetic")


class Dataset(NamedTuple):
    x_train: jax.Array  # (n_train, d)
    y_train: jax.Array  # (n_train,) integer labels
    x_test: jax.Array
    y_test: jax.Array
    n_classes: int


def _standardise(x_train, x_test):
    """Zero mean, unit variance per feature using training statistics; constant features are centred only."""
    mean = x_train.mean(axis=0, keepdims=True)
    std = x_train.std(axis=0, keepdims=True)
    std = jnp.where(std > 0, std, 1.0)
    return (x_train - mean) / std, (x_test - mean) / std


def host_rng(key: jax.Array) -> np.random.Generator:
    """A NumPy generator seeded by the bits of a JAX key, for host-side draws (shuffles, splits)."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


def _split(key, x, y, test_fraction):
    if not 0.0 < test_fraction < 1.0:
        raise TrustError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    perm = host_rng(key).permutation(x.shape[0])  # NumPy: a device sort costs seconds of compile
    n_test = int(round(test_fraction * x.shape[0]))
    test, train = perm[:n_test], perm[n_test:]
    return x[train], y[train], x[test], y[test]


def digits(key: jax.Array, test_fraction: float = 0.25, dtype=None) -> Dataset:
    """scikit-learn's bundled 8×8 digits (1797 images, 64 features, 10 classes), shuffled by ``key``,
    split into train/test and standardised with the training statistics."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no network access

    raw = load_digits()
    dtype = dtype or jnp.zeros(()).dtype
    x = jnp.asarray(raw.data, dtype)
    y = jnp.asarray(raw.target, jnp.int32)
    x_tr, y_tr, x_te, y_te = _split(key, x, y, test_fraction)
    x_tr, x_te = _standardise(x_tr, x_te)
    return Dataset(x_tr, y_tr, x_te, y_te, 10)


def synthetic(key: jax.Array, n: int = 2000, d: int = 32, n_classes: int = 10, teacher_depth: int = 3,
              teacher_width: int = 64, test_fraction: float = 0.25, dtype=None) -> Dataset:
    """Gaussian inputs ``x ~ N(0, I_d)`` labelled by the argmax of a random relu teacher MLP
    (``teacher_depth`` weight matrices, Gaussian init), its class logits centred over the sample."""
    if min(n, d, n_classes, teacher_depth, teacher_width) < 1 or n_classes < 2:
        raise TrustError("synthetic data needs n, d, teacher_depth, teacher_width ≥ 1 and n_classes ≥ 2")
    dtype = jnp.dtype(dtype or jnp.zeros(()).dtype)
    teacher = experiment_mlp(d, teacher_width, teacher_depth, n_classes, init_scheme="gaussian")
    k_split = jax.random.fold_in(key, 2)
    return Dataset(*_split(k_split, *_teacher_task(teacher, key, n, dtype), test_fraction), n_classes)


@partial(jax.jit, static_argnums=(0, 2, 3))
def _teacher_task(teacher, key, n, dtype):
    x = jax.random.normal(jax.random.fold_in(key, 0), (n, teacher.widths[0]), dtype)
    logits = teacher.apply(teacher.init(jax.random.fold_in(key, 1), dtype), x)
    # centring each class logit over the sample keeps the classes roughly balanced
    y = jnp.argmax(logits - logits.mean(axis=0, keepdims=True), axis=-1).astype(jnp.int32)
    return x, y


def load(name: str, key: jax.Array, dtype=None) -> Dataset:
    """A built-in data set by name."""
    if name == "digits":
        return digits(key, dtype=dtype)
    if name == "synthetic":
        return synthetic(key, dtype=dtype)
    raise TrustError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")

