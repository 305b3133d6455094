"""Your own model (trust.core.adapters): real Flax NNX, Flax Linen, Equinox and PyTorch networks, each measured
against an independent computation — the same network written here in plain JAX (or built natively in trust) on
the same weights, with its spec declared by hand — and each leaf an adapter cannot read refused by name.

float32 throughout (the frameworks' default). Logits agree to ~1e-7 relative (the same float32 operations in
another order); the distances are differences of nearly equal float32 quantities on an η grid from 0.01, where
the smallest gradient change is ~1e-2 of the gradient, so rounding of ~1e-7 relative in each gradient is ~1e-5
of a change: they are compared at rtol 1e-4."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trust.base import linalg, spec
from trust.base.errors import TrustError
from trust.base.tree import leaf_names, leaves
from trust.core import measure, nets, perturb

nnx = pytest.importorskip("flax.nnx", reason="the flax extra is not installed")
linen = pytest.importorskip("flax.linen", reason="the flax extra is not installed")
eqx = pytest.importorskip("equinox", reason="the equinox extra is not installed")
pytest.importorskip("safetensors", reason="the safetensors extra is not installed")

from trust.core.adapters.equinox import from_equinox  # noqa: E402
from trust.core.adapters.linen import from_linen  # noqa: E402
from trust.core.adapters.nnx import from_nnx  # noqa: E402
from trust.core.adapters.torch_file import from_torch_file  # noqa: E402

ETAS = np.array([0.0, 0.01, 0.1, 0.5])


@pytest.fixture(autouse=True)
def float32():
    """The frameworks' default precision, as a user runs them (the suite's float64 would promote W + ηU)."""
    with jax.enable_x64(False):
        yield


FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures"


def _batch(shape, seed=1):
    x = jax.random.normal(jax.random.key(seed), shape, jnp.float32)
    return x, jnp.arange(shape[0]) % 10


def _distances(apply, params, x, y, u, roles):
    return measure.relative_distances(apply, params, x, y, u, ETAS, spec=roles)


def _same_distances(a, b, names_a, names_b, zero_gradient=()):
    """Two measurements of one network whose tensors are named differently: every field equal, tensor by tensor.
    ``zero_gradient``: tensors whose gradient is exactly 0 (a bias before BatchNorm on batch statistics, which
    removes any constant): their computed gradient is float32 rounding, so its relative change is noise — checked
    to be at rounding level and left out."""
    order = [names_a.index(n) for n in names_b]
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-5)
    np.testing.assert_allclose(a.function_frob, b.function_frob, rtol=1e-4, atol=1e-7)
    keep = [i for i, n in enumerate(names_b) if n not in zero_gradient]
    for n in zero_gradient:
        assert a.gradient_norm[names_a.index(n)] < 1e-5 * np.max(a.gradient_norm)
    np.testing.assert_allclose(a.gradient[:, order][:, keep], b.gradient[:, keep], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(a.relative_size[:, order], b.relative_size, rtol=1e-5)
    assert tuple(np.asarray(a.is_weight)[order]) == b.is_weight


def _conv_nhwc(x, w, b):
    z = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return z + b.reshape(1, 1, 1, -1)


# ----------------------------------------------------------------------------------------------------- Flax NNX


class NnxCNN(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)
        self.fc = nnx.Linear(4, 10, rngs=rngs)

    def __call__(self, x):
        return self.fc(nnx.relu(self.bn(self.conv(x))).mean(axis=(1, 2)))


def _nnx_reference(p, x, stats=None):
    """The NNX CNN in plain JAX: SAME convolution, BatchNorm (ε 1e-5) with running or batch statistics."""
    z = _conv_nhwc(x, p["conv"]["kernel"], p["conv"]["bias"])
    mean, var = (z.mean(axis=(0, 1, 2)), z.var(axis=(0, 1, 2))) if stats is None else stats
    channel = (1, 1, 1, -1)
    z = (z - mean.reshape(channel)) * jax.lax.rsqrt(var.reshape(channel) + 1e-5) * p["bn"]["scale"].reshape(channel)
    z = z + p["bn"]["bias"].reshape(channel)
    return jax.nn.relu(z).mean(axis=(1, 2)) @ p["fc"]["kernel"] + p["fc"]["bias"][None, :]


NNX_SPEC = {"conv": {"kernel": spec.conv("HWIO"), "bias": spec.bias()}, "bn": {"scale": spec.gain(),
            "bias": spec.shift()}, "fc": {"kernel": spec.dense("in_out"), "bias": spec.bias()}}  # fmt: skip


@pytest.mark.parametrize("mode", ["eval", "batch"])
def test_nnx_cnn_with_batchnorm_is_measured_as_its_plain_jax_twin(mode):
    net = NnxCNN(nnx.Rngs(0))
    rng = np.random.default_rng(0)
    net.bn.mean[...] = jnp.asarray(rng.normal(size=4), jnp.float32)  # running statistics that are not 0 and 1
    net.bn.var[...] = jnp.asarray(rng.uniform(0.5, 2.0, size=4), jnp.float32)
    running = (jnp.asarray(net.bn.mean[...]), jnp.asarray(net.bn.var[...]))
    stats = running if mode == "eval" else None
    model = from_nnx(net, mode)
    assert model.record()["spec"] == spec.record(model.params, NNX_SPEC)
    x, y = _batch((32, 6, 6, 1))
    expected = _nnx_reference(model.params, x, stats)
    np.testing.assert_allclose(model.apply(model.params, x), expected, rtol=1e-5, atol=1e-6)
    if mode == "eval":
        net.eval()
        np.testing.assert_allclose(net(x), expected, rtol=1e-5, atol=1e-6)  # the model itself, eval mode
    grads = measure.full_batch_gradient(model.apply, model.params, x, y)
    u = perturb.along_gradient(model.params, grads)
    got = _distances(model.apply, model.params, x, y, u, model.spec)
    twin = _distances(lambda p, x: _nnx_reference(p, x, stats), model.params, x, y, u, NNX_SPEC)
    names = leaf_names(model.params)
    assert got.is_weight == (False, True, False, True, False, True)  # bn.bias, bn.scale, conv.bias, conv.kernel, …
    _same_distances(got, twin, names, names, ["conv.bias"] if mode == "batch" else [])
    np.testing.assert_array_equal(np.asarray(net.bn.mean[...]), running[0])  # never written back, in either mode


def test_nnx_refuses_what_it_cannot_read_by_name():
    rngs = nnx.Rngs(0)

    class Tied(nnx.Module):
        def __init__(self):
            self.a = nnx.Linear(3, 3, rngs=rngs)
            self.b = nnx.Linear(3, 3, rngs=rngs)
            self.b.kernel = self.a.kernel

        def __call__(self, x):
            return self.b(self.a(x))

    with pytest.raises(TrustError, match=r"tensor a\.kernel is tied to b\.kernel"):
        from_nnx(Tied())

    class Twice(nnx.Module):  # one Linear applied twice: seen while JAX traces the forward pass
        def __init__(self):
            self.fc = nnx.Linear(3, 3, rngs=rngs)
            self.head = nnx.Linear(3, 2, rngs=rngs)

        def __call__(self, x):
            return self.head(nnx.relu(self.fc(nnx.relu(self.fc(x)))))

    x = jnp.ones((2, 3))
    twice = from_nnx(Twice())
    with pytest.raises(TrustError, match=r"module fc is applied 2 times in one forward pass"):
        jax.grad(lambda p: twice.apply(p, x).sum())(twice.params)
    once = from_nnx(nnx.Sequential(nnx.Linear(3, 3, rngs=rngs), nnx.Linear(3, 2, rngs=rngs)))
    assert once.apply(once.params, x).shape == (2, 2)  # each module once: nothing refused (and counted again)

    class Grouped(nnx.Module):
        def __init__(self):
            self.conv = nnx.Conv(4, 4, (3, 3), feature_group_count=2, rngs=rngs)

    with pytest.raises(TrustError, match=r"tensor conv\.kernel of Conv: a grouped convolution \(2 groups\)"):
        from_nnx(Grouped())

    class Transposed(nnx.Module):
        def __init__(self):
            self.up = nnx.ConvTranspose(4, 2, (3, 3), rngs=rngs)

    with pytest.raises(TrustError, match=r"tensor up\.\w+ of ConvTranspose: a transposed convolution"):
        from_nnx(Transposed())

    class Custom(nnx.Module):
        def __init__(self):
            self.fc = nnx.Linear(3, 2, rngs=rngs)
            self.temperature = nnx.Param(jnp.ones(()))

    with pytest.raises(TrustError, match=r"tensor temperature of Custom: trust does not know what Custom\.temperature"):
        from_nnx(Custom())
    declared = from_nnx(Custom(), spec={"temperature": spec.bias()})  # declared by the user: measured
    assert declared.spec["temperature"] == spec.bias() and declared.spec["fc.kernel"] == spec.dense("in_out")
    with pytest.raises(TrustError, match="mode must be one of eval, batch"):
        from_nnx(Custom(), mode="train")


# ----------------------------------------------------------------------------------------------------- Equinox


class EqxCNN(eqx.Module):
    conv: eqx.nn.Conv2d
    norm: eqx.nn.LayerNorm
    fc: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.conv = eqx.nn.Conv2d(1, 4, 3, padding=1, key=k1)
        self.norm = eqx.nn.LayerNorm((4, 6, 6))
        self.fc = eqx.nn.Linear(4, 10, key=k2)

    def __call__(self, x):
        return self.fc(jax.nn.relu(self.norm(self.conv(x))).mean(axis=(1, 2)))


def _eqx_reference(p, x):
    """The Equinox CNN in plain JAX on a dict of its arrays: an OIHW convolution with its (C, 1, 1) bias, LayerNorm
    over (C, H, W) per example (ε 1e-5, elementwise gain and shift), a linear head with an (out, in) weight."""
    z = jax.lax.conv_general_dilated(x, p["cw"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW"))
    z = z + p["cb"][None]
    mean, var = z.mean(axis=(1, 2, 3), keepdims=True), z.var(axis=(1, 2, 3), keepdims=True)
    z = (z - mean) * jax.lax.rsqrt(var + 1e-5) * p["nw"][None] + p["nb"][None]
    return jax.nn.relu(z).mean(axis=(2, 3)) @ p["fw"].T + p["fb"][None, :]


EQX_NAMES = {"conv.weight": "cw", "conv.bias": "cb", "norm.weight": "nw", "norm.bias": "nb", "fc.weight": "fw",
             "fc.bias": "fb"}  # fmt: skip
EQX_SPEC = {"cw": spec.conv("OIHW"), "cb": spec.bias(), "nw": spec.gain(), "nb": spec.shift(),
            "fw": spec.dense("out_in"), "fb": spec.bias()}  # fmt: skip


def _as_dict(tree):
    return {EQX_NAMES[n]: leaf for n, leaf in zip(leaf_names(tree), leaves(tree))}


def test_equinox_cnn_with_layernorm_and_biases_is_measured_as_its_plain_jax_twin():
    model = from_equinox(EqxCNN(jax.random.key(0)))
    roles = model.record()["spec"]
    assert roles["conv.weight"] == "linear (2, 3, 1)→(0,)" and roles["conv.bias"] == "bias"  # (C, 1, 1): a bias
    assert roles["norm.weight"] == "gain" and roles["fc.weight"] == "linear (1,)→(0,)"
    x, y = _batch((32, 1, 6, 6))
    np.testing.assert_allclose(model.apply(model.params, x), _eqx_reference(_as_dict(model.params), x), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    grads = measure.full_batch_gradient(model.apply, model.params, x, y)
    u = perturb.along_gradient(model.params, grads)
    got = _distances(model.apply, model.params, x, y, u, model.spec)
    twin = _distances(_eqx_reference, _as_dict(model.params), x, y, _as_dict(u), EQX_SPEC)
    _same_distances(got, twin, [EQX_NAMES[n] for n in leaf_names(model.params)], leaf_names(_as_dict(model.params)))
    # the OIHW kernel is the HWIO patch matrix: its operator norm is NumPy's of the transposed kernel's (36·1, 4)
    kernel = np.asarray(model.params.conv.weight, dtype=float)
    dense = np.linalg.norm(kernel.transpose(2, 3, 1, 0).reshape(9, 4), 2)
    assert linalg.operator_norms(model.params, spec=model.spec)[0] == pytest.approx(dense, rel=1e-6)
    assert linalg.operator_norms(model.params, spec=model.spec)[2] == pytest.approx(1.0)  # LayerNorm gain ones


def test_equinox_refuses_shared_grouped_and_unknown_leaves():
    key = jax.random.key(0)

    class Grouped(eqx.Module):
        conv: eqx.nn.Conv2d

        def __init__(self):
            self.conv = eqx.nn.Conv2d(4, 4, 3, groups=2, key=key)

    with pytest.raises(TrustError, match=r"tensor conv\.weight of Conv2d: a grouped convolution \(2 groups\)"):
        from_equinox(Grouped())

    class Loose(eqx.Module):
        fc: eqx.nn.Linear
        tables: list

        def __init__(self):
            self.fc = eqx.nn.Linear(3, 2, key=key)
            self.tables = [jnp.ones((2, 2))]

    with pytest.raises(TrustError, match=r"tensor tables\.1 of the model: it is not a field of a layer"):
        from_equinox(Loose())

    class Tied(eqx.Module):
        a: eqx.nn.Linear
        b: eqx.nn.Linear

        def __init__(self):
            self.a = eqx.nn.Linear(3, 3, key=key)
            self.b = eqx.tree_at(lambda m: m.weight, eqx.nn.Linear(3, 3, key=key), self.a.weight)

    with pytest.raises(TrustError, match=r"tensor a\.weight is tied to b\.weight"):
        from_equinox(Tied())

    class Twice(eqx.Module):  # one Linear applied twice: seen while JAX traces the forward pass
        fc: eqx.nn.Linear
        head: eqx.nn.Linear

        def __init__(self):
            self.fc = eqx.nn.Linear(3, 3, key=key)
            self.head = eqx.nn.Linear(3, 2, key=key)

        def __call__(self, x):
            return self.head(jax.nn.relu(self.fc(jax.nn.relu(self.fc(x)))))

    twice = from_equinox(Twice())
    with pytest.raises(TrustError, match=r"module fc is applied 2 times in one forward pass"):
        jax.jit(twice.apply)(twice.params, jnp.ones((2, 3)))


# ------------------------------------------------------------------------------------------------------- Linen


class LinenCNN(linen.Module):
    @linen.compact
    def __call__(self, x, train: bool = False):
        x = linen.Conv(4, (3, 3))(x)
        x = linen.BatchNorm(use_running_average=not train)(x)
        return linen.Dense(10)(linen.relu(x).mean(axis=(1, 2)))


@pytest.mark.parametrize("train", [False, True])
def test_linen_cnn_with_batchnorm_is_measured_as_its_plain_jax_twin(train):
    net = LinenCNN()
    x, y = _batch((32, 6, 6, 1))
    variables = net.init(jax.random.key(0), x)
    rng = np.random.default_rng(0)
    stats = (jnp.asarray(rng.normal(size=4), jnp.float32), jnp.asarray(rng.uniform(0.5, 2, size=4), jnp.float32))
    variables = {"params": variables["params"], "batch_stats": {"BatchNorm_0": {"mean": stats[0], "var": stats[1]}}}
    model = from_linen(net, variables, x, train=train)
    assert ("batch statistics" if train else "stored statistics") in model.source

    def twin(p, x):
        q = {"conv": p["Conv_0"], "bn": p["BatchNorm_0"], "fc": p["Dense_0"]}
        return _nnx_reference(q, x, None if train else stats)

    np.testing.assert_allclose(model.apply(model.params, x), twin(model.params, x), rtol=1e-5, atol=1e-6)
    grads = measure.full_batch_gradient(model.apply, model.params, x, y)
    u = perturb.along_gradient(model.params, grads)
    roles = {"Conv_0.kernel": spec.conv("HWIO"), "Conv_0.bias": spec.bias(), "BatchNorm_0.scale": spec.gain(),
             "BatchNorm_0.bias": spec.shift(), "Dense_0.kernel": spec.dense(), "Dense_0.bias": spec.bias()}  # fmt: skip
    assert model.spec == roles
    names = leaf_names(model.params)
    _same_distances(_distances(model.apply, model.params, x, y, u, model.spec),
                    _distances(twin, model.params, x, y, u, roles), names, names,
                    ["Conv_0.bias"] if train else [])  # fmt: skip


def test_linen_refuses_a_module_applied_twice_and_a_tied_embedding():
    class Twice(linen.Module):
        @linen.compact
        def __call__(self, x):
            dense = linen.Dense(3)
            return dense(linen.relu(dense(x)))

    class Attend(linen.Module):
        @linen.compact
        def __call__(self, x):
            return linen.Embed(10, 4).attend(linen.Dense(4)(x))

    x = jnp.ones((2, 3))
    with pytest.raises(TrustError, match=r"tensor Dense_0\.bias of Dense: the module is applied 2 times"):
        from_linen(Twice(), Twice().init(jax.random.key(0), x), x)
    with pytest.raises(TrustError, match=r"tensor Embed_0\.embedding of Embed: Embed\.attend reuses the embedding"):
        from_linen(Attend(), Attend().init(jax.random.key(0), x), x)
    with pytest.raises(TrustError, match="the variables have no 'params' collection"):
        from_linen(Twice(), {"batch_stats": {}}, x)


# ----------------------------------------------------------------------------------------- PyTorch (safetensors)

TORCH_TO_TRUST = {  # the test's own reading of the fixture's names (scripts/torch_fixture.py) into trust's ResNet
    "stem.weight": (0, "w"), "blocks.0.conv1.weight": (1, "conv1", "w"), "blocks.0.conv2.weight": (1, "conv2", "w"),
    "blocks.1.conv1.weight": (2, "conv1", "w"), "blocks.1.conv2.weight": (2, "conv2", "w"),
    "blocks.1.proj.weight": (2, "proj", "w"), "head.weight": (3, "w"), "head.bias": (3, "b"),
    **{f"blocks.{b}.norm{k}.{t}": (b + 1, f"norm{k}", s) for b in (0, 1) for k in (1, 2)
       for t, s in (("weight", "scale"), ("bias", "shift"))},
    "norm.weight": (3, "norm", "scale"), "norm.bias": (3, "norm", "shift"),
}  # fmt: skip


def _native_resnet():
    """The fixture's ResNet built natively in trust, its weights set from the file by the table above."""
    from safetensors.numpy import load_file

    tensors = load_file(str(FIXTURES / "torch_resnet.safetensors"))
    net = nets.ResNet((8, 8, 1), 10, widths=(4, 8), blocks=(1, 1), norm="batch")
    params = jax.tree_util.tree_map(np.asarray, net.init(jax.random.key(0), jnp.float32))
    for name, where in TORCH_TO_TRUST.items():
        t = tensors[name]
        node = params
        for k in where[:-1]:
            node = node[k]
        node[where[-1]] = jnp.asarray(np.transpose(t, (2, 3, 1, 0)) if t.ndim == 4 else t)
    prefixes = ["blocks.0.norm1", "blocks.0.norm2", "blocks.1.norm1", "blocks.1.norm2", "norm"]
    stats = [(jnp.asarray(tensors[f"{p}.running_mean"]), jnp.asarray(tensors[f"{p}.running_var"])) for p in prefixes]
    return net, params, stats


