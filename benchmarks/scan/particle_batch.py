"""A lattice scan's seconds against the particle batch of its transport and moves (``smc``'s ``batch``).

``python benchmarks/scan/particle_batch.py L BATCHES ROUNDS [OUT.json]``, e.g. ``16 128,1024,2048,8000 3``: the
same scan (lambda = 1, m^2 from 1 to -1.25, 8 replicas of 1000 particles, 4 HMC moves a step; 20 + 10 steps at
16x16, 12 + 6 otherwise) once per batch to compile, then ``ROUNDS`` alternating timed rounds. ``scan_lattice``
leaves ``batch`` to ``smc`` ("auto": 128 configurations, capped by the problem's own batch, also 128), so the
batch is passed to ``smc`` here (0: all particles at once). The batch changes the speed, not the numbers (the
last point's <|m|> is printed: the same in every row).
"""

import json
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import functools  # noqa: E402

import pikflow.lattice as pl  # noqa: E402
import pikflow.lattice._scan as scan_module  # noqa: E402
from pikflow.samplers import smc  # noqa: E402

L = int(sys.argv[1])
batches = [int(b) for b in sys.argv[2].split(",")]
rounds = int(sys.argv[3])
action = pl.LatticeAction("lam*phi**4/4 + (m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", (L, L))
path = pl.LatticePath(action, {"m2": (1.0, -1.25), "lam": (0.0, 1.0)})
steps, prep = (20, 10) if L == 16 else (12, 6)


def run(batch):
    scan_module.smc = functools.partial(smc, batch=batch or None)
    t0 = time.perf_counter()
    s = pl.scan_lattice(path, points=3, particles=1000, replicas=8, mcmc="hmc", mcmc_steps=4, steps=steps,
                        prep_steps=prep, progress=False, seed=1)  # fmt: skip
    return time.perf_counter() - t0, float(s.series(f"{L}x{L}", "abs_m")[0][-1])


for b in batches:  # compile
    run(b)
seconds = {b: [] for b in batches}
for _ in range(rounds):
    for b in batches:
        sec, m = run(b)
        seconds[b].append(sec)
        print(b, round(sec, 2), m, flush=True)
print(json.dumps({b: sorted(v) for b, v in seconds.items()}))
if len(sys.argv) > 4:
    with open(sys.argv[4], "w") as f:
        json.dump({"lattice": [L, L], "seconds_by_batch": seconds}, f, indent=1)
