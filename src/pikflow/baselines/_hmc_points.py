r"""HMC at many points of a path in one vectorised batch: the fair per-point baseline of a parameter scan.

A scan of ``P`` points by one HMC run per point, one point after the other, runs ``chains``
chains side by side; on a CPU a wider batch costs less per chain and trajectory (16x16
:math:`\phi^4`: 9.3 µs with 16 chains, 4.8 µs with 256). :func:`hmc_points` runs the
``P × chains`` chains of all points in one :func:`jax.vmap`, each chain at its own time
:math:`t_p` of the path (the couplings are traced, so one compilation serves every point) and
with its point's own leapfrog step, adapted during thermalisation from that point's
acceptance exactly as :meth:`HMC.run` does for one point (blocks of 25 trajectories,
:math:`\epsilon_p \to \epsilon_p\,e^{2(a_p - 0.8)}`), then fixed, so every chain is an exact
HMC chain of :math:`e^{-\hat S_{t_p}}` (paper eq. 22). The chains, leapfrog and Metropolis
step are BlackJAX's (``blackjax.hmc``), as in :class:`HMC`.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import PikflowError
from ._hmc import ADAPT_BLOCK, ADAPT_RATE, ADAPT_TARGET, HMC
from ._hmc_target import as_key as _as_key
from ._hmc_target import check_positions_memory as _check_positions_memory
from ._hmc_target import kept_size as _kept_size

__all__ = ["PointsHMC", "hmc_points"]


@dataclass
class PointsHMC:
    """The chains of :func:`hmc_points`.

    ``positions``: ``(points, chains, n, k)``, every configuration (``k = dim``) or ``keep``'s
    ``k`` numbers after every measured trajectory; ``step_size`` and ``acceptance``: one per
    point; ``sample_seconds``: the measured trajectories of the whole batch (compilation and
    thermalisation excluded, timed on their own).
    """

    times: np.ndarray
    positions: np.ndarray
    step_size: np.ndarray
    acceptance: np.ndarray
    sample_seconds: float
    thermalisation_seconds: float
    compile_seconds: float

    @property
    def seconds_per_point(self) -> float:
        """The batch's sampling time shared equally by its points."""
        return self.sample_seconds / len(self.times)


