r"""A lattice flow as an annealing problem for SMC (:func:`pikflow.samplers.smc`), and the lattice observables.

The transport of step :math:`k` is the RK4 step of :math:`\dot\phi = -\partial\Omega_t`
through layers :math:`2k, 2k+1, 2k+2` (eqs. 11, 32, 34), the map that
:meth:`LatticeFlow.sample` applies. Its log-Jacobian is either

* ``"continuous"`` (default): :math:`\int\Delta\Omega_t\,dt` on the RK4 stages, i.e.
  :math:`-\int\partial\cdot v\,dt` (analytic Laplacians, cost of one velocity evaluation),
  exact up to the :math:`O(\Delta t^4)` time-discretisation error of the log-density; or
* ``"exact"``: :math:`\log|\det\partial T_k/\partial\phi|` of the applied map by forward-mode
  autodiff (:math:`V` times the cost): incremental weights exact for the map applied.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..flow import LatticeFlow, exact_log_det, rk4
from ..samplers import AnnealingProblem, register_problem


def lattice_problem(flow, *, logdet: str = "continuous") -> AnnealingProblem:
    """The :class:`~pikflow.samplers.AnnealingProblem` of a solved :class:`LatticeFlow`."""
    path, basis, steps = flow.path, flow.basis, flow.steps
    coeffs = jnp.asarray(flow.coeffs)
    dt = 1.0 / steps

    def velocity(a, x):
        return -basis.gradient_and_laplacian(a, x)[0]

    def stage(a):  # one fused evaluation: the velocity and Laplacian(Omega) from the same transforms
        def f(x):
            g, lap = basis.gradient_and_laplacian(a, x)
            return -g, lap

        return f

    def only_velocity(a):
        return lambda x: (velocity(a, x), 0.0)

    def transport(k, x):  # the one RK4 (pikflow.flow.rk4) through layers 2k, 2k+1, 2k+2
        a = jax.lax.dynamic_slice_in_dim(coeffs, 2 * k, 3)
        if logdet == "exact":
            f = lambda y: rk4(only_velocity(a[0]), only_velocity(a[1]), only_velocity(a[2]), y, dt)[0]  # noqa: E731
            return f(x), exact_log_det(f, x)
        new, lap = rk4(stage(a[0]), stage(a[1]), stage(a[2]), x, dt)
        return new, -lap  # log|det| = -(change of log q) = -int Lap(Omega) dt

    def langevin_terms(x, t):
        a = coeffs[jnp.round(t * 2 * steps).astype(int)]
        return velocity(a, x), -basis.laplacian(a, x), path.gradient(x, t), path.dsdt(x, t)

    return AnnealingProblem(
        times=np.arange(steps + 1) / steps,
        event_shape=tuple(path.field_shape),
        base_sample=flow.base.sample,
        log_gamma=lambda x, t: -path.value(x, t),
        transport=transport,
        langevin_terms=langevin_terms,
        logdet=logdet,
        lattice_shape=tuple(path.lattice.shape),
    )


def magnetisation_moments(components: int = 1) -> dict:
    r"""Observables :math:`|m|, m^2, m^4` of the magnetisation density :math:`m = \frac1V\sum_n\phi_n`.

    With ``components > 1`` a configuration has shape ``(components, *lattice)`` and :math:`m`
    is the vector :math:`m_a = \frac1V\sum_n\phi_{a,n}`: the observables are :math:`|m|`,
    :math:`|m|^2` and :math:`|m|^4`.
    """
    if components == 1:
        return {
            "abs_m": lambda x: jnp.abs(jnp.mean(x)),
            "m2": lambda x: jnp.mean(x) ** 2,
            "m4": lambda x: jnp.mean(x) ** 4,
        }

    def sq(x):
        return jnp.sum(jnp.mean(x.reshape(components, -1), axis=1) ** 2)

    return {"abs_m": lambda x: jnp.sqrt(sq(x)), "m2": sq, "m4": lambda x: sq(x) ** 2}


def smc_observables(result, volume: int, t: float | None = None) -> dict:
    r"""``abs_m``, ``chi`` :math:`= V(\langle m^2\rangle - \langle|m|\rangle^2)` and ``binder`` from an SMC run.

    ``volume`` is the number of sites; with several components :math:`m^2` is :math:`|m|^2`.

    Each is computed per replica from that replica's weighted means and given the replica
    spread as its error (``result`` must have recorded :func:`magnetisation_moments`).
    """
    return {
        "abs_m": result.observable("abs_m", t),
        "chi": result.derived(lambda m: volume * (m["m2"] - m["abs_m"] ** 2), t),
        "binder": result.derived(lambda m: 1 - m["m4"] / (3 * m["m2"] ** 2), t),
    }


register_problem(LatticeFlow, lattice_problem)  # pikflow.samplers.smc(flow) of a lattice flow

__all__ = ["lattice_problem", "magnetisation_moments", "smc_observables"]
