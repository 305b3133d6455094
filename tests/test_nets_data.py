"""Networks and data sets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trust.base.errors import TrustError
from trust.core import data, nets


def test_theorem1_and_experiment_forms(key):
    t1 = nets.theorem1_mlp((3, 4, 4, 2), "leaky_relu", slope=0.1)
    params = t1.init(key)
    assert [set(p) for p in params] == [{"w"}] * 3
    assert t1.depth == 3
    x = jax.random.normal(key, (5, 3))

    def phi(z):
        return np.where(z >= 0, z, 0.1 * z)

    h = np.asarray(x)
    for p in params:
        h = phi(h @ np.asarray(p["w"]).T)  # φ at every layer, the last one included
    np.testing.assert_allclose(t1.apply(params, x), h, rtol=1e-13)

    ex = nets.experiment_mlp(3, 4, 4, 2, residual=True)
    params = ex.init(key)
    h = np.asarray(x)
    for l, p in enumerate(params):
        z = h @ np.asarray(p["w"]).T + np.asarray(p["b"])
        h = z if l == 3 else (h + np.maximum(z, 0) if l in (1, 2) else np.maximum(z, 0))
    np.testing.assert_allclose(ex.apply(params, x), h, rtol=1e-13)


def test_inits_have_the_documented_scale(key):
    torch_net = nets.experiment_mlp(400, 300, 2, 10)
    w, b = torch_net.init(key)[0]["w"], torch_net.init(key)[0]["b"]
    assert float(jnp.max(jnp.abs(w))) <= 400**-0.5
    assert float(jnp.max(jnp.abs(b))) <= 400**-0.5
    # U(±c) has variance c²/3: 120 000 draws give the std to ~0.3 %, so 2 % is a safe margin
    assert float(jnp.std(w)) == pytest.approx(400**-0.5 / 3**0.5, rel=0.02)
    gauss = nets.experiment_mlp(400, 300, 2, 10, init_scheme="gaussian").init(key)[0]
    assert float(jnp.std(gauss["w"])) == pytest.approx((2 / 400) ** 0.5, rel=0.02)  # He gain for relu
    assert float(jnp.abs(gauss["b"]).max()) == 0.0
    again = nets.experiment_mlp(400, 300, 2, 10).init(key)[0]["w"]
    np.testing.assert_array_equal(w, again)  # same key, same numbers


def test_bad_specs_are_clear_errors():
    with pytest.raises(TrustError, match="unknown activation"):
        nets.MLP((3, 4), activation="swish")
    with pytest.raises(TrustError, match="residual hidden layers must be square"):
        nets.MLP((3, 4, 5, 2), residual=True)
    with pytest.raises(TrustError, match="widths"):
        nets.MLP((3,))


def test_digits_is_standardised_and_deterministic(key):
    ds = data.digits(key)
    assert ds.x_train.shape == (1348, 64)
    assert ds.x_test.shape == (449, 64)
    assert ds.n_classes == 10
    # training features have mean 0 and std 1 (constant pixels stay at 0)
    np.testing.assert_allclose(np.asarray(ds.x_train.mean(0)), 0, atol=1e-12)
    std = np.asarray(ds.x_train.std(0))
    assert np.all((np.abs(std - 1) < 1e-12) | (std == 0))
    assert set(np.unique(np.asarray(ds.y_train))) == set(range(10))
    np.testing.assert_array_equal(ds.y_test, data.digits(key).y_test)
    assert not np.array_equal(ds.y_test, data.digits(jax.random.fold_in(key, 1)).y_test)


def test_synthetic_teacher_labels(key):
    ds = data.synthetic(key, n=400, d=8, n_classes=4)
    assert ds.x_train.shape == (300, 8)
    assert ds.x_test.shape == (100, 8)
    counts = np.bincount(np.asarray(ds.y_train), minlength=4)
    assert counts.min() > 0  # centred teacher logits: no class is empty
    np.testing.assert_array_equal(ds.y_train, data.synthetic(key, n=400, d=8, n_classes=4).y_train)
    with pytest.raises(TrustError, match="unknown dataset"):
        data.load("mnist-from-the-internet", key)


def _write_idx(path, array, magic, compress):
    import gzip

    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    (path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw)) if compress else path.write_bytes(raw))


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_real_idx_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 7)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 2051, compress)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, 2049, compress)
    ds = data.load("mnist", jax.random.key(0), path=tmp_path)
    assert ds.x_train.shape == (20, 784)
    assert ds.x_test.shape == (7, 784)
    np.testing.assert_array_equal(ds.y_test, np.arange(7))
    # pixel 0 → −0.1307/0.3081 and 255 → (1 − 0.1307)/0.3081, the paper's normalisation; float64 round-off only
    images = rng.integers(0, 256, (1, 28, 28))  # the generator's next draw is not these, so re-read one file
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images.repeat(7, axis=0), 2051, compress)
    again = data.mnist(tmp_path)
    np.testing.assert_allclose(again.x_test[3], (images.ravel() / 255 - 0.1307) / 0.3081, rtol=1e-12)


def test_mnist5k_is_the_real_file(key):
    pixels, labels = data.read_mnist5k()
    assert pixels.shape == (5000, 784)
    assert pixels.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels), [500] * 10)  # the file holds 500 images of each digit
    assert pixels.min() == 0
    assert pixels.max() == 255
    assert 0.10 < pixels.mean() / 255 < 0.16  # MNIST's mean ink is 0.1307 of full scale (the normaliser's mean)
    ds = data.mnist5k(key)
    assert ds.x_train.shape == (4000, 784)
    assert ds.x_test.shape == (1000, 784)
    assert ds.n_classes == 10
    lo, hi = -0.1307 / 0.3081, (1 - 0.1307) / 0.3081
    assert float(ds.x_train.min()) == pytest.approx(lo)
    assert float(ds.x_train.max()) == pytest.approx(hi)
    # the split is a permutation of the file: every image lands in exactly one split, classes stay balanced
    ink = (np.asarray(ds.x_train, float) * 0.3081 + 0.1307) * 255  # back to pixel values
    ink_test = (np.asarray(ds.x_test, float) * 0.3081 + 0.1307) * 255
    assert ink.sum() + ink_test.sum() == pytest.approx(float(pixels.sum(dtype=np.int64)), rel=1e-9)
    counts = np.bincount(np.asarray(ds.y_train), minlength=10) + np.bincount(np.asarray(ds.y_test), minlength=10)
    np.testing.assert_array_equal(counts, [500] * 10)
    np.testing.assert_array_equal(ds.y_train, data.load("mnist5k", key).y_train)


def test_mnist_errors(tmp_path):
    with pytest.raises(TrustError, match="not a directory"):
        data.mnist(tmp_path / "nowhere")
    with pytest.raises(TrustError, match="not found"):
        data.mnist(tmp_path)
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 2, 2)), 2049, False)  # wrong magic
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2), 2049, False)
    with pytest.raises(TrustError, match="magic 2051"):
        data.mnist(tmp_path)
    with pytest.raises(TrustError, match="--data-dir"):
        data.load("mnist", jax.random.key(0))


def test_cifar10_reads_real_binary_batches(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "cifar-10-batches-bin"
    root.mkdir()
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for i, name in enumerate(names):
        records = np.concatenate([np.full((3, 1), i % 10), rng.integers(0, 256, (3, 3072))], axis=1)
        (root / name).write_bytes(records.astype(np.uint8).tobytes())
    ds = data.load("cifar10", jax.random.key(0), path=tmp_path)
    assert ds.x_train.shape == (15, 3072)
    assert ds.x_test.shape == (3, 3072)
    np.testing.assert_array_equal(ds.y_test, [5, 5, 5])
    assert ds.image == (32, 32, 3)
    per_channel = np.asarray(ds.x_train).reshape(15, 32, 32, 3)  # HWC rows: the ResNet's layout
    np.testing.assert_allclose(per_channel.mean(axis=(0, 1, 2)), 0, atol=1e-9)
    np.testing.assert_allclose(per_channel.std(axis=(0, 1, 2)), 1, rtol=1e-9)
    # the first training record's blue channel at row 0, column 1, standardised by hand from the raw bytes
    raw = np.concatenate([np.frombuffer((root / n).read_bytes(), np.uint8).reshape(-1, 3073) for n in names[:5]])
    blue = raw[:, 1 + 2048 : 1 + 3072] / 255.0
    expected = (blue[0, 1] - blue.mean()) / blue.std()
    np.testing.assert_allclose(per_channel[0, 0, 1, 2], expected, rtol=1e-9)
    (root / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(TrustError, match="3073-byte records"):
        data.cifar10(tmp_path)


def _numpy_transformer(params, x, image, heads):
    """The transformer of docs/theory.md §1 written again in NumPy float64 from its definition: rows as tokens,
    sinusoidal positions, pre-LayerNorm attention and ReLU MLP blocks, a mean-pooled linear head."""
    n, (tokens, cols, channels) = x.shape[0], image
    h = np.asarray(x, dtype=float).reshape(n, tokens, cols * channels)

    def lin(layer, z):
        return z @ np.asarray(layer["w"]).T + (np.asarray(layer["b"]) if "b" in layer else 0.0)

    def norm(layer, z):
        z = (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + 1e-5)
        return z * np.asarray(layer["scale"]) + np.asarray(layer["shift"])

    d = params[0]["w"].shape[0]
    t = np.arange(tokens)[:, None]
    freq = 1e4 ** (-np.arange(0, d, 2) / d)
    h = lin(params[0], h) + np.concatenate([np.sin(t * freq), np.cos(t * freq)], axis=1)
    for block in params[1:-1]:
        a = norm(block["norm1"], h)
        q, k, v = (lin(block[name], a).reshape(n, tokens, heads, d // heads) for name in ("q", "k", "v"))
        scores = np.einsum("nthk,nshk->nhts", q, k) / np.sqrt(d // heads)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        h = h + lin(block["o"], np.einsum("nhts,nshk->nthk", weights, v).reshape(n, tokens, d))
        h = h + lin(block["down"], np.maximum(lin(block["up"], norm(block["norm2"], h)), 0.0))
    return lin(params[-1], norm(params[-1]["norm"], h).mean(axis=1))


def test_the_transformer_is_its_definition(key):
    """Logits against the NumPy transcription (float64, a few hundred operations: ~1e-14 relative); PyTorch-default
    U(±1/√fan_in) weights; roles read by trust's names; bad shapes refused."""
    from trust.base import spec

    net = nets.transformer((6, 4, 1), 10, width=8, blocks=2)
    params = net.init(key)
    x = jax.random.normal(jax.random.fold_in(key, 1), (5, 24))
    np.testing.assert_allclose(net.apply(params, x), _numpy_transformer(params, x, (6, 4, 1), 2), rtol=1e-12,
                               atol=1e-13)  # fmt: skip
    assert net.depth == 10 and len(net.phi_inputs(params, x)) == 2
    assert float(jnp.max(jnp.abs(params[1]["q"]["w"]))) <= 8**-0.5  # U(±1/√fan_in)
    roles = spec.record(params)
    assert roles["2.q.w"] == "linear (1,)→(0,)" and roles["2.norm1.scale"] == "gain" and roles["3.up.b"] == "bias"
    with pytest.raises(TrustError, match="width must be even and divisible by heads"):
        nets.transformer((6, 4, 1), 10, width=7)
