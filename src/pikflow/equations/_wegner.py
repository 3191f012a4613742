r"""The Wegner (continuity) equation for the kernel, applied to a basis (paper eqs. 14, 19, 20).

With :math:`S_t = \hat S_t + \log \mathcal N_t`, eq. 14 reads, for every ``t`` separately,

.. math::
    \mathcal L_t v := \partial\cdot v - v \cdot \partial \hat S_t
    = \frac{d\hat S_t}{dt} + \frac{d \log \mathcal N_t}{dt},

linear in :math:`v` and free of every other time. The unknown
:math:`d\log\mathcal N_t/dt = -\langle d\hat S_t/dt\rangle_t` is removed either by
subtracting the equation at a reference configuration :math:`\chi` (``form="chi"``,
eq. 20) or by keeping it as one more least-squares unknown ``c_t``
(``form="constant"``). For :math:`v = \sum_j k_j K_j` (eq. 18) each basis function
gives one column :math:`\mathcal L_t K_j`, derived here symbolically, once, and lowered
to JAX.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._errors import BasisError
from ..action import Path
from ..action._path import t as T
from ..bases import AbstractBasis
from ..lowering import lower

FORMS = ("chi", "constant")
_CACHE: dict[str, WegnerEquation] = {}


class WegnerEquation:
    r"""The kernel equation of a path for a basis: columns :math:`\mathcal L_t K_j` and right-hand side.

    Parameters
    ----------
    path
        The path of actions :math:`\hat S_t`.
    basis
        The basis :math:`\{K_j\}`.
    form
        ``"chi"``: subtract the equation at ``chi`` (eq. 20). ``"constant"``: solve for
        :math:`c_t = d\log\mathcal N_t/dt` as an extra unknown.
    chi
        The reference configuration (default: the origin, as in the paper).

    Attributes
    ----------
    functions
        The vector basis functions :math:`K_j` (SymPy).
    columns
        :math:`\mathcal L_t K_j = \partial\cdot K_j - K_j\cdot\partial\hat S_t` (SymPy, in the fields and ``t``).
    rhs
        :math:`d\hat S_t/dt` (SymPy).
    """

    def __init__(self, path: Path, basis: AbstractBasis, *, form: str = "chi", chi: Sequence[float] | None = None):
        if form not in FORMS:
            raise BasisError(f"form must be one of {FORMS}, got {form!r}")
        self.path, self.basis, self.form = path, basis, form
        fields = path.fields
        self.chi = np.zeros(len(fields)) if chi is None else np.asarray(chi, dtype=float).reshape(-1)
        if self.chi.shape != (len(fields),):
            raise BasisError(f"chi must have one entry per field component ({len(fields)}), got {chi!r}")
        self.symmetric = path.is_z2_symmetric()
        self.functions = basis.vector_functions(fields, self.symmetric)
        grad = path.gradient
        self.columns = [
            sp.Add(*(sp.diff(k[a], f) - k[a] * grad[a] for a, f in enumerate(fields))) for k in self.functions
        ]
        self.rhs = path.dsdt
        # lowered once; per-sample work is pure JAX
        values = lower([list(k) for k in self.functions], fields, time=False, what="basis")
        divergences = lower(
            [sp.Add(*(sp.diff(k[a], f) for a, f in enumerate(fields))) for k in self.functions],
            fields,
            time=False,
            what="basis divergence",
        )
        fast = basis.fast_numeric(len(fields), self.symmetric)
        self.values, self.divergences = fast if fast is not None else (values, divergences)
        self.column_fn = lower(self.columns, fields, what="Wegner operator on the basis")
        self.rhs_fn = lower(self.rhs, fields, what="dS/dt")
        self.action_fn = lower(path.expr, fields, what="action")
        self.gradient_fn = lower(grad, fields, what="action gradient")
        self.cache: dict = {}  # compiled solver functions, keyed by their settings

    @classmethod
    def cached(cls, path: Path, basis: AbstractBasis, *, form: str = "chi") -> WegnerEquation:
        """The equation for these settings, derived and lowered once per process."""
        key = json.dumps([path.spec(), basis.spec(), form], sort_keys=True)
        if key not in _CACHE:
            _CACHE[key] = cls(path, basis, form=form)
        return _CACHE[key]

    @property
    def n_basis(self) -> int:
        """Number of vector basis functions (unknowns, without ``c_t``)."""
        return len(self.functions)

    def system(self, points: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        r"""The collocation system :math:`A_t k_t = b_t` (eq. 19) at ``points`` of shape ``(m, n_fields)``.

        For ``form="chi"`` the row at :math:`\chi` is subtracted (eq. 20); for
        ``form="constant"`` a last column :math:`-1` multiplies :math:`c_t`.
        """
        cols = jax.vmap(self.column_fn, in_axes=(0, None))(points, t)
        rhs = jax.vmap(self.rhs_fn, in_axes=(0, None))(points, t)
        if self.form == "chi":
            chi = jnp.asarray(self.chi)
            return cols - self.column_fn(chi, t)[None, :], rhs - self.rhs_fn(chi, t)
        return jnp.concatenate([cols, -jnp.ones_like(rhs)[:, None]], axis=1), rhs

    def scaled_system(self, points: jax.Array, t: jax.Array, scale: jax.Array) -> tuple[jax.Array, jax.Array]:
        r"""The system of eq. 19 for the basis stretched by ``scale``: columns for :math:`K_j(\phi/s)`.

        :math:`\mathcal L_t K_j(\cdot/s) = (\partial\cdot K_j)(\phi/s)/s - K_j(\phi/s)\cdot\partial\hat S_t`,
        from the lowered basis values and divergences (numerically, not symbolically), so
        one compiled function serves every layer's scale; ``form`` as in :meth:`system`.
        """

        def columns(phi):
            x = phi / scale
            return self.divergences(x) / scale - self.values(x) @ self.gradient_fn(phi, t)

        cols = jax.vmap(columns)(points)
        rhs = jax.vmap(self.rhs_fn, in_axes=(0, None))(points, t)
        if self.form == "chi":
            chi = jnp.asarray(self.chi)
            return cols - columns(chi)[None, :], rhs - self.rhs_fn(chi, t)
        return jnp.concatenate([cols, -jnp.ones_like(rhs)[:, None]], axis=1), rhs

    def operator(self, velocity, divergence, phi: jax.Array, t: jax.Array) -> jax.Array:
        r""":math:`\mathcal L_t v = \partial\cdot v - v\cdot\partial\hat S_t` at one configuration, for any kernel."""
        return divergence(phi) - jnp.dot(velocity(phi), self.gradient_fn(phi, t))

    def residual(self, velocity, divergence, points: jax.Array, t: jax.Array) -> jax.Array:
        r"""Residual (eq. 27) of a kernel at ``points``, with the reference configuration :math:`\chi`:

        .. math::
            r_\chi(\phi) = \frac{d\hat S_t}{dt}(\phi) - \frac{d\hat S_t}{dt}(\chi)
            - \mathcal L_t v(\phi) + \mathcal L_t v(\chi).
        """
        op = jax.vmap(lambda p: self.operator(velocity, divergence, p, t))(points)
        rhs = jax.vmap(self.rhs_fn, in_axes=(0, None))(points, t)
        chi = jnp.asarray(self.chi)
        return rhs - self.rhs_fn(chi, t) - op + self.operator(velocity, divergence, chi, t)


__all__ = ["FORMS", "T", "WegnerEquation"]
