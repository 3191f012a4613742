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

from .._errors import SamplingError
from ..action import hopping_coupling
from ..flow import LatticeFlow, exact_log_det, push_batch, rk4, rk4_window
from ..flow._compiled import _as
from ..samplers import AnnealingProblem, register_problem


def _log_gamma(path):
    r""":math:`\log\gamma_t = -\hat S_t` of one configuration, whose derivative (for the MCMC moves) is the
    path's lowered gradient stencil (:meth:`~pikflow.action.LatticePath.gradient`) rather than a second
    autodiff pass through the action, as in pikflow's HMC."""

    @jax.custom_vjp
    def log_gamma(x, t):
        return -path.value(x, t)

    def forward(x, t):
        return log_gamma(x, t), (x, t)

    def backward(res, g):
        x, t = res
        return -g * path.gradient(x, t), jnp.zeros_like(t)

    log_gamma.defvjp(forward, backward)
    return log_gamma


def lattice_problem(flow, *, logdet: str = "continuous", precision: str = "float64") -> AnnealingProblem:
    """The :class:`~pikflow.samplers.AnnealingProblem` of a solved :class:`LatticeFlow`.

    ``precision="float32"`` evaluates the transport's velocities and Laplacians in float32 (as
    :meth:`LatticeFlow.sample` with that precision: the RK4 state, the log-Jacobian's accumulation and
    every action stay float64), for ``logdet="continuous"`` only. The weights are then those of the
    map actually applied, up to the continuous log-Jacobian's error and float32 rounding of each
    evaluation (measure it on a few samples with :meth:`LatticeFlow.log_density_error`).
    """
    if precision not in ("float64", "float32"):
        raise SamplingError(f"precision must be 'float64' or 'float32', got {precision!r}")
    if precision == "float32" and logdet != "continuous":
        raise SamplingError("precision='float32' is for logdet='continuous' (the exact log-Jacobian needs float64)")
    path, basis, steps = flow.path, flow.basis, flow.steps
    coeffs = jnp.asarray(flow.coeffs)
    dt = 1.0 / steps
    ev, low = basis.fused, jnp.dtype(precision)
    params = _as(low, ev.params)  # the evaluation's constants in its precision (as the flow's push)

    def velocity(a, x):
        return -basis.gradient_and_laplacian(a, x)[0]

    def stage(a):  # one fused evaluation: the velocity and Laplacian(Omega) from the same transforms
        def f(x):
            g, lap = ev.evaluate(params, a.astype(low), x.astype(low))
            return -g.astype(x.dtype), lap.astype(x.dtype)

        return f

    def only_velocity(a):
        return lambda x: (velocity(a, x), 0.0)

    def layer(k, y):  # layer k's fused evaluation: the velocity and Laplacian(Omega) from the same transforms
        return stage(coeffs[k])(y)

    def transport(k, x):  # the one RK4 (pikflow.flow.rk4_window) through layers 2k, 2k+1, 2k+2
        if logdet == "exact":
            a = jax.lax.dynamic_slice_in_dim(coeffs, 2 * k, 3)
            f = lambda y: rk4(only_velocity(a[0]), only_velocity(a[1]), only_velocity(a[2]), y, dt)[0]  # noqa: E731
            return f(x), exact_log_det(f, x)
        # a loop over the 4 stages (one evaluation in the compiled body); a zero layer 2k (layer 0 of a clock
        # t**p, p > 1) is skipped: its stage starts the loop one stage later
        skip = jnp.all(coeffs[2 * k] == 0).astype(int)
        new, lap = rk4_window(layer, x, jnp.zeros((), x.dtype), k, 1, dt, skip)
        return new, -lap  # log|det| = -(change of log q) = -int Lap(Omega) dt

    def langevin_terms(x, t):
        a = coeffs[jnp.round(t * 2 * steps).astype(int)]
        return velocity(a, x), -basis.laplacian(a, x), path.gradient(x, t), path.dsdt(x, t)

    times = np.arange(steps + 1) / steps
    return AnnealingProblem(
        times=times,
        # on a reparametrised clock (fit_lattice's schedule) step k sits at the given path's t_k**p
        path_times=times ** float(getattr(path, "time_power", 1.0)),
        event_shape=tuple(path.field_shape),
        base_sample=flow.base.sample,
        log_gamma=_log_gamma(path),
        transport=transport,
        langevin_terms=langevin_terms,
        logdet=logdet,
        lattice_shape=tuple(path.lattice.shape),
        batch=push_batch(basis),
        hopping=hopping_coupling(path),  # cluster moves act on x at each step's target, after the transport
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

    ``chi`` and ``binder`` are formed from the weighted means pooled over the replicas, with the
    jackknife error over the replicas (:meth:`~pikflow.samplers.SMCResult.derived`; ``result`` must
    have recorded :func:`magnetisation_moments`).
    """
    return {
        "abs_m": result.observable("abs_m", t),
        "chi": result.derived(lambda m: volume * (m["m2"] - m["abs_m"] ** 2), t),
        "binder": result.derived(lambda m: 1 - m["m4"] / (3 * m["m2"] ** 2), t),
    }


register_problem(LatticeFlow, lattice_problem)  # pikflow.samplers.smc(flow) of a lattice flow

__all__ = ["lattice_problem", "magnetisation_moments", "smc_observables"]
