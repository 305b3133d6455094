"""Optimisers against plain-NumPy references (docs/theory.md §4), optax, and their invariants."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optim_reference as ref
import pytest
from conftest import SEED

from trust.base import spec
from trust.core import optim

SHAPES = [  # ≥ 3 random pytrees, each with a zero-initialised bias
    {"w": (4, 3), "b": (4,)},
    {"a": (6,), "w": (5, 6), "w2": (2, 5), "b": (2,)},
    {"conv": (3, 2, 2, 2), "w": (7, 7), "b": (7,)},
]
N_STEPS = 25


def _problem(seed, shape):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s) for k, s in shape.items()}
    params["b"] = np.zeros(shape["b"])
    grads = []
    for t in range(N_STEPS):
        g = {k: rng.normal(size=s) * rng.uniform(0.1, 10) for k, s in shape.items()}
        if t == 3:  # a step where one tensor's gradient is exactly zero
            g["w"] = np.zeros(shape["w"])
        grads.append(g)
    return params, grads


def _run(opt, params, grads):
    state = opt.init(jax.tree_util.tree_map(jnp.asarray, params))
    p = jax.tree_util.tree_map(jnp.asarray, params)
    step = jax.jit(opt.update)
    history = []
    for g in grads:
        updates, state = step(jax.tree_util.tree_map(jnp.asarray, g), state, p)
        p = optax.apply_updates(p, updates)
        history.append(jax.tree_util.tree_map(np.asarray, p))
    return history


def _run_reference(make, params, grads):
    refs = {k: make(v) for k, v in params.items()}
    p = dict(params)
    history = []
    for g in grads:
        p = {k: refs[k].step(p[k], g[k]) for k in p}
        history.append(dict(p))
    return history


CASES = {
    "fromage": (lambda: optim.fromage(0.05), lambda p: ref.Fromage(p, 0.05)),
    "fromage_p_bound": (lambda: optim.fromage(0.3, p_bound=0.95), lambda p: ref.Fromage(p, 0.3, p_bound=0.95)),
    "lars": (lambda: optim.lars(0.05), lambda p: ref.Fromage(p, 0.05, prefactor=False)),
    "lars_p_bound": (lambda: optim.lars(0.2, p_bound=1.1), lambda p: ref.Fromage(p, 0.2, p_bound=1.1, prefactor=False)),
    "madam": (lambda: optim.madam(0.05), lambda p: ref.Madam(p, 0.05)),
    "madam_clip": (lambda: optim.madam(0.2, p_scale=1.0, g_bound=1.5), lambda p: ref.Madam(p, 0.2, 1.0, 1.5)),
    "madam_no_clip": (lambda: optim.madam(0.2, p_scale=0.0), lambda p: ref.Madam(p, 0.2, 0.0)),
    "madam_lns": (
        lambda: optim.madam_lns(levels=256, base_lr=0.01, lr_factor=7),
        lambda p: ref.MadamLNS(p, 256, 0.01, 7.0),
    ),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("shape_index", range(len(SHAPES)))
def test_against_numpy_reference(case, shape_index):
    make_opt, make_ref = CASES[case]
    params, grads = _problem(SEED + shape_index, SHAPES[shape_index])
    if case.startswith("madam"):
        params["b"] = np.full(SHAPES[shape_index]["b"], 0.01)  # multiplicative: biases need nonzero init
        grads[5]["w"][0, 0] = np.nan  # a NaN gradient entry: that weight stops for good
    got, want = _run(make_opt(), params, grads), _run_reference(make_ref, params, grads)
    for t, (a, b) in enumerate(zip(got, want)):
        for k in a:
            # float64, 25 steps of O(1) arithmetic: agreement to ~1e-14 expected; 1e-10 is generous
            np.testing.assert_allclose(a[k], b[k], rtol=1e-10, atol=1e-12, err_msg=f"{case} step {t} tensor {k}")


def test_p_bound_and_clip_are_really_active():
    params, grads = _problem(SEED, SHAPES[0])
    for opt, bound in ((optim.fromage(0.3, p_bound=0.95), 0.95), (optim.lars(0.2, p_bound=1.1), 1.1)):
        norms = np.array([np.linalg.norm(p["w"]) for p in _run(opt, params, grads)])
        limit = bound * np.linalg.norm(params["w"])
        assert norms.max() <= limit * (1 + 1e-12)
        assert np.sum(np.abs(norms - limit) < 1e-12 * limit) >= 2  # the rescaling fired
    params["b"] = np.full(4, 0.01)
    last = _run(optim.madam(0.2, p_scale=1.0, g_bound=1.5), params, grads)[-1]
    sigma = np.sqrt(np.mean(params["w"] ** 2))
    assert np.any(np.isclose(np.abs(last["w"]), sigma, rtol=1e-14, atol=0))


def test_fromage_equals_optax_on_nonzero_tensors_and_differs_on_zero_ones():
    params, grads = _problem(SEED, SHAPES[1])
    params["b"] = np.full(2, 0.3)
    grads = [{k: v + 0.01 for k, v in g.items()} for g in grads]  # no zero gradients
    ours = _run(optim.fromage(0.01), params, grads)
    theirs = _run(optax.fromage(0.01), params, grads)
    for a, b in zip(ours, theirs):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-15)
    # a zero-initialised bias: the authors' rule takes the plain SGD step η·g, optax's min_norm clamp
    # scales it by 1e-6/‖g‖ — the documented difference
    p, g = {"b": jnp.zeros(3)}, {"b": jnp.array([1.0, -2.0, 2.0])}
    ours = optim.fromage(0.01).update(g, optim.fromage(0.01).init(p), p)[0]["b"]
    theirs = optax.fromage(0.01).update(g, optax.fromage(0.01).init(p), p)[0]["b"]
    np.testing.assert_allclose(ours, -0.01 * g["b"] / np.sqrt(1 + 1e-4), rtol=1e-14)
    assert float(jnp.linalg.norm(theirs)) < 1e-7 < float(jnp.linalg.norm(ours))


def test_fromage_norm_identity(key):
    for lr in (0.01, 0.1, 0.7):
        p = {"w": jax.random.normal(key, (5, 4))}
        g = {"w": jax.random.normal(jax.random.fold_in(key, 1), (5, 4))}
        new = optax.apply_updates(p, optim.fromage(lr).update(g, optim.fromage(lr).init(p), p)[0])
        cos = float(jnp.vdot(p["w"], g["w"]) / (jnp.linalg.norm(p["w"]) * jnp.linalg.norm(g["w"])))
        ratio = float(jnp.sum(new["w"] ** 2) / jnp.sum(p["w"] ** 2))
        assert ratio == pytest.approx((1 - 2 * lr * cos + lr**2) / (1 + lr**2), rel=1e-12)
        # g ⟂ p: the norm is preserved by Fromage and grows by √(1+η²) under LARS
        perp = {"w": g["w"] - jnp.vdot(g["w"], p["w"]) / jnp.vdot(p["w"], p["w"]) * p["w"]}
        for opt, growth in ((optim.fromage(lr), 1.0), (optim.lars(lr), np.sqrt(1 + lr**2))):
            new = optax.apply_updates(p, opt.update(perp, opt.init(p), p)[0])
            assert float(jnp.linalg.norm(new["w"]) / jnp.linalg.norm(p["w"])) == pytest.approx(growth, rel=1e-12)


def test_madam_invariants(key):
    p = {"w": jax.random.normal(key, (30, 20)).at[0, :5].set(0.0), "b": jnp.full((20,), 0.01)}
    opt = optim.madam(0.1)
    state = opt.init(p)
    sigma = {k: 3 * float(jnp.sqrt(jnp.mean(v**2))) for k, v in p.items()}
    g = jax.tree_util.tree_map(lambda v: jax.random.normal(jax.random.fold_in(key, v.size), v.shape), p)
    first = optax.apply_updates(p, opt.update(g, state, p)[0])
    for k in p:  # the first step is the sign-multiplicative update (then the σ* clip)
        sign_step = p[k] * jnp.exp(-0.1 * jnp.sign(g[k]) * jnp.sign(p[k]))
        np.testing.assert_allclose(first[k], jnp.clip(sign_step, -sigma[k], sigma[k]), rtol=1e-13)
    cur = p
    for t in range(60):
        g = jax.tree_util.tree_map(lambda v: 5 * jax.random.normal(jax.random.fold_in(key, 100 + t), v.shape), p)
        updates, state = opt.update(g, state, cur)
        cur = optax.apply_updates(cur, updates)
        for k in p:
            assert np.all(np.sign(cur[k]) == np.sign(p[k]))  # signs never flip; zeros stay zero
            assert float(jnp.max(jnp.abs(cur[k]))) <= sigma[k] * (1 + 1e-12)


def test_madam_lns_weights_stay_on_the_grid(key):
    levels, base_lr = 64, 0.05
    p = {"w": jax.random.normal(key, (12, 9)), "b": jnp.full((9,), 0.02)}
    p = optim.lns_init(jax.random.fold_in(key, 1), p, levels, base_lr)
    opt = optim.madam_lns(levels=levels, base_lr=base_lr, lr_factor=4.0)
    state = opt.init(p)
    for t in range(40):
        g = jax.tree_util.tree_map(lambda v: jax.random.normal(jax.random.fold_in(key, t), v.shape), p)
        updates, state = opt.update(g, state, p)
        p = optax.apply_updates(p, updates)
        lns = state[-1]  # chain(scale_by_madam, scale_by_learning_rate, madam_lns_update)
        for k in p:
            n = np.asarray(lns.exponent[k])
            assert n.dtype == np.int32
            assert n.min() >= 0
            assert n.max() < levels
            expected = np.sign(np.asarray(p[k])) * float(lns.sigma_max[k]) * np.exp(-base_lr * n)
            np.testing.assert_allclose(p[k], expected, rtol=1e-14)  # one rounding of p + (w − p)


def test_dynamic_range():
    # 12 bits at base_lr 0.001: the largest/smallest representable magnitude is e^{0.001·4095} ≈ 60
    sign, sigma = jnp.ones(2), jnp.asarray(1.0)
    w = optim.lns_value(sign, jnp.array([0, 4095]), sigma, 0.001)
    assert float(w[0] / w[1]) == pytest.approx(np.exp(4.095), rel=1e-12)
    assert 59 < float(w[0] / w[1]) < 61


OPTIMISERS = {  # name: (factory, the hyperparameter that plays the learning rate, hyperparameters)
    "sgd": (optim.sgd, "learning_rate", {"learning_rate": 0.1}),
    "sgd_momentum": (optim.sgd, "learning_rate", {"learning_rate": 0.05, "momentum": 0.9}),
    "adam": (optim.adam, "learning_rate", {"learning_rate": 0.01}),
    "fromage": (optim.fromage, "learning_rate", {"learning_rate": 0.05}),
    "lars": (optim.lars, "learning_rate", {"learning_rate": 0.05}),
    "madam": (optim.madam, "learning_rate", {"learning_rate": 0.05}),
    "madam_lns": (optim.madam_lns, "lr_factor", {"levels": 4096, "base_lr": 0.001, "lr_factor": 16.0}),
    "orthogonal_sgd": (optim.orthogonal_sgd, "learning_rate", {"learning_rate": 0.05}),
    "muon": (optim.muon, "learning_rate", {"learning_rate": 0.05}),
}


def _make(name, inject=False):
    factory, _, kwargs = OPTIMISERS[name]
    return (optax.inject_hyperparams(factory) if inject else factory)(**kwargs)


def _small_params(key):
    """A weight and a nonzero bias (multiplicative optimisers cannot move a zero)."""
    return {"w": 0.5 * jax.random.normal(key, (5, 3)), "b": 0.1 * jnp.ones(3)}


def _counting_jit(fn):
    """``jax.jit(fn)`` and a list that grows by one each time JAX traces ``fn``: the Python body runs
    only while tracing, and a new trace is exactly a jit-cache miss, i.e. a new compilation."""
    traces = []

    def traced(*args):
        traces.append(None)
        return fn(*args)

    return jax.jit(traced), traces


@pytest.mark.parametrize("name", OPTIMISERS)
def test_every_optimiser_converges_without_recompiling(key, name):
    """One table for all: a least-squares fit must lose ≥ 80 % of its loss in 300 steps, and the jitted
    step compiles exactly once. The target keeps the initial signs and lies inside Madam's σ* box, so
    that multiplicative updates (which cannot flip a sign) can reach it too."""
    k1, k2, k3 = jax.random.split(key, 3)
    x = jax.random.normal(k1, (64, 5))
    params = _small_params(k3)  # strongly typed, as trained params are
    w_true = params["w"] * jnp.exp(0.5 * jax.random.normal(k2, (5, 3)))
    w_true = jnp.clip(w_true, -1.4, 1.4)  # σ* = 3·RMS(w_init) ≈ 1.5
    y = x @ w_true + 0.2
    loss = lambda p: jnp.mean((x @ p["w"] + p["b"][None, :] - y) ** 2)  # noqa: E731
    opt = _make(name)
    state = opt.init(params)

    def step(params, state):
        value, g = jax.value_and_grad(loss)(params)
        updates, state = opt.update(g, state, params)
        return optax.apply_updates(params, updates), state, value

    step, traces = _counting_jit(step)
    first = float(loss(params))
    for _ in range(300):
        params, state, _ = step(params, state)
    assert float(loss(params)) < 0.2 * first, name
    assert len(traces) == 1


@pytest.mark.parametrize("name", OPTIMISERS)
def test_inject_hyperparams_follows_the_plain_optimiser_and_its_rate_acts(key, name):
    """Under ``optax.inject_hyperparams`` every optimiser takes the plain one's steps, and a learning rate
    written into the injected state is the one used: the next update is the update of the optimiser
    built with that rate, and differs from the old rate's update (so ignoring it would fail)."""
    factory, rate, kwargs = OPTIMISERS[name]
    plain, injected = _make(name), _make(name, inject=True)
    params = _small_params(key)
    grads = [
        jax.tree_util.tree_map(lambda v: jax.random.normal(jax.random.fold_in(key, t), v.shape), params)
        for t in range(1, 5)
    ]
    p, q = params, params
    plain_state, inj_state = plain.init(p), injected.init(q)
    # float64: the two differ only in the rate being an array instead of a Python float, which can move a
    # rounding (e.g. in Fromage's 1/√(1+η²)) by one ulp; over 3 well-conditioned steps that stays ~1e-15
    tol = {"rtol": 1e-12, "atol": 1e-14}
    for g in grads[:3]:
        u, plain_state = plain.update(g, plain_state, p)
        v, inj_state = injected.update(g, inj_state, q)
        p, q = optax.apply_updates(p, u), optax.apply_updates(q, v)
        for k in p:
            np.testing.assert_allclose(q[k], p[k], **tol, err_msg=k)
    inj_state.hyperparams[rate] = 2 * inj_state.hyperparams[rate]
    got = injected.update(grads[3], inj_state, q)[0]
    want = factory(**{**kwargs, rate: 2 * kwargs[rate]}).update(grads[3], inj_state.inner_state, q)[0]
    old = plain.update(grads[3], inj_state.inner_state, q)[0]
    for k in got:
        np.testing.assert_allclose(got[k], want[k], **tol, err_msg=k)
    assert max(float(jnp.max(jnp.abs(got[k] - old[k]))) for k in got) > 1e-3


