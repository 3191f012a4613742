"""Merged Fourier orbits on a per-orbit or a smooth matched base, from one HMC reference run.

    python benchmarks/lattice/smooth_bins.py L M2 LAM VARIANT [VARIANT ...] [--json FILE]

A VARIANT is BASE:FOURIER with BASE ``raw`` (the per-orbit G(k)) or ``smoothD`` (degree-D fit,
``pl.matched_base(..., smooth=D)``) and FOURIER ``all`` (one coefficient per orbit), ``countN`` or
``logN`` (N groups, ``FourierTwoPoint(bins=N, spacing=...)``). Every variant uses the same HMC
configurations (4000, 8 chains, adapted step, seed 0), the Gaussian matched base (no mixture
candidate), the default basis otherwise (width 5), 10 RK4 steps and 4000 flow samples (1000 above
64x64). Reported: ESS/N, the ESS/N seen from 500 HMC configurations (``target_ess``), Var log w, the
basis size and the set-up seconds (fit_lattice with the given base: the solve and the selection).
"""

import argparse
import json
import time

import jax
import numpy as np

import pikflow.lattice as pl


def main():
    p = argparse.ArgumentParser()
    p.add_argument("L", type=int)
    p.add_argument("m2", type=float)
    p.add_argument("lam", type=float)
    p.add_argument("variants", nargs="+")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    L = args.L
    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": args.m2, "lam": args.lam})
    sym = path.symmetry()
    t0 = time.perf_counter()
    fields, acc = pl.hmc(path, jax.random.PRNGKey(0), 4000, n_chains=8, step="auto")
    ref = np.asarray(fields).reshape(-1, L, L)
    out = {"L": L, "m2": args.m2, "lam": args.lam, "hmc_seconds": time.perf_counter() - t0, "hmc_acceptance": acc}
    raw = pl.matched_base(ref, symmetry=sym)
    G = 1.0 / np.asarray(raw.precision)
    out["rows"] = []
    for variant in args.variants:
        base_name, fourier = variant.split(":")
        degree = None if base_name == "raw" else int(base_name.removeprefix("smooth"))
        base = raw if degree is None else pl.matched_base(ref, symmetry=sym, smooth=degree)
        row = {"variant": variant}
        if degree is not None:
            _, fit = pl.smooth_propagator(G, path.lattice, degree, sym)
            row.update(rms_deviation=fit["rms_deviation"], max_deviation=fit["max_deviation"])
        bins = None if fourier == "all" else int(fourier.removeprefix("count").removeprefix("log"))
        spacing = "log" if fourier.startswith("log") else "count"

        def basis(flow_path, b, bins=bins, spacing=spacing):
            fams = pl.default_basis(flow_path, b).families
            two = pl.FourierTwoPoint(flow_path.lattice, flow_path.symmetry(), bins=bins, spacing=spacing)
            return pl.LatticeBasis([two if isinstance(f, pl.FourierTwoPoint) else f for f in fams])

        t0 = time.perf_counter()
        flow = pl.fit_lattice(path, base=base, basis=basis, progress=False)
        row["setup_seconds"] = time.perf_counter() - t0
        samples = flow.sample(jax.random.PRNGKey(1), 4000 if L <= 64 else 1000)
        lw = np.asarray(samples.log_w)
        row.update(
            ess=float(samples.ess()),
            target_ess=float(flow.target_ess(ref[::8][:500], samples)),
            var_log_w=float(np.var(lw[np.isfinite(lw)])),
            n_basis=int(flow.basis.n),
            n_collocation=int(flow.info["n_collocation"]),
        )
        print(row, flush=True)
        out["rows"].append(row)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
