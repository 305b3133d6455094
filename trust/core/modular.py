"""The modular norm (T. Large, Y. Liu, M. Huh, H. Bahng, P. Isola, J. Bernstein, 2024, "Scalable optimization in
the modular norm", arXiv:2405.14813; docs/theory.md §10): a network built from modules, each with a mass μ and an
input sensitivity ν, and one norm on all its weights that composition rules build from the layers' own norms.

A module here is what its norm needs: its mass, its sensitivity, how it is built (for the bound on its output
change, :func:`change_bound`) and for every atom (input first) its :class:`Atom` and its **share** ``s_l`` — the
fraction of a unit modular step the atom takes, so that the modular norm is ``‖w‖_M = max_l ‖W_l‖_*/s_l`` with the
atom norm ``‖W‖_*`` a bound on the atom's RMS → RMS gain (for a dense layer ``√(fan_in/fan_out)·‖W‖_op``, exactly
its largest gain). The rules (§10.1), with ``μ`` the composite's mass:

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
from dataclasses import dataclass, replace
from functools import reduce

import numpy as np

from trust.base import linalg
from trust.base.errors import TrustError


@dataclass(frozen=True)
class Atom:
    """A weighted atom and its tensor's shape (docs/theory.md §10.1, §10.5): ``dense`` ``x ↦ Wx``, ``W`` of
    ``(fan_out, fan_in)``; ``conv`` a same-padded convolution with an HWIO kernel ``(k_h, k_w, c_in, c_out)`` and a
    stride; ``bias`` ``x ↦ x + b``, ``b`` of ``(n,)``."""

    kind: str
    shape: tuple[int, ...]
    stride: int = 1

    def __post_init__(self):
        ranks = {"dense": 2, "conv": 4, "bias": 1}
        if self.kind not in ranks or len(self.shape) != ranks[self.kind] or min(self.shape) < 1 or self.stride < 1:
            raise TrustError(f"an atom is dense (fan_out, fan_in), conv (k_h, k_w, c_in, c_out) with a stride ≥ 1 "
                             f"or bias (n,), got {self.kind} {self.shape} stride {self.stride}")  # fmt: skip

    @property
    def gain(self) -> float:
        """``c`` in ``‖W‖_* = c·‖W‖``: ``√(fan_in/fan_out)`` of the operator norm (dense); ``stride·k_h·k_w·
        √(c_in/c_out)`` of the largest operator norm over the kernel's positions (conv); ``1/√n`` of ``‖b‖``."""
        if self.kind == "dense":
            return math.sqrt(self.shape[1] / self.shape[0])
        if self.kind == "conv":
            k_h, k_w, c_in, c_out = self.shape
            return self.stride * k_h * k_w * math.sqrt(c_in / c_out)
        return 1 / math.sqrt(self.shape[0])

    def positions(self, t: np.ndarray) -> np.ndarray:
        """A dense or conv tensor as a stack of the matrices whose operator norms the atom norm takes: the matrix
        itself (dense), one ``c_in × c_out`` matrix per kernel position (conv)."""
        return t.reshape(1, *t.shape) if self.kind == "dense" else t.reshape(-1, *t.shape[2:])


@dataclass(frozen=True)
class Module:
    """Mass ``μ ≥ 0``, sensitivity ``ν > 0``, per atom (input first) its share and :class:`Atom`; ``op`` and
    ``parts`` say how it is built (``atom``, ``bond``, ``compose`` of ``(inner, outer)``, ``add`` of its branches,
    ``scale`` of one part by ``factor``) for :func:`change_bound`."""

    mass: float
    sensitivity: float
    shares: tuple[float, ...] = ()
    atoms: tuple[Atom, ...] = ()
    op: str = "bond"
    parts: tuple[Module, ...] = ()
    factor: float = 1.0


def linear(fan_out: int, fan_in: int, mass: float = 1.0) -> Module:
    """A dense atom ``x ↦ Wx``, ``W`` of ``fan_out × fan_in``: sensitivity 1 (its norm at most 1), share 1."""
    return _atom(Atom("dense", (fan_out, fan_in)), mass)


