"""Ridge terms with 24 more directions, psi_a +- psi_b +- m (the lattice guide, "Ridge terms", more directions).

Usage: ``python triples.py L m2 lam STEPS SCHEDULE SEED OUT.json`` (e.g. ``32 -2 2 2 3 0``): fits the
``"lean+ridges"`` flow and the same with the triple directions added, then 3 alternating draws of 4000 samples
each: ESS/N, seconds, the hole check and the layers' residuals.
"""

import itertools
import json
import sys
import time

import numpy as np


def triple_directions(n: int) -> np.ndarray:
    """psi_a +- psi_b +- m for every pair of scales a < b, normalised like the pair directions."""
    rows = []
    for a, b in itertools.combinations(range(n), 2):
        for s1, s2 in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            r = np.zeros(n + 1)
            r[[a, b, n]] = (1, s1, s2)
            rows.append(r * np.sqrt(2 / 3))
    return np.array(rows)


def main(argv):
    import pikflow.lattice as pl
    from pikflow.lattice import LatticeBasis, SmoothedRidges
    from pikflow.lattice._basis_ridge import pair_directions

    L, m2, lam, steps, schedule, seed, out = argv
    L, steps, seed = int(L), int(steps), int(seed)

    def with_triples(path, base):
        fams = []
        for f in pl.preset_basis("lean+ridges", path, base).families:
            if isinstance(f, SmoothedRidges):
                W = np.vstack([pair_directions(len(f.scales)), triple_directions(len(f.scales))])
                K = np.asarray(base.precision)
                f = SmoothedRidges(f.lattice, f.scales, precision=K, directions=W, smoothing=f.smoothing)
            fams.append(f)
        return LatticeBasis(fams)

    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": float(m2), "lam": float(lam)})
    flows, res = {}, {}
    for name, basis in (("lean+ridges", "lean+ridges"), ("lean+ridges+triples", with_triples)):
        t0 = time.perf_counter()
        flow = pl.fit_lattice(target, basis=basis, steps=steps, schedule=float(schedule), seed=seed, progress=False)
        flows[name] = flow
        flow.sample(500, seed=1, keep_fields=False)  # compile
        res[name] = {
            "setup": time.perf_counter() - t0, "n_basis": int(flow.basis.n), "ess": [], "secs": [],
            "base": flow.info.get("base"), "target_ess": flow.info.get("target_ess"),
            "residuals": [round(float(x.residual), 4) for x in flow.reports],
        }  # fmt: skip
    for rep in range(3):
        for name, flow in flows.items():
            t0 = time.perf_counter()
            s = flow.sample(4000, seed=seed + 100 + rep, keep_fields=False)
            res[name]["secs"].append(time.perf_counter() - t0)
            res[name]["ess"].append(float(s.ess))
    for name, r in res.items():
        print(name, json.dumps(r), flush=True)
    settings = {"L": L, "m2": float(m2), "lam": float(lam), "steps": steps, "schedule": float(schedule), "seed": seed}
    with open(out, "w") as f:
        json.dump({**settings, "flows": res}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
