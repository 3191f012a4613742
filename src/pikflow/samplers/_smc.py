r"""Sequential Monte Carlo with PIK transport: exact weights at any volume (paper App. C).

Particles start from the exactly sampled base and follow the step times
:math:`t_0 = 0 < \dots < t_K = 1` of the path. Step :math:`k` applies, to every particle,

1. **transport** by the PIK map :math:`T_k` of that step (the RK4 step through layers
   :math:`2k, 2k+1, 2k+2`, eq. 11), with the incremental log-weight

   .. math:: \log w^{inc} = \log\gamma_{k+1}(T_k x) + \log|\det\partial T_k/\partial x| - \log\gamma_k(x),
             \qquad \gamma_t = e^{-\hat S_t},

   a constant for the exact kernel (eq. 14), so the weights degrade only by the kernel's
   residual over one step;
2. **resampling** (systematic) when the ESS/N falls below ``resample``;
3. **rejuvenation** by MCMC moves (BlackJAX MALA or HMC) that leave :math:`p_{t_{k+1}}`
   invariant; they change no weight.

Each step's weighted means are taken after the moves (``estimate="after"``), before the
resampling (``"before"``), or averaged over the configurations after each of the step's
``mcmc_steps`` moves (``"moves"``). Every move leaves :math:`p_{t_{k+1}}` invariant and changes
no weight, so each of those configurations, with the step's weights, is a weighted sample
of the step's target, and so is their average: the intermediate states of the moves are
recycled, as in waste-free SMC (Dau & Chopin, JRSS B 84, 114 (2022)), at the cost of the
observables only.

With ``mcmc_every = m > 1`` steps 2 and 3 happen only at every ``m``-th step (and the last):
in between, the particles are only transported and reweighted, which costs an action
evaluation instead of a trajectory. The schedule is fixed in advance, so the replicas stay
independent and every weight stays exact; fewer moves only leave the particles more
correlated, which the replicas' spread measures.

:math:`\log Z_{t_{k+1}} - \log Z_{t_k} = \log\sum_i W_i^{(k)} w_i^{inc}` with the normalised
weights :math:`W^{(k)}` before the step. ``transport="none"`` is plain annealed SMC
(:math:`T_k = 1`); ``transport="langevin"`` is App. C's Langevin form (drift
:math:`-\partial\hat S_t + v_t`, noise :math:`\sqrt 2`) with the Jarzynski weight
:math:`\int(\partial\cdot v - v\cdot\partial\hat S_t - \partial_t\hat S_t)\,dt` (Euler-Maruyama:
it carries a time-step bias that the two others do not).

Resampled particles are correlated, so every error comes from ``replicas`` independent
runs (the spread of the replica estimates), never from the particles' spread.

On several devices (:mod:`pikflow._devices`) the particles of every replica are split over
the devices along the mesh axis ``"samples"`` when ``n`` is a multiple of the device count;
XLA adds the collectives of resampling and of the weight sums. The random numbers do not
depend on the device count, but sums over particles are added in another order, so a fixed
seed gives the same run within float64 rounding (not bit for bit; tested on 4 devices).
"""

from __future__ import annotations

import inspect
import time as _time
import weakref
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import _random
from .._devices import constrain_particles, replicate_particles
from .._errors import SamplingError
from .._times import step_index
from ..progress import progress_bar
from ._batch import _check_int, _chunk, _per_particle
from ._mcmc import ADAPTIVE_MASS, TARGET_ACCEPTANCE, adapt_step, check_fourier_mass, make_move, measured_mass
from ._pool import pool_targets, pooled_means, pooled_sums, reweighted
from ._problem import as_problem
from ._result import SMCResult

TRANSPORTS = ("pik", "none", "langevin")
#: when a step's means are taken: after its resampling and moves, before them, or averaged over the
#: configurations after each of its moves (``smc(estimate=...)``)
ESTIMATES = ("after", "before", "moves")


