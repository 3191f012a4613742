"""HMC's cost per trajectory and chain against the number of chains vectorised together (the baseline's fairness).

Every benchmark times :func:`pikflow.lattice.hmc` with 16 chains. A wider batch spreads its per-step
overhead over more chains; this measures by how much. Fixed step (default 0.2), 10 leapfrog steps, no
thermalisation, keeping the magnetisation only; each setting called twice (the first compiles), two
rounds. Usage: ``python hmc_chains.py L m2 lam OUT.json [STEP]``.
"""

import json
import sys
import time


def main(argv):
    import jax

    import pikflow.lattice as pl

    L, m2, lam, out = int(argv[0]), float(argv[1]), float(argv[2]), argv[3]
    step = float(argv[4]) if len(argv) > 4 else 0.2
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})
    rows = []
    for rnd in range(2):
        for chains in (16, 64, 256, 1024):
            n = chains * max(40_000 // chains, 100)
            for _ in range(2):
                t0 = time.perf_counter()
                _, acc = pl.hmc(
                    target, jax.random.PRNGKey(4), n, n_chains=chains, step=step, n_therm=0, keep="magnetisation"
                )
                seconds = time.perf_counter() - t0
            row = {"round": rnd, "chains": chains, "trajectories": n, "acceptance": float(acc)}
            row["us_per_trajectory_and_chain"] = seconds / n * 1e6
            rows.append(row)
            print(json.dumps(row), flush=True)
    with open(out, "w") as f:
        json.dump({"L": L, "m2": m2, "lam": lam, "step": step, "leapfrog_steps": 10, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
