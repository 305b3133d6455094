"""The README's "Your own model" examples run as written, one after another in one namespace (as a reader pastes
them), and print what their comments say."""

import contextlib
import io
import re
from pathlib import Path

import jax
import pytest

ROOT = Path(__file__).resolve().parents[1]

for extra in ("flax", "equinox", "safetensors"):
    pytest.importorskip(extra, reason=f"the {extra} extra is not installed")


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("\n## Your own model\n", 1)[1].split("\n## ", 1)[0]


def _expected(block: str) -> list[str]:
    """The comment of each ``print(...)  # …`` line, up to an ellipsis or an explanation after ``: ``."""
    return [m.split("…")[0].split(": ")[0].strip() for m in re.findall(r"^print\(.*\)  # (.*)$", block, re.M)]


def test_the_readme_examples_of_your_own_model_run_and_print_what_they_say(monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", _section(), re.S)
    assert len(blocks) == 5  # plain JAX, Flax NNX, Flax Linen, Equinox, PyTorch
    monkeypatch.chdir(ROOT)  # the PyTorch example reads tests/fixtures/
    namespace: dict = {}
    with jax.enable_x64(False):  # as a user runs them
        for block in blocks:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(block, "README.md", "exec"), namespace)
            printed = out.getvalue().splitlines()
            expected = _expected(block)
            assert len(printed) == len(expected), (block, printed)
            for got, want in zip(printed, expected):
                assert got.startswith(want), (got, want)


def test_the_readme_library_examples_run_as_written():
    """The Library section's two blocks (the slice, then the modular norm, curvature and features on its net)."""
    text = (ROOT / "README.md").read_text().split("\n## The library\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    namespace: dict = {}
    with jax.enable_x64(False):  # as a user runs them
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["modular"].norm(namespace["m"], namespace["step"]) == pytest.approx(0.1, rel=1e-5)
