"""Optimisers as ``optax.GradientTransformation``s built from optax pieces (docs/theory.md §4).

SGD and Adam are optax's own. Fromage and the paper's "LARS" are optax's trust-ratio chains plus our
:func:`clip_to_init_norm` (the authors' ``p_bound``). Madam and LNS-Madam chain our
:func:`scale_by_madam` (the normalised gradient g*), ``optax.scale_by_learning_rate`` and our
:func:`madam_update` / :func:`madam_lns_update`, which turn the log-space step into a multiplicative one.
So every optimiser here works under ``optax.inject_hyperparams`` and with learning-rate schedules.

Our transforms need ``params`` in ``update`` and return ``updates = p_new − p``, so that
``optax.apply_updates`` lands on the published rule's ``p_new`` (to one rounding of the addition).

References:
  Bernstein, Vahdat, Yue & Liu, "On the distance between two neural networks and the stability of
  learning", NeurIPS 2020 (arXiv 2002.03432) — "Bernstein et al. 2020a".
  Bernstein, Zhao, Meister, Liu, Anandkumar & Yue, "Learning compositional functions via multiplicative
  weight updates", NeurIPS 2020 (arXiv 2006.14560) — "Bernstein et al. 2020b".
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from trust.base import linalg
from trust.base import spec as specs
from trust.base.spec import Leaf

sgd = optax.sgd
adam = optax.adam


# optax has no public constant for this message (optax.NO_PARAMS_MSG is gone in 0.2.8: found by mutation testing)
NO_PARAMS = "this transformation needs the parameters: call update(updates, state, params)"


def _norm(x):
    return jnp.sqrt(jnp.sum(jnp.square(x)))


def _sigma_max(p, p_scale):
    """σ* = p_scale·RMS(p)."""
    return p_scale * jnp.sqrt(jnp.mean(jnp.square(p)))


class ClipToInitNormState(NamedTuple):
    init_norm: optax.Params  # ‖p_init‖ per tensor


def clip_to_init_norm(p_bound: float) -> optax.GradientTransformation:
    """Rescale each new tensor so that ``‖p_new‖ ≤ p_bound·‖p_init‖`` (the authors' ``p_bound``).

    Optax has no such transform. A tensor whose initial norm is 0 is held at 0, as in the authors' code.
    Updates that keep the bound pass through unchanged.

    Args:
      p_bound: the bound, relative to each tensor's norm at ``init``.

    Returns:
      An ``optax.GradientTransformation`` whose ``update`` needs ``params``; its state holds ``‖p_init‖``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> opt = optax.chain(optax.sgd(1.0), clip_to_init_norm(2.0))
      >>> p = {"w": jnp.ones(4)}
      >>> updates, _ = opt.update({"w": -jnp.ones(4)}, opt.init(p), p)
      >>> float(jnp.linalg.norm(optax.apply_updates(p, updates)["w"]))  # 4 clipped to 2·2
      4.0

    References:
      Bernstein et al. 2020a, Algorithm 1 and the authors' code (github.com/jxbz/fromage); docs/theory.md §4.
    """

    def init_fn(params):
        return ClipToInitNormState(jax.tree_util.tree_map(_norm, params))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS)

        def clip(u, p, n0):
            new = p + u
            limit, norm = p_bound * n0, _norm(new)
            return jnp.where(norm > limit, new * (limit / jnp.where(norm > 0, norm, 1.0)) - p, u)

        return jax.tree_util.tree_map(clip, updates, params, state.init_norm), state

    return optax.GradientTransformation(init_fn, update_fn)


def _with_p_bound(inner: optax.GradientTransformation, p_bound: float | None) -> optax.GradientTransformation:
    return inner if p_bound is None else optax.chain(inner, clip_to_init_norm(p_bound))


def fromage(learning_rate: optax.ScalarOrSchedule = 0.01, p_bound: float | None = None) -> optax.GradientTransformation:
    """Fromage, per tensor p with gradient g:

    ``p ← (p − η·(‖p‖_F/‖g‖_F)·g) / √(1+η²)``; if ‖p‖ = 0 or ‖g‖ = 0 the step is the plain ``p − η·g``
    (still divided by √(1+η²)); with ``p_bound``, p is then rescaled so that ‖p‖ ≤ p_bound·‖p_init‖.

    Built as ``optax.fromage(learning_rate, min_norm=0)`` — ``scale_by_trust_ratio(0)``, then
    ``scale_by_learning_rate(η/√(1+η²))`` and ``add_decayed_weights(1/√(1+η²) − 1)`` — followed by
    :func:`clip_to_init_norm` when ``p_bound`` is given.

    Departure from ``optax.fromage``'s default ``min_norm = 1e-6``, which clamps both norms there: with
    ``min_norm = 0`` optax's trust ratio is 1 when either norm is 0, so a zero tensor (e.g. a
    zero-initialised bias) takes the plain SGD step, as in the authors' code, instead of barely moving.
    ``p_bound`` is the authors' and has no optax counterpart.

    Norm identity (docs/theory.md §4): ``‖p_new‖²/‖p‖² = (1 − 2η cos φ + η²)/(1 + η²)``, φ = ∠(p, g).

    Args:
      learning_rate: η, a number or a schedule. Default 0.01, the authors' (github.com/jxbz/fromage).
      p_bound: optional bound on each tensor's norm relative to its initial norm; default none.

    Returns:
      An ``optax.GradientTransformation``; ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> opt = fromage(0.01)
      >>> params = {"w": jnp.ones((2, 2))}
      >>> updates, _ = opt.update({"w": jnp.eye(2)}, opt.init(params), params)
      >>> new = optax.apply_updates(params, updates)

    References:
      Bernstein et al. 2020a, Algorithm 1; docs/theory.md §4.
    """
    return _with_p_bound(optax.fromage(learning_rate, min_norm=0.0), p_bound)


def lars(learning_rate: optax.ScalarOrSchedule = 0.01, p_bound: float | None = None) -> optax.GradientTransformation:
    """The paper's "LARS": Fromage without the ``1/√(1+η²)`` factor, ``p ← p − η·(‖p‖/‖g‖)·g`` (the plain
    ``p − η·g`` if either norm is 0). When g ⟂ p the norm grows by √(1+η²) per step.

    Built as ``optax.scale_by_trust_ratio()`` (min_norm 0, trust coefficient 1), then
    ``optax.scale_by_learning_rate(learning_rate)``, then :func:`clip_to_init_norm` when ``p_bound`` is given.

    Departure from ``optax.lars``, which adds weight decay, momentum 0.9 and a trust coefficient 0.001:
    the paper's comparison has none of them.

    Args:
      learning_rate: η, a number or a schedule; default 0.01.
      p_bound: optional bound on each tensor's norm relative to its initial norm; default none.

    Returns:
      An ``optax.GradientTransformation``; ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> opt = lars(0.01)
      >>> params = {"w": jnp.ones((2, 2))}
      >>> updates, _ = opt.update({"w": jnp.eye(2)}, opt.init(params), params)

    References:
      Bernstein et al. 2020a, the LARS comparison to Algorithm 1 (Fromage); You, Gitman & Ginsburg 2017
      (arXiv 1708.03888); docs/theory.md §4.
    """
    return _with_p_bound(
        optax.chain(optax.scale_by_trust_ratio(), optax.scale_by_learning_rate(learning_rate)), p_bound
    )


class ScaleByMadamState(NamedTuple):
    count: jax.Array  # type: ignore[assignment]  # t (shadows tuple.count, as in optax's states)
    exp_avg_sq: optax.Updates  # v


def scale_by_madam(g_bound: float = 10.0, b2: float = 0.999) -> optax.GradientTransformation:
    """Madam's normalised gradient: ``v ← b2·v + (1−b2)·g²``, ``v̂ = v/(1−b2^t)``,
    ``g* = clip(g/√v̂, ±g_bound)`` with NaN → 0 and no ε.

    This is ``optax.scale_by_rms(b2, eps=0, eps_in_sqrt=True, bias_correction=True)`` followed by
    ``optax.zero_nans()`` and ``optax.clip(g_bound)``, except that it divides by √v̂ as the authors do
    (optax multiplies by ``rsqrt``, one rounding away) and keeps its state in one NamedTuple. The first
    step gives ``g* = sign g`` (to rounding). A NaN gradient entry makes its ``v`` NaN, so its g* is 0 from then on —
    as in the authors' code.

    Args:
      g_bound: clip on |g*|; default 10, the authors'.
      b2: decay of the second-moment average; default 0.999.

    Returns:
      An ``optax.GradientTransformation`` with state :class:`ScaleByMadamState`.

    Example:
      >>> import jax.numpy as jnp
      >>> t = scale_by_madam()
      >>> g = jnp.array([3.0, -0.5])
      >>> [round(x, 4) for x in t.update(g, t.init(g))[0].tolist()]  # the first step is sign g
      [1.0, -1.0]

    References:
      Bernstein et al. 2020b, Algorithm 1; docs/theory.md §4.
    """

    def init_fn(params):
        return ScaleByMadamState(jnp.zeros([], jnp.int32), jax.tree_util.tree_map(jnp.zeros_like, params))

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_int32_increment(state.count)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g), state.exp_avg_sq, updates)

        def normalise(g, v):
            gn = g / jnp.sqrt(v / (1 - b2 ** count.astype(v.dtype)))
            return jnp.clip(jnp.where(jnp.isnan(gn), 0.0, gn), -g_bound, g_bound)

        return jax.tree_util.tree_map(normalise, updates, v), ScaleByMadamState(count, v)

    return optax.GradientTransformation(init_fn, update_fn)


class MadamState(NamedTuple):
    sigma_max: optax.Params  # σ* = p_scale·RMS(p_init) per tensor


def madam_update(p_scale: float = 3.0) -> optax.GradientTransformation:
    """Turn a log-space step s (e.g. ``−η·g*``) into Madam's multiplicative update
    ``p_new = clip(p ⊙ exp(s ⊙ sign p), ±σ*)`` with ``σ* = p_scale·RMS(p_init)``; returns ``p_new − p``.
    Like an additive step, s > 0 moves p up: ``log|p|`` changes by ``s·sign p``. Signs never flip.

    Args:
      p_scale: σ* in units of each tensor's initial RMS; default 3, the authors' PyTorch value; 0: no clip
        (σ* = ∞, the reviewers' "Madam without clipping").

    Returns:
      An ``optax.GradientTransformation`` with state :class:`MadamState`; ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> t = madam_update(p_scale=3.0)
      >>> p = jnp.array([1.0, -1.0])
      >>> new = optax.apply_updates(p, t.update(jnp.log(jnp.array([2.0, 2.0])), t.init(p), p)[0])
      >>> new.tolist()  # s > 0 moves both up: |p| doubles where p > 0 and halves where p < 0
      [2.0, -0.5]

    References:
      Bernstein et al. 2020b, Algorithm 1; docs/theory.md §4.
    """

    def init_fn(params):
        cap = (lambda p: jnp.full((), jnp.inf, p.dtype)) if p_scale == 0 else (lambda p: _sigma_max(p, p_scale))
        return MadamState(jax.tree_util.tree_map(cap, params))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS)

        def step(s, p, cap):
            return jnp.clip(p * jnp.exp(s * jnp.sign(p)), -cap, cap) - p

        return jax.tree_util.tree_map(step, updates, params, state.sigma_max), state

    return optax.GradientTransformation(init_fn, update_fn)


def madam(
    learning_rate: optax.ScalarOrSchedule = 0.01, p_scale: float = 3.0, g_bound: float = 10.0, b2: float = 0.999
) -> optax.GradientTransformation:
    """Madam, per tensor: at init ``σ* = p_scale·RMS(p_init)``, ``v = 0``; each step ``v ← b2·v + (1−b2)g²``,
    ``v̂ = v/(1−b2^t)``, ``g* = clip(g/√v̂, ±g_bound)`` with NaN → 0 (no ε),
    ``p ← p ⊙ exp(−η·g* ⊙ sign p)``, then ``p ← clip(p, −σ*, σ*)``.

    Built as ``chain(scale_by_madam(g_bound, b2), optax.scale_by_learning_rate(learning_rate),
    madam_update(p_scale))``: the learning rate scales the step in log space. Optax has no Madam.

    The first step is the sign-multiplicative update ``p ⊙ exp(−η·sign g ⊙ sign p)``. Zero weights never
    move and signs never flip, so biases need a nonzero initialisation. A NaN gradient entry makes its
    ``v`` NaN, and that weight never moves again — as in the authors' code.

    Args:
      learning_rate: η, a number or a schedule; default 0.01.
      p_scale: σ* in units of each tensor's initial RMS; default 3; 0: no clip. (The authors' JAX version clips at
        1×RMS: ``p_scale=1``.)
      g_bound: clip on |g*|; default 10.
      b2: decay of the second-moment average; default 0.999.
      Defaults follow the authors' PyTorch implementation (github.com/jxbz/madam).

    Returns:
      An ``optax.GradientTransformation``; its state is ``(ScaleByMadamState, <learning-rate state>,
      MadamState)`` and ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> opt = madam(0.01)
      >>> params = {"w": jnp.ones((2, 2))}
      >>> updates, _ = opt.update({"w": jnp.eye(2)}, opt.init(params), params)
      >>> new = optax.apply_updates(params, updates)

    References:
      Bernstein et al. 2020b, Algorithm 1; docs/theory.md §4.
    """
    return optax.chain(scale_by_madam(g_bound, b2), optax.scale_by_learning_rate(learning_rate), madam_update(p_scale))


def lns_value(sign, exponent, sigma, base_lr):
    """``w = sign·σ*·exp(−base_lr·n)`` — a weight in the logarithmic number system.

    Args:
      sign: the weights' signs (−1, 0 or 1).
      exponent: the integer exponents n.
      sigma: σ*, the largest magnitude (n = 0).
      base_lr: the grid's spacing in log-magnitude.

    Returns:
      The weights, in ``sigma``'s dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> float(lns_value(jnp.array(-1.0), jnp.array(0), jnp.array(2.0), 0.001))
      -2.0

    References:
      Bernstein et al. 2020b (low-precision Madam); docs/theory.md §4.
    """
    return sign * sigma * jnp.exp(-base_lr * exponent.astype(sigma.dtype))


def lns_init(key: jax.Array, params, levels: int = 4096, base_lr: float = 0.001, p_scale: float = 3.0):
    """Re-draw every magnitude log-uniformly over the representable range, keeping the signs (the
    authors' low-precision Madam init): ``n ~ U{0, …, levels−1}``, ``w = sign(p)·σ*·exp(−base_lr·n)``.

    Args:
      key: a JAX random key.
      params: the parameters whose signs and σ* = p_scale·RMS(p) are kept.
      levels, base_lr, p_scale: as in :func:`madam_lns`.

    Returns:
      Parameters of the same structure, on the LNS grid.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> w = lns_init(jax.random.key(0), {"w": jnp.ones(3)})["w"]

    References:
      Bernstein et al. 2020b (low-precision Madam) and the authors' code; docs/theory.md §4.
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    out = []
    for i, p in enumerate(leaves):
        n = jax.random.randint(jax.random.fold_in(key, i), p.shape, 0, levels)
        out.append(lns_value(jnp.sign(p), n, _sigma_max(p, p_scale), base_lr).astype(p.dtype))
    return jax.tree_util.tree_unflatten(treedef, out)


class MadamLNSState(NamedTuple):
    sigma_max: optax.Params  # σ*
    sign: optax.Params  # sign of each weight (fixed)
    exponent: optax.Params  # integer n ∈ [0, levels): |w| = σ*·exp(−base_lr·n)


def madam_lns_update(levels: int = 4096, base_lr: float = 0.001, p_scale: float = 3.0) -> optax.GradientTransformation:
    """Turn a log-space step s, in units of ``base_lr`` (e.g. ``−lr_factor·g*``), into a move on the LNS grid:
    ``n ← clip(n − round(s)·sign w, 0, levels−1)``, ``w = sign·σ*·exp(−base_lr·n)``; returns ``w − p``.

    ``init`` quantises the given parameters onto the grid (``n = round(−ln(|p|/σ*)/base_lr)``, clipped;
    a zero weight gets n = 0 and keeps sign 0).

    Args:
      levels: number of exponents (``log2(levels)`` bits); the dynamic range is ``e^{base_lr(levels−1)}``.
      base_lr: the grid's spacing in log-magnitude.
      p_scale: σ* in units of each tensor's initial RMS.

    Returns:
      An ``optax.GradientTransformation`` with state :class:`MadamLNSState`; ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> t = madam_lns_update(levels=16, base_lr=0.1, p_scale=1.0)
      >>> p = jnp.array([1.0, -1.0])
      >>> state = t.init(p)
      >>> updates, state = t.update(jnp.array([-2.0, 2.0]), state, p)
      >>> state.exponent.tolist()  # p > 0 moves down, p < 0 up: both magnitudes shrink by two grid steps
      [2, 2]

    References:
      Bernstein et al. 2020b (low-precision Madam); docs/theory.md §4.
    """

    def init_fn(params):
        sigma = jax.tree_util.tree_map(lambda p: _sigma_max(p, p_scale), params)

        def quantise(p, sigma):
            ratio = jnp.abs(p) / jnp.where(sigma > 0, sigma, 1.0)
            n = jnp.round(-jnp.log(jnp.where(ratio > 0, ratio, 1.0)) / base_lr)
            return jnp.clip(n, 0, levels - 1).astype(jnp.int32)

        exponent = jax.tree_util.tree_map(quantise, params, sigma)
        return MadamLNSState(sigma, jax.tree_util.tree_map(jnp.sign, params), exponent)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS)

        def step(n, s, sign):
            return jnp.clip(n - (jnp.round(s) * sign).astype(jnp.int32), 0, levels - 1)

        exponent = jax.tree_util.tree_map(step, state.exponent, updates, state.sign)
        new = jax.tree_util.tree_map(lambda s, n, m: lns_value(s, n, m, base_lr), state.sign, exponent, state.sigma_max)
        updates = jax.tree_util.tree_map(lambda w, p: (w - p).astype(p.dtype), new, params)
        return updates, MadamLNSState(state.sigma_max, state.sign, exponent)

    return optax.GradientTransformation(init_fn, update_fn)


