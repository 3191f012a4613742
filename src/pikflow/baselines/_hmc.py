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

import inspect
import math
import time as _time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._errors import PikflowError, SamplingError
from ._hmc_result import HMCResult

__all__ = ["HMC", "HMCResult", "hmc"]

#: Acceptance below which a run is refused (frozen chains: estimates and errors meaningless).
MIN_ACCEPTANCE = 0.01
#: Positions written per compiled call are bounded by this many floats (memory).
_CHUNK_FLOATS = 1 << 21


def _target_potential(target, dim, fields):
    """``(action(x, t), dim, fields, path)`` for a Path, Flow, WegnerEquation, Action or callable."""
    from ..action import Action, Path
    from ..lowering import lower

    path = None
    if hasattr(target, "path") and hasattr(target, "kernels"):  # a Flow
        target = target.path
    if hasattr(target, "action_fn") and hasattr(target, "path"):  # a WegnerEquation
        path, fn = target.path, target.action_fn
        return fn, path.n_fields, tuple(path.fields), path
    if isinstance(target, Path):
        path = target
        return lower(path.expr, path.fields, what="action"), path.n_fields, tuple(path.fields), path
    if isinstance(target, Action):
        if target.couplings:
            raise PikflowError(
                f"the action has couplings {[str(c) for c in target.couplings]} without values: "
                "give a Path (pikflow.Path(action, {...})) and the time t, or substitute the couplings"
            )
        fn = lower(target.expr, target.fields, time=False, what="action")
        return (lambda x, t: fn(x)), target.n_fields, tuple(target.fields), None
    if isinstance(target, sp.Basic | str):
        raise PikflowError("give the action as a pikflow.Path or pikflow.Action (the fields must be named)")
    if callable(target):
        if dim is None or isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim <= 0:
            raise PikflowError(
                "a callable action S(x) or S(x, t) acts on a flat array: give its length as dim=... (a positive int)"
            )
        try:
            n_args = len(inspect.signature(target).parameters)
        except (TypeError, ValueError):
            n_args = 2
        fn = target if n_args >= 2 else (lambda x, t: target(x))
        if fields is None:
            fields = tuple(sp.Symbol(f"x{i}", real=True) for i in range(dim))
        return fn, int(dim), tuple(fields), None
    raise PikflowError(
        f"HMC needs a pikflow Path, Flow, WegnerEquation, Action, or a callable S(x[, t]); got {type(target).__name__}"
    )


