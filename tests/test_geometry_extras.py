"""A geometry cell's extra measurements (docs/theory.md §10–§12) on small MLPs and a ResNet: the modular family
under its exact bound (a theorem: zero violations), the layers as modules against NumPy, and the input
sensitivity by power iteration against the per-example SVDs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trust.base.errors import TrustError
from trust.core import modular, nets
from trust.experiments.shared import geometry_extras as extras


def rms(a):
    return np.linalg.norm(a) / np.sqrt(np.size(a))


def bias_free(key, residual=False, widths=(6, 5, 5, 5, 3)):
    net = nets.experiment_mlp(widths[0], widths[1], len(widths) - 1, widths[-1], bias=False, residual=residual)
    return net, net.init(key)


# four layers: unit masses give every layer 1/4 of the step; the hidden two tared to mass 1 give the first and last
# 1/3 each and the hidden ones 1/6 (docs/theory.md §10.1)
SHARES = {None: (1 / 4,) * 4, 1.0: (1 / 3, 1 / 6, 1 / 6, 1 / 3)}


@pytest.mark.parametrize("hidden_mass", SHARES)
def test_the_modular_family_stays_under_its_exact_bound_and_the_step_has_modular_norm_eta(key, hidden_mass):
    net, params = bias_free(key)
    x = jax.random.normal(jax.random.fold_in(key, 1), (50, 6))
    eta = np.array([0.01, 0.1, 0.3, 1.0])
    module = extras.module_of(net, hidden_mass)
    np.testing.assert_allclose(module.shares, SHARES[hidden_mass], rtol=1e-15)
    rng = np.random.default_rng(0)
    nominal, exact = extras.modular_bounds(module, extras.atom_norms(net, module, params), x, eta)
    # the closed form ∏(1 + η s_l) − 1 subtracts 1 from a product near 1, a cancellation of ~ε/η ≈ 2e-14 relative at
    # η = 0.01 that the bound's recursion (summing the changes) does not make
    np.testing.assert_allclose(nominal, np.prod(1 + np.outer(eta, SHARES[hidden_mass]), axis=1) - 1, rtol=1e-13)
    for _ in range(20):  # a theorem (docs/theory.md §10.3): zero violations beyond float64 rounding
        raw = [{"w": jnp.asarray(rng.normal(size=p["w"].shape))} for p in params]
        measured = extras.modular_family(net, module, params, raw, x, eta)
        assert np.all(measured <= exact * (1 + 1e-10))
    unit = [s * np.asarray(r["w"]) / modular.atom_norm(r["w"], a) for r, a, s in zip(raw, module.atoms, module.shares)]
    assert modular.norm(module, unit) == pytest.approx(1.0, rel=1e-12)


def small_resnet(key, norm="none"):
    net = nets.resnet((8, 8, 1), 10, 8, norm, 4)
    return net, net.init(key)


NETS = {
    "plain": lambda key: bias_free(key),
    "residual": lambda key: bias_free(key, residual=True),
    "biased": lambda key: (lambda n: (n, n.init(key)))(nets.experiment_mlp(6, 5, 4, 3)),
    "resnet": small_resnet,
}
HIDDEN_MASS = {"plain": 1.0, "biased": 1.0}  # the alternative allocation, on the MLPs it applies to (§10.1)


@pytest.mark.parametrize("name, hidden_mass", [(n, None) for n in NETS] + list(HIDDEN_MASS.items()))
def test_the_exact_modular_bound_holds_on_every_modular_net(key, name, hidden_mass):
    """docs/theory.md §10.3, §10.5, a theorem: along 10 random directions, at weights scaled ×0.5 to ×3 (atom norms
    below and above 1), no step of modular norm η moves the output by more than the bound with the measured atom
    norms, under the paper's unit masses and the tared hidden layers alike — zero violations, float64; each atom's
    tensor has the shape the module says."""
    net, params = NETS[name](key)
    module = extras.module_of(net, hidden_mass)
    assert [np.shape(t) for t in extras.atom_tensors(net, params)] == [a.shape for a in module.atoms]
    x = jax.random.normal(jax.random.fold_in(key, 1), (40, 64 if name == "resnet" else 6))
    eta = np.array([0.01, 0.1, 0.5, 2.0])
    for i in range(10):
        scaled = jax.tree_util.tree_map(lambda p: p * (0.5 + 0.25 * i), params)
        raw = jax.tree_util.tree_map(lambda p: jax.random.normal(jax.random.fold_in(key, 10 + i), p.shape), params)
        _, exact = extras.modular_bounds(module, extras.atom_norms(net, module, scaled), x, eta)
        assert np.all(extras.modular_family(net, module, scaled, raw, x, eta) <= exact * (1 + 1e-10))


def test_nets_outside_the_modular_norm_are_refused_by_name(key):
    with pytest.raises(TrustError, match="a ResNet with batch normalisation"):
        extras.module_of(small_resnet(key, "batch")[0])
    with pytest.raises(TrustError, match="this net has gelu"):
        extras.module_of(nets.experiment_mlp(6, 5, 3, 3, activation="gelu"))
    with pytest.raises(TrustError, match="a hidden mass is an MLP's allocation"):
        extras.module_of(small_resnet(key)[0], 1.0)
    from dataclasses import replace

    from trust.experiments.shared import geometry_cell

    for fields in (dict(depth=2), dict(residual=True), dict(model="resnet8", bias=True)):  # nothing to tare
        with pytest.raises(TrustError, match=r"a hidden mass .* plain MLPs of depth ≥ 3"):
            geometry_cell.GeometryCellConfig(replace(geometry_cell.CELL_TRAINING, **fields), hidden_mass=1.0)


@pytest.mark.parametrize("residual", [False, True])
def test_the_layers_as_modules_compose_to_the_net(key, residual):
    net, params = bias_free(key, residual)
    x = jax.random.normal(jax.random.fold_in(key, 1), (7, 6))
    h = x
    for f, p, expected in zip(extras.layer_maps(net, params), params, net.layer_inputs(params, x)[1:]):
        h = f(p["w"], h)
        np.testing.assert_allclose(h, expected, rtol=1e-12, atol=1e-14)


def test_input_sensitivity_is_the_largest_per_example_jacobian_norm(key):
    net, params = bias_free(key, widths=(6, 8, 8, 3))
    x = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (30, 6)))
    hs = net.layer_inputs(params, jnp.asarray(x))
    maps = extras.layer_maps(net, params)
    for l in range(3):
        w, h = np.asarray(params[l]["w"]), np.asarray(hs[l])
        fan_out, fan_in = w.shape
        # linear (the last layer): √(in/out)‖W‖_op at every input; relu: J = diag(φ'(z)) W per example
        per_example = [np.linalg.norm(w if l == 2 else (w @ hi > 0)[:, None] * w, 2) for hi in h]
        expected = np.sqrt(fan_in / fan_out) * max(per_example)
        got = extras.input_sensitivity(lambda a, f=maps[l], w=params[l]["w"]: f(w, a), hs[l], tol=1e-8)
        # residual 1e-8·σ: σ within 1e-8 relative of a singular value; power iteration from a random start reaches
        # the largest (a Rayleigh quotient never exceeds it)
        assert got == pytest.approx(expected, rel=1e-6)


def test_weight_sensitivity_is_the_first_order_output_change_per_unit_atom_step(key):
    net, params = bias_free(key, widths=(6, 8, 8, 3))
    x = jax.random.normal(jax.random.fold_in(key, 1), (30, 6))
    grads = jax.tree_util.tree_map(lambda p: jax.random.normal(jax.random.fold_in(key, 9), p.shape), params)
    _, weight_s = extras.sensitivities(net, params, grads, x)
    hs = [np.asarray(h) for h in net.layer_inputs(params, x)]
    for l in range(3):
        w, g, h = np.asarray(params[l]["w"]), np.asarray(grads[l]["w"]), hs[l]
        u, _, vt = np.linalg.svd(g, full_matrices=False)
        delta = np.sqrt(w.shape[0] / w.shape[1]) * u @ vt
        change = h @ delta.T * ((h @ w.T > 0) if l < 2 else 1.0)
        assert weight_s[l] == pytest.approx(rms(change) / rms(h), rel=1e-10)
        assert weight_s[l] <= 1 + 1e-12  # a 1-Lipschitz layer under a step of ‖Δ‖_* = 1 (a theorem)


def test_a_geometry_cell_carries_the_extras_and_the_theorem_holds_on_it():
    """A tiny trained cell with the modules and the curvature asked for: every extra has its documented shape, the
    modular family stays under its exact bound at both points (a theorem) and the feature alignment under 1."""
    from dataclasses import replace

    from trust.experiments.shared import geometry_cell

    training = replace(geometry_cell.CELL_TRAINING, dataset="digits", epochs=1, batch_size=100, width=12, depth=3)
    config = geometry_cell.GeometryCellConfig(
        training, eta=(0.01, 0.1), n_measure=60, hidden_mass=1.0, modules=True, curvature=True
    )
    r = geometry_cell.run(config)
    k, d, e, l = 2, 4, 2, 3
    for allocation in ("modular", "tared"):  # the paper's unit masses and the hidden layer tared (§10.1)
        function, exact = getattr(r, f"{allocation}_function"), getattr(r, f"{allocation}_exact")
        assert (
            function.shape == (k, d, e) and exact.shape == (k, e) and getattr(r, f"{allocation}_nominal").shape == (e,)
        )
        assert np.all(function <= exact[:, None, :] * (1 + 1e-5))  # float32 net: rounding
    # one hidden layer tared to mass 1 beside the first and last: shares 1/3 each, where unit masses give 1/3 too
    np.testing.assert_allclose(r.tared_function, r.modular_function, rtol=1e-12)
    assert r.atom_norm.shape == r.input_sensitivity.shape == r.weight_sensitivity.shape == (k, l)
    assert r.features.shape == (2, 3, l) and np.all(r.features[:, 1] <= 1 + 1e-6)
    assert r.block_curvature.shape == (k, l) and r.trace.shape == (k, 4) and r.lipschitz_layer.shape == (k, e, l)
    assert r.density_nodes.shape == r.density_weights.shape == (k, extras.DENSITY_PROBES, extras.DENSITY_ORDER)
    plain = geometry_cell.run(replace(config, modules=False, curvature=False))
    assert plain.input_sensitivity.size == plain.block_curvature.size == 0  # asked for on chosen cells only
    np.testing.assert_array_equal(plain.modular_function, r.modular_function)  # same seed, same numbers
