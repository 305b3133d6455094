"""Regenerate every figure and figures/REPORT.md from the bundled data (digits, MNIST-5k).

    python paper_figs.py            # full: the paper's scale that fits the README's budget (see README)
    python paper_figs.py --quick    # narrower nets, fewer seeds and grid points (the preview), PNG only
    python paper_figs.py --long study_depth_2400   # one long job (README, Long jobs): its run directory only

A long job's run directory is ``<out>/long/<name>``: its config.json, results.json and arrays.npz are committed
(small), its cells/ are not (they only let an interrupted job resume).

Every registered experiment contributes its runs (``paper_configs``), each stored as a run directory under
``<out>/runs/<name>`` (config.json, results.json, arrays.npz; a rerun reuses finished runs), then its figures
and its rows of the report, drawn from the stored results only.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from tqdm import tqdm

import proofs_checks
from trust.base import parallel, store
from trust.base.errors import TrustError
from trust.experiments import REGISTRY, load
from trust.experiments.shared import optimisers_table, runner
from trust.views import VIEWS, plots, report


def proof_checks_section() -> str:
    """The SymPy proof-check table (``python -m proofs_checks``), appended to REPORT.md."""
    return "\n## Proof checks (SymPy)\n\n" + proofs_checks.markdown_table(proofs_checks.run_all())


def stored_for(run_dir: Path, config) -> bool:
    """Whether ``run_dir`` holds a finished run of exactly ``config`` (a run of another config: no, and said)."""
    try:
        return runner.finished(run_dir, config) is not None
    except TrustError as err:
        print(f"paper_figs: {run_dir.name} not drawn: {err}", file=sys.stderr)
        return False


def set_aside_if_changed(run_dir: Path, config) -> None:
    """A stored run of this script whose config the code has since changed is moved to ``<name>.old`` (replacing an
    older one) and recomputed: the script's runs follow its configs, and nothing is deleted unseen."""
    try:
        runner.finished(run_dir, config)
    except TrustError as err:
        old = run_dir.with_name(run_dir.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        run_dir.rename(old)
        print(
            f"paper_figs: {run_dir.name}: its config changed ({err}); moved to {old.name}, recomputing", file=sys.stderr
        )


def long_jobs(seed: int) -> dict:
    """name → (experiment, name, config) of every long job (``Experiment.long_configs``)."""
    return {
        name: (experiment, name, config)
        for experiment in REGISTRY.values()
        if experiment.long_configs
        for name, config in experiment.long_configs(seed).items()
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller nets and grids (the preview; its cost is in the README)"
    )
    parser.add_argument("--out", default="figures", help="where figures, REPORT.md and runs/ go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--long", nargs="+", default=(), choices=sorted(long_jobs(0)), metavar="JOB",
        help=f"compute these long jobs' run directories only (one of: {', '.join(sorted(long_jobs(0)))})",
    )  # fmt: skip
    parallel.add_arguments(parser)
    args = parser.parse_args(argv)
    out = Path(args.out)
    start = time.time()
    jobs = [
        (experiment, name, config)
        for experiment in REGISTRY.values()
        if experiment.paper_configs
        for name, config in experiment.paper_configs(args.quick, args.seed).items()
    ]
    long = long_jobs(args.seed)
    if args.long:
        jobs = [long[name] for name in args.long]
    try:
        parallel.join_from(args)
        where = {name: out / ("long" if args.long else "runs") / name for _, name, _ in jobs}
        for _, name, config in jobs:
            set_aside_if_changed(where[name], config)
        results = {
            name: runner.run_or_reuse(where[name], config, experiment)[0]
            for experiment, name, config in tqdm(jobs, desc="experiments", unit="run")
        }
        if args.long:
            print(f"long jobs {', '.join(args.long)} stored in {out / 'long'} in {time.time() - start:.0f} s")
            return 0
        if not args.quick:  # the long jobs already stored for their current config: drawn, never computed here
            results.update({name: load(out / "long" / name) for name, (_, _, config) in long.items()
                            if stored_for(out / "long" / name, config)})  # fmt: skip
    except TrustError as err:
        print(f"paper_figs: error: {err}", file=sys.stderr)
        return 2
    if not parallel.is_lead():  # process 0 draws the figures and writes the report
        return 0

    figures, rows = {}, []
    for name, experiment in REGISTRY.items():
        if not experiment.paper_configs:
            continue
        named = [
            *experiment.paper_configs(args.quick, args.seed),
            *(n for n, job in long.items() if job[0] is experiment),
        ]
        mine = {run: results[run] for run in named if run in results}
        figures.update(VIEWS[name].figures(mine))
        rows += VIEWS[name].rows(mine)
    # Quick runs are previews: PNG only (the PDFs would cost a noticeable part of the preview's budget).
    formats = ("png",) if args.quick else ("png", "pdf")
    paths = [p for stem, fig in figures.items() for p in plots.save(fig, out / stem, formats)]
    mode = "quick" if args.quick else "full"
    text = report.markdown(
        rows,
        f"# trust — report ({mode} run, seed {args.seed})\n\n"
        "Generated by `python paper_figs.py" + (" --quick" if args.quick else "") + "` from the run "
        "directories in `runs/`. Theorems must hold on every case; assumptions are measured "
        "(violation factor = measured / bound).\n\n" + "\n\n".join(f"![{n}]({n}.png)" for n in figures),
    )
    optimisers = out / "optimisers.json"  # scripts/optimisers.py's table, where it was run
    if optimisers.exists():
        text += report.optimisers_section(optimisers_table.summarise(store.read_json(optimisers)))
    store.write_text(out / "REPORT.md", text + report.left_out_section() + "\n" + proof_checks_section())
    print(f"wrote {', '.join(str(p) for p in paths)} and {out / 'REPORT.md'} in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
