r"""An annealing problem: what a sequential sampler needs from a path and a solved flow, for any field space.

A sequential Monte Carlo sampler (:func:`pikflow.samplers.smc`) moves particles along the
step times :math:`0 = t_0 < t_1 < \dots < t_K = 1` of a path of actions :math:`\hat S_t`
(paper eqs. 10-14). It needs, per configuration :math:`x` of any shape:

* the unnormalised log-density :math:`\log\gamma_t(x) = -\hat S_t(x)` at any step time,
* an exact sample of the base with its normalised log-density :math:`\log q_0`,
* the deterministic transport of step :math:`k` (the RK4 map of the PIK layers
  :math:`2k, 2k+1, 2k+2`) with its log-Jacobian :math:`\log|\det\partial T_k/\partial x|`,
* for the Langevin variant (paper App. C), the velocity :math:`v_t`, its divergence, the
  action's gradient and :math:`d\hat S_t/dt`.

:func:`flow_problem` builds it for a 0-D :class:`~pikflow.Flow`; a space registers the builder
of its flows' problem with :func:`register_problem` (the lattice flows:
:func:`pikflow.lattice.lattice_problem`). Everything here is a pure JAX function of a
single configuration, so the sampler vmaps it over particles and replicas.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from .._errors import SamplingError

#: log-Jacobians a transport can carry
LOGDETS = ("exact", "continuous")


@dataclasses.dataclass(frozen=True, eq=False)  # identity: the compiled SMC functions are cached per problem
class AnnealingProblem:
    r"""A path with its step times, base, transport maps and (optionally) Langevin terms.

    Attributes
    ----------
    times
        Step times :math:`t_0 = 0, \dots, t_K = 1`, shape ``(K + 1,)``.
    event_shape
        Shape of one configuration (``(n_fields,)`` in 0-D, the lattice shape on a lattice).
    base_sample
        ``(key, n) -> (x, log_q0)``: ``n`` exact base samples and their normalised log-density;
        with ``replica_base``, ``(key, n, r) -> (x, log_q0)`` for replica ``r`` (a multilevel
        hierarchy: replica ``r`` draws from replica ``r``'s coarse samples, so replicas stay
        independent).
    log_gamma
        ``(x, t) -> -S_t(x)`` for one configuration.
    transport
        ``(k, x) -> (T_k x, log|det dT_k/dx|)`` for one configuration and a (traced) step
        index ``k``; ``None`` when the problem has no flow.
    langevin_terms
        ``(x, t) -> (v, div v, grad S_t, dS_t/dt)`` for one configuration (App. C); ``None``
        when not available.
    path_times
        The times reported for the steps (default ``times``): the given path's times when the
        flow runs on a reparametrised clock (:attr:`pikflow.Flow.step_times`).
    logdet
        ``"exact"`` (the log-Jacobian of the applied map: exact weights) or ``"continuous"``
        (:math:`-\int\partial\cdot v\,dt` on the RK4 stages: exact up to :math:`O(\Delta t^4)`).
    field_axes
        Number of trailing axes of a configuration (``len(event_shape)``).
    lattice_shape
        The lattice of a lattice problem (the trailing axes of ``event_shape``; leading axes are
        field components), for the Fourier-accelerated moves; ``()`` in 0-D.
    batch
        Configurations evaluated together by ``smc(batch="auto")`` on a lattice (default 128; fewer for a
        transport whose evaluation needs a smaller batch to stay in cache, ``pikflow.flow.push_batch``).
    hopping
        The nearest-neighbour coupling :math:`J` of an action :math:`\sum_x v_t(\phi_x) - J\sum_{x,\mu}
        \phi_x\phi_{x+\mu}` with even :math:`v_t` (``smc(mcmc="hmc+cluster")``'s cluster moves), else ``None``.
    """

    times: np.ndarray
    event_shape: tuple[int, ...]
    base_sample: Callable
    log_gamma: Callable
    transport: Callable | None = None
    langevin_terms: Callable | None = None
    logdet: str = "exact"
    path_times: np.ndarray | None = None
    replica_base: bool = False
    lattice_shape: tuple[int, ...] = ()
    batch: int = 128
    hopping: float | None = None

    def __post_init__(self):
        times = np.asarray(self.times, dtype=float)
        if times.ndim != 1 or times.size < 2 or times[0] != 0.0 or abs(times[-1] - 1.0) > 1e-12:
            raise SamplingError("an annealing problem needs step times from 0 to 1")
        if np.any(np.diff(times) <= 0):
            raise SamplingError("the step times of an annealing problem must increase")
        if self.logdet not in LOGDETS:
            raise SamplingError(f"logdet must be one of {LOGDETS}, got {self.logdet!r}")
        object.__setattr__(self, "times", times)
        path_times = times if self.path_times is None else np.asarray(self.path_times, dtype=float)
        if path_times.shape != times.shape:
            raise SamplingError("path_times must have one entry per step time")
        object.__setattr__(self, "path_times", path_times)
        object.__setattr__(self, "event_shape", tuple(int(s) for s in self.event_shape))
        lattice = tuple(int(s) for s in self.lattice_shape)
        if lattice and self.event_shape[len(self.event_shape) - len(lattice) :] != lattice:
            raise SamplingError(f"lattice_shape {lattice} must be the trailing axes of event_shape {self.event_shape}")
        object.__setattr__(self, "lattice_shape", lattice)

    @property
    def steps(self) -> int:
        """Number of annealing steps :math:`K`."""
        return self.times.size - 1

    @property
    def size(self) -> int:
        """Real degrees of freedom of one configuration."""
        return int(np.prod(self.event_shape))


def flow_problem(flow, *, logdet: str = "exact") -> AnnealingProblem:
    r"""The :class:`AnnealingProblem` of a solved 0-D :class:`~pikflow.Flow` (any number of field components).

    The transport of step :math:`k` is the RK4 step through layers :math:`2k, 2k+1, 2k+2`
    (eq. 11), the same map :meth:`Flow.sample` applies with ``method="rk4"``; with
    ``logdet="exact"`` its log-Jacobian is that of the discrete map (forward-mode
    autodiff), so the incremental weights are exact for the map applied.
    """
    from ..flow._integrate import exact_log_det, rk4_step, rk4_step_with_divergence

    if logdet not in LOGDETS:
        raise SamplingError(f"logdet must be one of {LOGDETS}, got {logdet!r}")
    eq, kernels, steps = flow.equation, flow.kernels, flow.steps
    dt = 1.0 / steps

    def transport(k, x):
        if logdet == "exact":
            step = lambda y: rk4_step(kernels, k, y, dt)  # noqa: E731
            return step(x), exact_log_det(step, x)
        new, integral = rk4_step_with_divergence(kernels, k, x, dt)
        return new, integral

    layer_of = lambda t: jnp.round(t * 2 * steps).astype(int)  # noqa: E731

    def langevin_terms(x, t):
        kernel = kernels.layer(layer_of(t))
        return kernel(x), kernel.divergence(x), eq.gradient_fn(x, t), eq.rhs_fn(x, t)

    return AnnealingProblem(
        times=np.arange(steps + 1) / steps,
        path_times=flow.step_times,
        event_shape=(flow.n_fields,),
        base_sample=flow.base.sample,
        log_gamma=lambda x, t: -eq.action_fn(x, t),
        transport=transport,
        langevin_terms=langevin_terms,
        logdet=logdet,
    )


#: flow class -> ``builder(flow, *, logdet=...)`` of its :class:`AnnealingProblem` (:func:`register_problem`).
_BUILDERS: dict[type, Callable] = {}


def register_problem(cls: type, builder: Callable) -> None:
    """Make :func:`as_problem` (and :func:`~pikflow.samplers.smc`) build ``builder(flow, logdet=...)`` for a ``cls``."""
    _BUILDERS[cls] = builder


def as_problem(target, *, logdet: str | None = None, precision: str = "float64") -> AnnealingProblem:
    """An :class:`AnnealingProblem` from a problem, a 0-D :class:`~pikflow.Flow` or a lattice flow.

    ``precision`` (``"float64"`` or ``"float32"``) is that of the transport's evaluations, for a space
    whose builder takes it (the lattice flows: :func:`pikflow.lattice.lattice_problem`).
    """
    if isinstance(target, AnnealingProblem):
        if precision != "float64":
            raise SamplingError("precision applies to a flow's transport; build the problem with it instead")
        return target
    kwargs = {} if logdet is None else {"logdet": logdet}
    build = next((_BUILDERS[k] for k in type(target).__mro__ if k in _BUILDERS), None)
    if build is None and hasattr(target, "annealing_problem"):
        build = type(target).annealing_problem  # called as build(target, ...)
    elif build is None:
        from ..flow import Flow

        if not isinstance(target, Flow):
            raise SamplingError(
                f"smc needs a solved flow (pikflow.solve / fit_lattice) or an AnnealingProblem, got "
                f"{type(target).__name__}"
            )
        build = flow_problem
    if precision != "float64":
        if "precision" not in inspect.signature(build).parameters:
            raise SamplingError(
                f"precision={precision!r} is not available for a {type(target).__name__}: float32 transport is for "
                "lattice flows"
            )
        kwargs["precision"] = precision
    return build(target, **kwargs)


__all__ = ["LOGDETS", "AnnealingProblem", "as_problem", "flow_problem", "register_problem"]