def conv(kernel: tuple[int, int, int, int], stride: int = 1, mass: float = 1.0) -> Module:
    """A same-padded convolution atom, HWIO ``kernel`` shape, with its stride (docs/theory.md §10.5)."""
    return _atom(Atom("conv", tuple(kernel), stride), mass)


def bias(n: int, mass: float = 1.0) -> Module:
    """A bias atom ``x ↦ x + b`` (docs/theory.md §10.5): sensitivity 1, norm ``‖b‖_RMS``."""
    return _atom(Atom("bias", (n,)), mass)


def _atom(atom: Atom, mass: float) -> Module:
    if not mass > 0:
        raise TrustError(f"an atom needs a mass > 0, got {mass}")
    return Module(float(mass), 1.0, (1.0,), (atom,), "atom")


def bond(sensitivity: float = 1.0) -> Module:
    """A module without weights (a nonlinearity, the identity, a mean over positions): mass 0. ReLU is
    1-Lipschitz with ``φ(0) = 0``: sensitivity 1."""
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
        inner.atoms + outer.atoms,
        "compose",
        (inner, outer),
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
        tuple(a for b in branches for a in b.atoms),
        "add",
        tuple(branches),
    )


def scale(module: Module, a: float) -> Module:
    """``x ↦ a·m(x)``: the sensitivity times ``|a|``."""
    if a == 0:
        raise TrustError("a module scaled by 0 has no norm")
    return Module(module.mass, abs(a) * module.sensitivity, module.shares, module.atoms, "scale", (module,), abs(a))


def tare(module: Module, mass: float) -> Module:
    """The module with total mass ``mass`` (every child's scaled alike, so its own shares are unchanged)."""
    if not mass > 0:
        raise TrustError(f"a module's mass must be > 0, got {mass}")
    return replace(module, mass=float(mass))


def residual(block: Module, depth: int) -> Module:
    """The depth-scaled residual block ``x ↦ (1 − 1/L)·x + (1/L)·block(x)`` of the paper: sensitivity
    ``1 − 1/L + ν/L`` (1 for a block of sensitivity 1), so a stack of ``L`` of them is not more sensitive."""
    if depth < 1:
        raise TrustError(f"depth must be ≥ 1, got {depth}")
    if depth == 1:
        return block
    return add(scale(IDENTITY, 1 - 1 / depth), scale(block, 1 / depth))


def mlp(widths: Sequence[int], residual_hidden: bool = False, depth_scaled: bool = False, biases: bool = False,
        phi: Module = IDENTITY, hidden_mass: float | None = None) -> Module:  # fmt: skip
    """The module of trust's MLP of ``widths`` (``d_0, …, d_L``): ``W_L ∘ φ ∘ … ∘ φ ∘ W_1`` with φ the bond
    ``phi`` (a ReLU: sensitivity 1, the default). ``biases``: every layer ``x ↦ Wx + b``, a dense atom then a bias
    atom; ``residual_hidden``: hidden layers ``h + φ(W h)`` as trust builds them (the sum rule: sensitivity 2 a
    block); ``depth_scaled``: the paper's ``(1 − 1/L)h + φ(W h)/L`` instead. Masses: every atom 1 (the paper's
    default), or with ``hidden_mass`` the hidden layers together (``L ≥ 3``) tared to it beside the first and last
    layers (docs/theory.md §10.1: on a bias-free net with plain or depth-scaled hidden layers the first and last
    keep ``1/(2 + hidden_mass)`` of the step each at any depth; with biases a layer has mass 2, dense and bias, and
    behind undamped residual blocks the first layer's share still halves with every block)."""
    if len(widths) < 2:
        raise TrustError(f"an MLP needs at least two widths, got {tuple(widths)}")
    layers = [compose(bias(o), linear(o, i)) if biases else linear(o, i) for i, o in zip(widths[:-1], widths[1:])]
    if len(layers) == 1:
        return layers[0]
    blocks = len(layers) - 2

    def hidden(w: Module) -> Module:
        if not residual_hidden:
            return compose(phi, w)
        return residual(compose(phi, w), blocks) if depth_scaled else add(IDENTITY, compose(phi, w))

    # input first: φ ∘ W_1, the hidden layers, W_L; composed outermost first
    stack = [hidden(w) for w in layers[1:-1]]
    if stack and hidden_mass is not None:
        stack = [tare(compose(*reversed(stack)), hidden_mass)]
    return compose(*reversed([compose(phi, layers[0]), *stack, layers[-1]]))