@pytest.mark.parametrize("inject", [False, True], ids=["plain", "injected"])
@pytest.mark.parametrize("name", OPTIMISERS)
def test_second_update_does_not_recompile(key, name, inject):
    """A jitted ``update`` fed its own state back, with new gradient values each time, compiles once: the
    state keeps its structure, shapes and dtypes (e.g. LNS exponents stay int32 when ``levels`` is an
    injected integer array)."""
    opt = _make(name, inject)
    params = _small_params(key)
    state = opt.init(params)
    update, traces = _counting_jit(opt.update)
    for t in range(3):
        g = jax.tree_util.tree_map(lambda v: jax.random.normal(jax.random.fold_in(key, t), v.shape), params)
        updates, state = update(g, state, params)
        params = optax.apply_updates(params, updates)
    assert len(traces) == 1


SCHEDULED = {  # name: (optimiser from a schedule, NumPy reference, the reference's rate attribute)
    "fromage": (optim.fromage, lambda p: ref.Fromage(p), "lr"),
    "fromage_p_bound": (lambda lr: optim.fromage(lr, p_bound=0.95), lambda p: ref.Fromage(p, p_bound=0.95), "lr"),
    "lars": (optim.lars, lambda p: ref.Fromage(p, prefactor=False), "lr"),
    "madam": (optim.madam, lambda p: ref.Madam(p), "lr"),
    "madam_lns": (
        lambda lr: optim.madam_lns(levels=256, base_lr=0.01, lr_factor=lr),
        lambda p: ref.MadamLNS(p, 256, 0.01),
        "lr_factor",
    ),
}


