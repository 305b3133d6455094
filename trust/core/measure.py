"""Distances between a network and its perturbation over a whole η grid, in one jitted call (docs/theory.md §1).

For a direction ``U`` and each η of the grid, at ``W + η·U``: the loss, the change of the output per
example ``‖f_{W+ηU}(x) − f_W(x)‖₂``, the batch change ``‖F_{W+ηU} − F_W‖_F`` and the change of every
tensor's loss gradient ``‖g_l(W+ηU) − g_l(W)‖_F``. Relative distances divide by the base values.

The grid is mapped with ``jax.lax.map(..., batch_size=b)`` — ``b`` points at a time under ``vmap`` — so
memory stays flat as the grid grows; ``b`` per backend, and whether the first layer's work is shared across
the grid, is the measured choice in :func:`grid_strategy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from trust.base import spec as specs
from trust.base.errors import TrustError
from trust.base.tree import (
    check_finite,
    frobenius_norms,
    leaf_names,
    leaf_norms,
    same_structure,
    size_ratio,
)
from trust.core.losses import loss_function
from trust.core.nets import MLP
from trust.core.perturb import perturbed


@partial(jax.jit, static_argnums=(0, 4))
def _full_batch_gradient(apply, params, x, y, loss):
    return jax.grad(lambda p: loss_function(loss)(apply(p, x), y))(params)


def full_batch_gradient(apply: Callable, params, x, y, loss: str = "xent"):
    """``∇ℒ(W)`` on the whole batch, one jitted call (compiled once per net, loss and shape)."""
    return _full_batch_gradient(apply, params, x, y, loss)


class Strategy(NamedTuple):
    """How the η grid is executed: split across ``devices`` local devices, on each ``batch_size`` points at a
    time under ``vmap`` (the rest a sequential ``lax.map``), and whether the first layer's ``x·W_1ᵀ`` and
    ``x·U_1ᵀ`` are computed once for the grid."""

    batch_size: int
    share_first_layer: bool
    devices: int = 1


def grid_strategy(n_grid: int, apply: Callable | None = None, backend: str | None = None) -> Strategy:
    """The execution of an η grid, chosen by measurement (``benchmarks/RESULTS.md``), for every backend here.

    * **Chunk.** On a 2-core CPU chunks of two η points are fastest or tied at every width and depth measured
      (64–784, 2–16; chunks of 1 and 4 are up to 30 % slower): wider ``vmap`` chunks turn matmuls into batched
      matmuls that XLA's CPU backend runs slower, and a plain ``vmap`` of all 32 points is 1.4–3× slower and
      its memory grows with the grid. An accelerator wants wide chunks; 64 keeps memory flat on long grids
      (not yet measured on a GPU).
    * **Devices.** The grid is split evenly across every local device (one block of η each); each device
      runs the same chunked map on its block.
    * **Shared first layer.** When the network's first pre-activation is linear in its parameters (an
      :class:`~trust.core.nets.MLP`: ``z_1 = x·W_1ᵀ + b_1``), ``z_1(W + η·U) = z_1(W) + η·z_1(U)``: two matmuls for the
      whole grid instead of one per η. Always cheaper: the first layer's forward matmul disappears from every
      point (its input gradient is never needed), the largest saving on MNIST-sized inputs and narrow nets.
    """
    backend = backend or jax.default_backend()
    devices = max(1, min(n_grid, jax.local_device_count()))
    per_device = -(-max(n_grid, 1) // devices)
    return Strategy(
        batch_size=max(1, min(per_device, 2 if backend == "cpu" else 64)),
        share_first_layer=_split_network(apply) is not None,
        devices=devices,
    )


def _split_network(apply: Callable | None):
    """An :class:`~trust.core.nets.MLP` behind ``apply`` (its bound ``apply``), whose first layer a grid can share."""
    net = getattr(apply, "__self__", None)
    return net if isinstance(net, MLP) and apply == net.apply else None


def _evaluate(apply, loss_fn, params, x, y):
    def objective(p):
        out = apply(p, x)
        return loss_fn(out, y), out

    (loss, out), grads = jax.value_and_grad(objective, has_aux=True)(params)
    return loss, out, grads


def _evaluator(apply, loss_fn, share_first_layer, params, direction, x, y):
    """``η ↦ (loss, output, gradients)`` at ``W + η·U``."""
    net = _split_network(apply) if share_first_layer else None
    if net is None:
        return lambda eta: _evaluate(apply, loss_fn, perturbed(params, direction, eta), x, y)
    z_base, first_layer_vjp = jax.vjp(lambda layer: net.first_preactivation(layer, x), params[0])
    z_direction = net.first_preactivation(direction[0], x)

    def objective(rest, z1):
        out = net.apply_after_first(rest, z1, x)
        return loss_fn(out, y), out

    def evaluate(eta):
        rest = perturbed(params[1:], direction[1:], eta)
        (loss, out), (grads, dz1) = jax.value_and_grad(objective, (0, 1), has_aux=True)(
            rest, z_base + eta * z_direction
        )
        # ∂ℒ/∂W_1 through the linear first layer: the transpose of x·W_1ᵀ (+ b_1) applied to ∂ℒ/∂z_1.
        return loss, out, [first_layer_vjp(dz1)[0], *grads]

    return evaluate


def _grid_on_device(apply, loss_fn, strategy, params, direction, x, y, etas):
    """The base point and this device's share of the grid (``etas``: a whole number of chunks)."""
    evaluate = _evaluator(apply, loss_fn, strategy.share_first_layer, params, direction, x, y)
    batch_size = strategy.batch_size

    # The base point goes through the same mapped evaluation as the grid (a chunk of η = 0), and the grid is
    # padded to whole chunks, so every grid point is computed by one compiled body whichever device runs it.
    loss0, out0, grads0 = jax.tree_util.tree_map(
        lambda a: a[0], jax.lax.map(evaluate, jnp.zeros(batch_size, etas.dtype), batch_size=batch_size)
    )

    def at(eta):
        loss, out, grads = evaluate(eta)
        dgrads = jax.tree_util.tree_map(jnp.subtract, grads, grads0)
        changes = {
            "function_change": jnp.linalg.norm(out - out0, axis=-1),
            "batch_change": jnp.linalg.norm(out - out0),
            "gradient_change": frobenius_norms(dgrads),
            "gradient_total_change": jnp.linalg.norm(frobenius_norms(dgrads)),
        }
        # At η = 0 the point is the base point (W + 0·U = W bit for bit): every change is 0 by definition.
        # Computed, it is 0 only where XLA compiles this body's evaluation as it compiled the base point's,
        # and it need not: a float64 MLP 16-12-12-12-3 on 24 examples gave a first-layer gradient change of
        # 4e-19 at η = 0 (tests/test_measure.py).
        changes = jax.tree_util.tree_map(lambda c: jnp.where(eta == 0, jnp.zeros_like(c), c), changes)
        return {"loss": jnp.where(eta == 0, loss0, loss), **changes}

    base = {
        "loss0": loss0,
        "output_norm": jnp.linalg.norm(out0, axis=-1),
        "batch_norm": jnp.linalg.norm(out0),
        "gradient_norm": frobenius_norms(grads0),
    }
    return base, jax.lax.map(at, etas, batch_size=batch_size)


