"""HMC thermodynamic integration over the scan segment of ``bench scan-lattice``'s path: nodes, starts, batching.

Run: ``python benchmarks/scan/ti_nodes.py --L 32``. For 6, 12 and 24 Gauss-Legendre nodes on t in [0.25, 1]
(m2 from -0.5 to -2 at lambda = 1) and 250 or 1000 trajectories per chain (8 chains, 200 thermalisation), with
the chains of all nodes in one batch from ordered starts, and for 6 nodes also node by node and from random
starts: log Z(1) - log Z(0.25) with its error and the HMC seconds. Writes ``ti_nodes_L{L}.json`` beside it.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import jax

jax.config.update("jax_enable_x64", True)

from pikflow.baselines import thermodynamic_integration  # noqa: E402
from pikflow.bench._scan_lattice import _ti_starts, scan_path  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--L", type=int, default=32)
p.add_argument("--seed", type=int, default=4)
a = p.parse_args()
path = scan_path(a.L, argparse.Namespace(m2=[-0.5, -2.0], m2_gauss=0.5, prep=0.25, lam=1.0))
rows = []
runs = [(6, n, True, True) for n in (250, 1000)] + [(6, 250, False, True), (6, 250, True, False)]
runs += [(nodes, n, True, True) for nodes in (12, 24) for n in (250, 1000)]
starts = _ti_starts(path, argparse.Namespace(hmc_start="ordered", chains=8))
for nodes, n, batched, ordered in runs:
    ti = thermodynamic_integration(
        path, nodes=nodes, start=0.25, end=1.0, n=n, chains=8, thermalisation=200, step_size="auto", seed=a.seed,
        batched=batched, init=starts if ordered else None,
    )  # fmt: skip
    row = {"nodes": nodes, "n": n, "batched": batched, "ordered": ordered, "seconds": ti.seconds}
    rows.append({**row, "log_z_ratio": ti.log_z_ratio.to_dict()})
    print(row, ti.log_z_ratio, flush=True)
out = pathlib.Path(__file__).with_name(f"ti_nodes_L{a.L}.json")
out.write_text(json.dumps({"L": a.L, "seed": a.seed, "rows": rows}, indent=1))
print(f"wrote {out}")
