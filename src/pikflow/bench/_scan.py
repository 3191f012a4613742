r"""``pikflow bench scan``: an observable at every step time of the path, one PIK flow vs HMC per point.

A PIK flow gives every intermediate theory :math:`p_t` at once: the samples of step
``t`` follow :math:`p_t` (paper sec. IV A 3, Fig. 8). HMC needs one run per parameter
point. Measured (after compilation, on this machine):

* **PIK**: one solve (timed after a compiling solve) and one streamed pass of ``N``
  samples (:meth:`pikflow.Flow.path_estimates`, timed after a compiling call) giving
  :math:`\langle O\rangle_t` with its error :math:`\epsilon_t` at every step time
  (``steps + 1`` points; 51 by default).
* **HMC**: at every step time, vectorised HMC reaching the same error
  :math:`\epsilon_t`: a pilot run gives the error per trajectory, then a run with
  enough trajectories (rounded up to whole compiled chunks) is made and timed. Its
  sampling time, rescaled to exactly :math:`\epsilon_t` by
  :math:`T \cdot (\sigma_{\mathrm{achieved}}/\epsilon_t)^2` (errors fall as
  :math:`T^{-1/2}`), is the cost per point; the pilot runs and the compilation are not
  counted, the thermalisation is reported apart.

The ratio is PIK's total (solve + sampling + observables) over HMC's summed sampling
time; a second ratio adds HMC's per-point thermalisation.
"""

from __future__ import annotations

import math
import time

import numpy as np

from . import register
from ._common import write_json
from ._hmc import exact_values_at, hmc_sampler, inputs


def _arguments(p):
    p.add_argument("--steps", type=int, default=50, help="RK4 steps of the flow: steps + 1 points (default 50: 51)")
    p.add_argument("--n", type=int, default=1_000_000, help="PIK samples (default 1000000)")
    p.add_argument("--observable", help="a name from [observables] or an expression (default: the first observable)")
    p.add_argument("--chains", type=int, help="HMC chains per point (default: [hmc] chains, 2048)")
    p.add_argument("--chunk", type=int, default=50, help="HMC trajectories per compiled call (default 50)")
    p.add_argument("--pilot-n", type=int, default=50, help="pilot trajectories per chain and point (default 50)")
    p.add_argument("--thermalisation", type=int, help="HMC trajectories discarded per chain and point (default 200)")
    p.add_argument("--workers", type=int, help="threads for the HMC chains (default: CPU cores)")