def _takes_time(fn) -> bool:
    """Whether an observable is ``f(x, t)`` (two positional parameters) rather than ``f(x)``."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return len(positional) >= 2


def _normalised(logw):
    return jax.nn.softmax(jnp.where(jnp.isfinite(logw), logw, -jnp.inf))


def _ess(logw):
    w = _normalised(logw)
    return 1.0 / (w.shape[0] * jnp.sum(w**2))


def _observe_masks(observables, observe_at, times) -> tuple:
    """Per observable: ``None`` (every step time) or a tuple of booleans over the step times."""
    observe_at = dict(observe_at or {})
    unknown = sorted(set(observe_at) - set(observables))
    if unknown:
        raise SamplingError(f"observe_at names {unknown} that are not observables; observables: {sorted(observables)}")
    masks = []
    for name in observables:
        if name not in observe_at:
            masks.append(None)
            continue
        mask = np.zeros(len(times), bool)
        try:
            mask[[step_index(times, t) for t in np.atleast_1d(np.asarray(observe_at[name], float))]] = True
        except SamplingError as err:
            raise SamplingError(f"observe_at[{name!r}]: {err}") from None
        masks.append(tuple(bool(b) for b in mask))
    return tuple(masks)


def _systematic(key, logw):
    w = _normalised(logw)
    n = w.shape[0]
    u = (jnp.arange(n) + jax.random.uniform(key)) / n
    return jnp.clip(jnp.searchsorted(jnp.cumsum(w), u), 0, n - 1)


_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cache_of(target) -> dict:
    """Compiled SMC functions of ``target`` (a flow or problem), kept while it lives."""
    try:
        return _CACHES.setdefault(target, {})
    except TypeError:  # not weak-referenceable: no cache
        return {}


def _build(problem, settings, observables):
    """The jitted start and step functions of an SMC run (compiled once per target and settings)."""
    # when: the estimate, "after" or "before" the resampling and moves, or "moves" (over them); pool: per step
    # the index of the nearest pool time (_pool.pool_targets), or None
    transport, mcmc, mcmc_steps, leapfrog, resample, n, obs_key, _, every, obs_mask, mass2, _, chunk, when, pool = (
        settings
    )
    names = tuple(k for k, _ in obs_key)
    times = jnp.asarray(problem.times)
    ev = len(problem.event_shape)
    lg = problem.log_gamma
    move = None  # without moves nothing is built (nor refused: e.g. cluster moves of an action without hopping)
    if mcmc_steps:
        move = make_move(
            mcmc, lg, size=problem.size, leapfrog_steps=leapfrog, lattice_shape=problem.lattice_shape,
            mass2=mass2, hopping=problem.hopping,
        )  # fmt: skip
    last = len(problem.times) - 2

    timed = {k: _takes_time(observables[k]) for k in names}

    # observables with the same step mask share one branch (and XLA shares their common work, e.g. an FFT)
    groups: dict = {}
    for name, mask in zip(names, obs_mask, strict=True):
        groups.setdefault(mask, []).append(name)

    def values(z, i):
        """One configuration's observables at step index ``i``, NaN where its group is not observed."""
        t = times[i]
        out = {}
        for mask, group in groups.items():

            def f(z, group=group):
                return jnp.stack([observables[k](z, t) if timed[k] else observables[k](z) for k in group]).astype(float)

            nans = lambda _z, g=group: jnp.full((len(g),), jnp.nan)  # noqa: E731
            vals = f(z) if mask is None else jax.lax.cond(jnp.asarray(mask)[i], f, nans, z)
            out.update(zip(group, vals, strict=True))
        return jnp.stack([out[k] for k in names]) if names else jnp.zeros(0)

    def weighted_values(v, logw):
        return jnp.sum(_normalised(logw)[:, None] * v, axis=0)

    n_obs = len(names)
    nearest = None if pool is None else jnp.asarray(pool)  # per step the nearest pool index, -1: none

    def observed(z, i, target, at_i=None):
        """The observables at step index ``i``, then towards the pool index of ``target`` (:func:`reweighted`,
        NaN for a step without one; ``at_i``: the move's own log-density of ``z``, if known)."""
        if target is None:
            return values(z, i)
        to, shift, valid = target  # valid is not batched: a branch, so steps without a pool time cost nothing more
        nans = lambda: jnp.concatenate([values(z, i), jnp.full(n_obs + 1, jnp.nan)])  # noqa: E731
        return jax.lax.cond(valid, lambda: reweighted(values, lg, times, z, i, to, shift, at_i), nans)

    def pool_target(x, k):
        """``None`` without pooling, else step ``k``'s pool index (0 where it has none), the particles' largest
        log-ratio towards it, and whether it has one."""
        if nearest is None:
            return None
        to, valid = jnp.maximum(nearest[k], 0), nearest[k] >= 0
        ratio = lambda: jnp.max(per_particle(lambda z: lg(z, times[to]) - lg(z, times[k + 1]), x))  # noqa: E731
        shift = jax.lax.cond(valid, ratio, lambda: jnp.zeros((), x.dtype))
        return to, jnp.where(jnp.isfinite(shift), shift, 0.0), valid

    per_particle = _per_particle(chunk, n)
    all_at_once = _per_particle(None, n)

    def moments(x, logw, i):
        """The weighted means of the observables at step index ``i`` (NaN where not observed)."""
        return weighted_values(all_at_once(lambda z: values(z, i), x), logw)

    def advance(k, key, x):
        t0, t1 = times[k], times[k + 1]
        if transport == "pik":

            def one(z):
                y, ld = problem.transport(k, z)
                return y, lg(y, t1) + ld - lg(z, t0)

            y, inc = per_particle(one, x)
        elif transport == "none":
            y = x
            inc = per_particle(lambda z: lg(z, t1) - lg(z, t0), x)
        else:
            dt = t1 - t0
            v, div, grad, dsdt = jax.vmap(problem.langevin_terms, (0, None))(x, t0)
            flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
            inc = dt * (div - jnp.sum(flat(v) * flat(grad), axis=1) - dsdt)
            y = x + dt * (v - grad) + jnp.sqrt(2.0 * dt) * _random.normal(key, x.shape)
        finite = jnp.isfinite(inc) & jnp.all(jnp.isfinite(y.reshape(y.shape[0], -1)), axis=1)
        keep = finite.reshape((-1,) + (1,) * ev)
        return jnp.where(keep, y, x), jnp.where(finite, inc, -jnp.inf), jnp.sum(~finite)

    def rejuvenate(key, x, i, eps, logw, target):
        adaptive = mcmc == "fhmc" and mass2 == ADAPTIVE_MASS
        mass = measured_mass(x, problem.lattice_shape, logw) if adaptive else None  # of this replica's particles
        keys = jax.random.split(key, n)
        if when == "moves":
            see = lambda y, at_i: observed(y, i, target, at_i)  # noqa: E731
            x, acc, v = per_particle(lambda kk, z: move(kk, z, times[i], eps, mcmc_steps, mass, see), keys, x)
        else:
            (x, acc, _), v = per_particle(lambda kk, z: move(kk, z, times[i], eps, mcmc_steps, mass), keys, x), None
            if target is not None:
                v = per_particle(lambda z: observed(z, i, target), x)
        acc = jnp.mean(jnp.where(jnp.isfinite(acc), acc, 0.0))
        return x, acc, adapt_step(eps, acc, mcmc), v

    def unmoved(_key, x, i, eps, _logw, target):
        v = per_particle(lambda z: observed(z, i, target), x) if when == "moves" or target is not None else None
        return x, jnp.full((), jnp.nan, eps.dtype), eps, v

    def one_replica(state, k, key):
        x, logw, anc, eps = state
        k_move, k_res, k_mc = jax.random.split(key, 3)
        x, inc, nonfinite = advance(k, k_move, x)
        dlogz = jax.nn.logsumexp(jnp.log(_normalised(logw)) + inc)
        logw = logw + inc
        ess = _ess(logw)
        means_before = moments(x, logw, k + 1) if when == "before" else None  # of the transported particles
        # k is not batched over the replicas, so this stays a branch under vmap: skipped moves cost nothing
        moving = ((k + 1) % every == 0) | (k == last)
        do = (ess < resample) & moving
        idx = jnp.where(do, _systematic(k_res, logw), jnp.arange(n))
        x, anc = x[idx], anc[idx]
        logw = jnp.where(do, jnp.zeros(n), logw)
        target = pool_target(x, k)
        if mcmc_steps:
            x, acc, new_eps, v = jax.lax.cond(moving, rejuvenate, unmoved, k_mc, x, k + 1, eps, logw, target)
        else:
            acc, new_eps = jnp.nan, eps
            v = unmoved(None, x, k + 1, eps, logw, target)[3]
        if when == "before":
            means = means_before
        elif when == "moves" or target is not None:  # the weighted means of the configurations' (averages over moves)
            means = weighted_values(v[:, :n_obs], logw)
        else:
            means = moments(x, logw, k + 1)
        unique = jnp.sum(jnp.zeros(n, bool).at[anc].set(True))
        record = dict(
            dlogz=dlogz, ess=ess, resampled=do, acceptance=acc, step_size=eps, unique=unique,
            nonfinite=nonfinite, moments=means,
        )  # fmt: skip
        if target is not None:
            record["pooled"] = pooled_sums(v, _normalised(logw), n_obs)
        return (x, logw, anc, new_eps), record

    step_replicas = jax.vmap(one_replica, (0, None, 0))

    @jax.jit
    def step(state, k, keys):
        # the particles of every replica stay split over the devices (pikflow._devices)
        state, record = step_replicas(constrain_particles(state, n), k, keys)
        return constrain_particles(state, n), replicate_particles(record, n)

    @jax.jit
    def start(keys, step_size):
        def one(key, r):
            x, lq = problem.base_sample(key, n, r) if problem.replica_base else problem.base_sample(key, n)
            logw = jax.vmap(lg, (0, None))(x, times[0]) - lq
            logz0 = jax.nn.logsumexp(logw) - jnp.log(n)
            return (x, logw, jnp.arange(n), step_size), logz0, moments(x, logw, 0), _ess(logw)

        state, logz0, m0, ess0 = jax.vmap(one)(keys, jnp.arange(keys.shape[0]))
        return constrain_particles(state, n), *replicate_particles((logz0, m0, ess0), n)

    # the final particles, weights and time-0 ancestors, readable on every process
    finish = jax.jit(lambda state: replicate_particles(state[:3], n))
    return start, step, finish


