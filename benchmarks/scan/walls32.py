"""The final particles of the cheap 32x32 scan (60 + 30 steps, one move of 5 leapfrog steps) at m2 = -2.

Prints the quantiles of |m| and of the fraction of sites against each particle's majority sign
(single-domain configurations have about 1 %); writes walls32.json. About 3 minutes on 2 cores.
"""

import argparse
import json

import numpy as np

import pikflow.lattice as pl
from pikflow.bench._scan_lattice import scan_path

args = argparse.Namespace(m2=[-0.5, -2.0], m2_gauss=0.5, prep=0.25, lam=1.0)
L = 32
path = scan_path(L, args)
# the bench scan-lattice path (lam = 1, m2 from -0.5 to -2 after a Gaussian prep segment)
scan = pl.scan_lattice(
    path,
    points=31,
    t_range=(0.25, 1.0),
    steps=60,
    particles=1000,
    replicas=8,
    mcmc="hmc",
    mcmc_steps=1,
    leapfrog_steps=5,
    seed=0,
    progress=False,
)
run = scan.runs[f"{L}x{L}"]
x = run.particles.reshape(run.particles.shape[0], run.particles.shape[1], -1)  # (replicas, n, V)
m = x.mean(-1)
minority = (np.sign(x) != np.sign(m)[..., None]).mean(-1)  # fraction of sites against the majority sign
w = np.exp(run.log_w - run.log_w.max(axis=1, keepdims=True))
w /= w.sum(axis=1, keepdims=True)
out = {
    "abs_m_quantiles": np.quantile(np.abs(m), [0.05, 0.25, 0.5, 0.75, 0.95]).tolist(),
    "frac_particles_abs_m_below_1": float((np.abs(m) < 1.0).mean()),
    "weighted_abs_m": float((w * np.abs(m)).sum(1).mean()),
    "minority_site_fraction_quantiles": np.quantile(minority, [0.05, 0.25, 0.5, 0.75, 0.95]).tolist(),
}
print(json.dumps(out, indent=1))
json.dump(out, open("walls32.json", "w"))
