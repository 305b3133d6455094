"""How fast is trust, against what, and how does it scale? One command, one file of results:

    python benchmarks/run.py                  # writes benchmarks/RESULTS.md and benchmarks/results/<backend>.json
    python benchmarks/run.py --paper-figs quick        # also times `paper_figs.py --quick` from scratch (~4 min)
    python benchmarks/run.py --paper-figs quick full   # and the full run from scratch (under an hour)
    python benchmarks/run.py --paper-figs full --keep runs/   # keeps its figures and report in runs/full

Every figure is measured in the same run, on this machine:

* **the Figure-1 slice** (loss, outputs and every tensor's gradient at each η, on the study's measurement
  batch: 500 MNIST-5k images) at widths 64 … 784 and depths 2 and 16, for trust's kernel
  (:func:`trust.core.measure.grid_strategy`), a Python loop of a jitted single-η step, a plain ``jax.vmap`` over the
  grid, and a PyTorch eager loop (``pip install -e '.[bench]'``; skipped without torch);
* **the roofline**: counted matmul FLOPs per second against the same matmuls alone in the same ``lax.map`` (the
  rate this machine's XLA reaches at these shapes), and against a large square matmul (JAX, NumPy, torch);
* **memory**: XLA's compiled peak (arguments, outputs and temporaries) as the η grid grows 16 → 1024 and as the
  measurement batch grows;
* **the study**: training steps and slice measurements per second at width 784 on MNIST-5k;
* **scaling**: time against width, depth, η count and batch, as log–log slopes beside the expected ones;
* **precision**: the cost of float64.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from trust.base import store, tree
from trust.core import data, losses, measure, nets, perturb, train
from trust.experiments import study_breakdown, study_depth
from trust.experiments.shared import cell

HERE = Path(__file__).parent


@dataclasses.dataclass(frozen=True)
class Plan:
    """The sizes measured. ``FULL`` is the benchmark; ``SMOKE`` runs every code path in seconds (the tests)."""

    widths: tuple[int, ...] = (64, 128, 256, 512, 784)
    depths: tuple[int, ...] = (2, 16)
    n_measure: int = 500  # the study's measurement batch (trust study breakdown --n-measure)
    n_eta: int = 32
    width: int = 256  # the net of the memory and scaling sweeps (at depth 16)
    eta_counts: tuple[int, ...] = (16, 64, 256, 1024)
    batches: tuple[int, ...] = (250, 500, 1000, 2000, 4000)
    depth_sweep: tuple[int, ...] = (2, 4, 8, 16, 32)
    x64: tuple[tuple[int, int], ...] = ((16, 256), (16, 784), (2, 784))
    study: tuple[int, int, int] = (16, 784, 3)  # depth, width, epochs of the paper-scale cell
    # batched training: a rate grid as one vmapped program against one run per rate — depth, widths, steps (Adam's
    # grid of three rates; the study-depth cells are widths 128 and 784)
    batched: tuple[int, tuple[int, ...], int] = (16, (128, 784), 48)


FULL = Plan()
SMOKE = Plan(
    widths=(8, 16), depths=(2, 3), n_measure=40, n_eta=4, width=8, eta_counts=(4, 8), batches=(20, 40),
    depth_sweep=(2, 3), x64=((2, 8),), study=(2, 8, 1), batched=(2, (8,), 4),
)  # fmt: skip


# ------------------------------------------------------------------------------------------------- timing


def best_of_each(fns: dict, repeats: int, budget_s: float = 20.0) -> dict:
    """The fastest of up to ``repeats`` timed calls of each function, after one untimed (compiling) call each;
    fewer rounds when they are slow. The calls are interleaved, one of each per round, so that a slow spell of
    this shared machine falls on every candidate alike and the ratios between them stay fair."""
    for fn in fns.values():
        jax.block_until_ready(fn())
    times: dict = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - start)
        if sum(map(sum, times.values())) >= budget_s * len(fns):
            break
    return {name: min(t) for name, t in times.items()}


def best_of(fn, repeats: int, budget_s: float = 20.0) -> float:
    """:func:`best_of_each` of one function."""
    return best_of_each({"": fn}, repeats, budget_s)[""]


def slope(xs, ys) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


# ---------------------------------------------------------------------------------------------- the slice


def measurement_flops(widths, n: int) -> float:
    """Matmul FLOPs of one η point: every layer's forward ``2·n·d_in·d_out`` and weight gradient (the same), and
    the input gradient of every layer but the first (nothing differentiates the data)."""
    layer = [2.0 * n * a * b for a, b in zip(widths[:-1], widths[1:])]
    return 2 * sum(layer) + sum(layer[1:])


class Slice:
    """One MLP at its initialisation, the gradient direction, the batch and the η grid."""

    def __init__(self, depth: int, width: int, n: int, n_eta: int, ds: data.Dataset, dtype=jnp.float32):
        self.net = nets.experiment_mlp(ds.x_train.shape[1], width, depth, ds.n_classes)
        self.params = jax.tree_util.tree_map(lambda a: a.astype(dtype), self.net.init(jax.random.key(depth)))
        self.x, self.y = ds.x_train[:n].astype(dtype), ds.y_train[:n]
        grads = measure.full_batch_gradient(self.net.apply, self.params, self.x, self.y)
        self.u = perturb.along_gradient(self.params, grads)
        self.etas = jnp.linspace(0.0, 0.1, n_eta, dtype=dtype)
        self.flops = measurement_flops(self.net.widths, n) * (n_eta + 1)  # the grid and the base point

    def strategy(self, **changes) -> measure.Strategy:
        """The strategy trust picks for this grid, with ``changes``."""
        return measure.grid_strategy(self.etas.size, self.net.apply)._replace(**changes)

    def _trust_grid(self, **changes):
        fn = partial(measure._grid, self.net.apply, losses.cross_entropy, self.strategy(**changes))
        return fn, (self.params, self.u, self.x, self.y, self.etas)

    def trust(self, **changes):
        """A call of trust's kernel (its strategy with ``changes``)."""
        fn, args = self._trust_grid(**changes)
        return lambda: fn(*args)

    def trust_mb(self) -> float:
        fn, args = self._trust_grid()
        return compiled_bytes(fn, *args) / 2**20

    def _point(self):
        """The plain evaluation of one η, reduced as the grid reduces it, and the base point; both take every
        array as an argument (closed-over arrays would be compile-time constants that XLA folds)."""
        net = self.net

        def point(eta, params, u, x, y, out0, grads0):
            loss, out, g = measure._evaluate(net.apply, losses.cross_entropy, perturb.perturbed(params, u, eta), x, y)
            dg = tree.frobenius_norms(jax.tree_util.tree_map(jnp.subtract, g, grads0))
            return loss, jnp.linalg.norm(out - out0, axis=-1), jnp.linalg.norm(out - out0), dg

        base = jax.jit(lambda params, x, y: measure._evaluate(net.apply, losses.cross_entropy, params, x, y))
        return point, base

    def naive_loop(self):
        point, base = self._point()
        point = jax.jit(point)
        args = (self.params, self.u, self.x, self.y)

        def run():
            out0, grads0 = base(self.params, self.x, self.y)[1:]
            return [point(eta, *args, out0, grads0) for eta in self.etas]

        return run

    def _plain_vmap_grid(self):
        point, base = self._point()
        return jax.vmap(point, in_axes=(0, None, None, None, None, None, None)), base

    def plain_vmap(self):
        grid, base = self._plain_vmap_grid()
        grid = jax.jit(grid)
        args = (self.params, self.u, self.x, self.y)
        return lambda: grid(self.etas, *args, *base(self.params, self.x, self.y)[1:])

    def plain_vmap_mb(self) -> float:
        grid, base = self._plain_vmap_grid()
        base_point = base(self.params, self.x, self.y)[1:]
        return compiled_bytes(grid, self.etas, self.params, self.u, self.x, self.y, *base_point) / 2**20

    def matmuls_only(self):
        """The measurement's matmuls and nothing else, in the same ``lax.map``: the rate XLA reaches at these
        shapes on this machine — the roofline the kernel is held to."""
        ws = [layer["w"].T for layer in self.params]
        g = jnp.ones((self.x.shape[0], ws[-1].shape[1]), self.x.dtype)
        batch = self.strategy().batch_size

        def point(eta, ws, x, g):
            hs = [x * (1 + eta)]  # depends on η: nothing is hoisted out of the loop
            for w in ws:
                hs.append(hs[-1] @ w)
            delta, total = g * eta, 0.0
            for l in reversed(range(len(ws))):
                total += jnp.sum(hs[l].T @ delta)
                if l > 0:
                    delta = delta @ ws[l].T
            return total

        etas = jnp.concatenate([self.etas, jnp.zeros(batch, self.etas.dtype)])
        run = jax.jit(lambda e, ws, x, g: jax.lax.map(lambda eta: point(eta, ws, x, g), e, batch_size=batch))
        return lambda: run(etas, ws, self.x, g)

    def torch_loop(self, device: str):
        """The same measurement as a PyTorch eager loop over η (the base point once, then every η)."""
        import torch

        def to_t(a):
            return torch.tensor(np.asarray(a), device=device)

        layers = [(to_t(p["w"]), to_t(p["b"]), to_t(q["w"]), to_t(q["b"])) for p, q in zip(self.params, self.u)]
        x, y = to_t(self.x), torch.tensor(np.asarray(self.y), dtype=torch.long, device=device)

        def evaluate(eta):
            ps = [t.requires_grad_() for w, b, dw, db in layers for t in (w + eta * dw, b + eta * db)]
            h = x
            for l in range(len(layers)):
                z = h @ ps[2 * l].T + ps[2 * l + 1]
                h = torch.relu(z) if l < len(layers) - 1 else z
            loss = torch.nn.functional.cross_entropy(h, y)
            return loss.detach(), h.detach(), torch.autograd.grad(loss, ps)

        def run():
            _, out0, g0 = evaluate(0.0)
            rows = []
            for eta in np.asarray(self.etas):
                loss, out, g = evaluate(float(eta))
                dg = torch.stack([torch.linalg.norm(a - b) for a, b in zip(g, g0)])
                rows.append((loss, torch.linalg.norm(out - out0, dim=-1), torch.linalg.norm(out - out0), dg))
            if device != "cpu":
                torch.cuda.synchronize()
            return rows

        return run


