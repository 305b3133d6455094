"""One cell of ``trust geometry`` (docs/theory.md §8): train a relu MLP or a ResNet with one seed, then, at
initialisation and at the last step of training, on a fixed measurement batch, move every layer by a relative step
η in each of the three geometries (Frobenius, spectral, elementwise) along four raw directions — the negative
gradient, its polar factor, a Gaussian draw and the optimiser's own step from that point — and measure, for each
of the 12 families, the relative function change, every layer's relative gradient change, the step's size in all
three geometries, the operator-norm theorem's ratio (bias-free MLPs) and the stable ranks of weights and steps."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from trust.base import linalg, tree
from trust.base.errors import Diverged, TrustError
from trust.base.schema import Config, Result, param, value
from trust.base.spec import weight_indices
from trust.base.tree import leaf_norms, leaves
from trust.core import bounds, measure, nets, perturb, train
from trust.experiments.shared import geometry_extras as extras
from trust.experiments.shared import points
from trust.experiments.shared.runner import Experiment

RAW_DIRECTIONS = ("gradient", "orthogonalised", "random", "step")  # each stepped in every geometry
SPANS = ("one step", "training")  # feature learning: from initialisation to step 1, and to the end
FEATURES = ("relative change", "alignment", "spectral step")
GEOMETRIES = tuple(perturb.GEOMETRIES)  # frobenius, spectral, elementwise
DIVERGED = "training diverged (a non-finite loss): nothing was measured"
DEAD = "some layer's gradient (or the optimiser's step) is zero at this checkpoint: the family is undefined there"
OPERATOR_TOL = 1e-6  # relative tolerance of the operator norms (power iteration above 256; else an exact SVD)
ZERO_BOUND = "infinite at η = 0, where the bound and the measured change are both zero"
BIASED = "the operator-norm theorem is for bias-free MLPs (docs/theory.md §2.3); this net has biases or is a ResNet"
NOT_MODULAR = ("the modular norm is measured on MLPs and ResNets without normalisation (docs/theory.md §10.5): empty "
               "for a normalised ResNet")  # fmt: skip
NOT_TARED = ("the alternative allocation (the hidden layers tared together to config.hidden_mass) is measured on "
             "plain MLPs of depth ≥ 3 (docs/theory.md §10.1): empty elsewhere")  # fmt: skip
NOT_MLP = "feature learning is measured on MLPs (docs/theory.md §12): empty for ResNets"
NO_MODULES = "measured only on the cells chosen for it (config.modules; docs/theory.md §10): empty elsewhere"
NO_CURVATURE = "measured only on the cells chosen for it (config.curvature; docs/theory.md §11): empty elsewhere"

# A geometry cell's training by default: a bias-free width-128 MLP of depth 4, 2 epochs of Fromage on MNIST-5k
CELL_TRAINING = train.TrainConfig(
    depth=4, width=128, bias=False, channels=8, dataset="mnist5k", epochs=2, batch_size=250, checkpoints=()
)
# trust 0.3 stored the training flat beside the measurement, with these names and defaults (Config.upgrade)
FLAT_0_3 = dict(optimizer="fromage", lr=0.0, model="mlp", depth=4, width=128, bias=False, norm="none", channels=8,
                dataset="mnist5k", data_dir="", epochs=2, batch_size=250, lr_decay=0.9, seed=0)  # fmt: skip


@dataclass(frozen=True)
class GeometryCellConfig(Config):
    """One trained net and seed (``training``; its checkpoints are chosen by the cell: the first and last steps),
    and how its 12 families are measured."""

    training: train.TrainConfig = param(CELL_TRAINING, "the training run (an MLP, bias-free by default, or a ResNet)")
    eta: tuple[float, ...] = param(
        (0.01, 0.03, 0.1, 0.3), "the η grid (relative step in each geometry)", minimum=0, increasing=True
    )
    n_measure: int = param(500, "measurement batch: the first n training examples (0: all)", minimum=0)
    hidden_mass: float = param(
        0.0,
        "also the modular family with the hidden layers tared together to this mass (0: not; plain MLPs, L ≥ 3)",
        minimum=0,
    )
    modules: bool = param(False, "also every layer's input sensitivity and output change per unit modular step")
    curvature: bool = param(
        False, "also each layer's Hessian-block curvature, the Hessian's trace and its spectral density at both points"
    )

    def validate(self):
        if not self.eta or min(self.eta) <= 0:
            raise TrustError("eta must be a non-empty grid of positive steps")
        if self.training.checkpoints or self.training.checkpoint_steps:
            raise TrustError("a geometry cell chooses its own checkpoints (the first and last steps)")
        t = self.training
        if self.hidden_mass and not (self.modular and t.model == "mlp" and not t.residual and t.depth >= 3):
            raise TrustError("a hidden mass (the hidden layers tared together) is measured on plain MLPs of depth ≥ 3 "
                             "with a Lipschitz activation")  # fmt: skip
        if self.modules and not (self.modular and self.training.model == "mlp"):
            raise TrustError("modules (each layer as a module) are measured on MLPs with a plain first layer and a "
                             "Lipschitz activation")  # fmt: skip

    @classmethod
    def upgrade(cls, d: dict) -> dict:
        """trust 0.3's flat layout; its training gave a ResNet biases (its head's, its norms' shifts)."""
        return train.nest_flat_0_3(
            d, FLAT_0_3, checkpoints=(), bias=lambda flat: bool(flat["bias"]) or flat["model"] != "mlp"
        )

    @property
    def theorem_applies(self) -> bool:
        """Whether the operator-norm bound is a theorem here: a plain bias-free relu MLP (docs/theory.md §2.3)."""
        return self.training.model == "mlp" and not self.training.bias and not self.training.residual

    @property
    def modular(self) -> bool:
        """Whether the modular family is measured (docs/theory.md §10.5): MLPs with a plain first layer and ResNets
        without normalisation, with an activation of :data:`~trust.experiments.shared.geometry_extras.LIPSCHITZ`."""
        t = self.training
        plain = not t.residual_first if t.model == "mlp" else t.model.startswith("resnet") and t.norm == "none"
        return plain and t.activation in extras.LIPSCHITZ


