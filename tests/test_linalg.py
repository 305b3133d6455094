"""Per-layer matrix geometry against dense NumPy SVDs and closed forms (docs/theory.md §8)."""

import numpy as np
import pytest
from conftest import SEED

from trust.base import linalg, spec
from trust.base.errors import TrustError


def _with_spectrum(rng, shape, sigma):
    """A matrix with exactly the singular values ``sigma`` (random orthogonal factors)."""
    u, _ = np.linalg.qr(rng.standard_normal((shape[0], len(sigma))))
    v, _ = np.linalg.qr(rng.standard_normal((shape[1], len(sigma))))
    return (u * sigma) @ v.T


def test_operator_norms_are_the_largest_singular_values():
    rng = np.random.default_rng(SEED)
    matrices = [rng.normal(size=(5, 3)), rng.normal(size=(4, 4)), np.diag([3.0, -7.0, 2.0])]
    got = linalg.operator_norms(matrices, spec=[spec.dense()] * 3)
    # dense SVD in float64: the same number to rounding; the Frobenius norm is strictly larger for rank > 1
    np.testing.assert_allclose(got, [np.linalg.svd(m, compute_uv=False)[0] for m in matrices], rtol=1e-12)
    assert got[2] == pytest.approx(7.0, rel=1e-15)
    assert np.all(got < [np.linalg.norm(m) for m in matrices])


@pytest.mark.parametrize("shape", [(300, 280), (400, 600), (520, 512)])
def test_power_iteration_matches_numpy_svd(shape):
    """Above EXACT_BELOW the power iteration answers; its stopping rule (residual ≤ tol·σ) bounds the error of σ by
    tol·σ, and its start is seeded, so the answer is the same on every call."""
    rng = np.random.default_rng(SEED)
    m = rng.standard_normal(shape)
    exact = np.linalg.svd(m, compute_uv=False)[0]
    top = linalg.top_singular(m, tol=1e-6)
    assert top.iterations > 0
    assert top.sigma <= exact * (1 + 1e-12)  # a Rayleigh quotient: never above σ_max
    assert top.sigma == pytest.approx(exact, rel=1e-6)
    np.testing.assert_allclose(m @ top.v, top.sigma * top.u, rtol=0, atol=1e-9 * top.sigma)  # M v = σ u exactly
    assert linalg.operator_norm(m) == top.sigma


def test_power_iteration_stops_at_its_tolerance_and_says_when_it_cannot():
    rng = np.random.default_rng(SEED)
    m = _with_spectrum(rng, (50, 40), np.array([1.0, 0.99, 0.5]))  # gap 1 %: slow convergence
    loose, tight = linalg.power_iteration(m, tol=1e-2), linalg.power_iteration(m, tol=1e-8)
    assert loose.iterations < tight.iterations
    assert abs(loose.sigma - 1.0) <= 1e-2
    assert abs(tight.sigma - 1.0) <= 1e-8
    with pytest.raises(TrustError, match="did not reach relative residual"):
        linalg.power_iteration(m, tol=1e-12, max_iter=5)
    with pytest.raises(TrustError, match="NaN or Inf"):
        linalg.power_iteration(np.full((3, 3), np.nan))
    assert linalg.power_iteration(np.zeros((3, 2))).sigma == 0.0


