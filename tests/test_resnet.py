"""The convolutional ResNet (docs/theory.md §1): shapes, the convolution against NumPy, normalisation modes and
kernels treated as layers by the perturbations and measurements."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trust.base import spec, tree
from trust.base.errors import TrustError
from trust.core import bounds, measure, nets, perturb


def _images(key, n=6, image=(8, 8, 1)):
    return jax.random.normal(key, (n, *image))


def _numpy_conv(h, w, stride):
    """NHWC × HWIO convolution with TensorFlow's SAME padding, by loops (independent of lax)."""
    n, height, width, _ = h.shape
    k, _, _, c_out = w.shape
    out_h, out_w = -(-height // stride), -(-width // stride)
    pad_h = max((out_h - 1) * stride + k - height, 0)
    pad_w = max((out_w - 1) * stride + k - width, 0)
    padded = np.pad(h, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = np.zeros((n, out_h, out_w, c_out))
    for i in range(out_h):
        for j in range(out_w):
            patch = padded[:, i * stride : i * stride + k, j * stride : j * stride + k, :]
            out[:, i, j, :] = np.einsum("nabc,abcd->nd", patch, w)
    return out


@pytest.mark.parametrize("stride,size,shape", [(1, 3, (2, 5, 5, 3)), (2, 3, (2, 8, 8, 2)), (2, 1, (1, 7, 7, 2))])
def test_convolution_matches_numpy(key, stride, size, shape):
    h = np.asarray(jax.random.normal(key, shape))
    w = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (size, size, shape[-1], 4)))
    # float64 sums of ≤ 27 products of O(1) numbers: agreement to ~1e-14
    got = nets._conv(jnp.asarray(h), jnp.asarray(w), stride)
    np.testing.assert_allclose(got, _numpy_conv(h, w, stride), atol=1e-12)


@pytest.mark.parametrize(
    "depth,image,norm", [(8, (8, 8, 1), norm) for norm in nets.NORMS] + [(16, (28, 28, 1), "batch")]
)
def test_resnet_shapes_and_layers(key, depth, image, norm):
    net = nets.resnet(image, 10, depth=depth, norm=norm, width=4)
    params = net.init(key)
    x = _images(jax.random.fold_in(key, 1), 3, image)
    apply = jax.jit(net.apply)  # one compile per shape instead of one per eager op
    out = apply(params, x.reshape(3, -1))  # flat input, as the data sets give it
    assert out.shape == (3, 10)
    assert bool(jnp.all(jnp.isfinite(out)))
    np.testing.assert_array_equal(out, apply(params, x))  # the same images in NHWC
    names = [tree.leaf_names(params)[i] for i in spec.weight_indices(params)]
    kernels = [n for n in names if n.endswith(".w")]
    main_path = [n for n in kernels if not n.endswith("proj.w")]
    assert len(main_path) == net.depth == depth  # stem, two kernels per block and the head
    assert sum(n.endswith("proj.w") for n in names) == 2  # one projection where each later stage begins
    assert kernels[0] == "1.w"
    assert kernels[-1] == f"{len(params)}.w"  # flatten order follows the forward pass
    # the normalisation scales are layers too (diag(s)), the shifts and the head's bias are not
    scales = [n for n in names if n.endswith(".scale")]
    assert len(scales) == (0 if norm == "none" else 2 * sum(net.blocks) + 1)
    assert len(names) == len(kernels) + len(scales)
    assert not any(n.endswith((".shift", ".b")) for n in names)


def test_bad_specs_are_clear_errors():
    for kwargs, match in (
        (dict(norm="instance"), "unknown norm 'instance'"),
        (dict(norm="group", groups=3), "divisible by groups=3"),
        (dict(blocks=(1, 1)), "one positive width and block count per stage"),
    ):
        with pytest.raises(TrustError, match=match):
            nets.ResNet((8, 8, 1), 10, **kwargs)
    with pytest.raises(TrustError, match="resnet depth must be one of 8, 16"):
        nets.resnet((8, 8, 1), 10, depth=12)


