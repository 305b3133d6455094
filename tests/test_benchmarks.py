"""The benchmark command runs end to end (at tiny sizes) and writes its report and its JSON.

Slow (about a minute of compilation): ``python -m pytest -m slow tests/test_benchmarks.py``. The numbers are
not asserted — performance is measured, not tested — but their relations that hold by construction are."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_smoke_run_writes_results(tmp_path):
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--smoke", "--repeats", "1", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    for heading in ("## Targets", "## The Figure-1 slice", "## Memory", "## Scaling", "## Precision"):
        assert heading in text
    r = json.loads((tmp_path / "results" / "cpu.json").read_text())
    assert len(r["slices"]) == 4
    assert all(x["trust_s"] > 0 for x in r["slices"])
    assert r["strategy"]["share_first_layer"]
    # the chunked map's compiled peak does not grow with the η count; a plain vmap's does
    mem = r["memory"]["eta"]
    assert mem[-1]["trust_mb"] <= 1.05 * mem[0]["trust_mb"]
    assert mem[-1]["plain_vmap_mb"] > mem[0]["plain_vmap_mb"]