@dataclass(frozen=True, eq=False)
class GeometryCellResult(Result):
    """A trained cell. Axes: checkpoint ``k`` (init, end), direction ``d`` (:data:`RAW_DIRECTIONS`), geometry ``g``
    (:data:`GEOMETRIES`), η ``e``, layer ``l``; ``s`` the three size measures (a, b, e) in geometry order."""

    config: GeometryCellConfig
    diverged_epoch: int = 0  # 0: trained to the end
    train_acc: float = value(DIVERGED, default=float("nan"))
    eta: np.ndarray = value(empty=True, axes=("eta",))  # (e,)
    function: np.ndarray = value(
        DEAD, empty=True, axes=("checkpoint", "direction", "geometry", "eta")
    )  # (k, d, g, e) ‖ΔF‖_F/‖F‖_F on the batch
    function_max: np.ndarray = value(
        DEAD, empty=True, axes=("checkpoint", "direction", "geometry", "eta")
    )  # (k, d, g, e) max over examples of ‖Δf(x)‖/‖f(x)‖
    operator_ratio: np.ndarray = value(
        f"{DEAD}; {BIASED}", empty=True, axes=("checkpoint", "direction", "geometry", "eta")
    )  # (k, d, g, e) max_x ‖Δf(x)‖/bound(x)
    operator_allowance: np.ndarray = value(
        f"{DEAD}; {BIASED}; {ZERO_BOUND}", empty=True, axes=("checkpoint", "direction", "geometry", "eta")
    )  # (k, d, g, e) rounding allowance
    gradient: np.ndarray = value(
        DEAD, bulk=True, empty=True, axes=("checkpoint", "direction", "geometry", "eta", "layer")
    )  # (k, d, g, e, l) ‖Δg_l‖/‖g_l‖
    sizes: np.ndarray = value(
        DEAD, bulk=True, empty=True, axes=("checkpoint", "direction", "geometry", "size", "layer")
    )  # (k, d, g, s, l) the direction's a, b, e (η = 1)
    step_rank: np.ndarray = value(
        DEAD, bulk=True, empty=True, axes=("checkpoint", "direction", "geometry", "layer")
    )  # (k, d, g, l) stable rank of ΔW_l
    weight_rank: np.ndarray = value(DIVERGED, empty=True, axes=("checkpoint", "layer"))  # (k, l) stable rank of W_l
    # docs/theory.md §10: every raw direction as a step of modular norm η; ‖ΔF‖_RMS/‖X‖_RMS
    modular_function: np.ndarray = value(f"{DEAD}; {NOT_MODULAR}", empty=True, axes=("checkpoint", "direction", "eta"))
    modular_nominal: np.ndarray = value(NOT_MODULAR, empty=True, axes=("eta",))  # ∏(1 + η s_l) − 1 on a plain MLP
    # the exact bound with the measured ‖W_l‖_* (a theorem; ∏(‖W_l‖_* + η s_l) − ∏‖W_l‖_* on a plain MLP)
    modular_exact: np.ndarray = value(NOT_MODULAR, empty=True, axes=("checkpoint", "eta"))
    atom_norm: np.ndarray = value(NOT_MODULAR, empty=True, axes=("checkpoint", "atom"))  # ‖W_l‖_*
    # the same with the hidden layers tared together to config.hidden_mass (the alternative allocation, §10.1)
    tared_function: np.ndarray = value(f"{DEAD}; {NOT_TARED}", empty=True, axes=("checkpoint", "direction", "eta"))
    tared_nominal: np.ndarray = value(NOT_TARED, empty=True, axes=("eta",))
    tared_exact: np.ndarray = value(NOT_TARED, empty=True, axes=("checkpoint", "eta"))
    # (config.modules) each layer as a module: its input sensitivity and its output change per unit modular step
    input_sensitivity: np.ndarray = value(f"{NOT_MODULAR}; {NO_MODULES}", empty=True, axes=("checkpoint", "layer"))
    weight_sensitivity: np.ndarray = value(
        f"{DEAD}; {NOT_MODULAR}; {NO_MODULES}", empty=True, axes=("checkpoint", "layer")
    )
    # docs/theory.md §12: after one step and after training, each layer's relative feature change, alignment and
    # spectral step size
    features: np.ndarray = value(NOT_MLP, empty=True, axes=("span", "feature", "layer"))
    # docs/theory.md §11 (config.curvature): each layer's Hessian-block top |eigenvalue|; the trace, its standard
    # error and probes; the spectral density's nodes and weights; λ_l·‖ΔW_l‖/‖g_l‖ along the paper's slice
    block_curvature: np.ndarray = value(NO_CURVATURE, empty=True, axes=("checkpoint", "layer"))
    trace: np.ndarray = value(NO_CURVATURE, empty=True, axes=("checkpoint", "trace"))
    density_nodes: np.ndarray = value(NO_CURVATURE, empty=True, axes=("checkpoint", "probe", "node"))
    density_weights: np.ndarray = value(NO_CURVATURE, empty=True, axes=("checkpoint", "probe", "node"))
    lipschitz_layer: np.ndarray = value(f"{DEAD}; {NO_CURVATURE}", empty=True, axes=("checkpoint", "eta", "layer"))

    @property
    def measured(self) -> bool:
        return self.function.size > 0

    def bound(self, size_geometry: int | None = None) -> np.ndarray:
        """``∏(1 + η·s_l) − 1`` over the layers, ``(k, d, g, e)``: each family's own bound (its own geometry's
        sizes), or every family's bound in the sizes of one geometry (``size_geometry``, an index)."""
        eta = self.eta[None, None, None, :, None]
        own = np.stack([self.sizes[:, :, g, g] for g in range(len(GEOMETRIES))], axis=2)  # (k, d, g, l)
        s = own if size_geometry is None else self.sizes[:, :, :, size_geometry]
        return bounds.drt_bound(eta * s[:, :, :, None, :])

    def coordinates(self) -> dict[str, list]:
        return {"checkpoint": ["init", "end"], "direction": list(RAW_DIRECTIONS), "geometry": list(GEOMETRIES),
                "size": list(GEOMETRIES), "eta": list(self.eta), "span": list(SPANS), "feature": list(FEATURES),
                "trace": ["value", "standard error", "probes", "converged"],
                "probe": list(range(extras.DENSITY_PROBES)), "node": list(range(extras.DENSITY_ORDER))}  # fmt: skip