def test_batchnorm_train_and_eval_modes(key):
    net = nets.resnet((8, 8, 1), 10, norm="batch", width=4)
    params, x = net.init(key), _images(jax.random.fold_in(key, 1), 8)
    stats = net.batch_stats(params, x)
    assert len(stats) == 2 * sum(net.blocks) + 1
    mean, var = stats[0]  # the first normalisation sees the stem's output: per channel over batch and image
    stem = np.asarray(nets._conv(x, params[0]["w"], 1))
    np.testing.assert_allclose(mean, stem.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(var, stem.var(axis=(0, 1, 2)), rtol=1e-12)
    # evaluation with this batch's own statistics is training mode exactly
    np.testing.assert_allclose(net.apply(params, x, stats), net.apply(params, x), rtol=1e-12, atol=1e-14)
    # evaluation treats examples independently; training mode couples them through the batch statistics
    np.testing.assert_allclose(net.apply(params, x[:3], stats), net.apply(params, x, stats)[:3], rtol=1e-12)
    assert not np.allclose(net.apply(params, x[:3]), net.apply(params, x)[:3], rtol=1e-6)
    # running statistics: momentum·running + (1 − momentum)·batch
    running = jax.tree_util.tree_map(jnp.zeros_like, stats)
    updated = nets.update_stats(running, stats, momentum=0.9)
    np.testing.assert_allclose(updated[0][1], 0.1 * np.asarray(var), rtol=1e-15)


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_layer_and_group_norm_treat_examples_independently(key, norm):
    net = nets.resnet((8, 8, 1), 10, norm=norm, width=4)
    params, x = net.init(key), _images(jax.random.fold_in(key, 1), 5)
    apply = jax.jit(net.apply)
    np.testing.assert_allclose(apply(params, x[:2]), apply(params, x)[:2], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_a_kernel_followed_by_normalisation_is_scale_invariant(key, norm):
    """A theorem of normalised nets: ``n(c·Wx) = n(Wx)`` for c > 0 (eps = 0), so the function cannot see the
    scale of conv1 in any block — the reason relative (per-layer) step sizes suit such nets."""
    net = nets.ResNet((8, 8, 1), 10, widths=(4, 8), blocks=(1, 1), norm=norm, eps=0.0)
    params, x = net.init(key), _images(jax.random.fold_in(key, 1), 6)
    scaled = [dict(p) for p in params]
    scaled[1] = {**params[1], "conv1": {"w": 7.0 * params[1]["conv1"]["w"]}}
    # float64; the scale enters and leaves through mean/variance: ~1e-13 relative
    np.testing.assert_allclose(net.apply(scaled, x), net.apply(params, x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_the_gradient_of_a_scale_invariant_kernel_is_orthogonal_to_it(key, norm):
    """The identity behind "BatchNorm's effect on C, derived" (docs/theory.md §6.2): ℒ(cW) = ℒ(W) for every c > 0,
    so d/dc ℒ(cW) at c = 1, which is ⟨∇_W ℒ, W⟩, vanishes — Fromage's slice step −η‖W‖g/‖g‖ is then orthogonal to W
    and only rotates it; a kernel not followed by a normalisation (conv2, the head) has no such identity."""
    net = nets.ResNet((8, 8, 1), 10, widths=(4, 8), blocks=(1, 1), norm=norm, eps=0.0)
    params, x = net.init(key), _images(jax.random.fold_in(key, 1), 6).reshape(6, -1)
    y = jnp.arange(6) % 10
    grads = measure.full_batch_gradient(net.apply, params, x, y)
    for block in (1, 2):
        w, g = params[block]["conv1"]["w"], grads[block]["conv1"]["w"]
        cosine = float(jnp.vdot(g, w) / (jnp.linalg.norm(g) * jnp.linalg.norm(w)))
        assert abs(cosine) < 1e-10  # float64, one backward pass: rounding ~1e-15, far below 1e-10
    w, g = params[1]["conv2"]["w"], grads[1]["conv2"]["w"]
    assert abs(float(jnp.vdot(g, w) / (jnp.linalg.norm(g) * jnp.linalg.norm(w)))) > 1e-6  # no identity there


def test_kernels_are_layers_for_the_slice_and_the_measurements(key):
    net = nets.ResNet((6, 6, 1), 3, widths=(2, 4), blocks=(1, 1), norm="batch")
    params = net.init(key)
    x, y = _images(jax.random.fold_in(key, 1), 12, (6, 6, 1)).reshape(12, -1), jnp.arange(12) % 3
    grads = measure.full_batch_gradient(net.apply, params, x, y)
    u = perturb.along_gradient(params, grads)
    sizes = tree.relative_size(u, params)
    layers = spec.weight_indices(params)
    # every kernel, scale and the head moves by exactly ‖W_l‖ per unit η (zero shifts have norm 0 and stay)
    np.testing.assert_allclose(sizes[layers], 1.0, rtol=1e-12)
    d = measure.relative_distances(net.apply, params, x, y, u, np.array([0.0, 0.01, 0.05]))
    assert d.gradient.shape == (3, len(tree.leaves(params)))
    assert d.is_weight == tuple(i in layers for i in range(len(tree.leaves(params))))
    np.testing.assert_array_equal(d.gradient[0], 0.0)
    assert np.all(d.gradient[1:, layers] > 0)
    # the DRT product runs over the kernels and the scales: ∏(1 + η) − 1 with one factor per layer
    expected = (1 + np.array([0.0, 0.01, 0.05])) ** len(layers) - 1
    np.testing.assert_allclose(bounds.drt_bound(d.weight_relative_size), expected, rtol=1e-12)
