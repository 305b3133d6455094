"""Estimators against closed forms and dense computations (docs/theory.md §2–3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from trust.base import spec
from trust.base.errors import TrustError
from trust.core import estimate, losses, nets, perturb


def test_transmission_matches_closed_form_for_leaky_relu(key):
    s = 0.2
    net = nets.theorem1_mlp((6, 8, 8, 5), "leaky_relu", slope=s)
    params = net.init(key)
    x = jax.random.normal(jax.random.fold_in(key, 1), (40, 6))
    got = estimate.transmission(net, params, x)
    _, zs = net.preactivations(params, x)
    for l, z in enumerate(zs):
        z = np.asarray(z)
        ratio = np.sqrt((np.maximum(z, 0) ** 2).sum(1) + s**2 * (np.minimum(z, 0) ** 2).sum(1)) / np.linalg.norm(
            z, axis=1
        )
        np.testing.assert_allclose(
            [got["alpha"][l], got["beta"][l], got["mean"][l]], [ratio.min(), ratio.max(), ratio.mean()], rtol=1e-12
        )
    assert np.all(got["alpha"] >= s)
    assert np.all(got["beta"] <= 1 + 1e-15)  # α ≥ s, β = 1 for leaky relu
    ident = estimate.transmission(nets.theorem1_mlp((6, 8, 5), "identity"), params[:2], x)
    np.testing.assert_allclose(ident["alpha"], 1.0, rtol=1e-15)  # ‖z‖/‖z‖ rounds to exactly 1 or 1 ± ε
    np.testing.assert_allclose(ident["beta"], 1.0, rtol=1e-15)


def test_conditioning_and_effective_constant():
    assert estimate.conditioning(np.diag([3.0, 1.0, 0.5])) == pytest.approx(6.0)
    assert estimate.conditioning(np.diag([2.0, 0.0])) == float("inf")
    assert estimate.effective_constant([0.0, 0.3, 2.0, 1.0], [0.0, 0.1, 1.0, 2.0]) == pytest.approx(3.0)


def test_cos_theta_of_the_gradient_direction_is_one(key):
    net = nets.experiment_mlp(5, 6, 3, 2, activation="tanh")  # tanh: no exactly-zero gradient entries
    params = net.init(key)
    x, y = jax.random.normal(key, (20, 5)), jnp.arange(20) % 2
    grads = jax.grad(lambda p: losses.cross_entropy(net.apply(p, x), y))(params)
    np.testing.assert_allclose(estimate.cos_theta(perturb.along_gradient(params, grads), grads), 1.0, rtol=1e-12)
    # where g has no zero entry, Madam's direction −|W|⊙sign g has cos θ = cos γ exactly (docs/theory.md §3.4)
    np.testing.assert_allclose(
        estimate.cos_theta(perturb.madam(params, grads), grads), estimate.cos_gamma(params, grads), rtol=1e-12
    )


@pytest.mark.parametrize("draw, expected", [("gaussian", 2 / np.pi), ("uniform", 0.75)])
def test_cos_gamma_monte_carlo_limits(key, draw, expected):
    """E cos γ → 2/π for iid Gaussian W, g and → 3/4 for iid uniform magnitudes. With 10⁶ entries the
    estimate's standard error is ≈ 5·10⁻⁴ (relative spread of ⟨|W|,|g|⟩ ~ 1/√n), so 5·10⁻³ is ~10 s.e."""
    k1, k2 = jax.random.split(key)
    sample = jax.random.normal if draw == "gaussian" else jax.random.uniform
    w, g = sample(k1, (1000, 1000)), sample(k2, (1000, 1000))
    assert estimate.cos_gamma([w], [g])[0] == pytest.approx(expected, abs=5e-3)


def test_lemma2_thresholds():
    L = np.array([16, 50])
    np.testing.assert_allclose(estimate.lemma2_threshold(1.0, L), 2 ** (1 / L) - 1, rtol=1e-14)
    np.testing.assert_allclose(estimate.lemma2_threshold(1.0, L), [0.0443, 0.0140], atol=5e-5)
    big_c = 1e6  # corrected threshold ≈ cos θ/(L·C) for large C
    assert estimate.lemma2_threshold(0.5, 16, big_c) == pytest.approx(0.5 / (16 * big_c), rel=1e-6)


def test_lemma2_threshold_is_zero_without_a_descent_direction():
    np.testing.assert_array_equal(estimate.lemma2_threshold([-1.0, -0.3, 0.0], 4), 0.0)
    assert estimate.lemma2_threshold(0.5, 1) == pytest.approx(0.5)  # L = 1: η < cos θ


