"""The push's cost per sample by chunk size (issue #20): python push_batch.py L SIZES BASIS (e.g. 16 128,512 separable).

A 2-step flow on t**3 at (-2, 2), mixture base; 5 alternated repeats, microseconds per sample (median, min, max).
"""

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import pikflow.lattice as pl
from pikflow.flow._compiled import push_fn
from pikflow.flow._lattice_flow import _in_chunks

L, sizes, basis = int(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")], sys.argv[3]
path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": -2.0, "lam": 2.0})
flow = pl.fit_lattice(path, basis=basis, steps=2, schedule=3.0, seed=0, progress=False, base="mixture")
n = max(sizes) * 2
coeffs = jnp.asarray(flow.coeffs)
push = push_fn(flow.basis, flow.steps, donate=False)
x0, lq0 = flow.base.sample(jax.random.PRNGKey(1), n)
fns = {s: (lambda s=s: jax.block_until_ready(_in_chunks(push, coeffs, x0, lq0, size=s)[0])) for s in sizes}
for fn in fns.values():
    fn()
times = {s: [] for s in sizes}
for _ in range(5):
    for s, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        times[s].append((time.perf_counter() - t0) / n * 1e6)
for s in sizes:
    t = times[s]
    print(L, basis, s, round(float(np.median(t)), 1), round(min(t), 1), round(max(t), 1), flush=True)
