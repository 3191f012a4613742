r"""The HMC trajectory as one BlackJAX integration step: ``L`` leapfrog steps, the value computed once."""

from __future__ import annotations

import jax


def trajectory_integrator(n_leapfrog: int):
    r"""A BlackJAX integrator that makes ``n_leapfrog`` velocity-Verlet steps in one call.

    The leapfrog of :mod:`pikflow.baselines._hmc` with the adjacent half kicks merged,

    .. math::  \pi \mathrel{+}= \tfrac\epsilon2 g,\quad
               [\phi \mathrel{+}= \epsilon M^{-1}\pi,\ g = \nabla\log p(\phi),\
               \pi \mathrel{+}= \epsilon g]_{\times(L-1)},\quad
               \phi \mathrel{+}= \epsilon M^{-1}\pi,\ (\log p, g) = \ldots,\ \pi \mathrel{+}= \tfrac\epsilon2 g,

    is BlackJAX's ``velocity_verlet`` applied ``L`` times, except that the value
    :math:`\log p = -\hat S_t` is computed once, at the end (BlackJAX's ``velocity_verlet``
    evaluates it at every step, which made a 64x64 lattice trajectory 1.5x slower). Given
    to ``blackjax.hmc(..., num_integration_steps=1, integrator=...)``, so the momentum
    draw, the energies, the divergence flag and the Metropolis step stay BlackJAX's.
    """
    from blackjax.mcmc.integrators import IntegratorState

    def integrator(logdensity_fn, kinetic_energy_fn):
        grad = jax.grad(logdensity_fn)
        value_and_grad = jax.value_and_grad(logdensity_fn)
        velocity = jax.grad(kinetic_energy_fn)

        def one_step(state, step_size):
            x, p, _, g = state
            p = p + 0.5 * step_size * g

            def inner(_, carry):
                x, p = carry
                x = x + step_size * velocity(p)
                return x, p + step_size * grad(x)

            x, p = jax.lax.fori_loop(0, n_leapfrog - 1, inner, (x, p))
            x = x + step_size * velocity(p)
            logp, g = value_and_grad(x)
            return IntegratorState(x, p + 0.5 * step_size * g, logp, g)

        return one_step

    return integrator


__all__ = ["trajectory_integrator"]