def test_conditioning_rank_rule_at_its_threshold():
    """σ_min is compared with σ_max·max(m, n)·ε of the matrix's own dtype (NumPy's matrix_rank rule)."""
    eps64, eps32 = np.finfo(np.float64).eps, np.finfo(np.float32).eps
    # 3×3, σ = (10, 1, s): singular iff s ≤ 10·3·ε — the rule uses σ_max (not σ_2) and multiplies by n
    assert estimate.conditioning(np.diag([10.0, 1.0, 20 * eps64])) == float("inf")
    assert estimate.conditioning(np.diag([10.0, 1.0, 40 * eps64])) == pytest.approx(10 / (40 * eps64), rel=1e-12)
    assert estimate.conditioning(np.diag([1.0, 2.0, 4.0])[::-1]) == pytest.approx(4.0)  # σ sorted by the SVD
    # a float32 matrix cannot certify κ beyond ~1/(n·ε₃₂): its own ε decides, not float64's
    assert estimate.conditioning(np.diag([1.0, 1e-7]).astype(np.float32)) == float("inf")
    assert estimate.conditioning(np.diag([1.0, 1e-7])) == pytest.approx(1e7, rel=1e-12)
    assert 2 * eps32 > 1e-7 > 2 * eps64
    # exactly at the threshold (a diagonal's SVD is exact): numerically singular, as NumPy's rule has it
    assert estimate.conditioning(np.diag([10.0, 1.0, 30 * eps64])) == float("inf")
    # an integer matrix is measured with float64's ε
    assert estimate.conditioning(np.array([[2, 0], [0, 1]])) == 2.0


def test_transmission_skips_zero_preactivations_and_the_linear_last_layer(key):
    net = nets.experiment_mlp(4, 6, 3, 2, activation="leaky_relu", slope=0.3)  # biases, linear last layer
    params = net.init(key)
    params = [dict(layer, b=jnp.zeros_like(layer["b"])) for layer in params]
    x = jnp.concatenate([jnp.zeros((1, 4)), jax.random.normal(key, (9, 4))])  # example 0: z = 0 everywhere
    got = estimate.transmission(net, params, x)
    assert got["alpha"].shape == (2,)  # φ acts on 2 of the 3 layers
    _, zs = net.preactivations(params, x)
    z = np.asarray(zs[0])[1:]
    ratio = np.sqrt((np.maximum(z, 0) ** 2).sum(1) + 0.09 * (np.minimum(z, 0) ** 2).sum(1)) / np.linalg.norm(z, axis=1)
    np.testing.assert_allclose([got["alpha"][0], got["mean"][0]], [ratio.min(), ratio.mean()], rtol=1e-12)
    with pytest.raises(TrustError, match="zero on every example"):
        estimate.transmission(net, params, jnp.zeros((3, 4)))


def test_undefined_angles_and_constants():
    w, g = [jnp.ones((2, 2)), jnp.zeros(3)], [jnp.ones((2, 2)), jnp.ones(3)]
    np.testing.assert_array_equal(np.isnan(estimate.cos_theta(w, g)), [False, True])  # ‖ΔW‖ = 0: undefined
    np.testing.assert_array_equal(np.isnan(estimate.cos_gamma(w, g)), [False, True])
    with pytest.raises(TrustError, match="no point with a positive bound"):
        estimate.effective_constant([1.0, 2.0], [0.0, 0.0])


@pytest.mark.parametrize(("depth", "loss"), [(1, "mse"), (3, "xent"), (4, "mse")])
def test_sharpness_is_the_dense_hessians_top_eigenvalue(key, depth, loss):
    """Lanczos on Hessian-vector products against the eigenvalues of the dense Hessian (jax.hessian, NumPy)."""
    net = nets.experiment_mlp(5, 6, depth, 3)
    params = net.init(key)
    x = jax.random.normal(jax.random.fold_in(key, 1), (40, 5))
    y = jnp.arange(40) % 3
    flat, unravel = ravel_pytree(params)
    dense = jax.hessian(lambda f: losses.loss_function(loss)(net.apply(unravel(f), x), y))(flat)
    eigenvalues = np.linalg.eigvalsh(np.asarray(dense))
    expected = np.abs(eigenvalues).max()
    # float64 HVPs are exact to ~1e-15; the stopping rule asks ARPACK for 1e-8 relative accuracy
    assert estimate.sharpness(net.apply, params, x, y, loss, tol=1e-8) == pytest.approx(expected, rel=1e-6)
    # a loose tolerance still gives the value to about that tolerance (Ritz values converge from below)
    assert estimate.sharpness(net.apply, params, x, y, loss, tol=1e-2) == pytest.approx(expected, rel=2e-2)


