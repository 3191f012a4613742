r"""Direct least-squares solves of one layer's collocation system (paper eq. 19) with Lineax."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float


class AbstractKernelSolver(eqx.Module):
    """Solves one layer's kernel equation; every solver returns coefficients and a residual."""


class DirectSolver(AbstractKernelSolver):
    r"""Least squares :math:`\min_k \|A_t k - b_t\|_2` with a Lineax solver (default ``lx.QR()``).

    The columns are scaled to unit norm first (the sine and Hermite bases have condition
    numbers up to :math:`10^{16}`, where ``lx.QR()`` is still robust and the normal
    equations are not).
    """

    linear_solver: lx.AbstractLinearSolver = lx.QR()

    def solve(self, A: Float[Array, "m n"], b: Float[Array, " m"]) -> Float[Array, " n"]:
        """Coefficients minimising the residual; NaN if the solve failed (checked by the caller)."""
        norms = jnp.linalg.norm(A, axis=0)
        scale = jnp.where(norms > 0, norms, 1.0)
        sol = lx.linear_solve(lx.MatrixLinearOperator(A / scale), b, solver=self.linear_solver, throw=False)
        ok = sol.result == lx.RESULTS.successful
        return jnp.where(ok & (norms > 0), sol.value / scale, jnp.nan)