def test_pytorch_resnet_from_safetensors_gives_pytorchs_logits_and_trusts_distances():
    reference = np.load(FIXTURES / "torch_logits.npz")
    x = jnp.asarray(reference["x"])
    for architecture, image in (("mlp", None), ("resnet", (8, 8, 1))):
        model = from_torch_file(FIXTURES / f"torch_{architecture}.safetensors", architecture, image=image)
        # PyTorch's eval-mode logits, float32 both sides: within 1e-5 relative of their largest
        got = np.asarray(model.apply(model.params, x))
        assert np.max(np.abs(got - reference[architecture])) <= 1e-5 * np.max(np.abs(reference[architecture]))
    net, params, stats = _native_resnet()
    y = jnp.asarray(np.arange(32) % 10)
    grads = measure.full_batch_gradient(model.apply, model.params, x, y)
    u = perturb.along_gradient(model.params, grads)
    native = _distances(lambda p, x: net.apply(p, x, stats), params, x, y, u, None)
    names = leaf_names(params)
    _same_distances(_distances(model.apply, model.params, x, y, u, model.spec), native, names, names)


def test_a_bad_safetensors_file_is_one_clear_error(tmp_path):
    from safetensors.numpy import load_file, save_file

    with pytest.raises(TrustError, match="no safetensors file at"):
        from_torch_file(tmp_path / "missing.safetensors", "mlp")
    (tmp_path / "junk.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(TrustError, match="is not a readable safetensors file"):
        from_torch_file(tmp_path / "junk.safetensors", "mlp")
    tensors = load_file(str(FIXTURES / "torch_resnet.safetensors"))
    save_file({**tensors, "extra.weight": np.ones((2, 2), np.float32)}, str(tmp_path / "extra.safetensors"))
    with pytest.raises(TrustError, match=r"tensor extra\.weight of the file is not part of the 'resnet'"):
        from_torch_file(tmp_path / "extra.safetensors", "resnet", image=(8, 8, 1))
    with pytest.raises(TrustError, match=r"needs the input image as \(H, W, C\)"):
        from_torch_file(FIXTURES / "torch_resnet.safetensors", "resnet")
    with pytest.raises(TrustError, match="architecture must be one of mlp, resnet"):
        from_torch_file(FIXTURES / "torch_resnet.safetensors", "vgg")


# ------------------------------------------------------------------------------- a transformer block, declared


def _block(p, x):
    """One pre-LayerNorm transformer block on sequences ``(n, T, d)``, mean-pooled into a 10-way head: attention
    with kernels ``(d, heads, head_dim)`` and ``(heads, head_dim, d)``, then a ReLU MLP."""

    def norm(h, q):
        mean, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
        return (h - mean) * jax.lax.rsqrt(var + 1e-5) * q["scale"][None, None, :] + q["shift"][None, None, :]

    h = norm(x, p["ln1"])
    q, k, v = (jnp.einsum("ntd,dhk->nthk", h, p["attn"][name]) for name in ("q", "k", "v"))
    weights = jax.nn.softmax(jnp.einsum("nthk,nshk->nhts", q, k) / np.sqrt(q.shape[-1]), axis=-1)
    x = x + jnp.einsum("nhts,nshk,hkd->ntd", weights, v, p["attn"]["o"])
    x = x + jax.nn.relu(norm(x, p["ln2"]) @ p["mlp"]["up"]) @ p["mlp"]["down"]
    return x.mean(axis=1) @ p["head"]


BLOCK_SPEC = {"attn": {"q": spec.linear((0,), (1, 2)), "k": spec.linear((0,), (1, 2)), "v": spec.linear((0,), (1, 2)),
              "o": spec.linear((0, 1), (2,))}, "ln1": {"scale": spec.gain(), "shift": spec.shift()},
              "ln2": {"scale": spec.gain(), "shift": spec.shift()}, "mlp": {"up": spec.dense(), "down": spec.dense()},
              "head": spec.dense()}  # fmt: skip


def _block_params(rng, d, heads, head_dim):
    """The block's parameters: attention kernels ~ N(0, 1/d), unit LayerNorm gains, zero shifts."""
    attention = {k: rng.normal(size=(d, heads, head_dim)) for k in ("q", "k", "v")}
    attention["o"] = rng.normal(size=(heads, head_dim, d))
    dense = {"up": rng.normal(size=(d, 16)), "down": rng.normal(size=(16, d)) * np.sqrt(d) / 4}
    return {"attn": {k: jnp.asarray(v / np.sqrt(d)) for k, v in attention.items()},
            "ln1": {"scale": jnp.ones(d), "shift": jnp.zeros(d)}, "ln2": {"scale": jnp.ones(d), "shift": jnp.zeros(d)},
            "mlp": {k: jnp.asarray(v / np.sqrt(d)) for k, v in dense.items()},
            "head": jnp.asarray(rng.normal(size=(d, 10)) / np.sqrt(d))}  # fmt: skip


def test_a_transformer_block_with_its_spec_declared_is_measured_layer_by_layer():
    rng = np.random.default_rng(0)
    d, heads, head_dim = 8, 2, 4
    params = _block_params(rng, d, heads, head_dim)
    x, y = jnp.asarray(rng.normal(size=(16, 5, d))), jnp.asarray(np.arange(16) % 10)
    with pytest.raises(TrustError, match=r"tensor attn\.k .* is not named as in trust's own nets"):
        spec.layer_flags(params)
    grads = measure.full_batch_gradient(_block, params, x, y)
    u = perturb.along_gradient(params, grads)
    d_ = measure.relative_distances(_block, params, x, y, u, ETAS, spec=BLOCK_SPEC)
    names = leaf_names(params)
    layers = ["attn.k", "attn.o", "attn.q", "attn.v", "head", "ln1.scale", "ln2.scale", "mlp.down", "mlp.up"]
    assert [n for n, w in zip(names, d_.is_weight) if w] == layers
    assert np.all(np.isfinite(d_.gradient)) and np.all(d_.gradient[0] == 0)
    # each attention kernel is the matrix it maps with: (d → heads·head_dim) and (heads·head_dim → d), float64 SVD
    ops = linalg.operator_norms(params, spec=BLOCK_SPEC)
    q = np.asarray(params["attn"]["q"], dtype=float).reshape(d, heads * head_dim)
    o = np.asarray(params["attn"]["o"], dtype=float).reshape(heads * head_dim, d)
    assert ops[names.index("attn.q")] == pytest.approx(np.linalg.norm(q, 2), rel=1e-12)
    assert ops[names.index("attn.o")] == pytest.approx(np.linalg.norm(o, 2), rel=1e-12)
    step = perturb.spectral_step(params, grads, 0.5, spec=BLOCK_SPEC)
    # the step is stored in float32: its size is 0.5 to float32 rounding
    expected = [0.0 if n.endswith("shift") else 0.5 for n in names]  # a zero tensor (the shifts) is not moved
    np.testing.assert_allclose(perturb.spectral_size(step, params, spec=BLOCK_SPEC), expected, rtol=1e-6)


# --------------------------------------------------------------------------------------------- the command line

OWN_MODEL = """
import jax, jax.numpy as jnp
import trust
from trust.core.adapters import Model

def build():
    k = jax.random.split(jax.random.key(0), 3)
    params = {"enc": {"kernel": jax.random.normal(k[0], (64, 16)) / 8},
              "dec": {"kernel": jax.random.normal(k[1], (16, 10)) / 4, "offset": jnp.zeros(10)}}
    def apply(p, x):
        return jnp.tanh(x @ p["enc"]["kernel"]) @ p["dec"]["kernel"] + p["dec"]["offset"][None, :]
    spec = {"enc.kernel": trust.spec.dense(), "dec.kernel": trust.spec.dense(), "dec.offset": trust.spec.bias()}
    return Model(apply, params, spec, "a tanh net"), jax.random.normal(k[2], (50, 64)), jnp.arange(50) % 10
"""


def test_trust_breakdown_takes_your_own_model_and_records_its_spec_and_hash(tmp_path, capsys):
    import json

    from trust.front.cli import main

    module = tmp_path / "mine.py"
    module.write_text(OWN_MODEL)
    out = tmp_path / "run"
    argv = ["breakdown", "--model-file", f"{module}:build", "--eta-steps", "8", "--out", str(out)]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())["config"]
    import hashlib

    assert config["model_sha256"] == hashlib.sha256(module.read_bytes()).hexdigest()
    net = json.loads((out / "results.json").read_text())["net"]
    assert net["kind"] == "own" and net["source"] == "a tanh net" and net["depth"] == 2
    assert net["roles"] == ["linear (0,)→(1,)", "bias", "linear (0,)→(1,)"]  # dec.kernel, dec.offset, enc.kernel
    assert main(argv) == 0 and "reused the finished run" in capsys.readouterr().out
    module.write_text(OWN_MODEL.replace("/ 8}", "/ 9}"))  # another model in the same file: not reused
    assert main(argv) == 2 and "holds a run with a different config" in capsys.readouterr().err
    for bad, message in [
        ([f"{module}:nothing"], "has no function 'nothing'"),
        ([str(module)], "name the function too"),
        ([str(FIXTURES / "torch_mlp.safetensors")], "needs --architecture (mlp or resnet)"),
        ([str(tmp_path / "none.py:f")], "no model file at"),
    ]:
        assert main(["breakdown", "--model-file", *bad, "--dry-run"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_the_assumption_fits_run_on_your_own_model():
    """The slice and both shapes fitted on the declared transformer block: per layer and pooled, each fit the one
    estimate.fit_* gives on the measured columns (the same numbers, float32 inputs fitted in float64)."""
    from trust.core import estimate
    from trust.experiments.assumptions import slice_fits

    rng = np.random.default_rng(1)
    d = 8
    params = _block_params(rng, d, 2, 4)
    x, y = jnp.asarray(rng.normal(size=(16, 5, d))), jnp.asarray(np.arange(16) % 10)
    eta = np.geomspace(1e-3, 0.2, 6)
    attention = {"attention": [0, 1, 2, 3], "rest": [4, 5, 6, 7, 8]}
    fits = slice_fits(_block, params, x, y, eta, BLOCK_SPEC, attention, sharpness_tol=1e-3)
    assert fits.layers[:4] == ("attn.k", "attn.o", "attn.q", "attn.v") and len(fits.layers) == 9
    assert [g.group for g in fits.groups] == ["attention", "rest"] and fits.sharpness > 0
    for i in range(len(fits.layers)):
        drt = estimate.fit_drt_shape(fits.relative_gradient[:, i], fits.drt)
        assert fits.drt_exponent[i] == drt.parameter
    pooled = estimate.fit_lipschitz_shape(fits.relative_gradient[:, :4], fits.lipschitz[:, :4])
    assert fits.groups[0].lipschitz_factor == pooled.parameter
    with pytest.raises(TrustError, match=r"tensor attn\.k .* is not named as in trust's own nets"):
        slice_fits(_block, params, x, y, eta)


def test_trust_assumptions_takes_your_own_model_at_its_given_parameters(tmp_path, capsys):
    import json

    from trust.experiments import load
    from trust.front.cli import main
    from trust.views import VIEWS

    module = tmp_path / "mine.py"
    module.write_text(OWN_MODEL)
    out = tmp_path / "run"
    assert main(["assumptions", "--model-file", f"{module}:build", "--eta-steps", "5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "a tanh net at its given parameters (2 layers in the bounds)" in printed
    assert "α, β measured on trust's own nets only" in printed
    result = load(out)
    assert len(result.points) == 1 and result.layers == ("dec.kernel", "enc.kernel")
    (row,) = VIEWS["assumptions"].rows({"mine": result})  # conftest holds the row to its rules
    assert f"trust assumptions --model-file {module}:build" in row.claim and "given parameters:" in row.verdict
    assert json.loads((out / "config.json").read_text())["config"]["model_sha256"]
