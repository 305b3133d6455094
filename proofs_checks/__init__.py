"""Every identity and derivation ``trust`` relies on, checked with SymPy (and NumPy spot-checks).

One module per statement of docs/theory.md §2–4; each has a ``check()`` returning a :class:`Result` with the statement,
the method, a verdict and a negative control — a deliberately wrong variant run through the same checking
code, which must be rejected. ``python -m proofs_checks`` prints the table."""

from __future__ import annotations

from . import (
    cos_gamma_mean,
    exact_case,
    fromage,
    lars,
    lemma1,
    lemma2,
    lemma2_constant,
    lns_range,
    madam_angle,
    madam_exp,
    madam_linear,
    operator_norm,
    opnorm_conversion,
    theorem1_gradient,
    theorem1_gradient_fixed_pattern,
    theorem1_step,
    transmission,
)
from .core import METHODS, VERDICTS, Control, Result

__all__ = ["CHECKS", "METHODS", "VERDICTS", "Control", "Result", "markdown_table", "run_all"]

CHECKS = (
    exact_case.check,
    operator_norm.check,
    transmission.check,
    theorem1_step.check,
    opnorm_conversion.check,
    theorem1_gradient.check,
    theorem1_gradient_fixed_pattern.check,
    lemma1.check,
    lemma2.check,
    lemma2_constant.check,
    fromage.check,
    lars.check,
    madam_linear.check,
    madam_exp.check,
    madam_angle.check,
    cos_gamma_mean.check,
    lns_range.check,
)


def run_all() -> list[Result]:
    return [check() for check in CHECKS]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(results) -> str:
    """One row per result: name, statement, method, verdict, negative control and its outcome, details."""
    lines = ["| check | statement | method | verdict | negative control | details |", "|---|---|---|---|---|---|"]
    for r in results:
        outcome = "rejected" if r.control.rejected else "**NOT rejected**"
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    r.name,
                    r.statement,
                    r.method,
                    f"**{r.verdict}**",
                    f"{r.control.statement} → {outcome}: {r.control.evidence}",
                    r.details,
                )
            )
            + " |"
        )
    return "\n".join(lines) + "\n"
