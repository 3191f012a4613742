r"""Lowering lattice site expressions to JAX: every site symbol becomes a ``jnp.roll`` of the field (paper eq. 31).

The expressions are those of the lattice density grammar (:mod:`pikflow.action`): site
symbols ``phi``, ``phi_1_m1``, ``f[0,0]`` (the field at :math:`n + o`), couplings already
replaced by functions of ``t``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp
import sympy as sp

from .._errors import ActionError
from ..action._density import site, site_key, site_symbols
from ..action._path import t as T
from ._lower import jax_lambdify


def lower_site_expressions(exprs: Sequence[sp.Expr], dim: int, fields: Sequence[str] | None = None) -> Callable:
    """Lower site-wise expressions (site symbols and ``t``) to ``f(phi, t) -> list of arrays of phi.shape``.

    Every site symbol becomes ``jnp.roll(phi, -offset)`` (the field at ``n + offset``). With
    more than one name in ``fields`` the configuration has shape ``(..., n, *lattice)`` and
    the site symbol of field ``a`` rolls component ``a``; the outputs have the lattice's shape.
    """
    if fields is not None and len(fields) > 1:
        return _lower_components(exprs, dim, tuple(str(f) for f in fields))
    exprs = [sp.sympify(e) for e in exprs]
    offsets = sorted({o for e in exprs for o in site_symbols(e, dim).values()})
    args = [sp.Symbol(f"x{i}", real=True) for i in range(len(offsets))]
    table = {site(o): a for o, a in zip(offsets, args, strict=True)}
    raw = _lambdify_sites(exprs, table, args)
    axes = tuple(range(-dim, 0))

    def f(field, time=0.0):
        rolled = [jnp.roll(field, tuple(-o for o in off), axis=axes) for off in offsets]
        out = raw(*rolled, time)
        return [jnp.broadcast_to(jnp.asarray(o, dtype=field.dtype), field.shape) for o in out]

    return f


def _lower_components(exprs: Sequence[sp.Expr], dim: int, fields: tuple[str, ...]) -> Callable:
    """:func:`lower_site_expressions` for ``n > 1`` components (axis ``-dim-1`` of the configuration)."""
    exprs = [sp.sympify(e) for e in exprs]
    keys = sorted(
        {(fields.index(k[0]), k[1]) for e in exprs for s in e.free_symbols if (k := site_key(s, dim)) is not None}
    )
    args = [sp.Symbol(f"x{i}", real=True) for i in range(len(keys))]
    table = {site(o, fields[a]): x for (a, o), x in zip(keys, args, strict=True)}
    raw = _lambdify_sites(exprs, table, args)
    axes = tuple(range(-dim, 0))

    def f(field, time=0.0):
        rolled = [
            jnp.roll(field[(Ellipsis, a) + (slice(None),) * dim], tuple(-x for x in o), axis=axes) for a, o in keys
        ]
        out = raw(*rolled, time)
        shape = field.shape[: field.ndim - dim - 1] + field.shape[field.ndim - dim :]
        return [jnp.broadcast_to(jnp.asarray(o, dtype=field.dtype), shape) for o in out]

    return f


def _lambdify_sites(exprs, table: dict, args: list) -> Callable:
    """The site expressions, site symbols replaced by ``args``, lowered to one JAX function of ``(*args, t)``."""
    flat = []
    for e in exprs:
        e = e.xreplace(table).xreplace({s: T for s in e.free_symbols if str(s) == "t"})
        unknown = {str(s) for s in e.free_symbols} - {str(a) for a in args} - {"t"}
        if unknown:
            raise ActionError(
                f"the lattice expression {e} still depends on {sorted(unknown)}: give every coupling a value"
            )
        flat.append(e)
    return jax_lambdify([*args, T], flat, what="the lattice expression(s) " + ", ".join(map(str, exprs)))
