"""A path through coupling space: reach the target along m^2 instead of from the Gaussian (issue #15).

The matched path ``(1 - t^2) S_0 + t^2 S_1`` ends with dS/dt = S_1 - S_0 (the whole quartic and the
quadratic mismatch), and at 32x32 (-2, 2) its last layer keeps a relative residual of about a fifth.
Here the flow first goes from a Gaussian matched at a less critical point S_a = S(m2_a, lam) to S_a
(``n1`` RK4 steps on the clock (t/a)^2, a = n1 / (n1 + n2)), then along m^2 from m2_a to the target's
m2 at fixed lam (``n2`` steps, linear in t): the end approach is dS/dt = (m2 - m2_a) / (1 - a) * sum phi^2 / 2.
Prints the ESS/N of 4000 flow samples (seeds 1, 2), the layers' relative residuals, the continuous
log q error, and the same for the matched path to the target (``fit_lattice``, lean, ``n1 + n2`` steps).
Usage: ``python coupling_path.py L m2 lam m2_a n1 n2 OUT.jsonl``.
"""

import json
import pathlib
import sys
import time

import numpy as np
import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from _flow_record import flow_record  # noqa: E402


def coupling_path(action, m2, lam, m2_a, base, a):
    """The two-segment path: matched Gaussian -> S(m2_a, lam) on (t/a)^2, then m2_a -> m2 linear in t."""
    import pikflow.lattice as pl
    from pikflow import t as T

    path = pl.LatticePath.matched(
        action, {"m2": m2_a, "lam": lam}, np.asarray(base.precision), base.zero_mode_coupling, base.linear_coupling
    )
    s_a = pl.LatticePath(action, {"m2": m2_a, "lam": lam}).density
    s_t = pl.LatticePath(action, {"m2": m2_a + (m2 - m2_a) * (T - a) / (1 - a), "lam": lam}).density
    tau = (T / a) ** 2
    path.density = sp.expand(sp.Piecewise((tau * s_a, T < a), (s_t, True)))
    path.spectral_weight = sp.Piecewise((1 - tau, T < a), (0, True))
    path._lowered = None
    path._symmetry = None
    return path


def measure(flow, label, seconds):
    return {"path": label, "setup": seconds, **flow_record(flow)}


def main(argv):
    import pikflow.lattice as pl
    from pikflow.flow import solve_lattice

    L, m2, lam, m2_a, n1, n2, out = (int(argv[0]), *map(float, argv[1:4]), int(argv[4]), int(argv[5]), argv[6])
    action = pl.LatticeAction(pl.PHI4_DENSITY, [L, L])
    rows = []
    t0 = time.perf_counter()
    flow_a = pl.fit_lattice(pl.LatticePath(action, {"m2": m2_a, "lam": lam}), basis="lean", steps=n1, progress=False)
    rows.append(measure(flow_a, f"matched to S_a = ({m2_a}, {lam})", time.perf_counter() - t0))
    print(json.dumps(rows[-1]), flush=True)
    base = flow_a.base
    t0 = time.perf_counter()
    path = coupling_path(action, m2, lam, m2_a, base, n1 / (n1 + n2))
    basis = pl.preset_basis("lean", path, base, tame=5.0)
    flow = solve_lattice(
        path, basis, base=base, steps=n1 + n2, n_collocation=pl.auto_collocation(basis.n), progress=False
    )
    rows.append(measure(flow, f"coupling path via m2_a = {m2_a} ({n1} + {n2} steps)", time.perf_counter() - t0))
    print(json.dumps(rows[-1]), flush=True)
    t0 = time.perf_counter()
    flow_1 = pl.fit_lattice(pl.LatticePath(action, {"m2": m2, "lam": lam}), basis="lean", steps=n1 + n2, progress=False)
    rows.append(measure(flow_1, f"matched to the target ({n1 + n2} steps)", time.perf_counter() - t0))
    print(json.dumps(rows[-1]), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps({"L": L, "m2": m2, "lam": lam, "m2_a": m2_a, "n1": n1, "n2": n2, "rows": rows}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