def torch_device() -> str | None:
    """Where the PyTorch baseline runs: the GPU when JAX runs on one, else the CPU; ``None`` without torch."""
    try:
        import torch
    except ImportError:
        return None
    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def bench_slices(ds, repeats: int, plan: Plan) -> list[dict]:
    device = torch_device()
    rows = []
    for depth in plan.depths:
        for width in plan.widths:
            s = Slice(depth, width, plan.n_measure, plan.n_eta, ds)
            row = {"depth": depth, "width": width, "gflop": s.flops / 1e9}
            candidates = {
                "trust_s": s.trust(),
                "trust_unshared_s": s.trust(share_first_layer=False),
                "naive_loop_s": s.naive_loop(),
                "plain_vmap_s": s.plain_vmap(),
                "matmuls_only_s": s.matmuls_only(),
            }
            row.update(best_of_each(candidates, repeats))
            print(f"slice depth {depth} width {width}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if v))
            rows.append(row)
    # PyTorch last, with its default threading: its OpenMP threads may spin after each op, and should not steal
    # the cores from the JAX timings above.
    for row in rows:
        s = Slice(row["depth"], row["width"], plan.n_measure, plan.n_eta, ds)
        row["torch_eager_s"] = best_of(s.torch_loop(device), repeats) if device else None
        print(f"slice depth {row['depth']} width {row['width']}: PyTorch eager {row['torch_eager_s']}")
    return rows


# ---------------------------------------------------------------------------------------------- the rates


def matmul_rates(repeats: int) -> dict:
    """GFLOP/s of a 2048² float32 matmul in JAX (as the kernel runs: XLA's own CPU or GPU code), NumPy (OpenBLAS,
    under this process's OPENBLAS_CORETYPE) and torch; and float64 in JAX."""
    n = 2048
    rates = {}
    for dtype in (jnp.float32, jnp.float64):
        with jax.enable_x64(dtype == jnp.float64):
            a = jax.random.normal(jax.random.key(0), (n, n), dtype)
            f = jax.jit(lambda m: m @ m)
            rates[f"jax_{jnp.dtype(dtype).name}"] = 2 * n**3 / best_of(lambda: f(a), repeats) / 1e9
    host = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    rates["numpy_float32"] = 2 * n**3 / best_of(lambda: host @ host, repeats) / 1e9
    device = torch_device()
    if device:
        import torch

        t = torch.tensor(host, device=device)

        def torch_mm():
            r = t @ t
            if device != "cpu":
                torch.cuda.synchronize()
            return r

        rates["torch_float32"] = 2 * n**3 / best_of(torch_mm, repeats) / 1e9
    return rates


# --------------------------------------------------------------------------------------------------- memory


def compiled_bytes(fn, *args) -> int:
    """XLA's peak for one compiled call: arguments, outputs and temporaries (no aliasing here)."""
    m = jax.jit(fn).lower(*args).compile().memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)