def resnet(in_channels: int, plan: Sequence[tuple[int, int, int, bool]], n_classes: int, kernel: int = 3,
           phi: Module = IDENTITY) -> Module:  # fmt: skip
    """The module of trust's pre-activation ResNet without normalisation (:class:`trust.core.nets.ResNet`,
    docs/theory.md §10.5): a ``kernel``-square stem convolution to ``plan[0][0]`` channels; per block ``(c_in,
    c_out, stride, projected)`` of ``plan`` the branch ``conv₂ ∘ φ ∘ conv₁`` summed with the identity (after φ:
    ``h + branch(φ(h))``, sensitivity 2) or, projected, with a 1×1 strided convolution of the same ``φ(h)``; then
    φ (the bond ``phi``, a ReLU by default), the mean over positions (a bond of sensitivity 1: the RMS of the
    per-channel means is at most the RMS over positions) and the head, a dense atom and its bias. Atoms input
    first: the stem, per block ``conv₁, conv₂(, proj)``, the head's matrix, its bias."""
    if not plan:
        raise TrustError("a ResNet needs at least one block")
    blocks = []
    for c_in, c_out, stride, projected in plan:
        branch = compose(conv((kernel, kernel, c_out, c_out)), phi, conv((kernel, kernel, c_in, c_out), stride))
        if projected:
            blocks.append(compose(add(branch, conv((1, 1, c_in, c_out), stride)), phi))
        else:
            blocks.append(add(compose(branch, phi), IDENTITY))
    last = plan[-1][1]
    head = compose(bias(n_classes), linear(n_classes, last))
    stem = conv((kernel, kernel, in_channels, plan[0][0]))
    return compose(head, IDENTITY, phi, *reversed(blocks), stem)


def atom_norm(w, atom: Atom, tol: float = 1e-6) -> float:
    """``‖W‖_*``, a bound on the atom's RMS → RMS gain (docs/theory.md §10.1, §10.5): ``√(fan_in/fan_out)·‖W‖_op``
    (dense: exactly the largest gain), ``stride·k_h·k_w·√(c_in/c_out)·max_ij ‖W_ij‖_op`` over the kernel's
    positions (conv), ``‖b‖_RMS`` (bias)."""
    w = np.asarray(w, dtype=float)
    if w.shape != atom.shape:
        raise TrustError(f"a {atom.kind} atom of shape {atom.shape} got a tensor of shape {w.shape}")
    if atom.kind == "bias":
        return atom.gain * float(np.linalg.norm(w))
    return atom.gain * max(linalg.operator_norm(p, tol=tol) for p in atom.positions(w))


def _unit_dual(g, atom: Atom) -> np.ndarray:
    """The direction of atom norm 1 that maximises ``⟨g, Δw⟩`` (a zero direction for a zero ``g``): the polar
    factor of every matrix (dense) or kernel position (conv) over the atom's gain; ``g/‖g‖`` over it (bias)."""
    g = np.asarray(g, dtype=float)
    if atom.kind == "bias":
        n = float(np.linalg.norm(g))
        return g / (n * atom.gain) if n else np.zeros_like(g)
    return np.stack([linalg.polar(p) for p in atom.positions(g)]).reshape(g.shape) / atom.gain


def _check(module: Module, weights: Sequence) -> None:
    if len(weights) != len(module.shares):
        raise TrustError(f"the module has {len(module.shares)} atoms, got {len(weights)} tensors")


