r"""Hybrid (Hamiltonian) Monte Carlo for any pikflow action, with BlackJAX: the baseline.

HMC samples :math:`p_t(\phi) \propto e^{-\hat S_t(\phi)}` (the action of the path at a
fixed time ``t``, paper eq. 22) by molecular dynamics in a fictitious time with the
Hamiltonian

.. math::  H(\phi, \pi) = \tfrac12\,\pi\cdot\pi + \hat S_t(\phi), \qquad \pi \sim \mathcal N(0, 1),

integrated with the leapfrog (velocity Verlet) scheme, step :math:`\epsilon`, for
:math:`L = \tau/\epsilon` steps, and a Metropolis accept/reject with probability
:math:`\min(1, e^{-\Delta H})`, which makes the chain exact. The paper's setting
(sec. IV A 1) is trajectory length :math:`\tau = 1` and :math:`\epsilon = 1/25`
(:math:`L = 25`), the same time discretisation as the flow; that is the default here.

Implementation: BlackJAX's ``blackjax.hmc`` kernel on the potential
:math:`\hat S_t` as a generic JAX function of a flat array (one configuration), with
``t`` a traced argument, so one compiled function serves every point of a parameter
scan. Many chains run in parallel with :func:`jax.vmap` (vectorised HMC), trajectories
are advanced ``chunk`` at a time by a compiled :func:`jax.lax.scan`, and the chains can
be split over ``workers`` host threads (JAX releases the GIL while a compiled function
runs) to use several CPU cores. Compilation is done ahead of time and timed on its own,
so ``sample_seconds`` is pure sampling. Errors of chain averages come from Wolff's
Gamma method (:func:`pikflow.diagnostics.gamma_method`) with the chains as replica.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import PikflowError, SamplingError
from ._hmc_result import HMCResult
from ._hmc_target import as_key as _as_key
from ._hmc_target import check_positions_memory as _check_positions_memory
from ._hmc_target import check_positive as _check_positive
from ._hmc_target import is_auto as _is_auto
from ._hmc_target import kept_size as _kept_size
from ._hmc_target import target_potential
from ._leapfrog import trajectory_integrator as _trajectory_integrator

__all__ = ["HMC", "HMCResult", "hmc"]

#: Acceptance below which a run is refused (frozen chains: estimates and errors meaningless).
MIN_ACCEPTANCE = 0.01
#: Positions written per compiled call are bounded by this many floats (memory).
_CHUNK_FLOATS = 1 << 21
#: ``step_size="auto"``: trajectories per adaptation block, the acceptance aimed at, and the rate
#: of the rescaling :math:`\epsilon \to \epsilon\,e^{r(a - a_0)}` after each block (thermalisation only).
ADAPT_BLOCK, ADAPT_TARGET, ADAPT_RATE = 25, 0.8, 2.0
#: Leapfrog steps per trajectory with ``step_size="auto"`` when ``n_leapfrog`` is not given.
AUTO_LEAPFROG = 25


class HMC:
    r"""A compiled HMC sampler (BlackJAX leapfrog) for :math:`\hat S_t`, reusable at any ``t`` and step.

    Parameters
    ----------
    target
        The action: a :class:`~pikflow.Path` (sampled at the ``t`` given to
        :meth:`run`), a :class:`~pikflow.action.LatticePath` (configurations of its
        ``field_shape``, flattened; the leapfrog uses its gradient stencil), a
        :class:`~pikflow.Flow` or :class:`~pikflow.WegnerEquation` (their path), an
        :class:`~pikflow.Action` without couplings, or a JAX-traceable callable ``S(x)``
        or ``S(x, t)`` of one flat configuration ``x`` of length ``dim``.
    step_size
        Leapfrog step :math:`\epsilon` (default 1/25, the paper's), or ``"auto"``: start at
        ``trajectory_length / n_leapfrog`` and adapt it during thermalisation only (see
        :meth:`run`), so the measured chain is exact.
    trajectory_length
        Molecular-dynamics time :math:`\tau` per trajectory (default 1, the paper's):
        ``round(trajectory_length / step_size)`` leapfrog steps.
    n_leapfrog
        Leapfrog steps per trajectory, instead of ``trajectory_length / step_size``
        (default 25 with ``step_size="auto"``).
    dim, fields
        Only for a callable ``target``: the length of ``x``, and optionally the field
        symbols that string observables refer to (default ``x0, x1, ...``).
    inverse_mass
        Diagonal inverse mass matrix (default ones: :math:`\pi \sim \mathcal N(0, 1)`).
    jitter
        Draw every trajectory's leapfrog step, per chain, uniformly from
        :math:`[(1 - j)\epsilon, (1 + j)\epsilon]` (default 0: a fixed step). A fixed trajectory
        length can resonate with a mode whose period it matches (a Gaussian mode of period
        :math:`\tau` comes back to where it started: that chain does not move); the random length
        breaks the resonance and keeps the chain exact (each trajectory is reversible and
        volume-preserving for its step). 0.2 is a common choice.

    Examples
    --------
    >>> import pikflow as pf
    >>> from pikflow.baselines import HMC
    >>> path = pf.Path.from_expression("(1 - 3*t)/2*phi**2 + t/8*phi**4", ["phi"])
    >>> res = HMC(path).run(1.0, n=2000, chains=4, observables={"absphi": "Abs(phi)"})
    >>> round(res.estimates["absphi"].mean, 1)
    1.7
    """

    def __init__(
        self,
        target,
        *,
        step_size: float | str = 1 / 25,
        trajectory_length: float = 1.0,
        n_leapfrog: int | None = None,
        dim: int | None = None,
        fields=None,
        inverse_mass=None,
        jitter: float = 0.0,
    ):
        self.action, self.dim, self.fields, self.path, self.shape = target_potential(target, dim, fields)
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0.0 <= jitter < 1.0:
            raise PikflowError(f"jitter must be a fraction in [0, 1) of the leapfrog step, got {jitter!r}")
        self.jitter = float(jitter)
        _check_positive("trajectory_length", trajectory_length)
        if n_leapfrog is not None and (
            isinstance(n_leapfrog, bool) or not isinstance(n_leapfrog, int | np.integer) or n_leapfrog < 1
        ):
            raise PikflowError(f"n_leapfrog must be a positive integer, got {n_leapfrog!r}")
        self.adaptive = _is_auto(step_size)
        if self.adaptive:
            n_leapfrog = AUTO_LEAPFROG if n_leapfrog is None else n_leapfrog
            step_size = trajectory_length / n_leapfrog
        _check_positive("step_size", step_size)
        self.step_size = float(step_size)
        self.n_leapfrog = max(1, int(round(trajectory_length / step_size))) if n_leapfrog is None else int(n_leapfrog)
        self.trajectory_length = self.n_leapfrog * self.step_size
        inv = np.ones(self.dim) if inverse_mass is None else np.asarray(inverse_mass, dtype=float).reshape(-1)
        if inv.shape != (self.dim,) or not np.all(np.isfinite(inv) & (inv > 0)):
            raise PikflowError(f"inverse_mass must be {self.dim} positive numbers (a diagonal), got {inverse_mass!r}")
        self.inverse_mass = inv
        self._compiled: dict = {}

    # ------------------------------------------------------------------ compiled pieces
    def _algorithm(self, t, step):
        import blackjax

        action = self.action

        def logdensity(x):
            return -action(x, t)

        # one BlackJAX "integration step" is the whole trajectory of n_leapfrog leapfrog steps
        integrator = _trajectory_integrator(self.n_leapfrog)
        return blackjax.hmc(logdensity, step, jnp.asarray(self.inverse_mass), 1, integrator=integrator)

    def _functions(self, n_chains: int, chunk: int, keep=None):
        """Ahead-of-time compiled ``init(x, t)`` and ``advance(state, key, t, step)`` for these shapes.

        ``t`` and the leapfrog step are traced: one compilation serves every time, every
        step (the adaptation included) and every ``n``, for a given ``(n_chains, chunk, keep)``.
        ``advance`` returns the positions after every trajectory, or ``keep`` of them.
        """
        key = (n_chains, chunk, keep)
        if key in self._compiled:
            return self._compiled[key]

        def init(x, t):
            return jax.vmap(self._algorithm(t, self.step_size).init)(x)

        def advance(state, key, t, step):
            alg = self._algorithm(t, step)

            def body(st, k):
                if self.jitter:  # a step per chain and trajectory, uniform in [(1 - j) step, (1 + j) step]
                    k, kj = jax.random.split(k)
                    u = jax.random.uniform(kj, (n_chains,), minval=-1.0, maxval=1.0)
                    one = lambda kk, s, e: self._algorithm(t, e).step(kk, s)  # noqa: E731
                    st, info = jax.vmap(one)(jax.random.split(k, n_chains), st, step * (1.0 + self.jitter * u))
                else:
                    st, info = jax.vmap(alg.step)(jax.random.split(k, n_chains), st)
                out = st.position if keep is None else jax.vmap(lambda x: jnp.ravel(keep(x, t)))(st.position)
                return st, (out, info.is_accepted, info.acceptance_rate, info.is_divergent)

            st, (pos, acc, prob, div) = jax.lax.scan(body, state, jax.random.split(key, chunk))
            return st, pos, acc.sum(0), prob.sum(0), div.sum(0)

        t0 = _time.perf_counter()
        x_spec = jax.ShapeDtypeStruct((n_chains, self.dim), jnp.float64)
        t_spec = jax.ShapeDtypeStruct((), jnp.float64)
        init_c = jax.jit(init).lower(x_spec, t_spec).compile()
        state_spec = jax.eval_shape(init, x_spec, t_spec)
        adv_c = jax.jit(advance).lower(state_spec, jax.random.PRNGKey(0), t_spec, t_spec).compile()
        self._compiled[key] = (init_c, adv_c, _time.perf_counter() - t0)
        return self._compiled[key]

    # ------------------------------------------------------------------ running
    def run(
        self,
        t: float = 1.0,
        *,
        n: int = 10_000,
        chains: int = 1,
        thermalisation: int = 1000,
        seed=0,
        workers: int = 1,
        init=None,
        chunk: int | str | None = None,
        observables: Mapping | None = None,
        progress: bool = False,
        step_size: float | str | None = None,
        desc: str | None = None,
        keep=None,
    ) -> HMCResult:
        r"""Run ``chains`` HMC chains at time ``t``: thermalise, then measure ``n`` trajectories each.

        Parameters
        ----------
        t
            Time of the path: the chains sample :math:`p_t \propto e^{-\hat S_t}`.
        n
            Measured trajectories per chain.
        chains
            Chains run in parallel (:func:`jax.vmap`); 1 is the paper's single chain.
        thermalisation
            Trajectories per chain discarded first (rounded up to whole chunks; with an
            adaptive step, ``max(1, thermalisation // 25)`` blocks of 25).
        seed
            An integer seed or a JAX PRNG key; the same seed, ``chains``, ``workers`` and
            ``chunk`` give the same chains.
        workers
            Host threads the chains are split over (``chains`` must be a multiple);
            use the number of CPU cores to saturate them.
        init
            Starting configurations, shape ``(chains, dim)``, ``(dim,)``, or the field
            shape with or without a leading ``chains`` (default: standard normal draws).
        chunk
            Trajectories per compiled call (default: all of ``n`` up to a memory bound).
            Fix it to reuse one compilation for runs of different ``n``; ``"block"``: one
            adaptation block (25), fewer only where memory requires, so that the
            thermalisation and the measurement share one compilation for every ``n``.
        observables
            ``{name: observable}`` (SymPy, string or callable): their Gamma-method
            estimates are stored in :attr:`HMCResult.estimates`.
        progress, desc
            Show a progress bar, labelled ``desc``; the chains do not depend on it.
        step_size
            This run's leapfrog step instead of the sampler's, or ``"auto"``: start at
            the sampler's step and, during thermalisation only, rescale it after every
            block of 25 trajectories by :math:`e^{2(a - 0.8)}` (:math:`a`: the block's
            acceptance over all chains) towards an acceptance of 0.8. The measured
            trajectories then use the final step, fixed, so the chain is exact. The step
            is a traced argument: no recompilation.
        keep
            A JAX function ``keep(x, t)`` of one flat configuration ``(dim,)`` and the time, returning
            a few numbers (e.g. the magnetisation, or :math:`d\hat S_t/dt`): only these are kept per
            trajectory, evaluated inside the compiled trajectories, instead of every configuration
            (``dim`` numbers each). The chains are the same. Storing every configuration made a
            32x32 reference run of 160 000 trajectories (1.3 GB) 2.8 times slower than keeping its
            magnetisation. ``HMCResult.positions`` then holds ``keep``'s numbers, shape
            ``(chains, n, k)``, and ``observables`` cannot be given.

        Returns
        -------
        HMCResult
            With ``step_size`` the step of the measured trajectories.

        Raises
        ------
        PikflowError
            For bad sizes; :class:`~pikflow.SamplingError` when the chains leave the
            finite numbers or accept fewer than :data:`MIN_ACCEPTANCE` of the measured
            trajectories (frozen chains; reduce ``step_size``).
        """
        from ..progress import progress_bar

        sizes = (("n", n, 5), ("chains", chains, 1), ("workers", workers, 1), ("thermalisation", thermalisation, 0))
        for name, val, lo in sizes:
            if isinstance(val, bool) or not isinstance(val, int | np.integer) or val < lo:
                raise PikflowError(f"{name} must be an integer >= {lo}, got {val!r}")
        if not math.isfinite(float(t)):
            raise PikflowError(f"t must be a finite number, got {t!r}")
        if keep is not None and (not callable(keep) or observables):
            raise PikflowError(
                "keep must be a JAX function keep(x, t) of one flat configuration and the time, and observables "
                "cannot be given with it "
                "(they are evaluated on configurations, which a run with keep does not store)"
            )
        adaptive, step = self._run_step(step_size)
        workers = min(int(workers), int(chains))
        if chains % workers:
            raise PikflowError(f"chains ({chains}) must be a multiple of workers ({workers})")
        per = chains // workers
        chunk = self._chunk(chunk, n, per)
        init_c, adv_c, compile_seconds = self._functions(per, chunk, keep)
        width = self.dim if keep is None else _kept_size(keep, self.dim)
        block = min(ADAPT_BLOCK, chunk) if adaptive else chunk
        n_therm_calls = (max(1, thermalisation // block) if adaptive else -(-thermalisation // block)) * (
            thermalisation > 0
        )
        if adaptive and block != chunk:
            _, therm_c, secs = self._functions(per, block, keep)
            compile_seconds += secs
        else:
            therm_c = adv_c

        key = _as_key(seed)
        x0 = self._start(init, chains, key)
        tt = jnp.asarray(float(t), dtype=jnp.float64)
        states = [init_c(jnp.asarray(x0[w * per : (w + 1) * per]), tt) for w in range(workers)]
        n_calls = -(-n // chunk)
        _check_positions_memory(n_calls * chunk, chains, width)
        # chains first, as returned: a (trajectory, chain) layout made every caller's reshape copy the whole array
        pos = np.empty((chains, n_calls * chunk, width))
        acc, prob, div = np.zeros(chains), np.zeros(chains), np.zeros(chains)
        total = (n_therm_calls * block + n_calls * chunk) * chains
        label = f"HMC t={float(t):g}" if desc is None else desc
        bar = progress_bar(total=total, desc=label, disable=not progress)
        pool = ThreadPoolExecutor(workers) if workers > 1 else None

        def in_parallel(fn):
            return [fn(0)] if pool is None else list(pool.map(fn, range(workers)))

        def thermalise(i, h):
            def one(w):
                states[w], _, a, _, _ = therm_c(states[w], jax.random.fold_in(jax.random.fold_in(key, w), i), tt, h)
                bar.update(block * per)
                return float(np.sum(np.asarray(a)))

            return sum(in_parallel(one)) / (block * chains)

        def measure(w):
            st = states[w]
            cols = slice(w * per, (w + 1) * per)
            for i in range(n_calls):
                k = jax.random.fold_in(jax.random.fold_in(key, w), n_therm_calls + i)
                st, p, a, pr, dv = adv_c(st, k, tt, step)
                pos[cols, i * chunk : (i + 1) * chunk] = np.moveaxis(np.asarray(p), 0, 1)
                acc[cols] += np.asarray(a)
                prob[cols] += np.asarray(pr)
                div[cols] += np.asarray(dv)
                bar.update(chunk * per)
            states[w] = st

        try:
            t0 = _time.perf_counter()
            for i in range(n_therm_calls):
                a = thermalise(i, step)
                if adaptive:
                    step = float(step * np.exp(ADAPT_RATE * (a - ADAPT_TARGET)))
            jax.block_until_ready(states)
            therm_seconds = _time.perf_counter() - t0
            t0 = _time.perf_counter()
            in_parallel(measure)
            sample_seconds = _time.perf_counter() - t0
        finally:
            bar.close()
            if pool is not None:
                pool.shutdown()
        steps = n_calls * chunk * chains
        self._check(pos[:, :n], acc, steps, t, step, adaptive)
        if keep is not None:  # the kept numbers may hide a non-finite configuration: check the last ones too
            self._check(np.concatenate([np.asarray(s.position) for s in states]), acc, steps, t, step, adaptive)
        result = HMCResult(
            positions=pos[:, :n],
            t=float(t),
            step_size=step,
            n_leapfrog=self.n_leapfrog,
            acceptance=float(acc.sum() / steps),
            acceptance_probability=float(prob.sum() / steps),
            n_divergent=int(div.sum()),
            thermalisation=n_therm_calls * block,
            sample_seconds=sample_seconds,
            thermalisation_seconds=therm_seconds,
            compile_seconds=compile_seconds,
            workers=workers,
            seed=int(seed) if isinstance(seed, int | np.integer) else None,
            fields=self.fields,
            kept=keep is not None,
        )
        for name, obs in dict(observables or {}).items():
            result.estimates[str(name)] = result.gamma(obs)
        return result

    def _run_step(self, step_size) -> tuple[bool, float]:
        """``(adaptive, first step)`` of a run: the sampler's, or ``run(step_size=...)``'s."""
        if step_size is None:
            return self.adaptive, self.step_size
        if _is_auto(step_size):
            return True, self.step_size
        _check_positive("step_size", step_size)
        return False, float(step_size)

    def _chunk(self, chunk, n: int, per: int) -> int:
        cap = max(1, _CHUNK_FLOATS // (per * self.dim))
        if isinstance(chunk, str) and chunk == "block":
            return min(ADAPT_BLOCK, cap)
        if chunk is None:
            n_calls = -(-n // cap)
            return -(-n // n_calls)
        if isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1:
            raise PikflowError(f"chunk must be a positive integer or 'block', got {chunk!r}")
        return int(chunk)

    def _start(self, init, chains: int, key) -> np.ndarray:
        """Starting configurations ``(chains, dim)``."""
        if init is None:
            return np.asarray(jax.random.normal(jax.random.fold_in(key, 1 << 20), (chains, self.dim)))
        x0 = np.asarray(init, dtype=float)
        if x0.shape == self.shape or x0.shape == (chains, *self.shape):
            x0 = x0.reshape(*x0.shape[: x0.ndim - len(self.shape)], self.dim)
        try:
            x0 = np.broadcast_to(x0, (chains, self.dim)).copy()
        except ValueError:
            raise PikflowError(
                f"init must have shape ({chains}, {self.dim}), ({self.dim},) or the field shape "
                f"{self.shape} with or without a leading {chains}, got {x0.shape}"
            ) from None
        if not np.all(np.isfinite(x0)):
            raise PikflowError("init must be finite")
        return x0

    def _check(self, pos, acc, steps: int, t, step: float, adaptive: bool) -> None:
        hint = "use step_size='auto' or a smaller step" if not adaptive else "thermalise longer"
        if not np.all(np.isfinite(pos)):
            raise SamplingError(
                f"HMC at t = {float(t):g} produced non-finite configurations: the leapfrog is unstable; "
                f"reduce step_size (now {step:.3g}): {hint}"
            )
        if not acc.sum() >= MIN_ACCEPTANCE * steps:
            raise SamplingError(
                f"HMC at t = {float(t):g} accepted {int(acc.sum())} of {steps} trajectories (acceptance "
                f"{float(acc.sum() / steps):.4f} < {MIN_ACCEPTANCE}): the chains hardly move, so their estimates "
                f"and error bars are not to be trusted; reduce step_size (now {step:.3g}): {hint}"
            )

    def __repr__(self) -> str:
        step = "auto" if self.adaptive else f"{self.step_size:g}"
        jitter = f", jitter={self.jitter:g}" if self.jitter else ""
        return f"HMC(dim={self.dim}, step_size={step}, n_leapfrog={self.n_leapfrog}{jitter})"


def hmc(
    target,
    t: float = 1.0,
    *,
    n: int = 10_000,
    chains: int = 1,
    thermalisation: int = 1000,
    step_size: float | str = 1 / 25,
    trajectory_length: float = 1.0,
    n_leapfrog: int | None = None,
    seed=0,
    workers: int = 1,
    observables: Mapping | None = None,
    init=None,
    dim: int | None = None,
    fields=None,
    progress: bool = False,
) -> HMCResult:
    r"""Sample :math:`e^{-\hat S_t}` with HMC (leapfrog, paper sec. IV A 1): ``HMC(target, ...).run(t, ...)``.

    A one-call shortcut of :class:`HMC` and :meth:`HMC.run`; see there for every
    parameter. The defaults are the paper's setting: trajectory length 1, leapfrog
    step 1/25 (25 steps), one chain, 1000 thermalisation trajectories;
    ``step_size="auto"`` adapts the step during thermalisation (see :meth:`HMC.run`).

    Examples
    --------
    >>> import pikflow as pf
    >>> path = pf.Path.from_expression("(1 - 3*t)/2*phi**2 + t/8*phi**4", ["phi"])
    >>> res = pf.baselines.hmc(path, 1.0, n=2000, chains=4, observables={"phi2": "phi**2"})
    >>> res.acceptance > 0.99
    True
    """
    sampler = HMC(
        target, step_size=step_size, trajectory_length=trajectory_length, n_leapfrog=n_leapfrog, dim=dim, fields=fields
    )
    return sampler.run(
        t,
        n=n,
        chains=chains,
        thermalisation=thermalisation,
        seed=seed,
        workers=workers,
        init=init,
        observables=observables,
        progress=progress,
    )
