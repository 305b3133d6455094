"""Scale-out (parallel, measure.grid_strategy): the η grid split across devices and a study's cells
split across processes give the numbers one device and one process give.

Several devices are faked on the CPU (``XLA_FLAGS=--xla_force_host_platform_device_count=2``), which must be set
before JAX starts: those runs are subprocesses. Two processes of one ``jax.distributed`` job run on localhost,
synchronised through gloo, as on a cluster's hosts.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from test_reliability import STUDY  # 12 train-only cells on digits

from trust.base import store
from trust.core import measure, nets

TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}

# One MLP (its first layer shared across the grid) and one ResNet (the plain grid), float64, 6 η: one device
# runs three whole chunks of 2; two devices each get a block of 3, which must be padded to two whole chunks —
# unpadded, a block would end in a remainder compiled apart, whose points round apart from one device's.
GRID = textwrap.dedent(
    """
    import json
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from trust.core import losses, measure, nets, perturb

    def distances(net, x, y, devices=None):
        params = net.init(jax.random.key(1))
        u = perturb.along_gradient(params, measure.full_batch_gradient(net.apply, params, x, y))
        etas = np.linspace(0.0, 0.3, 6)
        if devices is None:
            d = measure.relative_distances(net.apply, params, x, y, u, etas)
            return [d.loss.tolist(), d.function_change.tolist(), d.gradient_change.tolist()]
        strategy = measure.grid_strategy(6, net.apply)._replace(devices=devices)
        _, grid = measure._grid(net.apply, losses.cross_entropy, strategy, params, u, x, y, jnp.asarray(etas))
        return [np.asarray(grid[k]).tolist() for k in ("loss", "function_change", "gradient_change")]

    def cases():
        x = jax.random.normal(jax.random.key(0), (24, 16))
        y = jnp.arange(24) % 3
        return {"mlp": (nets.experiment_mlp(16, 12, 4, 3), x, y), "resnet": (nets.resnet((4, 4, 1), 3), x, y)}

    if __name__ == "__main__":
        out = {"devices": jax.local_device_count()}
        for name, (net, x, y) in cases().items():
            out[name] = distances(net, x, y)
            out[name + " strategy"] = measure.grid_strategy(6, net.apply)._asdict()
            out[name + " one device"] = distances(net, x, y, devices=1)
            out[name + " two devices"] = distances(net, x, y, devices=2)
        print(json.dumps(out))
    """
)


def _python(code: str, env: dict, cwd=None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=600, cwd=cwd
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_grid_on_two_devices_equals_one_device():
    two = json.loads(_python(GRID, TWO_DEVICES))
    assert two["devices"] == 2
    assert jax.local_device_count() == 1  # this process: one device, float64 (conftest)
    here: dict = {}
    exec(GRID, here)  # the same functions, in this one-device process
    for name, (net, x, y) in here["cases"]().items():
        assert two[name + " strategy"]["devices"] == 2
        assert measure.grid_strategy(6, net.apply).devices == 1
        assert two[name + " strategy"]["share_first_layer"] == (name == "mlp")
        # Within one process the per-device program is the same body on the same inputs: bit for bit.
        assert two[name + " one device"] == two[name + " two devices"], name
        assert np.all(np.asarray(two[name + " two devices"][2][0]) == 0.0), name  # η = 0: no gradient change
        # Across processes with one and two devices, XLA may partition a matmul's threads differently: float64
        # rounding (~1e-16 relative per operation, a few hundred operations deep) — 1e-12 relative.
        for a, b in zip(here["distances"](net, x, y), two[name]):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-12, atol=1e-15)


def test_grid_split_pads_each_device_to_whole_chunks():
    # In this process (one device): a strategy asking for more devices than exist is cut to what exists.
    net = nets.experiment_mlp(5, 6, 3, 2)
    assert measure.grid_strategy(1, net.apply).devices == 1
    assert measure.grid_strategy(100, net.apply).devices == jax.local_device_count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but the locks (which hold their writer's pid)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != store.LOCK
    }


@pytest.mark.slow  # ~30 s: two jax.distributed processes on localhost (the process share is unit-tested below)
def test_two_processes_share_a_study_and_write_what_one_process_writes(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    trust = [sys.executable, "-m", "trust.front.cli"]
    alone = subprocess.run([*trust, *STUDY, "--out", str(tmp_path / "one")], env=env, capture_output=True, text=True)
    assert alone.returncode == 0, alone.stderr
    port = _free_port()
    job = [
        subprocess.Popen(
            [*trust, "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i), *STUDY]
            + ["--out", str(tmp_path / "two")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in job]
    for p, (_, err) in zip(job, outputs):
        assert p.returncode == 0, err
    # Both processes print the study summary one process prints (gloo's connection lines aside; the last line
    # names the run directory).
    printed = [[line for line in out.splitlines()[:-1] if not line.startswith("[Gloo]")] for out, _ in outputs]
    assert printed[0] == printed[1] == alone.stdout.splitlines()[:-1]
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert one.keys() == two.keys()
    assert sum(k.endswith("results.json") for k in two) == 13  # 12 cells and the study
    assert {k for k in one if one[k] != two[k]} == set()  # byte for byte


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--num-processes", "2"], "needs all of --coordinator, --num-processes and --process-id"),
        (["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"], "--process-id must lie in"),
    ],
)
def test_bad_distributed_flags_are_one_line(flags, message):
    done = subprocess.run(
        [sys.executable, "-m", "trust.front.cli", *flags, "breakdown", "--dry-run"],
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_the_lead_process_alone_is_process_zero():
    from trust.base import parallel

    assert parallel.count() == 1
    assert parallel.is_lead()
    assert parallel.share(["a", "b", "c"]) == ["a", "b", "c"]
    parallel.barrier("alone")  # a no-op for one process