@partial(jax.jit, static_argnames=("apply", "loss_fn", "strategy"))
def _grid(apply, loss_fn, strategy, params, direction, x, y, etas):
    """The grid split across ``strategy.devices`` local devices (``shard_map`` over a mesh axis ``eta``): every
    device computes the base point itself — the same program on the same inputs, so the same numbers — and
    a contiguous block of the grid, padded with η = 0 to whole chunks per device."""
    devices = jax.local_devices()[: strategy.devices]
    padded = jnp.concatenate([etas, jnp.zeros(-etas.size % (strategy.batch_size * len(devices)), etas.dtype)])
    mesh = jax.sharding.Mesh(np.array(devices), ("eta",))
    replicated, split = jax.sharding.PartitionSpec(), jax.sharding.PartitionSpec("eta")
    base, grid = jax.shard_map(
        partial(_grid_on_device, apply, loss_fn, strategy),
        mesh=mesh,
        in_specs=(replicated, replicated, replicated, replicated, split),
        out_specs=(replicated, split),
        check_vma=False,  # the first layer's VJP is taken once, outside the per-η map (see _evaluator)
    )(params, direction, x, y, padded)
    return base, jax.tree_util.tree_map(lambda a: a[: etas.size], grid)


@dataclass(frozen=True)
class Distances:
    """Measured distances over an η grid (NumPy arrays; ``n`` examples, ``m`` tensors).

    Absolute changes are stored; the relative distances of docs/theory.md §1 are derived properties.
    Examples whose base output is exactly zero have an undefined relative distance: NaN per example,
    left out of ``function_max``/``function_mean`` (``n_zero_output`` counts them).
    """

    etas: np.ndarray  # (k,)
    loss: np.ndarray  # (k,)
    loss0: float
    function_change: np.ndarray  # (k, n)  ‖f_{W+ηU}(x_i) − f_W(x_i)‖
    output_norm: np.ndarray  # (n,)  ‖f_W(x_i)‖
    batch_change: np.ndarray  # (k,)  ‖F_{W+ηU} − F_W‖_F
    batch_norm: float
    gradient_change: np.ndarray  # (k, m)  ‖g_l(W+ηU) − g_l(W)‖_F
    gradient_total_change: np.ndarray  # (k,)
    gradient_norm: np.ndarray  # (m,)  ‖g_l(W)‖_F
    relative_size: np.ndarray  # (k, m)  a_l = η‖U_l‖/‖W_l‖
    delta_norm: np.ndarray  # (k,)  ‖ΔW‖₂ over all tensors
    names: tuple[str, ...]
    is_weight: tuple[bool, ...]  # the layers (trust.base.spec): linear maps and normalisation gains

    @property
    def n_zero_output(self) -> int:
        return int(np.sum(self.output_norm == 0))

    @property
    def function_per_example(self) -> np.ndarray:
        norm = np.where(self.output_norm > 0, self.output_norm, np.nan)
        return self.function_change / norm

    @property
    def function_max(self) -> np.ndarray:
        return np.nanmax(self.function_per_example, axis=1)

    @property
    def function_mean(self) -> np.ndarray:
        return np.nanmean(self.function_per_example, axis=1)

    @property
    def function_frob(self) -> np.ndarray:
        """The batch Frobenius ratio ``‖F_{W+ΔW} − F_W‖_F / ‖F_W‖_F``."""
        return self.batch_change / self.batch_norm

    @property
    def gradient(self) -> np.ndarray:
        """Relative gradient distance of every tensor, ``(k, m)``."""
        return self.gradient_change / self.gradient_norm

    @property
    def gradient_total(self) -> np.ndarray:
        """``‖∇ℒ(W+ΔW) − ∇ℒ(W)‖₂ / ‖∇ℒ(W)‖₂`` over all tensors."""
        return self.gradient_total_change / np.linalg.norm(self.gradient_norm)

    @property
    def weight_relative_size(self) -> np.ndarray:
        """``a_l`` of the weight matrices only, ``(k, L)`` — what the bounds take."""
        return self.relative_size[:, np.asarray(self.is_weight)]


