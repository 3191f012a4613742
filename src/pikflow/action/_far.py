r"""Actions evaluated far out, for the normalisability checks (:meth:`pikflow.Path.check_normalisable`,
:func:`pikflow.lattice.check_bounded_below`).

In float64 a bounded action can still look unbounded at large fields: :math:`\cosh\phi - \sinh\phi =
e^{-\phi}` cancels to 0 at :math:`\phi = 100` and is :math:`\infty - \infty` (NaN) at :math:`\phi = 1000`.
So the hyperbolic functions are written as exponentials first, where such terms cancel symbolically, and
NaN entries are evaluated again in arbitrary precision (mpmath, through :func:`sympy.lambdify`), with more
digits until two precisions agree. NaN is also what a density that is not real gives (:math:`\log\phi`
at :math:`\phi < 0`): a complex or undefined value stays NaN.
"""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import sympy as sp
from sympy.functions.elementary.hyperbolic import HyperbolicFunction


def far_values(expr, symbols, args) -> np.ndarray:
    """``expr`` of ``symbols`` at the broadcast ``args`` (floats), its float64 NaN entries re-evaluated in mpmath.

    An entry stays NaN only where the expression is not real (or not defined) in exact arithmetic too; a real
    value beyond float64's range becomes ``+-inf``.
    """
    expr = _exponentials(expr)
    fn = _lambdified(expr, tuple(symbols), "numpy")
    with np.errstate(all="ignore"):
        args = np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in args])
        vals = np.array(np.broadcast_to(np.asarray(fn(*args), dtype=float), args[0].shape if args else ()))
    bad = np.isnan(vals)
    if bad.any():
        exact = _lambdified(expr, tuple(symbols), "mpmath")
        for index in zip(*np.nonzero(bad), strict=True):
            vals[index] = _converged(exact, [a[index] for a in args])
    return vals


def _exponentials(expr):
    """The hyperbolic functions of ``expr`` as exponentials (like terms then cancel, e.g. cosh - sinh = exp(-x))."""
    return sp.sympify(expr).replace(lambda e: isinstance(e, HyperbolicFunction), lambda e: e.rewrite(sp.exp))


#: digits of the mpmath evaluations, tried in turn until two agree to 1e-9
DIGITS = (30, 120, 500, 2000)


def _converged(fn, point) -> float:
    """``fn`` at ``point`` with more digits until two precisions agree (the last one otherwise)."""
    previous = None
    for digits in DIGITS:
        with mpmath.workdps(digits):
            value = _real(fn, point)
        if previous is not None and (value == previous or abs(value - previous) <= 1e-9 * abs(value)):
            break
        previous = value
    return value


@functools.lru_cache(maxsize=64)
def _lambdified(expr, symbols: tuple, module: str):
    """:func:`sympy.lambdify` once per expression (a check evaluates it at many times)."""
    return sp.lambdify(list(symbols), expr, modules=module)


def _real(fn, point) -> float:
    """``fn`` at ``point`` in mpmath, as a float; NaN where it is complex or undefined."""
    try:
        value = fn(*[mpmath.mpf(float(x)) for x in point])
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        return np.nan
    if isinstance(value, mpmath.mpc):
        if value.imag != 0:
            return np.nan
        value = value.real
    try:
        return float(value)  # beyond float64: +-inf
    except (TypeError, ValueError):
        return np.nan


__all__ = ["far_values"]
