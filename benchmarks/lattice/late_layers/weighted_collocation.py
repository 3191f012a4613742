"""Importance-weighted collocation: fit each layer under p_t instead of the flow's own q_t (issue #15).

``solve_lattice`` fits layer t on the flow's own pushed collocation configurations, distributed as
q_t. ``weighted_collocation.patch`` (apply it to a scratch clone: ``git apply``) carries log q_t along
that push and weights every row of eq. 34 by (p_t / q_t)**alpha (normalised), ``alpha`` from the
environment variable ``PIK_WEIGHT_ALPHA`` (0: the released solve). This script fits the lean flow
with 3 steps and prints the ESS/N of 4000 samples (seeds 1 and 2) and the layers' relative residuals.
Usage: ``PIK_WEIGHT_ALPHA=0.5 python weighted_collocation.py L m2 lam OUT.jsonl``.
"""

import json
import os
import sys
import time


def main(argv):
    import pikflow.lattice as pl

    L, m2, lam, out = int(argv[0]), float(argv[1]), float(argv[2]), argv[3]
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})
    t0 = time.perf_counter()
    flow = pl.fit_lattice(target, basis="lean", steps=3, seed=0, progress=False)
    setup = time.perf_counter() - t0
    r = {
        "L": L, "m2": m2, "lam": lam, "alpha": float(os.environ.get("PIK_WEIGHT_ALPHA", "0")), "steps": 3,
        "ess": [float(flow.sample(4000, seed=s, keep_fields=False).ess) for s in (1, 2)], "setup": setup,
        "layer_t": [float(x.t) for x in flow.reports], "residuals": [float(x.residual) for x in flow.reports],
    }  # fmt: skip
    print(json.dumps(r), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