def bench_memory(ds, plan: Plan) -> dict:
    """Peak bytes of the grid at depth 16: trust's chunked map against a plain vmap, over η counts and
    measurement batches."""
    rows_eta = []
    for n_eta in plan.eta_counts:
        s = Slice(16, plan.width, plan.n_measure, n_eta, ds)
        rows_eta.append({"n_eta": n_eta, "trust_mb": s.trust_mb(), "plain_vmap_mb": s.plain_vmap_mb()})
    rows_n = [{"n": n, "trust_mb": Slice(16, plan.width, n, plan.n_eta, ds).trust_mb()} for n in plan.batches]
    return {"eta": rows_eta, "batch": rows_n}


# ---------------------------------------------------------------------------------------------------- scaling


def bench_scaling(ds, repeats: int, slices: list[dict], plan: Plan) -> dict:
    """Time of trust's kernel against width (the deepest nets of the slice table, widths ≥ plan.width), depth, η
    count and batch (at plan.width), with each log–log slope and the slope the FLOP count predicts."""
    deepest = max(plan.depths)
    wide = [r for r in slices if r["depth"] == deepest and r["width"] >= plan.width]
    out = {
        "width": {
            "x": [r["width"] for r in wide],
            "s": [r["trust_s"] for r in wide],
            "expected": slope([r["width"] for r in wide], [r["gflop"] for r in wide]),
        }
    }

    def sweep(name, values, make):
        times, flops = [], []
        for v in values:
            s = make(v)
            times.append(best_of(s.trust(), repeats))
            flops.append(s.flops)
        out[name] = {"x": list(values), "s": times, "expected": slope(values, flops)}
        print(f"scaling {name}: " + ", ".join(f"{v}: {t:.3g} s" for v, t in zip(values, times)))

    sweep("depth", plan.depth_sweep, lambda d: Slice(d, plan.width, plan.n_measure, plan.n_eta, ds))
    sweep("eta", plan.eta_counts[:3], lambda k: Slice(deepest, plan.width, plan.n_measure, k, ds))
    sweep("batch", plan.batches, lambda n: Slice(deepest, plan.width, n, plan.n_eta, ds))
    for v in out.values():
        v["slope"] = slope(v["x"], v["s"])
    return out


