"""The record every check returns, and the small vocabulary its table is written in."""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("symbolic proof", "symbolic + numeric spot-check", "numeric only")

#: ``proved`` — a symbolic proof went through (and any numeric spot-check agreed);
#: ``holds numerically`` — only numeric evidence, no proof;
#: ``does not close`` — the derivation cannot be completed as stated (the details say why);
#: ``FAILED`` — a step that should hold did not: a defect in the statement or in the checker.
VERDICTS = ("proved", "holds numerically", "does not close", "FAILED")


@dataclass(frozen=True)
class Control:
    """A negative control: a deliberately wrong variant of the statement, run through the same checking
    code, and whether that code rejected it (it must)."""

    statement: str
    rejected: bool
    evidence: str

    def __post_init__(self):
        if not isinstance(self.rejected, bool):  # a SymPy Boolean here would be a silent type error later
            raise TypeError(f"rejected must be a bool, got {type(self.rejected).__name__}")


@dataclass(frozen=True)
class Result:
    name: str
    statement: str
    method: str
    verdict: str
    details: str
    control: Control

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @property
    def ok(self) -> bool:
        """The check did not fail and its negative control was rejected."""
        return self.verdict != "FAILED" and self.control.rejected


def proved_if(*steps: bool) -> str:
    """``proved`` when every step went through, else ``FAILED``."""
    return "proved" if all(steps) else "FAILED"
