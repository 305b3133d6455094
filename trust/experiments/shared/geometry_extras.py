"""What a geometry cell measures beyond its 12 families (docs/theory.md §10–§12): on its MLPs and its ResNets
without normalisation the modular family (every raw direction as a step of modular norm η, its output change
against the nominal and the exact bound); on its MLPs each layer as a module (its input sensitivity by power
iteration, its output change per unit modular step) and the change of every layer's features after one step and
after training; and, on chosen cells, the per-layer curvature of the loss."""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import partial, reduce

import jax
import jax.numpy as jnp
import numpy as np

from trust.base import linalg
from trust.base.errors import TrustError
from trust.base.spec import weight_indices
from trust.core import curvature, features, modular, nets

SENSITIVITY_TOL = 1e-2  # power iteration on the input Jacobian: relative residual of the singular pair (σ to 1 %)
SENSITIVITY_MAX_ITER = 20_000
CURVATURE_TOL = 1e-3  # Lanczos on each Hessian block: relative tolerance of the Ritz value
TRACE_TOL, TRACE_PROBES = 0.05, 512  # Hutchinson: standard error at most 5 % of the trace, or 512 probes
DENSITY_ORDER, DENSITY_PROBES = 30, 4  # stochastic Lanczos quadrature: resolution and probes


def rms(a) -> float:
    """``‖A‖_F/√(entries)``: the root mean square entry."""
    a = np.asarray(a, dtype=float)
    return float(np.linalg.norm(a) / np.sqrt(a.size))


# the bonds' Lipschitz constants with φ(0) = 0 (docs/theory.md §10.1); a smooth relu (gelu, softplus) is refused
LIPSCHITZ = {"relu": lambda slope: 1.0, "leaky_relu": lambda slope: max(1.0, abs(slope)), "tanh": lambda slope: 1.0,
             "identity": lambda slope: 1.0}  # fmt: skip


def module_of(net: nets.MLP | nets.ResNet, hidden_mass: float | None = None) -> modular.Module:
    """The net as a module (docs/theory.md §10.1, §10.5): unit masses (the paper's default), or with
    ``hidden_mass`` an MLP's hidden layers tared together to it; trust's residual hidden layers ``h + φ(Wh)`` by
    the sum rule; a ResNet without normalisation as :func:`trust.core.modular.resnet`. Refused, by name, for an
    MLP with a residual first layer or an activated last layer, a normalised ResNet, a smooth activation and a
    hidden mass on a ResNet."""
    if net.activation not in LIPSCHITZ:
        raise TrustError(f"the modular norm needs a Lipschitz activation with φ(0) = 0 ({', '.join(LIPSCHITZ)}); "
                         f"this net has {net.activation}")  # fmt: skip
    phi = modular.bond(LIPSCHITZ[net.activation](net.slope))
    if isinstance(net, nets.ResNet):
        if hidden_mass is not None:
            raise TrustError("a hidden mass is an MLP's allocation (docs/theory.md §10.1); a ResNet's atoms weigh 1")
        if net.norm != "none":
            raise TrustError(f"the modular norm is not measured on a ResNet with {net.norm} normalisation: its input "
                             "sensitivity is unbounded (it divides by its input's spread)")  # fmt: skip
        return modular.resnet(net.image[2], net.plan(), net.n_classes, phi=phi)
    if net.residual_first or net.final_activation:
        raise TrustError("the modular norm is measured on MLPs with a plain first layer and a linear last layer")
    return modular.mlp(net.widths, residual_hidden=net.residual, biases=net.bias, phi=phi, hidden_mass=hidden_mass)


def atom_paths(net: nets.MLP | nets.ResNet) -> list[tuple]:
    """Where each atom of :func:`module_of` sits in the net's parameters, in atom order (input first)."""
    if isinstance(net, nets.ResNet):
        plan = net.plan()
        paths: list[tuple] = [(0, "w")]
        for i, (_, _, _, projected) in enumerate(plan, start=1):
            paths += [(i, "conv1", "w"), (i, "conv2", "w")] + ([(i, "proj", "w")] if projected else [])
        return paths + [(len(plan) + 1, "w"), (len(plan) + 1, "b")]
    return [(l, k) for l in range(net.depth) for k in (("w", "b") if net.bias else ("w",))]


