"""trust — deep relative trust, Fromage and Madam as runnable, falsifiable checks (docs/theory.md).

The names a user types most are re-exported here; everything lives in its submodule."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("deep-relative-trust")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.3.0+unknown"

from trust.bounds import drt_bound, lipschitz_prediction, operator_norm_bound, theorem1_bound
from trust.errors import TrustError
from trust.measure import Distances, relative_distances
from trust.tree import relative_size

__all__ = [
    "Distances",
    "TrustError",
    "__version__",
    "drt_bound",
    "lipschitz_prediction",
    "operator_norm_bound",
    "relative_distances",
    "relative_size",
    "theorem1_bound",
]