# The authors' low-precision dynamic range, as a log: 4096 levels (12 bits) at base precision 0.001 give
# e^{0.001·4095} ≈ 60 between the largest and the smallest magnitude (docs/theory.md §6.9).
AUTHORS_LOG_RANGE = 0.001 * (4096 - 1)


def lns_base(bits: int, log_range: float = AUTHORS_LOG_RANGE) -> float:
    """The base precision that holds the dynamic range ``e^{log_range}`` at ``bits`` bits: ``log_range/(2^B − 1)``.
    ``B`` counts the exponent's levels, ``levels = 2^B`` (the sign is a bit of its own), as the Madam paper counts
    its 12-bit budget (docs/theory.md §6.9)."""
    return log_range / (2**bits - 1)


def madam_lns(
    levels: int = 4096,
    base_lr: float = 0.001,
    lr_factor: optax.ScalarOrSchedule = 10.0,
    p_scale: float = 3.0,
    g_bound: float = 10.0,
    b2: float = 0.999,
) -> optax.GradientTransformation:
    """Low-precision Madam in a logarithmic number system: each weight is a sign and an integer exponent
    ``n ∈ [0, levels)``, ``w = sign·σ*·exp(−base_lr·n)``; each step
    ``n ← clip(n + round(g*·lr_factor)·sign w, 0, levels−1)`` with g* Madam's normalised gradient.

    Built as ``chain(scale_by_madam(g_bound, b2), optax.scale_by_learning_rate(lr_factor),
    madam_lns_update(levels, base_lr, p_scale))``: ``lr_factor`` plays the learning rate (grid steps per
    unit of g*), so a learning-rate schedule or ``optax.inject_hyperparams`` acts on it. ``init`` quantises
    the given parameters onto the grid (use :func:`lns_init` for the authors' log-uniform re-draw).

    Args:
      levels: number of exponents, ≥ 2 (``B = log2(levels)`` bits); dynamic range ``e^{base_lr(levels−1)}``.
        Checked when given as a Python int (under ``optax.inject_hyperparams`` it arrives as an array).
      base_lr: the grid's spacing in log-magnitude.
      lr_factor: integer grid steps per unit of g*, a number or a schedule (a learning-rate decay divides it).
      p_scale, g_bound, b2: as in :func:`madam`.
      Defaults follow the authors' low-precision experiments: 4096 levels (12 bits), base_lr = 0.001,
      lr_factor 10 (they used 10–16), p_scale 3.

    Returns:
      An ``optax.GradientTransformation``; its state is ``(ScaleByMadamState, <learning-rate state>,
      MadamLNSState)`` and ``update`` needs ``params``; the returned updates move the parameters exactly
      onto ``lns_value(sign, n, σ*, base_lr)`` (to one rounding of the addition).

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> opt = madam_lns(levels=256, base_lr=0.01, lr_factor=8.0)
      >>> params = lns_init(jax.random.key(0), {"w": jnp.ones((2, 2))}, levels=256, base_lr=0.01)
      >>> updates, _ = opt.update({"w": jnp.eye(2)}, opt.init(params), params)

    References:
      Bernstein et al. 2020b (low-precision Madam) and the authors' code; docs/theory.md §4.
    """
    if isinstance(levels, int) and levels < 2:
        raise ValueError(f"levels must be ≥ 2, got {levels}")
    return optax.chain(
        scale_by_madam(g_bound, b2), optax.scale_by_learning_rate(lr_factor), madam_lns_update(levels, base_lr, p_scale)
    )


