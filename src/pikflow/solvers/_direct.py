r"""The solver interface, and direct least-squares solves of one layer (paper eq. 19) with Lineax."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float

from ..equations import AbstractKernel, LinearKernel


class AbstractKernelSolver(eqx.Module):
    r"""Solves one layer's kernel equation (eq. 14 with eq. 20) on collocation points.

    Every solver is an interchangeable object for :func:`pikflow.solve`: it gives an
    initial kernel (:meth:`initial`) and fits one layer (:meth:`fit`), returning the
    kernel, its residual at every collocation point (eq. 27) and solver-specific numbers.
    ``fit`` is a pure JAX function of its array arguments, so layers can be fitted one
    after the other (warm starts) or all at once under ``jax.vmap``.
    """

    kind: ClassVar[str] = ""
    #: the kernel equation forms (``"chi"``, ``"constant"``) the solver handles
    forms: ClassVar[tuple[str, ...]] = ("chi",)
    #: whether the layer-parallel mode may ``jax.vmap`` :meth:`fit` over layers (else ``jax.lax.map``)
    vmappable: ClassVar[bool] = True

    @abc.abstractmethod
    def initial(self, equation, key) -> AbstractKernel:
        """The single-layer kernel a cold start begins from (its structure is that of every layer)."""

    @abc.abstractmethod
    def fit(
        self, equation, points, t, init: AbstractKernel, first: bool, key
    ) -> tuple[AbstractKernel, jax.Array, dict[str, jax.Array]]:
        r"""Fit the layer at time ``t`` on ``points`` ``(m, n_fields)``.

        ``init`` is the previous layer's kernel (a warm start) or :meth:`initial`; ``first``
        (a Python bool) marks a layer fitted from scratch. Returns the kernel, the residual
        :math:`r_\chi` (eq. 27) at every point and a dict of scalars (``loss``, ``epochs``,
        ``zero_columns``, ``constant``, where they apply).
        """

    def spec(self) -> dict[str, Any]:
        """JSON-ready settings (stored in the flow's ``settings["solver"]``)."""
        return {"kind": self.kind}

    def default_collocation(self):
        """The :class:`~pikflow.solvers.Collocation` used when :func:`pikflow.solve` is given none."""
        from ._collocation import Collocation

        return Collocation()


def least_squares(A, b, linear_solver: lx.AbstractLinearSolver | None = None):
    r"""Min-norm :math:`\arg\min_k \|A k - b\|_2` with unit-norm columns; NaN where the solve failed."""
    linear_solver = lx.QR() if linear_solver is None else linear_solver
    norms = jnp.linalg.norm(A, axis=0)
    scale = jnp.where(norms > 0, norms, 1.0)
    sol = lx.linear_solve(lx.MatrixLinearOperator(A / scale), b, solver=linear_solver, throw=False)
    ok = sol.result == lx.RESULTS.successful
    return jnp.where(ok & (norms > 0), sol.value / scale, jnp.nan)


class DirectSolver(AbstractKernelSolver):
    r"""Least squares :math:`\min_k \|A_t k - b_t\|_2` with a Lineax solver (default ``lx.QR()``), eq. 19.

    The basis is fixed (the ``basis`` given to :func:`pikflow.solve`); one linear solve per
    layer, no iterations, no local minima. The columns are scaled to unit norm first (the
    sine and Hermite bases have condition numbers up to :math:`10^{16}`, where ``lx.QR()``
    is still robust and the normal equations are not).
    """

    kind: ClassVar[str] = "direct"
    forms: ClassVar[tuple[str, ...]] = ("chi", "constant")
    linear_solver: lx.AbstractLinearSolver = lx.QR()

    def solve(self, A: Float[Array, "m n"], b: Float[Array, " m"]) -> Float[Array, " n"]:
        """Coefficients minimising the residual; NaN if the solve failed (checked by the caller)."""
        return least_squares(A, b, self.linear_solver)

    def initial(self, equation, key):
        return LinearKernel(jnp.zeros(equation.n_basis), equation.values, equation.divergences)

    def fit(self, equation, points, t, init, first, key, scale=None):
        r"""As :meth:`AbstractKernelSolver.fit`; ``scale``: the basis stretched to :math:`K_j(\phi/s)` (a scalar)."""
        A, b = equation.system(points, t) if scale is None else equation.scaled_system(points, t, scale)
        x = self.solve(A, b)
        n = equation.n_basis
        info = dict(
            zero_columns=jnp.sum(jnp.linalg.norm(A, axis=0) == 0),
            constant=x[n] if equation.form == "constant" else jnp.nan,
            rhs_rms=jnp.sqrt(jnp.mean(b**2)),
        )
        return LinearKernel(x[:n], equation.values, equation.divergences, scale), b - A @ x, info

    def spec(self):
        return {"kind": self.kind, "linear_solver": type(self.linear_solver).__name__}


__all__ = ["AbstractKernelSolver", "DirectSolver", "least_squares"]
