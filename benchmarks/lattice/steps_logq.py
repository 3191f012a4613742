"""Fewer RK4 steps against the accuracy of the continuous log-density: ESS/N, log q error, ms per sample.

``python benchmarks/lattice/steps_logq.py L M2 LAM BASIS STEPS... [--json OUT]``: one ``fit_lattice`` per number of
steps (the basis preset given, the defaults otherwise), then ESS/N of 4000 samples, the continuous minus the exact
log q of the applied RK4 map on 8 samples (:meth:`LatticeFlow.log_density_error`, V JVPs each), and the time per
sample (batches of 500 after a compiling call).
"""

import argparse
import json
import time

import jax
import numpy as np

import pikflow.lattice as pl


def main() -> None:
    parser = point_parser(__doc__)
    parser.add_argument("steps", type=int, nargs="+")
    args = parser.parse_args()
    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [args.L, args.L]), {"m2": args.m2, "lam": args.lam})
    rows = []
    for steps in args.steps:
        t0 = time.perf_counter()
        flow = pl.fit_lattice(path, basis=args.basis, steps=steps, hmc_step="auto", seed=0, progress=False)
        setup = time.perf_counter() - t0
        flow.sample(jax.random.PRNGKey(9), 500)  # compiles
        t0 = time.perf_counter()
        samples = flow.sample(jax.random.PRNGKey(1), 4000)
        ms = 1000 * (time.perf_counter() - t0) / 4000
        row = {"steps": steps, **accuracy(flow, samples), "ms_per_sample": ms, "setup_seconds": setup}
        print(row, flush=True)
        rows.append(row)
    write(args, rows)


def point_parser(doc: str) -> argparse.ArgumentParser:
    """The arguments every script here takes: the lattice ``L``, ``m2``, ``lam``, the basis preset, ``--json``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("L", type=int)
    parser.add_argument("m2", type=float)
    parser.add_argument("lam", type=float)
    parser.add_argument("basis")
    parser.add_argument("--json")
    return parser


def accuracy(flow, samples) -> dict:
    """ESS/N of ``samples``, the hole check's ESS/N and the continuous - exact log q of 8 fresh samples (rms, max)."""
    err = flow.log_density_error(jax.random.PRNGKey(2), 8)
    return {
        "ess": float(samples.ess()),
        "target_ess": flow.info.get("target_ess"),
        "log_q_error_rms": float(np.sqrt(np.mean(err**2))),
        "log_q_error_max": float(np.abs(err).max()),
    }


def write(args, rows) -> None:
    """The rows as JSON at ``--json`` (if given), with the point and the basis."""
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"L": args.L, "m2": args.m2, "lam": args.lam, "basis": args.basis, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
