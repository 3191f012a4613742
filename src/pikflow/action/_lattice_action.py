r"""Lattice actions: an :class:`Action` with a geometry, written as a density per site (paper eq. 31).

A density is a SymPy expression in the field(s) (``phi``, or e.g. ``phi1, phi2``),
``shift(field, mu)`` / ``shift(field, mu, -1)`` (the field at :math:`n \pm \hat\mu`),
``sum_mu(...)`` (the sum over the :math:`d` directions, ``mu = 0 .. d-1``), ``d`` and
couplings; the action is :math:`\hat S = \sum_n \rho(n)`. It is parsed by the one parser of
the symbolic layer and expanded into site symbols (:mod:`._density`). SymPy only: the
lowering to JAX is :func:`pikflow.lowering.lower_site_expressions`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence

import sympy as sp

from .._errors import ActionError
from ._action import Action
from ._density import _RESERVED, _field_names, expand_density, parse_density, phi, site_symbols
from ._geometry import Lattice
from ._parse import as_names


class LatticeAction(Action):
    r"""A lattice action :math:`\hat S(\phi) = \sum_n \rho(\phi \text{ near } n)` (paper eq. 31).

    The same as ``Action(density, fields=..., couplings=..., lattice=...)``: an :class:`Action`
    whose :attr:`lattice` is set (``None`` for a 0-D action).

    Parameters
    ----------
    density
        A string or SymPy expression in the field(s), ``shift(field, mu[, -1])``, ``sum_mu``,
        ``d`` and couplings (use :data:`pikflow.lattice.phi`, ``shift``, ``sum_mu``,
        ``mu``, ``d`` from Python).
    lattice
        A :class:`Lattice` or its shape.
    fields
        The field components, in order (``n`` per site), as names or Symbols. Default: the
        symbols that appear inside ``shift(...)``, with ``phi`` whenever it appears, sorted by
        name (or, with ``couplings`` given, every symbol that is not a coupling); every other
        symbol is a coupling. A single field has configurations of the lattice's shape,
        ``n > 1`` fields have shape ``(n, *lattice)`` (:attr:`field_shape`).
    couplings
        Optional: the names of the couplings; any other symbol that is not a field is then an error.

    Attributes
    ----------
    fields
        The field components as real Symbols, as in 0-D (:attr:`field_names`: their names).
    couplings
        The couplings, Symbols sorted by name.
    expr
        The density expanded into site symbols (``phi``, ``phi_1_0``, ``f[0,1]``, ...).
    source
        The density as given, unexpanded.

    Examples
    --------
    >>> S = LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4", [8, 8])
    >>> sorted(map(str, S.couplings))
    ['lam', 'm2']
    >>> O2 = LatticeAction("(m2 + 2*d)/2*(a**2 + b**2) - sum_mu(a*shift(a, mu) + b*shift(b, mu))", [8, 8])
    >>> O2.field_names, O2.field_shape
    (('a', 'b'), (2, 8, 8))
    """

    def __init__(self, *args, **kwargs):
        if getattr(self, "_built", False):  # built by Action(..., lattice=...), which passes Action's arguments
            return
        self._build(*args, **kwargs)

    def _build(
        self,
        density: sp.Expr | str,
        lattice: Lattice | Sequence[int] | None = None,
        fields: Sequence[str | sp.Symbol] | str | sp.Symbol | None = None,
        *,
        couplings: Sequence[str | sp.Symbol] | None = None,
    ) -> None:
        if lattice is None:
            raise ActionError(
                "a lattice action needs a lattice: Action(density, lattice=[8, 8]) or LatticeAction(density, [8, 8])"
            )
        self.lattice = lattice if isinstance(lattice, Lattice) else Lattice(lattice)
        raw = parse_density(density) if isinstance(density, str) else density
        if not isinstance(raw, sp.Expr):
            raise ActionError(f"the lattice density must be a string or a SymPy expression, got {type(raw).__name__}")
        self.source = raw
        declared = None if couplings is None else {str(c) for c in as_names(couplings, what="couplings")}
        #: whether the fields were inferred rather than named
        self.fields_inferred = fields is None
        if fields is None and declared is not None:
            fields = sorted(str(s) for s in raw.free_symbols if str(s) not in declared | (_RESERVED - {"phi"}))
        self.field_names: tuple[str, ...] = _field_names(raw, fields)
        expr = expand_density(raw, self.lattice.d, self.field_names)
        self.expr = expr.xreplace({s: sp.Symbol(str(s), real=True) for s in expr.free_symbols})
        sites = site_symbols(self.expr, self.lattice.d)
        if phi not in sites and not sites:
            raise ActionError(f"the density {raw} does not depend on the field 'phi'")
        bad = [str(s) for s in self.expr.free_symbols if s not in sites and str(s) in _RESERVED]
        if bad:
            raise ActionError(f"the density uses the reserved name(s) {bad} as couplings; rename them")
        self.couplings: tuple[sp.Symbol, ...] = tuple(
            sorted((s for s in self.expr.free_symbols if s not in sites), key=str)
        )
        if declared is not None:
            undeclared = [str(c) for c in self.couplings if str(c) not in declared]
            if undeclared:
                raise ActionError(f"unknown symbol(s) {undeclared} in the density: declare them as fields or couplings")
        self.fields: tuple[sp.Symbol, ...] = tuple(sp.Symbol(n, real=True) for n in self.field_names)
        self._built = True

    @property
    def n(self) -> int:
        """The number of field components per site (:attr:`n_fields`)."""
        return len(self.field_names)

    @property
    def field_shape(self) -> tuple[int, ...]:
        """The shape of one configuration: the lattice's for one field, ``(n, *lattice)`` for ``n > 1``."""
        return self.lattice.shape if self.n == 1 else (self.n, *self.lattice.shape)

    @property
    def d(self) -> int:
        """The lattice dimension."""
        return self.lattice.d

    def symmetry(self, values: Mapping | None = None):
        r"""The :class:`Symmetry` of the action, detected in SymPy (:meth:`Symmetry.of_density`).

        With symbolic couplings a symmetry must hold for every value of them (``kx`` and ``ky``
        on the two axes: no axis permutation); ``values`` (numbers for some or all couplings)
        checks it at those values instead (``kx = ky = 1``: the permutation holds).
        """
        from ._symmetry import Symmetry

        expr = self.expr
        if values:
            expr = sp.expand(expr.xreplace({self.coupling(k): sp.nsimplify(v) for k, v in values.items()}))
        return Symmetry.of_density(expr, self.lattice, self.field_names)

    def is_z2_symmetric(self) -> bool:
        r"""Whether :math:`\hat S(-\phi) = \hat S(\phi)` (every component at every site flipped; :meth:`symmetry`)."""
        return self.symmetry().z2

    def gradient(self) -> list[sp.Expr]:
        """Not defined site by site for an action: the gradient stencil is ``LatticePath.gradient_density``."""
        raise ActionError(
            "a lattice action's gradient is a stencil over sites: build a path (pikflow.Path(action, {...})) "
            "and use path.gradient_density(field)"
        )

    def substitute(self, values: Mapping[sp.Symbol | str, float | sp.Expr]) -> LatticeAction:
        """Return the action with some couplings replaced by numbers or expressions."""
        names = {str(self.coupling(k)): v for k, v in values.items()}
        subs = {s: names[str(s)] for s in self.source.free_symbols if str(s) in names}
        return LatticeAction(self.source.subs(subs), self.lattice, self.field_names)

    def coupling(self, name) -> sp.Symbol:
        """The coupling symbol called ``name``."""
        for c in self.couplings:
            if str(c) == str(name):
                return c
        if str(name) in self.field_names:
            raise ActionError(f"{str(name)!r} is a field of the density, not a coupling: it cannot be given a value")
        raise ActionError(
            f"the density has no coupling {str(name)!r}; its couplings are {list(map(str, self.couplings))}"
        )

    def __repr__(self) -> str:
        return f"LatticeAction({self.source}, {self.lattice})"


# the signature shown by help() and the API reference: that of the constructor's real arguments
LatticeAction.__init__.__signature__ = inspect.signature(LatticeAction._build)