def atom_tensors(net, tree) -> list:
    """The tensors of ``tree`` (parameters or a direction) at :func:`atom_paths`, in atom order."""
    return [reduce(operator.getitem, path, tree) for path in atom_paths(net)]


def _moved(net, params, unit: list[np.ndarray], eta: float):
    """``params`` with every atom moved by ``eta·unit``."""
    out = jax.tree_util.tree_map(lambda a: a, params)  # fresh containers, the same arrays
    for path, u in zip(atom_paths(net), unit):
        parent = reduce(operator.getitem, path[:-1], out)
        parent[path[-1]] = parent[path[-1]] + eta * jnp.asarray(u, parent[path[-1]].dtype)
    return out


def modular_family(net, module: modular.Module, params, raw, x, eta: np.ndarray) -> np.ndarray:
    """The output change ``‖F(W + ηU) − F(W)‖_RMS/‖X‖_RMS`` along ``raw`` made a step of norm 1 in ``module``'s
    modular norm (``U_l = s_l·R_l/‖R_l‖_*``, each atom at its share; ``module`` is :func:`module_of` the net), per η
    (§10.3)."""
    unit = [
        s * np.asarray(r, dtype=float) / modular.atom_norm(r, a)
        for r, a, s in zip(atom_tensors(net, raw), module.atoms, module.shares)
    ]
    x = jnp.asarray(x)
    f0, x_rms = _apply(net, params, x), rms(x)
    return np.array([rms(_apply(net, _moved(net, params, unit, float(e)), x) - f0) / x_rms for e in eta])


@partial(jax.jit, static_argnums=0)
def _apply(net, params, x):
    """The net's forward pass, compiled once per net and shape (a net is a hashable, shared description)."""
    return net.apply(params, x)


def atom_norms(net, module: modular.Module, params) -> np.ndarray:
    """Every atom's ``‖W_l‖_*`` (§10.1), in atom order: the same under any mass allocation of the net."""
    return np.array([modular.atom_norm(w, a) for w, a in zip(atom_tensors(net, params), module.atoms)])


