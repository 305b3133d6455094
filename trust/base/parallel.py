"""Scale-out on JAX's own runtime (README, "GPUs, TPUs and many hosts").

Two levels, each where its work is independent:

* **Devices.** One measurement's η grid is split across the local devices (:func:`trust.core.measure.grid_strategy`,
  ``jax.shard_map`` over a mesh axis ``eta``): every device runs the same chunked map on its block of η.
* **Processes.** A study's cells (configurations × seeds) are split across the processes of a
  ``jax.distributed`` job, one process per host or per accelerator: in each round process ``p`` of ``P``
  computes cells ``p, p + P, …`` and stores them in the shared run directory; after a barrier every process
  reads the others' cells, so all agree on the next round (a learning-rate sweep decides what runs next);
  process 0 writes the study's own results and figures. The run directory must be on a file system every host
  sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import jax

from trust.base.errors import TrustError

T = TypeVar("T")


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None):
    """Join a ``jax.distributed`` job; call before any computation. Without arguments JAX detects the cluster
    (SLURM, Open MPI, Cloud TPU, Kubernetes; ``JAX_COORDINATOR_ADDRESS``); with them, ``coordinator`` is
    ``host:port`` of process 0, which every process can reach. On CPU hosts the processes synchronise through
    gloo collectives."""
    given = [coordinator, num_processes, process_id]
    if any(v is not None for v in given) and any(v is None for v in given):
        raise TrustError("a distributed run needs all of --coordinator, --num-processes and --process-id (or none)")
    if num_processes is not None and process_id is not None and not 0 <= process_id < num_processes:
        raise TrustError(f"--process-id must lie in 0 … {num_processes - 1}, got {process_id}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id)
    except (ValueError, RuntimeError) as err:
        raise TrustError(f"cannot join the distributed job: {str(err).splitlines()[0]}") from None


def count() -> int:
    """How many processes work together (1 unless :func:`initialize` joined a job)."""
    return jax.process_count()


def is_lead() -> bool:
    """Whether this is process 0, which writes what belongs to the whole job."""
    return jax.process_index() == 0


def share(items: Sequence[T]) -> list[T]:
    """This process's share of ``items``: every ``count()``-th, starting at its index (the same order everywhere)."""
    return list(items)[jax.process_index() :: jax.process_count()]


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier ``name`` (a no-op for one process)."""
    if count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def add_arguments(parser) -> None:
    """The flags that join a distributed job (``trust`` and ``paper_figs.py``)."""
    group = parser.add_argument_group("many processes (jax.distributed; README: GPUs, TPUs and many hosts)")
    group.add_argument("--distributed", action="store_true", help="join a job whose cluster JAX detects")
    group.add_argument("--coordinator", help="host:port of process 0 (with --num-processes and --process-id)")
    group.add_argument("--num-processes", type=int, help="how many processes share the work")
    group.add_argument("--process-id", type=int, help="this process's index, 0 … num-processes − 1")


def join_from(args) -> None:
    """Join the job the parsed flags of :func:`add_arguments` describe, if any."""
    explicit = [args.coordinator, args.num_processes, args.process_id]
    if args.distributed or any(v is not None for v in explicit):
        initialize(*explicit)