def _directions(net, params, step, x, y, key) -> tuple[dict, dict | None]:
    """At a point, the full-batch gradient and the four raw directions (:data:`RAW_DIRECTIONS`), computed once for
    the 12 families and the extras; the directions are ``None`` where a layer's gradient or the step is zero."""
    grads = measure.full_batch_gradient(net.apply, params, x, y)
    if not (np.all(leaf_norms(grads) > 0) and np.all(leaf_norms(step) > 0)):
        return grads, None
    raws = {
        "gradient": jax.tree_util.tree_map(jnp.negative, grads),
        "orthogonalised": perturb.orthogonalised(grads),
        "random": perturb.gaussian(key, params),
        "step": step,
    }
    return grads, raws


def _extras(config: GeometryCellConfig, net, params, grads, raws, x, y, eta) -> dict[str, np.ndarray]:
    """At one point, what issue 29 adds (:mod:`~trust.experiments.shared.geometry_extras`): the modular family on
    MLPs and norm-free ResNets (:attr:`GeometryCellConfig.modular`), under the paper's unit masses and, with
    ``config.hidden_mass``, with the hidden layers tared (docs/theory.md §10.1), the layers as modules and the per-layer
    curvature on the cells chosen for them; empty elsewhere, NaN where a gradient or the step is zero (``raws`` is
    ``None``)."""
    out: dict[str, np.ndarray] = {}
    dead = raws is None
    layers = len(weight_indices(params))
    # the paper's unit masses, and the hidden layers tared (validate: only on a modular net)
    allocations: dict[str, float | None] = {"modular": None} if config.modular else {}
    if config.hidden_mass:
        allocations["tared"] = config.hidden_mass
    modules = {prefix: extras.module_of(net, hidden_mass) for prefix, hidden_mass in allocations.items()}
    if modules:  # the atoms' norms do not depend on the allocation: once per point
        out["atom_norm"] = extras.atom_norms(net, modules["modular"], params)
    for prefix, module in modules.items():
        out[f"{prefix}_nominal"], out[f"{prefix}_exact"] = extras.modular_bounds(module, out["atom_norm"], x, eta)
        out[f"{prefix}_function"] = np.array([
            np.full(eta.size, np.nan) if dead else extras.modular_family(net, module, params, raws[d], x, eta)
            for d in RAW_DIRECTIONS
        ])  # fmt: skip
    if config.modular and config.modules:
        input_s, weight_s = extras.sensitivities(net, params, grads, x)
        out |= {"input_sensitivity": input_s, "weight_sensitivity": weight_s if not dead else np.full(layers, np.nan)}
    if config.curvature:
        c = extras.layer_curvature(net, params, x, y, seed=config.training.seed)
        weights, norms = np.asarray(leaf_norms(params)), np.asarray(leaf_norms(grads))
        index = weight_indices(params)
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero gradient: NaN, the family is dead there
            lipschitz = c["block"][None, :] * eta[:, None] * weights[index][None, :] / norms[index][None, :]
        out |= {"block_curvature": c["block"], "trace": c["trace"], "density_nodes": c["nodes"],
                "density_weights": c["weights"], "lipschitz_layer": np.where(dead, np.nan, lipschitz)}  # fmt: skip
    return out


