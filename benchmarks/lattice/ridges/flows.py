"""ESS/N of fit_lattice flows with and without ridge terms (issue #15/#16's point 32x32 (-2, 2); 16x16 too).

Usage: ``python flows.py L m2 lam PRESET STEPS SCHEDULE SEED OUT.jsonl`` (e.g. ``32 -2 2 lean+ridges 2 3 0``).
Appends one JSON line: the fit's set-up seconds, the ESS/N of two draws of 4000 samples, the kept base,
the hole check (``target_ess``), the basis size and the layers' relative residuals of eq. 34.
"""

import json
import sys
import time


def main(argv):
    import pikflow.lattice as pl

    L, m2, lam, preset, steps, schedule, seed, out = argv
    L, steps, seed = int(L), int(steps), int(seed)
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": float(m2), "lam": float(lam)})
    t0 = time.perf_counter()
    flow = pl.fit_lattice(target, basis=preset, steps=steps, schedule=float(schedule), seed=seed, progress=False)
    setup = time.perf_counter() - t0
    ess = [float(flow.sample(4000, seed=seed + 100 + s, keep_fields=False).ess) for s in range(2)]
    r = {
        "L": L, "m2": float(m2), "lam": float(lam), "basis": preset, "steps": steps, "schedule": float(schedule),
        "seed": seed, "setup": round(setup, 1), "ess": ess, "base": flow.info.get("base"),
        "target_ess": flow.info.get("target_ess"), "n_basis": int(flow.basis.n),
        "residuals": [round(float(x.residual), 4) for x in flow.reports],
    }  # fmt: skip
    print(json.dumps(r), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
