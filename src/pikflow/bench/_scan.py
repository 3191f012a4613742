r"""``pikflow bench scan``: an observable at every step time of the path, one PIK flow vs HMC per point.

A PIK flow gives every intermediate theory :math:`p_t` at once: the samples of step
``t`` follow :math:`p_t` (paper sec. IV A 3, Fig. 8). HMC needs one run per parameter
point. Measured (after compilation, on this machine, both with ``workers`` threads):

* **PIK**: after a compiling warm-up of the whole pipeline, ``--repeats`` (3) timed
  runs, each on a fresh flow, of which the median is used: the solve (layer-parallel
  mode, 200 + 100 collocation points per layer with the tail points out to
  :math:`\hat S - \min\hat S = 36`, where the table reaches, unless the configuration
  sets ``[collocation]``), the tabulated map of that flow (built from scratch, 2048 nodes)
  and one streamed pass of ``N`` samples
  (:meth:`pikflow.Flow.path_estimates`: the pilot, then every step's samples reweighted
  with that step's exact weights and reduced inside compiled calls) giving
  :math:`\langle O\rangle_t` with its error :math:`\epsilon_t` (the delta-method error
  of the self-normalised estimator, from the same samples) at every step time
  (``steps + 1`` points; 51 by default). Nothing is excluded but compilation.
* **HMC**: at every step time, vectorised HMC reaching the same error
  :math:`\epsilon_t`: a pilot run gives the error per trajectory, then a run with
  enough trajectories (rounded up to whole compiled chunks) is made and timed. Its
  sampling time, rescaled to exactly :math:`\epsilon_t` by
  :math:`T \cdot (\sigma_{\mathrm{achieved}}/\epsilon_t)^2` (errors fall as
  :math:`T^{-1/2}`), is the cost per point; the pilot runs and the compilation are not
  counted, the thermalisation is reported apart.

The ratio is PIK's total (solve + table + sampling + observables) over HMC's summed
sampling time; a second ratio adds HMC's per-point thermalisation.
"""

from __future__ import annotations

import dataclasses
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
    p.add_argument("--workers", type=int, help="threads for the HMC chains and the PIK pass (default: CPU cores)")
    p.add_argument(
        "--mode",
        choices=("sequential", "parallel"),
        default="parallel",
        help="solve mode of the flow (default parallel: every layer at once, overriding the configuration)",
    )
    p.add_argument(
        "--collocation",
        type=int,
        help="collocation samples per layer, plus half as many tail points out to S - min S = 36 "
        "(default: the configuration's [collocation], else 200)",
    )
    p.add_argument("--table-nodes", type=int, default=2048, help="grid nodes of the tabulated map (default 2048)")
    p.add_argument(
        "--repeats", type=int, default=3, help="timed PIK runs (solve + table + pass), the median is used (default 3)"
    )


