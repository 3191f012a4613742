r"""MCMC moves that leave :math:`p_t \propto e^{-\hat S_t}` invariant, for SMC rejuvenation (BlackJAX kernels).

Each move is a BlackJAX kernel (:func:`blackjax.mcmc.mala.build_kernel`,
:func:`blackjax.mcmc.hmc.build_kernel`) applied to one particle, vmapped over particles
by the sampler. The step size is a per-replica number adapted between annealing steps
from the measured acceptance (:func:`adapt_step`): a kernel with a step size fixed for
the whole sweep leaves :math:`p_t` invariant whatever the size, so the adaptation never
biases the weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._errors import SamplingError

#: ``mcmc`` choices and their target acceptance rates
TARGET_ACCEPTANCE = {"mala": 0.57, "hmc": 0.75}


def make_move(kind: str, log_density_at, *, size: int, leapfrog_steps: int = 10):
    r"""A function ``(key, x, t, step_size, n_moves) -> (x', mean acceptance)`` for one configuration.

    ``log_density_at(x, t)`` is :math:`\log\gamma_t(x)`; ``kind`` is ``"mala"`` or ``"hmc"``
    (``leapfrog_steps`` steps per trajectory, unit mass); ``size`` the number of real
    degrees of freedom of a configuration.
    """
    import blackjax  # here, not at import: importing blackjax computes arrays (starts the JAX backend)

    if kind not in TARGET_ACCEPTANCE:
        raise SamplingError(f"mcmc must be one of {tuple(TARGET_ACCEPTANCE)}, got {kind!r}")
    if kind == "mala":
        kernel, init = blackjax.mcmc.mala.build_kernel(), blackjax.mcmc.mala.init
    else:
        kernel, init = blackjax.mcmc.hmc.build_kernel(), blackjax.mcmc.hmc.init
        inverse_mass = jnp.ones(size)

    def move(key, x, t, step_size, n_moves: int):
        logdensity = lambda y: log_density_at(y, t)  # noqa: E731
        state = init(x, logdensity)

        def one(carry, k):
            state, acc = carry
            if kind == "mala":
                state, info = kernel(k, state, logdensity, step_size)
            else:
                state, info = kernel(k, state, logdensity, step_size, inverse_mass, leapfrog_steps)
            return (state, acc + info.acceptance_rate), None

        (state, acc), _ = jax.lax.scan(one, (state, 0.0), jax.random.split(key, n_moves))
        return state.position, acc / n_moves

    return move


def adapt_step(step_size, acceptance, kind: str):
    r"""The next step size: :math:`\epsilon\,\exp(2(a - a^*))`, clipped to a factor 2 per step."""
    factor = jnp.clip(jnp.exp(2.0 * (acceptance - TARGET_ACCEPTANCE[kind])), 0.5, 2.0)
    return jnp.where(jnp.isfinite(acceptance), step_size * factor, step_size * 0.5)


__all__ = ["TARGET_ACCEPTANCE", "adapt_step", "make_move"]
