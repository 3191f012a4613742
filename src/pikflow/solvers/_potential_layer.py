r"""One layer of the elliptic :math:`\Omega_t` equation (paper eq. 34) on a potential basis, assembled and solved.

Per layer the equation

.. math::  \sum_j a_j\,[\Delta - \partial\hat S_t\cdot\partial] T_j(\phi_c) - c_t
           = -\frac{d\hat S_t}{dt}(\phi_c)

is collocated on configurations :math:`\phi_c`, runaways left out (the outlier rule:
:func:`layer_assembler`), and its least squares solved by :func:`solve_system` (direct SVD
with column scaling by default; Levenberg-Marquardt or Adam). :func:`pikflow.flow.solve_lattice`
runs it layer by layer.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import lineax as lx

from .._errors import PikflowError


def least_squares(A, b, rcond: float = 1e-12):
    r"""Least squares :math:`\min\|A x - b\|` with unit-norm columns and Lineax SVD (truncated at ``rcond``).

    The default direct solve of a lattice layer (:func:`pikflow.solvers.solve_system` with
    ``DirectSolver(lx.SVD())``).
    """
    from ..solvers import DirectSolver, solve_system

    return solve_system(DirectSolver(lx.SVD()), A, b, rcond=rcond).value


def layer_solver(solver):
    """The solver of a lattice layer: default ``DirectSolver(lx.SVD())`` (cut at ``rcond``); checked."""
    from ..solvers import AdamSolver, DirectSolver, LevenbergMarquardtSolver

    if solver is None:
        return DirectSolver(lx.SVD())
    if not isinstance(solver, (DirectSolver, AdamSolver, LevenbergMarquardtSolver)):
        raise PikflowError(
            "solver must be a DirectSolver, LevenbergMarquardtSolver or AdamSolver (or None), "
            f"got {type(solver).__name__}"
        )
    return solver


def layer_assembler(template, evaluator, solver, chunk: int, rcond: float):
    """The jitted layer solve ``assemble((path params, basis params), X, t, limit, init, first)``.

    It assembles eq. 34 on the kept configurations and solves it with ``solver``: the path is
    ``template`` with the parameters ``params[0]`` (:meth:`~pikflow.action.LatticePath.with_parameters`;
    any path with ``field_shape``, ``gradient``, ``dsdt`` and ``with_parameters``), the columns those
    of the potential basis's evaluator ``evaluator`` (:attr:`~pikflow.bases.AbstractPotentialBasis.fused`)
    with the parameters ``params[1]``.
    """
    from ..solvers import solve_system

    nd = len(template.field_shape)  # the lattice axes, and the component axis of n > 1 fields
    axes = tuple(range(1, nd + 1))

    def kept(X, factor):
        # relative to the current ensemble (fields may legitimately grow along the path, e.g. towards a
        # small mass): a configuration whose rms field exceeds `factor` times the median one has run away
        finite = jnp.all(jnp.isfinite(X), axis=axes)
        rms = jnp.sqrt(jnp.mean(jnp.where(finite.reshape((-1,) + (1,) * nd), X, 0.0) ** 2, axis=axes))
        median = jnp.nanmedian(jnp.where(finite, rms, jnp.nan))
        return finite & (rms < factor * median)

    @functools.partial(jax.jit, static_argnums=5)
    def assemble(params, X, t, limit, init, first):
        path = template.with_parameters(params[0])

        def row(x, t):
            return evaluator.columns(x, path.gradient(x, t), params[1]), -path.dsdt(x, t)

        ok = kept(X, limit)
        X = jnp.where(ok.reshape((-1,) + (1,) * nd), X, 0.0)
        cols, b = jax.lax.map(lambda x: row(x, t), X, batch_size=chunk)
        # a configuration far out in the tail can be finite with an ordinary rms field and still have a
        # right-hand side dS/dt so large that its row alone decides the least squares: drop rows whose
        # right-hand side lies more than `limit` robust standard deviations (1.4826 MAD) from the median
        bm = jnp.nanmedian(jnp.where(ok, b, jnp.nan))
        b_sd = 1.4826 * jnp.nanmedian(jnp.where(ok, jnp.abs(b - bm), jnp.nan))
        ok = ok & (jnp.abs(b - bm) <= limit * jnp.maximum(b_sd, 1e-300)) & jnp.all(jnp.isfinite(cols), axis=1)
        A = jnp.where(ok[:, None], jnp.concatenate([cols, -jnp.ones((X.shape[0], 1))], axis=1), 0.0)
        b = jnp.where(ok, b, 0.0)
        solution = solve_system(solver, A, b, init, first, rcond)
        sol = solution.value
        mean = jnp.sum(b) / jnp.maximum(jnp.sum(ok), 1)
        res = jnp.linalg.norm(A @ sol - b) / jnp.linalg.norm((b - mean) * ok)
        return sol, res, jnp.sum(~ok), solution.stats["steps"]

    return assemble


__all__ = ["layer_assembler", "layer_solver", "least_squares"]