def _polar(g, leaf: Leaf):
    """The polar factor of :func:`trust.base.linalg.polar`, traceable: ``U_r V_rᵀ`` of a tensor as its matrix
    (:func:`trust.base.spec.to_matrix`; a bias as one row: ``g/‖g‖``) over the singular values above
    ``rank_cutoff·σ_max``; ``sign(g)`` for a gain ``diag(g)``; zero for a zero tensor."""
    m = specs.to_matrix(g, leaf)
    cutoff = linalg.rank_cutoff(m.shape, m.dtype)
    if leaf.diagonal:
        return jnp.sign(g) * (jnp.abs(g) > cutoff * jnp.max(jnp.abs(g)))
    u, s, vt = jnp.linalg.svd(m, full_matrices=False)
    keep = s > cutoff * s[0]
    return specs.from_matrix((u * keep[None, :]) @ vt, leaf, g.shape)


def scale_by_polar(spec=None) -> optax.GradientTransformation:
    """Replace each tensor's update by its orthogonal polar factor ``U_r V_rᵀ`` (exact SVD): every nonzero
    singular value becomes 1, the steepest-descent direction in the operator norm (docs/theory.md §8).

    Muon (``optax.contrib.muon``) approximates the same factor with a few Newton–Schulz iterations; this one
    is exact, so it is the reference a test can hold an SVD against. Stateless. ``spec``: what each tensor is
    (:func:`trust.base.spec.resolve`; ``None`` reads trust's own nets' names).

    Example:
      >>> import jax.numpy as jnp
      >>> from trust.base.spec import dense
      >>> t = scale_by_polar(spec=dense())  # one plain matrix
      >>> jnp.round(t.update(jnp.array([[3.0, 0.0], [0.0, 0.5]]), t.init(None))[0], 6).tolist()
      [[1.0, 0.0], [0.0, 1.0]]
    """

    def update_fn(updates, state, params=None):
        del params
        flat, structure = jax.tree_util.tree_flatten(updates)
        polars = [_polar(g, leaf) for g, leaf in zip(flat, specs.parameters(updates, spec))]
        return jax.tree_util.tree_unflatten(structure, polars), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def orthogonal_sgd(learning_rate: optax.ScalarOrSchedule = 0.05, spec=None) -> optax.GradientTransformation:
    """Orthogonalised SGD: ``W ← W − η·polar(g)`` per tensor, a spectral step of operator norm η on every
    matrix (docs/theory.md §8; Bernstein & Newhouse 2024, "Old optimizer, new norm", arXiv 2409.20325).
    ``optax.chain(scale_by_polar(spec), optax.scale_by_learning_rate(learning_rate))``."""
    return optax.chain(scale_by_polar(spec), optax.scale_by_learning_rate(learning_rate))


muon = optax.contrib.muon
"""Muon (Jordan et al. 2024) as optax ships it: momentum, Newton–Schulz orthogonalisation of matrices, Adam on
vectors."""
