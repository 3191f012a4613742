"""A long HMC reference at a 2-D phi^4 point (ordered start): <|m|>, chi, U with Gamma-method errors.

Usage: ``python benchmarks/lattice/long_hmc.py L M2 LAM N SEED OUT.json``: 8 independent runs of N/8 trajectories
(16 chains each, step adapted; 8 runs keep the stored configurations within memory), combined by inverse variance;
``spread_error`` is the error from the 8 runs' scatter, a check of the Gamma-method one.
"""

import json
import sys
import time

import jax
import numpy as np

import pikflow.lattice as pl

L, m2, lam, n, seed = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
out_path = sys.argv[6]
action = pl.LatticeAction(pl.PHI4_DENSITY, [L, L])
path = pl.LatticePath(action, {"m2": m2, "lam": lam})
t0 = time.perf_counter()
reps = []
for r in range(8):  # independent runs of n/8 (memory), combined by inverse variance
    fields, acc = pl.hmc(path, jax.random.PRNGKey(seed + r), n // 8, n_chains=16, step="auto", start="ordered")
    M = np.asarray(fields).sum(axis=(-2, -1)).reshape(-1)  # the chains concatenated
    del fields
    reps.append(pl.chain_observables(M, L * L))
    print(r, {k: (float(v.value), float(v.error)) for k, v in reps[-1].items()}, flush=True)
comb = {}
for k in reps[0]:
    v = np.array([float(o[k].value) for o in reps])
    e = np.array([float(o[k].error) for o in reps])
    w = 1 / e**2
    comb[k] = {
        "value": float(w @ v / w.sum()),
        "error": float(w.sum() ** -0.5),
        "spread_error": float(v.std(ddof=1) / np.sqrt(len(v))),
    }
out = {"L": L, "m2": m2, "lam": lam, "n": n, "seed": seed, "seconds": time.perf_counter() - t0, "observables": comb}
print(json.dumps(out, indent=1))
with open(out_path, "w") as f:
    json.dump(out, f, indent=1)
