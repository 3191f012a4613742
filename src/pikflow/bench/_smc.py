r"""``pikflow bench smc``: SMC with PIK transport against plain SMC, the flow with IMH, and HMC, on one lattice point.

For the lattice action of eq. 31 at ``(m2, lam)`` on ``L^d`` sites (or any ``--density`` in
``m2`` and ``lam``, e.g. the O(2) model in ``phi1, phi2``, whose observables use the vector
magnetisation), one run measures four samplers on the same target:

* **PIK-SMC**: :func:`pikflow.samplers.smc` on the flow of :func:`pikflow.lattice.fit_lattice`
  (``--steps`` RK4 steps, so ``--steps`` annealing steps), MALA moves, replicas for errors;
* **plain SMC**: the same run with ``transport="none"`` (same path, steps and moves); with
  ``--mcmc mala,hmc`` once per move kernel (``plain_smc[hmc]``: HMC moves of
  ``--leapfrog-steps`` leapfrog steps, which draw one momentum per trajectory instead of one
  noise vector per gradient);
* **flow + IMH**: ``--n`` flow samples and the independence Metropolis chain (Gamma-method errors);
* **HMC**: :func:`pikflow.lattice.hmc` (tuned step), Gamma-method errors.

``--basis`` (a comma-separated list of :data:`pikflow.lattice.BASIS_PRESETS`) and ``--steps``
(a list) fit one flow per pair: PIK-SMC runs for each, plain SMC once per step count, and one
transport step on all particles is timed (``transport_seconds``: median and range of 3). The
ESS/N after every step is recorded (``ess_path``). HMC runs first and the JSON is rewritten
after every sampler, so a run cut short still reports.

``--schedule`` sets the flow's clock (default ``auto``: :math:`\tau = t^2` from a matched base, so few
RK4 steps suffice), ``--mcmc-every`` and ``--resample`` the SMC's moves and resampling, ``--float32``
adds a PIK-SMC run with the transport evaluated in float32 (``name[float32]``). Every flow's
continuous log-Jacobian is checked against the exact one on ``--logq-samples`` samples (default 4 up
to 1024 sites): the SMC's weights are those of the map applied only where that error is small.
``--ti-nodes K`` checks every SMC's :math:`\log Z_1` against HMC thermodynamic integration along the
first flow's path (:func:`pikflow.baselines.thermodynamic_integration`, ``K`` Gauss-Legendre nodes,
``--ti-samples`` trajectories each) plus that flow's exact :math:`\log Z_0`.

The cost metric at equal errors is :math:`\text{error}^2\times\text{seconds}` of each
observable (lower is better; it is independent of the run length for a sampler whose
error falls like :math:`1/\sqrt{\text{cost}}`). Ratios are against PIK-SMC. The flow's set-up
(base HMC and solve) is reported separately. Every sampler's seconds exclude compilation:
HMC and the flow are timed on a second, identically shaped call; SMC compiles ahead of
time and reports its compilation, so it runs once per timed call.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._errors import PikflowError
from ..flow import UNRELIABLE_LOG_Q
from ..samplers import ESTIMATES, PARTICLE_BATCH, replica_estimate
from . import register
from ._common import (
    OBSERVABLES,
    chain_series,
    chains_argument,
    extra_couplings,
    fourier_mass_argument,
    hmc_chains,
    log_q_error,
    replica_cost_correction,
    schedule_argument,
    write_json,
)
from ._hmc_length import tuned_leapfrog


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _arguments(p):
    p.add_argument("--L", type=int, default=8, help="lattice extent per axis (default 8)")
    p.add_argument("--dim", type=int, default=2, help="lattice dimension (default 2)")
    p.add_argument("--m2", type=float, default=-1.0, help="mass parameter m2 of eq. 31 (default -1)")
    p.add_argument("--lam", type=float, default=1.0, help="quartic coupling lam of eq. 31 (default 1)")
    p.add_argument(
        "--density",
        default=None,
        help="the site density (default: the phi^4 density of eq. 31); it must use m2 and lam; several fields "
        "(e.g. phi1, phi2 of the O(2) model) use the vector magnetisation",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a further coupling of --density at its value (repeatable)",
    )
    p.add_argument("--particles", type=int, default=1000, help="SMC particles per replica (default 1000)")
    p.add_argument("--replicas", type=int, default=4, help="independent SMC replicas (default 4)")
    p.add_argument(
        "--steps", type=_int_list, default=[10], help="RK4 / annealing steps, comma-separated list (default 10)"
    )
    p.add_argument(
        "--basis",
        default="default",
        help="transport basis presets (pikflow.lattice.BASIS_PRESETS), comma-separated (default 'default')",
    )
    p.add_argument(
        "--schedule",
        default="auto",
        type=schedule_argument,
        help="the clock tau = t**p of fit_lattice: a power p, 'uniform' or 'auto' (default; p = 2 from a matched base)",
    )
    p.add_argument("--mcmc-steps", type=int, default=2, help="MCMC moves per annealing step (default 2)")
    p.add_argument(
        "--mcmc",
        default="mala",
        help="move kernels, comma-separated ('mala', 'hmc', 'fhmc'): PIK-SMC uses the first, plain SMC runs with "
        "each (default 'mala')",
    )
    p.add_argument(
        "--mcmc-every",
        type=int,
        default=1,
        help="resample and move only at every m-th step and the last (default 1: every step)",
    )
    p.add_argument("--resample", type=float, default=0.5, help="resample when the ESS/N falls below this (default 0.5)")
    p.add_argument(
        "--estimate",
        choices=ESTIMATES,
        default="after",
        help="SMC means after each step's resampling and moves (default) or before them (smc(estimate=...))",
    )
    p.add_argument(
        "--fourier-mass",
        type=fourier_mass_argument,
        default=1.0,
        help="mu^2 of the Fourier-accelerated HMC moves 'fhmc', or adaptive (measured from the particles; default 1)",
    )
    p.add_argument("--leapfrog-steps", type=int, default=10, help="leapfrog steps of an HMC move (default 10)")
    p.add_argument("--n", type=int, default=10_000, help="flow samples for flow + IMH (default 10000; 0: skip)")
    p.add_argument("--reference", type=int, default=20_000, help="HMC trajectories (default 20000; 0: skip)")
    p.add_argument(
        "--hmc-leapfrog", type=chains_argument, default="auto",
        help="leapfrog steps a trajectory of the reference HMC, or auto (default): the best of 10, 20, 30, 40 (and "
        "longer while the longest is best) in a short pilot (as bench lattice --leapfrog; the pilot is reported, "
        "not counted in HMC's seconds)",
    )  # fmt: skip
    p.add_argument(
        "--chains", type=chains_argument, default="auto",
        help="chains of the reference HMC, or auto (default): 256 up to 400 sites, 64 up to 1600, else 16, with "
        ">= 600 trajectories per chain (thermodynamic integration: this many, at most 16 with auto)",
    )  # fmt: skip
    p.add_argument(
        "--ti-nodes",
        type=int,
        default=0,
        help="check log Z_1 - log Z_0 by HMC thermodynamic integration on this many Gauss-Legendre nodes "
        "(default 0: skip)",
    )
    p.add_argument(
        "--ti-samples", type=int, default=20_000, help="HMC trajectories per TI node, all chains (default 20000)"
    )
    p.add_argument(
        "--logq-samples",
        type=int,
        default=None,
        help="flow samples on which the continuous log-Jacobian of the transport is checked against the exact "
        "one (default 4 up to 1024 sites, else 0: the exact one costs V evaluations a sample)",
    )
    p.add_argument(
        "--float32",
        action="store_true",
        help="also run PIK-SMC with the transport evaluated in float32 (lattice_problem(precision='float32'))",
    )
    p.add_argument("--no-plain", action="store_true", help="skip plain SMC")
    p.add_argument("--repeats", type=int, default=1, help="timed calls per sampler, median reported (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")


#: timed calls per sampler after the warm-up call (``--repeats``); the median is reported
REPEATS = [1]


def _timed(fn):
    """``fn()`` timed after a first (compiling) call: the median seconds of :data:`REPEATS` calls."""
    fn()  # compile
    secs = []
    for _ in range(REPEATS[0]):
        t0 = time.perf_counter()
        out = fn()
        secs.append(time.perf_counter() - t0)
    _timed.spread = (min(secs), max(secs))
    return out, float(np.median(secs))


def _timed_smc(fn):
    """An SMC run ``fn()`` timed without a warm-up call: :func:`~pikflow.samplers.smc` compiles
    ahead of time and reports it, so its seconds less ``compile_seconds`` are the run's own
    (median of :data:`REPEATS` calls, as :func:`_timed`)."""
    secs = []
    for _ in range(REPEATS[0]):
        out = fn()
        secs.append(out.seconds - out.settings["compile_seconds"])
    _timed.spread = (min(secs), max(secs))
    return out, float(np.median(secs))


def _transport_seconds(flow, n: int, repeats: int = 3) -> dict:
    """Seconds of one PIK transport step (RK4 map and log-Jacobian) on ``n`` particles, in the batches that
    :func:`~pikflow.samplers.smc` uses: median and spread."""
    import jax

    import pikflow.lattice as pl

    prob = pl.lattice_problem(flow)
    step = jax.jit(lambda k, x: jax.lax.map(lambda z: prob.transport(k, z), x, batch_size=PARTICLE_BATCH))
    x = prob.base_sample(jax.random.PRNGKey(0), n)[0]
    jax.block_until_ready(step(0, x))
    secs = []
    for k in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(step(k % flow.steps, x))
        secs.append(time.perf_counter() - t0)
    return {"median": float(np.median(secs)), "min": float(np.min(secs)), "max": float(np.max(secs)), "n": n}


def _smc_record(r, secs, volume) -> dict:
    import pikflow.lattice as pl

    return {
        "seconds": secs,
        "seconds_range": list(_timed.spread),
        "ess": r.final_ess,
        "ess_path": [float(x) for x in r.ess.mean(axis=1)],
        "ess_path_min": [float(x) for x in r.ess.min(axis=1)],
        "resamplings": r.n_resampled,
        "acceptance": float(np.nanmean(r.acceptance[1:])),
        "log_z": r.log_z_estimate().to_dict(),
        # log Z_0 of the base (exact for a Gaussian base: its spread is then 0), the start of HMC's TI check
        "log_z0": replica_estimate(r.log_z[0]).to_dict(),
        "observables": {k: v.to_dict() for k, v in pl.smc_observables(r, volume).items()},
    }


@register("smc", "SMC with PIK transport vs plain SMC, flow + IMH and HMC on a lattice point (error^2 x seconds)")(
    _arguments
)
def run(args) -> dict:
    import jax

    import pikflow.lattice as pl

    from ..samplers import smc

    REPEATS[0] = max(1, args.repeats)
    kernels = [k.strip() for k in args.mcmc.split(",") if k.strip()]
    if not kernels or any(k not in ("mala", "hmc", "fhmc") for k in kernels):
        raise PikflowError(f"--mcmc takes 'mala', 'hmc' and/or 'fhmc' (comma-separated), got {args.mcmc!r}")
    schedule = args.schedule
    presets = [b.strip() for b in args.basis.split(",") if b.strip()]
    for b in presets:
        if b not in pl.BASIS_PRESETS:
            raise PikflowError(f"--basis {b!r} is not one of {list(pl.BASIS_PRESETS)}")
    shape = [args.L] * args.dim
    volume = int(np.prod(shape))
    action = pl.LatticeAction(args.density or pl.PHI4_DENSITY, shape)
    couplings = {"m2": args.m2, "lam": args.lam, **extra_couplings(args.set)}
    target = pl.LatticePath(action, couplings)
    progress = not args.quiet
    moments = pl.magnetisation_moments(action.n)
    res = {
        "lattice": shape,
        "density": str(action.source),
        "components": action.n,
        "couplings": couplings,
        "particles": args.particles,
        "replicas": args.replicas,
        "mcmc_steps": args.mcmc_steps,
        "mcmc": kernels,
        "leapfrog_steps": args.leapfrog_steps,
        "mcmc_every": args.mcmc_every,
        "resample": args.resample,
        "estimate": args.estimate,
        "fourier_mass": args.fourier_mass,
        "schedule": schedule,
        "setup_seconds": {},
        "transport_seconds": {},
        "samplers": {},
    }

    def run_smc(flow, transport, mcmc=kernels[0]):
        return smc(
            flow, args.particles, seed=args.seed, transport=transport, replicas=args.replicas, mcmc=mcmc,
            mcmc_steps=args.mcmc_steps, leapfrog_steps=args.leapfrog_steps, observables=moments, progress=False,
            mcmc_every=args.mcmc_every, resample=args.resample, estimate=args.estimate,
            fourier_mass=args.fourier_mass if mcmc == "fhmc" else 1.0,  # the mass of the fhmc runs only
        )  # fmt: skip

    # HMC first: a run cut off later still has its reference
    if args.reference > 0:
        chains, per = hmc_chains(args.chains, args.reference, volume)
        # auto: HMC's trajectory length tuned by a short pilot (the HMC guide, "Trajectory length")
        leapfrog, pilot, pilot_seconds = tuned_leapfrog(args.hmc_leapfrog, target, chains, seed=args.seed + 6)
        ((M, hmc_acc), secs) = _timed(
            lambda: pl.hmc(
                target, jax.random.PRNGKey(args.seed + 4), per * chains, n_chains=chains, step="auto",
                n_leapfrog=leapfrog, keep="magnetisation",
            )
        )  # fmt: skip
        hmc_obs = pl.chain_observables(chain_series(M), volume, chains=M.shape[0])
        res["samplers"]["hmc"] = {
            "seconds": secs,
            "seconds_range": list(_timed.spread),
            "chains": chains,
            "trajectories_per_chain": per,
            "leapfrog": leapfrog,
            "leapfrog_pilot": pilot,
            "leapfrog_pilot_seconds": pilot_seconds,
            "acceptance": float(hmc_acc),
            "observables": {k: v.to_dict() for k, v in hmc_obs.items()},
        }
        _partial(args, res, "hmc")
    single = len(presets) == 1 and len(args.steps) == 1
    ti_flow = None  # the first fitted flow: the TI check runs along its path
    for steps in args.steps:
        for b in presets:
            name = "pik_smc" if single else f"pik_smc[{b},{steps}]"
            t0 = time.perf_counter()
            flow = pl.fit_lattice(target, basis=b, steps=steps, seed=args.seed, schedule=schedule, progress=progress)
            res["setup_seconds"][name] = time.perf_counter() - t0
            ti_flow = ti_flow or flow
            res["transport_seconds"][name] = _transport_seconds(flow, args.particles * args.replicas)
            n_logq = args.logq_samples if args.logq_samples is not None else (4 if volume <= 1024 else 0)
            # the SMC's weights use the continuous log-Jacobian: its error on a few samples, as the flow's
            logq = log_q_error(flow, args.seed + 5, n_logq)
            r, secs = _timed_smc(lambda flow=flow: run_smc(flow, "pik"))
            res["samplers"][name] = {
                "basis": b,
                "steps": steps,
                "basis_terms": flow.basis.n,
                "time_power": flow.info.get("time_power"),
                **logq,
                **_smc_record(r, secs, volume),
            }
            _partial(args, res, name)
            if args.float32:  # the same PIK-SMC with the transport's evaluations in float32
                low = pl.lattice_problem(flow, precision="float32")
                r, secs = _timed_smc(lambda low=low: run_smc(low, "pik"))
                res["samplers"][name + "[float32]"] = {**res["samplers"][name], **_smc_record(r, secs, volume)}
                _partial(args, res, name + "[float32]")
            for kernel in kernels if not args.no_plain and b == presets[0] else ():
                tags = ([] if single else [str(steps)]) + ([kernel] if kernel != kernels[0] else [])
                pname = "plain_smc" + (f"[{','.join(tags)}]" if tags else "")
                r, secs = _timed_smc(lambda flow=flow, kernel=kernel: run_smc(flow, "none", kernel))
                res["samplers"][pname] = {"steps": steps, "mcmc": kernel, **_smc_record(r, secs, volume)}
                _partial(args, res, pname)
            if args.n > 0 and b == presets[-1] and steps == args.steps[0]:
                key = jax.random.PRNGKey(args.seed + 1)
                (samples, secs) = _timed(lambda flow=flow, key=key: flow.sample(key, args.n))
                # the IMH chain's estimates, compiled first like the draw (HMC's estimates are not timed at all)
                (obs, acc), obs_secs = _timed(
                    lambda s=samples: pl.flow_observables(s, volume, jax.random.PRNGKey(args.seed + 2))
                )
                secs += obs_secs
                res["samplers"]["flow_imh"] = {
                    "basis": b,
                    "seconds": secs,
                    "ess": float(samples.ess()),
                    "acceptance": float(acc),
                    "observables": {k: v.to_dict() for k, v in obs.items()},
                }
                _partial(args, res, "flow_imh")

    if args.ti_nodes > 0 and ti_flow is not None:
        _thermodynamic_check(args, res, ti_flow)
    _compare(res)
    _print(res)
    write_json(args, res)
    return res


def _thermodynamic_check(args, res, flow):
    r"""HMC thermodynamic integration of :math:`\log Z_1 - \log Z_0` along the first flow's path; with that
    flow's :math:`\log Z_0` (exact for a Gaussian base) it gives :math:`\log Z_1`, against which every SMC's
    :math:`\log Z_1` is pulled (:math:`\log Z_1` does not depend on the path)."""
    from ..baselines import thermodynamic_integration

    ti_chains = 16 if args.chains == "auto" else args.chains  # its 1000 thermalisation trajectories are per chain
    ti = thermodynamic_integration(
        flow.path,
        nodes=args.ti_nodes,
        n=max(args.ti_samples // ti_chains, 100),  # HMC.run's n is per chain
        chains=ti_chains,
        step_size="auto",
        seed=args.seed + 7,
        batched=True,  # every node's chains in one vectorised batch, each node's step its own (as bench scan-lattice)
    )
    res["thermodynamic_integration"] = {
        "nodes": args.ti_nodes,
        "samples_per_node": args.ti_samples,
        "log_z_ratio": ti.log_z_ratio.to_dict(),
        "seconds": ti.seconds,
    }
    z0 = next(v for k, v in res["samplers"].items() if k.startswith("pik_smc"))["log_z0"]
    ref = (ti.log_z_ratio.value + z0["value"], math.hypot(ti.log_z_ratio.error, z0["error"]))
    res["thermodynamic_integration"]["log_z"] = {"value": ref[0], "error": ref[1]}
    for v in res["samplers"].values():
        if "log_z" in v:
            z = v["log_z"]
            v["log_z_pull_vs_ti"] = (z["value"] - ref[0]) / math.hypot(z["error"], ref[1])
    if not args.quiet:
        print(f"  thermodynamic integration: log Z_1 = {ref[0]:.4f}({ref[1]:.4f}), {ti.seconds:.1f} s", flush=True)
    write_json(args, res)


def _partial(args, res, name):
    """Write the JSON so far (a cut-off run still reports) and say what was measured."""
    v = res["samplers"][name]
    if not args.quiet:
        print(f"  {name}: {v['seconds']:.2f} s, ESS/N {v.get('ess', math.nan):.3f}", flush=True)
    write_json(args, res)


def _compare(res):
    """error^2 x seconds per observable, ratios against PIK-SMC, pulls against HMC."""
    s = res["samplers"]
    ref = s["hmc"]["observables"] if "hmc" in s else None
    for v in s.values():
        v["cost"] = {k: o["error"] ** 2 * v["seconds"] for k, o in v["observables"].items()}
        v["pull_vs_hmc"] = {
            k: (o["value"] - ref[k]["value"]) / math.hypot(o["error"], ref[k]["error"]) if ref else math.nan
            for k, o in v["observables"].items()
        }
    # ratios against PIK-SMC: the first PIK-SMC run (the only one with one basis and one step count), whose
    # errors are replica errors: E[sigma^2/s^2] = nu/(nu - 2), corrected by the factor (nu - 2)/nu
    base = next(v for k, v in s.items() if k.startswith("pik_smc"))["cost"]
    fix = replica_cost_correction(res["replicas"])["mean"]
    res["replica_cost_correction"] = fix
    for v in s.values():
        v["cost_over_pik_smc"] = {k: v["cost"][k] / base[k] * fix if base[k] > 0 else math.nan for k in v["cost"]}


def _print(res):
    lat = "x".join(map(str, res["lattice"]))
    c = res["couplings"]
    setup = ", ".join(f"{k} {v:.1f} s" for k, v in res["setup_seconds"].items())
    step = ", ".join(f"{k} {v['median'] * 1e3:.1f} ms" for k, v in res["transport_seconds"].items())
    print(f"{res['density']} on {lat}, couplings {c}; flow set-up: {setup}")
    print(f"one transport step on all particles (median of 3): {step}")
    for name, v in res["samplers"].items():
        if v.get("log_q_error_rms") is not None and not name.endswith("[float32]"):
            rms, top = v["log_q_error_rms"], v["log_q_error_max"]
            warn = ""
            if top > UNRELIABLE_LOG_Q:
                warn = "  WARNING: the weights are not those of the map applied; use more steps"
            print(f"{name}: continuous - exact log-Jacobian, rms {rms:.2g}, max {top:.2g}{warn}")
    print()
    names = ", ".join(OBSERVABLES)
    first = next(k for k in res["samplers"] if k.startswith("pik_smc"))
    print("| sampler | seconds | ESS/N | " + " | ".join(OBSERVABLES) + f" | cost / {first} ({names}) |")
    print("|---|---|---|" + "---|" * len(OBSERVABLES) + "---|")
    for name, v in res["samplers"].items():
        ess = f"{v['ess']:.3f}" if "ess" in v else ""
        cells = [
            f"{v['observables'][k]['value']:.4f}({v['observables'][k]['error']:.4f}) [{v['pull_vs_hmc'][k]:+.1f}]"
            for k in OBSERVABLES
        ]
        ratios = ", ".join(f"{v['cost_over_pik_smc'][k]:.3g}" for k in OBSERVABLES)
        print(f"| {name} | {v['seconds']:.2f} | {ess} | " + " | ".join(cells) + f" | {ratios} |")
    print()
    fix = res["replica_cost_correction"]
    print("[x] = pull against HMC in combined errors; cost = error^2 x seconds (lower is better); the ratios are")
    print(f"multiplied by (nu - 2)/nu = {fix:.3g} (nu = replicas - 1: PIK-SMC's errors are replica errors)")
    ti = res.get("thermodynamic_integration")
    if ti:
        z = ti["log_z"]
        print(f"log Z_1: HMC thermodynamic integration ({ti['nodes']} nodes) {z['value']:.4f}({z['error']:.4f})")
        for name, v in res["samplers"].items():
            if "log_z_pull_vs_ti" in v:
                lz = v["log_z"]
                print(f"  {name}: {lz['value']:.4f}({lz['error']:.4f}) [{v['log_z_pull_vs_ti']:+.1f}]")
