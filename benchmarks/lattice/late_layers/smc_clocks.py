"""PIK-SMC at 32x32 (-2, 2) on the t**2 clock and a two-ended clock, with several move step sizes (issue #15).

Each entry of the JSON list argument is ``{"clock", "steps", "mcmc_steps", "step_size"?}`` (clocks of
``clocks.py``); 4 replicas x 1000 particles, one HMC move of 10 leapfrog steps per step, float32
transport; prints the ESS/N after every step (before resampling), the acceptance, the adapted step
and the estimates. Usage: ``python smc_clocks.py L OUT.json '[{"clock": "p2", "steps": 3, "mcmc_steps": 1}]'``.
"""

import json
import sys
import time

import numpy as np
from clocks import KIND, SENTINEL  # installs the two-ended clocks


def main(argv):
    import pikflow.lattice as pl
    from pikflow.samplers import smc

    L, out, configs = int(argv[0]), argv[1], json.loads(argv[2])
    replicas = int(argv[3]) if len(argv) > 3 else 4
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": -2.0, "lam": 2.0})
    moments = pl.magnetisation_moments(1)
    flows, res = {}, []
    for c in configs:
        KIND[0] = c["clock"]
        key = (c["clock"], c["steps"])
        if key not in flows:
            schedule = 2.0 if c["clock"] == "p2" else SENTINEL
            flows[key] = pl.fit_lattice(
                target, basis="lean", steps=c["steps"], seed=0, schedule=schedule, progress=False
            )
        kw = dict(
            seed=0, transport="pik", replicas=replicas, mcmc="hmc", mcmc_steps=c["mcmc_steps"], observables=moments,
            progress=False, precision="float32", step_size=c.get("step_size"),
        )  # fmt: skip
        smc(flows[key], 1000, **kw)  # compile
        t0 = time.perf_counter()
        r = smc(flows[key], 1000, **kw)
        secs = time.perf_counter() - t0
        acc = [float(np.mean(a)) for a in r.acceptance[1:]]
        eps = [float(np.mean(e)) for e in r.step_size[1:]]
        res.append({
            **c, "seconds": secs, "ess_path": [float(x) for x in r.ess.mean(axis=1)], "acceptance": acc, "step": eps,
            "observables": {k: v.to_dict() for k, v in pl.smc_observables(r, L * L).items()},
            "log_z": r.log_z_estimate().to_dict(),
        })  # fmt: skip
        print(json.dumps(res[-1]), flush=True)
        with open(out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
