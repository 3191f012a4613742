"""HMC's independent samples per second against its trajectory length (leapfrog steps) on a lattice.

Every lattice PIK / HMC ratio of the benchmarks runs HMC with 10 leapfrog steps a trajectory and the step
adapted to acceptance 0.8 during thermalisation. This measures whether that length is HMC's best: for each
number of leapfrog steps L, HMC with the bench's chain batch (256 chains up to 400 sites), the step adapted the
same way (200 thermalisation trajectories for every L: 8 adaptation blocks of 25, which the step needs to reach
acceptance 0.8 from its start), timed on a second identical call (the first compiles), and tau_int of |m| with
the chains as the Gamma method's replica (about their overall mean). Independent samples per second:
chains * n / (2 tau_int) over the production's share of the timed call (its seconds times n / (n + 200)):
thermalisation is a one-off, and 200 trajectories of 40 steps would otherwise weigh 4 times those of 10. Rounds
alternate the lengths so that the machine's drift spreads over all of them.

Usage: ``python trajectory_length.py L m2 lam OUT.json [ROUNDS] [LEAPFROG ...]``.
"""

import json
import sys


def main(argv):
    import jax

    jax.config.update("jax_enable_x64", True)
    import pikflow.lattice as pl
    from pikflow.bench._common import cheapest_chains
    from pikflow.bench._hmc_length import length_row

    size, m2, lam, out = int(argv[0]), float(argv[1]), float(argv[2]), argv[3]
    rounds = int(argv[4]) if len(argv) > 4 else 2
    lengths = [int(a) for a in argv[5:]] or [10, 15, 20, 30]
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [size, size]), {"m2": m2, "lam": lam})
    chains = cheapest_chains(size * size)
    rows = []
    for rnd in range(rounds):
        for L in lengths:
            # about the same number of gradients in production for every length; 8 adaptation blocks each
            row = length_row(target, chains, L, per=max(6000 // L, 200), seed=100 * rnd + L)
            rows.append({"round": rnd, "chains": chains, "thermalisation": 200, **row})
            print(json.dumps(rows[-1]), flush=True)
    spread = {}
    for L in lengths:
        rate = [r["independent_per_second"] for r in rows if r["leapfrog"] == L]
        spread[L] = {"independent_per_second": [min(rate), max(rate)]}
    res = {"lattice": [size, size], "couplings": {"m2": m2, "lam": lam}, "rows": rows, "summary": spread}
    with open(out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
