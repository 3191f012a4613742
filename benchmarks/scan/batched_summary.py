"""HMC (batched across the points) over the scan at equal errors, from ``bench scan-lattice`` JSON files.

Run: ``python benchmarks/scan/batched_summary.py benchmarks/scan/L16_*batched*.json``. Files written before the
bench corrected its ratios for the replica errors (``replica_cost_correction`` absent) are corrected here with the
same factors (:func:`pikflow.bench._common.replica_cost_correction`). Prints per size: the whole-scan ratio (wall
time, compiled), the median point's ratio, the pulls beyond 2 sigma, and both costs in HMC trajectories per scan
particle (:func:`pikflow.bench._scan_lattice.break_even`): what the scan spent and what HMC needs at equal errors.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from pikflow.bench._common import replica_cost_correction
from pikflow.bench._scan_lattice import break_even

OBS = ("abs_m", "chi", "binder")

for name in sys.argv[1:]:
    d = json.load(open(name))
    replicas = d["settings"]["replicas"]
    fix = replica_cost_correction(replicas)
    for label, v in d["sizes"].items():
        b = v.get("hmc_batched")
        if b is None:
            continue
        rows = {round(r["t"], 9): r for r in v["summary"]}
        secs, scan, comp = b["seconds_per_point"], v["scan_seconds"], v["scan_compile_seconds"]
        per = {k: [] for k in OBS}
        for p in b["points"]:
            r = rows[round(p["t"], 9)]
            for k in OBS:  # the bench's own per-point cost (its batch's time, with a length per point) where recorded
                cost = p["hmc_seconds"][k] if "hmc_seconds" in p else secs * (p[k]["error"] / r[k]["error"]) ** 2
                per[k].append(cost)
        n = len(b["points"])
        whole = [fix["mean"] * sum(per[k]) / scan for k in OBS]
        compiled = [fix["mean"] * sum(per[k]) / (scan - comp) for k in OBS]
        median = [fix["median"] * float(np.median(per[k])) * n / scan for k in OBS]
        print(
            f"{name} {label}: {replicas} replicas x {d['settings']['particles']} particles, scan {scan:.1f} s, "
            f"HMC {secs:.3g} s a point; HMC / scan at equal errors "
            f"(abs_m, chi, U): whole scan {', '.join(f'{x:.2f}' for x in whole)} (compiled "
            f"{', '.join(f'{x:.2f}' for x in compiled)}), median point {', '.join(f'{x:.3f}' for x in median)}; "
            f"{b['pulls_over_2_sigma']} of {b['n_pulls']} pulls beyond 2 sigma, largest {b['max_abs_pull']:.2f}"
        )
        if "trajectories_per_chain" in b:
            total = d["settings"]["particles"] * replicas
            be = break_even(
                {**b, "hmc_seconds_at_equal_errors": {k: sum(per[k]) for k in OBS}}, scan, total, fix["mean"]
            )
            print(
                f"    per scan particle: the scan spent {be['scan_trajectories']:.0f} HMC trajectories "
                f"({be['trajectory_seconds'] * 1e6:.2f} us each), HMC needs at equal errors "
                + ", ".join(f"{be['break_even_trajectories'][k]:.0f}" for k in OBS)
            )
