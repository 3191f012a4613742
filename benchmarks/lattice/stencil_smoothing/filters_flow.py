"""The lean basis with heat-kernel filters against the same basis on the à-trous chain: ESS/N (issue #20).

Both flows have the same families, powers, products, taming rule and solve; only the 4 smoothing filters
differ (``atrous.py``). Prints per variant and set-up seed the ESS/N of 4000 flow samples (seeds 1, 2),
the hole check, the continuous log q error and the layers' residuals.
Usage: ``python filters_flow.py L m2 lam STEPS OUT.jsonl [SEEDS...] [VARIANTS...]``.
"""

import pathlib
import sys
import time

here = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(here.parent))
sys.path.insert(0, str(here))
from _flow_record import append_line, flow_record  # noqa: E402
from atrous import atrous_basis, separable_basis  # noqa: E402


def main(argv):
    import pikflow.lattice as pl

    L, m2, lam, steps, out = int(argv[0]), float(argv[1]), float(argv[2]), int(argv[3]), argv[4]
    seeds = [int(s) for s in argv[5:] if s.lstrip("-").isdigit()] or [0]
    argv_variants = [s for s in argv[5:] if not s.lstrip("-").isdigit()]
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})
    variants = {
        "lean (heat kernel)": "lean",
        "lean (a trous)": atrous_basis("lean"),
        "lean (heat kernel of khat^2)": separable_basis("lean"),
    }
    only = [v for v in variants if v in (argv_variants or variants)]
    for seed in seeds:
        for name in only:
            basis = variants[name]
            t0 = time.perf_counter()
            flow = pl.fit_lattice(target, basis=basis, steps=steps, schedule=3, seed=seed, progress=False)
            setup = time.perf_counter() - t0
            r = {
                "L": L, "m2": m2, "lam": lam, "steps": steps, "seed": seed, "basis": name,
                "terms": int(flow.basis.n), "base": flow.info.get("base"),
                "target_ess": flow.info.get("target_ess"), "setup": setup, **flow_record(flow),
            }  # fmt: skip
            append_line(out, r)


if __name__ == "__main__":
    main(sys.argv[1:])
