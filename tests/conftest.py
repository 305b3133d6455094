"""Test configuration: float64, implicit rank promotion forbidden, and a printed seed for replay.

float64 is on for the whole suite so that agreement with the NumPy reference and the closed forms can
be asserted at tolerances of ~1e-10 (see each test for the conditioning argument). The CLI tests run
the default float32 path in subprocesses."""

import os

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

SEED = int(os.environ.get("TRUST_TEST_SEED", "20201123"))


def pytest_report_header(config):
    return f"trust test seed: {SEED} (replay with TRUST_TEST_SEED={SEED})"


@pytest.fixture
def key():
    return jax.random.key(SEED)


def assert_rows_follow_rules(rows) -> None:
    """Every report row's stored verdicts follow their rules (decided again from the verdict's own numbers by
    ``rules.decide``) and the row's verdict sentence shows them (``report.verdict_key``): a row cannot read other
    than its rule decides (issue: "a test fails if a row's verdict disagrees with its rule")."""
    from trust.experiments.shared import rules
    from trust.views import report

    for row in rows:
        for v in row.verdicts:
            assert v.rule in rules.RULES, f"{row.claim}: rule {v.rule!r} is not written in rules.RULES"
            assert rules.decide(v) == v.outcome, f"{row.claim}: stored {v.outcome!r}, rule {v.rule} gives " \
                f"{rules.decide(v)!r} on {v}"  # fmt: skip
            assert report.verdict_key(v) in row.verdict, f"{row.claim}: {row.verdict!r} lacks {report.verdict_key(v)!r}"


@pytest.fixture(autouse=True, scope="session")
def rows_follow_rules():
    """Every view's ``rows`` in the suite is checked by :func:`assert_rows_follow_rules` as it returns."""
    from trust.views import VIEWS

    originals = {name: module.rows for name, module in VIEWS.items()}

    def checked(original):
        def rows(results):
            out = original(results)
            assert_rows_follow_rules(out)
            return out

        return rows

    for name, module in VIEWS.items():
        module.rows = checked(originals[name])
    yield
    for name, module in VIEWS.items():
        module.rows = originals[name]
