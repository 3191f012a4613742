"""Where a flow sample's time goes (issue #20): 16x16 (-2, 2), separable preset, 2 RK4 steps on t**3.

python benchmarks/lattice/sample_overhead/anatomy.py OUT.json: alternated, 5 repeats, microseconds per sample of
flow.sample (2000 draws), the push alone in chunks of 128 ... 1000, the base draw, the base controls, the target
action and the copy into the samples array. Before this change: anatomy_16x16_m2-2_separable_before.json.
"""

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import pikflow.lattice as pl
from pikflow.flow._compiled import push_fn
from pikflow.flow._lattice_flow import _in_chunks

path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (16, 16)), {"m2": -2.0, "lam": 2.0})
flow = pl.fit_lattice(path, basis="separable", steps=2, schedule=3.0, seed=0, progress=False)
n = 2000
key = jax.random.PRNGKey(11)
coeffs = jnp.asarray(flow.coeffs)
push = push_fn(flow.basis, flow.steps, donate=False)
x0, lq0 = flow.base.sample(key, 1000)


def twice(fn):
    def run():
        for i in range(2):
            out = fn(i)
        jax.block_until_ready(out)

    return run


def copy_out():
    fields = np.empty((n, 16, 16))
    for i in range(2):
        fields[i * 1000 : (i + 1) * 1000] = np.asarray(x0)


fns = {
    "sample": lambda: flow.sample(key, n),
    "sample keep_fields=False": lambda: flow.sample(key, n, keep_fields=False),
    **{f"push {s}": twice(lambda i, s=s: _in_chunks(push, coeffs, x0, lq0, size=s)[0]) for s in (128, 256, 512, 1000)},
    "base draw": twice(lambda i: flow.base.sample(jax.random.fold_in(key, i), 1000)[0]),
    "controls": twice(lambda i: flow.base.control_values(x0)),
    "target": twice(lambda i: flow._target(x0)),
    "copy out": copy_out,
}
for fn in fns.values():
    fn()
times = {k: [] for k in fns}
for _ in range(5):
    for k, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        times[k].append((time.perf_counter() - t0) / n * 1e6)
out = {k: {"median": float(np.median(v)), "min": float(min(v)), "max": float(max(v))} for k, v in times.items()}
for k, v in out.items():
    print(f"{k:28s} {v['median']:7.1f} us/sample [{v['min']:.1f}, {v['max']:.1f}]")
json.dump(out, open(sys.argv[1], "w"), indent=1)
