r"""Actions evaluated far out, for the normalisability checks (:meth:`pikflow.Path.check_normalisable`,
:func:`pikflow.lattice.check_bounded_below`).

In float64 a bounded action can look unbounded at large fields: :math:`\cosh\phi - \sinh\phi = e^{-\phi}`
cancels to rounding noise at :math:`\phi = 100` and is :math:`\infty - \infty` (NaN) at :math:`\phi = 1000`.
So :math:`\cosh` and :math:`\sinh` are written as exponentials and the expression expanded first, where such
terms cancel symbolically (also with time-dependent couplings in front). An entry that is still NaN is
evaluated again exactly: the point and the expression's floats as rationals, :meth:`sympy.Expr.evalf` with
``strict=True``, which raises where cancellation leaves fewer than 15 correct digits (e.g.
:math:`e^{3\phi}(1 - \tanh\phi)` at :math:`\phi = 1000`); such an entry stays NaN, and so does one that is not
real (:math:`\log\phi` at :math:`\phi < 0`). A NaN counts as not growing, so the checks refuse where they cannot
decide: at most :data:`EXACT_POINTS` distinct points are evaluated exactly per call, the rest stay NaN.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import sympy as sp
from sympy.core.evalf import PrecisionExhausted

#: Distinct NaN points evaluated exactly per call (each takes about a millisecond); beyond, they stay NaN.
EXACT_POINTS = 64


def far_values(expr, symbols, args) -> np.ndarray:
    """``expr`` of ``symbols`` at the broadcast ``args`` (floats), its float64 NaN entries evaluated exactly.

    An entry stays NaN where the expression is not real, where its exact value is dominated by cancellation, or
    beyond :data:`EXACT_POINTS` distinct NaN points; a real value beyond float64's range becomes ``+-inf``.
    """
    expr = _exponentials(sp.sympify(expr))
    symbols = tuple(symbols)
    fn = _lambdified(expr, symbols)
    with np.errstate(all="ignore"):
        args = np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in args])
        vals = np.array(np.broadcast_to(np.asarray(fn(*args), dtype=float), args[0].shape if args else ()))
    bad = np.nonzero(np.isnan(vals))
    if len(bad[0]) and args:
        points = np.stack([a[bad] for a in args], axis=1)
        unique, inverse = np.unique(points, axis=0, return_inverse=True)
        if len(unique) <= EXACT_POINTS:
            exact = _rational(expr)
            vals[bad] = np.array([_exact_value(exact, symbols, p) for p in unique])[inverse.reshape(-1)]
    return vals


@functools.lru_cache(maxsize=64)
def _exponentials(expr):
    """``expr`` with cosh and sinh as exponentials, expanded (like terms then cancel: cosh - sinh = exp(-x))."""
    if not expr.has(sp.cosh, sp.sinh):
        return expr
    return sp.expand(expr.replace(lambda e: isinstance(e, (sp.cosh, sp.sinh)), lambda e: e.rewrite(sp.exp)))


@functools.lru_cache(maxsize=64)
def _lambdified(expr, symbols: tuple):
    """:func:`sympy.lambdify` once per expression (the same check again, e.g. each size of a scan, reuses it)."""
    return sp.lambdify(list(symbols), expr, modules=["scipy", "numpy"])  # scipy: erf, gamma, ...


@functools.lru_cache(maxsize=64)
def _rational(expr):
    """``expr`` with its floats as the rationals they are, so that :meth:`~sympy.Expr.evalf` tracks every digit."""
    return expr.xreplace({f: sp.Rational(f) for f in expr.atoms(sp.Float)})


def _exact_value(expr, symbols, point) -> float:
    """``expr`` at ``point`` to 15 correct digits, as a float; NaN where that fails or the value is not real."""
    try:
        value = expr.xreplace({s: sp.Rational(float(x)) for s, x in zip(symbols, point, strict=True)})
        value = value.evalf(15, strict=True, maxn=600)
    except (PrecisionExhausted, TypeError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return math.nan
    if value in (sp.oo, -sp.oo):
        return math.inf if value == sp.oo else -math.inf
    if not (value.is_number and value.is_extended_real):
        return math.nan
    try:
        return float(value)  # beyond float64: +-inf
    except (TypeError, ValueError):
        return math.nan


__all__ = ["EXACT_POINTS", "far_values"]
