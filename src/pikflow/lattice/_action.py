r"""Lattice actions written as a density per site, and paths of them (paper eq. 31).

A density is a SymPy expression in ``phi`` (the field at site :math:`n`),
``shift(phi, mu)`` / ``shift(phi, mu, -1)`` (the field at :math:`n \pm \hat\mu`),
``sum_mu(...)`` (the sum over the :math:`d` directions, ``mu`` the direction index,
``0 .. d-1``), ``d`` and couplings; the action is :math:`\hat S = \sum_n \rho(n)`.
Internally the density is expanded into *site symbols*: ``phi`` for the offset 0 and
``phi_1_m1`` for the field at :math:`n + (1, -1)`. From the expanded density the
gradient stencil :math:`\partial \hat S/\partial\phi_n = \sum_o
(\partial\rho/\partial\phi_o)(n - o)` (every term in which the site appears) and the
field-space Laplacian :math:`\sum_n \partial^2\hat S/\partial\phi_n^2` are derived in
SymPy once and lowered to JAX with ``jnp.roll``.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from collections.abc import Callable, Mapping, Sequence
from tokenize import TokenError

import jax.numpy as jnp
import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.parsing.sympy_parser import parse_expr

from .._errors import ActionError
from ..action._parse import _NUMBERS, _TRANSFORMS, ALLOWED_FUNCTIONS, as_expression, as_mapping, check_number_sizes
from ..action._path import coupling_expression
from ..action._path import t as T
from ._lattice import Lattice

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

    Raises
    ------
    ActionError
        Malformed text or a Python keyword used as a name.
    """
    what = "lattice density"
    if not isinstance(text, str):
        raise ActionError(f"the {what} must be a string or a SymPy expression, got {type(text).__name__}")
    if not text.strip():
        raise ActionError(
            f"the {what} is empty: e.g. '(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4'"
        )
    for word in re.findall(r"[A-Za-z_]\w*", text):
        if keyword.iskeyword(word):
            raise ActionError(f"the {what} {text!r} uses the Python keyword {word!r} as a name; rename it")
    check_number_sizes(text, what=what)
    local = {"phi": phi, "mu": mu, "d": d, "shift": shift, "sum_mu": sum_mu}
    try:
        return parse_expr(
            text, local_dict=local, global_dict={**_NUMBERS, **ALLOWED_FUNCTIONS}, transformations=_TRANSFORMS
        )
    except (SyntaxError, TypeError, ValueError, AttributeError, TokenError) as err:
        raise ActionError(f"cannot parse the {what} {text!r}: {err}") from None
    except Exception as err:  # noqa: BLE001  (parse_expr can raise anything SymPy raises)
        raise ActionError(f"cannot parse the {what} {text!r}: {type(err).__name__}: {err}") from None


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


