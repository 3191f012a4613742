"""32x32 (-2, 2): PIK-SMC with one or four HMC moves at the last step only, from a given move step size.

``python benchmarks/smc/last_move_step.py SEEDS STEPS MOVES [KERNEL]`` (comma-separated lists; KERNEL ``hmc``
(default) or ``fhmc``, the Fourier-accelerated moves with mass k^2 + 1): lean transport, 3 RK4 steps,
float32, 1000 particles x 16 replicas, ``mcmc_every=100``; prints the errors (the work per particle is that of
``bench smc --mcmc-every 100`` plus the extra moves). JSON ``32x32_m2-2_last_move_step.json`` beside it (the SMC
guide, "A fair HMC reference").
"""

import json
import sys
import time

import numpy as np

import pikflow.lattice as pl
from pikflow.samplers import smc

L = 32
target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": -2.0, "lam": 2.0})
mom = pl.magnetisation_moments(1)
kernel = sys.argv[4] if len(sys.argv) > 4 else "hmc"
for seed in (int(a) for a in sys.argv[1].split(",")):
    flow = pl.fit_lattice(target, basis="lean", steps=3, seed=seed, progress=False)
    low = pl.lattice_problem(flow, precision="float32")
    for step in (float(a) for a in sys.argv[2].split(",")):
        for moves in (int(a) for a in sys.argv[3].split(",")):
            t0 = time.perf_counter()
            r = smc(
                low,
                1000,
                seed=seed,
                transport="pik",
                replicas=16,
                mcmc=kernel,
                mcmc_steps=moves,
                leapfrog_steps=10,
                mcmc_every=100,
                step_size=step,
                observables=mom,
                progress=False,
            )
            o = pl.smc_observables(r, L * L)
            print(
                json.dumps(
                    dict(
                        seed=seed,
                        kernel=kernel,
                        step=step,
                        moves=moves,
                        secs=round(time.perf_counter() - t0, 2),
                        acceptance=float(np.nanmean(r.acceptance[-1])),
                        ess_last=float(r.ess[-1].mean()),
                        **{k: v.to_dict() for k, v in o.items()},
                    )
                ),
                flush=True,
            )