def _measure(net, params, raws: dict | None, x, y, eta) -> dict[str, np.ndarray] | None:
    """The 12 families at one point along its raw directions (:func:`_directions`); ``None`` where they are
    undefined (a layer's gradient or the step is zero)."""
    if raws is None:
        return None
    layers = weight_indices(params)
    op_params = linalg.operator_norms(params, OPERATOR_TOL)  # once per point: every spectral size divides by them
    w_op = op_params[layers]
    w_srank = linalg.stable_ranks(params, operator=op_params)[layers]
    fan_in = [int(np.shape(leaves(params)[i])[-1]) for i in layers]  # MLP weights are (fan_out, fan_in)
    dtype = np.asarray(leaves(params)[0]).dtype
    x_norm = np.linalg.norm(np.asarray(x, dtype=float), axis=-1)
    names = ("function", "function_max", "operator_ratio", "operator_allowance", "gradient", "sizes", "rank")
    out: dict[str, list] = {k: [] for k in names}
    for d in RAW_DIRECTIONS:
        for name in out:
            out[name].append([])
        for geometry in GEOMETRIES:
            u = perturb.GEOMETRIES[geometry].step(params, raws[d])
            dist = measure.relative_distances(net.apply, params, x, y, u, eta)
            op_u = linalg.operator_norms(u, OPERATOR_TOL)  # the spectral size and the stable rank share it
            sizes = np.stack(
                [tree.relative_size(u, params), tree.size_ratio(op_u, op_params), perturb.elementwise_size(u, params)]
            )[:, layers]  # in GEOMETRIES order: perturb.GEOMETRIES' sizes, with the operator norms computed once
            absolute = bounds.operator_norm_bound(w_op, np.outer(eta, sizes[1] * w_op))[:, None] * x_norm[None, :]
            values = {
                "function": dist.function_frob,
                "function_max": dist.function_max,
                "operator_ratio": np.max(dist.function_change / absolute, axis=1),
                "operator_allowance": bounds.operator_rounding_allowance(
                    fan_in, w_srank, np.outer(eta, sizes[0]), np.outer(eta, sizes[1]), dtype, OPERATOR_TOL
                ),
                "gradient": dist.gradient[:, layers],
                "sizes": sizes,
                "rank": linalg.stable_ranks(u, operator=op_u)[layers],
            }
            for name, v in values.items():
                out[name][-1].append(v)
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def run(config: GeometryCellConfig) -> GeometryCellResult:
    """Train the cell, then measure the 12 families at initialisation and at the last step."""
    ds = train.load_data(config.training)
    last = config.training.epochs * (ds.x_train.shape[0] // config.training.batch_size)
    pairs = ((0, 1), (last - 1, last))  # (the point measured at, the step after it)
    kept = replace(config.training, checkpoint_steps=tuple(sorted({s for p in pairs for s in p})))
    try:
        trained = train.train(kept, ds, progress=False)
    except Diverged as err:
        return GeometryCellResult(config=config, diverged_epoch=err.epoch)
    x, y = points.measurement_batch(ds, config.n_measure)
    eta = np.asarray(config.eta, dtype=float)
    per_point: list[dict[str, np.ndarray] | None] = []
    ranks, added = [], []
    for k, (s, s_next) in enumerate(pairs):
        params = trained.checkpoints[s]
        step = jax.tree_util.tree_map(jnp.subtract, trained.checkpoints[s_next], params)
        key = jax.random.fold_in(jax.random.key(config.training.seed), k)
        grads, raws = _directions(trained.net, params, step, x, y, key)
        per_point.append(_measure(trained.net, params, raws, x, y, eta))
        ranks.append(linalg.stable_ranks(params)[weight_indices(params)])
        added.append(_extras(config, trained.net, params, grads, raws, x, y, eta))
    once = ("modular_nominal", "tared_nominal")  # the nominal bounds do not depend on the point
    more: dict[str, Any] = {n: np.stack([a[n] for a in added]) if n not in once else added[0][n] for n in added[0]}
    if isinstance(trained.net, nets.MLP):
        ckpt = trained.checkpoints
        more["features"] = extras.feature_learning(trained.net, ckpt[0], ckpt[1], ckpt[last], x)
    layers, families = len(weight_indices(trained.params)), (len(RAW_DIRECTIONS), len(GEOMETRIES))
    shapes = {
        "function": families + (eta.size,),
        "function_max": families + (eta.size,),
        "operator_ratio": families + (eta.size,),
        "operator_allowance": families + (eta.size,),
        "gradient": families + (eta.size, layers),
        "sizes": families + (len(GEOMETRIES), layers),
        "rank": families + (layers,),
    }

    def stack(name):
        return np.stack([p[name] if p is not None else np.full(shapes[name], np.nan) for p in per_point])

    operator_ratio, operator_allowance = stack("operator_ratio"), stack("operator_allowance")
    if not config.theorem_applies:
        operator_ratio = operator_allowance = np.full_like(operator_ratio, np.nan)
    return GeometryCellResult(
        config=config,
        train_acc=float(trained.curves.train_acc[-1]),
        eta=eta,
        function=stack("function"),
        function_max=stack("function_max"),
        operator_ratio=operator_ratio,
        operator_allowance=operator_allowance,
        gradient=stack("gradient"),
        sizes=stack("sizes"),
        step_rank=stack("rank"),
        weight_rank=np.asarray(ranks, dtype=float),
        **more,
    )


EXPERIMENT = Experiment(
    GeometryCellConfig, GeometryCellResult, run, help="one geometry cell: train, then 12 families at init and end"
)
