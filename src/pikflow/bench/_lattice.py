r"""``pikflow bench lattice``: a 2-D (or d-D) :math:`\phi^4` lattice flow against HMC, one run.

For the lattice action of eq. 31 (``PHI4_DENSITY``) at ``(m2, lam)`` on ``L^d`` sites:

* **PIK**: :func:`pikflow.lattice.fit_lattice` with its defaults (a matched Gaussian base
  from a short HMC run, Fourier two-point + tamed smoothed powers), then ``--n`` samples,
  ESS/N, the IMH chain (acceptance, :math:`\tau_{\mathrm{int}}` of :math:`|m|` by the
  Gamma method) and the observables ``abs_m``, ``chi``, ``binder`` with errors.
* **HMC**: :func:`pikflow.lattice.hmc` (vectorised chains, leapfrog) at the target, with
  the same observables and :math:`\tau_{\mathrm{int}}`; its trajectory length (``--leapfrog``) by default
  the best of 10, 20, 30, 40 leapfrog steps in a short pilot, and of 60, 90, 140 while the longest is the best
  (:func:`._hmc_length.best_leapfrog`).

Independent samples per second: :math:`N/(2\tau_{\mathrm{int}})` of :math:`|m|` over the
sampling seconds (PIK: flow sampling + IMH; HMC: trajectories after thermalisation).
``ratio`` is PIK over HMC; ``ratio_with_setup`` adds PIK's base HMC and solve seconds, of which
``setup_compile_seconds`` were spent tracing and compiling JAX programs (``jax.monitoring``), and what the
first, compiling calls of its draw and IMH estimates cost beyond the timed ones (``first_call_extra_seconds``);
``ratio_with_both_setups`` puts that against HMC's first, compiling call of the same run (``first_call_seconds``,
the length's pilot included): both samplers from a cold start.
Peak resident memory of the process is reported (``ru_maxrss``). Agreement of the
observables is given in units of the combined error. Compilation is excluded on both
sides (each is timed on a second, identically shaped call). With ``--cost-repeats`` (default
3) the cost of one flow sample against one HMC trajectory is measured alternately in the same
process and one velocity evaluation is profiled (:mod:`._latcost`).
"""

from __future__ import annotations

import math
import resource
import time

import numpy as np

from .._errors import ConfigError
from . import register
from ._common import (
    abs_m,
    basis_preset_argument,
    chain_series,
    chains_argument,
    compile_seconds,
    extra_couplings,
    hmc_chains,
    iterations_argument,
    log_q_error,
    schedule_argument,
    write_json,
)
from ._hmc_length import tuned_leapfrog
from ._lattice_print import print_lattice

#: Thermalisation trajectories per chain of the HMC reference (``pikflow.lattice.hmc``'s default), paid in its
#: timed run and charged to each kept trajectory in :func:`alternated_ratio`.
HMC_THERM = 200


