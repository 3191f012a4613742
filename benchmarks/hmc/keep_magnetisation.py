"""HMC keeping every configuration against keeping only the magnetisation (pikflow.lattice.hmc(keep=...)).

``python benchmarks/hmc/keep_magnetisation.py L N [M2 LAM]``: 16 chains, N trajectories in all, step adapted, one
compiling call of each first, then 3 alternating timed repeats; prints each call's seconds and <|m|> (the same
chains: the same digits) and the median [min, max] of each. JSON ``keep_magnetisation.json`` beside it.
"""

import json
import sys
import time

import jax
import numpy as np

import pikflow.lattice as pl

L = int(sys.argv[1]) if len(sys.argv) > 1 else 32
n = int(sys.argv[2]) if len(sys.argv) > 2 else 160000
m2, lam = (float(sys.argv[3]), float(sys.argv[4])) if len(sys.argv) > 4 else (-2.0, 2.0)
target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})


def run(keep):
    t0 = time.perf_counter()
    out, acc = pl.hmc(target, jax.random.PRNGKey(4), n, n_chains=16, step="auto", keep=keep)
    return time.perf_counter() - t0, out


for keep in ("fields", "magnetisation"):
    pl.hmc(target, jax.random.PRNGKey(4), 16 * 50, n_chains=16, step="auto", keep=keep)
rows = {"fields": [], "magnetisation": []}
for r in range(3):
    for keep in ("fields", "magnetisation"):
        s, out = run(keep)
        rows[keep].append(s)
        M = out if keep == "magnetisation" else out.reshape(16, -1, L * L).sum(-1)
        o = pl.chain_observables(M.reshape(-1), L * L)
        print(json.dumps(dict(keep=keep, repeat=r, seconds=round(s, 2), abs_m=o["abs_m"].to_dict())), flush=True)
        del out, M
print(
    json.dumps(
        {
            "L": L,
            "n": n,
            "m2": m2,
            "lam": lam,
            **{k: dict(median=float(np.median(v)), min=min(v), max=max(v)) for k, v in rows.items()},
        }
    )
)
