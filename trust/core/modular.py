"""The modular norm (T. Large, Y. Liu, M. Huh, H. Bahng, P. Isola, J. Bernstein, 2024, "Scalable optimization in
the modular norm", arXiv:2405.14813; docs/theory.md §10): a network built from modules, each with a mass μ and an
input sensitivity ν, and one norm on all its weights that composition rules build from the layers' own norms.

A module here is what its norm needs: its mass, its sensitivity, and for every atom (linear layer, input first)
its fans and its **share** ``s_l`` — the fraction of a unit modular step the atom takes, so that the modular norm
is ``‖w‖_M = max_l ‖W_l‖_*/s_l`` with the atom norm ``‖W‖_* = √(fan_in/fan_out)·‖W‖_op`` (the RMS → RMS
operator norm). The rules (§10.1), with ``μ`` the composite's mass:

- ``compose(outer, inner)``: ``μ = μ_i + μ_o``, ``ν = ν_i·ν_o``; the inner atoms' shares times ``μ_i/(μ·ν_o)``,
  the outer ones' times ``μ_o/μ``;
- ``add(m_1, …)`` (branches summed): ``μ = Σμ_k``, ``ν = Σν_k``; each branch's shares times ``μ_k/μ``;
- ``scale(m, a)``: ``ν`` times ``|a|``; a bond (a nonlinearity, no weights) has mass 0;
- ``tare(m, μ)``: the mass set to ``μ`` (every child's in proportion: the shares inside are unchanged).

The shares follow from the paper's recursive definition (``‖(w_i, w_o)‖ = max(ν_o·(μ/μ_i)‖w_i‖, (μ/μ_o)‖w_o‖)``
for a composition, ``max_k (μ/μ_k)‖w_k‖`` for a sum) by induction; tests check both forms agree."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

import numpy as np

from trust.base import linalg
from trust.base.errors import TrustError


@dataclass(frozen=True)
class Module:
    """Mass ``μ ≥ 0``, sensitivity ``ν > 0``, and per atom (input first) its share and ``(fan_out, fan_in)``."""

    mass: float
    sensitivity: float
    shares: tuple[float, ...] = ()
    fans: tuple[tuple[int, int], ...] = ()


def linear(fan_out: int, fan_in: int, mass: float = 1.0) -> Module:
    """A linear atom ``x ↦ Wx``, ``W`` of ``fan_out × fan_in``: sensitivity 1 (its norm at most 1), share 1."""
    if fan_out < 1 or fan_in < 1 or not mass > 0:
        raise TrustError(f"a linear atom needs fans ≥ 1 and a mass > 0, got {fan_out}×{fan_in}, mass {mass}")
    return Module(float(mass), 1.0, (1.0,), ((fan_out, fan_in),))


def bond(sensitivity: float = 1.0) -> Module:
    """A module without weights (a nonlinearity, the identity): mass 0. ReLU is 1-Lipschitz: sensitivity 1."""
    if not sensitivity > 0:
        raise TrustError(f"a bond's sensitivity must be > 0, got {sensitivity}")
    return Module(0.0, float(sensitivity))


IDENTITY = bond(1.0)


def _after(inner: Module, outer: Module) -> Module:
    """``outer ∘ inner`` (the composition rule)."""
    mass = inner.mass + outer.mass
    inner_factor = inner.mass / (mass * outer.sensitivity) if mass else 0.0
    outer_factor = outer.mass / mass if mass else 0.0
    return Module(
        mass,
        inner.sensitivity * outer.sensitivity,
        tuple(s * inner_factor for s in inner.shares) + tuple(s * outer_factor for s in outer.shares),
        inner.fans + outer.fans,
    )


def compose(*modules: Module) -> Module:
    """``m_1 ∘ m_2 ∘ … ∘ m_k``: the outermost first, as written; its atoms input first."""
    if not modules:
        raise TrustError("compose needs at least one module")
    return reduce(_after, reversed(modules))


def add(*branches: Module) -> Module:
    """``x ↦ Σ_k m_k(x)`` (the sum rule); atoms in branch order."""
    mass = sum(b.mass for b in branches)
    return Module(
        mass,
        sum(b.sensitivity for b in branches),
        tuple(s * (b.mass / mass) for b in branches for s in b.shares),
        tuple(f for b in branches for f in b.fans),
    )


def scale(module: Module, a: float) -> Module:
    """``x ↦ a·m(x)``: the sensitivity times ``|a|``."""
    if a == 0:
        raise TrustError("a module scaled by 0 has no norm")
    return Module(module.mass, abs(a) * module.sensitivity, module.shares, module.fans)


def tare(module: Module, mass: float) -> Module:
    """The module with total mass ``mass`` (every child's scaled alike, so its own shares are unchanged)."""
    if not mass > 0:
        raise TrustError(f"a module's mass must be > 0, got {mass}")
    return Module(float(mass), module.sensitivity, module.shares, module.fans)


def residual(block: Module, depth: int) -> Module:
    """The depth-scaled residual block ``x ↦ (1 − 1/L)·x + (1/L)·block(x)`` of the paper: sensitivity
    ``1 − 1/L + ν/L`` (1 for a block of sensitivity 1), so a stack of ``L`` of them is not more sensitive."""
    if depth < 1:
        raise TrustError(f"depth must be ≥ 1, got {depth}")
    if depth == 1:
        return block
    return add(scale(IDENTITY, 1 - 1 / depth), scale(block, 1 / depth))


def mlp(widths: Sequence[int], residual_hidden: bool = False, depth_scaled: bool = False) -> Module:
    """The module of trust's bias-free MLP of ``widths`` (``d_0, …, d_L``): ``W_L ∘ φ ∘ … ∘ φ ∘ W_1`` with φ a
    ReLU (a bond of sensitivity 1). ``residual_hidden``: hidden layers ``h + φ(W h)`` as trust builds them (the
    sum rule: sensitivity 2 a block); ``depth_scaled``: the paper's ``(1 − 1/L)h + φ(W h)/L`` instead."""
    if len(widths) < 2:
        raise TrustError(f"an MLP needs at least two widths, got {tuple(widths)}")
    layers = [linear(o, i) for i, o in zip(widths[:-1], widths[1:])]
    if len(layers) == 1:
        return layers[0]
    relu = bond(1.0)
    blocks = len(layers) - 2

    def hidden(w: Module) -> Module:
        if not residual_hidden:
            return compose(relu, w)
        return residual(compose(relu, w), blocks) if depth_scaled else add(IDENTITY, compose(relu, w))

    # input first: φ ∘ W_1, the hidden layers, W_L; composed outermost first
    return compose(*reversed([compose(relu, layers[0]), *map(hidden, layers[1:-1]), layers[-1]]))


def atom_norm(w, fans: tuple[int, int], tol: float = 1e-6) -> float:
    """``‖W‖_* = √(fan_in/fan_out)·‖W‖_op``: the largest RMS gain ``‖Wx‖_RMS/‖x‖_RMS``."""
    fan_out, fan_in = fans
    if np.size(w) != fan_out * fan_in:
        raise TrustError(f"a {fan_out}×{fan_in} atom got a tensor of shape {np.shape(w)}")
    return math.sqrt(fan_in / fan_out) * linalg.operator_norm(np.reshape(np.asarray(w), (fan_out, fan_in)), tol=tol)


def _check(module: Module, weights: Sequence) -> None:
    if len(weights) != len(module.shares):
        raise TrustError(f"the module has {len(module.shares)} atoms, got {len(weights)} tensors")


def norm(module: Module, weights: Sequence, tol: float = 1e-6) -> float:
    """``‖w‖_M = max_l ‖W_l‖_*/s_l`` (docs/theory.md §10.1)."""
    _check(module, weights)
    return max(atom_norm(w, f, tol) / s for w, f, s in zip(weights, module.fans, module.shares))


def dual_norm(module: Module, grads: Sequence) -> float:
    """``‖g‖_M^† = Σ_l s_l·√(fan_out/fan_in)·‖G_l‖_nuclear``: the largest ``⟨g, Δw⟩`` over ``‖Δw‖_M ≤ 1``."""
    _check(module, grads)
    return sum(
        s * math.sqrt(o / i) * float(np.linalg.norm(np.reshape(np.asarray(g, dtype=float), (o, i)), "nuc"))
        for g, (o, i), s in zip(grads, module.fans, module.shares)
    )


def dualize(module: Module, grads: Sequence, target: float = 1.0) -> list[np.ndarray]:
    """The step of modular norm ``target`` that maximises ``⟨g, Δw⟩``: per atom
    ``target·s_l·√(fan_out/fan_in)·polar(G_l)`` (orthogonalised SGD with a per-layer rate, §10.2)."""
    _check(module, grads)
    out = []
    for g, (o, i), s in zip(grads, module.fans, module.shares):
        q = linalg.polar(np.reshape(np.asarray(g), (o, i)))
        out.append(np.reshape(target * s * math.sqrt(o / i) * q, np.shape(g)))
    return out
