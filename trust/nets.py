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
from typing import NamedTuple

import jax
import jax.numpy as jnp

from trust.errors import TrustError


class Activation(NamedTuple):
    """An elementwise nonlinearity φ (given leaky relu's negative slope s) and its He/Glorot gain, the
    factor that makes N(0, gain²/fan_in) weights variance-preserving for φ."""

    fn: Callable[[float], Callable]
    gain: Callable[[float], float]


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(lambda s: jax.nn.relu, lambda s: 2.0**0.5),
    "leaky_relu": Activation(lambda s: lambda z: jnp.where(z >= 0, z, s * z), lambda s: (2.0 / (1.0 + s**2)) ** 0.5),
    "tanh": Activation(lambda s: jnp.tanh, lambda s: 5.0 / 3.0),
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
      residual: hidden layers ``l = 2 … L-1`` compute ``h + φ(W_l h + b_l)`` (they must be square).
      init_scheme: ``torch`` — PyTorch's nn.Linear default, W and b ~ U(±1/√fan_in); ``gaussian`` —
        W ~ N(0, gain²/fan_in) with the activation's He/Glorot gain, b = 0.
    """

    widths: tuple[int, ...]
    activation: str = "relu"
    slope: float = 0.01
    bias: bool = True
    final_activation: bool = False
    residual: bool = False
    init_scheme: str = "torch"

    def __post_init__(self):
        if len(self.widths) < 2 or any(int(w) < 1 for w in self.widths):
            raise TrustError(f"widths must be ≥ 2 positive integers, got {self.widths}")
        activation_fn(self.activation, self.slope)
        if self.init_scheme not in INITS:
            raise TrustError(f"unknown init {self.init_scheme!r}; choose one of {', '.join(INITS)}")
        if self.residual and len(set(self.widths[1:-1])) > 1:
            raise TrustError(f"residual hidden layers must be square, got widths {self.widths}")

    @property
    def depth(self) -> int:
        """L, the number of weight matrices."""
        return len(self.widths) - 1

    def init(self, key: jax.Array, dtype=None) -> list[dict]:
        """Draw parameters with an explicit ``key`` (one fold per layer)."""
        dtype = jnp.dtype(dtype or jnp.zeros(()).dtype)  # float64 when jax_enable_x64 is on
        return _init(self, key, dtype)

    def _draw(self, key, dtype) -> list[dict]:
        # One draw for the whole net, sliced per layer: each random op costs ~0.3 s of XLA compile on
        # a small CPU, so per-tensor draws made start-up dominate short runs.
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

    def preactivations(self, params: list[dict], x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        """The output and every layer's pre-activation ``z_l = W_l h_{l-1} (+ b_l)``, each ``(n, d_l)``."""
        phi = activation_fn(self.activation, self.slope)
        h, zs = x, []
        last = len(params) - 1
        for l, layer in enumerate(params):
            z = h @ layer["w"].T
            if "b" in layer:
                z = z + layer["b"][None, :]
            zs.append(z)
            if l == last and not self.final_activation:
                return z, zs
            h = h + phi(z) if (self.residual and 0 < l < last) else phi(z)
        return h, zs


@partial(jax.jit, static_argnums=(0, 2))
def _init(spec: MLP, key, dtype):
    return spec._draw(key, dtype)


@functools.cache
def _shared(net: MLP) -> MLP:
    """One object per distinct net. ``net.apply`` is a jit static argument (:mod:`trust.measure`), and bound
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
) -> MLP:
    """The paper's Figure-1 MLP: ``depth`` weight matrices, biases, linear last layer (docs/theory.md §1, §5)."""
    if depth < 1:
        raise TrustError(f"depth must be ≥ 1, got {depth}")
    widths = (d_in,) + (width,) * (depth - 1) + (n_out,)
    return _shared(
        MLP(widths, activation, slope, bias=True, final_activation=False, residual=residual, init_scheme=init_scheme)
    )


def nonzero_biases(key: jax.Array, params, std: float = 0.01):
    """Every bias vector (ndim 1 leaf) re-drawn from N(0, std²): multiplicative optimisers (Madam) never
    move a zero weight, so the authors initialised biases this way (docs/theory.md §4). Weight matrices are kept."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    out = [
        std * jax.random.normal(jax.random.fold_in(key, i), p.shape, p.dtype) if jnp.ndim(p) == 1 else p
        for i, p in enumerate(leaves)
    ]
    return jax.tree_util.tree_unflatten(treedef, out)