def norm(module: Module, weights: Sequence, tol: float = 1e-6) -> float:
    """``‖w‖_M = max_l ‖W_l‖_*/s_l`` (docs/theory.md §10.1)."""
    _check(module, weights)
    return max(atom_norm(w, a, tol) / s for w, a, s in zip(weights, module.atoms, module.shares))


def dual_norm(module: Module, grads: Sequence) -> float:
    """``‖g‖_M^† = Σ_l s_l·⟨G_l, D_l⟩``, ``D_l`` the atom's unit dual direction (for a dense atom
    ``s_l·√(fan_out/fan_in)·‖G_l‖_nuclear``): the largest ``⟨g, Δw⟩`` over ``‖Δw‖_M ≤ 1``."""
    _check(module, grads)
    return sum(s * float(np.sum(np.asarray(g, dtype=float) * _unit_dual(g, a)))
               for g, a, s in zip(grads, module.atoms, module.shares))  # fmt: skip


def dualize(module: Module, grads: Sequence, target: float = 1.0) -> list[np.ndarray]:
    """The step of modular norm ``target`` that maximises ``⟨g, Δw⟩``: per atom ``target·s_l`` times its unit dual
    direction — for dense atoms ``target·s_l·√(fan_out/fan_in)·polar(G_l)``, orthogonalised SGD with a per-layer
    rate (§10.2); per kernel position for a convolution."""
    _check(module, grads)
    return [target * s * _unit_dual(g, a) for g, a, s in zip(grads, module.atoms, module.shares)]


@dataclass(frozen=True)
class _Bounds:
    """For every input ``x``: ``‖f(x)‖ ≤ gain·‖x‖ + offset`` (and ``f`` is ``gain``-Lipschitz), the same after the
    step (``gain_after``, ``offset_after``), and ``‖f'(x) − f(x)‖ ≤ change·‖x‖ + change_offset`` (RMS norms)."""

    gain: float
    offset: float
    gain_after: float
    offset_after: float
    change: float
    change_offset: float


def _bounds(module: Module, atoms) -> _Bounds:
    if module.op == "atom":
        (atom,) = module.atoms
        w, dw = next(atoms)
        if atom.kind == "bias":
            return _Bounds(1.0, w, 1.0, w + dw, 0.0, dw)
        return _Bounds(w, 0.0, w + dw, 0.0, dw, 0.0)
    if module.op == "bond":
        return _Bounds(module.sensitivity, 0.0, module.sensitivity, 0.0, 0.0, 0.0)
    parts = [_bounds(p, atoms) for p in module.parts]  # input first: a composition's parts are (inner, outer)
    if module.op == "compose":
        i, o = parts
        return _Bounds(
            o.gain * i.gain,
            o.gain * i.offset + o.offset,
            o.gain_after * i.gain_after,
            o.gain_after * i.offset_after + o.offset_after,
            o.gain_after * i.change + o.change * i.gain,
            o.gain_after * i.change_offset + o.change * i.offset + o.change_offset,
        )
    a = module.factor if module.op == "scale" else 1.0
    return _Bounds(*(a * sum(getattr(p, f) for p in parts) for f in _Bounds.__dataclass_fields__))


def change_bound(module: Module, norms: Sequence[float], steps: Sequence[float]) -> tuple[float, float]:
    """``(d, e)`` with ``‖f(w + Δw)(x) − f(w)(x)‖_RMS ≤ d·‖x‖_RMS + e`` for every input ``x``, given every atom's
    ``‖W_l‖_*`` (``norms``) and ``‖ΔW_l‖_*`` (``steps``), input first (docs/theory.md §10.3, a theorem for a module
    of these atoms and bonds that are ν-Lipschitz with ``φ(0) = 0``). For a plain composition of dense atoms
    ``d = ∏(‖W_l‖_* + ‖ΔW_l‖_*) − ∏‖W_l‖_*`` and ``e = 0``."""
    if len(norms) != len(module.atoms) or len(steps) != len(module.atoms):
        raise TrustError(f"the module has {len(module.atoms)} atoms, got {len(norms)} norms and {len(steps)} steps")
    b = _bounds(module, iter(zip(map(float, norms), map(float, steps))))
    return b.change, b.change_offset