# ------------------------------------------------------------------------------------------------- precision


def bench_x64(ds, repeats: int, plan: Plan) -> list[dict]:
    rows = []
    for depth, width in plan.x64:
        row = {"depth": depth, "width": width}
        for name, dtype in (("float32_s", jnp.float32), ("float64_s", jnp.float64)):
            with jax.enable_x64(dtype == jnp.float64):
                row[name] = best_of(Slice(depth, width, plan.n_measure, plan.n_eta, ds, dtype).trust(), repeats)
        print(f"x64 depth {depth} width {width}: {row}")
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------------- study


def bench_study(ds, plan: Plan) -> dict:
    """The paper-scale cell: width 784, depth 16, Fromage, batch 250 on MNIST-5k (16 steps per epoch); training
    throughput over 3 epochs after a compiling run, and slices of the full study's η grid on 500 images."""
    depth, width, epochs = plan.study
    config = train.TrainConfig(
        optimizer="fromage", depth=depth, width=width, dataset="mnist5k", batch_size=250, epochs=epochs, checkpoints=()
    )
    train.train(config, ds, progress=False)  # compiles
    start = time.perf_counter()
    trained = train.train(config, ds, progress=False)
    seconds = time.perf_counter() - start
    steps = config.epochs * (ds.x_train.shape[0] // config.batch_size)
    net, _ = train.initial_params(config, ds)
    eta = np.asarray(study_breakdown.StudyBreakdownConfig().resolved().eta)  # the full study's grid
    x, y = ds.x_train[: plan.n_measure], ds.y_train[: plan.n_measure]
    slice_s = best_of(lambda: cell.gradient_slice(net, trained.params, x, y, eta).loss, 3)
    return {
        "train_steps": steps,
        "train_s": seconds,
        "steps_per_s": steps / seconds,
        "slice_points": int(eta.size),
        "slice_s": slice_s,
        "slices_per_s": 1.0 / slice_s,
    }


def bench_batched_training(ds, repeats: int, plan: Plan) -> list[dict]:
    """Item 5 of issue 26: would training a rate grid as one compiled program (``jax.vmap`` of the study's own
    jitted step over the rates, one minibatch shared) beat one run per rate? Same steps, same minibatches, same
    start; Adam's grid of three rates, batch 250 on MNIST-5k."""
    depth, widths, steps = plan.batched
    rates = np.asarray(study_depth.LR_GRIDS["adam"], np.float32)
    xb, yb = ds.x_train[:250], ds.y_train[:250]
    out = []
    for width in widths:
        config = train.TrainConfig(optimizer="adam", depth=depth, width=width, dataset="mnist5k", batch_size=250)
        net, params = train.initial_params(config, ds)
        program = train._program(net, config, 240)
        state = program.opt.init(params)
        decay = np.float32(0.95)

        def separate(params=params, state=state, program=program):
            for lr in rates:
                p, s = params, state
                for t in range(steps):
                    p, s, _, loss, _ = program.step(p, s, None, xb, yb, t, lr, decay)
            return loss

        stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a] * rates.size), (params, state))
        step = jax.jit(jax.vmap(program.step, in_axes=(0, 0, None, None, None, None, 0, None)))

        def batched(stacked=stacked, step=step):
            p, s = stacked
            for t in range(steps):
                p, s, _, loss, _ = step(p, s, None, xb, yb, t, rates, decay)
            return loss

        times = best_of_each({"separate": separate, "batched": batched}, repeats)
        out.append({"depth": depth, "width": width, "rates": rates.size, "steps": steps, **times})
    return out


