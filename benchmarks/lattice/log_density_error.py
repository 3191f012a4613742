"""The continuous log-density's error against the applied RK4 map (``LatticeFlow.log_density_error``) by steps.

Usage: ``python log_density_error.py L m2 lam OUT.json 1,2``: the lean flow of ``fit_lattice`` with each
number of steps, 8 samples, their mean, spread, rms and largest error.
"""

import json
import sys
import time


def main(argv):
    import jax
    import numpy as np

    import pikflow.lattice as pl

    L, m2, lam, out = int(argv[0]), float(argv[1]), float(argv[2]), argv[3]
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})
    res = []
    for steps in [int(s) for s in argv[4].split(",")]:
        flow = pl.fit_lattice(target, basis="lean", steps=steps, seed=0, progress=False)
        t0 = time.perf_counter()
        err = flow.log_density_error(jax.random.PRNGKey(5), 8)
        res.append({
            "L": L, "m2": m2, "lam": lam, "steps": steps, "rms": float(np.sqrt(np.mean(err**2))),
            "max": float(np.max(np.abs(err))), "mean": float(np.mean(err)), "sd": float(np.std(err)),
            "seconds": time.perf_counter() - t0,
        })  # fmt: skip
        print(json.dumps(res[-1]), flush=True)
        with open(out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
