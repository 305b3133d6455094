"""The two symbolic tests every proof here reduces to.

:func:`is_nonneg_polynomial` is a sufficient proof that an expression is ≥ 0: after expansion it is a
polynomial, every symbol in it is declared nonnegative, and every coefficient is a nonnegative number —
so each monomial is a product of nonnegative factors. Inequalities are put in this form by writing each
hypothesis ``x ≤ y`` as ``y = x + t`` with a slack symbol ``t ≥ 0``.
"""

from __future__ import annotations

import sympy as sp


def is_nonneg_polynomial(expr) -> bool:
    """True if ``expr`` expands to a polynomial with nonnegative coefficients in nonnegative symbols."""
    expr = sp.expand(sp.sympify(expr))
    symbols = sorted(expr.free_symbols, key=str)
    if not all(s.is_nonnegative for s in symbols):
        return False
    if not symbols:
        return bool(expr.is_nonnegative)
    if not expr.is_polynomial(*symbols):
        return False
    return all(c.is_number and c.is_nonnegative for c in sp.Poly(expr, *symbols).coeffs())


def difference(lhs, rhs):
    """``lhs − rhs``, expanded, and simplified only if expansion does not give 0 (simplify is slow)."""
    diff = sp.expand(sp.sympify(lhs) - sp.sympify(rhs))
    return diff if diff == 0 else sp.simplify(diff)


def is_identity(lhs, rhs) -> bool:
    """True if ``lhs − rhs`` simplifies to 0."""
    return difference(lhs, rhs) == 0


def nonneg(*names: str):
    """Nonnegative real symbols."""
    return sp.symbols(names, nonnegative=True, real=True)


def pos(*names: str):
    """Positive real symbols."""
    return sp.symbols(names, positive=True, real=True)
