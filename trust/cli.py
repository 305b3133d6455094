"""``trust`` command line: thin — parses, runs an experiment, prints where the results went.

User errors (bad values, NaN input, corrupt run directories) print one line ``trust: error: …`` and
exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from trust import data, nets, perturb, plots, report, store, train
from trust.errors import TrustError
from trust.experiments import breakdown, constants, cosgamma, descent, theorem1


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
    """Reuse a finished run of the same config in ``--out``, or compute, store and return
    ``(results, arrays, where)``."""
    stored = store.finished_run(args.out, config.to_dict()) if args.out else None
    if stored:
        return stored[1], stored[2], f"reused the finished run in {args.out}"
    results, arrays = compute(config)
    results = json.loads(store.dumps(results))  # exactly what a stored run reads back
    if args.out:
        store.write_run(args.out, config.to_dict(), results, arrays)
    return results, arrays, (f"results in {args.out}" if args.out else "not saved (use --out DIR)")


def _run_and_print(args, config, compute, show, figure=None):
    """Run (or reuse) ``config``; print the result as JSON with ``--json``, else ``show`` it in words.
    With ``--out``, ``figure(results, arrays) -> (fig, name)`` is drawn into the run directory."""
    results, arrays, where = _run_or_reuse(args, config, compute)
    if figure and args.out:
        fig, name = figure(results, arrays)
        where += "; figure " + ", ".join(str(p) for p in plots.save(fig, Path(args.out) / name))
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


def _common(p, out_help="run directory: config.json, results.json, arrays.npz and the figure"):
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--out", help=out_help)


def _add_theorem1(sub):
    d = theorem1.Theorem1Config()
    p = sub.add_parser("theorem1", help="Theorem 1 on random square leaky-relu nets: zero violations and tightness",
                       description=theorem1.__doc__.split("\n\n")[0])
    p.add_argument("--n-cases", type=_positive_int, default=d.n_cases, help="random nets (each with its own ΔW)")
    p.add_argument("--n-inputs", type=_positive_int, default=d.n_inputs, help="random inputs per net")
    p.add_argument("--min-width", type=_positive_int, default=d.min_width)
    p.add_argument("--max-width", type=_positive_int, default=d.max_width)
    p.add_argument("--min-depth", type=_positive_int, default=d.min_depth)
    p.add_argument("--max-depth", type=_positive_int, default=d.max_depth)
    p.add_argument("--slopes", type=_finite_float, nargs="+", default=list(d.slopes), help="leaky relu slopes s in (0, 1]")
    p.add_argument("--max-relative-size", type=_finite_float, default=d.max_relative_size)
    _common(p)
    p.set_defaults(func=lambda args: _run_and_print(
        args, theorem1.Theorem1Config.from_dict(vars(args)), theorem1.run, _print_theorem1,
        lambda r, a: (plots.theorem1_figure(r, a), "theorem1")))


def _print_theorem1(config, results):
    print(f"{results['n_cases']} random square leaky-relu nets, {results['n_evaluations']} inputs; measured/bound:")
    print(f"{'bound':>10} {'kind':>24} {'violations':>10} {'median':>10} {'q95':>10} {'max':>10}")
    for name, b in results["bounds"].items():
        q = b["ratio_quantiles"]
        print(f"{name:>10} {b['kind']:>24} {b['violations']:>10} {q['median']:10.3g} {q['q95']:10.3g} {q['max']:10.3g}")


def _add_constants(sub):
    d = constants.ConstantsConfig()
    p = sub.add_parser("constants", help="α, β, κ per layer, C = (κ²β/α)^L, the effective constant C_eff, cos θ, cos γ",
                       description=constants.__doc__.split("\n\n")[0])
    p.add_argument("--depth", dest="depths", type=_positive_int, nargs="+", default=list(d.depths),
                   help="one or more depths (weight matrices); with several, ln C_eff is fitted against L")
    p.add_argument("--width", type=_positive_int, default=d.width)
    p.add_argument("--perturb", choices=constants.DIRECTIONS, default=d.perturb)
    p.add_argument("--epochs", type=_finite_float, nargs="+", default=list(d.epochs),
                   help="measure after these training epochs (0: initialisation)")
    p.add_argument("--optimizer", choices=train.OPTIMIZERS, default=d.optimizer, help="trains to the --epochs")
    p.add_argument("--eta-max", type=_finite_float, default=d.eta_max)
    p.add_argument("--eta-steps", type=_positive_int, default=d.eta_steps)
    p.add_argument("--n-examples", type=int, default=d.n_examples, help="0: the whole training set")
    _common(p)
    p.set_defaults(func=lambda args: _run_and_print(
        args, constants.ConstantsConfig.from_dict(vars(args)), constants.run, _print_constants,
        lambda r, a: (plots.constants_figure(r), "constants")))


def _fmt(x, spec=".3g"):
    return "inf" if x is None else format(x, spec)


def _print_constants(config, results):
    for row in results["rows"]:
        lay = row["layers"]
        print(f"L = {row['depth']}, epoch {row['epoch']:g}: loss {row['loss']:.4f}")
        print(f"  {'layer':>6} {'alpha':>7} {'beta':>7} {'kappa(W)':>9} {'kappa(dW)':>9} {'rho':>7} {'cos th':>7} "
              f"{'cos gam':>7} {'C_eff g':>8}")
        for i, name in enumerate(lay["name"]):
            print(f"  {name:>6} {lay['alpha'][i]:7.3f} {lay['beta'][i]:7.3f} {_fmt(lay['kappa_w'][i]):>9} "
                  f"{_fmt(lay['kappa_dw'][i]):>9} {lay['op_over_frobenius'][i]:7.3f} {lay['cos_theta'][i]:7.4f} "
                  f"{lay['cos_gamma'][i]:7.4f} {lay['c_eff_gradient'][i]:8.3g}")
        print(f"  log10 C = {_fmt(row['log10_C'])} (κ(ΔW) as measured), log10 ∏c_l = {_fmt(row['log10_C_layers'])}, "
              f"with ρ for κ(ΔW): {_fmt(row['log10_C_layers_op'])}")
        print(f"  C_eff: function {row['C_eff_function']:.3g}, gradient worst layer {row['C_eff_gradient']:.3g}, "
              f"layer 1 {row['C_eff_gradient_first']:.3g}; Lemma-2 η: C=1 {row['thresholds']['lemma2']:.3g}, "
              f"C_eff {row['thresholds']['lemma2_C_eff']:.3g}")
    for epoch, fit in results["growth"].items():
        if fit["C_eff_gradient"]:
            print(f"epoch {epoch}: C_eff (gradient) grows ×{fit['C_eff_gradient']['factor_per_layer']:.3f} per layer, "
                  f"function ×{fit['C_eff_function']['factor_per_layer']:.3f}")


def _add_descent(sub):
    d = descent.DescentConfig()
    p = sub.add_parser("descent", help="largest loss-decreasing η along Fromage and Madam steps vs Lemma 1/2 thresholds",
                       description=descent.__doc__.split("\n\n")[0])
    p.add_argument("--depths", type=_positive_int, nargs="+", default=list(d.depths))
    p.add_argument("--width", type=_positive_int, default=d.width)
    p.add_argument("--steps", choices=descent.STEPS, nargs="+", default=list(d.steps))
    p.add_argument("--epochs", type=_finite_float, nargs="+", default=list(d.epochs),
                   help="checkpoints of training with the step's own optimiser (0: initialisation)")
    p.add_argument("--eta-min", type=_finite_float, default=d.eta_min)
    p.add_argument("--eta-max", type=_finite_float, default=d.eta_max)
    p.add_argument("--eta-steps", type=_positive_int, default=d.eta_steps)
    p.add_argument("--c-eff-eta-min", type=_finite_float, default=d.c_eff_eta_min, help="C_eff is fitted on grid η ≥ this")
    p.add_argument("--c-eff-eta-max", type=_finite_float, default=d.c_eff_eta_max, help="… and ≤ this")
    p.add_argument("--n-examples", type=int, default=d.n_examples, help="0: the whole training set")
    _common(p)
    p.set_defaults(func=lambda args: _run_and_print(
        args, descent.DescentConfig.from_dict(vars(args)), descent.run, _print_descent,
        lambda r, a: (plots.descent_figure(r), "descent")))


def _print_descent(config, results):
    print(f"{'step':>8} {'L':>3} {'epoch':>5} {'loss':>7} {'descent η':>10} {'Lemma 1 η':>10} {'Lemma 2':>8} "
          f"{'cos θ':>6} {'C_eff':>7} {'L2, C_eff':>9}")
    for r in results["rows"]:
        mark = ">" if r["censored"] else " "
        print(f"{r['step']:>8} {r['depth']:3d} {r['epoch']:5g} {r['loss']:7.4f} {mark}{r['eta_descent']:9.4g} "
              f"{r['eta_lemma1']:10.4g} {r['lemma2']:8.4g} {r['cos_theta_min']:6.3f} {r['C_eff']:7.3g} {r['lemma2_C_eff']:9.3g}")
    s = results["summary"]
    print(f"Lemma 1 (a theorem): certified η ≤ measured descent η at {s['n_points'] - s['lemma1_violations']} of "
          f"{s['n_points']} points; '>' marks a loss still falling at the grid's end")


def _add_cosgamma(sub):
    d = cosgamma.CosGammaConfig()
    p = sub.add_parser("cosgamma", help="Madam's cos γ: Monte Carlo (2/π, 3/4) and through Madam/SGD training vs π/4",
                       description=cosgamma.__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=_positive_int, nargs="+", default=list(d.sizes))
    p.add_argument("--trials", type=_positive_int, default=d.trials)
    p.add_argument("--optimizers", choices=train.OPTIMIZERS, nargs="+", default=list(d.optimizers))
    p.add_argument("--depth", type=_positive_int, default=d.depth)
    p.add_argument("--width", type=_positive_int, default=d.width)
    p.add_argument("--epochs", type=_finite_float, nargs="+", default=list(d.epochs))
    p.add_argument("--seeds", type=_positive_int, default=d.seeds)
    _common(p)
    p.set_defaults(func=lambda args: _run_and_print(
        args, cosgamma.CosGammaConfig.from_dict(vars(args)), cosgamma.run, _print_cosgamma,
        lambda r, a: (plots.cosgamma_figure(r), "cosgamma")))


def _print_cosgamma(config, results):
    for kind, rows in results["monte_carlo"].items():
        cells = ", ".join(f"n={r['size']}: {report.plus_minus(r, 4)}" for r in rows)
        print(f"Monte Carlo {kind} (limit {results['limits'][kind]:.4f}): {cells}")
    for opt, tr in results["training"].items():
        cells = ", ".join(f"ep {e:g}: {report.plus_minus(m)}" for e, m in zip(tr["epochs"], tr["mean"]))
        print(f"{opt} (cos π/4 = {results['paper']:.3f}): {cells}")


def main(argv=None) -> int:
    parser = _Parser(prog="trust", description="Deep relative trust, Fromage and Madam: falsifiable checks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_breakdown(sub)
    _add_train(sub)
    _add_theorem1(sub)
    _add_constants(sub)
    _add_descent(sub)
    _add_cosgamma(sub)
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