def _check_inputs(apply, params, x, y, direction, etas):
    check_finite(params, "parameters")
    check_finite(direction, "perturbation direction")
    check_finite(x, "input batch")
    if not same_structure(params, direction):
        raise TrustError("the perturbation direction does not have the shape of the parameters")
    if etas.ndim != 1 or etas.size == 0 or not np.all(np.isfinite(etas)):
        raise TrustError("the η grid must be a non-empty 1-D array of finite numbers")
    if jnp.ndim(x) < 2 or jnp.ndim(y) != 1 or x.shape[0] != y.shape[0]:
        raise TrustError(f"expected inputs (n, …) and labels (n,), got {jnp.shape(x)} and {jnp.shape(y)}")
    try:
        out = jax.eval_shape(apply, params, x)
    except (TypeError, ValueError) as err:
        raise TrustError(f"inputs of shape {x.shape} do not fit the network: {str(err).splitlines()[0]}") from None
    if y.size and (int(jnp.min(y)) < 0 or int(jnp.max(y)) >= out.shape[-1]):
        raise TrustError(f"labels must lie in [0, {out.shape[-1]}), got [{int(jnp.min(y))}, {int(jnp.max(y))}]")


def relative_distances(
    apply: Callable,
    params,
    x,
    y,
    direction,
    etas,
    loss: str | Callable = "xent",
    batch_size: int | None = None,
    spec=None,
) -> Distances:
    """Measure the loss and the relative function and gradient distances at ``W + η·U`` for every η.

    Args:
      apply: ``apply(params, x) -> outputs`` (hashable, e.g. ``MLP(...).apply``).
      params: the base point W (a pytree).
      x, y: a full batch ``(n, …)`` and integer labels ``(n,)``.
      direction: ``U`` from :mod:`trust.core.perturb`; ``ΔW(η) = η·U``.
      etas: the grid of η (1-D).
      loss: ``"xent"``, ``"mse"`` or a callable ``loss(outputs, y)``.
      batch_size: η points evaluated at once; default :func:`grid_strategy`'s.
      spec: what each tensor is (:func:`trust.base.spec.resolve`; ``None`` reads trust's own nets' names), which
        decides the layers (``is_weight``).

    Raises:
      TrustError: NaN/Inf input, mismatched shapes, a zero base output batch, a zero base gradient, a zero-norm
        layer that the direction moves (its relative size is undefined; a bias moved from zero has relative size
        inf, reported as such — no bound uses it), or a perturbed network that overflows.
    """
    loss_fn = loss_function(loss)
    etas = np.asarray(etas, dtype=float)
    dtype = jnp.zeros(()).dtype
    if etas.size and np.all(np.isfinite(etas)) and np.max(np.abs(etas)) > np.finfo(dtype).max:
        raise TrustError(f"η up to {np.max(np.abs(etas)):.3g} does not fit {dtype}; use smaller η or float64")
    etas = etas.astype(dtype)
    _check_inputs(apply, params, x, y, direction, etas)
    flags = specs.layer_flags(params, spec)
    strategy = grid_strategy(etas.size, apply)
    if batch_size:
        strategy = strategy._replace(batch_size=batch_size)
    base, grid = _grid(apply, loss_fn, strategy, params, direction, x, y, jnp.asarray(etas))
    base, grid = jax.tree_util.tree_map(np.asarray, (base, grid))
    names = leaf_names(params)
    if not np.isfinite(base["loss0"]) or not np.all(np.isfinite(base["output_norm"])):
        raise TrustError("the network's output or loss at the base point is NaN or Inf")
    overflow = ~np.isfinite(grid["loss"]) | ~np.all(np.isfinite(grid["function_change"]), axis=1)
    overflow |= ~np.all(np.isfinite(grid["gradient_change"]), axis=1)
    if np.any(overflow):
        eta_bad = etas[np.argmax(overflow)]
        raise TrustError(
            f"the perturbed network overflows at η = {eta_bad:g} (NaN or Inf loss, output or gradient in "
            f"{etas.dtype}); use a smaller η grid or float64"
        )
    if base["batch_norm"] == 0:
        raise TrustError("the network's output is zero on every example; relative function distance is undefined")
    zero = [n for n, g in zip(names, base["gradient_norm"]) if not g > 0]
    if zero:
        raise TrustError(
            f"the loss gradient is zero (or NaN) in tensor {zero[0]}; relative gradient distance is undefined"
        )
    direction_norms = leaf_norms(direction)
    sizes = size_ratio(direction_norms, leaf_norms(params))
    moved_zero = [n for n, a, layer in zip(names, sizes, flags) if layer and a == np.inf]
    if moved_zero:
        raise TrustError(
            f"layer {moved_zero[0]} has zero norm but the direction moves it: its relative size ‖ΔW‖/‖W‖ is "
            "undefined; give the layer nonzero weights or leave it out of the direction"
        )
    return Distances(
        etas=etas,
        loss=grid["loss"],
        loss0=float(base["loss0"]),
        function_change=grid["function_change"],
        output_norm=base["output_norm"],
        batch_change=grid["batch_change"],
        batch_norm=float(base["batch_norm"]),
        gradient_change=grid["gradient_change"],
        gradient_total_change=grid["gradient_total_change"],
        gradient_norm=base["gradient_norm"],
        relative_size=np.abs(etas)[:, None] * sizes[None, :],
        delta_norm=np.abs(etas) * float(np.linalg.norm(direction_norms)),
        names=tuple(names),
        is_weight=tuple(flags),
    )
