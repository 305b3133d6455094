"""The one exception type for user errors: the CLI prints its message on one line and exits non-zero."""


class TrustError(ValueError):
    """Bad input: NaN/Inf, a zero-norm layer or gradient, a shape mismatch, a corrupt result file, a bad value."""