def hmc_points(
    target,
    times,
    *,
    n: int,
    chains: int,
    thermalisation: int = 200,
    n_leapfrog: int = 10,
    step_size: float = 0.15,
    seed=0,
    init=None,
    keep=None,
    progress: bool = False,
) -> PointsHMC:
    r"""HMC chains at every time of ``times`` in one batch: ``chains`` per point, ``n`` measured trajectories each.

    Parameters
    ----------
    target
        Anything :class:`HMC` samples (a :class:`~pikflow.Path` or a lattice path, ...).
    times
        The path's times :math:`t_p` of the points.
    step_size
        Every point's first leapfrog step; each point's is then adapted during thermalisation
        (``max(1, thermalisation // 25)`` blocks of 25 trajectories) towards an acceptance of 0.8
        and fixed for the measured trajectories.
    init
        Starting configurations ``(points, chains, dim)`` (or the field shape after
        ``(points, chains)``); default: 0.1 times normal draws.
    keep
        As in :meth:`HMC.run`: a JAX function ``keep(x, t)`` of one flat configuration whose
        numbers are kept per trajectory instead of the configuration.
    progress
        A progress bar over the trajectories of all chains (thermalisation and measurement); the
        chains do not depend on it.
    """
    from ..progress import progress_bar

    times = np.asarray(times, dtype=float).reshape(-1)
    if times.size == 0 or not np.all(np.isfinite(times)):
        raise PikflowError(f"times must be one or more finite numbers, got {times!r}")
    for name, val, lo in (("n", n, 5), ("chains", chains, 1), ("thermalisation", thermalisation, 0)):
        if isinstance(val, bool) or not isinstance(val, int | np.integer) or val < lo:
            raise PikflowError(f"{name} must be an integer >= {lo}, got {val!r}")
    sampler = HMC(target, step_size=float(step_size), n_leapfrog=int(n_leapfrog))
    P, dim = times.size, sampler.dim
    C = P * int(chains)
    width = dim if keep is None else _kept_size(keep, dim)
    n_calls = -(-int(n) // ADAPT_BLOCK)
    _check_positions_memory(n_calls * ADAPT_BLOCK, C, width)
    key = _as_key(seed)
    if init is None:
        x0 = 0.1 * jax.random.normal(jax.random.fold_in(key, 1 << 20), (C, dim))
    else:
        x0 = np.asarray(init, dtype=float).reshape(-1)
        if x0.size != C * dim or not np.all(np.isfinite(x0)):
            raise PikflowError(f"init must hold {P} x {chains} finite configurations of {dim} numbers")
        x0 = x0.reshape(C, dim)

    def init_fn(x, t):
        return jax.vmap(lambda xi, ti: sampler._algorithm(ti, sampler.step_size).init(xi))(x, t)

    def advance(state, k, t, step):
        def body(st, kk):
            one = lambda k1, s, ti, e: sampler._algorithm(ti, e).step(k1, s)  # noqa: E731
            st, info = jax.vmap(one)(jax.random.split(kk, C), st, t, step)
            pos = st.position if keep is None else jax.vmap(lambda x, ti: jnp.ravel(keep(x, ti)))(st.position, t)
            return st, (pos, info.is_accepted)

        st, (pos, acc) = jax.lax.scan(body, state, jax.random.split(k, ADAPT_BLOCK))
        return st, pos, acc.sum(0)

    t0 = _time.perf_counter()
    t_chain = jnp.asarray(np.repeat(times, chains))
    spec = jax.ShapeDtypeStruct((C,), jnp.float64)
    init_c = jax.jit(init_fn).lower(jax.ShapeDtypeStruct((C, dim), jnp.float64), spec).compile()
    state = init_c(jnp.asarray(x0), t_chain)
    adv_c = jax.jit(advance).lower(state, jax.random.PRNGKey(0), spec, spec).compile()
    compile_seconds = _time.perf_counter() - t0

    steps = np.full(P, float(step_size))
    n_therm = max(1, thermalisation // ADAPT_BLOCK) if thermalisation else 0
    bar = progress_bar(total=(n_therm + n_calls) * ADAPT_BLOCK * C, desc=f"HMC at {P} points", disable=not progress)
    try:
        t0 = _time.perf_counter()
        for i in range(n_therm):
            state, _, acc = adv_c(state, jax.random.fold_in(key, i), t_chain, jnp.asarray(np.repeat(steps, chains)))
            a = np.asarray(acc).reshape(P, chains).mean(1) / ADAPT_BLOCK
            steps = steps * np.exp(ADAPT_RATE * (a - ADAPT_TARGET))
            bar.update(ADAPT_BLOCK * C)
        jax.block_until_ready(state)
        therm_seconds = _time.perf_counter() - t0

        pos = np.empty((C, n_calls * ADAPT_BLOCK, width))
        accepted = np.zeros(C)
        step_c = jnp.asarray(np.repeat(steps, chains))
        t0 = _time.perf_counter()
        for i in range(n_calls):
            state, p, acc = adv_c(state, jax.random.fold_in(key, (1 << 16) + i), t_chain, step_c)
            pos[:, i * ADAPT_BLOCK : (i + 1) * ADAPT_BLOCK] = np.moveaxis(np.asarray(p), 0, 1)
            accepted += np.asarray(acc)
            bar.update(ADAPT_BLOCK * C)
        sample_seconds = _time.perf_counter() - t0
    finally:
        bar.close()
    for p in range(P):  # the single-point checks: finite configurations, chains that move
        block = slice(p * chains, (p + 1) * chains)
        sampler._check(pos[block, :n], accepted[block], n_calls * ADAPT_BLOCK * chains, times[p], steps[p], True)
    return PointsHMC(
        times=times,
        positions=pos[:, :n].reshape(P, chains, n, width),
        step_size=steps,
        acceptance=accepted.reshape(P, chains).sum(1) / (n_calls * ADAPT_BLOCK * chains),
        sample_seconds=sample_seconds,
        thermalisation_seconds=therm_seconds,
        compile_seconds=compile_seconds,
    )
