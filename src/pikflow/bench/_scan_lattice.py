r"""``pikflow bench scan-lattice``: one SMC scan along m² against one HMC run per point, at equal errors.

The path starts at a Gaussian (:math:`m^2 = ` ``--m2-gauss``, :math:`\lambda = 0`), reaches
:math:`(m^2_a, \lambda)` at ``t = --prep`` and then runs :math:`m^2` linearly to :math:`m^2_b` at
fixed :math:`\lambda` (knots, :func:`pikflow.Path`-style). :func:`pikflow.lattice.scan_lattice`
samples it once per size and reports ``--points`` points of the physical segment. At
``--check`` of them, evenly spread, :func:`pikflow.lattice.hmc` (tuned step, ``--reference``
trajectories, Gamma-method errors with the chains as replica) measures the same observables.
With ``--hmc-start ordered`` (the default) half the chains start at the classical minimum
:math:`+\sqrt{-m^2/\lambda}` and half at its mirror image (0.1 in the symmetric phase): from
random starts, 500 trajectories per chain leave domain walls on 32x32 in the broken phase.

Free energy: the scan's :math:`\log Z_1 - \log Z_0` (replica errors) against HMC thermodynamic
integration (:func:`pikflow.baselines.thermodynamic_integration`, Gauss-Legendre nodes on each
linear segment of the path, ``--ti-nodes`` each, Gamma-method errors), and the scan's own
check :math:`d\log Z/dt = -\langle d\hat S/dt\rangle` (:meth:`pikflow.lattice.LatticeScan.free_energy_check`).

Cost at equal errors: HMC needs :math:`\text{seconds}_{\rm HMC}\,(\sigma_{\rm HMC}/\sigma_{\rm scan})^2`
per point to reach the scan's error there (errors fall like :math:`1/\sqrt{\text{cost}}`), so a
whole HMC scan costs ``points`` times the mean of that over the checked points; the ratio to
the scan's wall time (compilation included, so the ratio is conservative) is reported per
observable. HMC's seconds exclude compilation (a short warm-up call compiles it), so
``hmc_over_scan_compiled`` compares like with like: the scan's time without its SMC
compilation (``scan_compile_seconds``, measured by compiling ahead of time).

HMC batched across the points: one run per point, one point after the other, keeps only
``--chains`` chains side by side, and a wider vectorised batch costs less per chain on a CPU.
:func:`pikflow.baselines.hmc_points` runs ``--batched-chains`` chains at every one of the
``--points`` points in batches of as many points as fill HMC's cheapest batch at that volume
(``--chains auto``'s: 256 chains up to 400 sites, 64 up to 1600, 16 above; with one length for all,
all 31 points of 8 chains in one batch at 16x16, 8 points a batch at 32x32), each point with its own adapted step,
the same ``--reference`` trajectories per point, ordered starts as above, and by default
(``--hmc-leapfrog auto``) each point's trajectory length from a pilot at 10, 20, 30 and 40 leapfrog steps, and
longer at the points where the longest was fastest (the points of one length run together, each batch filled
with chains; the pilot's time is left out of HMC's seconds, like the thermalisation, and counted in
``hmc_over_scan_with_pilot``); each point is charged
its batch's sampling time over the batch's points, and the whole HMC scan at equal errors costs the sum
over all points of that time times :math:`(\sigma_{\rm HMC}/\sigma_{\rm scan})^2`
(``hmc_batched``: its seconds, pulls at every point and ``hmc_over_scan_at_equal_errors``). That sum is
dominated by the few points near the transition, where HMC's errors are largest; ``hmc_over_scan_median_point``
is the same ratio at the median point (the point's HMC cost times ``--points`` over the scan's time).

Every ratio divides by the scan's replica variance :math:`s^2` (``--replicas`` R), whose inverse is biased:
:math:`E[\sigma^2/s^2] = \nu/(\nu-2)`, :math:`\nu = R - 1` (3 with the default 4 replicas, with an infinite
variance, so one point whose error comes out small dominates a sum). The ratios are multiplied by
:math:`(\nu-2)/\nu` (the median one by :math:`\mathrm{median}(\chi^2_\nu)/\nu`), which makes them unbiased
(``replica_cost_correction``; NaN below 4 replicas); ``hmc_seconds_at_equal_errors`` stays uncorrected.
Use 8 or more replicas for ratios that mean something point by point.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from .._errors import ConfigError
from ..samplers import ESTIMATES, pool_by_default
from . import register
from ._common import (
    OBSERVABLES,
    chains_argument,
    cheapest_chains,
    fourier_mass_argument,
    replica_cost_correction,
    write_json,
)
from ._scan_lattice_print import print_scan

#: ``--flow-basis`` -> keywords of ``pikflow.lattice.lattice_basis``.
FLOW_BASES = {
    "default": None,
    "fourier": {"scales": [], "magnetisation": [], "local_range": None},
    "fourier-mag": {"scales": [], "local_range": None},
}


def _arguments(p):
    p.add_argument("--L", type=int, nargs="+", default=[8, 16], help="lattice sizes (default 8 16)")
    p.add_argument("--lam", type=float, default=1.0, help="quartic coupling along the scan (default 1)")
    p.add_argument("--m2", type=float, nargs=2, default=[-0.5, -2.0], help="m2 from, to (default -0.5 -2)")
    p.add_argument("--m2-gauss", type=float, default=0.5, help="m2 of the Gaussian start (default 0.5)")
    p.add_argument("--prep", type=float, default=0.25, help="t where the physical segment starts (default 0.25)")
    p.add_argument("--points", type=int, default=31, help="scan points (default 31)")
    p.add_argument("--steps", type=int, default=None, help="annealing steps over the scan (default 4 (points-1))")
    p.add_argument(
        "--dense", type=float, nargs=3, default=None, metavar=("M2_A", "M2_B", "FACTOR"),
        help="FACTOR times the steps in the gaps between scan points whose m2 lies between M2_A and M2_B "
        "(e.g. around the transition)",
    )  # fmt: skip
    p.add_argument("--particles", type=int, default=1000, help="SMC particles per replica (default 1000)")
    p.add_argument(
        "--replicas", type=int, default=8,
        help="SMC replicas (default 8: t_7 errors; with 4 a cost ratio at equal errors has no finite variance)",
    )  # fmt: skip
    p.add_argument(
        "--check", type=int, default=5, help="points checked by one HMC run each, per size (default 5; 0: none)"
    )
    p.add_argument("--reference", type=int, default=4000, help="HMC trajectories per checked point (default 4000)")
    p.add_argument("--chains", type=int, default=8, help="HMC chains (default 8)")
    p.add_argument(
        "--hmc-therm", type=int, default=200, help="HMC thermalisation trajectories per chain (default 200)"
    )  # fmt: skip
    p.add_argument(
        "--batched-chains", type=int, default=None,
        help="chains per point of the batched HMC scan over every point (default: --chains; 0: skip it)",
    )  # fmt: skip
    p.add_argument(
        "--hmc-start", choices=("ordered", "random"), default="ordered",
        help="HMC starting configurations: ordered (+-sqrt(-m2/lam), default) or random",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument(
        "--ti-nodes",
        type=int,
        default=24,
        help="HMC thermodynamic-integration nodes per path segment (default 24: 6 were biased at 32x32; 0: skip)",
    )
    p.add_argument("--ti-n", type=int, default=250, help="HMC trajectories per chain at each TI node (default 250)")
    p.add_argument("--mcmc-steps", type=int, default=4, help="HMC moves per annealing step (default 4)")
    p.add_argument("--mcmc-every", type=int, default=1, help="move (and resample) at every n-th step only (default 1)")
    p.add_argument(
        "--estimate",
        default="moves",
        choices=ESTIMATES,
        help="each point's means averaged over the configurations after each of its step's moves (default), "
        "after the moves, or before them (smc(estimate=...))",
    )
    p.add_argument(
        "--pool", action=argparse.BooleanOptionalAction, default=None,
        help="each point's means also from the steps around it, reweighted to it (scan_lattice(pool=...); "
        "default on, off with --estimate before)",
    )  # fmt: skip
    p.add_argument("--leapfrog", type=int, default=10, help="leapfrog steps per SMC move (default 10)")
    p.add_argument(
        "--hmc-leapfrog", type=chains_argument, default="auto",
        help="leapfrog steps a trajectory of the batched HMC reference, or auto (default): each point's fastest of "
        "10, 20, 30, 40 (longer where 40 is fastest) in a pilot (no fixed length is best along a scan: the HMC "
        "guide, 'Trajectory length')",
    )  # fmt: skip
    p.add_argument(
        "--mcmc", choices=("hmc", "fhmc", "hmc+cluster"), default="hmc",
        help="SMC moves: hmc (unit mass, default), fhmc (Fourier-accelerated mass k^2 + mu^2) or hmc+cluster "
        "(each trajectory followed by a Swendsen-Wang sweep of the signs)",
    )  # fmt: skip
    p.add_argument(
        "--fourier-mass",
        type=fourier_mass_argument,
        default=1.0,
        help="fhmc: mu^2 of the mass k^2 + mu^2, or adaptive (measured from the particles; default 1)",
    )
    p.add_argument("--prep-steps", type=int, default=None, help="annealing steps over the preparatory segment")
    p.add_argument(
        "--transport", choices=("none", "pik"), default="none",
        help="none: plain annealing (default); pik: a PIK flow solved along the path transports the particles",
    )  # fmt: skip
    p.add_argument(
        "--flow-basis", choices=tuple(FLOW_BASES), default="default",
        help="with --transport pik: the flow's basis (default: lattice_basis's; fourier: the two-point term only; "
        "fourier-mag: plus the magnetisation powers)",
    )  # fmt: skip
    p.add_argument("--flow-collocation", type=int, default=500, help="with --transport pik: collocation per layer")


def scan_path(L: int, args):
    """The knots path of the benchmark on an L x L lattice."""
    import pikflow.lattice as pl

    a, b = args.m2
    couplings = {
        "m2": [[0.0, args.m2_gauss], [args.prep, a], [1.0, b]],
        "lam": [[0.0, 0.0], [args.prep, args.lam], [1.0, args.lam]],
    }
    return pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), couplings)


def scan_steps(args):
    """``--steps``, or with ``--dense A B F`` one count per gap: F times as many where the gap's m2 is in [A, B]."""
    if getattr(args, "dense", None) is None:
        return args.steps
    a, b, factor = args.dense
    per = max(1, math.ceil((args.steps or 4 * (args.points - 1)) / (args.points - 1)))
    edges = np.linspace(args.m2[0], args.m2[1], args.points)
    middle = 0.5 * (edges[1:] + edges[:-1])
    inside = (middle >= min(a, b)) & (middle <= max(a, b))
    return [int(round(per * factor)) if i else per for i in inside]


