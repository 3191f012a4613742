"""The scan's plots for the docs from ``bench scan-lattice`` JSON files: U(m^2) per size, the chi collapse, log Z.

Run: ``python benchmarks/scan/plots.py OUT FILE [FILE ...]``. Each size is taken from the first file that has
it (so a later file adds sizes: 8x8, 16x16, 32x32 from one run and 64x64 from another); the Binder crossings
of consecutive sizes are computed here as ``bench scan-lattice`` computes them
(:func:`pikflow.lattice.binder_crossings`) and printed; the plots are those of a ``[scan]`` run
(``scan_binder.png``, ``scan_collapse.png``, ``scan_log_z.png``).
"""

from __future__ import annotations

import argparse
import json
import pathlib

import pikflow.lattice as pl
from pikflow import Estimate
from pikflow.bench._scan_lattice import scan_path
from pikflow.cli._scan import plot_scan

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("files", nargs="+")
cli = parser.parse_args()

points, settings = {}, None
for name in cli.files:
    d = json.load(open(name))
    settings = settings or d["settings"]
    for label, v in d["sizes"].items():
        points.setdefault(
            label,
            [
                {**r, **{k: Estimate(r[k]["value"], r[k]["error"]) for k in ("abs_m", "chi", "binder", "log_z")}}
                for r in v["summary"]
            ],
        )
points = dict(sorted(points.items(), key=lambda kv: int(kv[0].split("x")[0])))
args = argparse.Namespace(**settings)
scan = pl.LatticeScan(points, [], {}, {}, {})
scan.crossings = pl.binder_crossings(scan, scan_path(args.L[0], args))
for c in scan.crossings:
    m2 = c["couplings"]["m2"]
    print(f"{c['sizes'][0]} / {c['sizes'][1]}: m2_c = {m2['value']:.4f} +- {m2['error']:.2g}")
out = pathlib.Path(cli.out)
out.mkdir(parents=True, exist_ok=True)
print(plot_scan(scan, out))
