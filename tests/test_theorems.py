"""Theorem checks: statements that must hold on every sampled case (docs/theory.md §2.3, §2.4).

Zero violations are asserted; the only slack is float64 rounding, justified at each assertion."""

import jax
import jax.numpy as jnp
import numpy as np
from conftest import SEED
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from trust.base import linalg
from trust.core import bounds, measure, nets, perturb


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    depth=st.integers(1, 6),
    widths=st.lists(st.integers(1, 8), min_size=7, max_size=7),
    activation=st.sampled_from(["relu", "leaky_relu", "identity"]),
    slope=st.floats(0.01, 0.9),
    eps=st.lists(st.floats(-0.9, 3.0), min_size=6, max_size=6),
    seed=st.integers(0, 2**31 - 1),
)
def test_exact_homogeneous_case(depth, widths, activation, slope, eps, seed):
    """Positively homogeneous φ, no biases, ΔW_l = ε_l W_l: f scales by ∏(1+ε_l) exactly (docs/theory.md §2.4)."""
    key = jax.random.key(seed)
    net = nets.theorem1_mlp([5] + widths[: depth - 1] + [3], activation, slope)
    params = net.init(key)
    x = jax.random.normal(jax.random.fold_in(key, 1), (8, 5))
    y = jnp.arange(8) % 3
    eps = np.array(eps[:depth])
    # relu can kill every example's output (then no relative distance is defined): draw another case
    assume(float(jnp.linalg.norm(net.apply(params, x))) > 0)
    etas = np.array([0.0, 0.5, 1.0])
    d = measure.relative_distances(net.apply, params, x, y, perturb.scaled(params, eps), etas, loss="mse")
    expected = np.abs(np.prod(1 + etas[:, None] * eps[None, :], axis=1) - 1)
    per = d.function_per_example[:, d.output_norm > 0]
    # float64: each layer adds ~1e-16 relative error and ∏(1+ε) ≤ 4^6 amplifies it, so rtol 1e-9 with
    # an absolute floor of 1e-12 (for ∏(1+ε) ≈ 1, where the distance is a difference of equal numbers).
    np.testing.assert_allclose(per, np.broadcast_to(expected[:, None], per.shape), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(d.function_frob, expected, rtol=1e-9, atol=1e-12)


# (widths, activation): square and rectangular, narrow and deep, every 1-Lipschitz φ with φ(0) = 0.
CONFIGS = [
    ((4, 4), "identity"),
    ((3, 5, 2), "relu"),
    ((6, 6, 6, 6), "leaky_relu"),
    ((5, 8, 8, 8, 3), "tanh"),
    ((2, 2, 2, 2, 2, 2, 2), "relu"),
    ((7, 3, 7, 3, 7), "identity"),
    ((8, 8, 8, 8, 8, 8), "tanh"),
    ((4, 10, 10, 4), "leaky_relu"),
    ((1, 6, 1), "relu"),
    ((5, 5, 5, 5, 5, 5, 5, 5, 5), "leaky_relu"),
]
ETAS = np.geomspace(1e-3, 10.0, 12)  # "large" included: relative sizes up to 10 × ‖W‖ per layer


def test_operator_norm_bound_zero_violations():
    """‖Δf(x)‖ ≤ ∏‖W_k‖_op‖x‖[∏(1 + ‖ΔW_k‖_op/‖W_k‖_op) − 1] on 600 (net, perturbation) cases × 16 inputs."""
    rng = np.random.default_rng(SEED)
    n_cases, worst = 0, 0.0
    for c, (widths, activation) in enumerate(CONFIGS):
        net = nets.theorem1_mlp(widths, activation, slope=0.2)
        outputs = jax.jit(
            jax.vmap(
                lambda p, u, eta, x: net.apply(perturb.perturbed(p, u, eta), x) - net.apply(p, x),
                in_axes=(None, None, 0, None),
            )
        )
        for draw in range(5):
            key = jax.random.key(int(rng.integers(2**31)))
            params = net.init(key)
            if draw % 2:  # ill-conditioned layers: singular values spread over 4 decades
                params = [{"w": _with_spectrum(p["w"], rng)} for p in params]
            sizes = rng.uniform(0.0, 2.0, net.depth)  # a_l(η) = η·s_l, different per layer
            u = perturb.gaussian(jax.random.fold_in(key, 1), params, sizes)
            x = jax.random.normal(jax.random.fold_in(key, 2), (16, widths[0]))
            change = np.linalg.norm(np.asarray(outputs(params, u, ETAS, x)), axis=-1)  # (η, n)
            w_op = linalg.operator_norms(params)
            u_op = linalg.operator_norms(u)
            bound = bounds.operator_norm_bound(w_op, ETAS[:, None] * u_op, 1.0)[:, None] * np.linalg.norm(
                np.asarray(x), axis=1
            )
            # float64: the bound is a product of ≤ 9 factors computed to ~1e-15 each, and the measured change
            # a difference of two outputs; equality is attainable (identity nets), so allow 1e-12 relative slack.
            violations = change > bound * (1 + 1e-12) + 1e-300
            assert not violations.any(), f"config {c} draw {draw}: max ratio {np.max(change / bound)}"
            worst = max(worst, float(np.max(change / bound)))
            n_cases += ETAS.size
    assert n_cases >= 500
    assert worst > 1e-3  # the check is not vacuous: some cases come within three decades of the bound


def _with_spectrum(w, rng):
    u, _, vt = np.linalg.svd(np.asarray(w), full_matrices=False)
    s = np.geomspace(1.0, 1e-4, u.shape[1]) * rng.uniform(0.5, 2.0)
    return jnp.asarray((u * s) @ vt)


def test_operator_norm_bound_is_attained_by_aligned_scalar_chains():
    """Equality case: 1×1 positive weights, identity φ, ΔW_k = δ_k W_k with δ_k > 0 (docs/theory.md §2.3)."""
    w = np.array([0.5, 2.0, 3.0, 0.7])
    delta = np.array([0.1, 0.3, 0.05, 1.2])
    x = 1.7
    change = abs(np.prod(w * (1 + delta)) - np.prod(w)) * x
    np.testing.assert_allclose(bounds.operator_norm_bound(w, w * delta, x), change, rtol=1e-13)
