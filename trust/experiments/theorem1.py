"""Theorem 1 checked on networks that meet its conditions (docs/theory.md §2.2): square leaky-relu MLPs without
biases, φ at every layer, random W and ΔW, with α, β, κ measured on each case.

A *case* is one random net (width n, depth L, slope s), one random perturbation ΔW with relative sizes
``a_l = ‖ΔW_l‖_F/‖W_l‖_F`` and a batch of random inputs x. For every input the measured relative function
distance ``‖f_{W+ΔW}(x) − f_W(x)‖/‖f_W(x)‖`` is compared with three forms of the bound, tightest first:

- ``recursion``: the induction step iterated with the measured pieces,
  ``r_l = (β/α_l(x))·κ(W_l)·[r_{l−1} + (‖ΔW_l‖_op/‖W_l‖_op)(1 + r_{l−1})]``, r_0 = 0;
- ``per_layer``: ``∏_l c_l · [∏(1 + a_k) − 1]`` with ``c_l = κ(W_l)κ(ΔW_l)β/α_l(x)``;
- ``global``: ``(κ²β/α)^L · [∏(1 + a_k) − 1]`` with κ the largest condition number of any W_l or ΔW_l
  and α the smallest transmission on that case.

α_l(x) = ‖φ(z_l)‖/‖z_l‖ on layer l's own (unperturbed) pre-activation; β = 1 is leaky relu's Lipschitz
constant (s ≤ 1). All three are theorems: zero violations are required. The DRT assumption (constant 1,
``∏(1 + a_k) − 1``) is measured on the same cases, as the contrast.

The arithmetic is plain NumPy in float64: the matrices are tiny and of many shapes, where per-shape XLA
compilation would cost more than the computation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from trust.base.errors import TrustError
from trust.base.schema import Config, Result, Verdict, param, value
from trust.core import bounds, estimate
from trust.experiments.shared import rules
from trust.experiments.shared.runner import Experiment

BOUNDS = ("recursion", "per_layer", "global")
# Relative slack for "measured ≤ bound": float64 forward passes of ≤ 10 tiny layers lose far less than
# 1e-12 relative; the bounds exceed the measurement by orders of magnitude except at L = 1.
RTOL = 1e-9


@dataclass(frozen=True)
class Theorem1Config(Config):
    """Everything that determines a Theorem-1 check (recorded in its ``config.json``)."""

    n_cases: int = param(1000, "random nets (each with its own ΔW)", minimum=1)
    min_width: int = param(2, "smallest width n (square n×n layers)", minimum=2)
    max_width: int = param(11, "largest width", minimum=2)
    min_depth: int = param(1, "smallest depth L", minimum=1)
    max_depth: int = param(7, "largest depth", minimum=1)
    slopes: tuple[float, ...] = param((0.01, 0.1, 0.3, 0.5), "leaky relu slopes s in (0, 1] (α ≥ s > 0, β = 1)")
    max_relative_size: float = param(
        1.0, "a_l ~ U(0, 1)·A with A log-uniform in [1e-3, this]", minimum=1e-3, maximum=10
    )
    n_inputs: int = param(8, "random inputs per net", minimum=1)
    seed: int = param(0, "random seed")

    def validate(self):
        if self.min_width > self.max_width or self.min_depth > self.max_depth:
            raise TrustError("need min_width ≤ max_width and min_depth ≤ max_depth")
        if any(not 0 < s <= 1 for s in self.slopes):
            raise TrustError(f"leaky relu slopes must lie in (0, 1] (α > 0, β = 1), got {self.slopes}")


def leaky_relu(z, s):
    return np.where(z >= 0, z, s * z)


def forward(ws, x, s) -> tuple[np.ndarray, list[np.ndarray]]:
    """``f(x) = φ(W_L … φ(W_1 x))`` for a batch ``x`` (n_inputs, n); returns the output and every z_l."""
    h, zs = x, []
    for w in ws:
        z = h @ w.T
        zs.append(z)
        h = leaky_relu(z, s)
    return h, zs


def draw_case(rng: np.random.Generator, config: Theorem1Config) -> dict:
    """One random square net, perturbation and input batch."""
    n = int(rng.integers(config.min_width, config.max_width + 1))
    depth = int(rng.integers(config.min_depth, config.max_depth + 1))
    s = float(rng.choice(config.slopes))
    ws = [rng.standard_normal((n, n)) / np.sqrt(n) for _ in range(depth)]
    scale = np.exp(rng.uniform(np.log(1e-3), np.log(config.max_relative_size)))
    a = scale * rng.uniform(0.0, 1.0, depth)
    dws = []
    for w, a_l in zip(ws, a):
        u = rng.standard_normal((n, n))
        dws.append(a_l * np.linalg.norm(w) * u / np.linalg.norm(u))
    return {"ws": ws, "dws": dws, "x": rng.standard_normal((config.n_inputs, n)), "slope": s, "a": a}


def recursion_bound(alpha, kappa_w, op_ratio, beta: float = 1.0) -> np.ndarray:
    """The induction step of Theorem 1 iterated from r_0 = 0 (docs/theory.md §2.2):
    ``r_l = (β/α_l)·κ(W_l)·[r_{l−1} + (‖ΔW_l‖_op/‖W_l‖_op)(1 + r_{l−1})]``; ``alpha`` is (inputs, L)."""
    alpha = np.asarray(alpha, dtype=float)
    r = np.zeros(alpha.shape[0])
    for l in range(alpha.shape[1]):
        r = beta / alpha[:, l] * kappa_w[l] * (r + op_ratio[l] * (1 + r))
    return r


def check_case(case: dict) -> dict:
    """Measured relative function distance per input, and the three bounds and DRT for it."""
    ws, dws, x, s, a = case["ws"], case["dws"], case["x"], case["slope"], case["a"]
    beta = 1.0  # Lipschitz constant of leaky relu with 0 < s ≤ 1
    f, zs = forward(ws, x, s)
    f_new, _ = forward([w + d for w, d in zip(ws, dws)], x, s)
    f_norm = np.linalg.norm(f, axis=-1)
    if not np.all(f_norm > 0):
        raise TrustError("a sampled network maps an input to 0 (measure zero): redraw with another seed")
    measured = np.linalg.norm(f_new - f, axis=-1) / f_norm
    alpha = np.stack([np.linalg.norm(leaky_relu(z, s), axis=-1) / np.linalg.norm(z, axis=-1) for z in zs], -1)
    k_w = np.array([estimate.conditioning(w) for w in ws])
    k_dw = np.array([estimate.conditioning(d) for d in dws])
    op_ratio = np.array([np.linalg.norm(d, 2) / np.linalg.norm(w, 2) for w, d in zip(ws, dws)])
    r = recursion_bound(alpha, k_w, op_ratio, beta)
    drt = float(bounds.drt_bound(a))
    c = k_w * k_dw * beta / alpha  # (n_inputs, L)
    kappa = max(k_w.max(), k_dw.max())
    return {
        "measured": measured,
        "alpha": alpha,
        "kappa_w": k_w,
        "op_ratio": op_ratio,
        "recursion": r,
        "per_layer": bounds.theorem1_bound_per_layer(np.broadcast_to(a, c.shape), c),
        "global": np.full_like(measured, bounds.theorem1_bound(a, alpha.min(), beta, kappa)),
        "drt": np.full_like(measured, drt),
        "alpha_min": float(alpha.min()),
        "kappa": float(kappa),
    }


@dataclass(frozen=True)
class Quantiles:
    min: float
    q05: float
    median: float
    q95: float
    max: float


@dataclass(frozen=True)
class BoundCheck:
    """How one bound fared over every input: violations (inputs and nets) and measured/bound quantiles."""

    kind: str  # "theorem" or "assumption (constant 1)"
    violations: int
    violated_cases: int
    ratio_quantiles: Quantiles


@dataclass(frozen=True)
class WorstCase:
    """A drawn case: its depth, width and largest relative size a_l."""

    depth: int
    width: int
    max_a: float


@dataclass(frozen=True, eq=False)
class Theorem1Result(Result):
    n_cases: int
    n_evaluations: int
    bounds: dict[str, BoundCheck]  # by name in LABELS
    theorem_violations: int
    # per input (bulk): the measurement, each bound, and the case it belongs to …
    measured: np.ndarray = value(bulk=True, axes=("input",))
    recursion: np.ndarray = value(bulk=True, axes=("input",))
    per_layer: np.ndarray = value(bulk=True, axes=("input",))
    global_: np.ndarray = value(bulk=True, axes=("input",))
    drt: np.ndarray = value(bulk=True, axes=("input",))
    case: np.ndarray = value(bulk=True, axes=("input",))
    # … and per case
    width: np.ndarray = value(bulk=True, axes=("case",))
    depth: np.ndarray = value(bulk=True, axes=("case",))
    slope: np.ndarray = value(bulk=True, axes=("case",))
    max_a: np.ndarray = value(bulk=True, axes=("case",))
    alpha_min: np.ndarray = value(bulk=True, axes=("case",))
    kappa: np.ndarray = value(bulk=True, axes=("case",))
    # per bound: rule "theorem" ("holds", "holds, vacuous", "VIOLATED"); DRT, an assumption: rule "bound"
    outcomes: dict[str, Verdict] | None = value(derived=True)
    # where DRT's worst measured/bound sits: that case's depth, width and largest relative size a_l (the cases are
    # random sizes, not a slice along η, so this replaces the per-η factors of the slice rows)
    drt_worst_case: WorstCase | None = value(derived=True)

    def derive(self) -> Theorem1Result:
        def outcome(name: str, b: BoundCheck) -> Verdict:
            q = b.ratio_quantiles
            if name == "drt":
                return rules.bound(q.max, self.n_cases)
            return rules.theorem(b.violations, q.median, q.max, self.n_cases)

        worst = int(self.case[np.nanargmax(self.ratio("drt"))]) if self.case.size else None
        where = None if worst is None else WorstCase(int(self.depth[worst]), int(self.width[worst]),
                                                     float(self.max_a[worst]))  # fmt: skip
        return replace(self, outcomes={k: outcome(k, b) for k, b in self.bounds.items()}, drt_worst_case=where)

    def bound(self, name: str) -> np.ndarray:
        """The bound ``name`` (one of :data:`LABELS`) per input."""
        return self.global_ if name == "global" else getattr(self, name)

    def ratio(self, name: str) -> np.ndarray:
        """measured / bound per input."""
        return self.measured / self.bound(name)


LABELS = {
    "recursion": "induction step iterated",
    "per_layer": "∏ c_l · DRT (per layer)",
    "global": "(κ²β/α)^L · DRT",
    "drt": "DRT, constant 1 (assumption)",
}


def run(config: Theorem1Config) -> Theorem1Result:
    """Draw ``n_cases`` cases and check every bound on every input."""
    per_input: dict[str, list] = {k: [] for k in ("measured", *BOUNDS, "drt", "case")}
    meta: dict[str, list] = {k: [] for k in ("width", "depth", "slope", "max_a", "alpha_min", "kappa")}
    for i in range(config.n_cases):
        case = draw_case(np.random.default_rng([config.seed, i]), config)
        out = check_case(case)
        for k in ("measured", *BOUNDS, "drt"):
            per_input[k].append(out[k])
        per_input["case"].append(np.full(config.n_inputs, i))
        for k, v in (
            ("width", case["x"].shape[1]),
            ("depth", len(case["ws"])),
            ("slope", case["slope"]),
            ("max_a", float(case["a"].max())),
            ("alpha_min", out["alpha_min"]),
            ("kappa", out["kappa"]),
        ):
            meta[k].append(v)
    arrays = {k: np.concatenate(v) for k, v in per_input.items()}
    measured = arrays["measured"]
    checks = {}
    for name in (*BOUNDS, "drt"):
        ratio = measured / arrays[name]
        violated = measured > arrays[name] * (1 + RTOL)
        checks[name] = BoundCheck(
            kind="assumption (constant 1)" if name == "drt" else "theorem",
            violations=int(violated.sum()),
            violated_cases=int(np.unique(arrays["case"][violated]).size),
            ratio_quantiles=Quantiles(*np.quantile(ratio, [0, 0.05, 0.5, 0.95, 1]).tolist()),
        )
    per_case: dict[str, Any] = {k: np.asarray(v) for k, v in meta.items()}
    return Theorem1Result(
        n_cases=config.n_cases,
        n_evaluations=int(measured.size),
        bounds=checks,
        theorem_violations=sum(checks[b].violations for b in BOUNDS),
        measured=measured,
        recursion=arrays["recursion"],
        per_layer=arrays["per_layer"],
        global_=arrays["global"],
        drt=arrays["drt"],
        case=arrays["case"],
        **per_case,
    ).derive()


EXPERIMENT = Experiment(
    Theorem1Config,
    Theorem1Result,
    run,
    lambda quick, seed: {"theorem1": Theorem1Config(n_cases=500 if quick else 1000, seed=seed)},
    help="Theorem 1 on random square leaky-relu nets: zero violations and tightness",
)
