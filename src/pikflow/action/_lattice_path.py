r"""Lattice actions written as a density per site, and paths of them (paper eq. 31).

A density is a SymPy expression in ``phi`` (the field at site :math:`n`),
``shift(phi, mu)`` / ``shift(phi, mu, -1)`` (the field at :math:`n \pm \hat\mu`),
``sum_mu(...)`` (the sum over the :math:`d` directions, ``mu`` the direction index,
``0 .. d-1``), ``d`` and couplings; the action is :math:`\hat S = \sum_n \rho(n)`.
Several fields per site (e.g. ``phi1, phi2`` of an O(n) model) are allowed. Internally the
density is expanded into *site symbols* (:mod:`._density`): ``phi`` for the offset 0 and
``phi_1_m1`` for the field at :math:`n + (1, -1)`, ``f[1,-1]`` for another field ``f``. From the expanded density the
gradient stencil :math:`\partial \hat S/\partial\phi_n = \sum_o
(\partial\rho/\partial\phi_o)(n - o)` (every term in which the site appears) and the
field-space Laplacian :math:`\sum_n \partial^2\hat S/\partial\phi_n^2` are derived in
SymPy once and lowered to JAX with ``jnp.roll``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import sympy as sp

from .._errors import ActionError
from ._density import shift_sites, site_symbols
from ._geometry import Lattice, reflected
from ._lattice_action import LatticeAction
from ._path import Path, clock, register_path_class
from ._path import t as T

__all__ = ["LatticePath", "register_lattice_lowering"]

#: The lowering of lattice paths (:class:`pikflow.lowering.LoweredLatticePath`), registered by
#: :mod:`pikflow.lowering` on import with :func:`register_lattice_lowering`: the symbolic layer imports no JAX.
_LOWERING: dict[str, type] = {}


def register_lattice_lowering(cls: type) -> None:
    """Make :meth:`LatticePath.lowered` build a ``cls(path)`` (``cls.parameters(path)``: the traced numbers)."""
    _LOWERING["lattice"] = cls


def _lowering() -> type:
    if "lattice" not in _LOWERING:
        raise ActionError("no lowering of lattice paths is registered: import pikflow (pikflow.lowering) first")
    return _LOWERING["lattice"]


class LatticePath(Path):
    r"""A path of lattice actions :math:`\hat S_t`, optionally with a spectral Gaussian part.

    The :class:`~pikflow.Path` of a lattice action: ``pikflow.Path(action, couplings)`` builds
    one when ``action.lattice`` is set. The coupling handling, :meth:`~pikflow.Path.linear`,
    :meth:`at` and :attr:`fields` are :class:`~pikflow.Path`'s; :attr:`expr` is the density.

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
        self._bind(action, couplings)
        self.field_shape: tuple[int, ...] = action.field_shape
        self.density: sp.Expr = sp.expand(action.expr.xreplace(self.coupling_exprs))
        self.spectral_precision: np.ndarray | None = None
        self.spectral_weight: sp.Expr = sp.Integer(0)
        self.zero_mode: float = 0.0
        self.linear: float = 0.0
        #: :math:`p` of a matched path reparametrised by :math:`\tau = t^p` (:meth:`reparametrised`).
        self.time_power: float = 1.0
        self._lowered = None
        self._symmetry = None

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
            :math:`K_0(k)` on the FFT grid (shape of the lattice), positive; only its part even in :math:`k`
            acts on a real field, and that is what the path keeps.
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
        # only the part even in k acts on a real field: keep that (the real transforms need K_0(k) = K_0(-k))
        axes = tuple(range(-action.lattice.d, 0))
        path.spectral_precision = 0.5 * (K0 + reflected(K0, axes))
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

    @property
    def expr(self) -> sp.Expr:
        r"""The local density :math:`\rho_t` in site symbols (:meth:`at` fixes ``t``); the action sums it over sites."""
        return self.density

    def _missing_message(self, missing: list[str], given: list[str]) -> str:
        return _missing_couplings(missing, given, self.action.field_names)

    def reparametrised(self, power: float) -> LatticePath:
        r"""The same actions along :math:`\tau = t^p` (:meth:`pikflow.Path.reparametrised`).

        A matched path becomes :math:`\hat S_t = (1 - t^p)\,\hat S_0 + t^p\,\hat S_1`: with
        :math:`p > 1` the early times, where the flow from the base moves fastest, get more of
        the RK4 steps (:func:`~pikflow.lattice.fit_lattice`'s ``schedule``). Its power is kept in
        :attr:`time_power` (powers compose: reparametrising by :math:`q` gives :math:`t^{pq}`).
        """
        if self.spectral_precision is None:
            return super().reparametrised(power)
        tau = clock(power)
        if tau is None:
            return self
        clone = copy.copy(self)
        clone.density = sp.expand(self.density.xreplace({T: tau}))
        clone.spectral_weight = sp.sympify(self.spectral_weight).xreplace({T: tau})
        clone.time_power = self.time_power * float(power)
        clone._lowered = None
        return clone

    def spec(self) -> dict:
        """A JSON-serialisable description from which :meth:`pikflow.Path.from_spec` rebuilds the path.

        The density as written (``action``), its ``fields`` and the ``lattice`` shape; a matched
        path holds arrays and is stored with its flow instead (:func:`save_lattice_flow`).
        """
        if self.spectral_precision is not None:
            raise ActionError("a matched lattice path holds arrays: it is stored with its flow (save_lattice_flow)")
        return {**super().spec(), "action": str(self.action.source), "lattice": list(self.lattice.shape)}

    def _zero_dim_only(self, name: str):
        raise ActionError(
            f"{name} is for 0-D paths; a lattice path's checks are pikflow.lattice.check_bounded_below "
            "(growth) and path.symmetry() (symmetries)"
        )

    def check_normalisable(self, times=None, *, seed: int = 0) -> None:
        """0-D only: see :func:`pikflow.action.check_bounded_below`."""
        self._zero_dim_only("check_normalisable")

    def gaussian_base(self):
        """0-D only: the lattice base is :class:`pikflow.flow.GaussianLatticeBase`."""
        self._zero_dim_only("gaussian_base")

    def is_rotation_invariant(self) -> bool:
        r"""Whether every :math:`\hat S_t` is :math:`O(n)` invariant in its components (:meth:`symmetry`)."""
        return bool(self.symmetry().on)

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

    # ---------------------------------------------------------------- constants as arguments (issue #20)
    def traced_parameters(self):
        r"""The numbers of the matched Gaussian part (:math:`K_0`, :math:`b`, :math:`h`) and the structure key.

        Returns ``(params, key)``: ``params`` a pytree of arrays that :meth:`with_parameters` puts back
        into a copy of this path (under ``jax.jit`` as traced arguments), ``key`` a hashable summary of
        everything else the compiled functions bake in (the symbolic density with every float's exact
        bits, the lattice, which spectral terms are present). Paths of equal keys share compiled code.
        """
        K0 = self.spectral_precision
        params = _lowering().parameters(self)
        floats = tuple(sorted(float(a).hex() for a in self.density.atoms(sp.Float)))
        key = (
            "path",
            tuple(self.lattice.shape),
            tuple(self.action.field_names),
            sp.srepr(self.density),
            floats,
            sp.srepr(sp.sympify(self.spectral_weight)),
            K0 is None,
            self.linear != 0,
        )
        return params, key

    def with_parameters(self, params) -> LatticePath:
        """A copy of this path with the numbers of :meth:`traced_parameters` replaced by ``params`` (traceable)."""
        lowered = self.lowered().with_parameters(params)
        clone = copy.copy(self)
        clone.spectral_precision = params["K0"]
        clone.zero_mode, clone.linear = params["zero_mode"], params["linear"]
        clone._lowered = lowered
        return clone

    # ---------------------------------------------------------------- lowered pieces (pikflow.lowering)
    def lowered(self):
        """The :class:`~pikflow.lowering.LoweredLatticePath` of this path (built once, cached)."""
        if self._lowered is None:
            self._lowered = _lowering()(self)
        return self._lowered

    def value(self, field, time):
        r""":math:`\hat S_t(\phi)` of one configuration (array of the lattice shape)."""
        return self.lowered().value(field, time)

    def dsdt(self, field, time):
        r""":math:`d\hat S_t/dt(\phi)` of one configuration."""
        return self.lowered().dsdt(field, time)

    def gradient(self, field, time):
        r""":math:`\partial\hat S_t/\partial\phi_n`, same shape as ``field`` (the lowered stencil)."""
        return self.lowered().gradient(field, time)

    def laplacian(self, field, time):
        r""":math:`\sum_n\partial^2\hat S_t/\partial\phi_n^2` (trace of the Hessian)."""
        return self.lowered().laplacian(field, time)

    def __repr__(self) -> str:
        extra = "" if self.spectral_precision is None else " + (1-t) * spectral Gaussian"
        if self.zero_mode:
            extra += f" - (1-t) log cosh({self.zero_mode:.4g} M)"
        if self.linear:
            extra += f" - (1-t) {self.linear:.4g} M"
        return f"LatticePath({self.density}{extra}, {self.lattice})"


register_path_class(Lattice, LatticePath)


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
