"""Optimisers as ``optax.GradientTransformation``s (THEORY §4).

Written here only where optax lacks the algorithm or differs from the paper: :func:`fromage` (the
authors' zero-norm rule and ``p_bound``), :func:`lars` (the paper's "LARS" = Fromage without the
``1/√(1+η²)`` factor), :func:`madam` and :func:`madam_lns`. SGD and Adam are optax's own.

Every transformation here needs ``params`` in ``update`` and returns ``updates = p_new − p``, so that
``optax.apply_updates`` lands on the published rule's ``p_new`` (to one rounding of the addition).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

sgd = optax.sgd
adam = optax.adam


def _value(schedule, count):
    return schedule(count) if callable(schedule) else schedule


def _norm(x):
    return jnp.sqrt(jnp.sum(jnp.square(x)))


class ScaleByRelativeState(NamedTuple):
    count: jax.Array
    init_norm: optax.Params  # ‖p_init‖ per tensor (for p_bound)


def _relative_step(learning_rate, p_bound, prefactor: bool) -> optax.GradientTransformation:
    def init_fn(params):
        return ScaleByRelativeState(jnp.zeros([], jnp.int32), jax.tree_util.tree_map(_norm, params))

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError(optax.NO_PARAMS_MSG)
        lr = _value(learning_rate, state.count)

        def step(g, p, n0):
            p_norm, g_norm = _norm(p), _norm(g)
            # the authors' rule: a relative step ‖p‖/‖g‖·g, or the plain SGD step when either norm is 0
            ratio = jnp.where((p_norm > 0) & (g_norm > 0), p_norm / jnp.where(g_norm > 0, g_norm, 1.0), 1.0)
            new = p - lr * ratio * g
            if prefactor:
                new = new / jnp.sqrt(1.0 + lr**2)
            if p_bound is not None:
                limit, new_norm = p_bound * n0, _norm(new)
                new = jnp.where(new_norm > limit, new * limit / jnp.where(new_norm > 0, new_norm, 1.0), new)
            return (new - p).astype(p.dtype)

        updates = jax.tree_util.tree_map(step, grads, params, state.init_norm)
        return updates, ScaleByRelativeState(optax.safe_int32_increment(state.count), state.init_norm)

    return optax.GradientTransformation(init_fn, update_fn)


def fromage(learning_rate: optax.ScalarOrSchedule = 0.01, p_bound: float | None = None) -> optax.GradientTransformation:
    """Fromage (Bernstein, Vahdat, Yue & Liu, NeurIPS 2020, Algorithm 1), per tensor p with gradient g:

    ``p ← (p − η·(‖p‖_F/‖g‖_F)·g) / √(1+η²)``; if ‖p‖ = 0 or ‖g‖ = 0 the step is the plain ``p − η·g``
    (still divided by √(1+η²)); with ``p_bound``, p is then rescaled so that ‖p‖ ≤ p_bound·‖p_init‖.

    Defaults follow the authors' PyTorch implementation (github.com/jxbz/fromage): η = 0.01, no p_bound.
    Departure from ``optax.fromage``, which clamps norms at ``min_norm = 1e-6``: a zero tensor (e.g. a
    zero-initialised bias) takes the plain SGD step here, as in the authors' code, instead of barely
    moving. With ``p_bound``, a tensor whose initial norm is 0 is held at 0 (the authors' rule too).

    Norm identity (THEORY §4): ``‖p_new‖²/‖p‖² = (1 − 2η cos φ + η²)/(1 + η²)``, φ = ∠(p, g).

    Example:
      >>> import jax.numpy as jnp, optax
      >>> opt = fromage(0.01)
      >>> params = {"w": jnp.ones((2, 2))}
      >>> updates, _ = opt.update({"w": jnp.eye(2)}, opt.init(params), params)
      >>> new = optax.apply_updates(params, updates)
    """
    return _relative_step(learning_rate, p_bound, prefactor=True)


def lars(learning_rate: optax.ScalarOrSchedule = 0.01, p_bound: float | None = None) -> optax.GradientTransformation:
    """The paper's "LARS": Fromage without the ``1/√(1+η²)`` factor (Bernstein et al. 2020, §5 comparison),
    ``p ← p − η·(‖p‖/‖g‖)·g``. When g ⟂ p the norm grows by √(1+η²) per step. Not optax.lars (which adds
    weight decay, momentum and a trust coefficient)."""
    return _relative_step(learning_rate, p_bound, prefactor=False)


class MadamState(NamedTuple):
    count: jax.Array
    exp_avg_sq: optax.Params  # v
    max: optax.Params  # σ* = p_scale·RMS(p_init) per tensor


def _normalised_gradient(grads, state, b2, g_bound):
    """``g* = clip(g/√v̂, ±g_bound)`` with NaN → 0 and no ε (the authors' Madam); also returns new v."""
    count = optax.safe_int32_increment(state.count)
    v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g), state.exp_avg_sq, grads)

    def normalise(g, v):
        gn = g / jnp.sqrt(v / (1 - b2 ** count.astype(v.dtype)))
        return jnp.clip(jnp.where(jnp.isnan(gn), 0.0, gn), -g_bound, g_bound)

    return count, v, jax.tree_util.tree_map(normalise, grads, v)


def _madam_init(p_scale):
    def init_fn(params):
        return MadamState(jnp.zeros([], jnp.int32), jax.tree_util.tree_map(jnp.zeros_like, params),
                          jax.tree_util.tree_map(lambda p: p_scale * jnp.sqrt(jnp.mean(jnp.square(p))), params))
    return init_fn