PAPER_FIGS = {"quick": ["--quick"], "full": []}


def time_paper_figs(mode: str, keep: Path | None = None) -> dict:
    """Wall time of ``paper_figs.py`` (``quick`` or ``full``) from scratch, in an empty output directory: a
    temporary one, or ``keep/mode`` (which must not exist yet) to keep its figures and report."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) if keep is None else keep / mode
        start = time.perf_counter()
        cmd = [sys.executable, "paper_figs.py", *PAPER_FIGS[mode], "--out", str(out)]
        subprocess.run(cmd, cwd=HERE.parent, check=True, stdout=subprocess.DEVNULL)
        return {"s": time.perf_counter() - start, "date": time.strftime("%Y-%m-%d"), "trust": store.versions()["trust"]}


def paper_figs_times(modes: list[str], previous: Path, keep: Path | None = None) -> dict:
    """The modes timed now, and for the others the last measurement in ``previous`` (a results JSON), if any."""
    try:
        carried = json.loads(previous.read_text()).get("paper_figs", {})
    except (OSError, ValueError):
        carried = {}
    return {mode: time_paper_figs(mode, keep) if mode in modes else carried.get(mode) for mode in PAPER_FIGS}


def _paper_figs_text(r: dict, mode: str) -> str:
    t = r["paper_figs"].get(mode)
    if t is None:
        return f"not timed yet (`--paper-figs {mode}`)"
    when = "in this run" if mode in r["timed"] else f"carried over from the run of {t['date']} (trust {t['trust']})"
    return f"**{_minutes(t['s'])}** from scratch, {when}"


# ---------------------------------------------------------------------------------------------------- report


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _x(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}×"


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def _within_hour(r: dict) -> str:
    t = r["paper_figs"].get("full")
    return "—" if t is None else ("met" if t["s"] <= 3600 else f"missed by {_minutes(t['s'] - 3600)}")


def targets(r: dict) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for the issue's targets, from the measured results."""
    rows = r["slices"]
    wide = [x for x in rows if x["width"] >= 256]
    out = []
    if wide:
        roof = min(x["trust_gflops"] / x["matmuls_only_gflops"] for x in wide)
        out.append(
            (
                "≥ 0.8 of the roofline at width ≥ 256",
                f"{roof:.2f} (worst of {len(wide)} slices; each vs the same matmuls alone)",
                "met" if roof >= 0.8 else f"missed by {0.8 - roof:.2f}",
            )
        )
    if all(x["torch_eager_s"] for x in rows) and any(x["width"] == 64 for x in rows):
        worst = min(x["torch_eager_s"] / x["trust_s"] for x in rows)
        narrow = min(x["torch_eager_s"] / x["trust_s"] for x in rows if x["width"] == 64)
        out += [
            ("≥ 1× PyTorch eager at every width", f"{worst:.2f}× (worst slice)", "met" if worst >= 1 else "missed"),
            ("≥ 1.5× PyTorch eager at width 64", f"{narrow:.2f}× (worst depth)", "met" if narrow >= 1.5 else "missed"),
        ]
    mem = r["memory"]["eta"]
    growth = mem[-1]["trust_mb"] / mem[0]["trust_mb"]
    out.append(
        (
            "memory flat in the η count",
            f"{mem[0]['trust_mb']:.1f} MB at {mem[0]['n_eta']} η, {mem[-1]['trust_mb']:.1f} MB at {mem[-1]['n_eta']}"
            f" ({growth:.2f}×; a plain vmap: {mem[-1]['plain_vmap_mb'] / mem[0]['plain_vmap_mb']:.0f}×)",
            "met" if growth < 1.1 else "missed",
        )
    )
    return out