def smc(
    target,
    n: int = 1000,
    *,
    seed: int = 0,
    transport: str = "pik",
    mcmc: str = "mala",
    mcmc_steps: int = 2,
    step_size: float | None = None,
    leapfrog_steps: int = 10,
    fourier_mass: float | str = 1.0,
    resample: float = 0.5,
    mcmc_every: int = 1,
    replicas: int = 4,
    observables: Mapping[str, Callable] | None = None,
    observe_at: Mapping[str, Sequence[float]] | None = None,
    logdet: str | None = None,
    batch: int | str | None = "auto",
    precision: str = "float64",
    estimate: str = "after",
    pool: Sequence[float] | None = None,
    progress: bool = True,
) -> SMCResult:
    r"""Sample the path of a solved flow by SMC with PIK transport (see the module docstring).

    Parameters
    ----------
    target
        A solved 0-D :class:`~pikflow.Flow`, a lattice flow, or an
        :class:`~pikflow.samplers.AnnealingProblem`.
    n
        Particles per replica.
    seed
        Seed; the same seed gives the same result.
    transport
        ``"pik"`` (the flow's RK4 maps), ``"none"`` (plain annealed SMC, the baseline) or
        ``"langevin"`` (App. C).
    mcmc, mcmc_steps
        Rejuvenation kernel (``"mala"``, ``"hmc"``, or on a lattice ``"fhmc"``: HMC with the
        Fourier-accelerated mass :math:`\hat k^2 + \mu^2`; BlackJAX; or ``"hmc+cluster"``: each HMC trajectory
        followed by an embedded Swendsen-Wang sweep of the signs, for a lattice problem with a ``hopping``
        coupling, e.g. the :math:`\phi^4` scans of :func:`pikflow.lattice.scan_lattice`) and moves per step
        (0: no rejuvenation).
    step_size
        Initial MCMC step size (default :math:`0.2\,\text{size}^{-1/3}` for a configuration of ``size`` real numbers);
        adapted per replica after every step towards 0.57 (MALA) or 0.75 (HMC) acceptance.
    leapfrog_steps
        Leapfrog steps per HMC trajectory.
    fourier_mass
        :math:`\mu^2` of ``mcmc="fhmc"`` (any positive value is exact; near the field's own mass it is
        most efficient), or ``"adaptive"``: the mass :math:`V/\operatorname{Var}\tilde\phi(k)` measured from
        each replica's particles before every sweep of moves
        (:func:`pikflow.samplers.measured_mass`), which follows the path's correlation length.
    resample
        Resample (systematic) when the ESS/N falls below this fraction (0: never, 1: always).
    mcmc_every
        Resample and move only at every ``mcmc_every``-th step and the last (default 1: every
        step); the steps in between only transport and reweight.
    replicas
        Independent runs: the estimates' errors are their spread.
    observables
        ``name -> f(x)`` or ``f(x, t)`` for one configuration (JAX; ``t`` the step time, e.g.
        for :math:`d\hat S_t/dt`); their weighted means are recorded at every step time.
    observe_at
        ``name -> step times``: evaluate that observable only there (NaN at the other step
        times), e.g. an expensive one needed only at a few points of a scan.
    logdet
        Override the problem's log-Jacobian (``"exact"`` or ``"continuous"``).
    batch
        Configurations (over all replicas) that the transport and the moves evaluate together:
        ``"auto"`` (default) :data:`PARTICLE_BATCH` on a lattice, so that a batch's intermediates stay
        in cache, and all at once in 0-D or with the particles split over devices; ``None``: all at
        once. Only the speed changes, not the numbers (to rounding).
    precision
        ``"float32"``: a lattice flow's transport evaluates its velocities and Laplacians in float32
        (:func:`pikflow.lattice.lattice_problem`; the particles, weights and actions stay float64).
    estimate
        When each step's weighted means are taken: ``"after"`` (default) the resampling and the moves,
        ``"before"`` them, from the transported particles and their weights, or ``"moves"``: averaged
        over the configurations after each of the step's ``mcmc_steps`` moves (the moves' intermediate
        states recycled; the observables cost ``mcmc_steps`` times as much). All three are exact;
        resampling adds noise that few moves do not remove, so ``"before"`` gives smaller errors where
        the moves mix slowly (near criticality), ``"after"`` where they mix well, and ``"moves"`` smaller
        errors than ``"after"`` wherever successive moves decorrelate the configurations.
    pool
        Step times (e.g. a scan's points) whose means also take in the configurations of the steps around
        them (each step's towards its nearest pool time, between the first and the last), reweighted by the
        ratio of the two actions and weighted by their effective sample size (:mod:`pikflow.samplers._pool`;
        importance tempering). Not with ``estimate="before"``; the observables are then evaluated twice a
        configuration (at the step's time and at its pool time).
    """
    problem = as_problem(target, logdet=logdet, precision=precision)
    n = _check_int("n (particles)", n, 2)
    replicas = _check_int("replicas", replicas, 2)
    mcmc_steps = _check_int("mcmc_steps", mcmc_steps, 0)
    if mcmc not in TARGET_ACCEPTANCE:  # checked here too: without moves no move is built
        raise SamplingError(f"mcmc must be one of {tuple(TARGET_ACCEPTANCE)}, got {mcmc!r}")
    mcmc_every = _check_int("mcmc_every", mcmc_every, 1)
    if transport not in TRANSPORTS:
        raise SamplingError(f"transport must be one of {TRANSPORTS}, got {transport!r}")
    if transport == "pik" and problem.transport is None:
        raise SamplingError("transport='pik' needs a solved flow; use transport='none' for plain SMC")
    if transport == "langevin" and problem.langevin_terms is None:
        raise SamplingError("transport='langevin' needs the flow's velocity and divergence")
    if not 0.0 <= resample <= 1.0:
        raise SamplingError(f"resample must be a fraction in [0, 1], got {resample!r}")
    if estimate not in ESTIMATES:
        raise SamplingError(f"estimate must be one of {ESTIMATES}, got {estimate!r}")
    pool_points, nearest = pool_targets(problem.path_times, pool) if pool is not None else ((), None)
    if pool_points and estimate == "before":
        raise SamplingError("pool combines the configurations after the moves: use estimate='after' or 'moves'")
    observables = dict(observables or {})
    if step_size is None:
        step_size = 0.2 / problem.size ** (1.0 / 3.0)
    if not (np.isfinite(step_size) and step_size > 0):
        raise SamplingError(f"step_size must be positive, got {step_size!r}")
    mass2 = check_fourier_mass(fourier_mass)
    if mass2 == ADAPTIVE_MASS and mcmc != "fhmc":
        raise SamplingError(f"fourier_mass={ADAPTIVE_MASS!r} is a mass of the mcmc='fhmc' moves, not of mcmc={mcmc!r}")

    obs_key = tuple((k, id(f)) for k, f in observables.items())  # the cached functions keep them alive
    obs_mask = _observe_masks(observables, observe_at, problem.path_times)
    chunk = _chunk(batch, problem, n, replicas)
    settings = (
        transport, mcmc, mcmc_steps, leapfrog_steps, float(resample), n, obs_key, problem.logdet, mcmc_every, obs_mask,
        mass2, precision, chunk, estimate, tuple(nearest.tolist()) if pool_points else None,
    )  # fmt: skip
    cache = _cache_of(target)
    if settings not in cache:
        cache[settings] = (*_build(problem, settings, observables), {})
    start, step, finish, compiled_for = cache[settings]  # compiled_for: replicas -> the compiled functions
    names = tuple(observables)
    step_size = jnp.asarray(step_size, float)

    key = jax.random.PRNGKey(seed)
    t_start = _time.perf_counter()
    keys0 = jax.random.split(jax.random.fold_in(key, 0), replicas)
    # compiled ahead of time, so that ``compile_seconds`` and the run's own time are told apart
    compiled, compile_seconds = compiled_for.get(replicas), 0.0
    if compiled is None:
        t_compile = _time.perf_counter()
        start_c = start.lower(keys0, step_size).compile()
        compile_seconds = _time.perf_counter() - t_compile
    else:
        start_c = compiled[0]
    state, logz0, m0, ess0 = start_c(keys0, step_size)
    if compiled is None:
        t_compile = _time.perf_counter()
        compiled = (start_c, step.lower(state, 0, keys0).compile(), finish.lower(state).compile())
        compiled_for[replicas] = compiled
        compile_seconds += _time.perf_counter() - t_compile
    _, step_c, finish_c = compiled
    records = []
    bar = progress_bar(total=problem.steps, desc=f"smc ({transport})", disable=not progress)
    for k in range(problem.steps):
        state, rec = step_c(state, k, jax.random.split(jax.random.fold_in(key, k + 1), replicas))
        rec = jax.tree.map(np.asarray, rec)
        records.append(rec)
        bar.set_postfix(
            ess=f"{rec['ess'].min():.3f}",
            acc=f"{np.nanmean(rec['acceptance']):.2f}" if np.isfinite(rec["acceptance"]).any() else "-",
            resampled=int(sum(r["resampled"].sum() for r in records)),
        )  # fmt: skip
        bar.update(1)
    bar.close()
    if pool_points:  # the means at the pool times: their steps', reweighted and combined
        mom = np.concatenate([np.asarray(m0)[None], np.stack([r["moments"] for r in records])])
        mom = pooled_means(mom, records, pool_points, nearest)
        for k, r in enumerate(records):
            r["moments"] = mom[k + 1]
    particles, log_w, ancestors = finish_c(state)
    seconds = _time.perf_counter() - t_start
    return SMCResult.from_records(
        times=problem.path_times, names=names, logz0=np.asarray(logz0), moments0=np.asarray(m0), ess0=np.asarray(ess0),
        records=records, particles=np.asarray(particles), log_w=np.asarray(log_w), ancestors=np.asarray(ancestors),
        seconds=seconds,
        settings=dict(
            n=n, seed=seed, transport=transport, mcmc=mcmc, mcmc_steps=mcmc_steps, resample=resample,
            mcmc_every=mcmc_every, replicas=replicas, logdet=problem.logdet, leapfrog_steps=leapfrog_steps,
            fourier_mass=fourier_mass, chunk=chunk, precision=precision, estimate=estimate,
            steps=problem.steps, compile_seconds=compile_seconds,
            pool=[float(problem.path_times[p]) for p in pool_points],
        ),
    )  # fmt: skip


__all__ = ["ESTIMATES", "TRANSPORTS", "smc"]
