"""``trust`` command line: thin — parses, runs an experiment, prints where the results went.

User errors (bad values, NaN input, corrupt run directories) print one line ``trust: error: …`` and
exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from trust import data, nets, perturb, store, train
from trust.errors import TrustError
from trust.experiments import breakdown


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise TrustError(f"{self.prog}: {message}")


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def _finite_float(text):
    value = float(text)
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def _add_breakdown(sub):
    d = breakdown.BreakdownConfig()
    p = sub.add_parser("breakdown", help="relative function/gradient distance along a perturbation vs the bounds",
                       description=breakdown.__doc__.split("\n\n")[0])
    p.add_argument("--depth", type=_positive_int, default=d.depth, help="L, the number of weight matrices")
    p.add_argument("--width", type=_positive_int, default=d.width, help="hidden width")
    p.add_argument("--net", choices=breakdown.NET_KINDS, default=d.net,
                   help="mlp: biases + linear last layer; residual: h + φ(Wh + b) hidden layers; theorem1: no biases, φ everywhere")
    p.add_argument("--activation", choices=nets.ACTIVATIONS, default=d.activation)
    p.add_argument("--slope", type=_finite_float, default=d.slope, help="leaky relu negative slope")
    p.add_argument("--init", choices=nets.INITS, default=d.init)
    p.add_argument("--perturb", choices=perturb.KINDS, default=d.perturb,
                   help="gradient: −g/‖g‖ per tensor (paper Fig. 1); random; scaled: ΔW = ηW; single: one layer along −g; madam: −|W|⊙sign g")
    p.add_argument("--layer", type=_positive_int, default=d.layer, help="the layer moved by --perturb single")
    p.add_argument("--eta-max", type=_finite_float, default=d.eta_max)
    p.add_argument("--eta-steps", type=_positive_int, default=d.eta_steps)
    p.add_argument("--dataset", choices=("digits", "synthetic"), default=d.dataset)  # breakdown: built-ins
    p.add_argument("--n-examples", type=int, default=d.n_examples, help="0: the whole training set")
    p.add_argument("--loss", choices=("xent", "mse"), default=d.loss)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--x64", action="store_true", help="compute in float64")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--out", help="run directory: config.json, results.json, arrays.npz")
    p.set_defaults(func=_breakdown)


def _print_table(results):
    eta = np.asarray(results["eta"], dtype=float)
    first = results["weight_names"][0]
    grads = np.array([results["gradient"][n] for n in results["weight_names"]], dtype=float)
    drt = np.asarray(results["bounds"]["drt"], dtype=float)
    net = results["net"]
    print(f"net {net['kind']} widths {net['widths']} (L = {net['depth']}), {net['n_examples']} examples")
    print(f"{'eta':>7} {'loss':>9} {'f frob':>10} {'f max':>10} {'g ' + first:>10} {'g max':>10} {'DRT':>10} {'gmax/DRT':>9}")
    for k in sorted({int(np.argmin(np.abs(eta - e))) for e in (0, 0.001, 0.01, 0.025, 0.05, eta[-1])}):
        ratio = grads[:, k].max() / drt[k] if drt[k] > 0 else float("nan")
        print(f"{eta[k]:7.4f} {results['loss'][k]:9.4f} {results['function']['frob'][k]:10.3e} "
              f"{results['function']['max'][k]:10.3e} {grads[0, k]:10.3e} {grads[:, k].max():10.3e} {drt[k]:10.3e} {ratio:9.3g}")
    s = results["summary"]
    print(f"at eta = {s['eta_probe']:.3f}: gradient/DRT first layer {s['gradient_first_over_drt_at_probe']:.3g}, "
          f"worst layer {s['gradient_max_over_drt_at_probe']:.3g}; worst over the grid {s['gradient_max_over_drt_max']:.3g}")
    if "operator_norm_max_ratio" in s:
        print(f"operator-norm bound (a theorem): max measured/bound {s['operator_norm_max_ratio']:.3g}")


def _run_or_reuse(args, config, compute):
    """Reuse a finished run of the same config in ``--out``, or compute, store and return results."""
    stored = store.finished_run(args.out, config.to_dict()) if args.out else None
    if stored:
        return stored[1], f"reused the finished run in {args.out}"
    results, arrays = compute(config)
    results = store.jsonable(results)
    if args.out:
        store.write_run(args.out, config.to_dict(), results, arrays)
    return results, (f"results in {args.out}" if args.out else "not saved (use --out DIR)")


def _run_and_print(args, config, compute, show):
    """Run (or reuse) ``config``; print the result as JSON with ``--json``, else ``show`` it in words."""
    results, where = _run_or_reuse(args, config, compute)
    if args.json:
        print(store.dumps({"config": config.to_dict(), **results}))
    else:
        show(config, results)
        print(where)


def _breakdown(args):
    _run_and_print(args, breakdown.BreakdownConfig.from_dict(vars(args)), breakdown.run,
                   lambda config, results: _print_table(results))


def _add_train(sub):
    d = train.TrainConfig()
    p = sub.add_parser("train", help="train an MLP with Fromage, LARS, Madam, low-precision Madam, SGD or Adam",
                       description=train.__doc__.split("\n\n")[0])
    p.add_argument("--optimizer", choices=train.OPTIMIZERS, default=d.optimizer)
    p.add_argument("--lr", dest="learning_rate", type=_finite_float, default=d.learning_rate,
                   help="0: the optimiser's default (madam_lns: lr_factor)")
    p.add_argument("--depth", type=_positive_int, default=d.depth)
    p.add_argument("--width", type=_positive_int, default=d.width)
    p.add_argument("--residual", action="store_true")
    p.add_argument("--epochs", type=_positive_int, default=d.epochs)
    p.add_argument("--batch-size", type=_positive_int, default=d.batch_size)
    p.add_argument("--lr-decay", type=_finite_float, default=d.lr_decay, help="learning-rate factor per epoch")
    p.add_argument("--dataset", choices=data.DATASETS, default=d.dataset)
    p.add_argument("--data-path", default=d.data_path, help="directory of the MNIST IDX / CIFAR-10 binary files")
    p.add_argument("--checkpoints", type=_finite_float, nargs="+", default=list(d.checkpoints),
                   help="epochs (fractions allowed) at which parameters are kept; the end is always kept")
    p.add_argument("--checkpoint-steps", type=int, nargs="+", default=list(d.checkpoint_steps),
                   help="optimiser steps at which parameters are kept")
    p.add_argument("--bias-std", type=_finite_float, default=d.bias_std)
    p.add_argument("--p-scale", type=_finite_float, default=d.p_scale)
    p.add_argument("--bits", type=_positive_int, default=d.bits)
    p.add_argument("--base-lr", type=_finite_float, default=d.base_lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--out", help="run directory: config.json, results.json, arrays.npz (checkpoints)")
    p.set_defaults(func=_train)


def _print_training(config, results):
    c = results["curves"]
    print(f"{config.optimizer} (lr {config.lr}) depth {config.depth} width {config.width} on {config.dataset}, "
          f"{config.epochs} epochs: train acc {c['train_acc'][-1]:.4f}, test acc {c['test_acc'][-1]:.4f}, "
          f"test loss {c['test_loss'][-1]:.4f}")


def _train(args):
    _run_and_print(args, train.TrainConfig.from_dict(vars(args)), train.run, _print_training)


def main(argv=None) -> int:
    parser = _Parser(prog="trust", description="Deep relative trust, Fromage and Madam: falsifiable checks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_breakdown(sub)
    _add_train(sub)
    try:
        args = parser.parse_args(argv)
        args.func(args)
    except TrustError as err:
        print(f"trust: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("trust: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
