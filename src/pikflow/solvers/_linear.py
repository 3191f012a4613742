r"""One linear least-squares layer :math:`\min_a \|A a - b\|` by any of the three solvers (lattice layers).

A lattice layer (eq. 34 with the constant :math:`c_t`, the user guide) is linear in its
coefficients for a fixed basis: :math:`A` holds the basis terms' images at the collocation
configurations and a column for :math:`c_t`, :math:`b = -d\hat S_t/dt`. Every solver fits it
on unit-norm columns and returns a :class:`LayerSolution` (value, result code, stats), the
same kind of object whichever solver ran:

* :class:`~pikflow.solvers.DirectSolver`: one Lineax solve (the lattice default: ``lx.SVD``
  truncated at a relative singular value ``rcond``, minimum norm);
* :class:`~pikflow.solvers.LevenbergMarquardtSolver`: ``optx.LevenbergMarquardt`` (or
  Gauss-Newton) on the residual :math:`A a - b`, warm-started from the previous layer;
* :class:`~pikflow.solvers.AdamSolver`: Optax Adam on the mean squared residual with
  minibatches of rows, warm-started from the previous layer with early stopping (Appendix A).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optax
import optimistix as optx

from .._errors import SolveError
from ._direct import DirectSolver
from ._nonlinear import LevenbergMarquardtSolver
from ._train import AdamSolver


class LayerSolution(eqx.Module):
    """The solution of one layer: ``value`` (coefficients), ``result`` (an ``optx.RESULTS``) and ``stats``.

    ``stats`` holds ``steps`` (iterations: 0 for a direct solve, LM steps or Adam epochs) and
    ``loss`` (the mean squared residual :math:`\\|A a - b\\|^2 / m`).
    """

    value: jax.Array
    result: optx.RESULTS
    stats: dict


def _scaled(A):
    norms = jnp.linalg.norm(A, axis=0)
    return jnp.where(norms > 0, norms, 1.0)


def solve_system(solver, A, b, init=None, first: bool = True, rcond: float = 1e-12) -> LayerSolution:
    r"""Solve :math:`\min_a \|A a - b\|_2` with ``solver`` on unit-norm columns (a pure JAX function).

    ``init`` (the previous layer's coefficients, unscaled) warm-starts the iterative solvers
    (zeros when None); ``first`` (a Python bool) selects Adam's first-layer schedule. ``rcond``
    is the relative singular-value cut of a :class:`DirectSolver` whose linear solver is ``lx.SVD``
    without one of its own.
    """
    scale = _scaled(A)
    As = A / scale
    y0 = jnp.zeros(A.shape[1]) if init is None else init * scale
    if isinstance(solver, DirectSolver):
        ls = solver.linear_solver
        if isinstance(ls, lx.SVD) and ls.rcond is None:
            ls = lx.SVD(rcond=rcond)
        sol = lx.linear_solve(lx.MatrixLinearOperator(As), b, solver=ls, throw=False)
        y, result, steps = sol.value, optx.RESULTS.promote(sol.result), jnp.asarray(0)
    elif isinstance(solver, LevenbergMarquardtSolver):
        cls = optx.LevenbergMarquardt if solver.method == "levenberg-marquardt" else optx.GaussNewton
        sol = optx.least_squares(
            lambda y, _: As @ y - b,
            cls(rtol=solver.rtol, atol=solver.atol),
            y0,
            max_steps=solver.max_steps,
            throw=False,
        )
        y, result, steps = sol.value, sol.result, sol.stats["num_steps"]
    elif isinstance(solver, AdamSolver):
        y, result, steps = _adam(solver, As, b, y0, first)
    else:
        raise SolveError(f"no linear layer solve for {type(solver).__name__}")
    r = As @ y - b
    return LayerSolution(y / scale, result, {"steps": steps, "loss": jnp.mean(r**2)})


def _adam(solver: AdamSolver, As, b, y0, first: bool):
    """Adam on :math:`\\langle (A_s y - b)^2\\rangle` over minibatches of rows; the best epoch is kept."""
    lr, max_epochs = (solver.learning_rate, solver.epochs) if first else (solver.warm_learning_rate, solver.warm_epochs)
    patience = max_epochs if first else solver.patience
    m = As.shape[0]
    # unit-rms columns and right-hand side: Adam's steps (about the learning rate per coefficient) then
    # move the coefficients on the scale of the solution; y = u r z
    u, rb = jnp.sqrt(m), jnp.maximum(jnp.sqrt(jnp.mean(b**2)), 1e-300)
    As, b, y0 = As * u, b / rb, y0 / (u * rb)
    bs = min(solver.batch_size, m)
    nb = max(1, m // bs)
    opt = optax.adam(lr)

    def loss(y, rows):
        return jnp.mean((As[rows] @ y - b[rows]) ** 2)

    def full(y):
        return jnp.mean((As @ y - b) ** 2)

    grad = jax.grad(loss)

    def body(c):
        y, s, best, best_l, n, since, key = c
        key, sub = jax.random.split(key)
        idx = jax.random.permutation(sub, m)[: nb * bs].reshape(nb, bs)

        def step(carry, rows):
            y, s = carry
            upd, s = opt.update(grad(y, rows), s, y)
            return (optax.apply_updates(y, upd), s), None

        (y, s), _ = jax.lax.scan(step, (y, s), idx)
        val = full(y)
        better = val < best_l
        best = jnp.where(better, y, best)
        return y, s, best, jnp.where(better, val, best_l), n + 1, jnp.where(better, 0, since + 1), key

    def cond(c):
        return (c[4] < max_epochs) & (c[5] < patience)

    c0 = (y0, opt.init(y0), y0, full(y0), jnp.asarray(0), jnp.asarray(0), jax.random.PRNGKey(solver.seed))
    _, _, best, _, n, since, _ = jax.lax.while_loop(cond, body, c0)
    result = optx.RESULTS.where(since >= patience, optx.RESULTS.successful, optx.RESULTS.max_steps_reached)
    return best * u * rb, result, n


__all__ = ["LayerSolution", "solve_system"]
