"""Plain-NumPy spot-check machinery (float64, fixed seeds): the Theorem-1 MLP ``f(x) = φ(W_L … φ(W_1 x))``
(docs/theory.md §1), hand-written backpropagation, and the one comparison every numeric check goes through.

Tolerances: every quantity compared is a ratio of norms of vectors of length ≤ 12 computed in float64,
through at most ~10 matrix products with condition numbers ≤ ~1e4, so its relative rounding error is
below ~1e-11; :data:`RTOL` = 1e-9 leaves two orders of margin and is still far below any violation a
wrong statement produces (the negative controls exceed their bounds by ≥ 1e-3 relative).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

RTOL = 1e-9
ATOL = 1e-14


class Activation(NamedTuple):
    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]


def leaky_relu(slope: float) -> Activation:
    """``φ(z) = z`` for z ≥ 0 and ``s·z`` below; φ' takes the right derivative at 0."""
    return Activation(lambda z: np.where(z >= 0, z, slope * z), lambda z: np.where(z >= 0, 1.0, slope))


TANH = Activation(np.tanh, lambda z: 1.0 - np.tanh(z) ** 2)
IDENTITY = Activation(lambda z: z, np.ones_like)


def forward(ws, x, act: Activation) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Layer inputs ``h_0 = x, …, h_L = f(x)`` and pre-activations ``z_1 … z_L`` (φ at every layer)."""
    hs, zs = [x], []
    for w in ws:
        zs.append(w @ hs[-1])
        hs.append(act.phi(zs[-1]))
    return hs, zs


def layer_gradients(ws, x, act: Activation, output_gradient) -> list[np.ndarray]:
    """``g_l = ∂ℒ/∂W_l = δ_l h_{l−1}ᵀ`` by backpropagation: ``δ_L = φ'(z_L) ⊙ e``, ``e = output_gradient(f(x))``,
    and ``δ_l = φ'(z_l) ⊙ W_{l+1}ᵀ δ_{l+1}``."""
    hs, zs = forward(ws, x, act)
    delta = act.dphi(zs[-1]) * output_gradient(hs[-1])
    grads: list = [None] * len(ws)
    for l in reversed(range(len(ws))):
        grads[l] = np.outer(delta, hs[l])
        if l:
            delta = act.dphi(zs[l - 1]) * (ws[l].T @ delta)
    return grads


def op_norm(m) -> float:
    return float(np.linalg.norm(m, 2))


def kappa(m) -> float:
    """Condition number σ_max/σ_min (``inf`` if singular)."""
    s = np.linalg.svd(m, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else float("inf")


def singular_value_lemmas(rng: np.random.Generator, count: int = 200) -> bool:
    """On random matrices: ``‖M‖_F² = Σσ_i²``; ``σ_min‖v‖ ≤ ‖Mv‖ ≤ σ_max‖v‖`` for random v, with equality at
    the top right singular vector — i.e. ``‖M‖_op = σ_max``."""
    ok = True
    for _ in range(count):
        n = int(rng.integers(2, 11))
        m = rng.standard_normal((n, n)) * 10 ** rng.uniform(-2, 2, n)
        _, sig, vt = np.linalg.svd(m)
        vs = rng.standard_normal((50, n))
        mv = np.linalg.norm(vs @ m.T, axis=1) / np.linalg.norm(vs, axis=1)
        ok &= holds([np.linalg.norm(m) ** 2, np.sum(sig**2)], [np.sum(sig**2), np.linalg.norm(m) ** 2])
        ok &= holds(mv, np.full(50, sig[0])) and holds(np.full(50, sig[-1]), mv)
        ok &= holds([sig[0]], [np.linalg.norm(m @ vt[0])])
    return bool(ok)


def relative(new, old) -> float:
    """``‖new − old‖/‖old‖`` (Frobenius for matrices)."""
    return float(np.linalg.norm(new - old) / np.linalg.norm(old))


def drt(a) -> float:
    """``∏(1 + a_k) − 1``."""
    return float(np.expm1(np.sum(np.log1p(np.asarray(a, dtype=float)))))


def excess(measured, bound) -> float:
    """The largest ``measured − bound`` beyond the tolerance, over paired samples; ≤ 0 means the bound held
    on every sample. Every numeric spot-check and every numeric negative control goes through this."""
    measured, bound = np.asarray(measured, dtype=float), np.asarray(bound, dtype=float)
    return float(np.max(measured - bound * (1 + RTOL) - ATOL))


def holds(measured, bound) -> bool:
    return excess(measured, bound) <= 0


def violations(measured, bound) -> int:
    """How many samples exceed the bound beyond the tolerance."""
    measured, bound = np.asarray(measured, dtype=float), np.asarray(bound, dtype=float)
    return int(np.sum(measured - bound * (1 + RTOL) - ATOL > 0))


def subset_relative_changes(rng: np.random.Generator, update, count: int = 300) -> np.ndarray:
    """``‖ΔW_S‖/‖W_S‖`` over random tensors W, gradients g and nonempty random subsets S of the weights, for
    ``update(w, g) -> ΔW``. Gradients have no zero entries (sign(0) = 0 would leave a weight in place)."""
    out = []
    for _ in range(count):
        shape = tuple(rng.integers(1, 7, rng.integers(1, 4)))
        w, g = rng.standard_normal(shape) * 10 ** rng.uniform(-2, 1), rng.standard_normal(shape)
        delta = update(w, g)
        subset = rng.random(shape) < rng.uniform(0.05, 1.0)
        subset.flat[rng.integers(w.size)] = True
        out.append(np.linalg.norm(delta[subset]) / np.linalg.norm(w[subset]))
    return np.array(out)


def random_square(rng: np.random.Generator, n: int) -> np.ndarray:
    """A Gaussian n×n matrix scaled by 1/√n (well-conditioned enough for the bounds to be finite)."""
    return rng.standard_normal((n, n)) / np.sqrt(n)