def test_sharpness_of_a_linear_least_squares_model_is_closed_form(key):
    """One linear layer under the square loss ½·mean_i‖Wx_i + b − e_{y_i}‖²: for each output row (w_k, b_k) the
    Hessian is (1/n)·Σ_i [x_i 1][x_i 1]ᵀ, so λ_max is the top eigenvalue of that 6×6 second-moment matrix."""
    net = nets.experiment_mlp(5, 6, 1, 3)
    x = jax.random.normal(key, (50, 5))
    aug = np.concatenate([np.asarray(x), np.ones((50, 1))], axis=1)
    expected = np.linalg.eigvalsh(aug.T @ aug / 50).max()
    got = estimate.sharpness(net.apply, net.init(key), x, jnp.arange(50) % 3, "mse", tol=1e-10)
    assert got == pytest.approx(expected, rel=1e-8)  # float64 HVPs; ARPACK asked for 1e-10


@pytest.mark.parametrize("n", [1, 2, estimate.LANCZOS_SUBSPACE, estimate.LANCZOS_SUBSPACE + 1, 20])
def test_sharpness_of_a_diagonal_model_is_closed_form(n):
    """f(x) = x[:, :n]·w elementwise under ½·mean_i Σ_k (x_ik w_k − t_ik)²: the Hessian is diagonal with
    H_kk = mean_i x_ik², so λ_max = max_k mean_i x_ik² — on both sides of the dense/Lanczos switch (ARPACK alone
    fails below 3 parameters)."""
    x = jnp.asarray(np.random.default_rng(n).standard_normal((30, 20)) * np.linspace(0.5, 2.0, 20))
    params = {"w": jnp.linspace(-1.0, 1.0, n)}
    got = estimate.sharpness(lambda p, x: x[:, :n] * p["w"][None, :], params, x, jnp.arange(30) % n, "mse", tol=1e-10)
    assert got == pytest.approx(float(np.max(np.mean(np.asarray(x[:, :n]) ** 2, axis=0))), rel=1e-8)


def test_sharpness_is_the_same_for_the_same_seed(key):
    """The Lanczos start vector comes from ``seed``: two calls give the same bits, another seed the same value to
    the tolerance."""
    net = nets.experiment_mlp(5, 6, 3, 3)
    params = net.init(key)
    x, y = jax.random.normal(key, (30, 5)), jnp.arange(30) % 3
    first, again = (estimate.sharpness(net.apply, params, x, y, tol=1e-2, seed=1) for _ in range(2))
    other = estimate.sharpness(net.apply, params, x, y, tol=1e-2, seed=2)
    assert first == again
    assert other == pytest.approx(first, rel=2e-2)


def test_sharpness_rejects_parameters_that_are_not_finite(key):
    net = nets.experiment_mlp(5, 6, 2, 3)
    params = jax.tree_util.tree_map(lambda t: t.at[0].set(jnp.nan), net.init(key))
    with pytest.raises(TrustError, match="parameters"):
        estimate.sharpness(net.apply, params, jnp.ones((4, 5)), jnp.arange(4) % 3)


# the shape fits, layer conditioning and transmission behind `trust assumptions` (docs/theory.md §2.5)
ETA = np.geomspace(1e-3, 0.3, 10)


def test_drt_shape_recovers_an_exact_exponent():
    # r = (1+η)^{cL} − 1 with c = 1.7, L = 12, for three layers: the fit returns c exactly (float64 logs: 1e-12)
    drt = (1 + ETA) ** 12 - 1
    r = np.stack([(1 + ETA) ** (1.7 * 12) - 1] * 3, axis=1)
    fit = estimate.fit_drt_shape(r, drt)
    assert fit.parameter == pytest.approx(1.7, rel=1e-12)
    assert fit.rms_log < 1e-10
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)


