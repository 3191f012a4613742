"""The preconditioned velocity v = -M dOmega (``precondition.py``) against the plain one: ESS/N at a point.

For each base kind (``gaussian``, ``mixture``) fits the lean flow with ``fit_lattice`` with the plain
gradient form (eq. 34) and with M = K_0^p (p = -1: the matched base's covariance), and records the
ESS/N of 4000 flow samples (seeds 1, 2), the hole check (``target_ess``), the layers' relative
residuals and the continuous log q error, per variant (``VARIANTS``).
Usage: ``python precondition_flow.py L m2 lam STEPS OUT.jsonl [BASES [VARIANTS [SEED]]]`` (BASES comma-,
VARIANTS semicolon-separated; a variant ``M = K0^p`` takes any power p).
"""

import pathlib
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve()
sys.path[:0] = [str(HERE.parent), str(HERE.parents[1])]
from _flow_record import append_line, flow_record  # noqa: E402
from precondition import preconditioned  # noqa: E402


def lean(path, base):
    import pikflow.lattice as pl

    return pl.preset_basis("lean", path, base, tame=5.0)


def with_local(path, base):
    """The lean basis plus the unsmoothed (scale 0) tamed powers f_4, f_6: the local solution under M = K_0^-1."""
    import pikflow.lattice as pl

    K0 = np.asarray(base.precision)
    local = pl.SmoothedPowers(path.lattice, [0.0], (4, 6), precision=K0, tame=5.0)
    return pl.LatticeBasis([*lean(path, base).families, local])


def mass(base, power):
    return np.asarray(base.precision) ** (-power)


VARIANTS = {
    "plain": lambda path, base: lean(path, base),
    "plain + scale 0": with_local,
    "M = K0^-1": lambda path, base: preconditioned(lean(path, base), mass(base, 1.0)),
    "M = K0^-1, + scale 0": lambda path, base: preconditioned(with_local(path, base), mass(base, 1.0)),
    "M = K0^-1/2, + scale 0": lambda path, base: preconditioned(with_local(path, base), mass(base, 0.5)),
    "M = K0^+1/2": lambda path, base: preconditioned(lean(path, base), mass(base, -0.5)),
    "M = K0^+1": lambda path, base: preconditioned(lean(path, base), mass(base, -1.0)),
}


def power_variant(name: str):
    """``"M = K0^p"`` for any number ``p``: the lean basis with M = K_0^p."""
    p = float(name.split("^")[1])
    return lambda path, base: preconditioned(lean(path, base), mass(base, -p))


def main(argv):
    import pikflow.lattice as pl

    L, m2, lam, steps, out = int(argv[0]), float(argv[1]), float(argv[2]), int(argv[3]), argv[4]
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})
    kinds = argv[5].split(",") if len(argv) > 5 else ["gaussian", "mixture"]
    names = argv[6].split(";") if len(argv) > 6 else list(VARIANTS)
    seed = int(argv[7]) if len(argv) > 7 else 0
    for kind in kinds:
        for name in names:
            basis = VARIANTS.get(name) or power_variant(name)
            t0 = time.perf_counter()
            flow = pl.fit_lattice(target, basis=basis, base=kind, steps=steps, seed=seed, progress=False)
            setup = time.perf_counter() - t0
            rec = {"L": L, "m2": m2, "lam": lam, "steps": steps, "base": kind, "velocity": name, "seed": seed}
            rec["setup"] = setup
            rec.update(target_ess=flow.info.get("target_ess"), **flow_record(flow))
            append_line(out, rec)


if __name__ == "__main__":
    main(sys.argv[1:])
