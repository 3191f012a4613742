r"""Integrating the flow (eq. 11) with RK4, and the log-density along each path.

The layers sit at the RK4 stages: with ``steps`` steps of size :math:`\Delta t`, layer
``2i`` is at :math:`t_i`, layer ``2i+1`` at :math:`t_i + \Delta t/2` (used twice),
layer ``2i+2`` at :math:`t_{i+1}`: :math:`2\,\text{steps}+1` kernels (51 for 25 steps).

Two log-densities are offered:

``"exact"``
    :math:`\log q_{i+1}(\phi_{i+1}) = \log q_i(\phi_i) - \log|\det \partial\phi_{i+1}/\partial\phi_i|`,
    the exact change of variables for the discrete RK4 map actually applied (forward-mode
    autodiff, cheap for few field components). The importance weights are then exact
    for the samples produced, whatever the time-step error.
``"continuous"``
    :math:`d\log q_t/dt = -\partial\cdot v_t` integrated with the same RK4 stages; exact
    only up to the time-discretisation error.

A step whose Jacobian determinant is not positive (the map folded) gives ``log q = nan``
for that sample: it is counted as non-finite, never silently used.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..equations import AbstractKernel

LOGDETS = ("exact", "continuous")


def rk4_step(kernels: AbstractKernel, i, phi, dt):
    """One RK4 step of a single configuration through layers ``2i, 2i+1, 2i+2``."""
    ka, km, kb = kernels.layer(2 * i), kernels.layer(2 * i + 1), kernels.layer(2 * i + 2)
    v1 = ka(phi)
    v2 = km(phi + 0.5 * dt * v1)
    v3 = km(phi + 0.5 * dt * v2)
    v4 = kb(phi + dt * v3)
    return phi + dt / 6.0 * (v1 + 2 * v2 + 2 * v3 + v4)


def rk4_step_with_divergence(kernels: AbstractKernel, i, phi, dt):
    r"""RK4 step of :math:`(\phi, \log q)` with :math:`d\log q/dt = -\partial\cdot v`: returns (phi', -Δlog q)."""
    ka, km, kb = kernels.layer(2 * i), kernels.layer(2 * i + 1), kernels.layer(2 * i + 2)
    p2 = phi + 0.5 * dt * ka(phi)
    p3 = phi + 0.5 * dt * km(p2)
    p4 = phi + dt * km(p3)
    phi_new = rk4_step(kernels, i, phi, dt)
    div = ka.divergence(phi) + 2 * km.divergence(p2) + 2 * km.divergence(p3) + kb.divergence(p4)
    return phi_new, dt / 6.0 * div


def push(kernels: AbstractKernel, phi, log_q, *, steps: int, logdet: str):
    """Push a batch ``(n, n_fields)`` through every step; returns per-step ``phi`` and ``log q``.

    Outputs have a leading axis of length ``steps + 1`` (the base included).
    """
    dt = 1.0 / steps

    def one(i, p):
        if logdet == "exact":
            step = lambda x: rk4_step(kernels, i, x, dt)  # noqa: E731
            new = step(p)
            sign, logabs = jnp.linalg.slogdet(jax.jacfwd(step)(p))
            return new, jnp.where(sign > 0, logabs, jnp.nan)
        return rk4_step_with_divergence(kernels, i, p, dt)

    def body(carry, i):
        p, lq = carry
        new, dlog = jax.vmap(one, in_axes=(None, 0))(i, p)
        lq = lq - dlog
        return (new, lq), (new, lq)

    _, (phis, lqs) = jax.lax.scan(body, (phi, log_q), jnp.arange(steps))
    return jnp.concatenate([phi[None], phis]), jnp.concatenate([log_q[None], lqs])
