r"""Collocation points drawn from :math:`p_t \propto e^{-\hat S_t}` itself, for layer-parallel solves.

The kernel equation of layer ``t`` (eq. 14) involves no other layer; in the sequential
mode only its collocation points do (base samples pushed through the earlier layers).
Drawing the points from :math:`p_t` directly removes that last dependence, so every layer
can be solved at once:

* one field component: the inverse CDF of :math:`p_t` (by quadrature on a fine grid) at
  the mid-quantiles :math:`u_i = (i + 1/2)/n`, a deterministic quadrature-like sample;
* several components: short MALA chains on :math:`e^{-\hat S_t}`, started from the exact
  Gaussian base samples, with the step size adapted during the first half; for a
  :math:`Z_2`-symmetric path every chain's sign is flipped with probability 1/2 at the end
  (exact for a symmetric target, and it balances the modes the chains cannot cross).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._collocation import tail_radius

_N_GRID = 8001


def quantile_points(action_fn, t, n: int, gap: float = 40.0) -> jax.Array:
    r"""``n`` points at the mid-quantiles of :math:`p_t` for one field component, shape ``(n, 1)``."""
    radius = tail_radius(action_fn, t, 1, gap)
    x = jnp.linspace(-radius, radius, _N_GRID)
    s = jax.vmap(action_fn, in_axes=(0, None))(x[:, None], t)
    p = jnp.exp(-(s - jnp.min(s)))
    cdf = jnp.concatenate([jnp.zeros(1), jnp.cumsum(0.5 * (p[1:] + p[:-1]))])
    cdf = cdf / cdf[-1]
    u = (jnp.arange(n) + 0.5) / n
    return jnp.interp(u, cdf, x)[:, None]


def mala_points(action_fn, gradient_fn, t, start: jax.Array, key, steps: int, symmetric: bool) -> jax.Array:
    r"""Configurations from short MALA chains on :math:`e^{-\hat S_t}` started at ``start`` ``(n, n_fields)``."""
    s_fn = jax.vmap(action_fn, in_axes=(0, None))
    g_fn = jax.vmap(gradient_fn, in_axes=(0, None))
    adapt = steps // 2

    def log_q(x_to, x_from, g_from, eps):  # proposal density up to a constant
        return -jnp.sum((x_to - x_from + 0.5 * eps**2 * g_from) ** 2, axis=-1) / (2 * eps**2)

    def body(carry, i):
        x, s, g, log_eps, k = carry
        eps = jnp.exp(log_eps)
        k, k1, k2 = jax.random.split(k, 3)
        y = x - 0.5 * eps**2 * g + eps * jax.random.normal(k1, x.shape)
        sy, gy = s_fn(y, t), g_fn(y, t)
        log_a = -sy + s + log_q(x, y, gy, eps) - log_q(y, x, g, eps)
        log_a = jnp.where(jnp.isfinite(log_a), log_a, -jnp.inf)
        acc = jnp.log(jax.random.uniform(k2, s.shape)) < log_a
        x = jnp.where(acc[:, None], y, x)
        s, g = jnp.where(acc, sy, s), jnp.where(acc[:, None], gy, g)
        rate = jnp.mean(jnp.minimum(1.0, jnp.exp(log_a)))
        log_eps = jnp.where(i < adapt, log_eps + 0.5 * (rate - 0.57), log_eps)
        return (x, s, g, log_eps, k), None

    k0, k1 = jax.random.split(key)
    init = (start, s_fn(start, t), g_fn(start, t), jnp.log(0.5), k0)
    (x, *_), _ = jax.lax.scan(body, init, jnp.arange(steps))
    if symmetric:
        x = x * jnp.where(jax.random.bernoulli(k1, 0.5, (x.shape[0], 1)), -1.0, 1.0)
    return x


__all__ = ["mala_points", "quantile_points"]