def test_a_layer_as_a_matrix_kernels_scales_and_biases():
    rng = np.random.default_rng(SEED)
    kernel = rng.standard_normal((3, 3, 4, 5))  # HWIO → the (36, 5) patch-to-pixel matrix
    hwio = spec.conv("HWIO")
    assert linalg.operator_norm(kernel, hwio) == pytest.approx(np.linalg.norm(kernel.reshape(36, 5), 2), rel=1e-12)
    # the same kernel stored OIHW (PyTorch, Equinox) is the same matrix; read as HWIO it would be another one
    oihw = np.transpose(kernel, (3, 2, 0, 1))
    np.testing.assert_array_equal(linalg.as_matrix(oihw, spec.conv("OIHW")), kernel.reshape(36, 5))
    assert linalg.operator_norm(oihw, spec.conv("OIHW")) == linalg.operator_norm(kernel, hwio)
    assert linalg.operator_norm(oihw, hwio) != pytest.approx(linalg.operator_norm(kernel, hwio), rel=1e-3)
    polar_hwio = np.transpose(linalg.polar(kernel, hwio), (3, 2, 0, 1))
    np.testing.assert_allclose(linalg.polar(oihw, spec.conv("OIHW")), polar_hwio, atol=1e-13)
    scale = np.array([0.5, -2.0, 1.0])  # diag(s): σ are |s_i|
    assert linalg.operator_norm(scale, spec.gain()) == 2.0
    assert linalg.stable_rank(scale, spec.gain()) == pytest.approx((0.25 + 4 + 1) / 4, rel=1e-15)
    bias = np.array([3.0, 4.0])  # a row: its operator norm is its Euclidean norm, its stable rank 1
    assert linalg.operator_norm(bias, spec.bias()) == pytest.approx(5.0, rel=1e-15)
    assert linalg.stable_rank(bias, spec.bias()) == pytest.approx(1.0, rel=1e-15)
    with pytest.raises(TrustError, match=r"does not name each of its 4 axes"):
        linalg.operator_norm(kernel)  # a plain matrix's spec does not fit a kernel: refused, not reshaped


def test_stable_rank_closed_forms():
    rng = np.random.default_rng(SEED)
    sigma = np.array([3.0, 2.0, 1.0])
    m = _with_spectrum(rng, (8, 6), sigma)
    assert linalg.stable_rank(m) == pytest.approx(14 / 9, rel=1e-12)  # Σσ²/σ_max²
    assert linalg.stable_rank(np.outer(rng.standard_normal(7), rng.standard_normal(5))) == pytest.approx(1, rel=1e-12)
    assert linalg.stable_rank(np.eye(6)) == pytest.approx(6, rel=1e-12)
    assert np.isnan(linalg.stable_rank(np.zeros((3, 3))))


def test_polar_factor_is_orthogonal_on_the_range():
    rng = np.random.default_rng(SEED)
    for shape in [(7, 4), (4, 7)]:
        m = rng.standard_normal(shape)
        q = linalg.polar(m)
        k = min(shape)
        gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
        np.testing.assert_allclose(gram, np.eye(k), atol=1e-13)  # float64 SVD factors: orthonormal to ~1e-15
        np.testing.assert_allclose(np.linalg.svd(q, compute_uv=False), np.ones(k), rtol=1e-13)
        # the steepest-descent property: ⟨M, Q⟩ = Σσ (the nuclear norm), the most any ‖Q‖_op ≤ 1 reaches
        assert np.sum(m * q) == pytest.approx(np.linalg.svd(m, compute_uv=False).sum(), rel=1e-12)
    low_rank = _with_spectrum(rng, (6, 5), np.array([2.0, 1e-3]))  # rank 2: only two unit singular values
    np.testing.assert_allclose(np.linalg.svd(linalg.polar(low_rank), compute_uv=False), [1, 1, 0, 0, 0], atol=1e-12)
    np.testing.assert_array_equal(linalg.polar(np.array([0.5, -2.0, 0.0]), spec.gain()), [1, -1, 0])
    np.testing.assert_allclose(linalg.polar(np.array([3.0, 4.0]), spec.bias()), [0.6, 0.8], rtol=1e-15)
    np.testing.assert_array_equal(linalg.polar(np.zeros((3, 2))), np.zeros((3, 2)))
    with pytest.raises(TrustError, match="orthogonalise has NaN or Inf entries in tensor 2"):
        linalg.polars([np.ones((2, 2)), np.array([[np.nan]])], spec=[spec.dense()] * 2)


def test_elementwise_size_bounds_the_other_two():
    """A theorem (docs/theory.md §8): |ΔW| ≤ e|W| entrywise gives ‖ΔW‖_F ≤ e‖W‖_F and ‖ΔW‖_op ≤ ‖|ΔW|‖_op ≤
    e‖|W|‖_op (the operator norm is monotone in entrywise magnitudes) — held on 200 random cases, no violation."""
    rng = np.random.default_rng(SEED)
    for _ in range(200):
        shape = tuple(rng.integers(1, 9, size=2))
        w = rng.standard_normal(shape)
        e = rng.uniform(0.0, 2.0)
        delta = rng.uniform(-1, 1, shape) * e * np.abs(w)
        e_measured = np.max(np.abs(delta) / np.abs(w))
        assert e_measured <= e
        # rounding: each side is a float64 norm of ≤ 64 entries, ~1e-15 relative
        assert np.linalg.norm(delta) <= e_measured * np.linalg.norm(w) * (1 + 1e-12)
        bound = e_measured * np.linalg.norm(np.abs(w), 2)
        assert np.linalg.norm(delta, 2) <= bound * (1 + 1e-12)


