"""Reweighted <|m|>, chi, U of 16x16 (-2, 2) flows from 40 000 samples against the long HMC run (the lattice guide,
"Ridge terms"): the continuous log-density of 2 RK4 steps biases the weights beyond the errors of so many samples.

Usage: ``python bias_check.py OUT.jsonl`` (from this folder; reads ``../long_hmc_16x16_m2-2.json``).
"""

import json
import sys


def main(argv):
    import jax
    import numpy as np

    import pikflow.lattice as pl

    ref = json.load(open("../long_hmc_16x16_m2-2.json"))["observables"]
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (16, 16)), {"m2": -2.0, "lam": 2.0})
    runs = [("separable+ridges", 2, s) for s in (0, 1, 2)] + [("separable", 2, s) for s in (0, 1, 2)]
    runs += [("separable+ridges", 4, 1), ("separable+ridges", 8, 1), ("separable", 8, 1)]
    for basis, steps, seed in runs:
        flow = pl.fit_lattice(target, basis=basis, steps=steps, schedule=3.0, seed=seed, progress=False)
        s = flow.sample(40000, seed=seed + 50, progress=False)
        rw = {k: s.observable(k) for k in ("abs_m", "chi", "binder")}
        err = flow.log_density_error(jax.random.PRNGKey(5), 16)
        pulls = {k: float((v.value - ref[k]["value"]) / np.hypot(v.error, ref[k]["error"])) for k, v in rw.items()}
        r = {
            "basis": basis, "steps": steps, "seed": seed, "ess": float(s.ess),
            "values": {k: [float(v.value), float(v.error)] for k, v in rw.items()},
            "pulls_vs_long_hmc": pulls,
            "log_q_error_rms": float((sum(float(e) ** 2 for e in err) / len(err)) ** 0.5),
        }  # fmt: skip
        print(json.dumps(r), flush=True)
        with open(argv[0], "a") as f:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