def _pik_runs(args, path, opts, sampling, name, obs, workers) -> dict:
    """PIK: one flow, every step time; the median of the timed repeats after a compiling run.

    Everything after compilation is timed: the solve, the table of the flow (built from scratch for
    the fresh flow) and the streamed pass (Flow.path_estimates: every step's samples reweighted with
    that step's exact weights, reduced inside one compiled function; nothing stored).
    """
    from .. import solve

    est_opts = dict(n=args.n, table_nodes=args.table_nodes, workers=workers, progress=False)

    def pik_once(seed):
        t0 = time.perf_counter()
        flow = solve(path, **opts)
        t1 = time.perf_counter()
        pe = flow.path_estimates({name: obs}, seed=seed, **est_opts)
        t2 = time.perf_counter()
        return flow, pe, t1 - t0, t2 - t1

    pik_once(sampling["seed"])  # compile the solve, the table builder and the streamed pass
    runs = [pik_once(sampling["seed"] + 1 + r) for r in range(max(1, args.repeats))]
    totals = [r[2] + r[3] for r in runs]
    flow, pe, solve_seconds, pass_seconds = runs[int(np.argsort(totals)[len(totals) // 2])]  # the median run
    table_info = flow.table_info
    table_seconds = table_info.seconds if table_info is not None else 0.0
    along = {float(t): pe.estimates[name][k] for k, t in enumerate(pe.times)}
    return {
        "flow": flow,
        "along": along,
        "ess_at": {float(t): float(pe.ess[k]) for k, t in enumerate(pe.times)},
        "times": sorted(along),
        "solve_seconds": solve_seconds,
        "table_seconds": table_seconds,
        "table_info": table_info,
        "sample_seconds": pass_seconds - table_seconds,
        "total": solve_seconds + pass_seconds,
        "totals": totals,
    }


def _hmc_points(args, path, h, obs, along, ess_at, times, chains, workers, progress):
    """HMC: one run per point, to the same error as PIK's (a pilot run sizes it); per-point records and seconds."""
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

    return points, hmc_raw, hmc_scaled, hmc_therm


@register("scan", "an observable at every step time: one PIK flow vs one HMC run per point, same errors")(_arguments)
def run(args) -> dict:
    import jax

    from ..solvers import Collocation

    source, path, opts, sampling, observables, h = inputs(args)
    if args.observable is None:
        name, obs = next(iter(observables.items()))
    elif args.observable in observables:
        name, obs = args.observable, observables[args.observable]
    else:
        name, obs = args.observable, args.observable
    opts = {**opts, "steps": args.steps, "progress": False, "mode": args.mode}
    if args.collocation is not None or "collocation" not in opts:
        m = 200 if args.collocation is None else args.collocation
        # tail points out to S - min S = 36: the table covers every u = (k + 1/2) 2^-52, |z| <= 8.3
        # (S - min S ~ 35 for the base), so the kernel is fitted wherever a sample can land
        opts["collocation"] = Collocation(n_samples=m, n_tail=max(2, m // 2), tail_gap=36.0)
    n = args.n
    progress = not args.quiet

    workers = min(h["workers"], h["chains"])  # the same threads for PIK and for HMC
    pik = _pik_runs(args, path, opts, sampling, name, obs, workers)
    along, ess_at, times = pik["along"], pik["ess_at"], pik["times"]
    solve_seconds, table_seconds, table_info = pik["solve_seconds"], pik["table_seconds"], pik["table_info"]
    pik_sample_seconds, pik_total, totals = pik["sample_seconds"], pik["total"], pik["totals"]
    obs_seconds = 0.0  # included in the streamed pass
    chains = -(-h["chains"] // workers) * workers
    chunk = max(1, args.chunk)
    points, hmc_raw, hmc_scaled, hmc_therm = _hmc_points(
        args, path, h, obs, along, ess_at, times, chains, workers, progress
    )

    pulls = np.array([p["pull"] for p in points])
    res = {
        "config_source": source,
        "device": str(jax.devices()[0]),
        "observable": {"name": name, "expression": str(obs)},
        "points": len(times),
        "pik": {
            "n": n,
            "steps": args.steps,
            "solve_mode": opts["mode"],
            "collocation": dataclasses.asdict(opts["collocation"]),
            "workers": workers,
            "solve_seconds": solve_seconds,
            "table_seconds": table_seconds,
            "table_nodes": args.table_nodes,
            "table_max_interpolation_error": table_info.max_interpolation_error if table_info else None,
            "sample_seconds": pik_sample_seconds,
            "ns_per_point_sample": pik_sample_seconds / (n * len(times)) * 1e9,
            "observable_seconds": obs_seconds,
            "total_seconds": pik_total,
            "total_seconds_all_runs": totals,
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
    print(f"| table seconds | {p['table_seconds']:.3f} | - |")
    pik_sampling = p["sample_seconds"] + p["observable_seconds"]
    print(f"| sampling seconds | {pik_sampling:.3f} | {h['sample_seconds_scaled']:.3f} |")
    print(f"| total seconds | {p['total_seconds']:.3f} | {h['sample_seconds_scaled']:.3f} (+ thermalisation) |")
    print()
    print(f"HMC time / PIK time (same errors):           {res['ratio']:.3g}x")
    print(f"with HMC thermalisation per point:           {res['ratio_with_thermalisation']:.3g}x")
    print(f"PIK - HMC: rms {res['pull_rms']:.2f}, max {res['pull_max']:.2f} combined sigma over {res['points']} points")