def ordered_start(path, t: float, chains: int) -> np.ndarray:
    r"""Half the chains at :math:`\sqrt{-m^2/\lambda}` on every site, half at minus that (0.1 if :math:`m^2 \ge 0`)."""
    import pikflow.lattice as pl

    values = pl.couplings_at(path, t)
    m2, lam = values["m2"], values["lam"]
    v = math.sqrt(-m2 / lam) if m2 < 0 and lam > 0 else 0.1
    signs = np.where(np.arange(chains) % 2 == 0, 1.0, -1.0)
    return signs.reshape((-1,) + (1,) * len(path.field_shape)) * np.full((chains, *path.field_shape), v)


def _hmc_point(path, t, args, seed):
    import jax

    import pikflow.lattice as pl

    per = max(args.reference // args.chains, 20)
    key = jax.random.PRNGKey(seed)
    start = ordered_start(path, t, args.chains) if getattr(args, "hmc_start", "random") == "ordered" else None
    pl.hmc(path, key, 20 * args.chains, time=t, n_chains=args.chains, n_therm=20, step="auto", keep="magnetisation")
    t0 = time.perf_counter()
    M, acc = pl.hmc(
        path, key, per * args.chains, time=t, n_chains=args.chains, step="auto", start=start, keep="magnetisation",
        n_therm=getattr(args, "hmc_therm", 200),
    )  # fmt: skip
    secs = time.perf_counter() - t0
    obs = pl.chain_observables(M.reshape(-1), path.lattice.volume, chains=M.shape[0])
    return {"seconds": secs, "acceptance": float(acc), "observables": {k: v.to_dict() for k, v in obs.items()}}


def _hmc_batched(path, rows, args, seed) -> dict:
    """Vectorised HMC at every scan point (:func:`pikflow.baselines.hmc_points`, batches of points) against the rows.

    ``--hmc-leapfrog auto``: a pilot (:func:`._hmc_length.best_leapfrog_points`, reported as ``pilot``; its seconds
    are left out of ``hmc_seconds_at_equal_errors``, like the thermalisation, and counted in the ``..._with_pilot``
    ratios of :func:`run`) picks each point's length; the points of one length then run together, spread over as few
    batches as hold them, each batch filled with chains (:func:`._hmc_length.batched_points`).
    """
    from ..lattice import chain_observables
    from ._hmc_length import batched_points, best_leapfrog_points

    chains = args.chains if args.batched_chains is None else args.batched_chains
    per = max(args.reference // args.chains, 20)
    ts = [r["t"] for r in rows]
    volume = path.lattice.volume
    ordered = getattr(args, "hmc_start", "random") == "ordered"
    start = (lambda t, c: ordered_start(path, t, c)) if ordered else None
    therm = getattr(args, "hmc_therm", 200)
    leapfrog, pilot = getattr(args, "hmc_leapfrog", 10), None
    if leapfrog == "auto":
        leapfrog, pilot_rows, pilot_seconds = best_leapfrog_points(
            path, ts, chains=chains, seed=seed + 50_000, therm=therm, start=start
        )
        pilot = {"seconds": pilot_seconds, "rows": pilot_rows}
    # as many points per batch as fill HMC's cheapest batch at this volume (--chains auto's), one batch after another
    group = max(1, cheapest_chains(volume) // chains)
    run = batched_points(path, ts, chains=chains, per=per, leapfrog=leapfrog, seed=seed, therm=therm, start=start,
                         fill=pilot is not None, progress=not getattr(args, "quiet", True))  # fmt: skip
    M, sample_seconds = run["M"], run["sample_seconds"]
    pulls, cost = [], {k: 0.0 for k in OBSERVABLES}
    points = []
    for i, row in enumerate(rows):
        obs = chain_observables(M[i].reshape(-1), volume, chains=M[i].shape[0])
        secs = run["seconds"][i]
        entry = {"t": row["t"], "m2": row["couplings"]["m2"], "pull": {}}
        for k in OBSERVABLES:
            s, r = row[k], obs[k]
            entry[k] = r.to_dict()
            entry["pull"][k] = (s.value - r.value) / math.hypot(s.error, r.error)
            entry.setdefault("hmc_seconds", {})[k] = secs * (r.error / s.error) ** 2 if s.error > 0 else math.nan
            cost[k] += entry["hmc_seconds"][k]
        pulls.extend(entry["pull"].values())
        points.append(entry)
    return {
        "chains_per_point": chains,
        "chains": run["chains"],
        "hmc_leapfrog": getattr(args, "hmc_leapfrog", 10),
        "leapfrog": run["leapfrog"],
        "pilot": pilot,
        "points_per_batch": group,
        "batches": run["batches"],
        "trajectories_per_chain": per,
        "trajectories": int(sum(run["chains"])) * per,
        "sample_seconds": sample_seconds,
        "seconds_per_point": sample_seconds / len(ts),
        "acceptance": run["acceptance"],
        "step_size": run["step_size"],
        "points": points,
        "max_abs_pull": float(np.max(np.abs(pulls))),
        "pulls_over_2_sigma": int(np.sum(np.abs(pulls) > 2)),
        "n_pulls": len(pulls),
        "hmc_seconds_at_equal_errors": cost,
    }


def check_arguments(args) -> None:
    """The scan's flags checked before any work, each error naming its flag."""
    if not 0.0 < args.prep < 1.0:
        raise ConfigError(f"--prep (the t where the physical segment starts) must be in (0, 1), got {args.prep}")
    if args.points < 2:
        raise ConfigError(f"--points must be at least 2, got {args.points}")
    for flag, value, low in (("--particles", args.particles, 2), ("--replicas", args.replicas, 2)):
        if value < low:
            raise ConfigError(f"{flag} must be at least {low}, got {value}")
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {args.steps}")
    if args.fourier_mass != 1.0 and args.mcmc != "fhmc":
        raise ConfigError(f"--fourier-mass is the mass of --mcmc fhmc moves; --mcmc is {args.mcmc}")
    if args.pool is None:
        args.pool = pool_by_default(args.estimate)
    if args.pool and args.estimate == "before":
        raise ConfigError("--pool combines the configurations after the moves: --estimate moves or after, or --no-pool")
    if getattr(args, "dense", None) is not None and not args.dense[2] >= 1:
        raise ConfigError(f"--dense M2_A M2_B FACTOR needs FACTOR >= 1 (more steps there), got {args.dense[2]}")


@register("scan-lattice", "a lattice m2 scan by SMC against one HMC run per point, at equal errors", config=False)(
    _arguments
)
def run(args) -> dict:
    import pikflow.lattice as pl

    check_arguments(args)
    progress = not args.quiet
    res = {"settings": {k: v for k, v in vars(args).items() if k not in ("func",)}, "sizes": {}}
    for L in args.L:
        path = scan_path(L, args)
        scan = pl.scan_lattice(
            path, points=args.points, t_range=(args.prep, 1.0), steps=scan_steps(args), particles=args.particles,
            replicas=args.replicas, mcmc=args.mcmc, mcmc_steps=args.mcmc_steps, seed=args.seed, progress=progress,
            fourier_mass=args.fourier_mass, estimate=args.estimate, pool=args.pool,
            mcmc_every=args.mcmc_every, leapfrog_steps=args.leapfrog, prep_steps=args.prep_steps,
            transport=args.transport, flow_basis=FLOW_BASES[args.flow_basis], flow_collocation=args.flow_collocation,
        )  # fmt: skip
        label = f"{L}x{L}"
        rows = scan.points[label]
        picks = np.unique(np.round(np.linspace(0, len(rows) - 1, args.check)).astype(int))
        checks = []
        for i in picks:
            row = rows[i]
            h = _hmc_point(path, row["t"], args, args.seed + 100 + int(i))
            entry = {"t": row["t"], "m2": row["couplings"]["m2"], "hmc": h, "scan": {}, "pull": {}, "hmc_cost": {}}
            for k in OBSERVABLES:
                s, r = row[k], h["observables"][k]
                entry["scan"][k] = s.to_dict()
                entry["pull"][k] = (s.value - r["value"]) / math.hypot(s.error, r["error"])
                entry["hmc_cost"][k] = h["seconds"] * (r["error"] / s.error) ** 2 if s.error > 0 else math.nan
            checks.append(entry)
        scan_secs = scan.seconds[label]
        compile_secs = scan.runs[label].settings["compile_seconds"]
        hmc_secs = {
            k: args.points * float(np.mean([c["hmc_cost"][k] for c in checks])) if checks else math.nan
            for k in OBSERVABLES
        }
        fix = replica_cost_correction(args.replicas)  # the scan's errors are replica errors: E[1/s^2] > 1/sigma^2
        ratio = {k: v / scan_secs * fix["mean"] for k, v in hmc_secs.items()}
        res["sizes"][label] = {
            "scan_seconds": scan_secs,
            "flow_solve_seconds": scan.settings.get("solve_seconds", {}).get(label, 0.0),
            "n_steps": scan.settings["n_steps"],
            "final_ess": scan.runs[label].final_ess,
            "min_ess": float(scan.runs[label].ess.min()),
            "checks": checks,
            "scan_compile_seconds": compile_secs,
            "hmc_over_scan_at_equal_errors": ratio,
            "hmc_over_scan_compiled": {k: v / (scan_secs - compile_secs) * fix["mean"] for k, v in hmc_secs.items()},
            "replica_cost_correction": fix,
            "max_abs_pull": max((abs(p) for c in checks for p in c["pull"].values()), default=math.nan),
            "summary": scan.summary()["scan"][label],
            "free_energy_check": scan.free_energy_check(label),
        }
        if (args.chains if args.batched_chains is None else args.batched_chains) > 0:
            b = _hmc_batched(path, rows, args, args.seed + 300)
            b["hmc_over_scan_at_equal_errors"] = {
                k: v / scan_secs * fix["mean"] for k, v in b["hmc_seconds_at_equal_errors"].items()
            }
            b["hmc_over_scan_compiled"] = {
                k: v / (scan_secs - compile_secs) * fix["mean"] for k, v in b["hmc_seconds_at_equal_errors"].items()
            }
            # a typical point: the scan's sum is dominated by the few points near m2_c, where HMC's errors are large
            per_point = {k: float(np.median([c["hmc_seconds"][k] for c in b["points"]])) for k in OBSERVABLES}
            b["hmc_over_scan_median_point"] = {
                k: per_point[k] * args.points / scan_secs * fix["median"] for k in OBSERVABLES
            }
            if b["pilot"] is not None:  # the pilot is HMC's tuning: the ratios with it counted
                b["hmc_over_scan_with_pilot"] = with_pilot(b, scan_secs, fix["mean"])
            b.update(break_even(b, scan_secs, args.particles * args.replicas, fix["mean"]))
            res["sizes"][label]["hmc_batched"] = b
        if args.ti_nodes > 0:
            res["sizes"][label]["free_energy"] = _free_energy(path, scan.runs[label], args)
    res["crossings"] = _crossings(res, args)
    print_scan(res)
    write_json(args, res)
    return res


def with_pilot(b: dict, scan_seconds: float, fix: float) -> dict:
    """HMC / scan at equal errors with the pilot's seconds counted: ``(hmc_seconds * fix + pilot) / scan_seconds``.

    ``fix`` (:func:`._common.replica_cost_correction`'s ``mean``) corrects the equal-error seconds for the bias of the
    scan's replica variances; the pilot's time is a fixed cost, which it does not scale.
    """
    return {k: (v * fix + b["pilot"]["seconds"]) / scan_seconds for k, v in b["hmc_seconds_at_equal_errors"].items()}


def break_even(b: dict, scan_seconds: float, particles: int, fix: float) -> dict:
    """The scan's cost and HMC's at equal errors, both in HMC trajectories per scan particle.

    ``trajectory_seconds``: one trajectory of one chain in the batched HMC run (with a length per point, the mean over
    its trajectories of 10 to 40 leapfrog steps in batches of their own widths). ``break_even_trajectories``
    (per observable): the trajectories the HMC scan needs at equal errors, summed over the points, per scan
    particle (corrected for the replica errors): a scan that spends more per particle on moves, transport and
    resampling than this is dearer than HMC, and a scan 10x cheaper may spend a tenth of it.
    ``scan_trajectories``: what the scan spent, its seconds in the same unit. Their ratio is
    ``hmc_over_scan_at_equal_errors``.
    """
    # files written before the per-point lengths have no total: every point then had the same chains
    n_traj = b.get("trajectories", len(b["points"]) * b["chains_per_point"] * b["trajectories_per_chain"])
    per = b["sample_seconds"] / n_traj
    return {
        "trajectory_seconds": per,
        "break_even_trajectories": {k: v * fix / per / particles for k, v in b["hmc_seconds_at_equal_errors"].items()},
        "scan_trajectories": scan_seconds / per / particles,
    }


def _free_energy(path, run, args) -> dict:
    """The scan's log Z_1 - log Z_0 against HMC thermodynamic integration over both linear segments."""
    from ..baselines import thermodynamic_integration

    t0 = time.perf_counter()
    parts = [
        thermodynamic_integration(
            path,
            nodes=args.ti_nodes,
            start=a,
            end=b,
            n=args.ti_n,
            chains=args.chains,
            thermalisation=100,
            step_size="auto",
            seed=args.seed + 500 + 50 * i,
            batched=True,
            init=_ti_starts(path, args),
        )  # fmt: skip
        for i, (a, b) in enumerate(((0.0, args.prep), (args.prep, 1.0)))
    ]
    ti_value = sum(p.log_z_ratio.value for p in parts)
    ti_error = math.sqrt(sum(p.log_z_ratio.error**2 for p in parts))
    gain = run.log_z[-1] - run.log_z[0]
    scan_value, scan_error = float(np.mean(gain)), float(np.std(gain, ddof=1) / math.sqrt(len(gain)))
    return {
        "scan": {"value": scan_value, "error": scan_error},
        "hmc_ti": {"value": ti_value, "error": ti_error},
        "pull": (scan_value - ti_value) / math.hypot(scan_error, ti_error),
        "hmc_ti_seconds": time.perf_counter() - t0,
        "hmc_ti_sample_seconds": sum(p.seconds for p in parts),
    }


def _ti_starts(path, args):
    """Ordered starts (``--hmc-start ordered``) of a thermodynamic-integration node at ``t``, or None."""
    if getattr(args, "hmc_start", "random") != "ordered":
        return None
    return lambda t: ordered_start(path, t, args.chains)


def _crossings(res, args) -> list:
    """Binder crossings of consecutive sizes from the per-size summaries (same t grid)."""
    import pikflow.lattice as pl

    points = {}
    for label, v in res["sizes"].items():
        points[label] = [
            {"t": r["t"], "couplings": r["couplings"], "binder": _est(r["binder"]), "chi": _est(r["chi"])}
            for r in v["summary"]
        ]
    scan = pl.LatticeScan(points, [], {}, {}, {})
    return pl.binder_crossings(scan, scan_path(args.L[0], args))


def _est(d):
    from .. import Estimate

    return Estimate(d["value"], d["error"])
