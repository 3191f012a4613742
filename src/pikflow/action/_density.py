r"""The lattice density grammar: site symbols, parsing and expansion (paper eq. 31; SymPy only).

A density is a SymPy expression in the field(s) (``phi``, or e.g. ``phi1, phi2``),
``shift(field, mu)`` / ``shift(field, mu, -1)``, ``sum_mu(...)``, ``d`` and couplings. It is
expanded into *site symbols* (:func:`site`): ``phi`` / ``phi_1_m1`` for the field ``phi``
at the offsets 0 and :math:`(1, -1)`, ``f[0,0]`` / ``f[1,-1]`` for any other field ``f``.
Expressions in site symbols are lowered to JAX with ``jnp.roll`` by
:func:`pikflow.lowering.lower_site_expressions`.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence

import sympy as sp
from sympy.core.function import AppliedUndef

from .._errors import ActionError
from ._parse import ALLOWED_FUNCTIONS, as_expression, parse_expression

#: The field at site n (offset 0), as used in densities.
phi = sp.Symbol("phi", real=True)
#: The direction index inside ``sum_mu``.
mu = sp.Symbol("mu", integer=True)
#: The lattice dimension (replaced by the number of directions).
d = sp.Symbol("d", integer=True)
#: ``shift(expr, mu, step=1)``: ``expr`` at the site ``n + step * e_mu``.
shift = sp.Function("shift")
#: ``sum_mu(expr)``: the sum of ``expr`` over the directions ``mu = 0 .. d-1``.
sum_mu = sp.Function("sum_mu")

_SITE_RE = re.compile(r"^phi((?:_m?\d+)+)$")
_FIELD_SITE_RE = re.compile(r"^([A-Za-z_]\w*)\[(-?\d+(?:,-?\d+)*)\]$")
_RESERVED = {"phi", "mu", "d", "shift", "sum_mu", "t"}


def site(offset: Sequence[int], field: str | sp.Symbol = "phi") -> sp.Symbol:
    """The site symbol of the field ``field`` at ``n + offset``.

    The field ``phi`` keeps its historical names (``phi`` for the zero offset, ``phi_1_m1``
    for ``(1, -1)``); any other field ``f`` is ``f[0,0]``, ``f[1,-1]`` (offset always written).
    """
    name = str(field)
    if name == "phi":
        if not any(offset):
            return phi
        return sp.Symbol("phi" + "".join(f"_m{-o}" if o < 0 else f"_{o}" for o in offset), real=True)
    return sp.Symbol(f"{name}[{','.join(str(int(o)) for o in offset)}]", real=True)


def site_key(sym: sp.Symbol, d: int) -> tuple[str, tuple[int, ...]] | None:
    """``(field name, offset)`` of a site symbol, or ``None`` if ``sym`` is not one."""
    name = str(sym)
    if name == "phi":
        return "phi", (0,) * d
    m = _SITE_RE.match(name)
    if m:
        parts = [p for p in m.group(1).split("_") if p]
        if len(parts) != d:
            return None
        return "phi", tuple(-int(p[1:]) if p.startswith("m") else int(p) for p in parts)
    m = _FIELD_SITE_RE.match(name)
    if m:
        parts = tuple(int(p) for p in m.group(2).split(","))
        return (m.group(1), parts) if len(parts) == d else None
    return None


def site_offset(sym: sp.Symbol, d: int) -> tuple[int, ...] | None:
    """The offset of a site symbol (of any field), or ``None`` if ``sym`` is not one."""
    key = site_key(sym, d)
    return None if key is None else key[1]


def site_symbols(expr: sp.Expr, d: int, field: str | None = None) -> dict[sp.Symbol, tuple[int, ...]]:
    """The site symbols of ``expr`` (of every field, or of ``field`` only) and their offsets."""
    out = {}
    for s in expr.free_symbols:
        key = site_key(s, d)
        if key is not None and (field is None or key[0] == str(field)):
            out[s] = key[1]
    return out


def shift_sites(expr: sp.Expr, by: Sequence[int], d: int) -> sp.Expr:
    """``expr`` with every site symbol (of every field) moved by the offset ``by``."""
    by = tuple(int(b) for b in by)
    table = {}
    for s in expr.free_symbols:
        key = site_key(s, d)
        if key is not None:
            table[s] = site(tuple(a + b for a, b in zip(key[1], by, strict=True)), key[0])
    return expr.xreplace(table)


def shift_arguments(expr: sp.Expr) -> set[str]:
    """The names of the symbols inside the first argument of every ``shift(...)`` of an unexpanded density."""
    out: set[str] = set()
    for e in sp.preorder_traversal(expr):
        if isinstance(e, AppliedUndef) and e.func.__name__ == "shift" and e.args:
            out |= {str(s) for s in e.args[0].free_symbols if str(s) not in ("mu", "d")}
    return out


def parse_density(text: str) -> sp.Expr:
    """Parse a density string (``phi``, ``shift``, ``sum_mu``, ``mu``, ``d``, couplings) into SymPy, unexpanded.

    The one parser of :func:`pikflow.action.parse_expression`, with the grammar's names added.

    Raises
    ------
    ActionError
        Malformed text or a Python keyword used as a name.
    """
    local = {"phi": phi, "mu": mu, "d": d, "shift": shift, "sum_mu": sum_mu}
    return parse_expression(
        text,
        what="lattice density",
        names=local,
        example="(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4",
    )


def expand_density(expr: sp.Expr, dim: int, fields: Sequence[str] = ("phi",)) -> sp.Expr:
    """Resolve ``d``, ``sum_mu`` and ``shift`` in ``expr`` into site symbols of a ``dim``-dimensional lattice.

    ``fields`` names the field symbols; each becomes its zero-offset site symbol (:func:`site`).
    """
    by_name = {"phi": phi, "mu": mu, "d": d}
    by_name.update({str(f): site((0,) * dim, f) for f in fields})
    expr = expr.xreplace({s: by_name[str(s)] for s in expr.free_symbols if str(s) in by_name})
    expr = expr.xreplace({d: sp.Integer(dim)})

    def resolve(e):
        if isinstance(e, AppliedUndef):
            name = e.func.__name__
            if name == "sum_mu":
                if len(e.args) != 1:
                    raise ActionError(f"sum_mu takes one argument, got {e}")
                return sp.Add(*[resolve(e.args[0].xreplace({mu: sp.Integer(k)})) for k in range(dim)])
            if name == "shift":
                if len(e.args) not in (2, 3):
                    raise ActionError(f"write shift(expr, mu) or shift(expr, mu, -1), got {e}")
                direction = e.args[1]
                step = e.args[2] if len(e.args) == 3 else sp.Integer(1)
                if direction.free_symbols:
                    raise ActionError(f"{e}: the direction 'mu' of shift is only defined inside sum_mu(...)")
                if not (direction.is_integer and 0 <= int(direction) < dim):
                    raise ActionError(f"{e}: the direction must be an integer 0..{dim - 1} (or mu inside sum_mu)")
                if not step.is_integer:
                    raise ActionError(f"{e}: the step of shift must be an integer (e.g. 1 or -1)")
                by = [0] * dim
                by[int(direction)] = int(step)
                return shift_sites(resolve(e.args[0]), by, dim)
            raise ActionError(
                f"the density uses the unknown function {name!r}; allowed: shift, sum_mu and "
                f"{sorted(k for k in ALLOWED_FUNCTIONS if k not in ('pi', 'E'))}"
            )
        if e.args:
            return e.func(*[resolve(a) for a in e.args])
        return e

    out = sp.expand(resolve(expr))
    if mu in out.free_symbols:
        raise ActionError("the density uses 'mu' outside sum_mu(...): wrap the terms with mu in sum_mu(...)")
    return as_expression(out, what="lattice density")


def _field_names(raw: sp.Expr, fields) -> tuple[str, ...]:
    """The field names of a density: ``fields`` checked, or the shifted symbols (and ``phi``) sorted."""
    present = {str(s) for s in raw.free_symbols}
    if fields is None:
        names = shift_arguments(raw) | ({"phi"} & present)
        if not names:
            names = {"phi"}  # the historical default: the error below says the density lacks it
        return tuple(sorted(names))
    if isinstance(fields, (str, sp.Symbol)):
        fields = [fields]
    try:
        names = tuple(str(f) for f in fields)
    except TypeError:
        raise ActionError(f"fields must be a list of field names like ['phi1', 'phi2'], got {fields!r}") from None
    if not names:
        raise ActionError("fields must name at least one field, e.g. ['phi'] or ['phi1', 'phi2']")
    for name in names:
        if not name.isidentifier() or keyword.iskeyword(name) or (name in _RESERVED and name != "phi"):
            raise ActionError(f"the field name {name!r} is not allowed: use an identifier other than {_RESERVED}")
        if name not in present:
            raise ActionError(
                f"the field {name!r} does not appear in the density {raw}; its symbols are "
                f"{sorted(present - _RESERVED)}"
            )
    if len(set(names)) != len(names):
        raise ActionError(f"fields must be distinct, got {list(names)}")
    return names
