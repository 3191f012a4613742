"""HMC's integrated autocorrelation time of |m| from long runs (16 chains, step adapted, keeping only M).

Usage: ``python seed_hmc_tau.py L PER_CHAIN OUT.json [m2 lam]`` (default seed 002's point (-0.08, 0.16));
four independent runs, each with its Gamma-method tau_int and error.
"""

import json
import sys


def main(argv):
    import jax
    import numpy as np

    import pikflow.lattice as pl
    from pikflow.diagnostics import gamma_method

    L, per, out = int(argv[0]), int(argv[1]), argv[2]
    m2, lam = (float(argv[3]), float(argv[4])) if len(argv) > 4 else (-0.08, 0.16)
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})
    res = []
    for r in range(4):
        M, acc = pl.hmc(target, jax.random.PRNGKey(100 + r), per * 16, n_chains=16, step="auto", keep="magnetisation")
        g = gamma_method(np.abs(np.asarray(M)) / L**2)
        res.append({"run": r, "per_chain": per, "acceptance": float(acc), "tau_int": float(g.tau_int),
                    "tau_error": float(g.tau_int_error), "shape": list(np.shape(M))})  # fmt: skip
        print(json.dumps(res[-1]), flush=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
