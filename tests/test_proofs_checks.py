"""proofs_checks: every check returns a verdict other than FAILED and rejects its negative control; the command
prints a row per check; and a deliberately broken checker reports FAILED (a check that cannot fail is a defect)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import proofs_checks
from proofs_checks import __main__ as cli
from proofs_checks import fromage, theorem1_step
from proofs_checks.symbolic import is_nonneg_polynomial

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("check", proofs_checks.CHECKS, ids=lambda c: c.__module__.rsplit(".", 1)[-1])
def test_check_holds_and_rejects_its_control(check):
    result = check()
    assert result.verdict in proofs_checks.VERDICTS, result.details
    assert result.verdict != "FAILED", result.details
    assert result.control.rejected, result.control.evidence
    assert result.statement
    assert result.details
    assert result.control.statement


def test_gradient_version_is_reported_as_not_closing():
    names = {check.__module__.rsplit(".", 1)[-1]: check for check in proofs_checks.CHECKS}
    assert names["theorem1_gradient"]().verdict == "does not close"


def test_command_prints_a_row_per_check_and_exits_0():
    run = subprocess.run([sys.executable, "-m", "proofs_checks"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ") and not line.startswith("| check ")]
    assert len(rows) == len(proofs_checks.CHECKS)
    assert all("**proved**" in row or "**does not close**" in row for row in rows)
    assert "negative controls rejected: {0}/{0}".format(len(proofs_checks.CHECKS)) in run.stdout


def test_nonneg_polynomial_helper_is_a_real_test():
    x, y = sp.symbols("x y", nonnegative=True)
    assert is_nonneg_polynomial(x * y + x**2 + 3)
    assert not is_nonneg_polynomial(x - y)
    assert not is_nonneg_polynomial((x - y) ** 2)  # ≥ 0, but not provable termwise: the helper is only sufficient
    assert not is_nonneg_polynomial(sp.Symbol("z", real=True) ** 2)  # symbol not declared nonnegative
    assert not is_nonneg_polynomial(1 / (1 + x))


def test_broken_symbolic_checker_reports_failed(monkeypatch):
    monkeypatch.setattr(theorem1_step, "is_nonneg_polynomial", lambda expr: False)
    assert theorem1_step.check().verdict == "FAILED"


def test_broken_numeric_checker_reports_failed(monkeypatch):
    lars_step = lambda p, g, eta: p - eta * np.linalg.norm(p) / np.linalg.norm(g) * g  # noqa: E731
    monkeypatch.setattr(fromage, "fromage_step", lars_step)
    assert fromage.check().verdict == "FAILED"


def test_command_exits_1_when_a_check_fails(monkeypatch, capsys):
    failed = proofs_checks.Result("broken", "s", "numeric only", "FAILED", "d", proofs_checks.Control("c", True, "e"))
    monkeypatch.setattr(cli, "run_all", lambda: [failed])
    assert cli.main() == 1
    assert "broken" in capsys.readouterr().err


def test_result_vocabulary_is_enforced():
    control = proofs_checks.Control("c", True, "e")
    with pytest.raises(ValueError):
        proofs_checks.Result("n", "s", "numeric only", "probably", "d", control)
    with pytest.raises(TypeError):
        proofs_checks.Control("c", sp.true, "e")


def test_markdown_table_escapes_pipes():
    r = proofs_checks.Result("n", "|x| ≤ 1", "symbolic proof", "proved", "d", proofs_checks.Control("c", True, "e"))
    table = proofs_checks.markdown_table([r])
    assert "\\|x\\|" in table
    assert len(table.strip().splitlines()) == 3
