"""Views of ``trust study breakdown``: the CLI summary and the report rows (docs/theory.md §5.1); its figures are
in :mod:`~trust.views.study_breakdown_figures`. Every number is read from the study's stored summaries
(:class:`~trust.experiments.study_breakdown.NetSummary`, its verdicts); nothing here computes a statistic."""

from __future__ import annotations

import numpy as np

from trust.experiments.shared.paper import STATISTICS
from trust.experiments.study_breakdown import PROBES, NetSummary, StudyBreakdownResult, SweepPoint
from trust.experiments.study_breakdown_summary import BoundClaims, WorstPoint
from trust.views import report, study_breakdown_figures
from trust.views.report import Row, violation_factor
from trust.views.study_breakdown_figures import PROBE_005, net_name, nets_text


def _left_out(n: int) -> str:
    return f"; {report.count(n, 'flagged seed')} left out of the verdict (rule flag)" if n else ""


def _gradient_context(net: NetSummary, k: int) -> str:
    """At checkpoint ``k``: layer 1's ‖g₁‖, the companion ‖Δg₁‖/‖g₁(init)‖ at η=0.05 and the seeds rule "flag"
    marks — what a relative change that divides by ‖g₁‖ needs beside it."""
    if net.gradient_norm_first is None:
        return "‖g₁‖ not stored (cells of an older run)"
    flags = [f"{int(n[k])} at {name}" for n, name in ((net.zero_loss, "zero loss"), (net.at_chance, "chance")) if n[k]]
    return (
        f"‖g₁‖ {report.spread(net.gradient_norm_first, (0,))} at initialisation → "
        f"{report.spread(net.gradient_norm_first, (k,))}, ‖Δg₁‖/‖g₁(init)‖ "
        f"{report.spread(net.probe_initial, (k, PROBE_005))}" + (f", flagged: {', '.join(flags)}" if flags else "")
    )


def _depth_rows(result: StudyBreakdownResult) -> list[Row]:
    """Does depth 16 (the paper's) and the deepest net break down faster than depth 2 at initialisation (paper
    Figure 1; the same nets for every optimiser: one row) and after training, and faster after training than at
    initialisation? With each net's final training accuracy: a net that did not train did not move."""
    c, rows, initial = result.config, [], set()
    nets = _nets_suffix(c, " (gelu MLPs, no relu kinks)".replace("gelu", c.activation))
    at = (lambda d: f"B={d}") if c.model == "transformer" else (lambda d: f"depth {d}")
    for claim in result.depth_claims or ():
        optimizer, shallow, deep = claim.optimizer, claim.shallow, claim.deep
        s, d = result.net(optimizer, shallow), result.net(optimizer, deep)
        assert s is not None and d is not None
        if (shallow, deep) not in initial:
            initial.add((shallow, deep))
            rows.append(
                Row(
                    f"Paper: breakdown is much milder at {at(shallow)} than at {at(deep)} (at initialisation)" + nets,
                    "claim",
                    f"layer-1 gradient change at η=0.05, median [range] over {report.count(c.seeds, 'seed')}: "
                    f"{net_name(c, shallow)}: {report.spread(s.probe, (0, PROBE_005))}, "
                    f"{net_name(c, deep)}: {report.spread(d.probe, (0, PROBE_005))}",
                    report.compare_text(claim.initial),
                    (claim.initial,),
                )
            )
        rows.append(
            Row(
                f"Paper: {at(deep)} breaks down faster than {at(shallow)} — {optimizer}, after training" + nets,
                "claim",
                f"layer-1 gradient change at η=0.05, median [range] over {report.count(c.seeds, 'seed')}: "
                f"{net_name(c, shallow)}: {report.spread(s.probe, (-1, PROBE_005))}, "
                f"{net_name(c, deep)}: {report.spread(d.probe, (-1, PROBE_005))} (at initialisation "
                f"{report.spread(s.probe, (0, PROBE_005))} and {report.spread(d.probe, (0, PROBE_005))}); final "
                f"training accuracy {net_name(c, shallow)}: {report.spread(s.final_train_acc)}, "
                f"{net_name(c, deep)}: {report.spread(d.final_train_acc)} ({_alike(claim)}); at the end "
                f"{net_name(c, shallow)}: {_gradient_context(s, -1)}; "
                f"{net_name(c, deep)}: {_gradient_context(d, -1)}"
                + _left_out(claim.flagged_shallow + claim.flagged_deep),
                report.compare_text(claim.separation),
                (claim.separation,),
            )
        )
        rows.append(
            Row(
                f"Breakdown grows with training at {at(deep)} — {optimizer}" + nets,
                "claim",
                f"layer-1 gradient change at η=0.05: initialisation {report.spread(d.probe, (0, PROBE_005))}, end "
                f"{report.spread(d.probe, (-1, PROBE_005))}; at the end {_gradient_context(d, -1)}, training "
                f"accuracy {report.spread(d.final_train_acc)}" + _left_out(claim.flagged_deep),
                report.compare_text(claim.growth, no="no, it shrinks"),
                (claim.growth,),
            )
        )
    return rows


