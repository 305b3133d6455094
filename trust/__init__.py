"""trust — deep relative trust, Fromage and Madam as runnable, falsifiable checks (docs/theory.md).

The names a user types most are re-exported here; everything lives in its submodule."""

from trust.bounds import drt_bound, lipschitz_prediction, operator_norm_bound, theorem1_bound
from trust.errors import TrustError
from trust.measure import Distances, relative_distances
from trust.tree import relative_size

__all__ = [
    "Distances",
    "TrustError",
    "drt_bound",
    "lipschitz_prediction",
    "operator_norm_bound",
    "relative_distances",
    "relative_size",
    "theorem1_bound",
]