def madam(learning_rate: optax.ScalarOrSchedule = 0.01, p_scale: float = 3.0, g_bound: float = 10.0,
          b2: float = 0.999) -> optax.GradientTransformation:
    """Madam (Bernstein, Zhao, Meister, Liu, Anandkumar & Yue, NeurIPS 2020, Algorithm 1), per tensor:

    at init ``σ* = p_scale·RMS(p_init)``, ``v = 0``; each step ``v ← b2·v + (1−b2)g²``,
    ``v̂ = v/(1−b2^t)``, ``g* = clip(g/√v̂, ±g_bound)`` with NaN → 0 (no ε),
    ``p ← p ⊙ exp(−η·g* ⊙ sign p)``, then ``p ← clip(p, −σ*, σ*)``.

    Defaults follow the authors' PyTorch implementation (github.com/jxbz/madam): η = 0.01, p_scale = 3,
    g_bound = 10, b2 = 0.999. (Their JAX version clips at 1×RMS: ``p_scale=1``.) The first step is the
    sign-multiplicative update ``p ⊙ exp(−η·sign g ⊙ sign p)``. Zero weights never move and signs never
    flip, so biases need a nonzero initialisation. A NaN gradient entry makes its ``v`` NaN, and that
    weight never moves again — as in the authors' code.
    """
    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError(optax.NO_PARAMS_MSG)
        lr = _value(learning_rate, state.count)
        count, v, gn = _normalised_gradient(grads, state, b2, g_bound)

        def step(p, g, cap):
            new = jnp.clip(p * jnp.exp(-lr * g * jnp.sign(p)), -cap, cap)
            return (new - p).astype(p.dtype)

        return jax.tree_util.tree_map(step, params, gn, state.max), MadamState(count, v, state.max)

    return optax.GradientTransformation(_madam_init(p_scale), update_fn)


class MadamLNSState(NamedTuple):
    count: jax.Array
    exp_avg_sq: optax.Params
    max: optax.Params  # σ*
    sign: optax.Params  # sign of each weight (fixed)
    exponent: optax.Params  # integer n ∈ [0, levels): |w| = σ*·exp(−base_lr·n)


def lns_value(sign, exponent, sigma, base_lr):
    """``w = sign·σ*·exp(−base_lr·n)`` — a weight in the logarithmic number system (THEORY §4)."""
    return sign * sigma * jnp.exp(-base_lr * exponent.astype(sigma.dtype))


def lns_init(key: jax.Array, params, levels: int = 4096, base_lr: float = 0.001, p_scale: float = 3.0):
    """Re-draw every magnitude log-uniformly over the representable range, keeping the signs (the
    authors' low-precision Madam init): ``n ~ U{0, …, levels−1}``, ``w = sign(p)·σ*·exp(−base_lr·n)``."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    out = []
    for i, p in enumerate(leaves):
        sigma = p_scale * jnp.sqrt(jnp.mean(jnp.square(p)))
        n = jax.random.randint(jax.random.fold_in(key, i), p.shape, 0, levels)
        out.append(lns_value(jnp.sign(p), n, sigma, base_lr).astype(p.dtype))
    return jax.tree_util.tree_unflatten(treedef, out)


def madam_lns(levels: int = 4096, base_lr: float = 0.001, lr_factor: optax.ScalarOrSchedule = 10.0,
              p_scale: float = 3.0, g_bound: float = 10.0, b2: float = 0.999) -> optax.GradientTransformation:
    """Low-precision Madam in a logarithmic number system (Bernstein et al. 2020, "multiplicative
    weight updates", §5): each weight is a sign and an integer exponent ``n ∈ [0, levels)``,
    ``w = sign·σ*·exp(−base_lr·n)``; each step ``n ← clip(n + round(g*·lr_factor)·sign w, 0, levels−1)``
    with g* Madam's normalised gradient. Bits ``B = log2(levels)``; dynamic range ``e^{base_lr(levels−1)}``.

    Defaults follow the authors' low-precision experiments: 4096 levels (12 bits), base_lr = 0.001,
    lr_factor 10 (they used 10–16), p_scale 3. ``lr_factor`` may be a schedule: a learning-rate decay
    divides it. ``init`` quantises the given parameters onto the grid (use :func:`lns_init` for the
    authors' log-uniform re-draw); the integer exponents are the state, the returned updates move the
    parameters exactly onto ``lns_value(sign, n, σ*, base_lr)``.
    """
    if levels < 2:
        raise ValueError(f"levels must be ≥ 2, got {levels}")
    madam_init = _madam_init(p_scale)

    def init_fn(params):
        base = madam_init(params)

        def quantise(p, sigma):
            ratio = jnp.abs(p) / jnp.where(sigma > 0, sigma, 1.0)
            n = jnp.round(-jnp.log(jnp.where(ratio > 0, ratio, 1.0)) / base_lr)
            return jnp.clip(n, 0, levels - 1).astype(jnp.int32)

        exponent = jax.tree_util.tree_map(quantise, params, base.max)
        return MadamLNSState(base.count, base.exp_avg_sq, base.max, jax.tree_util.tree_map(jnp.sign, params), exponent)

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError(optax.NO_PARAMS_MSG)
        factor = _value(lr_factor, state.count)
        count, v, gn = _normalised_gradient(grads, state, b2, g_bound)

        def step(n, g, s):
            return jnp.clip(n + (jnp.round(g * factor) * s).astype(jnp.int32), 0, levels - 1)

        exponent = jax.tree_util.tree_map(step, state.exponent, gn, state.sign)
        new = jax.tree_util.tree_map(lambda s, n, m: lns_value(s, n, m, base_lr), state.sign, exponent, state.max)
        updates = jax.tree_util.tree_map(lambda w, p: (w - p).astype(p.dtype), new, params)
        return updates, MadamLNSState(count, v, state.max, state.sign, exponent)

    return optax.GradientTransformation(init_fn, update_fn)