@pytest.mark.parametrize("name", SCHEDULED)
def test_schedule_reaches_every_piece(name):
    """With a learning-rate schedule each step uses that step's rate everywhere it enters (for Fromage
    also in the 1/√(1+η²) prefactor): the trajectory equals the NumPy reference with its rate set per step."""
    make_opt, make_ref, attr = SCHEDULED[name]
    rate = 10.0 if name == "madam_lns" else 0.3
    # halved every 3 steps; written out because optax's schedules return float32 for an int32 step count,
    # which would put a float32 rounding of η into the float64 comparison
    schedule = lambda count: rate * 0.5 ** (count // 3)  # noqa: E731
    params, grads = _problem(SEED, SHAPES[1])
    if name.startswith("madam"):
        params["b"] = np.full(SHAPES[1]["b"], 0.01)
    refs = {k: make_ref(v) for k, v in params.items()}
    want, p = [], dict(params)
    for t, g in enumerate(grads):
        for r in refs.values():
            setattr(r, attr, float(schedule(t)))
        p = {k: refs[k].step(p[k], g[k]) for k in p}
        want.append(p)
    for t, (a, b) in enumerate(zip(_run(make_opt(schedule), params, grads), want)):
        for k in a:
            # as in test_against_numpy_reference: float64, 25 steps, ~1e-14 expected
            np.testing.assert_allclose(a[k], b[k], rtol=1e-10, atol=1e-12, err_msg=f"{name} step {t} tensor {k}")


def test_defaults_are_the_authors():
    """fromage/lars/madam default to η = 0.01, Madam to p_scale = 3 and b2 = 0.999, lns_init to 4096 levels,
    base_lr 0.001 and p_scale 3 (docs/theory.md §4): the default factories take the same steps as explicit ones."""
    params = {"w": jnp.array([[0.5, -1.0], [2.0, 0.25]])}
    grads = {"w": jnp.array([[0.3, 0.1], [-0.2, 0.4]])}
    for default, explicit in (
        (optim.fromage(), optim.fromage(0.01)),
        (optim.lars(), optim.lars(0.01)),
        (optim.madam(), optim.madam(0.01, p_scale=3.0, g_bound=10.0, b2=0.999)),
    ):
        state_d, state_e = default.init(params), explicit.init(params)
        for _ in range(3):  # three steps: b2 enters v from the second step on
            u_d, state_d = default.update(grads, state_d, params)
            u_e, state_e = explicit.update(grads, state_e, params)
            np.testing.assert_array_equal(u_d["w"], u_e["w"])
            grads = {"w": grads["w"] * jnp.array([[1.0, -3.0], [0.5, 2.0]])}
    # a learning rate of 0.01 moves a Fromage tensor by exactly η·‖p‖ (before the 1/√(1+η²) factor)
    u, _ = optim.lars().update(grads, optim.lars().init(params), params)
    assert float(jnp.linalg.norm(u["w"])) == pytest.approx(0.01 * float(jnp.linalg.norm(params["w"])), rel=1e-12)
    # Madam's σ* = 3·RMS(p_init)
    rms = float(jnp.sqrt(jnp.mean(params["w"] ** 2)))
    assert float(optim.madam().init(params)[-1].sigma_max["w"]) == pytest.approx(3 * rms, rel=1e-12)
    # lns_init: w = σ*·exp(−0.001·n), n ~ U{0, …, 4095}, σ* = 3·RMS = 3 here; with 2^18 draws every level
    # is hit with probability 1 − 4096·e^{−64}, so the extremes 0 and 4095 are both seen.
    drawn = optim.lns_init(jax.random.key(SEED), {"w": jnp.ones((512, 512))})
    n = -np.log(np.asarray(drawn["w"]) / 3.0) / 0.001
    np.testing.assert_allclose(n, np.round(n), atol=1e-6)  # on the grid (float64: ~1e-9 rounding in n)
    assert np.round(n).min() == 0
    assert np.round(n).max() == 4095


def test_clip_to_init_norm_only_acts_above_the_bound():
    params = {"w": jnp.array([3.0, 4.0])}  # ‖p_init‖ = 5
    opt = optax.chain(optax.sgd(1.0), optim.clip_to_init_norm(2.0))
    state = opt.init(params)
    exactly, _ = opt.update({"w": jnp.array([-3.0, -4.0])}, state, params)  # p_new = 2·p: on the bound, kept
    np.testing.assert_allclose(exactly["w"], [3.0, 4.0], rtol=1e-15)
    above, _ = opt.update({"w": jnp.array([-9.0, -12.0])}, state, params)  # ‖p_new‖ = 20 → clipped to 10
    np.testing.assert_allclose(params["w"] + above["w"], [6.0, 8.0], rtol=1e-15)
    small = {"w": jnp.array([0.03, 0.04])}  # ‖p_init‖ = 0.05 < 1: the limit 0.1 still divides by the true norm
    above_small, _ = opt.update({"w": jnp.array([-0.27, -0.36])}, opt.init(small), small)  # ‖p_new‖ = 0.5
    np.testing.assert_allclose(small["w"] + above_small["w"], [0.06, 0.08], rtol=1e-14)
    zero = {"w": jnp.zeros(2)}
    held, _ = opt.update({"w": jnp.array([-1.0, 1.0])}, opt.init(zero), zero)  # ‖p_init‖ = 0: held at 0
    np.testing.assert_array_equal(held["w"], [0.0, 0.0])


def _steps(opt, params, grads):
    """The updates of ``opt`` over a gradient sequence (jitted: one compile per optimiser)."""
    update = jax.jit(opt.update)
    state, out = opt.init(params), []
    for g in grads:
        u, state = update(g, state, params)
        out.append(np.asarray(u["w"]))
    return np.stack(out)


def test_madam_and_lns_defaults_are_the_authors():
    """σ* = 3·RMS, g_bound 10, b2 0.999; LNS: 4096 levels, base precision 0.001, lr_factor 10 (docs/theory.md §4)
    — each default factory takes the same steps as the explicit one, over steps where every default matters:
    the gradient bound binds and a tiny weight sits on the last LNS level."""
    params = {"w": jnp.array([[0.5, -1.0, 1e-4], [2.0, 0.25, -0.7]])}  # 1e-4/σ* < e^{−0.001·4095}: last level
    base = jnp.array([[0.3, 0.1, -0.2], [-0.2, 0.4, 0.5]])
    # 200 small steps, then a spike: with b2 = 0.999 the bias-corrected v̂ lets |g*| reach
    # √((1 − 0.999^201)/0.001) ≈ 13.5 > 10, so the bound g_bound = 10 binds (checked below)
    grads = [{"w": base * 1e-3}] * 200 + [{"w": base * 1e3}, {"w": -2.0 * base}]
    unbounded = _steps(optim.scale_by_madam(g_bound=1e9), params, grads)
    assert np.abs(unbounded[200]).max() > 11.0
    pairs = (
        (optim.madam_update(), optim.madam_update(3.0)),
        (
            optim.madam_lns(),
            optim.madam_lns(levels=4096, base_lr=0.001, lr_factor=10.0, g_bound=10.0, b2=0.999, p_scale=3.0),
        ),
        (optim.madam_lns_update(), optim.madam_lns_update(4096, 0.001, 3.0)),
        (optim.madam(0.1), optim.madam(0.1, p_scale=3.0, g_bound=10.0, b2=0.999)),
    )
    for default, explicit in pairs:
        np.testing.assert_array_equal(_steps(default, params, grads), _steps(explicit, params, grads))
    # and the arguments reach the transforms they configure: changing one changes the steps
    for changed, reference in (
        (optim.madam(0.1, b2=0.9), optim.madam(0.1)),
        (optim.madam(0.1, g_bound=11.0), optim.madam(0.1)),
        (optim.madam_lns(b2=0.9), optim.madam_lns()),
        (optim.madam_lns(g_bound=11.0), optim.madam_lns()),
        (optim.madam_lns(p_scale=1.0), optim.madam_lns()),
        (optim.madam_lns(levels=4097), optim.madam_lns()),
    ):
        assert not np.array_equal(_steps(changed, params, grads), _steps(reference, params, grads))


def test_levels_bound_and_missing_params_are_clear_errors():
    optim.madam_lns(levels=2)  # the smallest grid: one level below σ*
    with pytest.raises(ValueError, match="levels must be ≥ 2"):
        optim.madam_lns(levels=1)
    params = {"w": jnp.array([1.0, -2.0])}
    for opt in (
        optim.madam_update(),
        optim.madam_lns_update(),
        optax.chain(optax.sgd(1.0), optim.clip_to_init_norm(2.0)),
    ):
        with pytest.raises(ValueError, match="needs the parameters"):
            opt.update(params, opt.init(params))


def test_lns_exponents_stay_on_the_grid_at_both_ends():
    """Pushed up again and again a weight stops at σ* (exponent 0, never below); pushed down it stops at the
    last level; float32 parameters stay float32 (kills clip(n, None/1, …) and astype(None))."""
    params = {"w": jnp.array([0.5, -0.5, 0.01], dtype=jnp.float32)}
    opt = optim.madam_lns(levels=64, base_lr=0.05, lr_factor=30.0)
    state = opt.init(params)
    sigma = float(optax.tree.get(state, "sigma_max")["w"])
    p = params
    for _ in range(20):  # g > 0 on a negative weight and g < 0 on positive ones: |w| grows
        u, state = opt.update({"w": jnp.array([-1.0, 1.0, -1.0], jnp.float32)}, state, p)
        p = optax.apply_updates(p, u)
        assert p["w"].dtype == jnp.float32
        assert u["w"].dtype == jnp.float32
    np.testing.assert_array_equal(optax.tree.get(state, "exponent")["w"], [0, 0, 0])
    np.testing.assert_allclose(np.abs(p["w"]), sigma, rtol=1e-6)  # float32 rounding of σ*·e^0
    for _ in range(20):
        u, state = opt.update({"w": jnp.array([1.0, -1.0, 1.0], jnp.float32)}, state, p)
        p = optax.apply_updates(p, u)
    np.testing.assert_array_equal(optax.tree.get(state, "exponent")["w"], [63, 63, 63])
    drawn = optim.lns_init(jax.random.key(SEED), {"w": jnp.ones((3, 3), jnp.float32)})
    assert drawn["w"].dtype == jnp.float32


def test_lns_value_keeps_sigmas_dtype():
    sign = jnp.array([1.0, -1.0, 0.0], jnp.float32)
    w = optim.lns_value(sign, jnp.array([0, 10, 3], jnp.int32), jnp.float32(2.0), 0.1)
    assert w.dtype == jnp.float32
    # float32: σ*·e^{−1} to ~1 ulp
    np.testing.assert_allclose(w, [2.0, -2.0 * np.exp(-1.0), 0.0], rtol=1e-6)


def test_lns_grid_ends_for_zero_and_oversized_weights():
    """A weight above σ* sits at exponent 0 (clipped, not negative); a zero weight keeps exponent 0 and sign 0
    through updates (docs/theory.md §4.3)."""
    params = {"w": jnp.array([10.0, 0.0, 1.0, -1.0])}
    t = optim.madam_lns_update(levels=64, base_lr=0.05, p_scale=1.0)
    state = t.init(params)
    # σ* = RMS = √(102/4) ≈ 5.05: 10 > σ*; 1/σ* → n = round(ln(5.05)/0.05) = round(32.4) = 32
    np.testing.assert_array_equal(state.exponent["w"], [0, 0, 32, 32])
    np.testing.assert_array_equal(state.sign["w"], [1, 0, 1, -1])
    updates, state = t.update({"w": jnp.array([1.0, 3.0, -2.0, 2.0])}, state, params)
    np.testing.assert_array_equal(state.exponent["w"], [0, 0, 34, 34])  # n ← clip(n − round(s)·sign, 0, 63)
    assert float(params["w"][1] + updates["w"][1]) == 0.0


def test_orthogonal_sgd_steps_by_the_exact_polar_factor(key):
    """Held against NumPy's SVD: the step is −η·U_r V_rᵀ of the gradient (a kernel as its (k·k·c_in, c_out)
    matrix, a bias as g/‖g‖), orthogonal to float64 rounding (~1e-15; 1e-12 allows the SVD's own error)."""
    g = {
        "k": jax.random.normal(key, (3, 3, 2, 4)),
        "w": jax.random.normal(jax.random.fold_in(key, 1), (6, 9)),
        "b": jnp.array([3.0, -4.0]),
    }
    g["w"] = g["w"].at[:, 0].set(0.0)  # rank 5 of 6: one singular value is 0 and stays 0
    roles = {"k": spec.conv("HWIO"), "w": spec.dense("in_out"), "b": spec.bias()}
    updates, _ = optim.orthogonal_sgd(0.1, roles).update(g, optim.orthogonal_sgd(0.1, roles).init(g))
    for name, shape in (("k", (18, 4)), ("w", (6, 9))):
        m = np.asarray(g[name]).reshape(shape)
        u, s, vt = np.linalg.svd(m, full_matrices=False)
        r = int(np.sum(s > 1e-12 * s[0]))
        np.testing.assert_allclose(np.asarray(updates[name]).reshape(shape), -0.1 * u[:, :r] @ vt[:r], atol=1e-12)
        s_step = np.linalg.svd(np.asarray(updates[name]).reshape(shape), compute_uv=False)
        np.testing.assert_allclose(s_step[:r], 0.1, rtol=1e-12)
        np.testing.assert_allclose(s_step[r:], 0.0, atol=1e-12)
    np.testing.assert_allclose(updates["b"], [-0.06, 0.08], rtol=1e-14)


def test_scale_by_madam_defaults_are_the_authors(key):
    """g_bound 10 and b2 0.999 (Bernstein et al. 2020b, Algorithm 1): the default transform takes the same steps
    as the one built with them, and a gradient far above its running RMS is clipped at exactly 10."""
    g0 = {"w": jax.random.normal(key, (4, 3))}
    default, explicit = optim.scale_by_madam(), optim.scale_by_madam(g_bound=10.0, b2=0.999)
    s1, s2 = default.init(g0), explicit.init(g0)
    for t in range(3):
        g = jax.tree_util.tree_map(lambda v: jax.random.normal(jax.random.fold_in(key, t), v.shape), g0)
        (u1, s1), (u2, s2) = default.update(g, s1), explicit.update(g, s2)
        np.testing.assert_array_equal(u1["w"], u2["w"])
    # after 1000 steps of v ≈ 0, a unit gradient has g/√v̂ = 1/√(0.001/(1 − 0.999^1001)) ≈ 25: clipped to 10
    quiet = optim.ScaleByMadamState(jnp.asarray(1000, jnp.int32), {"w": jnp.zeros((4, 3))})
    u, _ = default.update({"w": jnp.ones((4, 3))}, quiet)
    np.testing.assert_array_equal(u["w"], 10.0)


def test_weight_decay_and_gradient_clipping_follow_the_numpy_reference():
    """TrainConfig's weight_decay (decoupled, after LARS's step) and clip_norm (global norm, before SGD) take the
    steps of plain-NumPy formulas, and actually act (each differs from the run without it)."""
    from trust.core import train

    params, grads = _problem(SEED, SHAPES[1])
    params["b"] = np.full(2, 0.3)  # LARS divides by ‖p‖: a nonzero bias
    grads = [{k: v + 0.1 for k, v in g.items()} for g in grads]  # no zero-gradient tensor (LARS's ratio needs ‖g‖ > 0)
    cases = {
        "lars": (dict(optimizer="lars", learning_rate=0.05, weight_decay=0.025),
                 lambda p, g: {k: ref.lars_weight_decay_step(p[k], g[k], 0.05, 0.025) for k in p}),
        "sgd": (dict(optimizer="sgd", learning_rate=0.05, clip_norm=1.0),
                lambda p, g: ref.clipped_sgd_step(p, g, 0.05, 1.0)),
    }  # fmt: skip
    for name, (fields, step) in cases.items():
        got = _run(train.make_optimizer(train.TrainConfig(**fields)), params, grads)
        plain = _run(train.make_optimizer(train.TrainConfig(**{**fields, "weight_decay": 0, "clip_norm": 0})),
                     params, grads)  # fmt: skip
        p = dict(params)
        for t, g in enumerate(grads):
            p = step(p, g)
            for k in p:
                # float64, 25 steps of O(1) arithmetic: ~1e-14 expected, 1e-10 generous
                np.testing.assert_allclose(got[t][k], p[k], rtol=1e-10, atol=1e-12, err_msg=f"{name} {t} {k}")
        assert not np.allclose(got[-1]["w"], plain[-1]["w"], rtol=1e-6), f"{name}: the option changed nothing"