def test_a_cluster_at_the_top_falls_back_to_the_exact_svd():
    """Singular values 1 and 1 − 1e-5 (as in a float32 step of orthogonalised SGD, all equal up to rounding): the
    power iteration cannot reach a 1e-8 residual in FALLBACK_AFTER steps, so the exact SVD answers."""
    rng = np.random.default_rng(SEED)
    m = _with_spectrum(rng, (300, 300), np.array([1.0, 1 - 1e-5, 1 - 2e-5, 0.5]))
    with pytest.raises(TrustError, match="did not reach"):
        linalg.power_iteration(m, tol=1e-8, max_iter=linalg.FALLBACK_AFTER)
    top = linalg.top_singular(m, tol=1e-8)
    assert top.iterations == 0
    assert top.sigma == pytest.approx(1.0, rel=1e-12)
    with pytest.raises(TrustError, match="NaN or Inf"):
        linalg.top_singular(np.full((300, 300), np.inf))


def test_when_gesdd_does_not_converge_gesvd_answers(monkeypatch):
    """NumPy's divide-and-conquer SVD raising LinAlgError (as it once did on a finite geometry-cell matrix) is
    answered by LAPACK's QR-iteration driver: the same singular values (float64, well-separated spectrum: to 1e-12)
    through top_singular and polar alike."""
    rng = np.random.default_rng(SEED)
    m = _with_spectrum(rng, (40, 30), np.array([3.0, 2.0, 1.0, 0.5]))
    expected_polar = linalg.polar(m)

    def failing(*args, **kwargs):
        raise np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(linalg.np.linalg, "svd", failing)
    assert linalg.top_singular(m).sigma == pytest.approx(3.0, rel=1e-12)
    np.testing.assert_allclose(linalg.polar(m), expected_polar, atol=1e-12)


def test_the_polar_factor_is_one_rule_in_numpy_and_in_the_optimiser():
    """linalg.polar (NumPy, float64) and orthogonalised SGD's step (JAX, traced) give the same factor: sign(s) for
    a normalisation gain diag(s); g/‖g‖ for a bias row; U_r V_rᵀ for a matrix, whose float32 rounding noise below
    max(shape)·ε₃₂·σ_max is dropped (a rank-1 outer product keeps rank 1)."""
    import jax.numpy as jnp

    from trust.core import optim

    rng = np.random.default_rng(3)
    rank1 = np.outer(rng.normal(size=6), rng.normal(size=4)).astype(np.float32)
    params = {"1": {"w": jnp.asarray(rank1), "b": jnp.asarray([3.0, -4.0], jnp.float32)},
              "2": {"scale": jnp.asarray([2.0, -0.5, 1e-3], jnp.float32)}}  # fmt: skip
    step, _ = optim.scale_by_polar().update(params, optim.scale_by_polar().init(params))
    np.testing.assert_array_equal(np.asarray(step["2"]["scale"]), [1.0, -1.0, 1.0])  # diag(s): sign s
    np.testing.assert_allclose(np.asarray(step["1"]["b"]), [0.6, -0.8], rtol=1e-6)  # a row: g/‖g‖
    u = rank1 / np.linalg.norm(rank1)  # the polar factor of a rank-1 matrix is its normalised self
    np.testing.assert_allclose(np.asarray(step["1"]["w"]), u, atol=1e-6)  # float32
    np.testing.assert_allclose(linalg.polar(rank1), u, atol=1e-6)  # the float32 noise directions are dropped
    assert np.linalg.matrix_rank(linalg.polar(rank1), tol=1e-3) == 1
    np.testing.assert_array_equal(linalg.polar(np.asarray(params["2"]["scale"]), spec.gain()), [1.0, -1.0, 1.0])
