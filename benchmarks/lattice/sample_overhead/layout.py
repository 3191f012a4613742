"""Both samplers on one process (XLA's threads on every core) and pinned one process per core (issue #20).

python benchmarks/lattice/sample_overhead/layout.py OUT.json LABEL

At 16x16 (m2, lam) = (-2, 2): the solved separable flow (2 RK4 steps on t**3, seed 0), ms a sample of
``flow.sample`` (2000 draws), and HMC's µs a trajectory (256 chains, 30 leapfrog steps of 0.1, 32 trajectories
a chain), 3 alternated repeats. Run it plainly, under ``taskset -c 0``, and as two processes pinned to cores 0
and 1 at once; each run adds its LABEL's entry to OUT.json. JSON ``layout_16x16_m2-2.json``.
"""

import json
import os
import sys
import time

import jax

import pikflow.lattice as pl


def main(out, label):
    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (16, 16)), {"m2": -2.0, "lam": 2.0})
    flow = pl.fit_lattice(path, basis="separable", steps=2, schedule=3.0, seed=0, progress=False)
    key = jax.random.PRNGKey(11)

    def hmc():
        pl.hmc(path, jax.random.PRNGKey(12), 8192, n_chains=256, step=0.1, n_therm=0, n_leapfrog=30,
               keep="magnetisation")  # fmt: skip

    flow.sample(key, 2000)
    hmc()
    res = {"cores": sorted(os.sched_getaffinity(0)), "flow_ms_a_sample": [], "hmc_us_a_trajectory": []}
    for _ in range(3):
        t0 = time.perf_counter()
        flow.sample(key, 2000)
        res["flow_ms_a_sample"].append((time.perf_counter() - t0) / 2000 * 1e3)
        t0 = time.perf_counter()
        hmc()
        res["hmc_us_a_trajectory"].append((time.perf_counter() - t0) / 8192 * 1e6)
    pairs = zip(res["flow_ms_a_sample"], res["hmc_us_a_trajectory"], strict=True)
    res["trajectories_a_sample"] = [f * 1e3 / h for f, h in pairs]
    print(label, json.dumps(res), flush=True)
    try:
        with open(out) as f:
            data = json.load(f)
    except FileNotFoundError:
        data = {}
    data[label] = res
    with open(out, "w") as f:
        json.dump(data, f, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:3])