def _nets_suffix(c, other_activation: str) -> str:
    """A row title's note on its nets: none for the paper's relu MLPs, ``other_activation`` for gelu or softplus
    ones, and for transformers what they are (a model the paper never had; layer 1 is the token embedding)."""
    if c.model == "transformer":
        return f" ({nets_text(c)}, width {c.width}, not in the paper; layer 1: the token embedding)"
    return "" if c.activation == "relu" else other_activation


def _alike(claim) -> str:
    """The label of a depth ordering after training: whether its two nets ended trained alike (rule "trained
    alike", docs/theory.md §9)."""
    if claim.trained_alike:
        return f"trained alike: medians {claim.accuracy_gap:.2f} apart"
    return f"not trained alike: medians {claim.accuracy_gap:.2f} apart, a trained net against a less trained one"


def _exponent_rows(result: StudyBreakdownResult) -> list[Row]:
    """How fast the breakdown grows with depth: the factor per layer e^b with its 95 % interval over seeds."""
    rows: list[Row] = []
    by_optimizer: dict[str, list] = {}
    for e in result.depth_exponents or ():
        by_optimizer.setdefault(e.optimizer, []).append(e)
    c = result.config
    nets = _nets_suffix(c, f" ({c.activation} MLPs)")
    unit, x = ("block", "B") if c.model == "transformer" else ("layer", "L")
    for optimizer, exps in by_optimizer.items():
        parts = []
        for e in exps:
            b, h = e.slope.mean, e.slope.half_width
            interval = f" [95 % CI ×{np.exp(b - h):.3g}–×{np.exp(b + h):.3g}]" if np.isfinite(h) else " (one seed)"
            seeds = report.count(e.slope.n, "seed")
            parts.append(f"{e.checkpoint}: ×{np.exp(b):.3g} per {unit}{interval} over {seeds}")
        rows.append(
            Row(
                f"Reviewer: how fast the breakdown grows with depth — layer 1's gradient change at η=0.05, "
                f"ln r = a + b{x} fitted per seed over {x} = {', '.join(map(str, exps[0].depths))}, {optimizer}" + nets,
                "measurement",
                "; ".join(parts) + " (flagged checkpoints left out; a seed needs three depths)",
                "measured: " + "; ".join(f"{e.checkpoint} ×{np.exp(e.slope.mean):.3g}/{unit}" for e in exps),
            )
        )
    return rows


def _paper_rows(result: StudyBreakdownResult) -> list[Row]:
    """Our Figure 1 beside the authors' runs at matched steps (Fromage, layer 1); an unmatched study says why it
    makes no comparison."""
    c = result.config
    if not c.matched:
        return [
            Row(
                "Our Figure 1 beside the authors' runs",
                "measurement",
                f"not compared: this study trains {c.epochs} epochs of {report.dataset(c)} with the rate decayed every "
                "epoch; "
                "a comparison needs their schedule (`trust study breakdown --matched`: 2,400 steps, ×0.9 every 240)",
                "no comparison",
            )
        ]
    rows = []
    for cmp in result.paper or ():
        net = result.net("fromage", cmp.depth, cmp.residual)
        assert net is not None
        name = f"L={cmp.depth}{' residual (first layer too)' if cmp.residual else ''}"
        if c.train_images:
            name += f", on {c.train_images:,} training images"
        parts = []
        for k, statistic in enumerate(STATISTICS):
            entries = [
                f"η={eta}: {report.spread(cmp.ours, (k, p))} vs {cmp.theirs_low[k, p]:.3g}"
                + ("" if cmp.runs == 1 else f"–{cmp.theirs_high[k, p]:.3g}")
                + (
                    ""
                    if cmp.factor[k, p] == 1
                    else f" (×{cmp.factor[k, p]:.3g})"
                    if np.isfinite(cmp.factor[k, p])
                    else " (no seed finite: a zero gradient)"
                )
                for p, eta in enumerate(PROBES)
            ]
            parts.append(f"{statistic}: " + ", ".join(entries))
        v = cmp.verdict
        rows.append(
            Row(
                f"Our Figure 1 beside the authors' runs at matched steps — Fromage {name}, layer 1's relative gradient "
                "change",
                "measurement",
                "; ".join(parts)
                + f" — ours: median [range] of {report.count(net.seeds, 'seed')}, width {c.width}, {report.dataset(c)} "
                f"({c.n_measure or 'all'} measurement examples); theirs: {report.count(cmp.runs, 'run')}, 60,000 "
                f"MNIST images (final training accuracy ours {report.spread(net.final_train_acc)})",
                v.outcome if v.outcome == "within their runs" else f"outside their runs, up to ×{v.effect:.3g}",
                (v,),
            )
        )
    return rows


