"""The single-point pilot of ``bench lattice --leapfrog auto`` at three points, with its extension past 40 steps.

``pikflow.bench._hmc_length.best_leapfrog`` tries 10, 20, 30, 40 leapfrog steps and, while the longest so far is
the fastest, 60, 90, 140. This records which length it keeps, and every length's rate, at 16x16, 32x32 and 64x64
(m2, lam) = (-2, 2) with the bench's chain batches (256, 64, 16).

Usage: ``python benchmarks/hmc/pilot_extended.py OUT.json``.
"""

import json
import sys

import pikflow.lattice as pl
from pikflow.bench._hmc_length import best_leapfrog


def main(out_file):
    out = {}
    for L, m2, lam, chains in [(16, -2.0, 2.0, 256), (32, -2.0, 2.0, 64), (64, -2.0, 2.0, 16)]:
        target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})
        best, rows, sec = best_leapfrog(target, chains, seed=0)
        out[f"{L}x{L}_m2{m2:g}_lam{lam:g}"] = {"best": best, "seconds": sec, "rows": rows}
        rates = [(r["leapfrog"], round(r["tau_int_abs_m"], 2), round(r["independent_per_second"])) for r in rows]
        print(L, best, round(sec, 1), rates, flush=True)
    with open(out_file, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