def test_lipschitz_shape_recovers_an_exact_factor_and_matches_lstsq():
    pred = np.outer(ETA, [2.0, 5.0])  # λ‖ΔW‖/‖g_l‖ for two layers
    fit = estimate.fit_lipschitz_shape(0.3 * pred, pred)
    assert fit.parameter == pytest.approx(0.3, rel=1e-12)
    assert fit.rms_log < 1e-12
    # noisy data: the factor is the least-squares slope through the origin (independently: numpy's lstsq)
    noisy = 0.3 * pred * np.exp(np.random.default_rng(0).normal(0, 0.2, pred.shape))
    k = np.linalg.lstsq(pred.reshape(-1, 1), noisy.ravel(), rcond=None)[0][0]
    assert estimate.fit_lipschitz_shape(noisy, pred).parameter == pytest.approx(k, rel=1e-12)
    rms = np.sqrt(np.mean(np.log(noisy / (k * pred)) ** 2))
    assert estimate.fit_lipschitz_shape(noisy, pred).rms_log == pytest.approx(rms, rel=1e-12)


def test_verdicts_and_slopes_on_known_curves():
    drt = (1 + ETA) ** 16 - 1
    pred = 3.0 * ETA[:, None]
    cases = {
        "DRT shape": (1 + ETA) ** 32 - 1,  # exponential: a line through the origin misses it by far at large η
        # linear and steep: DRT's shape ties a steep start (cL ≈ 20) to explosive growth, (1.3)^20 − 1 ≈ 189 ≫ 6
        "Lipschitz shape": 20 * ETA,
        # linear and shallow: with cL ≈ 0.5, (1+η)^{cL} − 1 is itself nearly linear up to η = 0.3 — no contrast
        "both fit": 0.5 * ETA,
        "neither": 0.05 * np.sqrt(ETA),  # sub-linear, as a relu net's jumping gradient
    }
    for expected, r in cases.items():
        d, lip = estimate.fit_drt_shape(r[:, None], drt), estimate.fit_lipschitz_shape(r[:, None], pred)
        assert estimate.shape_verdict(d, lip) == expected, (expected, d, lip)
    assert estimate.loglog_slope(ETA, 0.05 * np.sqrt(ETA)) == pytest.approx(0.5, rel=1e-12)
    assert estimate.loglog_slope(ETA, 7 * ETA) == pytest.approx(1.0, rel=1e-12)
    # (points, layers): pooled over layers — two layers r ∝ η and r ∝ η³ with the same η give slope 2
    both = np.stack([ETA, ETA**3], axis=1)
    assert estimate.loglog_slope(ETA, both) == pytest.approx(2.0, rel=1e-12)
    assert np.isnan(estimate.loglog_slope([0.1, 0.1], [1.0, 2.0]))  # one η: no slope


def test_shape_verdict_at_its_thresholds():
    """The rule on hand-set residuals (good = ln 2 ≈ 0.69, same = ln 1.2 ≈ 0.18): both within good but the worse
    more than twice the better and beyond `same` → the better alone; at exactly `good` a shape still fits."""
    fit = lambda rms: estimate.ShapeFit(1.0, rms, 1.0)  # noqa: E731
    good = estimate.GOOD_FIT
    assert estimate.shape_verdict(fit(0.1), fit(0.5)) == "DRT shape"  # 0.5 > max(0.2, 0.18)
    assert estimate.shape_verdict(fit(0.5), fit(0.1)) == "Lipschitz shape"
    assert estimate.shape_verdict(fit(0.3), fit(0.5)) == "both fit"  # 0.5 ≤ 2·0.3
    assert estimate.shape_verdict(fit(0.1), fit(0.2)) == "both fit"  # exactly twice: still within
    assert estimate.shape_verdict(fit(good), fit(good)) == "both fit"  # exactly at good: fits
    assert estimate.shape_verdict(fit(0.4), fit(good)) == "both fit"
    assert estimate.shape_verdict(fit(0.05), fit(0.1)) == "both fit"  # within `same` though more than twice


def test_shape_fits_leave_out_points_without_a_positive_bound():
    """A point where the bound (or prediction) is 0 — η = 0 — or not finite carries no shape: the fit equals the
    fit without it."""
    drt = (1 + ETA) ** 8 - 1
    r = 1.3 * drt
    with_zero = estimate.fit_drt_shape(np.append(r, 0.5), np.append(drt, 0.0))
    with_inf = estimate.fit_drt_shape(np.append(r, 0.5), np.append(drt, np.inf))
    alone = estimate.fit_drt_shape(r, drt)
    assert with_zero == alone
    assert with_inf == alone
    pred = 2 * ETA
    assert estimate.fit_lipschitz_shape(np.append(r, 0.5), np.append(pred, 0.0)) == estimate.fit_lipschitz_shape(
        r, pred
    )


