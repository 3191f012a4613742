"""Resolve the 3-scale basis's 0.94x against the separable preset with several IMH chains (issue #20).

python benchmarks/lattice/reduced_basis/resolve_s3.py OUT.json ITERS CHAINS

As ``reduced.py`` (16x16 (-2, 2), 2 RK4 steps on t**3, fit_lattice with seed 0, polished ITERS Adam steps) for the
variants ``separable`` and ``s3`` (3 scales, the two-point term kept), then per flow CHAINS independent IMH chains of
8000 draws (seeds 100, 101, ...): ESS/N and tau_int of |m| per chain, their mean and its standard error; ms a sample
timed alternately (5 repeats of 2000 draws); the cost per independent sample 2 tau ms, and its ratio s3 / separable
with an error from the chains' spread.
"""

import json
import sys
import time

import jax
import numpy as np
from reduced import builder, tau_abs_m

import pikflow.lattice as pl
from pikflow.refine import polish


def main(out, iters, chains):
    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (16, 16)), {"m2": -2.0, "lam": 2.0})
    res, flows = {}, {}
    for name in ("separable", "s3"):
        flow = pl.fit_lattice(path, basis=builder(name), steps=2, schedule=3.0, seed=0, progress=False)
        rec = polish(flow, iterations=iters, progress=False)
        flows[name] = rec.flow
        ess, tau = [], []
        for c in range(chains):
            s = rec.flow.sample(jax.random.PRNGKey(100 + c), 8000)
            ess.append(float(s.ess()))
            tau.append(tau_abs_m(s, jax.random.PRNGKey(200 + c), 256))
        res[name] = {
            "kept": rec.kept,
            "n_basis": int(flow.basis.n),
            "ess": ess,
            "tau_int_abs_m": tau,
            "tau_mean": float(np.mean(tau)),
            "tau_error": float(np.std(tau, ddof=1) / np.sqrt(chains)),
        }
        print(name, json.dumps(res[name]), flush=True)
    key = jax.random.PRNGKey(11)
    times = {n: [] for n in flows}
    for f in flows.values():
        f.sample(key, 2000)
    for _ in range(5):
        for n, f in flows.items():
            t0 = time.perf_counter()
            f.sample(key, 2000)
            times[n].append((time.perf_counter() - t0) / 2000 * 1e3)
    for n, t in times.items():
        res[n]["ms"] = t
        res[n]["ms_median"] = float(np.median(t))
    a, b = res["s3"], res["separable"]
    ratio = (a["tau_mean"] * a["ms_median"]) / (b["tau_mean"] * b["ms_median"])
    rel = np.hypot(a["tau_error"] / a["tau_mean"], b["tau_error"] / b["tau_mean"])
    res["s3_over_separable_per_independent_sample"] = {"value": float(ratio), "error": float(ratio * rel)}
    print(json.dumps(res["s3_over_separable_per_independent_sample"]), flush=True)
    json.dump(res, open(out, "w"), indent=1)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
