"""measure.relative_distances against the NumPy reference, a per-η loop, and η = 0."""

import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest

from trust.base import spec, tree
from trust.base.errors import TrustError
from trust.core import data, losses, measure, nets, perturb

ETAS = np.array([0.0, 0.003, 0.02, 0.0, 0.07, 0.15, 0.4])


def _setup(key, net, n=60):
    ds = data.synthetic(jax.random.fold_in(key, 1), n=n, d=net.widths[0], n_classes=net.widths[-1])
    params = net.init(jax.random.fold_in(key, 2))
    grads = jax.jit(jax.grad(lambda p: losses.cross_entropy(net.apply(p, ds.x_train), ds.y_train)))(params)
    return params, grads, ds.x_train, ds.y_train


NETS = [
    nets.experiment_mlp(9, 12, 4, 5),
    nets.experiment_mlp(9, 12, 5, 5, activation="tanh", residual=True, init_scheme="gaussian"),
    nets.theorem1_mlp((9, 12, 12, 7), "leaky_relu", slope=0.1),
    nets.experiment_mlp(9, 12, 3, 5, activation="identity"),
    nets.experiment_mlp(9, 9, 4, 5, residual=True, residual_first=True),  # the authors' residual net: x + φ(W₁x)
    nets.experiment_mlp(9, 12, 4, 5, activation="gelu"),  # smooth relus (issue 27: breakdown without kinks)
    nets.experiment_mlp(9, 12, 3, 5, activation="softplus", residual=True),
]


