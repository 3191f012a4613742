r"""The basis's frequency range follows the scale of :math:`p_t` (``solve(frequency_range="auto")``).

The default sine basis (eq. 25) has fixed frequencies :math:`\omega_j = j\,\omega_{\max}/n`,
chosen for a base of unit width. When :math:`p_t` narrows (a deep double well squeezes
each mode to a width :math:`\sim 1/\sqrt{8a}`) the fixed frequencies no longer resolve
its features, and where it widens they waste functions on wiggles it does not have.
``frequency_range="auto"`` stretches the basis per layer: :math:`K_j(\phi/s_t)`, i.e.
:math:`\omega_j \to \omega_j/s_t`, with

.. math::  s_t = \frac{Q_t(1-\epsilon) - Q_t(\epsilon)}{Q_0(1-\epsilon) - Q_0(\epsilon)},

the width of the central :math:`1-2\epsilon` of :math:`p_t` (quantiles :math:`Q_t` by
quadrature of :math:`e^{-\hat S_t}`, one field component) relative to the base, so that
the first layer is solved exactly as before (:math:`s_0 = 1`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..solvers._collocation import tail_radius

#: tail mass on each side left out of the width (:math:`\epsilon`).
EPSILON = 1e-3
_N_GRID = 8001


def quantile_width(action_fn, t, epsilon: float = EPSILON) -> jax.Array:
    r""":math:`Q_t(1-\epsilon) - Q_t(\epsilon)` of :math:`p_t \propto e^{-\hat S_t}` (one component)."""
    radius = tail_radius(action_fn, t, 1, 40.0)
    x = jnp.linspace(-radius, radius, _N_GRID)
    s = jax.vmap(action_fn, in_axes=(0, None))(x[:, None], t)
    s = jnp.where(jnp.isfinite(s), s, jnp.inf)
    p = jnp.exp(-(s - jnp.min(s)))
    cdf = jnp.concatenate([jnp.zeros(1), jnp.cumsum(0.5 * (p[1:] + p[:-1]))])
    cdf = cdf / cdf[-1]
    lo, hi = jnp.interp(jnp.asarray([epsilon, 1.0 - epsilon]), cdf, x)
    return hi - lo


def layer_scale(action_fn, t, epsilon: float = EPSILON) -> jax.Array:
    r""":math:`s_t` of the module docstring: the width of :math:`p_t` relative to :math:`p_0`."""
    return quantile_width(action_fn, t, epsilon) / quantile_width(action_fn, jnp.zeros_like(t), epsilon)


__all__ = ["EPSILON", "layer_scale", "quantile_width"]
