r"""Potential bases: numeric bases for :math:`\Omega_t` in the gradient form (paper eqs. 32-34), on any geometry.

The symbolic bases of :mod:`pikflow.bases` are recipes for SymPy functions that the lowering
turns into JAX (vector form, eqs. 14 and 20; or a potential in 0-D). On a lattice the
functions are translation-invariant sums over sites, evaluated directly in JAX (stencils
derived in SymPy, or FFTs), and their number must not grow with the volume: a
:class:`AbstractPotentialBasis` gives, per configuration :math:`\phi` (any field shape),

* the values :math:`T_j(\phi)` and Laplacians :math:`\Delta T_j(\phi)`;
* the rows of eq. 34, :math:`L T_j = \Delta T_j - \partial\hat S_t\cdot\partial T_j`, for the action
  gradient :math:`\partial\hat S_t`;
* for coefficients :math:`a`, the gradient :math:`\partial\Omega = \sum_j a_j\partial T_j` (the
  velocity is :math:`v = -\partial\Omega`, eq. 32) and :math:`\Delta\Omega = -\partial\cdot v`;
* both at once, :meth:`AbstractPotentialBasis.gradient_and_laplacian`, and the evaluator
  :attr:`AbstractPotentialBasis.fused` that the flow stage compiles once per *structure*
  (its ``key``) with the basis's numbers as traced arguments (its ``params``).

The flow stage (the RK4 push of eqs. 11 and 32, the solve of eq. 34) uses only this interface.

Both kinds are :class:`~pikflow.bases.AbstractBasis`: they have a ``kind``, a JSON-serialisable
:meth:`~AbstractBasis.spec`, and :func:`basis_from_spec` rebuilds either (a potential basis
needs its geometry: ``basis_from_spec(spec, lattice=...)``). The lattice families
(:class:`pikflow.lattice.FourierTwoPoint`, ``Magnetisation``, ``SmoothedPowers``,
``SmoothedProducts``, ``LocalHermite``) and their concatenation ``LatticeBasis`` are potential
bases; the lattice space registers their kinds with :func:`register_basis`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax.numpy as jnp

from .._errors import BasisError
from ._basis import AbstractBasis

#: kind -> ``factory(spec, geometry) -> basis`` for the potential bases (registered by their space).
_POTENTIAL_KINDS: dict[str, Callable] = {}


def register_basis(kind: str, factory: Callable) -> None:
    """Register ``factory(spec, geometry)`` as the builder of potential bases of ``kind`` (for :func:`basis_from_spec`).

    A field space registers its bases here, so that the bases stage never imports a space.
    """
    if not isinstance(kind, str) or not kind:
        raise BasisError(f"a basis kind must be a non-empty string, got {kind!r}")
    _POTENTIAL_KINDS[kind] = factory


def potential_kinds() -> list[str]:
    """The registered kinds of potential bases."""
    return sorted(_POTENTIAL_KINDS)


def potential_from_spec(spec: Mapping, geometry):
    """A potential basis from its :meth:`~AbstractBasis.spec` on ``geometry`` (e.g. a lattice)."""
    kind = spec.get("kind")
    if kind not in _POTENTIAL_KINDS:
        raise BasisError(f"unknown potential basis kind {kind!r}: choose one of {potential_kinds()}")
    if geometry is None:
        raise BasisError(f"the {kind} basis lives on a lattice: give basis_from_spec(spec, lattice=...)")
    return _POTENTIAL_KINDS[kind](dict(spec), geometry)


class AbstractPotentialBasis(AbstractBasis):
    r"""A numeric basis :math:`T_j` of the potential :math:`\Omega_t = \sum_j a_j T_j` (gradient form, eq. 34).

    Subclasses set ``n`` (the number of functions) and ``names``, and implement
    :meth:`values`, :meth:`laplacians`, :meth:`columns` and :meth:`gradient`; :meth:`laplacian`
    defaults to :math:`a\cdot\Delta T`.
    """

    kind = "potential"
    n: int
    names: list[str]

    def scalar_functions(self, fields, parity):
        raise BasisError(
            f"the {self.kind} basis is a numeric potential basis (the gradient form, eq. 34, of a lattice path); "
            "it has no SymPy functions. For a 0-D path choose Sine, Hermite, Polynomial, Radial or Custom"
        )

    def vector_functions(self, fields, symmetric):
        return self.scalar_functions(fields, None)

    def values(self, field):
        r""":math:`T_j(\phi)` of one configuration, shape ``(n,)``."""
        raise NotImplementedError

    def laplacians(self, field):
        r""":math:`\Delta T_j(\phi)`, shape ``(n,)``."""
        raise NotImplementedError

    def columns(self, field, dS):
        r"""Rows of eq. 34: :math:`\Delta T_j - \partial\hat S\cdot\partial T_j` at the action gradient ``dS``."""
        raise NotImplementedError

    def gradient(self, a, field):
        r""":math:`\partial\Omega = \sum_j a_j\partial T_j(\phi)`, the shape of ``field``."""
        raise NotImplementedError

    def laplacian(self, a, field):
        r""":math:`\Delta\Omega = \sum_j a_j\Delta T_j(\phi) = -\partial\cdot v`."""
        return jnp.dot(a, self.laplacians(field))

    def gradient_and_laplacian(self, a, field):
        r""":math:`(\partial\Omega, \Delta\Omega)` of one configuration (a basis may share work between them)."""
        return self.gradient(a, field), self.laplacian(a, field)

    def fused_columns(self, field, dS):
        """:meth:`columns` through :attr:`fused` (a basis may share work between the rows)."""
        return self.fused.columns(field, dS)

    @property
    def fused(self):
        r"""The evaluator the flow stage compiles (:class:`PotentialEvaluator` unless a basis has a faster one).

        It has ``key`` (hashable: bases of equal keys share compiled code), ``params`` (a pytree of the
        numbers passed as traced arguments), ``evaluate(params, a, field)`` ->
        :math:`(\partial\Omega, \Delta\Omega)` and ``columns(field, dS, params=None)`` (rows of eq. 34).
        """
        if getattr(self, "_fused", None) is None:
            self._fused = PotentialEvaluator(self)
        return self._fused

    def __repr__(self) -> str:
        return f"{type(self).__name__}[{self.n}]"


class PotentialEvaluator:
    r""":math:`(\partial\Omega, \Delta\Omega)` and the rows of eq. 34 of a potential basis, its numbers baked in.

    The default :attr:`AbstractPotentialBasis.fused`: no parameters are traced, so compiled code is
    shared only by this basis (its ``key`` holds the basis's id; the compile cache holds the basis).
    """

    def __init__(self, basis: AbstractPotentialBasis):
        self.basis = basis
        # constants stay baked in: compiled code is shared only with this basis (the cache holds it)
        self.params: dict = {}
        self.key = ("family", id(basis))

    def __call__(self, a, field):
        return self.basis.gradient(a, field), self.basis.laplacian(a, field)

    def evaluate(self, params, a, field):
        r""":math:`(\partial\Omega, \Delta\Omega)` of one configuration (``params`` unused: nothing is traced)."""
        return self(a, field)

    def columns(self, field, dS, params=None):
        r"""The rows of eq. 34 at the action gradient ``dS`` (:meth:`AbstractPotentialBasis.columns`)."""
        return self.basis.columns(field, dS)