def _worst_text(c, what: str, w: WorstPoint | None) -> str:
    """A bound's worst factor, where it sits, and the same layer's factor at the probe η there."""
    if w is None:
        return f"{what}: none"
    probes = ", ".join(f"{f:.3g}" for f in w.at_probes)
    return (
        f"{what}: {w.factor:.3g} at {net_name(c, w.depth, w.residual, 'r')} seed {w.seed} step {w.step} layer "
        f"{w.layer} η={w.eta:.3g}{f' ({w.flag})' if w.flag else ''}, there at η = "
        f"{'/'.join(f'{p:g}' for p in PROBES)}: {probes}"
    )


def _bound_rows(result: StudyBreakdownResult) -> list[Row]:
    """DRT with constant 1 and the Lipschitz-smooth model, as violation factors (assumptions: measured)."""
    rows = []
    for claims in result.bounds or ():
        nets = [n for n in result.nets_of(claims.optimizer) if n.seeds]
        per_net, lip = [], []
        for n in nets:
            assert n.c_eff_first is not None
            name = net_name(result.config, n.depth, n.residual, "r")
            per_net.append(f"{name}: {n.c_eff_first.median[0]:.3g}→{n.c_eff_first.median[-1]:.3g}")
            at = [int(np.argmin(np.abs(n.eta[1:] - p))) for p in PROBES]  # the probe η on the grid (η > 0)
            lip.append(f"{name}: " + "/".join(f"{n.lipschitz_ratio_end[i]:.2g}" for i in at))
        rows.append(
            Row(
                f"DRT with constant 1 bounds every layer's gradient change along the slice — {claims.optimizer}"
                + _nets_suffix(result.config, ""),
                "assumption",
                f"C_eff of layer 1, initialisation→end (median over seeds): {', '.join(per_net)}; "
                + _worst_text(result.config, "worst over layers, seeds, η and unflagged checkpoints", claims.drt_worst)
                + "; "
                + _worst_text(result.config, "flagged checkpoints apart (rule flag)", claims.drt_flagged),
                violation_factor(claims.drt.statistic) if claims.drt.rule == "bound" else claims.drt.outcome,
                (claims.drt,),
            )
        )
        rows.append(
            Row(
                f"Lipschitz-smooth model, λ = the sharpness at the checkpoint (the smallest constant such a model can "
                f"use) — {claims.optimizer}, end of training" + _nets_suffix(result.config, ""),
                "assumption",
                f"measured/predicted layer-1 gradient change (median over seeds) at η = "
                f"{'/'.join(f'{p:g}' for p in PROBES)}: {', '.join(lip)}; worst at {claims.lipschitz_at}",
                violation_factor(claims.lipschitz.statistic),
                (claims.lipschitz,),
            )
        )
        if claims.lipschitz_along is not None:
            rows.append(_lipschitz_along_row(result.config, claims, nets))
    return rows


def _lipschitz_along_row(c, claims: BoundClaims, nets: list[NetSummary]) -> Row:
    """The constants a Lipschitz-smooth model would need along the slice at the end, and the model with the
    largest sharpness there (the secant's ratio is at most 1 by construction: it is the slice's own constant)."""
    parts = []
    for n in nets:
        assert n.lipschitz_constants is not None and n.lipschitz_ratios is not None
        k = n.lipschitz_constants.median
        ratios = "/".join(f"{q:.2g}" for q in n.lipschitz_ratios.median[1])
        parts.append(
            f"{net_name(c, n.depth, n.residual, 'r')}: λ {k[0]:.3g}, largest along {k[1]:.3g}, secant {k[2]:.3g} "
            f"(×{k[2] / k[0]:.3g} the point's); measured/predicted with the largest along {ratios}"
        )
    return Row(
        f"Lipschitz-smooth model, λ = the largest sharpness along the slice — {claims.optimizer}, end of training"
        + _nets_suffix(c, ""),
        "assumption",
        f"medians over seeds, at η = {'/'.join(f'{p:g}' for p in PROBES)}: " + "; ".join(parts),
        violation_factor(claims.lipschitz_along.statistic) if claims.lipschitz_along else "not measured",
        (claims.lipschitz_along,) if claims.lipschitz_along else (),
    )


