r"""``pikflow bench lattice-solvers``: the layer solvers and the basis enrichment on lattice flows (issue #13).

For each lattice size, one reference HMC run at the target fits the matched Gaussian base
(:func:`pikflow.lattice.matched_base`); the default basis (:func:`pikflow.lattice.default_basis`,
taming width 10) is then solved with each layer solver of :func:`pikflow.solvers.solve_system`
(direct SVD, Levenberg-Marquardt, Adam) and, from the direct flow, enriched with
:func:`pikflow.refine.enrich_lattice` (the ``[refine]`` of a lattice run, scored with the HMC
reference). Each row: ESS/N of fresh samples, ESS/N seen from the HMC configurations
(:meth:`LatticeFlow.target_ess`), the largest and mean relative layer residual of eq. 34, and
the wall time of the solve (compilation included), each over ``--repeats`` collocation seeds
(median, min, max).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from . import register


def _spread(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


def _score(flow, reference, n: int, seed: int) -> dict:
    import jax

    s = flow.sample(jax.random.PRNGKey(seed + 101), n)
    res = flow.residuals()
    return {
        "ess": float(s.ess()),
        "target_ess": float(flow.target_ess(reference, s)),
        "max_residual": float(res.max()),
        "mean_residual": float(res.mean()),
    }


def measure(shape, m2: float, lam: float, *, repeats: int = 2, n: int = 4000, progress: bool = False) -> dict:
    """The rows of one lattice size (see the module docstring)."""
    import jax

    from .. import AdamSolver, LevenbergMarquardtSolver
    from ..lattice import (
        PHI4_DENSITY,
        LatticeAction,
        LatticePath,
        default_basis,
        enrich_lattice,
        hmc,
        matched_base,
        solve_lattice,
    )

    action = LatticeAction(PHI4_DENSITY, list(shape))
    target = LatticePath(action, {"m2": m2, "lam": lam})
    fields, _ = hmc(target, jax.random.PRNGKey(0), 4000, n_chains=8, step="auto", progress=progress)
    reference = np.asarray(fields).reshape(-1, *shape)
    base = matched_base(reference, symmetry=target.symmetry())
    path = LatticePath.matched(action, {"m2": m2, "lam": lam}, np.asarray(base.precision))
    basis = default_basis(path, base, tame=10.0)
    ref = reference[:: max(1, len(reference) // 2000)]
    solvers = {"direct": None, "levenberg-marquardt": LevenbergMarquardtSolver(), "adam": AdamSolver()}
    rows: dict[str, list] = {name: [] for name in [*solvers, "direct + refine"]}
    for rep in range(repeats):
        for name, solver in solvers.items():
            t0 = time.perf_counter()
            flow = solve_lattice(
                path, basis, base=base, steps=10, n_collocation=1000, seed=rep, solver=solver, progress=progress
            )
            row = {"seconds": time.perf_counter() - t0, **_score(flow, ref, n, rep)}
            rows[name].append(row)
            print(f"  {shape} seed {rep} {name}: {row}", file=sys.stderr, flush=True)
            if name == "direct":
                t0 = time.perf_counter()
                new, steps = enrich_lattice(flow, tol=1e-3, reference=ref, select=2000, seed=rep, progress=progress)
                extra = {"kept": [s.family for s in steps if s.kept], "tried": len(steps)}
                row = {"seconds": row["seconds"] + time.perf_counter() - t0, **_score(new, ref, n, rep), **extra}
                rows["direct + refine"].append(row)
                print(f"  {shape} seed {rep} direct + refine: {row}", file=sys.stderr, flush=True)
    out = {}
    for name, rs in rows.items():
        out[name] = {
            k: _spread([r[k] for r in rs]) for k in ("ess", "target_ess", "max_residual", "mean_residual", "seconds")
        }
        out[name]["raw"] = rs
    return out


def _add(p) -> None:
    p.add_argument("--sizes", default="8,16", help="lattice sizes L of L x L (comma-separated; default 8,16)")
    p.add_argument("--m2", type=float, default=-1.0, help="target m2 (default -1)")
    p.add_argument("--lam", type=float, default=1.0, help="target lam (default 1)")
    p.add_argument("--repeats", type=int, default=2, help="collocation seeds per row (default 2)")


@register(
    "lattice-solvers", "lattice layer solvers (direct, LM, Adam) and [refine]: ESS/N, residual, time", config=False
)(_add)
def run(args) -> dict:
    import json

    results = {}
    print("| lattice | solver | ESS/N | ESS/N (HMC side) | max residual | mean residual | solve time [s] |")
    print("|---|---|---|---|---|---|---|")
    for L in (int(x) for x in args.sizes.split(",")):
        res = measure((L, L), args.m2, args.lam, repeats=args.repeats, progress=not args.quiet)
        results[f"{L}x{L}"] = res
        for name, r in res.items():
            cells = [
                f"{r[k]['median']:.3g} [{r[k]['min']:.3g}, {r[k]['max']:.3g}]"
                for k in ("ess", "target_ess", "max_residual", "mean_residual", "seconds")
            ]
            print(f"| {L}x{L} ({args.m2:g}, {args.lam:g}) | {name} | " + " | ".join(cells) + " |", flush=True)
    if args.json_file:
        with open(args.json_file, "w") as fh:
            json.dump(results, fh, indent=2)
    return results
