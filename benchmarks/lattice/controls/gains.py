"""Control variates from the exact base: how much smaller the reweighted estimates' variances get.

For each point (L, m2, lam, RK4 steps, clock power, samples) a lean flow is fitted (``fit_lattice``) and two
independent sample sets are drawn; for <|m|>, chi and U the plain reweighted estimate and the controlled one
(``samples.observable(name, controls=True)``) of the same samples are printed with the ratio of their
variances (error^2), one JSON line per point and draw to the file given (default controls.jsonl).

Run: ``python benchmarks/lattice/controls/gains.py [OUT.jsonl]`` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import json
import sys
import time

import pikflow.lattice as pl

POINTS = [  # L, m2, lam, steps, schedule, samples
    (16, -2.0, 2.0, 2, 3.0, 10_000),
    (16, -1.0, 1.0, 2, 3.0, 10_000),
    (32, -2.0, 2.0, 3, 2.0, 10_000),
    (64, -1.0, 1.0, 3, 2.0, 2_000),
]

out = sys.argv[1] if len(sys.argv) > 1 else "controls.jsonl"
for L, m2, lam, steps, schedule, n in POINTS:
    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})
    t0 = time.perf_counter()
    flow = pl.fit_lattice(path, basis="lean", steps=steps, schedule=schedule, seed=0, progress=False)
    setup = time.perf_counter() - t0
    for seed in (1, 2):
        s = flow.sample(n, seed=seed, keep_fields=False)
        row = {"L": L, "m2": m2, "lam": lam, "steps": steps, "schedule": schedule, "n": n, "seed": seed,
               "ess": float(s.ess()), "setup_seconds": setup, "base_m0": float(flow.base.m0)}  # fmt: skip
        for name in ("abs_m", "chi", "binder"):
            t0 = time.perf_counter()
            a, b = s.observable(name), s.observable(name, controls=True)
            row[name] = {"plain": a.to_dict(), "controlled": b.to_dict(), "variance_ratio": (a.error / b.error) ** 2,
                         "seconds": time.perf_counter() - t0}  # fmt: skip
        print(json.dumps(row), flush=True)
        with open(out, "a") as f:
            f.write(json.dumps(row) + "\n")