def modular_bounds(module: modular.Module, atom: np.ndarray, x, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(nominal, exact)`` per η for a step of modular norm η on the batch ``x``, in units of ``‖X‖_RMS``: the
    nominal bound of well-normed atoms (every ``‖W_l‖_* = 1``; ``∏(1 + η s_l) − 1`` for a plain MLP) and the exact
    bound with the measured ``atom`` norms (:func:`atom_norms`; a theorem: :func:`trust.core.modular.change_bound`,
    ``∏(‖W_l‖_* + η s_l) − ∏‖W_l‖_*`` for a plain MLP) (§10.3); ``module`` is :func:`module_of` the net, its shares
    those of its mass allocation."""
    x_rms = rms(x)

    def bound(norms, e):
        d, offset = modular.change_bound(module, norms, e * np.asarray(module.shares))
        return d + offset / x_rms

    eta = np.asarray(eta, dtype=float)
    return np.array([bound(np.ones_like(atom), e) for e in eta]), np.array([bound(atom, e) for e in eta])


def layer_maps(net: nets.MLP, params: list[dict]) -> list[Callable]:
    """Every layer as a module ``(W_l, H_{l−1}) ↦ H_l`` on a batch, as trust's MLP computes it
    (:meth:`trust.core.nets.MLP.layer_output`)."""

    def layer(l):
        def f(w, h):
            z = h @ w.T + (params[l]["b"][None, :] if "b" in params[l] else 0.0)
            return net.layer_output(l, z, h)

        return f

    return [layer(l) for l in range(len(params))]


def input_sensitivity(f: Callable, h, tol: float = SENSITIVITY_TOL, seed: int = 0) -> float:
    """``max_x ‖J_x Δ‖_RMS/‖Δ‖_RMS`` over the batch: the top singular value of the batch's (block-diagonal) input
    Jacobian in RMS units, by power iteration on ``JᵀJ`` stopped when the singular pair's residual
    ``‖Jᵀu − σv‖`` is at most ``tol·σ`` (so σ lies within ``tol·σ`` of a singular value; docs/theory.md §8.6)."""
    h = jnp.asarray(h)
    out, jvp = jax.linearize(f, h)
    vjp = jax.linear_transpose(jvp, h)
    v = jax.random.normal(jax.random.key(seed), h.shape, h.dtype)
    v = v / jnp.linalg.norm(v)
    for _ in range(SENSITIVITY_MAX_ITER):
        u = jvp(v)
        sigma = float(jnp.linalg.norm(u))
        if sigma == 0:
            return 0.0
        u = u / sigma
        back = vjp(u)[0]
        if float(jnp.linalg.norm(back - sigma * v)) <= tol * sigma:
            per_example_in, per_example_out = h.shape[-1], out.shape[-1]
            return sigma * float(np.sqrt(per_example_in / per_example_out))
        v = back / jnp.linalg.norm(back)
    raise TrustError(f"the input sensitivity (power iteration) did not reach relative residual {tol}")


def sensitivities(net: nets.MLP, params: list[dict], grads: list[dict], x) -> tuple[np.ndarray, np.ndarray]:
    """Per layer as a module (§10.1): the input sensitivity (nominal 1, 2 for trust's residual block) and the output
    change per unit modular step along the modular optimiser's direction ``√(d_l/d_{l−1})·polar(G_l)``, to first
    order, ``‖J_W Δ_l‖_RMS/‖H_{l−1}‖_RMS`` (well-normed: at most 1)."""
    hs = net.layer_inputs(params, jnp.asarray(x))
    input_s, weight_s = [], []
    for l, (f, p, g) in enumerate(zip(layer_maps(net, params), params, grads)):
        h = hs[l]
        input_s.append(input_sensitivity(lambda a, f=f, w=p["w"]: f(w, a), h, seed=l))
        fan_out, fan_in = np.shape(p["w"])
        direction = np.sqrt(fan_out / fan_in) * linalg.polar(np.asarray(g["w"]))
        change = jax.jvp(lambda w, f=f, h=h: f(w, h), (p["w"],), (jnp.asarray(direction, p["w"].dtype),))[1]
        weight_s.append(rms(change) / rms(h))
    return np.array(input_s), np.array(weight_s)


def feature_learning(net: nets.MLP, initial: list[dict], one_step: list[dict], end: list[dict], x) -> np.ndarray:
    """``(2, 3, l)``: after one step and after training, each layer's relative feature change, alignment and
    spectral step size (:func:`trust.core.features.feature_change`, docs/theory.md §12)."""
    return np.array([np.stack(features.feature_change(net, initial, p, x)) for p in (one_step, end)])


def layer_curvature(net, params: list[dict], x, y, seed: int = 0) -> dict[str, np.ndarray]:
    """Per weight layer the top |eigenvalue| of its Hessian block; the trace with its standard error; the spectral
    density's nodes and weights (docs/theory.md §11)."""
    block = np.array([curvature.block_sharpness(net.apply, params, x, y, i, tol=CURVATURE_TOL, seed=seed)
                      for i in weight_indices(params)])  # fmt: skip
    trace = curvature.hessian_trace(net.apply, params, x, y, tol=TRACE_TOL, max_probes=TRACE_PROBES, seed=seed)
    density = curvature.spectral_density(net.apply, params, x, y, DENSITY_ORDER, DENSITY_PROBES, seed=seed)
    return {"block": block, "trace": np.array([trace.value, trace.sem, trace.probes, trace.converged]),
            "nodes": density.nodes,
            "weights": density.weights}  # fmt: skip
