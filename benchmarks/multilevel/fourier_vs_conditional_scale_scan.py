"""One level, no SMC: the base's Var log w (within + between) of the conditional and the fourier lift.

m_f^2 tuned by tune_lift, then the scale a scanned on 0.3-1.0 (below the tuner's grid 0.6-1.6); the coarse pool is
800 HMC configurations of the coarse lattice. Wrote fourier_vs_conditional_scale_scan.json (the guide's multilevel
page, "The Fourier-space lift"). Run: PYTHONPATH=src python benchmarks/multilevel/fourier_vs_conditional_scale_scan.py
OUT.json
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

import pikflow.lattice as pl
from pikflow.lattice._levels import Lift, log_weights, tune_lift, weight_diagnostics


def _path(L, m2, lam):
    return pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": m2, "lam": lam})


def main(out_file):
    out = {"points": []}
    for Lc, m2, lam in [(8, -1.0, 1.0), (16, -0.08, 0.16)]:
        coarse, fine = _path(Lc, m2, lam), _path(2 * Lc, m2, lam)
        key = jax.random.PRNGKey(0)
        fields, _ = pl.hmc(coarse, key, 1600, n_chains=8, step="auto", progress=False)
        phi = jnp.asarray(np.asarray(fields).reshape(-1, Lc, Lc)[::2][:800])
        S_c = jax.jit(jax.vmap(lambda p, c=coarse: c.value(p, 1.0)))
        S_1 = jax.jit(jax.vmap(lambda p, f=fine: f.value(p, 1.0)))
        for noise in ("conditional", "fourier"):
            make = lambda m, a, n=noise, s=fine.lattice.shape: getattr(Lift, n)(s, m, a)  # noqa: E731
            lift, _ = tune_lift(make, S_c, S_1, phi[:250], jax.random.fold_in(key, 1))
            rows = []
            for a in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0]:
                m = float(np.asarray(lift.precision).flat[0])
                d = weight_diagnostics(log_weights(make(m, a), S_c, S_1, phi, jax.random.fold_in(key, 2)))
                rows.append({"scale": a, "mass2": m, **d})
                print(
                    f"| {2 * Lc} ({m2}, {lam}) | {noise} | {a:.2f} | {m:.3g} | {d['var']:.3g} | {d['within']:.3g} | "
                    f"{d['between']:.3g} | {d['ess']:.2g} |",
                    flush=True,
                )
            point = {"L": 2 * Lc, "m2": m2, "lam": lam, "noise": noise, "tuned_scale": lift.scale, "rows": rows}
            out["points"].append(point)
            with open(out_file, "w") as fh:
                json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
