"""A long HMC reference at a few points of the scan-lattice path, all in one batch (pikflow.baselines.hmc_points).

Run: ``python benchmarks/scan/long_hmc.py --L 16 --seed 7`` (the path of ``pikflow bench scan-lattice``:
lambda = 1, m2 from -0.5 to -2 over t in [0.25, 1]); writes ``long_hmc_L{L}_seed{seed}.json`` next to this file
with the Gamma-method observables at each point (chains concatenated) and the batch's sampling seconds.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from pikflow.baselines import hmc_points  # noqa: E402
from pikflow.bench._scan_lattice import ordered_start, scan_path  # noqa: E402
from pikflow.lattice import chain_observables  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--L", type=int, default=16)
p.add_argument("--seed", type=int, default=7)
p.add_argument("--m2", type=float, nargs="+", default=[-1.2, -1.25, -1.3, -1.35, -1.45, -1.5])
p.add_argument("--chains", type=int, default=64, help="chains per point")
p.add_argument("--n", type=int, default=5000, help="measured trajectories per chain")
p.add_argument("--therm", type=int, default=1000, help="thermalisation trajectories per chain")
a = p.parse_args()

path = scan_path(a.L, argparse.Namespace(m2=[-0.5, -2.0], m2_gauss=0.5, prep=0.25, lam=1.0))
ts = [0.25 + 0.75 * (m2 + 0.5) / -1.5 for m2 in a.m2]
start = np.stack([ordered_start(path, t, a.chains) for t in ts])
run = hmc_points(
    path, ts, n=a.n, chains=a.chains, seed=a.seed, init=start, keep=lambda x, t: x.sum()[None], thermalisation=a.therm
)
points = {}
for i, m2 in enumerate(a.m2):
    obs = chain_observables(run.positions[i, :, :, 0].reshape(-1), a.L * a.L)
    points[str(m2)] = {k: v.to_dict() for k, v in obs.items()}
    print(m2, {k: f"{v.value:.4f}({v.error:.4f})" for k, v in obs.items()})
out = pathlib.Path(__file__).with_name(f"long_hmc_L{a.L}_seed{a.seed}.json")
settings = vars(a)
out.write_text(json.dumps({"settings": settings, "seconds": run.sample_seconds, "points": points}, indent=1))
print(f"wrote {out}")