def _method_rows(result: StudyBreakdownResult) -> list[Row]:
    """The measurement batch check and the SGD learning-rate sweep."""
    rows = []
    check = result.measure_check
    if check is not None:
        used = check.used or "all"
        ref_name = "all" if check.reference == 0 else check.reference
        deviation = dict(zip(check.sizes, check.deviation))
        rows.append(
            Row(
                f"Measurement batch: layer 1's curve on the first n training examples against n = {ref_name} "
                f"({check.optimizer} {net_name(result.config, check.depth)}, width {result.config.width}, seed "
                f"{check.seed})",
                "measurement",
                f"largest relative deviation (signed: below 0, the batch measures less) at η = "
                f"{', '.join(f'{e:g}' for e in PROBES)}, initialisation and end: "
                + ", ".join(f"n={n or 'all'}: {deviation[n] * 100:+.0f} %" for n in sorted(deviation, key=_all_last)),
                f"n = {used} used: biased {deviation[check.used] * 100:+.0f} % against n = {ref_name}"
                if check.used in deviation
                else f"n = {used} used",
            )
        )
    by_net: dict[tuple, list[SweepPoint]] = {}
    for p in result.sweep:
        by_net.setdefault((p.optimizer, p.depth, p.residual), []).append(p)
    for (optimizer, depth, residual), sweep in by_net.items():
        rows.append(
            Row(
                f"Learning-rate sweep — {optimizer} {net_name(result.config, depth, residual)} (first seed)",
                "measurement",
                "final training loss: "
                + ", ".join(
                    f"lr {p.lr:g}: {'diverged' if not np.isfinite(p.final_train_loss) else f'{p.final_train_loss:.3g}'}"
                    for p in sweep
                ),
                f"lr {next(p.lr for p in sweep if p.chosen):g} chosen",
            )
        )
    return rows


def _all_last(n: int) -> float:
    """Sort key for batch sizes: 0 (the whole training set) last."""
    return n or np.inf


def figures(results: dict[str, StudyBreakdownResult]) -> dict:
    return study_breakdown_figures.figures(results)


def rows(results: dict[str, StudyBreakdownResult]) -> list[Row]:
    """The across-depth rows (the depth and training claims from the 10-seed long job when it is stored); the
    growth per layer fitted on the full run's five depths, and on the long job's three depths and 10 seeds beside
    it; the comparison with the authors' runs from the width-784 study when there is one."""
    across = results["study_breakdown"]
    paper = results.get("study_breakdown_paper")
    seeds = results.get("study_breakdown_seeds")  # the depth claims on 10 seeds, where stored
    rows = _depth_rows(seeds or across) + _exponent_rows(across) + (_exponent_rows(seeds) if seeds else [])
    rows += _paper_rows(paper or across) + _bound_rows(across)
    rows += _method_rows(across)
    if paper is not None:
        rows += _bound_rows(paper) + _method_rows(paper)
    if "study_breakdown_gelu" in results:  # kinks or depth?
        rows += _depth_rows(results["study_breakdown_gelu"]) + _exponent_rows(results["study_breakdown_gelu"])
    if "study_breakdown_paper_2000_images" in results:  # the data-size check
        rows += _paper_rows(results["study_breakdown_paper_2000_images"])
    if "study_breakdown_transformer" in results:  # a model the paper never had
        t = results["study_breakdown_transformer"]
        rows += _depth_rows(t) + _exponent_rows(t) + _bound_rows(t) + _method_rows(t)
    return rows


def summary(result: StudyBreakdownResult) -> str:
    c = result.config
    lines = [f"study breakdown: {len(result.cells)} measured cells, {len(result.sweep)} sweep runs, width {c.width}"]
    for net in result.nets or ():
        lines.append(
            f"{net.optimizer:>8} lr {net.lr:<6g} {net_name(c, net.depth, net.residual, ' res'):<8} "
            f"train acc {net.final_train_acc.median:.3f}; layer-1 gradient change at "
            f"η=0.05: init {report.spread(net.probe, (0, PROBE_005))}, "
            f"end {report.spread(net.probe, (-1, PROBE_005))}; "
            f"C_eff layer 1 (end) {report.spread(net.c_eff_first, (-1,))}"
        )
    return "\n".join(lines)