class HMC:
    r"""A compiled HMC sampler (BlackJAX leapfrog) for :math:`\hat S_t`, reusable at any ``t``.

    Parameters
    ----------
    target
        The action: a :class:`~pikflow.Path` (sampled at the ``t`` given to
        :meth:`run`), a :class:`~pikflow.Flow` or :class:`~pikflow.WegnerEquation`
        (their path), an :class:`~pikflow.Action` without couplings, or a JAX-traceable
        callable ``S(x)`` or ``S(x, t)`` of one flat configuration ``x`` of length
        ``dim`` (any field, a lattice included, flattened).
    step_size
        Leapfrog step :math:`\epsilon` (default 1/25, the paper's).
    trajectory_length
        Molecular-dynamics time :math:`\tau` per trajectory (default 1, the paper's):
        ``round(trajectory_length / step_size)`` leapfrog steps.
    dim, fields
        Only for a callable ``target``: the length of ``x``, and optionally the field
        symbols that string observables refer to (default ``x0, x1, ...``).
    inverse_mass
        Diagonal inverse mass matrix (default ones: :math:`\pi \sim \mathcal N(0, 1)`).

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
        step_size: float = 1 / 25,
        trajectory_length: float = 1.0,
        dim: int | None = None,
        fields=None,
        inverse_mass=None,
    ):
        self.action, self.dim, self.fields, self.path = _target_potential(target, dim, fields)
        for name, val in (("step_size", step_size), ("trajectory_length", trajectory_length)):
            if isinstance(val, bool) or not isinstance(val, int | float) or not (math.isfinite(val) and val > 0):
                raise PikflowError(f"{name} must be a positive number, got {val!r}")
        self.step_size = float(step_size)
        self.trajectory_length = float(trajectory_length)
        self.n_leapfrog = max(1, int(round(trajectory_length / step_size)))
        inv = np.ones(self.dim) if inverse_mass is None else np.asarray(inverse_mass, dtype=float).reshape(-1)
        if inv.shape != (self.dim,) or not np.all(np.isfinite(inv) & (inv > 0)):
            raise PikflowError(f"inverse_mass must be {self.dim} positive numbers (a diagonal), got {inverse_mass!r}")
        self.inverse_mass = inv
        self._compiled: dict = {}

    # ------------------------------------------------------------------ compiled pieces
    def _algorithm(self, t):
        import blackjax

        action = self.action

        def logdensity(x):
            return -action(x, t)

        return blackjax.hmc(logdensity, self.step_size, jnp.asarray(self.inverse_mass), self.n_leapfrog)

    def _functions(self, n_chains: int, chunk: int):
        """Ahead-of-time compiled ``init(x, t)`` and ``advance(state, key, t)`` for these shapes."""
        key = (n_chains, chunk)
        if key in self._compiled:
            return self._compiled[key]

        def init(x, t):
            return jax.vmap(self._algorithm(t).init)(x)

        def advance(state, key, t):
            alg = self._algorithm(t)

            def body(st, k):
                st, info = jax.vmap(alg.step)(jax.random.split(k, n_chains), st)
                return st, (st.position, info.is_accepted, info.acceptance_rate, info.is_divergent)

            st, (pos, acc, prob, div) = jax.lax.scan(body, state, jax.random.split(key, chunk))
            return st, pos, acc.sum(0), prob.sum(0), div.sum(0)

        t0 = _time.perf_counter()
        x_spec = jax.ShapeDtypeStruct((n_chains, self.dim), jnp.float64)
        t_spec = jax.ShapeDtypeStruct((), jnp.float64)
        init_c = jax.jit(init).lower(x_spec, t_spec).compile()
        state_spec = jax.eval_shape(init, x_spec, t_spec)
        adv_c = jax.jit(advance).lower(state_spec, jax.random.PRNGKey(0), t_spec).compile()
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
        seed: int = 0,
        workers: int = 1,
        init=None,
        chunk: int | None = None,
        observables: Mapping | None = None,
        progress: bool = False,
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
            Trajectories per chain discarded first (rounded up to whole chunks).
        seed
            Seed; the same seed, ``chains``, ``workers`` and ``chunk`` give the same chains.
        workers
            Host threads the chains are split over (``chains`` must be a multiple);
            use the number of CPU cores to saturate them.
        init
            Starting configurations, shape ``(chains, dim)`` or ``(dim,)``
            (default: independent standard normal draws).
        chunk
            Trajectories per compiled call (default: all of ``n`` up to a memory bound).
            Fix it to reuse one compilation for runs of different ``n``.
        observables
            ``{name: observable}`` (SymPy, string or callable): their Gamma-method
            estimates are stored in :attr:`HMCResult.estimates`.
        progress
            Show a progress bar.

        Returns
        -------
        HMCResult

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
        workers = min(int(workers), int(chains))
        if chains % workers:
            raise PikflowError(f"chains ({chains}) must be a multiple of workers ({workers})")
        per = chains // workers
        if chunk is None:
            cap = max(1, _CHUNK_FLOATS // (per * self.dim))
            n_calls = -(-n // cap)
            chunk = -(-n // n_calls)
        elif isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1:
            raise PikflowError(f"chunk must be a positive integer, got {chunk!r}")
        chunk = int(chunk)
        init_c, adv_c, compile_seconds = self._functions(per, chunk)

        key = jax.random.PRNGKey(seed)
        if init is None:
            x0 = np.asarray(jax.random.normal(jax.random.fold_in(key, 1 << 20), (chains, self.dim)))
        else:
            x0 = np.broadcast_to(np.asarray(init, dtype=float), (chains, self.dim)).copy()
            if not np.all(np.isfinite(x0)):
                raise PikflowError("init must be finite")
        tt = jnp.asarray(float(t), dtype=jnp.float64)
        states = [init_c(jnp.asarray(x0[w * per : (w + 1) * per]), tt) for w in range(workers)]

        n_therm_calls = -(-thermalisation // chunk) if thermalisation else 0
        n_calls = -(-n // chunk)
        pos = np.empty((n_calls * chunk, chains, self.dim))
        acc = np.zeros(chains)
        prob = np.zeros(chains)
        div = np.zeros(chains)
        total = (n_therm_calls + n_calls) * chunk * chains
        bar = progress_bar(total=total, desc=f"HMC t={float(t):g}", disable=not progress)

        def thermalise(w):
            st = states[w]
            for i in range(n_therm_calls):
                st, p, *_ = adv_c(st, jax.random.fold_in(jax.random.fold_in(key, w), i), tt)
                bar.update(chunk * per)
            states[w] = jax.block_until_ready(st)

        def measure(w):
            st = states[w]
            cols = slice(w * per, (w + 1) * per)
            for i in range(n_calls):
                k = jax.random.fold_in(jax.random.fold_in(key, w), n_therm_calls + i)
                st, p, a, pr, dv = adv_c(st, k, tt)
                pos[i * chunk : (i + 1) * chunk, cols] = np.asarray(p)
                acc[cols] += np.asarray(a)
                prob[cols] += np.asarray(pr)
                div[cols] += np.asarray(dv)
                bar.update(chunk * per)
            states[w] = st

        def in_parallel(fn):
            t0 = _time.perf_counter()
            if workers == 1:
                fn(0)
            else:
                with ThreadPoolExecutor(workers) as ex:
                    list(ex.map(fn, range(workers)))
            return _time.perf_counter() - t0

        therm_seconds = in_parallel(thermalise)
        sample_seconds = in_parallel(measure)
        bar.close()
        pos = pos[:n]
        if not np.all(np.isfinite(pos)):
            raise SamplingError(
                f"HMC at t = {float(t):g} produced non-finite configurations: the leapfrog is unstable; "
                f"reduce step_size (now {self.step_size:g})"
            )
        steps = n_calls * chunk * chains
        if not acc.sum() >= MIN_ACCEPTANCE * steps:
            raise SamplingError(
                f"HMC at t = {float(t):g} accepted {int(acc.sum())} of {steps} trajectories (acceptance "
                f"{float(acc.sum() / steps):.4f} < {MIN_ACCEPTANCE}): the chains hardly move, so their estimates "
                f"and error bars are not to be trusted; reduce step_size (now {self.step_size:g})"
            )
        result = HMCResult(
            positions=np.moveaxis(pos, 1, 0),
            t=float(t),
            step_size=self.step_size,
            n_leapfrog=self.n_leapfrog,
            acceptance=float(acc.sum() / steps),
            acceptance_probability=float(prob.sum() / steps),
            n_divergent=int(div.sum()),
            thermalisation=n_therm_calls * chunk,
            sample_seconds=sample_seconds,
            thermalisation_seconds=therm_seconds,
            compile_seconds=compile_seconds,
            workers=workers,
            seed=int(seed),
            fields=self.fields,
        )
        for name, obs in dict(observables or {}).items():
            result.estimates[str(name)] = result.gamma(obs)
        return result

    def __repr__(self) -> str:
        return f"HMC(dim={self.dim}, step_size={self.step_size:g}, n_leapfrog={self.n_leapfrog})"


def hmc(
    target,
    t: float = 1.0,
    *,
    n: int = 10_000,
    chains: int = 1,
    thermalisation: int = 1000,
    step_size: float = 1 / 25,
    trajectory_length: float = 1.0,
    seed: int = 0,
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
    step 1/25 (25 steps), one chain, 1000 thermalisation trajectories.

    Examples
    --------
    >>> import pikflow as pf
    >>> path = pf.Path.from_expression("(1 - 3*t)/2*phi**2 + t/8*phi**4", ["phi"])
    >>> res = pf.baselines.hmc(path, 1.0, n=2000, chains=4, observables={"phi2": "phi**2"})
    >>> res.acceptance > 0.99
    True
    """
    sampler = HMC(target, step_size=step_size, trajectory_length=trajectory_length, dim=dim, fields=fields)
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
