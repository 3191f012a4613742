r"""``pikflow bench smc``: SMC with PIK transport against plain SMC, the flow with IMH, and HMC, on one lattice point.

For the lattice action of eq. 31 at ``(m2, lam)`` on ``L^d`` sites, one run measures four
samplers on the same target:

* **PIK-SMC**: :func:`pikflow.samplers.smc` on the flow of :func:`pikflow.lattice.fit_lattice`
  (``--steps`` RK4 steps, so ``--steps`` annealing steps), MALA moves, replicas for errors;
* **plain SMC**: the same run with ``transport="none"`` (same path, steps and moves);
* **flow + IMH**: ``--n`` flow samples and the independence Metropolis chain (Gamma-method errors);
* **HMC**: :func:`pikflow.lattice.hmc` (tuned step), Gamma-method errors.

The cost metric at equal errors is :math:`\text{error}^2\times\text{seconds}` of each
observable (lower is better; it is independent of the run length for a sampler whose
error falls like :math:`1/\sqrt{\text{cost}}`). Ratios are against PIK-SMC. The flow's set-up
(base HMC and solve) is reported separately. Every sampler's seconds exclude compilation
(each is timed on a second, identically shaped call).
"""

from __future__ import annotations

import math
import time

import numpy as np

from . import register
from ._common import write_json

OBSERVABLES = ("abs_m", "chi", "binder")


def _arguments(p):
    p.add_argument("--L", type=int, default=8, help="lattice extent per axis (default 8)")
    p.add_argument("--dim", type=int, default=2, help="lattice dimension (default 2)")
    p.add_argument("--m2", type=float, default=-1.0, help="mass parameter m2 of eq. 31 (default -1)")
    p.add_argument("--lam", type=float, default=1.0, help="quartic coupling lam of eq. 31 (default 1)")
    p.add_argument("--particles", type=int, default=1000, help="SMC particles per replica (default 1000)")
    p.add_argument("--replicas", type=int, default=4, help="independent SMC replicas (default 4)")
    p.add_argument("--steps", type=int, default=10, help="RK4 / annealing steps (default 10)")
    p.add_argument("--mcmc-steps", type=int, default=2, help="MALA moves per annealing step (default 2)")
    p.add_argument("--n", type=int, default=10_000, help="flow samples for flow + IMH (default 10000)")
    p.add_argument("--reference", type=int, default=20_000, help="HMC trajectories (default 20000)")
    p.add_argument("--chains", type=int, default=16, help="HMC chains (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")


def _timed(fn):
    fn()  # compile
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


@register("smc", "SMC with PIK transport vs plain SMC, flow + IMH and HMC on a lattice point (error^2 x seconds)")(
    _arguments
)
def run(args) -> dict:
    import jax

    import pikflow.lattice as pl

    from ..samplers import smc

    shape = [args.L] * args.dim
    volume = int(np.prod(shape))
    action = pl.LatticeAction(pl.PHI4_DENSITY, shape)
    target = pl.LatticePath(action, {"m2": args.m2, "lam": args.lam})
    progress = not args.quiet
    t0 = time.perf_counter()
    flow = pl.fit_lattice(target, steps=args.steps, seed=args.seed, progress=progress)
    setup = time.perf_counter() - t0
    moments = pl.magnetisation_moments()
    res = {"lattice": shape, "couplings": {"m2": args.m2, "lam": args.lam}, "setup_seconds": setup, "samplers": {}}

    for name, transport in (("pik_smc", "pik"), ("plain_smc", "none")):
        run_smc = lambda transport=transport: smc(  # noqa: E731
            flow, args.particles, seed=args.seed, transport=transport, replicas=args.replicas,
            mcmc_steps=args.mcmc_steps, observables=moments, progress=False,
        )  # fmt: skip
        r, secs = _timed(run_smc)
        res["samplers"][name] = {
            "seconds": secs,
            "ess": r.final_ess,
            "resamplings": r.n_resampled,
            "acceptance": float(np.nanmean(r.acceptance[1:])),
            "log_z": r.log_z_estimate().to_dict(),
            "observables": {k: v.to_dict() for k, v in pl.smc_observables(r, volume).items()},
        }

    key = jax.random.PRNGKey(args.seed + 1)
    (samples, secs) = _timed(lambda: flow.sample(key, args.n))
    t0 = time.perf_counter()
    obs, acc = pl.flow_observables(samples, volume, jax.random.PRNGKey(args.seed + 2))
    secs += time.perf_counter() - t0
    res["samplers"]["flow_imh"] = {
        "seconds": secs,
        "ess": float(samples.ess()),
        "acceptance": float(acc),
        "observables": {k: v.to_dict() for k, v in obs.items()},
    }

    per = max(args.reference // args.chains, 20)
    ((fields, hmc_acc), secs) = _timed(
        lambda: pl.hmc(target, jax.random.PRNGKey(args.seed + 4), per * args.chains, n_chains=args.chains, step="auto")
    )
    M = fields.reshape(fields.shape[0], fields.shape[1], -1).sum(-1)
    hmc_obs = pl.chain_observables(M.reshape(-1), volume)
    res["samplers"]["hmc"] = {
        "seconds": secs,
        "acceptance": float(hmc_acc),
        "observables": {k: v.to_dict() for k, v in hmc_obs.items()},
    }
    _compare(res)
    _print(res)
    write_json(args, res)
    return res


def _compare(res):
    """error^2 x seconds per observable, ratios against PIK-SMC, pulls against HMC."""
    s = res["samplers"]
    ref = s["hmc"]["observables"]
    for v in s.values():
        v["cost"] = {k: o["error"] ** 2 * v["seconds"] for k, o in v["observables"].items()}
        v["pull_vs_hmc"] = {
            k: (o["value"] - ref[k]["value"]) / math.hypot(o["error"], ref[k]["error"])
            for k, o in v["observables"].items()
        }
    base = s["pik_smc"]["cost"]
    for v in s.values():
        v["cost_over_pik_smc"] = {k: v["cost"][k] / base[k] if base[k] > 0 else math.nan for k in v["cost"]}


def _print(res):
    lat = "x".join(map(str, res["lattice"]))
    c = res["couplings"]
    print(f"phi^4 on {lat}, (m2, lam) = ({c['m2']}, {c['lam']}); flow set-up {res['setup_seconds']:.1f} s")
    print()
    names = ", ".join(OBSERVABLES)
    print("| sampler | seconds | ESS/N | " + " | ".join(OBSERVABLES) + f" | cost / PIK-SMC ({names}) |")
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
    print("[x] = pull against HMC in combined errors; cost = error^2 x seconds (lower is better)")
