r"""Lowering SymPy expressions to jitted, vmappable JAX functions.

This is the only module of the numeric side that imports SymPy. It uses SymPy's
table-driven JAX printer (:func:`sympy.lambdify` with ``modules="jax"``, common
subexpressions eliminated once) and wraps the result so that it takes one
configuration ``phi`` of shape ``(n_fields,)`` and the RG time ``t``, and returns a
float64 array of a fixed shape. Nothing symbolic runs per sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._errors import ActionError, BasisError, PikflowError

_T = sp.Symbol("t", real=True)


def lower(
    exprs: sp.Expr | Sequence,
    fields: Sequence[sp.Symbol],
    *,
    time: bool = True,
    what: str = "expression",
) -> Callable:
    r"""Lower ``exprs`` (a scalar, or a nested list of any shape) to ``f(phi, t) -> Array``.

    Parameters
    ----------
    exprs
        SymPy expressions in the ``fields`` (and the symbol ``t`` if ``time``).
    fields
        The field symbols; ``phi[a]`` is bound to ``fields[a]``. Symbols are matched by
        name, so an expression written with ``sympy.Symbol("phi")`` works too.
    time
        If true the function is ``f(phi, t)``, else ``f(phi)``.

    Returns
    -------
    A pure JAX function of one configuration; use :func:`jax.vmap` for many.
    """
    array = np.array(exprs, dtype=object)
    shape = array.shape
    flat = [sp.sympify(e) for e in array.reshape(-1)]
    args = [sp.Symbol(str(f), real=True) for f in fields]
    table = {str(a): a for a in args}
    if time:
        table["t"] = _T
    unknown = set()
    for i, e in enumerate(flat):
        flat[i] = e.xreplace({s: table[str(s)] for s in e.free_symbols if str(s) in table})
        unknown |= {str(s) for s in flat[i].free_symbols if str(s) not in table}
    if unknown:
        shown = f" {flat[0]}" if len(flat) == 1 else ""
        raise unknown_symbols_error(f"the {what}{shown}", sorted(unknown), [str(f) for f in fields], time=time)
    names = [*args, _T] if time else args
    raw = jax_lambdify(names, flat, what=f"the {what}")

    def lowered(phi, t=0.0):
        out = raw(*(phi[i] for i in range(len(args))), *((t,) if time else ()))
        dtype = jnp.result_type(phi.dtype, float)
        return jnp.stack([jnp.asarray(o, dtype=dtype) + jnp.zeros((), dtype) for o in out]).reshape(shape)

    lowered.__doc__ = f"Lowered {what}: {len(flat)} expression(s) in {[str(a) for a in args]}" + (
        " and t" if time else ""
    )
    return lowered


def jax_lambdify(names: Sequence[sp.Symbol], exprs, *, what: str) -> Callable:
    """:func:`sympy.lambdify` of ``exprs`` in ``names`` to JAX (common subexpressions eliminated once), with
    SciPy's special functions from :mod:`jax.scipy.special`; traced once here, so that a function JAX cannot
    evaluate (SymPy falls back to :mod:`math` or mpmath for those) is refused now, by name, instead of failing
    inside a compiled solve."""
    import jax
    import jax.scipy.special as jss

    special = {"erf": jss.erf, "erfc": jss.erfc, "gamma": jss.gamma, "loggamma": jss.gammaln,
               "polygamma": jss.polygamma, "digamma": jss.digamma}  # fmt: skip
    scalar = jax.ShapeDtypeStruct((), jnp.result_type(float))
    try:
        raw = sp.lambdify(list(names), exprs, modules=[special, "jax"], cse=True, docstring_limit=0)
        jax.eval_shape(raw, *[scalar] * len(names))
    except (TypeError, NameError, AttributeError, ValueError, NotImplementedError) as err:
        exprs = exprs if isinstance(exprs, (list, tuple)) else [exprs]
        used = sorted({type(f).__name__ for e in exprs for f in sp.sympify(e).atoms(sp.Function)})
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ActionError(
            f"{what} cannot be evaluated by JAX ({reason}); it uses the functions {used}: write it with the "
            "functions an action may use (exp, log, sqrt, sin, cos, tan, atan, sinh, cosh, tanh, Abs, erf; a SymPy "
            "expression also erfc, gamma, loggamma, Piecewise, Min, Max)"
        ) from None
    return raw


def unknown_symbols_error(what: str, unknown: list[str], fields: list[str], *, time: bool) -> PikflowError:
    """The error for an expression with symbols that are not fields: names them, the allowed ones, a close match.

    An observable gets an :class:`ActionError` (a bad expression), anything else a :class:`BasisError`.
    """
    import difflib

    allowed = fields + (["t"] if time else [])
    close = [f"{c[0]!r} for {u!r}" for u in unknown if (c := difflib.get_close_matches(u, allowed, 1, 0.5))]
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    cls = ActionError if "observable" in what else BasisError
    only = f"the field(s) {fields}" + (" and the RG time t" if time else "")
    return cls(f"{what} uses the unknown symbol(s) {unknown}{hint}: it may use only {only}")


def check_observable(observable, fields: Sequence[sp.Symbol | str], *, what: str = "observable") -> sp.Expr:
    """Parse an observable (string or SymPy) and check its symbols against ``fields``, without compiling it."""
    from ..action._parse import as_expression

    expr = as_expression(observable, what=what)
    names = [str(f) for f in fields]
    unknown = sorted({str(s) for s in expr.free_symbols} - set(names))
    if unknown:
        raise unknown_symbols_error(f"the {what} {expr}", unknown, names, time=False)
    return expr


def lower_observable(observable, fields: Sequence[sp.Symbol]) -> Callable:
    """A jitted function ``(N, n_fields) -> (N,)`` for an observable given as SymPy or a string.

    A callable is returned unchanged (it must already act on a batch of configurations).
    """
    if callable(observable) and not isinstance(observable, sp.Basic):
        return observable
    import jax

    from ..action._parse import as_expression

    expr = as_expression(observable, what="observable")
    key = (sp.srepr(expr), tuple(sp.srepr(f) for f in fields))
    if key not in _OBSERVABLES:  # compiled once per observable and fields in a process
        _OBSERVABLES[key] = jax.jit(jax.vmap(lower(expr, fields, time=False, what="observable")))
    return _OBSERVABLES[key]


_OBSERVABLES: dict[tuple, Callable] = {}