@register("scan", "an observable at every step time: one PIK flow vs one HMC run per point, same errors")(_arguments)
def run(args) -> dict:
    import jax

    from .. import solve

    source, path, opts, sampling, observables, h = inputs(args)
    if args.observable is None:
        name, obs = next(iter(observables.items()))
    elif args.observable in observables:
        name, obs = args.observable, observables[args.observable]
    else:
        name, obs = args.observable, args.observable
    opts = {**opts, "steps": args.steps, "progress": False}
    n = args.n
    progress = not args.quiet

    # ---- PIK: one flow, every step time
    solve(path, **opts)  # compile
    t0 = time.perf_counter()
    flow = solve(path, **opts)
    solve_seconds = time.perf_counter() - t0
    # One streamed pass (Flow.path_estimates): every step's samples reweighted with that
    # step's exact weights, reduced inside one compiled function; nothing stored.
    flow.path_estimates({name: obs}, n, seed=sampling["seed"], progress=False)  # compile
    t0 = time.perf_counter()
    pe = flow.path_estimates({name: obs}, n, seed=sampling["seed"] + 1, progress=False)
    pik_sample_seconds = time.perf_counter() - t0
    along = {float(t): pe.estimates[name][k] for k, t in enumerate(pe.times)}
    ess_at = {float(t): float(pe.ess[k]) for k, t in enumerate(pe.times)}
    obs_seconds = 0.0  # included in the streamed pass
    times = sorted(along)
    pik_total = solve_seconds + pik_sample_seconds

    # ---- HMC: one run per point, to the same error
    workers = min(h["workers"], h["chains"])
    chains = -(-h["chains"] // workers) * workers
    chunk = max(1, args.chunk)
    sampler = hmc_sampler(path, h)
    exact = exact_values_at(path, obs, times)
    points, hmc_raw, hmc_scaled, hmc_therm = [], 0.0, 0.0, 0.0
    for i, t in enumerate(times):
        target = along[t].error
        if not target > 0:
            raise RuntimeError(f"PIK error at t = {t} is {target}: nothing to match")
        kw = dict(chains=chains, thermalisation=h["thermalisation"], workers=workers, chunk=chunk)
        pilot = sampler.run(t, n=max(5, args.pilot_n), seed=h["seed"] + 2 * i, **kw)
        gp = pilot.gamma(obs)
        need = pilot.n_total * (gp.error / target) ** 2
        n_chain = max(chunk, math.ceil(need / chains / chunk) * chunk)
        res = sampler.run(t, n=n_chain, seed=h["seed"] + 2 * i + 1, progress=progress, **kw)
        g = res.gamma(obs)
        scaled = res.sample_seconds * (g.error / target) ** 2
        hmc_raw += res.sample_seconds
        hmc_scaled += scaled
        hmc_therm += res.thermalisation_seconds
        pt = {
            "t": t,
            "pik": {**along[t].to_dict(), "ess": ess_at[t]},
            "hmc": {
                "value": g.mean,
                "error": g.error,
                "tau_int": g.tau_int,
                "n_total": res.n_total,
                "acceptance": res.acceptance,
                "sample_seconds": res.sample_seconds,
                "sample_seconds_scaled": scaled,
                "thermalisation_seconds": res.thermalisation_seconds,
            },
            "pull": (along[t].value - g.mean) / math.hypot(target, g.error),
        }
        if exact is not None:
            pt["exact"] = exact[i]
        points.append(pt)

    pulls = np.array([p["pull"] for p in points])
    res = {
        "config_source": source,
        "device": str(jax.devices()[0]),
        "observable": {"name": name, "expression": str(obs)},
        "points": len(times),
        "pik": {
            "n": n,
            "steps": args.steps,
            "solve_seconds": solve_seconds,
            "sample_seconds": pik_sample_seconds,
            "observable_seconds": obs_seconds,
            "total_seconds": pik_total,
            "error_max": max(along[t].error for t in times),
            "ess_min": min(p["pik"]["ess"] for p in points),
        },
        "hmc": {
            "chains": chains,
            "workers": workers,
            "chunk": chunk,
            "thermalisation": h["thermalisation"],
            "sample_seconds": hmc_raw,
            "sample_seconds_scaled": hmc_scaled,
            "thermalisation_seconds": hmc_therm,
            "n_total": int(sum(p["hmc"]["n_total"] for p in points)),
        },
        "ratio": hmc_scaled / pik_total,
        "ratio_with_thermalisation": (hmc_scaled + hmc_therm) / pik_total,
        "pull_rms": float(np.sqrt(np.mean(pulls**2))),
        "pull_max": float(np.max(np.abs(pulls))),
        "per_point": points,
    }
    _print(res, name)
    write_json(args, res)
    return res


def _print(res, name):
    p, h = res["pik"], res["hmc"]
    print(f"Parameter scan of <{name}> at {res['points']} step times, same error at every point")
    print()
    print("| | PIK (one flow) | HMC (one run per point) |")
    print("|---|---|---|")
    print(f"| samples | {p['n']} per point (one sample) | {h['n_total']} in all ({h['chains']} chains per point) |")
    print(f"| largest error | {p['error_max']:.3g} | matched per point |")
    print(f"| solve / thermalisation seconds | {p['solve_seconds']:.3f} | {h['thermalisation_seconds']:.3f} |")
    pik_sampling = p["sample_seconds"] + p["observable_seconds"]
    print(f"| sampling seconds | {pik_sampling:.3f} | {h['sample_seconds_scaled']:.3f} |")
    print(f"| total seconds | {p['total_seconds']:.3f} | {h['sample_seconds_scaled']:.3f} (+ thermalisation) |")
    print()
    print(f"HMC time / PIK time (same errors):           {res['ratio']:.3g}x")
    print(f"with HMC thermalisation per point:           {res['ratio_with_thermalisation']:.3g}x")
    print(f"PIK - HMC: rms {res['pull_rms']:.2f}, max {res['pull_max']:.2f} combined sigma over {res['points']} points")
