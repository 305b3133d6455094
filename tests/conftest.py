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
