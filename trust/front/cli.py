"""``trust`` command line: thin — one subcommand per registered experiment, its flags generated from the
experiment's ``Config`` fields; it runs (or reuses) the experiment and prints where the results went.

User errors (bad values, NaN input, corrupt run directories) print one line ``trust: error: …`` and
exit with status 2; no traceback. Anything else is a bug in trust: its traceback, then one line saying so and
where to report it, exit status 1. ``--dry-run`` checks a command without running it: the values, the data
files, the run directory, and what a study would compute or reuse.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
import typing
from dataclasses import MISSING, fields, replace
from pathlib import Path

from trust import __version__
from trust.base import parallel
from trust.base.errors import REPORT_BUG, TrustError
from trust.core import data
from trust.experiments import REGISTRY
from trust.experiments.shared import own_model, runner
from trust.experiments.shared.runner import Experiment
from trust.views import VIEWS, plots


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise TrustError(f"{self.prog}: {message}")


def _flag_options(f, hint) -> dict:
    """argparse options for one config field: its type (a tuple takes one or more values), default and help."""
    meta = f.metadata
    text = meta.get("help", "")
    if meta.get("choices"):
        text += f" (one of: {', '.join(map(str, meta['choices']))})"
    help_text = f"{text} [default: {f.default}]".replace("%", "%%")  # argparse %-formats help strings
    options: dict = {"dest": f.name, "default": f.default, "help": help_text}
    if hint is bool:
        return {**options, "action": argparse.BooleanOptionalAction}
    if typing.get_origin(hint) is tuple:
        return {**options, "type": typing.get_args(hint)[0], "nargs": "+" if f.default else "*"}
    return {**options, "type": hint}


def _add_experiment(sub, leaf: str, experiment: Experiment, name: str) -> None:
    doc = sys.modules[experiment.run.__module__].__doc__ or name
    p = sub.add_parser(leaf, help=experiment.help, description=doc.split("\n\n")[0])
    hints = typing.get_type_hints(experiment.config)
    for f in fields(experiment.config):
        assert f.default is not MISSING, f"config field {f.name} needs a default to be a CLI flag"
        p.add_argument(f.metadata.get("flag") or "--" + f.name.replace("_", "-"), **_flag_options(f, hints[f.name]))
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--out", help="run directory: config.json, results.json, arrays.npz and the figure")
    p.add_argument(
        "--dry-run", action="store_true", help="check the values, data files and --out, say what would run, stop"
    )
    p.set_defaults(experiment=name)


def _writable(path: Path) -> bool:
    """Whether ``path`` could be created or written: a probe file can be made (and is removed at once) in its
    nearest existing ancestor — permission bits alone say nothing to root or on a read-only mount."""
    while not path.exists():
        path = path.parent
    try:
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def dry_run(name: str, config, out: str | None) -> str:
    """What ``trust <name>`` would do, checked without running anything: the data set loads (its files exist
    and are sound), ``--out`` is writable or already holds this very run, and how many cells a study would
    compute or reuse. Bad input raises :class:`TrustError`, as the real run would — but before an hour of work."""
    lines = [f"dry run of `trust {name}`: the values are valid"]
    if getattr(config, "model_file", ""):
        lines.append(own_model.check(config.model_file, config.architecture, config.image))
    dataset = getattr(config, "dataset", None)
    if dataset is not None:
        import jax

        ds = data.load(dataset, jax.random.key(0), path=getattr(config, "data_dir", "") or None)
        lines.append(f"data {dataset}: {ds.x_train.shape[0]} training and {ds.x_test.shape[0]} test examples")
    experiment = REGISTRY[name]
    if out is None:
        lines.append("nothing would be saved (no --out)")
        return "\n".join(lines)
    run_dir = Path(out)
    if runner.finished(run_dir, config) is not None:  # also refuses a file, or a run of another config
        lines.append(f"{run_dir} holds this finished run: it would be reused")
        return "\n".join(lines)
    if not _writable(run_dir):
        raise TrustError(f"cannot write the run directory {run_dir}; choose a writable --out")
    if experiment.study is not None:
        cells = experiment.study.cells(config, {})
        done = [n for n, c in cells.items() if runner.finished(run_dir / "cells" / n, c) is not None]
        lines.append(
            f"{len(cells)} cells in the first round ({len(done)} finished in {run_dir / 'cells'} would be reused)"
        )
    lines.append(f"results would go to {run_dir}")
    return "\n".join(lines)


def run_command(name: str, args: argparse.Namespace) -> None:
    """Run (or reuse) one experiment from parsed arguments; print its summary, or its JSON with ``--json``."""
    experiment = REGISTRY[name]
    config = experiment.config.from_dict(vars(args))
    if getattr(config, "model_file", ""):  # the file's content is part of the run's identity
        config = replace(config, model_sha256=own_model.digest(config.model_file))
    if args.dry_run:
        print(dry_run(name, config, args.out))
        return
    result, reused = runner.run_or_reuse(args.out, config, experiment)
    where = (
        (f"reused the finished run in {args.out}" if reused else f"results in {args.out}")
        if args.out
        else "not saved (use --out DIR)"
    )
    if args.out and parallel.is_lead():
        stem = name.replace(" ", "_")
        figures = VIEWS[name].figures({stem: result})
        paths = [p for s, fig in figures.items() for p in plots.save(fig, Path(args.out) / s)]
        if paths:
            where += "; figure " + ", ".join(str(p) for p in paths)
    if args.json:
        print(json.dumps({"config": config.to_dict(), **result.to_json()}, indent=2, allow_nan=False))
    else:
        print(VIEWS[name].summary(result))
        print(where)


def parser() -> argparse.ArgumentParser:
    """One subcommand per registered experiment; a two-word name (``study breakdown``) is a sub-subcommand."""
    p = _Parser(prog="trust", description="Deep relative trust, Fromage and Madam: falsifiable checks.")
    p.add_argument("--version", action="version", version=f"trust {__version__}")
    parallel.add_arguments(p)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, experiment in REGISTRY.items():
        group, _, leaf = name.rpartition(" ")
        if group and group not in groups:
            groups[group] = sub.add_parser(group, help=f"{group}: {', '.join(_leaves(group))}").add_subparsers(
                dest=group, required=True, parser_class=_Parser
            )
        _add_experiment(groups[group] if group else sub, leaf, experiment, name)
    return p


def _leaves(group: str) -> list[str]:
    return [n.rpartition(" ")[2] for n in REGISTRY if n.rpartition(" ")[0] == group]


def main(argv=None) -> int:
    try:
        args = parser().parse_args(argv)
        parallel.join_from(args)
        run_command(args.experiment, args)
    except TrustError as err:
        print(f"trust: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("trust: interrupted (finished cells and runs are kept; rerun the command to go on)", file=sys.stderr)
        return 130
    except Exception as err:  # not the user's fault: say so, with the traceback a report needs
        traceback.print_exc()
        print(f"trust: internal error: {err.__class__.__name__}: {err}; {REPORT_BUG}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
