"""The one exception type for user errors: the CLI prints its message on one line and exits non-zero."""

REPORT_BUG = (
    "this is a bug in trust, not in your input: please report it with the command, this message and the output "
    "of `trust --version` (README: Reporting a bug)"
)


class TrustError(ValueError):
    """Bad input: NaN/Inf, a zero-norm layer or gradient, a shape mismatch, a corrupt result file, a bad value."""


class Diverged(TrustError):
    """Training reached a non-finite loss (a learning rate too large for the net): a result for a sweep, an
    error for a single run."""

    def __init__(self, message: str, epoch: int):
        super().__init__(message)
        self.epoch = epoch