def test_shape_fit_r2_against_an_independent_regression():
    """R² of a fit through the origin is the centred 1 − SS_res/SS_tot of ln(1+r) against the fitted line,
    computed here with NumPy's lstsq (float64: ~1e-15); a constant response has no R² (NaN)."""
    rng = np.random.default_rng(3)
    drt = (1 + ETA) ** 8 - 1
    r = np.expm1(1.5 * np.log1p(drt) * np.exp(0.1 * rng.standard_normal(ETA.size)))
    fit = estimate.fit_drt_shape(r, drt)
    x, y = np.log1p(drt), np.log1p(r)
    c = np.linalg.lstsq(x[:, None], y, rcond=None)[0][0]
    assert fit.parameter == pytest.approx(c, rel=1e-12)
    assert fit.r2 == pytest.approx(1 - np.sum((y - c * x) ** 2) / np.sum((y - y.mean()) ** 2), rel=1e-12)
    assert 0.5 < fit.r2 < 1.0  # the noise is real: not a perfect fit
    flat = estimate.fit_lipschitz_shape(np.full(4, 0.3), np.full(4, 0.1))
    assert flat.parameter == pytest.approx(3.0)
    assert np.isnan(flat.r2)
    # both fit: at tiny cLη the two curves coincide, (1+η)^{cL} − 1 ≈ cLη
    tiny = ETA * 1e-3
    r = (1 + tiny) ** 16 - 1
    d = estimate.fit_drt_shape(r, (1 + tiny) ** 16 - 1)
    lip = estimate.fit_lipschitz_shape(r, 16 * tiny)
    assert estimate.shape_verdict(d, lip) == "both fit"
    with pytest.raises(TrustError, match="no point"):
        estimate.fit_drt_shape(np.zeros(4), np.ones(4))


def test_layer_conditioning_of_matrices_kernels_and_scales():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 4, 5))
    s = np.linalg.svd(kernel.reshape(36, 5), compute_uv=False)
    assert estimate.layer_conditioning(kernel, spec.conv("HWIO")) == pytest.approx(s[0] / s[-1], rel=1e-12)
    oihw = np.transpose(kernel, (3, 2, 0, 1))  # the same kernel stored as PyTorch does: the same κ
    assert estimate.layer_conditioning(oihw, spec.conv("OIHW")) == pytest.approx(s[0] / s[-1], rel=1e-12)
    assert estimate.layer_conditioning(np.array([0.5, -2.0, 1.0]), spec.gain()) == pytest.approx(4.0, rel=1e-12)
    assert estimate.layer_conditioning(np.array([1.0, 0.0]), spec.gain()) == np.inf


def test_transmission_on_a_resnet_sees_every_phi():
    net = nets.ResNet((6, 6, 1), 3, widths=(4, 8), blocks=(1, 1), norm="batch", activation="leaky_relu", slope=0.1)
    params = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (7, 36))
    t = estimate.transmission(net, params, x)
    assert t["alpha"].shape == (2 * sum(net.blocks) + 1,)  # two φ per block and one before the pooling
    # leaky relu with slope s: s ≤ ‖φ(z)‖/‖z‖ ≤ 1 for every input (a theorem of the activation)
    assert np.all(t["alpha"] >= 0.1 - 1e-7)
    assert np.all(t["beta"] <= 1 + 1e-7)
    assert np.all(t["alpha"] <= t["mean"])
    assert np.all(t["mean"] <= t["beta"])


def test_mean_ci_closed_form():
    ci = estimate.mean_ci([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, s = √(5/3), sem = s/2, t_{0.975, 3} = 3.182446305284263 (tables), float64 ~1e-15
    assert ci.mean == 2.5
    assert ci.n == 4
    assert ci.sem == pytest.approx(np.sqrt(5 / 3) / 2, rel=1e-12)
    assert ci.half_width == pytest.approx(3.182446305284263 * np.sqrt(5 / 3) / 2, rel=1e-9)
    assert estimate.mean_ci([1.0, 2.0, 3.0, 4.0], level=0.9).half_width == pytest.approx(
        2.353363434801823 * np.sqrt(5 / 3) / 2, rel=1e-9
    )  # t_{0.95, 3}
    one = estimate.mean_ci([0.5])
    assert one.mean == 0.5
    assert one.n == 1
    assert np.isnan(one.half_width)
    assert np.isnan(one.sem)  # no interval
