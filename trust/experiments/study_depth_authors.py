"""``trust study depth`` beside the authors' runs (docs/theory.md §5.2): their Figure-3 runs at our read steps, read
by the same rule "stop" as ours (:class:`AuthorsDepths`), and the paper's order checked pair by pair in our seeds
and in their run (:class:`OrderClaim`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from trust.base.schema import Verdict, value
from trust.experiments.shared import authors, rules

if TYPE_CHECKING:
    from trust.experiments.study_depth import StudyDepthConfig, StudyDepthResult


@dataclass(frozen=True, eq=False)
class AuthorsDepths:
    """The authors' runs for one optimiser at one of their step counts (jxbz/fromage, Figure 3): the best rate's
    mean pre-update minibatch accuracy of the 20 minibatches before the step, per depth L = k + 1 (width 784,
    60,000 MNIST images, one seed), and where it stops by the same rule as ours."""

    optimizer: str
    read_step: int
    depths: tuple[int, ...] = value(axes=("authors_depth",))
    accuracy: tuple[float, ...] = value(axes=("authors_depth",))
    transition: rules.Transition = value()

    def coordinates(self) -> dict[str, list]:
        return {"authors_depth": list(self.depths)}


@dataclass(frozen=True)
class OrderClaim:
    """The paper's order at one read step — ``deeper`` trains deeper than ``shallower`` — in our seeds (rule
    "compare" over the stop depths, a net that never stops counted one past the grid) and in the authors' run."""

    read_step: int
    shallower: str
    deeper: str
    ours: Verdict
    authors: str  # "holds", "reversed", "equal" or "" (not in their runs)


# the paper's order of stopping depths, shallowest first (its SGD has momentum 0.9)
PAPER_ORDER = ("sgd_momentum", "adam", "fromage")


def authors_depths(c: StudyDepthConfig) -> tuple[AuthorsDepths, ...]:
    """The authors' Figure-3 runs at each of our read steps they logged, for the optimisers we ran."""
    rows = authors.table()["figure3"]["rows"]
    out = []
    for step in c.read_steps:
        if step not in authors.DEPTH_STEPS:
            continue
        folder = "10_epochs" if step <= 2400 else "100_epochs"  # their 2,400- and 24,000-step runs
        for o in c.optimizers:
            best: dict[int, float] = {}
            for r in rows:
                if r["file"].startswith(folder) and r["optimizer"] == o and str(step) in r["accuracy"]:
                    best[r["k"] + 1] = max(best.get(r["k"] + 1, 0.0), r["accuracy"][str(step)])
            if best:
                depths = tuple(sorted(best))
                accuracy = tuple(best[d] for d in depths)
                out.append(AuthorsDepths(o, step, depths, accuracy, rules.transition(depths, accuracy, c.threshold)))
    return tuple(out)


def _stop_or_past(t: rules.Transition, deepest: int) -> float:
    return float(deepest + 1 if t.first_never is None else t.first_never)


def order_claims(r: StudyDepthResult) -> tuple[OrderClaim, ...]:
    """The paper's order, pair by pair, at each read step: rule "compare" on our seeds' stop depths (a seed that
    never stops counts one past the grid), Holm-corrected across the study's order claims."""
    c, out = r.config, []
    present = [o for o in PAPER_ORDER if o in c.optimizers]
    for step in r.reads:
        for shallower, deeper in zip(present, present[1:]):
            ours = [
                [_stop_or_past(t, max(r.depths_of(o))) for t in r.of(o, step).transitions] for o in (shallower, deeper)
            ]
            theirs = [t for o in (shallower, deeper) if (t := r.authors_of(o, step)) is not None]
            words = ""
            if len(theirs) == 2:
                a, b = (_stop_or_past(t.transition, max(t.depths)) for t in theirs)
                words = "holds" if b > a else "reversed" if b < a else "equal"
            out.append(OrderClaim(step, shallower, deeper, rules.compare(ours[1], ours[0]), words))
    tested = rules.holm([claim.ours for claim in out])
    return tuple(replace(claim, ours=v) for claim, v in zip(out, tested))