class LatticeAction:
    r"""A lattice action :math:`\hat S(\phi) = \sum_n \rho(\phi \text{ near } n)` (paper eq. 31).

    Parameters
    ----------
    density
        A string or SymPy expression in the field(s), ``shift(field, mu[, -1])``, ``sum_mu``,
        ``d`` and couplings (use :data:`pikflow.lattice.phi`, ``shift``, ``sum_mu``,
        ``mu``, ``d`` from Python).
    lattice
        A :class:`Lattice` or its shape.
    fields
        The names of the field components, in order (``n`` components per site). Default: the
        symbols that appear inside ``shift(...)``, with ``phi`` whenever it appears, sorted by
        name; every other symbol is a coupling. A single field has configurations of the
        lattice's shape, ``n > 1`` fields have shape ``(n, *lattice)`` (:attr:`field_shape`).

    Examples
    --------
    >>> S = LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4", [8, 8])
    >>> sorted(map(str, S.couplings))
    ['lam', 'm2']
    >>> O2 = LatticeAction("(m2 + 2*d)/2*(a**2 + b**2) - sum_mu(a*shift(a, mu) + b*shift(b, mu))", [8, 8])
    >>> O2.field_names, O2.field_shape
    (('a', 'b'), (2, 8, 8))
    """

    def __init__(self, density: sp.Expr | str, lattice: Lattice | Sequence[int], fields: Sequence[str] | None = None):
        self.lattice = lattice if isinstance(lattice, Lattice) else Lattice(lattice)
        raw = parse_density(density) if isinstance(density, str) else density
        if not isinstance(raw, sp.Expr):
            raise ActionError(f"the lattice density must be a string or a SymPy expression, got {type(raw).__name__}")
        self.source = raw
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

    @property
    def n(self) -> int:
        """The number of field components per site."""
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

    def coupling(self, name) -> sp.Symbol:
        """The coupling symbol called ``name``."""
        for c in self.couplings:
            if str(c) == str(name):
                return c
        raise ActionError(
            f"the density has no coupling {str(name)!r}; its couplings are {list(map(str, self.couplings))}"
        )

    def __repr__(self) -> str:
        return f"LatticeAction({self.source}, {self.lattice})"


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
    flat = []
    for e in exprs:
        e = e.xreplace(table).xreplace({s: T for s in e.free_symbols if str(s) == "t"})
        unknown = {str(s) for s in e.free_symbols} - {str(a) for a in args} - {"t"}
        if unknown:
            raise ActionError(
                f"the lattice expression {e} still depends on {sorted(unknown)}: give every coupling a value"
            )
        flat.append(e)
    raw = sp.lambdify([*args, T], flat, modules="jax", cse=True, docstring_limit=0)
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
    flat = []
    for e in exprs:
        e = e.xreplace(table).xreplace({s: T for s in e.free_symbols if str(s) == "t"})
        unknown = {str(s) for s in e.free_symbols} - {str(a) for a in args} - {"t"}
        if unknown:
            raise ActionError(
                f"the lattice expression {e} still depends on {sorted(unknown)}: give every coupling a value"
            )
        flat.append(e)
    raw = sp.lambdify([*args, T], flat, modules="jax", cse=True, docstring_limit=0)
    axes = tuple(range(-dim, 0))

    def f(field, time=0.0):
        rolled = [
            jnp.roll(field[(Ellipsis, a) + (slice(None),) * dim], tuple(-x for x in o), axis=axes) for a, o in keys
        ]
        out = raw(*rolled, time)
        shape = field.shape[: field.ndim - dim - 1] + field.shape[field.ndim - dim :]
        return [jnp.broadcast_to(jnp.asarray(o, dtype=field.dtype), shape) for o in out]

    return f


