"""Closed forms of the bound functions (docs/theory.md §2)."""

import numpy as np
import pytest

from trust.base.errors import TrustError
from trust.core import bounds


def test_drt_bound_closed_forms():
    np.testing.assert_allclose(bounds.drt_bound([0.1, 0.2, 0.3]), 1.1 * 1.2 * 1.3 - 1, rtol=1e-15)
    for L in (1, 2, 16, 50):  # the Figure-1 slice: a_l = η for every layer
        eta = np.linspace(0, 0.1, 11)
        np.testing.assert_allclose(bounds.drt_bound(np.repeat(eta[:, None], L, 1)), (1 + eta) ** L - 1, rtol=1e-13)
    assert bounds.drt_bound(np.zeros((3, 4))).tolist() == [0.0, 0.0, 0.0]


def test_drt_bound_keeps_relative_precision_for_tiny_perturbations():
    # (1 + 1e-12)^16 − 1 = 1.6e-11 exactly to first order; the naive product loses ~4 digits here.
    np.testing.assert_allclose(bounds.drt_bound(np.full(16, 1e-12)), 16e-12, rtol=1e-10)


def test_theorem1_constant_and_bound():
    assert bounds.theorem1_constant(3, alpha=0.5, beta=1.0, kappa=2.0) == pytest.approx(8.0**3, rel=1e-15)
    assert bounds.theorem1_constant(4, alpha=0.0, beta=1.0, kappa=1.0) == float("inf")  # relu: vacuous
    a = np.array([[0.01, 0.02], [0.1, 0.0]])
    np.testing.assert_allclose(bounds.theorem1_bound(a, 0.25, 1.0, 1.5), (1.5**2 / 0.25) ** 2 * bounds.drt_bound(a))
    np.testing.assert_allclose(bounds.theorem1_bound_per_layer(a, [2.0, 3.0]), 6.0 * bounds.drt_bound(a))
    # with α = β = κ = 1 (identity, orthogonal) the constant is 1 and Theorem 1 reduces to DRT
    np.testing.assert_allclose(bounds.theorem1_bound(a, 1, 1, 1), bounds.drt_bound(a))


def test_lipschitz_prediction_is_linear_and_secant_fits_smallest_step():
    delta = np.array([0.0, 0.5, 0.1, 2.0])
    change = np.array([0.0, 7.0, 0.3, 100.0])
    lam = bounds.secant_lipschitz(change, delta)
    assert lam == pytest.approx(3.0)  # fitted on ‖ΔW‖ = 0.1, not the first nonzero entry
    np.testing.assert_allclose(bounds.lipschitz_prediction(lam, delta, grad_norm=2.0), 1.5 * delta)
    with pytest.raises(TrustError):
        bounds.secant_lipschitz([0.0], [0.0])


def test_theorem1_forms_on_batches_of_non_square_shapes():
    """Killed mutants: β entering C as a divisor, L read from the wrong axis, ∏c_l taken over every axis."""
    # C = (κ²β/α)^L with β ≠ 1: (2²·0.5/0.25)^3 = 8^3
    assert bounds.theorem1_constant(3, alpha=0.25, beta=0.5, kappa=2.0) == pytest.approx(512.0, rel=1e-15)
    a = np.array([[0.01, 0.02, 0.03], [0.1, 0.0, 0.2]])  # 2 cases × 3 layers: L = 3, not 2
    np.testing.assert_allclose(bounds.theorem1_bound(a, 0.5, 1.0, 1.0), 8.0 * bounds.drt_bound(a), rtol=1e-15)
    c = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 5.0]])  # per case: ∏c_l = 6 and 5
    np.testing.assert_allclose(bounds.theorem1_bound_per_layer(a, c), [6.0, 5.0] * bounds.drt_bound(a), rtol=1e-15)


def test_lipschitz_defaults_and_errors():
    np.testing.assert_allclose(bounds.lipschitz_prediction(3.0, [0.0, 2.0]), [0.0, 6.0])  # grad_norm = 1
    with pytest.raises(TrustError, match=r"^no nonzero perturbation to fit λ on$"):
        bounds.secant_lipschitz([0.0, 1.0], [0.0, 0.0])


def test_theorem1_bound_of_a_single_perturbation():
    """One perturbation (a 1-D vector of L relative sizes): L is its length (kills reading L off axis +1)."""
    a = np.array([0.1, 0.2, 0.0])
    assert bounds.theorem1_bound(a, 0.5, 1.0, 1.0) == pytest.approx(8.0 * (1.1 * 1.2 - 1), rel=1e-14)


def test_operator_norm_bound_on_a_batch_and_its_default_input_norm():
    """Layers on the last axis, cases on the first; ‖x‖ defaults to 1."""
    w_op = np.array([[2.0, 3.0], [1.0, 0.5]])
    delta_op = np.array([[0.2, 0.3], [0.1, 0.0]])  # relative sizes 0.1, 0.1 and 0.1, 0
    expected = np.array([6.0 * (1.1 * 1.1 - 1), 0.5 * 0.1])
    np.testing.assert_allclose(bounds.operator_norm_bound(w_op, delta_op), expected, rtol=1e-14)
    np.testing.assert_allclose(bounds.operator_norm_bound(w_op, delta_op, x_norm=[2.0, 3.0]), [2, 3] * expected)
