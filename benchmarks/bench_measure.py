"""How fast is the η-grid measurement, and how should the grid be mapped?

Measures, in one run on this machine, the wall time of `trust.measure`'s grid (loss, function and
per-layer gradient distances at 100 values of η, full digits training batch) for:

* a naive Python loop over η calling one jitted single-point function;
* `jax.lax.map(..., batch_size=b)` for several b (b = grid size is a plain `vmap`);
* a PyTorch eager loop doing the same work, when torch is installed (it is not a dependency);

and the machine's own float32 matmul rate, so that the achieved GFLOP/s can be read as a fraction of
it. Writes benchmarks/results/measure_<backend>.json and .md (quoted by the README).

    python benchmarks/bench_measure.py [--depths 4 16] [--width 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from trust import data, losses, measure, nets, perturb, store, tree


def _best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return min(times)


def matmul_gflops(n=1024, repeats=10):
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    return 2 * n**3 / _best_of(lambda: f(a), repeats) / 1e9


def grid_flops(widths, n_examples, n_eta):
    """Matmul FLOPs: forward 2·n·Σ d_in d_out, backward twice that (input and weight gradients)."""
    forward = 2 * n_examples * sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    return 3 * forward * n_eta


def torch_loop(params, u, x, y, etas, repeats):
    """The same measurement as a PyTorch eager loop over η (float32, CPU)."""
    import torch

    to_t = lambda a: torch.tensor(np.asarray(a))  # noqa: E731
    W = [(to_t(p["w"]), to_t(p["b"])) for p in params]
    U = [(to_t(q["w"]), to_t(q["b"])) for q in u]
    xt, yt = to_t(x), torch.tensor(np.asarray(y), dtype=torch.long)

    def evaluate(eta):
        ps = [t.requires_grad_() for (w, b), (dw, db) in zip(W, U) for t in (w + eta * dw, b + eta * db)]
        h = xt
        for l in range(len(W)):
            z = h @ ps[2 * l].T + ps[2 * l + 1]
            h = torch.relu(z) if l < len(W) - 1 else z
        loss = torch.nn.functional.cross_entropy(h, yt)
        grads = torch.autograd.grad(loss, ps)
        return loss.detach(), h.detach(), grads

    def run():
        _, out0, g0 = evaluate(0.0)
        rows = []
        for eta in etas:
            loss, out, g = evaluate(float(eta))
            rows.append(
                (
                    loss,
                    torch.linalg.norm(out - out0, dim=-1),
                    torch.linalg.norm(out - out0),
                    torch.stack([torch.linalg.norm(a - b) for a, b in zip(g, g0)]),
                )
            )
        return rows

    run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return min(times), torch.__version__


def bench_depth(depth, width, etas, repeats, ds):
    net = nets.experiment_mlp(ds.x_train.shape[1], width, depth, ds.n_classes)
    params = net.init(jax.random.key(depth))
    x, y = ds.x_train, ds.y_train
    grads = jax.jit(jax.grad(lambda p: losses.cross_entropy(net.apply(p, x), y)))(params)
    u = perturb.along_gradient(params, grads)
    row = {"depth": depth, "width": width, "n_examples": int(x.shape[0]), "n_eta": int(etas.size)}

    def point(eta, out0, grads0):  # one η: the same quantities as the grid computes
        loss, out, g = measure._evaluate(net.apply, losses.cross_entropy, perturb.perturbed(params, u, eta), x, y)
        dg = tree.frobenius_norms(jax.tree_util.tree_map(jnp.subtract, g, grads0))
        return loss, jnp.linalg.norm(out - out0, axis=-1), jnp.linalg.norm(out - out0), dg

    point = jax.jit(point)
    _, out0, grads0 = measure._evaluate(net.apply, losses.cross_entropy, params, x, y)
    point(jnp.float32(0.0), out0, grads0)
    row["naive_loop_s"] = _best_of(lambda: [point(jnp.float32(e), out0, grads0) for e in etas], repeats)

    for b in (1, 2, 4, 8, 16, etas.size):
        fn = lambda: measure._grid(net.apply, losses.cross_entropy, b, params, u, x, y, jnp.asarray(etas))  # noqa: E731
        t = time.perf_counter()
        jax.block_until_ready(fn())
        row[f"compile_plus_run_b{b}_s"] = time.perf_counter() - t
        row[f"lax_map_b{b}_s"] = _best_of(fn, repeats)
    try:
        row["torch_eager_loop_s"], row["torch_version"] = torch_loop(params, u, x, y, etas, repeats)
    except ImportError:
        row["torch_eager_loop_s"] = None
    row["grid_gflop"] = grid_flops(net.widths, x.shape[0], etas.size) / 1e9
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    ds = data.digits(jax.random.key(0))
    etas = np.arange(100, dtype=np.float32) * 0.001
    peak = matmul_gflops()
    rows = [bench_depth(d, args.width, etas, args.repeats, ds) for d in args.depths]
    backend = jax.default_backend()
    result = {
        "backend": backend,
        "devices": [str(d) for d in jax.devices()],
        "cpu": platform.processor() or platform.machine(),
        "matmul_gflops_f32_1024": peak,
        "default_batch_size": measure.grid_batch_size(etas.size),
        "rows": rows,
        "versions": store.versions(),
    }
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"measure_{backend}.json").write_text(json.dumps(result, indent=2))

    lines = [
        f"Grid of {etas.size} η values, digits training batch ({rows[0]['n_examples']} examples), relu MLP width "
        f"{args.width}, backend {backend}; matmul rate {peak:.0f} GFLOP/s (float32, 1024²). Times are the best of "
        f"{args.repeats}, compile excluded.",
        "",
        "| depth | naive jitted loop | lax.map b=1 | b=2 | b=4 | b=8 | b=16 | vmap (b=100) | PyTorch eager loop "
        "| best vs naive | best vs PyTorch | best GFLOP/s (% of matmul) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        maps = {b: r[f"lax_map_b{b}_s"] for b in (1, 2, 4, 8, 16, etas.size)}
        best = min(maps.values())
        torch_s = r["torch_eager_loop_s"]
        lines.append(
            f"| {r['depth']} | {r['naive_loop_s']:.2f} s | "
            + " | ".join(f"{maps[b]:.2f} s" for b in maps)
            + f" | {'n/a' if torch_s is None else f'{torch_s:.2f} s'} | {r['naive_loop_s'] / best:.2f}× | "
            + ("n/a" if torch_s is None else f"{torch_s / best:.2f}×")
            + f" | {r['grid_gflop'] / best:.0f} ({100 * r['grid_gflop'] / best / peak:.0f} %) |"
        )
    text = "\n".join(lines) + "\n"
    (out / f"measure_{backend}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