@pytest.mark.parametrize(
    "net", NETS, ids=lambda n: f"L{n.depth}-{n.activation}-res{n.residual}{n.residual_first}-bias{n.bias}"
)
@pytest.mark.parametrize("kind", ["gradient", "random", "madam"])
def test_matches_numpy_reference(key, net, kind):
    params, grads, x, y = _setup(key, net)
    u = {
        "gradient": lambda: perturb.along_gradient(params, grads),
        "random": lambda: perturb.gaussian(jax.random.fold_in(key, 3), params),
        "madam": lambda: perturb.madam(params, grads),
    }[kind]()
    d = measure.relative_distances(net.apply, params, x, y, u, ETAS)

    ws = [np.asarray(p["w"]) for p in params]
    bs = [np.asarray(p["b"]) for p in params] if net.bias else None
    uw = [np.asarray(q["w"]) for q in u]
    ub = [np.asarray(q["b"]) for q in u] if net.bias else None
    opts = dict(act=net.activation, slope=net.slope, final_activation=net.final_activation, residual=net.residual,
                residual_first=net.residual_first)  # fmt: skip
    xn, yn = np.asarray(x), np.asarray(y)
    loss0, out0, gw0, gb0 = ref.xent_and_grad(ws, bs, xn, yn, **opts)
    # float64 throughout, nets of depth ≤ 5 with O(1) weights: agreement to ~1e-12 is expected; 1e-9
    # leaves room for relu kinks (no pre-activation is within 1e-9 of 0 for these continuous draws).
    tol = dict(rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(d.loss0, loss0, **tol)
    np.testing.assert_allclose(d.output_norm, np.linalg.norm(out0, axis=1), **tol)
    # leaves flatten in sorted-key order within a layer: b before w
    g0 = [v for pair in zip(gb0, gw0) for v in pair] if net.bias else gw0
    np.testing.assert_allclose(d.gradient_norm, [np.linalg.norm(g) for g in g0], **tol)
    for k, eta in enumerate(ETAS):
        w1 = [w + eta * dw for w, dw in zip(ws, uw)]
        b1 = [b + eta * db for b, db in zip(bs, ub)] if net.bias else None
        loss1, out1, gw1, gb1 = ref.xent_and_grad(w1, b1, xn, yn, **opts)
        per, frob = ref.relative_function_distance(out0, out1)
        g1 = [v for pair in zip(gb1, gw1) for v in pair] if net.bias else gw1
        np.testing.assert_allclose(d.loss[k], loss1, **tol)
        np.testing.assert_allclose(d.function_per_example[k], per, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(d.function_frob[k], frob, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(d.gradient[k], ref.relative_gradient_distance(g0, g1), rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(d.function_max[k], per.max(), rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(d.function_mean[k], per.mean(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_size", [1, 4])  # 4 leaves a remainder chunk of 3 (padded)
def test_exactly_zero_at_eta_zero(key, dtype, batch_size):
    """Not approximately: η = 0 is the base point itself (see measure._grid_on_device)."""
    with jax.enable_x64(dtype == "float64"):
        net = nets.experiment_mlp(9, 16, 6, 5)
        params, grads, x, y = _setup(key, net)
        for u in (perturb.along_gradient(params, grads), perturb.gaussian(key, params)):
            d = measure.relative_distances(net.apply, params, x, y, u, ETAS, batch_size=batch_size)
            zero = d.etas == 0
            assert np.all(d.function_change[zero] == 0)
            assert np.all(d.batch_change[zero] == 0)
            assert np.all(d.gradient_change[zero] == 0)
            assert np.all(d.loss[zero] == d.loss0)
            assert np.all(d.gradient_change[~zero] > 0)  # and the others really moved


def test_exactly_zero_at_eta_zero_where_xla_rounds_the_two_bodies_apart():
    # The case that showed it: computed, this net's first-layer gradient change at η = 0 came out 4e-19 (the
    # grid's compiled body rounds the shared first layer's gradient apart from the base point's body).
    net = nets.experiment_mlp(16, 12, 4, 3)
    x, y = jax.random.normal(jax.random.key(0), (24, 16)), jnp.arange(24) % 3
    params = net.init(jax.random.key(1))
    u = perturb.along_gradient(params, measure.full_batch_gradient(net.apply, params, x, y))
    d = measure.relative_distances(net.apply, params, x, y, u, np.linspace(0.0, 0.3, 6))
    assert np.all(d.gradient_change[0] == 0)
    assert np.all(d.function_change[0] == 0)
    assert d.loss[0] == d.loss0
    assert np.all(d.gradient_change[1:] > 0)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_grid_equals_per_eta_loop(key, batch_size):
    net = nets.experiment_mlp(9, 16, 5, 5, residual=True)
    params, grads, x, y = _setup(key, net)
    u = perturb.along_gradient(params, grads)
    grid = measure.relative_distances(net.apply, params, x, y, u, ETAS, batch_size=batch_size)
    for k, eta in enumerate(ETAS):
        one = measure.relative_distances(net.apply, params, x, y, u, [eta])
        # float64; only the vmap width differs, so results agree to rounding (~1e-15 relative)
        np.testing.assert_allclose(grid.loss[k], one.loss[0], rtol=1e-12)
        np.testing.assert_allclose(grid.function_change[k], one.function_change[0], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(grid.gradient_change[k], one.gradient_change[0], rtol=1e-10, atol=1e-14)
    # the record's bookkeeping: its grid, the tensors' names and layer flags, the total over all tensors
    np.testing.assert_array_equal(grid.etas, ETAS)
    assert grid.names == tuple(tree.leaf_names(params))
    assert grid.is_weight == tuple(spec.layer_flags(params))
    total = np.sqrt(np.sum(grid.gradient_change**2, axis=1)) / np.linalg.norm(grid.gradient_norm)
    np.testing.assert_allclose(grid.gradient_total, total, rtol=1e-12)  # ‖Δ∇ℒ‖₂ over the flattened tensors


def test_relative_size_and_delta_norm(key):
    net = nets.experiment_mlp(9, 16, 4, 5)
    params, grads, x, y = _setup(key, net)
    sizes = np.linspace(0.5, 2.0, 8)
    u = perturb.along_gradient(params, grads, sizes=sizes)
    d = measure.relative_distances(net.apply, params, x, y, u, ETAS)
    np.testing.assert_allclose(d.relative_size, ETAS[:, None] * sizes[None, :], rtol=1e-12)
    w_norms = np.asarray(tree.frobenius_norms(params))
    np.testing.assert_allclose(d.delta_norm, ETAS * np.linalg.norm(sizes * w_norms), rtol=1e-12)


def test_square_loss_matches_closed_form(key):
    out = jax.random.normal(key, (6, 4))
    y = jnp.array([0, 1, 2, 3, 0, 1])
    expected = 0.5 * np.mean(np.sum((np.asarray(out) - np.eye(4)[np.asarray(y)]) ** 2, axis=1))
    np.testing.assert_allclose(losses.square_loss(out, y), expected, rtol=1e-12)


def test_zero_output_examples_are_excluded_not_averaged(key):
    """A relu Theorem-1 net can output exactly 0 on an example: its relative distance is undefined (NaN)."""
    net = nets.theorem1_mlp((3, 4, 2), "relu")
    params = [{"w": jnp.eye(4, 3)}, {"w": jnp.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])}]
    x = jnp.array([[1.0, 2.0, 0.0], [-1.0, -2.0, 5.0], [3.0, 1.0, 1.0]])  # example 2 gives output 0
    y = jnp.array([0, 1, 1])
    u = perturb.scaled(params, 1.0)
    d = measure.relative_distances(net.apply, params, x, y, u, [0.0, 0.5], loss="mse")
    assert d.n_zero_output == 1
    assert np.isnan(d.function_per_example[1, 1])
    np.testing.assert_allclose(d.function_max[1], 1.5**2 - 1, rtol=1e-12)  # the exact case on the rest


def _dead_hidden_layer(case):  # a dead last hidden layer cuts every earlier gradient
    case["params"][1] = {"w": jnp.zeros_like(case["params"][1]["w"]), "b": -jnp.ones_like(case["params"][1]["b"])}


def _zero_last_layer(case):
    case["params"][-1] = jax.tree_util.tree_map(jnp.zeros_like, case["params"][-1])


# each bad input as an edit of a valid call (net 9 → 8 → 8 → 5, 40 examples), with the message it must raise
def _zero_first_layer_moved(case):
    """Layer 1's weights all zero while the direction still moves them (a user's own direction)."""
    params = [dict(layer) for layer in case["params"]]
    params[0]["w"] = jnp.zeros_like(params[0]["w"])
    case.update(params=params)


BAD_INPUTS = {
    "nan_input": (lambda c: c.update(x=c["x"].at[0, 0].set(jnp.nan)), "input batch has NaN"),
    "nan_param": (
        lambda c: c.update(params=jax.tree_util.tree_map(lambda w: w.at[0].set(jnp.inf), c["params"])),
        "parameters has NaN",
    ),
    "nan_direction": (
        lambda c: c.update(u=jax.tree_util.tree_map(lambda w: w.at[0].set(jnp.nan), c["u"])),
        "perturbation direction has NaN",
    ),
    "shape": (lambda c: c.update(x=c["x"][:, :5]), "do not fit the network"),
    "x_not_a_batch": (lambda c: c.update(x=c["x"][0]), "expected inputs"),
    "y_not_a_vector": (lambda c: c.update(y=c["y"][:, None]), "expected inputs"),
    "x_y_lengths": (lambda c: c.update(y=c["y"][:-1]), "expected inputs"),
    "label_too_big": (lambda c: c.update(y=c["y"].at[0].set(5)), r"labels must lie in \[0, 5\), got \[0, 5\]"),
    "label_negative": (lambda c: c.update(y=c["y"].at[0].set(-1)), r"labels must lie in \[0, 5\), got \[-1, 4\]"),
    "zero_grad": (_dead_hidden_layer, r"gradient is zero \(or NaN\) in tensor 1\.b;"),  # the first: 1.b, then 1.w
    "nan_loss": (lambda c: c.update(loss=lambda out, y: jnp.nan * jnp.sum(out)), "loss at the base point is NaN"),
    "zero_output": (_zero_last_layer, "output is zero on every example"),
    "direction_shape": (lambda c: c.update(u=c["u"][:-1]), "shape of the parameters"),
    "nan_grid": (lambda c: c.update(etas=[0.0, np.nan]), "η grid"),
    "empty_grid": (lambda c: c.update(etas=[]), "η grid"),
    "grid_2d": (lambda c: c.update(etas=[[0.0, 0.1]]), "η grid"),
    "loss": (lambda c: c.update(loss="hinge"), "unknown loss"),
    "zero_layer_moved": (_zero_first_layer_moved, "layer 1.w has zero norm but the direction moves it"),
}


@pytest.mark.parametrize("problem", BAD_INPUTS)
def test_bad_input_is_a_clear_error(key, problem):
    net = nets.experiment_mlp(9, 8, 3, 5)
    params, _, x, y = _setup(key, net)
    assert int(y.min()) == 0
    assert int(y.max()) == 4  # the messages' label ranges below
    case = dict(params=params, x=x, y=y, u=perturb.gaussian(key, params), etas=ETAS, loss="xent")
    edit, match = BAD_INPUTS[problem]
    edit(case)
    with pytest.raises(TrustError, match=match):
        measure.relative_distances(
            net.apply, case["params"], case["x"], case["y"], case["u"], case["etas"], loss=case["loss"]
        )


def test_grid_strategy_is_the_measured_choice_per_backend():
    # benchmarks/RESULTS.md: 2 η points at once on a CPU; 64 elsewhere; never more than the grid
    assert [measure.grid_strategy(n, backend="cpu").batch_size for n in (1, 2, 3, 100)] == [1, 2, 2, 2]
    assert [measure.grid_strategy(n, backend="gpu").batch_size for n in (1, 63, 64, 65, 1000)] == [1, 63, 64, 64, 64]
    assert measure.grid_strategy(0, backend="cpu").batch_size == 1
    # the first layer is shared for MLPs (linear first pre-activation), not for other callables or ResNets
    mlp = nets.experiment_mlp(4, 8, 3, 2)
    assert measure.grid_strategy(10, mlp.apply).share_first_layer
    assert not measure.grid_strategy(10, lambda p, x: mlp.apply(p, x)).share_first_layer
    assert not measure.grid_strategy(10, nets.resnet((8, 8, 1), 3).apply).share_first_layer


SHARED_NETS = [
    nets.experiment_mlp(6, 9, 4, 5),
    nets.experiment_mlp(6, 9, 1, 5),
    nets.theorem1_mlp((6, 9, 9, 5), "leaky_relu"),
    nets.experiment_mlp(6, 9, 5, 5, "tanh", residual=True),
    nets.experiment_mlp(6, 6, 4, 5, "tanh", residual=True, residual_first=True),
]


@pytest.mark.parametrize(
    "net", SHARED_NETS, ids=["relu-bias", "one-layer", "theorem1", "tanh-residual", "tanh-residual-first"]
)
def test_shared_first_layer_equals_the_plain_grid(net):
    # Sharing x·W_1ᵀ and x·U_1ᵀ across the grid is exact algebra (z_1 is linear in W_1); in float64 (conftest) the two
    # programs differ by rounding only: relative gap ~ n·ε ≈ 1e-14 on these sizes (1e-12 leaves room for
    # the conditioning of a difference of gradients); η = 0 stays exactly zero in both.
    x = jax.random.normal(jax.random.key(0), (30, 6))
    y = jnp.arange(30) % 5
    params = net.init(jax.random.key(1))
    u = perturb.along_gradient(params, measure.full_batch_gradient(net.apply, params, x, y))
    etas = jnp.linspace(0.0, 0.3, 7)
    plain, shared = (
        measure._grid(net.apply, losses.cross_entropy, measure.Strategy(2, share), params, u, x, y, etas)
        for share in (False, True)
    )
    for a, b in zip(jax.tree_util.tree_leaves(plain), jax.tree_util.tree_leaves(shared)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
    assert np.all(shared[1]["gradient_change"][0] == 0)
    assert np.all(shared[1]["function_change"][0] == 0)


@pytest.mark.parametrize("net", NETS[:2], ids=["relu-bias", "tanh-residual"])
def test_full_batch_gradient_matches_numpy_backprop(key, net):
    params, _, x, y = _setup(key, net)
    got = measure.full_batch_gradient(net.apply, params, x, y)
    ws, bs = [np.asarray(p["w"]) for p in params], [np.asarray(p["b"]) for p in params]
    opts = dict(act=net.activation, slope=net.slope, final_activation=net.final_activation, residual=net.residual,
                residual_first=net.residual_first)  # fmt: skip
    _, _, gw, gb = ref.xent_and_grad(ws, bs, np.asarray(x), np.asarray(y), **opts)
    # float64 backprop both ways on depth ≤ 5 nets with O(1) weights: the same sums in another order, ~1e-14.
    for layer, expected_w, expected_b in zip(got, gw, gb):
        np.testing.assert_allclose(layer["w"], expected_w, rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(layer["b"], expected_b, rtol=1e-9, atol=1e-13)


def test_full_batch_gradient_of_the_square_loss_matches_finite_differences(key):
    net = NETS[3]  # identity activations: the loss is a polynomial in the weights
    params, _, x, y = _setup(key, net, n=20)
    got = measure.full_batch_gradient(net.apply, params, x, y, "mse")
    loss = lambda p: float(losses.square_loss(net.apply(p, x), y))  # noqa: E731
    h = 1e-5  # central differences in float64: truncation O(h²)·|∂³ℒ| ≈ 1e-10, rounding ≈ 1e-16/h ≈ 1e-11
    for layer in range(len(params)):
        for index in [(0, 0), (1, 2)]:
            up = [dict(p) for p in params]
            down = [dict(p) for p in params]
            up[layer]["w"] = params[layer]["w"].at[index].add(h)
            down[layer]["w"] = params[layer]["w"].at[index].add(-h)
            expected = (loss(up) - loss(down)) / (2 * h)
            assert float(got[layer]["w"][index]) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_norms_of_tiny_and_huge_float32_tensors_neither_underflow_nor_overflow():
    """A memorised net's float32 gradient entries lie below 1e-19, whose squares underflow to 0: the traced norms
    scale by the largest entry first, as the NumPy ones do, and agree with them to float32 rounding."""
    rng = np.random.default_rng(0)
    for scale in (1e-30, 1e-20, 1.0, 1e20, 1e30):
        t = {"w": jnp.asarray(rng.normal(size=(7, 5)) * scale, jnp.float32), "b": jnp.zeros(3, jnp.float32)}
        traced = np.asarray(jax.jit(tree.frobenius_norms)(t), dtype=float)
        assert traced[0] == 0.0 and traced[1] > 0  # leaves in key order: b, w
        assert traced[1] == pytest.approx(tree.leaf_norms(t)[1], rel=1e-6)  # float32: a few ulps
    assert np.isnan(np.asarray(tree.frobenius_norms({"w": jnp.array([1.0, np.nan])}))[0])
