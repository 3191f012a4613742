r"""The flow run backwards: :math:`\log q_1(\phi)` at any configuration (the hole check's side).

Flow samples only show where the flow *goes*; a region of the target the flow never
reaches (a hole) leaves no trace in their weights. Configurations drawn from the target
itself, pulled back through the flow, do show it: their :math:`\log q` is very low (or
:math:`-\infty`) there. Both samplers are inverted exactly, so the density is the one of
the map that :meth:`~pikflow.Flow.sample` applies:

``"table"``
    The tabulated map (:mod:`pikflow.flow._tabulated`) is a monotone piecewise cubic
    :math:`\phi = F(w)`: a binary search finds the cell, bisection solves the cubic in it,
    and :math:`\log q = \log p_w(w) - \log F'(w)`. Outside the table's range :math:`q = 0`.
``"rk4"``
    Every RK4 step (eq. 11) is inverted by Newton's method on the forward step (starting
    from the RK4 step backwards), so :math:`\log q = \log p_0(\phi_0) - \sum_i \log|\det
    \partial\phi_{i+1}/\partial\phi_i|` is exact for the discrete map (``logdet="exact"``);
    with ``logdet="continuous"`` the divergence is integrated backwards instead. A
    configuration where Newton does not converge (the map folds or blows up) gets
    ``log q = nan``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._integrate import _velocity_only, rk4, rk4_step, rk4_step_with_divergence

#: Newton iterations per inverted RK4 step (quadratic convergence from the backward step).
NEWTON_STEPS = 8


def table_log_density(table, phi):
    r""":math:`\log q` of the tabulated map at the last step time, for ``phi`` of shape ``(n,)``."""
    c = table.cells[:, -1]  # (cells, 4)
    y = c[:, 0]
    y_end = jnp.sum(c[-1])
    j = jnp.clip(jnp.searchsorted(y, phi, side="right") - 1, 0, table.n_cells - 1)
    cj = c[j]
    lo, hi = jnp.zeros_like(phi), jnp.ones_like(phi)

    def body(_, carry):  # bisection: the cubic is monotone on every cell (Fritsch-Carlson)
        lo, hi = carry
        mid = 0.5 * (lo + hi)
        val, _ = table.cubic(cj, mid)
        below = val < phi
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 60, body, (lo, hi))
    s = 0.5 * (lo + hi)
    _, slope = table.cubic(cj, s)
    w = table.w_lo + (j + s) / table.inv_h
    log_pw = -jnp.logaddexp(0.0, -w) - jnp.logaddexp(0.0, w)
    inside = (phi >= y[0]) & (phi <= y_end)
    return jnp.where(inside, log_pw - jnp.log(slope), -jnp.inf)


def rk4_log_density(kernels, base, phi, *, steps: int, logdet: str):
    r""":math:`\log q_1` of the RK4 flow at ``phi`` ``(n, n_fields)`` by inverting every step (module docstring)."""
    dt = 1.0 / steps

    def back(i, x):  # one configuration through step i backwards
        layers = (kernels.layer(2 * i + 2), kernels.layer(2 * i + 1), kernels.layer(2 * i))
        guess = rk4(*map(_velocity_only, layers), x, -dt)[0]  # RK4 backwards: the initial guess
        if logdet == "continuous":
            _, dlog = rk4_step_with_divergence(kernels, i, guess, dt)
            return guess, dlog
        step = lambda p: rk4_step(kernels, i, p, dt)  # noqa: E731

        def newton(_, p):
            jac = jax.jacfwd(step)(p)
            return p - jnp.linalg.solve(jac, step(p) - x)

        p = jax.lax.fori_loop(0, NEWTON_STEPS, newton, guess)
        sign, logabs = jnp.linalg.slogdet(jax.jacfwd(step)(p))
        miss = jnp.max(jnp.abs(step(p) - x)) > 1e-8 * (1.0 + jnp.max(jnp.abs(x)))
        return p, jnp.where((sign > 0) & ~miss, logabs, jnp.nan)

    def body(carry, i):
        x, total = carry
        prev, dlog = jax.vmap(back, in_axes=(None, 0))(i, x)
        return (prev, total + dlog), None

    (x0, total), _ = jax.lax.scan(body, (phi, jnp.zeros(phi.shape[0])), jnp.arange(steps - 1, -1, -1))
    return base.log_prob(x0) - total
