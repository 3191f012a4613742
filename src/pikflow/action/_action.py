r"""Actions :math:`\hat S(\phi)` written as SymPy expressions (paper eq. 1).

An :class:`Action` holds a scalar SymPy expression, the field symbols it depends on
(one or several real components) and its couplings (every other free symbol). With a
geometry (``lattice=``) the expression is a lattice density (paper eq. 31) and the action
is a :class:`~pikflow.action.LatticeAction`, a subclass: one type for every field space.
It is pure SymPy: nothing here imports JAX.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sympy as sp

from .._errors import ActionError
from ._parse import as_expression, as_names, as_symbol


class Action:
    r"""A (negative log) density :math:`\hat S(\phi)`, :math:`p(\phi) \propto e^{-\hat S(\phi)}`.

    Parameters
    ----------
    expr
        The action as a SymPy expression or a string in SymPy syntax
        (``"m2/2*phi**2 + lam/4*phi**4"``). Strings are parsed with
        :func:`sympy.parse_expr` and an explicit namespace, never ``eval``.
    fields
        The field components, as Symbols or names. If omitted, every free symbol that
        is not listed in ``couplings`` is a field.
    couplings
        The names of the couplings (parameters). If omitted, every free symbol that is
        not a field is a coupling.
    lattice
        ``None`` (default): a 0-D action of ``len(fields)`` components. A lattice (a
        :class:`~pikflow.action.Lattice` or its shape, e.g. ``[8, 8]``): ``expr`` is a density
        per site in the grammar ``shift(field, mu[, -1])``, ``sum_mu(...)``, ``d`` (paper
        eq. 31) and the result is a :class:`~pikflow.action.LatticeAction` (its fields are
        then inferred as the shifted symbols when neither ``fields`` nor ``couplings`` is given).

    Attributes
    ----------
    fields, couplings
        Tuples of real Symbols, in every space.
    lattice
        The geometry, ``None`` in 0-D.

    Examples
    --------
    >>> import sympy as sp
    >>> phi, m2, lam = sp.symbols("phi m2 lam")
    >>> Action(m2 / 2 * phi**2 + lam / 4 * phi**4, fields=[phi]).couplings
    (lam, m2)
    """

    #: The geometry of the field space: ``None`` for a 0-D action, a Lattice for a lattice action.
    lattice = None

    def __new__(cls, *args, lattice=None, **kwargs):
        if cls is Action and lattice is not None:
            from ._lattice_action import LatticeAction

            expr = args[0] if args else kwargs.pop("expr", None)
            fields = args[1] if len(args) > 1 else kwargs.pop("fields", None)
            if len(args) > 2:
                raise ActionError("Action takes the expression and the fields positionally; give the rest by name")
            self = object.__new__(LatticeAction)
            self._build(expr, lattice, fields, **kwargs)
            return self
        return super().__new__(cls)

    def __init__(
        self,
        expr: sp.Expr | str,
        fields: Iterable[sp.Symbol | str] | sp.Symbol | str | None = None,
        *,
        couplings: Iterable[sp.Symbol | str] | None = None,
        lattice: None = None,
    ):
        expr = as_expression(expr, what="action")
        fields = None if fields is None else as_names(fields, what="fields")
        couplings = None if couplings is None else as_names(couplings, what="couplings")
        # every symbol is real: derivatives of Abs, sign, ... then stay real
        self.expr = expr.xreplace({s: real_symbol(s) for s in expr.free_symbols})
        free = self.expr.free_symbols
        if isinstance(fields, (str, sp.Symbol)):
            fields = [fields]
        if fields is None and couplings is None:
            raise ActionError("say which symbols are fields: Action(expr, fields=[phi]) (or give couplings=[...])")
        #: whether the fields were inferred (every symbol not in ``couplings``) rather than named
        self.fields_inferred = fields is None
        if fields is None:
            coup = {str(as_symbol(c, what="coupling")) for c in couplings}
            fields = sorted((s for s in free if str(s) not in coup), key=str)
        field_syms = tuple(as_symbol(f, what="field") for f in fields)
        if not field_syms:
            raise ActionError(
                f"the action {self.expr} has no field: every symbol in it is a coupling; give fields=[...]"
                + (" (in a configuration: [action] fields = [...])" if self.fields_inferred else "")
            )
        if len(set(field_syms)) != len(field_syms):
            raise ActionError(f"fields {list(map(str, field_syms))} contain a repeated name")
        by_name = {str(s): s for s in free}
        # a field given by name must be the very symbol used in the expression
        field_syms = tuple(by_name.get(str(f), real_symbol(f)) for f in field_syms)
        missing = [str(f) for f in field_syms if f not in free]
        if missing:
            raise ActionError(
                f"field(s) {missing} appear nowhere in the action {self.expr}; its symbols are {sorted(map(str, free))}"
            )
        coup = sorted(free - set(field_syms), key=str)
        if couplings is not None:
            declared = {str(as_symbol(c, what="coupling")) for c in couplings}
            undeclared = [str(c) for c in coup if str(c) not in declared]
            if undeclared:
                raise ActionError(f"unknown symbol(s) {undeclared} in the action: declare them as fields or couplings")
        self.fields: tuple[sp.Symbol, ...] = field_syms
        self.couplings: tuple[sp.Symbol, ...] = tuple(coup)

    @property
    def n_fields(self) -> int:
        """Number of real field components."""
        return len(self.fields)

    def inference_hint(self, suspect: sp.Symbol | str | None = None) -> str:
        """When the fields were inferred and are several: a sentence naming them and how to fix a wrong guess.

        ``suspect`` is the field a check failed along (a likely misspelling or coupling without a value).
        """
        if not self.fields_inferred or self.n_fields < 2:
            return ""
        names = [str(f) for f in self.fields]
        sus = str(suspect) if suspect is not None and str(suspect) in names else None
        intended = [n for n in names if n != sus] if sus else _likely_fields(names)
        about = f"If {sus!r} is" if sus else "If one of them is"
        return (
            f" Note: the fields were inferred as every symbol that is not a coupling: {names}. {about} a coupling, "
            f"give it a value ([path] {sus or 'name'} = [start, end]; Python: Path(action, {{...}})); if it is a "
            f"misspelt field, correct the density; or name the fields explicitly: [action] fields = "
            f"{_toml_list(intended)} (Python: Action(..., fields=[...]))."
        )

    def gradient(self) -> list[sp.Expr]:
        r""":math:`\partial \hat S / \partial \phi_a` for every field component."""
        return [sp.diff(self.expr, f) for f in self.fields]

    def substitute(self, values: Mapping[sp.Symbol | str, float | sp.Expr]) -> Action:
        """Return the action with some couplings replaced by numbers or expressions."""
        subs = {self.coupling(k): v for k, v in values.items()}
        return Action(self.expr.subs(subs), fields=self.fields, couplings=_free_after(self.expr, subs, self.fields))

    def coupling(self, name: sp.Symbol | str) -> sp.Symbol:
        """The coupling symbol called ``name``, or an :class:`ActionError` naming the known ones."""
        key = str(name)
        for c in self.couplings:
            if str(c) == key:
                return c
        if key in map(str, self.fields):
            raise ActionError(f"{key!r} is a field of the action, not a coupling: it cannot be given a value")
        raise ActionError(
            f"unknown coupling {key!r}: the action {self.expr} has couplings {[str(c) for c in self.couplings]}"
        )

    def is_z2_symmetric(self) -> bool:
        r"""Whether :math:`\hat S(-\phi) = \hat S(\phi)` (all components flipped together)."""
        return is_even(self.expr, self.fields)

    def __repr__(self) -> str:
        return f"Action({self.expr}, fields={list(self.fields)})"


def _likely_fields(names: list[str]) -> list[str]:
    """The inferred field names that look intended: ASCII ones if some are not (a stray ``φ``), else all."""
    ascii_names = [n for n in names if n.isascii()]
    return ascii_names if ascii_names and len(ascii_names) < len(names) else names


def _toml_list(names: list[str]) -> str:
    return "[" + ", ".join(f'"{n}"' for n in names) + "]"


def real_symbol(sym: sp.Symbol | str) -> sp.Symbol:
    """The real symbol of the same name (all pikflow symbols are real)."""
    return sp.Symbol(str(sym), real=True)


def by_name(expr: sp.Expr, symbols: Iterable[sp.Symbol]) -> sp.Expr:
    """Replace the free symbols of ``expr`` by those in ``symbols`` with the same name."""
    table = {str(s): s for s in symbols}
    return expr.xreplace({s: table[str(s)] for s in expr.free_symbols if str(s) in table})


def is_even(expr: sp.Expr, fields: Iterable[sp.Symbol]) -> bool:
    r"""Whether ``expr`` is invariant under :math:`\phi \to -\phi` for all ``fields`` at once."""
    flipped = expr.xreplace({f: -f for f in fields})
    diff = sp.expand(flipped - expr)
    if diff == 0:
        return True
    return sp.simplify(diff) == 0


def _free_after(expr: sp.Expr, subs: Mapping, fields: Iterable[sp.Symbol]) -> list[sp.Symbol]:
    return sorted(expr.subs(subs).free_symbols - set(fields), key=str)
