"""HMC batched across a scan's points with a trajectory length per point against 10 leapfrog steps for all.

Run: ``python benchmarks/scan/tuned_length.py SCAN.json OUT.json [ROUNDS]``, where ``SCAN.json`` is a
``pikflow bench scan-lattice`` file. Its rows (every point's values and replica errors) are the scan's; the batched
HMC reference (:func:`pikflow.bench._scan_lattice._hmc_batched`, the bench's own, same settings) runs here with
``--hmc-leapfrog 10`` and ``auto`` (a pilot at 10, 20, 30, 40 steps picks each point's fastest), alternating for
``ROUNDS`` rounds (default 2) in one process, and reports HMC's seconds at the scan's errors summed over the points,
their ratio (10 steps over auto: how much cheaper the tuned HMC is), each point's length and the pilot's seconds.
The HMC / scan ratios use the scan's seconds from ``SCAN.json`` (an earlier run on the same machine kind), so the
ratio of the two HMC costs, measured here side by side, is the number to trust.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from pikflow import Estimate
from pikflow.bench._common import replica_cost_correction
from pikflow.bench._scan_lattice import OBSERVABLES, _hmc_batched, break_even, scan_path


def main(scan_file, out_file, rounds=2):
    d = json.load(open(scan_file))
    settings = argparse.Namespace(**d["settings"])
    fix = replica_cost_correction(settings.replicas)
    res = {"scan_file": scan_file, "rounds": []}
    for label, v in d["sizes"].items():
        L = int(label.split("x")[0])
        path = scan_path(L, settings)
        rows = [{"t": r["t"], "couplings": r["couplings"], **{k: Estimate(**r[k]) for k in OBSERVABLES}}
                for r in v["summary"]]  # fmt: skip
        particles = settings.particles * settings.replicas
        for rnd in range(rounds):
            for leapfrog in (10, "auto") if rnd % 2 == 0 else ("auto", 10):
                settings.hmc_leapfrog, settings.quiet = leapfrog, True
                b = _hmc_batched(path, rows, settings, settings.seed + 300 + 17 * rnd)
                be = break_even(b, v["scan_seconds"], particles, fix["mean"])
                entry = {
                    "size": label, "round": rnd, "hmc_leapfrog": leapfrog, "leapfrog": b["leapfrog"],
                    "chains": b["chains"], "batches": b["batches"], "sample_seconds": b["sample_seconds"],
                    "pilot_seconds": None if b["pilot"] is None else b["pilot"]["seconds"],
                    "pilot": b["pilot"],
                    "hmc_seconds_at_equal_errors": b["hmc_seconds_at_equal_errors"],
                    "hmc_over_scan_at_equal_errors": {
                        k: x / v["scan_seconds"] * fix["mean"] for k, x in b["hmc_seconds_at_equal_errors"].items()
                    },
                    "hmc_over_scan_with_pilot": None if b["pilot"] is None else {
                        k: (x * fix["mean"] + b["pilot"]["seconds"]) / v["scan_seconds"]
                        for k, x in b["hmc_seconds_at_equal_errors"].items()
                    },
                    "pulls_over_2_sigma": b["pulls_over_2_sigma"], "max_abs_pull": b["max_abs_pull"],
                    "break_even_trajectories": be["break_even_trajectories"],
                    "trajectory_seconds": be["trajectory_seconds"],
                    "points": [{"m2": p["m2"], "hmc_seconds": p["hmc_seconds"]} for p in b["points"]],
                }  # fmt: skip
                res["rounds"].append(entry)
                cost = ", ".join(f"{entry['hmc_seconds_at_equal_errors'][k]:.3g}" for k in OBSERVABLES)
                print(f"{label} round {rnd} leapfrog {leapfrog}: HMC s at equal errors {cost}; "
                      f"lengths {b['leapfrog']}; pulls > 2 sigma {b['pulls_over_2_sigma']}", flush=True)  # fmt: skip
        tens = [e for e in res["rounds"] if e["size"] == label and e["hmc_leapfrog"] == 10]
        autos = [e for e in res["rounds"] if e["size"] == label and e["hmc_leapfrog"] == "auto"]
        gain = {k: [t["hmc_seconds_at_equal_errors"][k] / a["hmc_seconds_at_equal_errors"][k]
                    for t, a in zip(tens, autos, strict=True)] for k in OBSERVABLES}  # fmt: skip
        res.setdefault("gain_10_over_auto", {})[label] = gain
        print(label, "HMC at 10 steps / per-point lengths, per round:",
              {k: np.round(g, 2).tolist() for k, g in gain.items()}, flush=True)  # fmt: skip
    json.dump(res, open(out_file, "w"), indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 2)
