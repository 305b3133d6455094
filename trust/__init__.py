"""trust — deep relative trust, Fromage and Madam as runnable, falsifiable checks (docs/theory.md).

The names a user types most are re-exported here; everything lives in its floor: ``trust.base`` (records, pytrees,
linear algebra, run directories), ``trust.core`` (nets, data, perturbations, measurements, bounds, estimators,
optimisers, training), ``trust.experiments`` (one module per question), ``trust.views`` (figures and report rows)
and ``trust.front`` (the command line)."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("deep-relative-trust")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.4.0+unknown"

from trust import _moved
from trust.base import spec
from trust.base.errors import TrustError
from trust.base.tree import relative_size
from trust.core.bounds import drt_bound, lipschitz_prediction, operator_norm_bound, theorem1_bound
from trust.core.measure import Distances, relative_distances

__all__ = [
    "Distances",
    "TrustError",
    "__version__",
    "drt_bound",
    "lipschitz_prediction",
    "load",
    "operator_norm_bound",
    "relative_distances",
    "relative_size",
    "spec",
    "theorem1_bound",
]


_moved.install()


def load(run_dir):
    """The typed Result stored in a run directory (:func:`trust.experiments.load`)."""
    from trust.experiments import load as load_run

    return load_run(run_dir)


def __getattr__(name: str):
    """``trust.measure`` and the other 0.3 module paths, deprecated (:mod:`trust._moved`)."""
    if f"trust.{name}" in _moved.MOVED:
        return _moved.moved(f"trust.{name}")
    raise AttributeError(f"module 'trust' has no attribute {name!r}")