def markdown(r: dict) -> str:
    m = r["machine"]
    rates = r["matmul_gflops"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python benchmarks/run.py` in {_minutes(r['wall_s'])} on {m['cpu']} ({m['cores']} cores), JAX "
        f"backend **{m['backend']}** ({', '.join(m['devices'])}), float32 unless said; every ratio below is between "
        "times measured in this one run (best of up to 5 calls within 20 s, after a compiling call; a slice's JAX "
        "candidates interleaved, one call of each per round, so that a slow spell of the machine falls on all "
        "alike; PyTorch after them). Versions: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()) + ".",
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        *[f"| {t} | {v} | {w} |" for t, v, w in targets(r)],
        f"| full `paper_figs.py` ≤ 60 min on 2 cores | {_paper_figs_text(r, 'full')} | {_within_hour(r)} |",
        f"| ≥ 5× PyTorch eager on a GPU at width ≤ 784 | {r['gpu']} | — |",
        "",
        "## Matmul rates (the references)",
        "",
        "| 2048² matmul | GFLOP/s |",
        "|---|---|",
        *[f"| {k.replace('_', ' ')} | {v:.0f} |" for k, v in rates.items()],
        "",
        f"`OPENBLAS_CORETYPE={m['openblas_coretype']}` in this environment: NumPy's OpenBLAS runs the kernels of that "
        "core type (Haswell: AVX2) even on an AVX-512 CPU, so NumPy's rate says nothing about the kernel's. trust's "
        "kernel runs in XLA, whose own CPU code targets the host's instruction set: the references below are "
        "therefore XLA's, measured the way the kernel runs.",
        "",
        f"## The Figure-1 slice: {r['plan']['n_eta']} η points and the base point, {r['plan']['n_measure']} MNIST-5k "
        "images",
        "",
        "Loss, outputs and every tensor's gradient at each η along the gradient direction, reduced to the distances "
        "the study stores. *trust*: `measure._grid` with the strategy `measure.grid_strategy` picks (chunks of "
        f"{r['strategy']['batch_size']} η, the first layer shared); *unshared*: the same without sharing the first "
        "layer; *naive loop*: a Python loop of one jitted η; *plain vmap*: `jax.vmap` over the whole grid; "
        "*PyTorch eager*: the same loop in torch "
        f"{r['versions'].get('torch', '(not installed)')} on {r['torch_device'] or '—'}. *Roofline*: counted matmul "
        "FLOPs (forward, weight gradients, input gradients but the first layer's) per second, over the rate of "
        "the same matmuls alone in the same `lax.map` (no activations, losses or reductions) — what XLA reaches "
        "at these shapes here; *of peak*: over the 2048² JAX rate.",
        "",
        "| depth | width | GFLOP | trust | unshared | naive loop | plain vmap | PyTorch eager | vs naive | vs vmap "
        "| vs PyTorch | sharing gain | GFLOP/s | roofline | of peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["slices"]:
        torch_ratio = x["torch_eager_s"] / x["trust_s"] if x["torch_eager_s"] else None
        lines.append(
            f"| {x['depth']} | {x['width']} | {x['gflop']:.3g} | {_s(x['trust_s'])} | {_s(x['trust_unshared_s'])} | "
            f"{_s(x['naive_loop_s'])} | {_s(x['plain_vmap_s'])} | {_s(x['torch_eager_s'])} | "
            f"{_x(x['naive_loop_s'] / x['trust_s'])} | {_x(x['plain_vmap_s'] / x['trust_s'])} | {_x(torch_ratio)} | "
            f"{_x(x['trust_unshared_s'] / x['trust_s'])} | {x['trust_gflops']:.0f} | "
            f"{x['trust_gflops'] / x['matmuls_only_gflops']:.2f} | {x['trust_gflops'] / rates['jax_float32']:.2f} |"
        )
    mem = r["memory"]
    lines += [
        "",
        "## Memory",
        "",
        "XLA's compiled peak (arguments + outputs + temporaries) of one grid call, depth 16, width "
        f"{r['plan']['width']}: trust maps the grid in chunks, so its peak does not grow with the η count; a plain "
        "vmap holds every η's activations.",
        "",
        "| η points | trust | plain vmap |",
        "|---|---|---|",
        *[f"| {x['n_eta']} | {x['trust_mb']:.1f} MB | {x['plain_vmap_mb']:.1f} MB |" for x in mem["eta"]],
        "",
        f"Against the measurement batch ({r['plan']['n_eta']} η): linear, as the activations are.",
        "",
        "| batch | trust |",
        "|---|---|",
        *[f"| {x['n']} | {x['trust_mb']:.1f} MB |" for x in mem["batch"]],
    ]
    st = r["study"]
    lines += [
        "",
        "## The study's own throughput (depth {}, width {}, MNIST-5k)".format(*r["plan"]["study"][:2]),
        "",
        f"- training (Fromage, batch 250, with the per-epoch evaluation a cell does): **{st['steps_per_s']:.2f} "
        f"steps/s** ({st['train_steps']} steps in {st['train_s']:.2f} s);",
        f"- the Figure-1 slice at a checkpoint ({st['slice_points']} η, 500 images, gradient and direction "
        f"included): **{st['slices_per_s']:.2f} slices/s** ({_s(st['slice_s'])} each);",
        f"- `python paper_figs.py --quick`: {_paper_figs_text(r, 'quick')};",
        f"- `python paper_figs.py` (full): {_paper_figs_text(r, 'full')}.",
        "",
        "## Batched training: a rate grid as one program",
        "",
        "Adam's three rates trained as one `jax.vmap` of the study's jitted step (one minibatch shared) against one "
        "run per rate, the same steps from the same start (issue 26, item 5: adopted only where faster).",
        "",
        "| depth | width | steps × rates | one run per rate | batched | batched / separate |",
        "|---|---|---|---|---|---|",
        *[
            f"| {x['depth']} | {x['width']} | {x['steps']} × {x['rates']} | {_s(x['separate'])} | {_s(x['batched'])} "
            f"| {_x(x['batched'] / x['separate'])} |"
            for x in r.get("batched_training", [])
        ],
        "",
        "## Scaling (trust's kernel; log–log slope of time, and the slope the FLOP count predicts)",
        "",
        "| against | points | measured slope | expected |",
        "|---|---|---|---|",
    ]
    for name, v in r["scaling"].items():
        pts = ", ".join(f"{x}: {_s(t)}" for x, t in zip(v["x"], v["s"]))
        lines.append(f"| {name} | {pts} | {v['slope']:.2f} | {v['expected']:.2f} |")
    lines += [
        "",
        "## Precision: the cost of float64 (`--x64`)",
        "",
        "| depth | width | float32 | float64 | float64 / float32 |",
        "|---|---|---|---|---|",
        *[
            f"| {x['depth']} | {x['width']} | {_s(x['float32_s'])} | {_s(x['float64_s'])} | "
            f"{_x(x['float64_s'] / x['float32_s'])} |"
            for x in r["x64"]
        ],
        "",
    ]
    return "\n".join(lines) + "\n" + r.get("notes", "")


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        names = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
    }


def measure_all(args, plan: Plan, previous: Path) -> dict:
    start = time.perf_counter()
    ds = data.mnist5k(jax.random.key(0))
    r: dict = {"machine": machine(), "versions": store.versions(), "torch_device": torch_device()}
    r["plan"] = dataclasses.asdict(plan)
    if r["torch_device"]:
        import torch

        r["versions"]["torch"] = torch.__version__
    r["strategy"] = Slice(2, 8, 10, plan.n_eta, ds).strategy()._asdict()
    r["matmul_gflops"] = matmul_rates(args.repeats)
    print("matmul GFLOP/s:", {k: round(v) for k, v in r["matmul_gflops"].items()})
    r["slices"] = bench_slices(ds, args.repeats, plan)
    for x in r["slices"]:
        x["trust_gflops"] = x["gflop"] / x["trust_s"]
        x["matmuls_only_gflops"] = x["gflop"] / x["matmuls_only_s"]
    r["memory"] = bench_memory(ds, plan)
    r["scaling"] = bench_scaling(ds, args.repeats, r["slices"], plan)
    r["x64"] = bench_x64(ds, args.repeats, plan)
    r["study"] = bench_study(ds, plan)
    r["batched_training"] = bench_batched_training(ds, args.repeats, plan)
    r["timed"] = args.paper_figs
    r["paper_figs"] = paper_figs_times(args.paper_figs, previous, args.keep)
    r["gpu"] = "no GPU in this run" if jax.default_backend() == "cpu" else "see the slice table"
    r["wall_s"] = time.perf_counter() - start
    return r


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed calls per measurement, within 20 s (the best is kept)"
    )
    parser.add_argument(
        "--paper-figs", nargs="+", default=[], choices=PAPER_FIGS, help="also time paper_figs.py from scratch"
    )
    parser.add_argument(
        "--keep", type=Path, help="write the timed paper_figs.py runs to KEEP/quick and KEEP/full (must be new)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: every code path in seconds (the tests)")
    parser.add_argument("--render", action="store_true", help="rewrite RESULTS.md from the stored JSON (no timing)")
    args = parser.parse_args(argv)
    for mode in args.paper_figs if args.keep else []:
        if (args.keep / mode).exists():
            parser.error(f"{args.keep / mode} exists: paper_figs.py is timed from scratch, into a new directory")
    results = store.make_dir(args.out.parent / "results") / f"{jax.default_backend()}.json"
    if args.render:
        r = json.loads(results.read_text())
    else:
        r = measure_all(args, SMOKE if args.smoke else FULL, results)
        store.write_json(results, r)
    notes = HERE / "NOTES.md"  # the analysis, written by hand from the tables: why a target is missed
    store.write_text(args.out, markdown({**r, "notes": notes.read_text() if notes.exists() else ""}))
    print(f"wrote {args.out} and {results} in {_minutes(r['wall_s'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