class LatticePath:
    r"""A path of lattice actions :math:`\hat S_t`, optionally with a spectral Gaussian part.

    .. math::  \hat S_t(\phi) = \sum_n \rho_t(n) + w(t)\, \tfrac12 \phi^T K_0 \phi,

    with :math:`\rho_t` the density with couplings as functions of ``t`` (eq. 22b for
    pairs) and :math:`K_0` an optional translation-invariant precision (diagonal in
    momentum space, the matched base of the user guide) with weight :math:`w(t) = 1 - t`.

    Parameters
    ----------
    action
        The :class:`LatticeAction`.
    couplings
        For every coupling: a number, a pair ``(start, end)`` (linear in ``t``) or an
        expression in ``t``.
    """

    def __init__(self, action: LatticeAction, couplings: Mapping | None = None):
        if not isinstance(action, LatticeAction):
            raise ActionError(f"LatticePath needs a LatticeAction, got {type(action).__name__}")
        self.action = action
        self.lattice = action.lattice
        self.field_shape: tuple[int, ...] = action.field_shape
        couplings = as_mapping(couplings, what="couplings")
        self.coupling_exprs = {}
        for name, value in couplings.items():
            self.coupling_exprs[action.coupling(name)] = coupling_expression(str(name), value)[0]
        missing = [str(c) for c in action.couplings if c not in self.coupling_exprs]
        if missing:
            raise ActionError(_missing_couplings(missing, [str(c) for c in self.coupling_exprs], action.field_names))
        self.density: sp.Expr = sp.expand(action.expr.xreplace(self.coupling_exprs))
        self.spectral_precision: np.ndarray | None = None
        self.spectral_weight: sp.Expr = sp.Integer(0)
        self.zero_mode: float = 0.0
        self.linear: float = 0.0
        self._lowered = None
        self._symmetry = None

    @classmethod
    def linear(cls, action: LatticeAction, start: Mapping, end: Mapping) -> LatticePath:
        """Couplings linear in ``t`` from ``start`` to ``end`` (paper eq. 22b)."""
        start = {str(k): v for k, v in as_mapping(start, what="start").items()}
        end = {str(k): v for k, v in as_mapping(end, what="end").items()}
        if set(start) != set(end):
            raise ActionError(f"give every coupling at both ends: start has {sorted(start)}, end has {sorted(end)}")
        return cls(action, {k: (start[k], end[k]) for k in start})

    @classmethod
    def matched(
        cls, action: LatticeAction, values: Mapping, precision, zero_mode: float = 0.0, linear: float = 0.0
    ) -> LatticePath:
        r""":math:`\hat S_t = (1-t)\,\hat S_0 + t\,\hat S_1` from a Gaussian (or zero-mode mixture) base to the target.

        :math:`\hat S_0 = \tfrac12\phi^T K_0\phi - \log\cosh(bM)`, :math:`M = \sum_n\phi_n`: the
        Gaussian of the user guide for :math:`b = 0`, the two-Gaussian mixture of
        :class:`GaussianLatticeBase` (``m0 > 0``, :math:`b = K_0(0)m_0`) otherwise.

        Parameters
        ----------
        action, values
            The target :math:`\hat S_1`: the action with numeric couplings.
        precision
            :math:`K_0(k)` on the FFT grid (shape of the lattice), positive.
        zero_mode
            :math:`b \ge 0` (``base.zero_mode_coupling``).
        linear
            :math:`h` of a base with a mean (``base.linear_coupling``): :math:`\hat S_0` gains :math:`-hM`.
        """
        path = cls(action, {k: float(v) for k, v in values.items()})
        K0 = np.asarray(precision, dtype=float)
        if K0.shape != action.field_shape or not np.all(K0 > 0) or not np.all(np.isfinite(K0)):
            raise ActionError(f"the base precision must be positive and finite with shape {action.field_shape}")
        if action.n > 1 and (zero_mode or linear):
            raise ActionError("a zero-mode mixture or a mean of the base is only for single-component fields")
        if not (np.isfinite(zero_mode) and zero_mode >= 0):
            raise ActionError(f"the zero-mode coupling b must be a finite number >= 0, got {zero_mode!r}")
        path.density = sp.expand(T * path.density)
        path.spectral_precision = K0
        path.spectral_weight = 1 - T
        if not np.isfinite(linear):
            raise ActionError(f"the linear coupling h must be a finite number, got {linear!r}")
        path.zero_mode = float(zero_mode)
        path.linear = float(linear)
        path._symmetry = None
        return path

    # ---------------------------------------------------------------- symbolic pieces
    @property
    def d(self) -> int:
        """The lattice dimension."""
        return self.lattice.d

    def at(self, time: float) -> sp.Expr:
        r"""The local density :math:`\rho_t` at a fixed time."""
        return self.density.xreplace({T: sp.Float(time)})

    def gradient_density(self, field: str | None = None) -> sp.Expr:
        r"""The stencil :math:`\partial_{\phi_n}\sum_m\rho_t(m) = \sum_o (\partial\rho_t/\partial\phi_o)(n-o)`.

        ``field``: the derivative by that component (default: the only one, or ``phi``).
        """
        dim = self.d
        if field is None and self.action.n > 1:
            raise ActionError(f"name the component: one of {list(self.action.field_names)}")
        sites = site_symbols(self.density, dim, None if self.action.n == 1 else field)
        return sp.expand(
            sp.Add(*[shift_sites(sp.diff(self.density, s), [-x for x in o], dim) for s, o in sites.items()])
        )

    def gradient_densities(self) -> list[sp.Expr]:
        """:meth:`gradient_density` of every component, in the order of ``action.field_names``."""
        if self.action.n == 1:
            return [self.gradient_density()]
        return [self.gradient_density(f) for f in self.action.field_names]

    def laplacian_density(self) -> sp.Expr:
        r"""A site density whose sum is :math:`\sum_n \partial^2 \hat S_t/\partial\phi_n^2` (local part)."""
        return sp.expand(sp.Add(*[sp.diff(self.density, s, 2) for s in site_symbols(self.density, self.d)]))

    def is_z2_symmetric(self) -> bool:
        r"""Whether the action is even under :math:`\phi \to -\phi` at every ``t`` (:meth:`symmetry`)."""
        return self.symmetry().z2

    def symmetry(self):
        r"""The :class:`Symmetry` of :math:`\hat S_t` that holds at every ``t`` (detected in SymPy, cached).

        The density's couplings are the path's expressions in ``t``, so a symmetry must hold
        along the whole path. A matched path's spectral Gaussian keeps only the elements under
        which its :math:`K_0(k)` is invariant; its :math:`\log\cosh(bM)` term is invariant under all.
        """
        if self._symmetry is None:
            from ._symmetry import Symmetry

            sym = Symmetry.of_density(self.density, self.lattice, self.action.field_names)
            if self.spectral_precision is not None:
                sym = sym.restrict_to_spectrum(self.spectral_precision)
                if self.linear:  # the base's -hM is odd under phi -> -phi
                    sym = dataclasses.replace(sym, z2=False)
            self._symmetry = sym
        return self._symmetry

    # ---------------------------------------------------------------- lowered pieces
    def _lower(self):
        if self._lowered is None:
            dens, dsdt = self.density, sp.diff(self.density, T)
            self._lowered = lower_site_expressions(
                [dens, dsdt, *self.gradient_densities(), self.laplacian_density()], self.d, self.action.field_names
            )
            K0 = self.spectral_precision  # numpy: never cache a traced array
            w = sp.lambdify([T], self.spectral_weight, modules="jax")
            dw = sp.lambdify([T], sp.diff(self.spectral_weight, T), modules="jax")
            self._spectral = (K0, w, dw)
        return self._lowered

    def _quadratic(self, field):
        K0 = self._spectral[0]
        axes = self.lattice.axes
        ft = jnp.fft.fftn(field, axes=axes)
        every = tuple(range(-len(self.field_shape), 0))  # the lattice axes, and the component axis if n > 1
        energy = 0.5 * jnp.sum(K0 * jnp.abs(ft) ** 2, axis=every) / self.lattice.volume
        grad = jnp.real(jnp.fft.ifftn(K0 * ft, axes=axes))
        if self.zero_mode:
            # the mixture base's -log cosh(b M) (GaussianLatticeBase with m0 > 0): value, uniform gradient
            from ._free import log_cosh_term

            M = jnp.sum(field, axis=axes)
            value, slope, _ = log_cosh_term(self.zero_mode, M, self.lattice.volume)
            energy = energy - value
            grad = grad - slope.reshape(jnp.shape(M) + (1,) * self.d)
        if self.linear:
            # a base with a mean mu: -h M, h = K0(0) mu (GaussianLatticeBase with mean)
            energy = energy - self.linear * jnp.sum(field, axis=axes)
            grad = grad - self.linear
        return energy, grad

    def value(self, field, time):
        r""":math:`\hat S_t(\phi)` of one configuration (array of the lattice shape)."""
        out = jnp.sum(self._lower()(field, time)[0])
        if self.spectral_precision is not None:
            out = out + self._spectral[1](time) * self._quadratic(field)[0]
        return out

    def dsdt(self, field, time):
        r""":math:`d\hat S_t/dt(\phi)` of one configuration."""
        out = jnp.sum(self._lower()(field, time)[1])
        if self.spectral_precision is not None:
            out = out + self._spectral[2](time) * self._quadratic(field)[0]
        return out

    def gradient(self, field, time):
        r""":math:`\partial\hat S_t/\partial\phi_n`, same shape as ``field`` (the lowered stencil)."""
        parts = self._lower()(field, time)[2:-1]
        out = parts[0] if len(parts) == 1 else jnp.stack(parts, axis=-self.d - 1)
        if self.spectral_precision is not None:
            out = out + self._spectral[1](time) * self._quadratic(field)[1]
        return out

    def laplacian(self, field, time):
        r""":math:`\sum_n\partial^2\hat S_t/\partial\phi_n^2` (trace of the Hessian)."""
        out = jnp.sum(self._lower()(field, time)[-1])
        if self.spectral_precision is not None:
            lap = jnp.sum(self.spectral_precision)
            if self.zero_mode:
                from ._free import log_cosh_term

                lap = lap - log_cosh_term(self.zero_mode, jnp.sum(field), self.lattice.volume)[2]
            out = out + self._spectral[1](time) * lap
        return out

    def __repr__(self) -> str:
        extra = "" if self.spectral_precision is None else " + (1-t) * spectral Gaussian"
        if self.zero_mode:
            extra += f" - (1-t) log cosh({self.zero_mode:.4g} M)"
        if self.linear:
            extra += f" - (1-t) {self.linear:.4g} M"
        return f"LatticePath({self.density}{extra}, {self.lattice})"


def _missing_couplings(missing: list[str], given: list[str], fields: Sequence[str] = ("phi",)) -> str:
    """Couplings of a lattice density without a value, with a hint when one looks like a misspelt field."""
    import difflib

    hints = [
        f"{n!r} looks like {c[0]!r}" for n in missing if (c := difflib.get_close_matches(n, [*fields, *given], 1, 0.5))
    ]
    hint = f" ({'; '.join(hints)}: if misspelt, correct the density)" if hints else ""
    return (
        f"coupling(s) {missing} have no value on the path: the lattice field(s) are {list(fields)} (the symbols "
        "inside shift(...), and phi; name them with fields = [...]) and every other symbol "
        f"is a coupling, given so far {sorted(given)}{hint}. Give each a number, [start, end] or an expression in t "
        "([path] in a configuration)"
    )
