"""Multilayer perceptrons as pure functions over pytrees (docs/theory.md §1).

Two forms share one frozen, hashable spec, :class:`MLP`:

* the **Theorem-1 MLP** ``f(x) = φ(W_L φ(W_{L-1} … φ(W_1 x)))`` — no biases, φ at every layer
  (:func:`theorem1_mlp`);
* the **experiment MLP** of the paper's Figure 1 — hidden layers ``φ(W_l h + b_l)``, a final linear
  layer, and optionally residual hidden layers ``h + φ(W_l h + b_l)`` (:func:`experiment_mlp`).

Parameters are a list with one dict per layer, ``{"w": (out, in)}`` plus ``"b": (out,)`` when the net
has biases; inputs are batches ``(n, in)``. ``L`` is the number of weight matrices.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple, TypeVar

import jax
import jax.numpy as jnp

from trust.base import spec as specs
from trust.base.errors import TrustError


class Activation(NamedTuple):
    """An elementwise nonlinearity φ (given leaky relu's negative slope s) and its He/Glorot gain, the
    factor that makes N(0, gain²/fan_in) weights variance-preserving for φ."""

    fn: Callable[[float], Callable]
    gain: Callable[[float], float]


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(lambda s: jax.nn.relu, lambda s: 2.0**0.5),
    "leaky_relu": Activation(lambda s: lambda z: jnp.where(z >= 0, z, s * z), lambda s: (2.0 / (1.0 + s**2)) ** 0.5),
    "tanh": Activation(lambda s: jnp.tanh, lambda s: 5.0 / 3.0),
    # smooth relus, without relu's kink (relu's gain: a variance-preserving approximation)
    "gelu": Activation(lambda s: partial(jax.nn.gelu, approximate=False), lambda s: 2.0**0.5),
    "softplus": Activation(lambda s: jax.nn.softplus, lambda s: 2.0**0.5),
    "identity": Activation(lambda s: lambda z: z, lambda s: 1.0),
}
INITS = ("torch", "gaussian")


def _activation(name: str) -> Activation:
    if name not in ACTIVATIONS:
        raise TrustError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def activation_fn(name: str, slope: float = 0.01) -> Callable:
    """The elementwise nonlinearity φ named ``name`` (``slope`` is leaky relu's negative slope)."""
    return _activation(name).fn(slope)


@dataclass(frozen=True)
class MLP:
    """A multilayer perceptron spec; ``init`` and ``apply`` are pure.

    Attributes:
      widths: ``(d_0, d_1, …, d_L)``; layer l maps ``d_{l-1} → d_l``.
      activation: one of ``relu``, ``leaky_relu``, ``tanh``, ``identity``.
      slope: leaky relu's negative slope s (transmission α ≥ s, β = 1).
      bias: whether layers carry a bias vector.
      final_activation: apply φ after the last layer too (Theorem-1 form).
      residual: hidden layers ``l = 2 … L-1`` compute ``h + φ(W_l h + b_l)`` (they must be square);
      residual_first: the first layer too, ``x + φ(W_1 x + b_1)`` (the Fromage authors' residual net; ``d_0 = d_1``).
      init_scheme: ``torch`` — PyTorch's nn.Linear default, W and b ~ U(±1/√fan_in); ``gaussian`` —
        W ~ N(0, gain²/fan_in) with the activation's He/Glorot gain, b = 0.
    """

    widths: tuple[int, ...]
    activation: str = "relu"
    slope: float = 0.01
    bias: bool = True
    final_activation: bool = False
    residual: bool = False
    residual_first: bool = False
    init_scheme: str = "torch"

    def __post_init__(self):
        if len(self.widths) < 2 or any(int(w) < 1 for w in self.widths):
            raise TrustError(f"widths must be ≥ 2 positive integers, got {self.widths}")
        activation_fn(self.activation, self.slope)
        if self.init_scheme not in INITS:
            raise TrustError(f"unknown init {self.init_scheme!r}; choose one of {', '.join(INITS)}")
        if self.residual and len(set(self.widths[1:-1])) > 1:
            raise TrustError(f"residual hidden layers must be square, got widths {self.widths}")
        if self.residual_first and (len(self.widths) < 3 or self.widths[0] != self.widths[1]):
            raise TrustError(f"a residual first layer needs d_0 = d_1 and a layer after it, got widths {self.widths}")

    @property
    def depth(self) -> int:
        """L, the number of weight matrices."""
        return len(self.widths) - 1

    def init(self, key: jax.Array, dtype=None) -> list[dict]:
        """Draw parameters with an explicit ``key`` (one fold per layer)."""
        dtype = jnp.dtype(dtype or jnp.zeros(()).dtype)  # float64 when jax_enable_x64 is on
        return _init(self, key, dtype)

    def _draw(self, key, dtype) -> list[dict]:
        # One draw for the whole net, sliced per layer: every random op is compiled on its own, so per-tensor
        # draws made start-up dominate short runs.
        shapes = [(fan_out, fan_in + 1) for fan_in, fan_out in zip(self.widths[:-1], self.widths[1:])]
        sizes = [o * i for o, i in shapes]
        sample = jax.random.uniform if self.init_scheme == "torch" else jax.random.normal
        flat = sample(key, (sum(sizes),), dtype)
        params, start = [], 0
        for (fan_out, cols), size in zip(shapes, sizes):
            fan_in = cols - 1
            block = flat[start : start + size].reshape(fan_out, cols)
            start += size
            if self.init_scheme == "torch":  # U(±1/√fan_in) for W and b
                block = (2.0 * block - 1.0) * fan_in**-0.5
                w, b = block[:, :fan_in], block[:, fan_in]
            else:  # W ~ N(0, gain²/fan_in), b = 0
                w = _activation(self.activation).gain(self.slope) * fan_in**-0.5 * block[:, :fan_in]
                b = jnp.zeros((fan_out,), dtype)
            params.append({"w": w, "b": b} if self.bias else {"w": w})
        return params

    def apply(self, params: list[dict], x: jax.Array) -> jax.Array:
        """Forward pass on a batch ``x`` of shape ``(n, d_0)``; returns ``(n, d_L)``."""
        return self.preactivations(params, x)[0]

    def phi_inputs(self, params: list[dict], x: jax.Array) -> list[jax.Array]:
        """The input of every φ in the forward pass, in order (each ``(n, d_l)``): what transmission measures."""
        zs = self.preactivations(params, x)[1]
        return zs if self.final_activation else zs[:-1]

    def preactivations(self, params: list[dict], x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        """The output and every layer's pre-activation ``z_l = W_l h_{l-1} (+ b_l)``, each ``(n, d_l)``."""
        return self._from_first(params[1:], self.first_preactivation(params[0], x), x)[:2]

    def layer_inputs(self, params: list[dict], x: jax.Array) -> list[jax.Array]:
        """What every layer reads: ``h_0 = x, h_1, …, h_{L−1}`` (each ``(n, d_{l−1})``), and the output last —
        the features whose change measures feature learning (docs/theory.md §12)."""
        out, _, hs = self._from_first(params[1:], self.first_preactivation(params[0], x), x)
        return [*hs, out]

    def first_preactivation(self, layer: dict, x: jax.Array) -> jax.Array:
        """``z_1 = x·W_1ᵀ (+ b_1)``: linear in the first layer's parameters, so along ``W + η·U`` it is
        ``z_1(W_1) + η·z_1(U_1)`` — two matmuls for a whole η grid (:mod:`trust.core.measure`)."""
        z = x @ layer["w"].T
        return z + layer["b"][None, :] if "b" in layer else z

    def apply_after_first(self, rest: list[dict], z1: jax.Array, x: jax.Array) -> jax.Array:
        """The output given the first pre-activation ``z_1``, the parameters of layers ``2 … L`` and the input
        (the skip of a residual first layer)."""
        return self._from_first(rest, z1, x)[0]

    def layer_output(self, l: int, z: jax.Array, h: jax.Array) -> jax.Array:
        """Layer ``l``'s output (counted from 0) from its pre-activation ``z`` and its input ``h``: ``φ(z)``, or
        ``h + φ(z)`` on a residual layer (the hidden ones; the first too with ``residual_first``); the last layer
        is never residual, and is ``z`` itself unless ``final_activation``."""
        last = l == self.depth - 1
        if last and not self.final_activation:
            return z
        phi = activation_fn(self.activation, self.slope)
        residual = (self.residual_first and l == 0) or (self.residual and l > 0 and not last)
        return h + phi(z) if residual else phi(z)

    def _from_first(self, rest: list[dict], z1: jax.Array, x: jax.Array):
        """The output, the pre-activations and the inputs of the layers (``x`` first)."""
        h, zs = self.layer_output(0, z1, x), [z1]
        hs = [x, h]
        for l, layer in enumerate(rest, start=1):
            z = h @ layer["w"].T
            zs.append(z + layer["b"][None, :] if "b" in layer else z)
            h = self.layer_output(l, zs[-1], h)
            hs.append(h)
        return h, zs, hs[:-1]


@partial(jax.jit, static_argnums=(0, 2))
def _init(spec: MLP | ResNet | Transformer, key, dtype):
    return spec._draw(key, dtype)


Net = TypeVar("Net", "MLP", "ResNet", "Transformer")


@functools.cache
def _shared(net: Net) -> Net:
    """One object per distinct net. ``net.apply`` is a jit static argument (:mod:`trust.core.measure`), and bound
    methods of equal but distinct objects compare unequal, so a rebuilt net would recompile every program."""
    return net


def theorem1_mlp(widths, activation: str = "leaky_relu", slope: float = 0.01, init_scheme: str = "gaussian") -> MLP:
    """The MLP of Theorem 1: no biases, φ at every layer (docs/theory.md §1)."""
    return _shared(
        MLP(
            tuple(widths), activation, slope, bias=False, final_activation=True, residual=False, init_scheme=init_scheme
        )
    )


def experiment_mlp(
    d_in: int,
    width: int,
    depth: int,
    n_out: int,
    activation: str = "relu",
    slope: float = 0.01,
    residual: bool = False,
    init_scheme: str = "torch",
    bias: bool = True,
    residual_first: bool = False,
) -> MLP:
    """The paper's Figure-1 MLP: ``depth`` weight matrices, biases, linear last layer (docs/theory.md §1, §5).
    ``bias=False``: the bias-free net of the operator-norm theorem (docs/theory.md §2.3, §8.4)."""
    if depth < 1:
        raise TrustError(f"depth must be ≥ 1, got {depth}")
    widths = (d_in,) + (width,) * (depth - 1) + (n_out,)
    return _shared(
        MLP(
            widths,
            activation,
            slope,
            bias=bias,
            final_activation=False,
            residual=residual,
            init_scheme=init_scheme,
            residual_first=residual_first,
        )
    )


def nonzero_biases(key: jax.Array, params, std: float = 0.01, spec=None):
    """Every bias and normalisation shift (:mod:`trust.base.spec`: the additive tensors, zero at initialisation)
    re-drawn from N(0, std²): multiplicative optimisers (Madam) never move a zero weight, so the authors initialised
    biases this way (docs/theory.md §4). Layers, normalisation gains included, are kept."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    out = [
        std * jax.random.normal(jax.random.fold_in(key, i), p.shape, p.dtype) if leaf.role in ("bias", "shift") else p
        for i, (p, leaf) in enumerate(zip(leaves, specs.parameters(params, spec)))
    ]
    return jax.tree_util.tree_unflatten(treedef, out)


NORMS = ("none", "batch", "layer", "group")


@dataclass(frozen=True)
class ResNet:
    """A small pre-activation ResNet (He et al. 2016, "Identity mappings in deep residual networks") as a pure
    spec: a 3×3 stem convolution, stages of blocks ``x + conv₂(φ(n₂(conv₁(φ(n₁(x))))))`` (the first block of
    each later stage halves the resolution and doubles the channels through a 1×1 projection shortcut), then
    ``φ(n(·))``, a global average pool and a linear head (docs/theory.md §1: every convolution kernel and the head
    are layers of the perturbation, ``ΔW_l = η‖W_l‖·U_l``; a normalisation's scale is the diagonal layer
    ``diag(s)``, its shift a vector like a bias).

    Inputs are flat batches ``(n, H·W·C)`` (the data sets' layout) or images ``(n, H, W, C)``; kernels are HWIO.
    ``depth`` counts the weight layers on the main path: stem, two per block and the head (projections apart), so
    ``blocks=(1, 1, 1)`` is ResNet-8 and ``(2, 2, 3)`` ResNet-16.

    Normalisation: ``none``; ``layer`` and ``group`` (GroupNorm over ``groups`` channel groups; LayerNorm is one
    group) are functions of each example alone; ``batch`` normalises each channel over the batch and the image in
    training mode, and with running statistics ``stats`` (:meth:`batch_stats`, :func:`update_stats`) in evaluation
    mode — ``apply(params, x, stats)``.
    """

    image: tuple[int, int, int]  # (H, W, C) of the input
    n_classes: int
    widths: tuple[int, ...] = (16, 32, 64)  # channels per stage
    blocks: tuple[int, ...] = (1, 1, 1)  # blocks per stage
    norm: str = "none"
    groups: int = 4
    activation: str = "relu"
    slope: float = 0.01
    eps: float = 1e-5

    def __post_init__(self):
        if len(self.image) != 3 or min(self.image) < 1 or self.n_classes < 1:
            raise TrustError(f"image must be (H, W, C) ≥ 1 and n_classes ≥ 1, got {self.image}, {self.n_classes}")
        if len(self.widths) != len(self.blocks) or min(self.widths, default=0) < 1 or min(self.blocks, default=0) < 1:
            raise TrustError(f"one positive width and block count per stage, got {self.widths} and {self.blocks}")
        if self.norm not in NORMS:
            raise TrustError(f"unknown norm {self.norm!r}; choose one of {', '.join(NORMS)}")
        if self.norm == "group" and any(w % self.groups for w in self.widths):
            raise TrustError(f"group norm needs widths divisible by groups={self.groups}, got {self.widths}")
        activation_fn(self.activation, self.slope)

    @property
    def depth(self) -> int:
        """L, the weight layers on the main path: stem + 2 per block + head."""
        return 2 + 2 * sum(self.blocks)

    def plan(self) -> list[tuple[int, int, int, bool]]:
        """(in channels, out channels, stride, projection shortcut?) of every block, in order."""
        plan, channels = [], self.widths[0]
        for stage, (width, count) in enumerate(zip(self.widths, self.blocks)):
            for b in range(count):
                stride = 2 if stage > 0 and b == 0 else 1
                plan.append((channels, width, stride, stride != 1 or channels != width))
                channels = width
        return plan

    def init(self, key: jax.Array, dtype=None) -> list[dict]:
        """He-normal kernels ``N(0, gain²/fan_in)``, unit norm scales and zero shifts, a PyTorch-default head
        ``U(±1/√fan_in)``: ``[stem, block…, head]``, each block ``{conv1, conv2, norm1?, norm2?, proj?}``."""
        return _init(self, key, jnp.dtype(dtype or jnp.zeros(()).dtype))

    def _draw(self, key, dtype) -> list[dict]:
        # One normal draw for every kernel and one uniform draw for the head, sliced (as MLP._draw: each random
        # op is compiled separately, and one per kernel made the compile dominate).
        kernels = [(3, self.image[2], self.widths[0])]
        for c_in, c_out, _, projected in self.plan():
            kernels += [(3, c_in, c_out), (3, c_out, c_out)] + ([(1, c_in, c_out)] if projected else [])
        sizes = [k * k * c_in * c_out for k, c_in, c_out in kernels]
        flat = jax.random.normal(jax.random.fold_in(key, 0), (sum(sizes),), dtype)
        gain = _activation(self.activation).gain(self.slope)
        drawn, start = [], 0
        for (k, c_in, c_out), size in zip(kernels, sizes):
            z = flat[start : start + size].reshape(k, k, c_in, c_out)
            drawn.append({"w": gain * (k * k * c_in) ** -0.5 * z})
            start += size
        kernel = iter(drawn)

        def norm(c):
            return {"scale": jnp.ones((c,), dtype), "shift": jnp.zeros((c,), dtype)}

        params: list[dict] = [next(kernel)]
        for c_in, c_out, _, projected in self.plan():
            block: dict[str, dict] = {"conv1": next(kernel), "conv2": next(kernel)}
            if projected:
                block["proj"] = next(kernel)
            if self.norm != "none":
                block.update(norm1=norm(c_in), norm2=norm(c_out))
            params.append(block)
        c = self.widths[-1]
        wb = c**-0.5 * jax.random.uniform(jax.random.fold_in(key, 1), (self.n_classes, c + 1), dtype, -1.0, 1.0)
        head = {"w": wb[:, :c], "b": wb[:, c]}
        if self.norm != "none":
            head["norm"] = norm(c)
        return params + [head]

    def apply(self, params: list[dict], x: jax.Array, stats: list | None = None) -> jax.Array:
        """Logits ``(n, n_classes)``; with ``norm="batch"`` and ``stats`` the evaluation mode."""
        return self._forward(params, x, stats)[0]

    def batch_stats(self, params: list[dict], x: jax.Array) -> list:
        """The per-channel batch mean and variance at every normalisation, in order (``norm="batch"``)."""
        return self._forward(params, x, None)[1]

    def apply_with_stats(self, params: list[dict], x: jax.Array) -> tuple[jax.Array, list]:
        """Training mode in one pass: the logits and :meth:`batch_stats` (what a training step needs)."""
        return self._forward(params, x, None)[:2]

    def phi_inputs(self, params: list[dict], x: jax.Array, stats: list | None = None) -> list[jax.Array]:
        """The input of every φ in the forward pass, in order (each ``(n, H, W, C)`` or, at the head, ``(n, C)``
        images): two per block and one before the pooling."""
        return self._forward(params, x, stats)[2]

    def initial_stats(self, params: list[dict]) -> list:
        """Running statistics before any batch: mean 0 and variance 1 per channel at every normalisation, in the
        order :meth:`batch_stats` returns them (PyTorch's BatchNorm starts there too)."""
        scales = [block[k]["scale"] for block in params[1:-1] for k in ("norm1", "norm2")] + [
            params[-1]["norm"]["scale"]
        ]
        return [(jnp.zeros_like(s), jnp.ones_like(s)) for s in scales]

    def _forward(self, params, x, stats):
        activation = activation_fn(self.activation, self.slope)
        h = x.reshape((x.shape[0], *self.image)) if x.ndim == 2 else x
        stats_in, stats_out, phi_in = iter(stats or []), [], []

        def phi(z):
            phi_in.append(z)
            return activation(z)

        def normalise(layer, z):
            if self.norm == "none":
                return z
            channel = (1, 1, 1, z.shape[-1])  # a per-channel vector, broadcast over (n, H, W)
            if self.norm == "batch":
                if stats is None:
                    mean, var = z.mean(axis=(0, 1, 2)), z.var(axis=(0, 1, 2))
                else:
                    mean, var = next(stats_in)
                stats_out.append((mean, var))
                normalised = (z - mean.reshape(channel)) * jax.lax.rsqrt(var.reshape(channel) + self.eps)
            else:
                n, hh, ww, c = z.shape
                groups = 1 if self.norm == "layer" else self.groups
                zg = z.reshape(n, hh, ww, groups, c // groups)
                mean, var = zg.mean(axis=(1, 2, 4), keepdims=True), zg.var(axis=(1, 2, 4), keepdims=True)
                normalised = ((zg - mean) * jax.lax.rsqrt(var + self.eps)).reshape(z.shape)
            return normalised * layer["scale"].reshape(channel) + layer["shift"].reshape(channel)

        h = _conv(h, params[0]["w"], 1)
        for block, (_, _, stride, _) in zip(params[1:-1], self.plan()):
            a = phi(normalise(block["norm1"], h) if "norm1" in block else h)
            shortcut = _conv(a, block["proj"]["w"], stride) if "proj" in block else h
            z = _conv(a, block["conv1"]["w"], stride)
            z = _conv(phi(normalise(block["norm2"], z) if "norm2" in block else z), block["conv2"]["w"], 1)
            h = shortcut + z
        head = params[-1]
        h = phi(normalise(head["norm"], h) if "norm" in head else h)
        return h.mean(axis=(1, 2)) @ head["w"].T + head["b"][None, :], stats_out, phi_in


@dataclass(frozen=True)
class Transformer:
    """A small pre-LayerNorm transformer encoder that classifies an image read as a sequence of its rows (docs/theory.md
    §1): tokens are the ``H`` rows of ``W·C`` pixels, embedded by a linear map with fixed sinusoidal positions
    added; ``blocks`` blocks ``x + o(attention(q, k, v of n₁(x)))`` and ``x + down(φ(up(n₂(x))))``; then
    ``n(·)``, the mean over tokens and a linear head. Attention has ``heads`` heads of width ``width/heads``; the
    query, key, value and output maps are ``width × width`` matrices stored ``(out, in)`` as trust's ``w`` (read
    by :func:`trust.base.spec.trust_naming` like the MLP's), initialised as PyTorch's ``nn.Linear``; LayerNorm
    gains are layers ``diag(s)``, their shifts like biases."""

    image: tuple[int, int, int]  # (H, W, C): H tokens of W·C pixels
    n_classes: int
    width: int = 32
    blocks: int = 2
    heads: int = 2
    mlp_ratio: int = 2
    activation: str = "relu"
    slope: float = 0.01
    eps: float = 1e-5

    def __post_init__(self):
        if len(self.image) != 3 or min(self.image) < 1 or self.n_classes < 1 or self.blocks < 1:
            raise TrustError(f"image (H, W, C), n_classes and blocks must be ≥ 1, got {self.image}, "
                             f"{self.n_classes}, {self.blocks}")  # fmt: skip
        if self.width % self.heads or self.width % 2:
            raise TrustError(f"width must be even and divisible by heads={self.heads}, got {self.width}")
        activation_fn(self.activation, self.slope)

    @property
    def depth(self) -> int:
        """L, the linear layers on the longest path: the embedding, value, output, up and down per block, the head."""
        return 2 + 4 * self.blocks

    def _shapes(self) -> list[tuple[str, int, int, bool]]:
        """(name, fan_out, fan_in, bias?) of every linear map in ``init``'s order."""
        d, m, p = self.width, self.mlp_ratio * self.width, self.image[1] * self.image[2]
        per_block = [("q", d, d, False), ("k", d, d, False), ("v", d, d, False), ("o", d, d, False)]
        per_block += [("up", m, d, True), ("down", d, m, True)]
        return [("embed", d, p, True)] + per_block * self.blocks + [("head", self.n_classes, d, True)]

    def init(self, key: jax.Array, dtype=None) -> list[dict]:
        """``U(±1/√fan_in)`` matrices and biases (PyTorch's ``nn.Linear``), unit gains, zero shifts:
        ``[embed, block…, head]``, each block ``{norm1, q, k, v, o, norm2, up, down}``."""
        return _init(self, key, jnp.dtype(dtype or jnp.zeros(()).dtype))

    def _draw(self, key, dtype) -> list[dict]:
        shapes = self._shapes()  # one uniform draw for every matrix and bias, sliced (as MLP._draw)
        sizes = [o * (i + 1) for _, o, i, _ in shapes]
        flat = jax.random.uniform(key, (sum(sizes),), dtype, -1.0, 1.0)
        linear, start = [], 0
        for (_, fan_out, fan_in, bias), size in zip(shapes, sizes):
            block = fan_in**-0.5 * flat[start : start + size].reshape(fan_out, fan_in + 1)
            start += size
            linear.append({"w": block[:, :fan_in], "b": block[:, fan_in]} if bias else {"w": block[:, :fan_in]})

        def norm():
            return {"scale": jnp.ones((self.width,), dtype), "shift": jnp.zeros((self.width,), dtype)}

        params: list[dict] = [linear[0]]
        for b in range(self.blocks):
            q, k, v, o, up, down = linear[1 + 6 * b : 7 + 6 * b]
            params.append({"norm1": norm(), "q": q, "k": k, "v": v, "o": o, "norm2": norm(), "up": up, "down": down})
        return params + [{**linear[-1], "norm": norm()}]

    def apply(self, params: list[dict], x: jax.Array) -> jax.Array:
        """Logits ``(n, n_classes)`` of flat images ``(n, H·W·C)`` or images ``(n, H, W, C)``."""
        return self._forward(params, x)[0]

    def phi_inputs(self, params: list[dict], x: jax.Array) -> list[jax.Array]:
        """The input of every φ (each block's MLP pre-activation, ``(n, H, mlp_ratio·width)``)."""
        return self._forward(params, x)[1]

    def _positions(self, dtype) -> jax.Array:
        """Sinusoidal positions ``(H, width)`` (Vaswani et al. 2017): sin and cos at geometric frequencies."""
        t = jnp.arange(self.image[0], dtype=dtype)[:, None]
        freq = jnp.exp(-jnp.log(jnp.asarray(1e4, dtype)) * jnp.arange(0, self.width, 2, dtype=dtype) / self.width)
        return jnp.concatenate([jnp.sin(t * freq[None, :]), jnp.cos(t * freq[None, :])], axis=1)

    def _forward(self, params, x):
        phi, n = activation_fn(self.activation, self.slope), x.shape[0]
        tokens, d, heads = self.image[0], self.width, self.heads
        h = x.reshape(n, tokens, self.image[1] * self.image[2])

        def linear(layer, z):
            out = z @ layer["w"].T
            return out + layer["b"][None, None, :] if "b" in layer else out

        def norm(layer, z):
            mean, var = z.mean(axis=-1, keepdims=True), z.var(axis=-1, keepdims=True)
            return (z - mean) * jax.lax.rsqrt(var + self.eps) * layer["scale"][None, None, :] + layer["shift"][
                None, None, :
            ]

        h = linear(params[0], h) + self._positions(h.dtype)[None, :, :]
        phi_in = []
        for block in params[1:-1]:
            a = norm(block["norm1"], h)
            q, k, v = (linear(block[name], a).reshape(n, tokens, heads, d // heads) for name in ("q", "k", "v"))
            weights = jax.nn.softmax(jnp.einsum("nthk,nshk->nhts", q, k) * (d // heads) ** -0.5, axis=-1)
            h = h + linear(block["o"], jnp.einsum("nhts,nshk->nthk", weights, v).reshape(n, tokens, d))
            z = linear(block["up"], norm(block["norm2"], h))
            phi_in.append(z)
            h = h + linear(block["down"], phi(z))
        head = params[-1]
        pooled = norm(head["norm"], h).mean(axis=1)
        return pooled @ head["w"].T + head["b"][None, :], phi_in


def transformer(image, n_classes: int, width: int = 32, blocks: int = 2, activation: str = "relu") -> Transformer:
    """A :class:`Transformer` (one object per distinct net: its ``apply`` is a jit static argument)."""
    return _shared(Transformer(tuple(image), n_classes, width, blocks, activation=activation))


def _conv(h, w, stride: int):
    """``same``-padded NHWC convolution with an HWIO kernel."""
    return jax.lax.conv_general_dilated(h, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def update_stats(running: list, batch: list, momentum: float = 0.9) -> list:
    """BatchNorm's running statistics: ``momentum·running + (1 − momentum)·batch`` per mean and variance."""
    return jax.tree_util.tree_map(lambda r, b: momentum * r + (1.0 - momentum) * b, running, batch)


def resnet(image, n_classes: int, depth: int = 8, norm: str = "none", width: int = 16) -> ResNet:
    """ResNet-8 (blocks 1, 1, 1) or ResNet-16 (blocks 2, 2, 3), stage widths ``width``, 2·width, 4·width."""
    blocks = {8: (1, 1, 1), 16: (2, 2, 3)}
    if depth not in blocks:
        raise TrustError(f"resnet depth must be one of {', '.join(map(str, blocks))}, got {depth}")
    return _shared(ResNet(tuple(image), n_classes, (width, 2 * width, 4 * width), blocks[depth], norm))
