"""Regenerate every figure and figures/REPORT.md from the bundled digits data.

    python paper_figs.py            # full: width 128, 100 η values (a few minutes on 2 CPU cores)
    python paper_figs.py --quick    # width 64, 25 η values

Each experiment is stored as a run directory under ``<out>/runs/`` (config.json, results.json,
arrays.npz); a rerun skips finished runs, and the figures are drawn from the stored results only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

import proofs_checks
from trust import plots, report, store
from trust.errors import TrustError
from trust.experiments import breakdown, constants, cosgamma, descent, theorem1

DEPTHS = (2, 4, 8, 16)


def experiments(quick: bool, seed: int) -> dict[str, tuple[object, object]]:
    """Every run: name → (config, the experiment's ``run``)."""
    width, steps = (64, 25) if quick else (128, 100)
    common = dict(width=width, eta_steps=steps, seed=seed)
    exps = {}
    for kind in ("gradient", "random"):
        for depth in DEPTHS:
            exps[f"breakdown_{kind}_L{depth}"] = breakdown.BreakdownConfig(depth=depth, perturb=kind, **common)
    exps["breakdown_gradient_L16_residual"] = breakdown.BreakdownConfig(depth=16, net="residual", **common)
    t1 = dict(net="theorem1", activation="leaky_relu", slope=0.1, init="gaussian", x64=True, **common)
    for depth in DEPTHS:
        exps[f"exact_L{depth}"] = breakdown.BreakdownConfig(depth=depth, perturb="scaled", **t1)
        exps[f"opnorm_L{depth}"] = breakdown.BreakdownConfig(depth=depth, perturb="random", **t1)
    exps = {name: (config, breakdown.run) for name, config in exps.items()}
    exps["theorem1"] = (theorem1.Theorem1Config(n_cases=500 if quick else 1000, seed=seed), theorem1.run)
    exps["constants"] = (constants.ConstantsConfig(
        depths=(2, 8, 16) if quick else DEPTHS, epochs=(0.0, 2.0) if quick else (0.0, 10.0), **common), constants.run)
    exps["descent"] = (descent.DescentConfig(
        depths=(2, 4, 8, 16) if quick else (2, 4, 8, 16, 32), epochs=(0.0, 1.0) if quick else (0.0, 1.0, 5.0),
        width=width, eta_steps=30 if quick else 80, seed=seed), descent.run)
    exps["cosgamma"] = (cosgamma.CosGammaConfig(
        trials=500 if quick else 2000, seeds=2 if quick else 3, width=width,
        epochs=(0.0, 1.0, 2.0) if quick else (0.0, 0.5, 1.0, 2.0, 5.0, 10.0), seed=seed), cosgamma.run)
    return exps


def proof_checks_section() -> str:
    """The SymPy proof-check table (``python -m proofs_checks``), appended to REPORT.md."""
    return "\n## Proof checks (SymPy)\n\n" + proofs_checks.markdown_table(proofs_checks.run_all())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller nets and grids (about a minute)")
    parser.add_argument("--out", default="figures", help="where figures, REPORT.md and runs/ go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    start = time.time()
    try:
        results, arrays = {}, {}
        for name, (config, run) in tqdm(experiments(args.quick, args.seed).items(), desc="experiments", unit="run"):
            run_dir = out / "runs" / name
            stored = store.finished_run(run_dir, config.to_dict())
            if stored is None:
                res, arr = run(config)
                store.write_run(run_dir, config.to_dict(), store.jsonable(res), arr)
                stored = store.read_run(run_dir)
            results[name], arrays[name] = stored[1], stored[2]
    except TrustError as err:
        print(f"paper_figs: error: {err}", file=sys.stderr)
        return 2

    pick = lambda prefix: [results[f"{prefix}_L{d}"] for d in DEPTHS]  # noqa: E731
    grad_rows = pick("breakdown_gradient") + [results["breakdown_gradient_L16_residual"]]
    figs = plots.save(plots.breakdown_figure(
        {"fixed-gradient slice −g/‖g‖": grad_rows, "random direction": pick("breakdown_random")},
        "Gradient breakdown at initialisation on digits (relu MLP, biases, cross-entropy); "
        "every tensor moved by η·‖W_l‖"), out / "breakdown")
    figs += plots.save(plots.theorem_figure(pick("exact"), pick("opnorm")), out / "theorems")
    figs += plots.save(plots.theorem1_figure(results["theorem1"], arrays["theorem1"]), out / "theorem1")
    figs += plots.save(plots.constants_figure(results["constants"]), out / "constants")
    figs += plots.save(plots.descent_figure(results["descent"]), out / "descent")
    figs += plots.save(plots.cosgamma_figure(results["cosgamma"]), out / "cosgamma")

    rows = (report.breakdown_rows(grad_rows, pick("breakdown_random")) + report.theorem_rows(pick("exact"), pick("opnorm"))
            + report.theorem1_rows(results["theorem1"]) + report.constants_rows(results["constants"])
            + report.descent_rows(results["descent"]) + report.cosgamma_rows(results["cosgamma"]))
    mode = "quick" if args.quick else "full"
    text = report.markdown(rows, f"# trust — report ({mode} run, seed {args.seed})\n\n"
                                 "Generated by `python paper_figs.py" + (" --quick" if args.quick else "") + "` from the run "
                                 "directories in `runs/`. Theorems must hold on every case; assumptions are measured "
                                 "(violation factor = measured / bound).\n\n"
                                 + "\n\n".join(f"![{n}]({n}.png)" for n in
                                                 ("breakdown", "theorems", "theorem1", "constants", "descent", "cosgamma")))
    (out / "REPORT.md").write_text(text + proof_checks_section())
    print(f"wrote {', '.join(str(p) for p in figs)} and {out / 'REPORT.md'} in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