def _arguments(p):
    p.add_argument("--L", type=int, default=8, help="lattice extent per axis (default 8)")
    p.add_argument("--dim", type=int, default=2, help="lattice dimension (default 2)")
    p.add_argument("--m2", type=float, default=-1.0, help="mass parameter m2 of eq. 31 (default -1)")
    p.add_argument("--lam", type=float, default=1.0, help="quartic coupling lam of eq. 31 (default 1)")
    p.add_argument("--n", type=int, default=10_000, help="flow samples (default 10000)")
    p.add_argument("--steps", type=int, default=10, help="RK4 steps (default 10, as fit_lattice)")
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="keep XLA compilations in DIR (pikflow.compilation_cache; default none: a fresh process compiles all)",
    )
    p.add_argument(
        "--schedule",
        default="auto",
        type=schedule_argument,
        help="the clock tau = t**p of fit_lattice: a power p, 'uniform' or 'auto' (default, p = 2)",
    )
    p.add_argument(
        "--polish",
        type=iterations_argument,
        default=0,
        metavar="ITERATIONS",
        help="polish the fitted flow's coefficients on the KL of its RK4 map (pikflow.refine.polish) for this "
        "many Adam steps, timed in the set-up (default 0: off)",
    )
    p.add_argument(
        "--collocation",
        type=int,
        default=None,
        help="collocation configurations (default that of fit_lattice: 7 per basis function, 500 to 1000)",
    )
    p.add_argument("--hmc-samples", type=int, default=4000, help="HMC samples that fit the matched base (default 4000)")
    p.add_argument(
        "--hmc-step",
        default="auto",
        help="leapfrog step of both HMC runs, or 'auto' (default: adapted during thermalisation)",
    )
    p.add_argument(
        "--leapfrog",
        type=chains_argument,
        default="auto",
        help="leapfrog steps a trajectory of the reference HMC and of the cost table's, or auto (default): the "
        "length of 10, 20, 30, 40 (then 60, 90, 140 while the longest is best) with the most independent samples "
        "per second in a short pilot, whose time counts "
        "in HMC's set-up (at 16x16 (-2, 2) 30 steps give about 2.6x the rate of 10; the fit's own HMC keeps 10)",
    )
    p.add_argument(
        "--hmc-start",
        choices=("hot", "ordered"),
        default="hot",
        help="start of both HMC runs: 'hot' (default, small random fields) or 'ordered' (the uniform minimum of "
        "the action, +-c; for the broken phase, where a hot start leaves domain walls)",
    )
    p.add_argument("--select", type=int, default=500, help="samples per candidate flow when choosing one (default 500)")
    p.add_argument(
        "--tames",
        type=float,
        nargs="+",
        default=None,
        help="taming widths of the default basis to try (default that of fit_lattice, 5; the earlier set-up: 10 5)",
    )
    p.add_argument(
        "--fourier-bins",
        type=int,
        default=None,
        help="merge the Fourier orbits into this many groups in khat^2 (0: one per orbit; default that of "
        "fit_lattice, 'auto': 64 groups above 300 orbits, i.e. from 64x64 in 2-D)",
    )
    p.add_argument(
        "--smooth-base",
        type=int,
        default=None,
        help="fit the matched base's 1/G(k) by a polynomial of this degree in khat_mu^2 (e.g. 3) instead of per "
        "orbit (0: per orbit; default that of fit_lattice, 'auto': 3 where the orbits are merged)",
    )
    p.add_argument(
        "--base",
        default="matched",
        choices=["matched", "gaussian", "mixture", "free"],
        help="the base of fit_lattice (default matched: Gaussian and zero-mode mixture, the better kept)",
    )
    p.add_argument(
        "--basis",
        default="default",
        type=basis_preset_argument,
        help="the basis preset of fit_lattice (pikflow.lattice.BASIS_PRESETS; default 'default', 'lean': 4 smoothing "
        "filters instead of 9)",
    )
    p.add_argument(
        "--density",
        default=None,
        help="the site density (default: the phi^4 density of eq. 31, PHI4_DENSITY); it must use m2 and lam",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a further coupling of --density at its value, e.g. --set kx=1 --set ky=0.5 (repeatable)",
    )
    p.add_argument("--reference", type=int, default=20_000, help="trajectories of the reference HMC (default 20000)")
    p.add_argument(
        "--chains", type=chains_argument, default="auto",
        help="chains of the reference HMC, or auto (default): 256 up to 400 sites, 64 up to 1600, else 16, the "
        "batch that costs least per chain and trajectory on a CPU, with >= 600 trajectories per chain",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument(
        "--float32",
        action="store_true",
        help="also time flow samples with the evaluation in float32 (LatticeFlow.sample precision) and their ESS/N",
    )
    p.add_argument(
        "--cost-repeats",
        type=int,
        default=3,
        help="repeats of the cost comparison (flow sample vs HMC trajectory; 0: skip it and the profile; default 3)",
    )


def _tau(series) -> tuple[float, float]:
    from ..diagnostics import gamma_method

    g = gamma_method(np.asarray(series, dtype=float))
    return float(g.tau_int), float(g.error)


def _step(text: str) -> float | str:
    if text == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--hmc-step must be a number or 'auto', got {text!r}") from None


def _auto_or_off(value):
    """``--fourier-bins`` / ``--smooth-base``: not given -> ``"auto"``, 0 -> ``None`` (off), else the number."""
    return "auto" if value is None else (None if value == 0 else value)


def _pik(args, path, step, progress, volume):
    """PIK: fit (timed: the set-up), sample after a compiling call (timed), IMH chain τ_int, log q check."""
    import jax

    import pikflow.lattice as pl

    t0, c0 = time.perf_counter(), compile_seconds()
    flow = pl.fit_lattice(
        path,
        base=args.base,
        basis=args.basis,
        steps=args.steps,
        schedule=args.schedule,
        n_collocation=args.collocation,
        hmc_samples=args.hmc_samples,
        seed=args.seed,
        select=args.select,
        tames=args.tames,
        fourier_bins=_auto_or_off(args.fourier_bins),
        smooth_base=_auto_or_off(args.smooth_base),
        hmc_step=step,
        hmc_options={"start": args.hmc_start},
        progress=progress,
    )
    if args.polish:
        from ..refine import polish

        record = polish(flow, iterations=args.polish, seed=args.seed, progress=progress)
        flow = record.flow
        flow.info["polish_record"] = record.to_dict()
    setup_seconds = time.perf_counter() - t0
    flow.info["setup_compile_seconds"] = compile_seconds() - c0
    imh_key = jax.random.PRNGKey(args.seed + 2)
    samples, obs, acc, pik_seconds = timed_sample(flow, jax.random.PRNGKey(args.seed + 1), args.n, imh_key, progress)
    lw = np.where(np.isfinite(samples.log_w), samples.log_w, -np.inf)
    from ..diagnostics import imh_chain

    chain = imh_chain(imh_key, lw).chain(np.abs(np.nan_to_num(samples.magnetisation())))
    pik_tau, _ = _tau(chain / volume)
    # log q from the continuous divergence vs the exact log|det| of the applied map (V JVPs per sample)
    logq_err = log_q_error(flow, args.seed + 5, 16 if volume <= 256 else 0)
    return flow, samples, obs, acc, pik_tau, logq_err, setup_seconds, pik_seconds


def timed_sample(flow, key, n: int, imh_key, progress: bool = False):
    """``n`` samples of ``flow`` and their IMH estimates, timed after compiling calls of both.

    HMC's timing excludes its compilation and its estimates, so PIK's must not include the compilation of its
    estimates (about a second at 16x16 for 10^4 samples, as long as the draw, when it was timed). Returns
    ``(samples, observables, imh_acceptance, seconds)``; ``flow.info["draw_seconds"]``: the draw alone (the
    samples and weights; reweighting is free); ``flow.info["first_call_extra_seconds"]``: what the compiling
    calls of the draw and of the estimates took beyond their share of the timed ones (their compilation: a
    cold start pays it after the set-up).
    """
    import pikflow.lattice as pl

    volume = flow.path.lattice.volume
    m = min(n, 1000)
    t0 = time.perf_counter()
    flow.sample(key, m)  # compile
    first_draw = time.perf_counter() - t0
    t0 = time.perf_counter()
    samples = flow.sample(key, n, progress=progress)
    flow.info["draw_seconds"] = time.perf_counter() - t0
    _import_analysis()  # a one-off import that HMC's side (whose estimates are not timed) would pay as well
    t0 = time.perf_counter()
    pl.flow_observables(samples, volume, imh_key)  # compile
    first_estimates = time.perf_counter() - t0
    t0 = time.perf_counter()
    obs, acc = pl.flow_observables(samples, volume, imh_key)
    estimates = time.perf_counter() - t0
    # what a cold start pays beyond the compiled runs: the compiling calls less their share of the timed ones
    flow.info["first_call_extra_seconds"] = max(first_draw - flow.info["draw_seconds"] * m / n, 0.0) + max(
        first_estimates - estimates, 0.0
    )
    return samples, obs, acc, flow.info["draw_seconds"] + estimates


def _import_analysis() -> None:
    """Import pyerrors (the Gamma method of one chain), which takes 0.7-0.9 s (scipy.stats, matplotlib).

    The IMH chain's estimates are the first to call it. Its import is analysis, not sampling: HMC's timed calls
    never include their estimates, so PIK's compiling first calls must not include it either. A Gamma method on
    a short series imports it.
    """
    from ..diagnostics import gamma_method

    gamma_method(np.sin(np.arange(16.0)))


def _equal_errors(samples, imh_obs, hmc_obs, draw_seconds, imh_seconds, hmc_seconds) -> dict:
    r"""HMC's cost over PIK's at equal errors, per observable: :math:`(\sigma^2 t)_{\rm HMC} / (\sigma^2 t)_{\rm PIK}`.

    Three PIK estimators of the same samples: the IMH chain (Gamma-method errors, as in ``ratio``), the
    reweighted mean :math:`\sum wO/\sum w` of the independent samples (delta-method error,
    ``samples.observable``), which needs no chain and keeps every sample's weight, and the reweighted mean
    with control variates of the exact base draws (``samples.observable(..., controls=True)``; its seconds
    include the regression). Above 1: PIK is cheaper. ``reweighted`` and ``controlled`` hold those estimates
    and their pulls against HMC.
    """
    rw = {k: samples.observable(k) for k in hmc_obs}
    out = {"reweighted": _with_pulls(rw, hmc_obs)}
    estimates = {"imh": (imh_obs, imh_seconds), "reweighted": (rw, draw_seconds)}
    if getattr(samples, "has_controls", False):
        t0 = time.perf_counter()
        cv = {k: samples.observable(k, controls=True) for k in hmc_obs}
        estimates["controlled"] = (cv, draw_seconds + time.perf_counter() - t0)
        out["controlled"] = _with_pulls(cv, hmc_obs)

    def ratio(est, seconds):
        return {
            k: (hmc_obs[k].error ** 2 * hmc_seconds) / (est[k].error ** 2 * seconds) if est[k].error > 0 else None
            for k in hmc_obs
        }

    return {**out, "equal_errors": {name: ratio(*e) for name, e in estimates.items()}}


def _with_pulls(est: dict, hmc_obs: dict) -> dict:
    pulls = {k: (est[k].value - hmc_obs[k].value) / math.hypot(est[k].error, hmc_obs[k].error) for k in hmc_obs}
    return {"observables": {k: v.to_dict() for k, v in est.items()}, "pulls": pulls}


def alternated_ratio(cost: dict, pik_tau: float, hmc_tau: float, thermalisation: float) -> float:
    r"""PIK / HMC independent samples per second from the cost table's alternated medians (less noisy than the
    two single timed runs): :math:`\tau_{\rm HMC}\,t_{\rm traj}\,f / (\tau_{\rm IMH}\,t_{\rm sample})`, with
    :math:`f` the reference run's trajectories per kept one (its thermalisation, as HMC's timed run pays it)."""
    return hmc_tau * thermalisation / (pik_tau * cost["sample_over_trajectory"]["median"])


def _hmc(args, target, step, volume, per):
    """The HMC reference at the target, timed after a compiling call of the same shape."""
    import jax

    import pikflow.lattice as pl

    # the same call twice: the first compiles (hmc caches its compiled block per path and shape)
    calls = []
    for _ in range(2):
        t0 = time.perf_counter()
        M, hmc_acc = pl.hmc(
            target,
            jax.random.PRNGKey(args.seed + 4),
            per * args.chains,
            n_chains=args.chains,
            step=step,
            n_leapfrog=args.leapfrog,
            n_therm=HMC_THERM,
            start=args.hmc_start,
            keep="magnetisation",
        )
        calls.append(time.perf_counter() - t0)
    first_seconds, hmc_seconds = calls
    # the chains as the Gamma method's replica, about their overall mean (chain_observables' chains=)
    hmc_obs = pl.chain_observables(chain_series(M), volume, chains=M.shape[0])
    hmc_tau, _ = _tau(abs_m(M, volume))
    n_hmc = M.shape[0] * M.shape[1]
    return hmc_acc, hmc_seconds, hmc_obs, hmc_tau, n_hmc, first_seconds


@register(
    "lattice", "a d-D phi^4 lattice flow (matched base) against HMC: ESS, IMH, tau_int, independent/s", config=False
)(_arguments)
def run(args) -> dict:
    import pikflow.lattice as pl
    from pikflow.diagnostics import weight_tail

    if args.cache:  # a second run with the same directory times the set-up a returning user sees
        from .._cache import compilation_cache

        compilation_cache(args.cache)

    shape = [args.L] * args.dim
    action = pl.LatticeAction(args.density or pl.PHI4_DENSITY, shape)
    volume = int(np.prod(shape))
    extra = extra_couplings(args.set)
    if args.base != "free":
        path = pl.LatticePath(action, {"m2": args.m2, "lam": args.lam, **extra})
    else:
        path = pl.LatticePath(action, {"m2": (1.0, args.m2), "lam": (0.0, args.lam), **extra})
    progress = not args.quiet
    step = _step(args.hmc_step)

    flow, samples, obs, acc, pik_tau, logq_err, setup_seconds, pik_seconds = _pik(args, path, step, progress, volume)
    cold = float(flow.info["first_call_extra_seconds"])  # the draw's and the estimates' compiling first calls
    target = pl.LatticePath(action, {"m2": args.m2, "lam": args.lam, **extra})
    args.chains_setting = args.chains
    args.chains, per = hmc_chains(args.chains, args.reference, volume)
    args.leapfrog_setting = args.leapfrog  # auto: HMC's trajectory length tuned by a pilot, counted in its set-up
    args.leapfrog, pilot, pilot_seconds = tuned_leapfrog(
        args.leapfrog, target, args.chains, seed=args.seed + 6, step=step, start=args.hmc_start
    )
    hmc_acc, hmc_seconds, hmc_obs, hmc_tau, n_hmc, hmc_first_seconds = _hmc(args, target, step, volume, per)
    hmc_first_seconds += pilot_seconds

    pik_independent, hmc_independent = args.n / (2 * pik_tau), n_hmc / (2 * hmc_tau)
    pik_rate, hmc_rate = pik_independent / pik_seconds, hmc_independent / hmc_seconds
    pik_cold = setup_seconds + cold  # PIK's set-up and first calls, before its timed sampling
    hmc_cold_rate = hmc_independent / hmc_first_seconds  # HMC's first, compiling call
    res = {
        "lattice": shape,
        "density": str(action.source),
        "couplings": {"m2": args.m2, "lam": args.lam, **extra},
        "symmetry": flow.info.get("symmetry"),
        "basis_preset": args.basis,
        "hmc_start": args.hmc_start,
        "fourier_bins": flow.info.get("fourier_bins"),
        "smooth_base": flow.info.get("smooth_base"),
        "basis_size": int(flow.basis.n),
        "basis": repr(flow.basis),
        "pik": {
            "base": flow.info.get("base"),
            "m0": flow.info.get("m0"),
            "target_ess": flow.info.get("target_ess"),
            "candidates": flow.info.get("attempts"),
            "base_binder": flow.info.get("binder"),
            "n": args.n,
            "steps": args.steps,
            "time_power": flow.info.get("time_power"),
            "collocation": flow.info.get("n_collocation", args.collocation),
            "ess": float(samples.ess()),
            **weight_tail(samples.log_w),
            "imh_acceptance": float(acc),
            "tau_int_abs_m": pik_tau,
            "n_nonfinite": samples.n_nonfinite,
            "n_runaway": samples.n_runaway,
            "collocation_dropped": int(flow.reports[-1].dropped),
            "residual_max": float(flow.residuals().max()),
            "tame": flow.info.get("tame"),
            "polish": flow.info.get("polish_record"),
            **logq_err,
            "base_hmc_seconds": float(flow.info.get("hmc_seconds", 0.0)),
            "solve_seconds": float(flow.info["solve_seconds"]),
            "setup_seconds": setup_seconds,
            "setup_compile_seconds": flow.info["setup_compile_seconds"],
            "first_call_extra_seconds": cold,
            "sample_seconds": pik_seconds,  # the draw and the IMH chain's estimates, both compiled before
            "draw_seconds": float(flow.info["draw_seconds"]),
            "independent_per_second": pik_rate,
            "observables": {k: v.to_dict() for k, v in obs.items()},
        },
        "hmc": {
            "n": int(n_hmc),
            "chains": args.chains,
            "chains_setting": args.chains_setting,
            "leapfrog": args.leapfrog,
            "leapfrog_setting": args.leapfrog_setting,
            "leapfrog_pilot": pilot,
            "leapfrog_pilot_seconds": pilot_seconds,  # also in first_call_seconds
            "acceptance": hmc_acc,
            "tau_int_abs_m": hmc_tau,
            "sample_seconds": hmc_seconds,
            "first_call_seconds": hmc_first_seconds,
            "independent_per_second": hmc_rate,
            "observables": {k: v.to_dict() for k, v in hmc_obs.items()},
        },
        "ratio": pik_rate / hmc_rate,
        "ratio_with_setup": pik_independent / (pik_seconds + pik_cold) / hmc_rate,
        # both sides from a cold start: PIK's set-up, first calls and sampling against HMC's compiling call
        "ratio_with_both_setups": pik_independent / (pik_seconds + pik_cold) / hmc_cold_rate,
        "pulls": {k: (obs[k].value - hmc_obs[k].value) / math.hypot(obs[k].error, hmc_obs[k].error) for k in obs},
        **_equal_errors(samples, obs, hmc_obs, flow.info["draw_seconds"], pik_seconds, hmc_seconds),
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    write_json(args, res)  # the results so far, kept if the cost measurements below are stopped
    if args.cost_repeats > 0:
        from ._latcost import cost_table, evaluation_profile, push_batch_scan

        n_cost = min(args.n, 2000)
        res["cost"] = cost_table(
            flow,
            target,
            n_samples=n_cost,
            n_hmc=max(min(per * args.chains, 4000), 20 * args.chains),
            chains=args.chains,
            repeats=args.cost_repeats,
            seed=args.seed,
            float32=args.float32,
            n_leapfrog=args.leapfrog,
        )
        res["ratio_alternated"] = alternated_ratio(res["cost"], pik_tau, hmc_tau, (per + HMC_THERM) / per)
        if args.float32:  # the same ratios had the samples been drawn in float32 (the flow's timed speed-up)
            up = res["cost"]["float32"]["speedup"]["median"]
            res["ratio_float32"] = res["ratio"] * up
            res["ratio_float32_with_setup"] = pik_independent / (pik_seconds / up + pik_cold) / hmc_rate
            res["ratio_float32_with_both_setups"] = pik_independent / (pik_seconds / up + pik_cold) / hmc_cold_rate
            res["ratio_float32_alternated"] = res["ratio_alternated"] * up
        res["evaluation_profile"] = evaluation_profile(flow)  # at the push's batch
        # about 2000 samples at 16x16, fewer on larger lattices (at least 125): the scan pushes them 20 times
        res["push_batch_ms_per_sample"] = push_batch_scan(flow, n=max(125, min(n_cost, 2000 * 256 // volume)))
    print_lattice(res)
    write_json(args, res)
    return res
