"""The base draw's site averages of phi^2, phi^4, phi^6 (exact Gaussian means) as further controls next to
the 19 built in: 16x16 (-2, 2), separable flow, three draws of 10^4; prints the variance gains (0.2-1.4 %).

Run: ``python benchmarks/lattice/controls/local_controls.py``.
"""

import numpy as np
from _base_draws import base_draws

import pikflow.lattice as pl
from pikflow.flow._controls import control_matrix, controlled, jackknife_error

L = 16
path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": -2.0, "lam": 2.0})
flow = pl.fit_lattice(path, basis="separable", steps=2, schedule=3.0, seed=0, progress=False)
base = flow.base
V = L * L
K = np.asarray(base.precision)
s2 = float(np.sum(1.0 / K) / V)
centres, sig = base.zero_mode_law()
EP2 = np.mean([c**2 + s2 for c in centres])
EP4 = np.mean([c**4 + 6 * c**2 * s2 + 3 * s2**2 for c in centres])
EP6 = np.mean([c**6 + 15 * c**4 * s2 + 45 * c**2 * s2**2 + 15 * s2**3 for c in centres])
print("m0", base.m0, "s2", s2)


def est(s, H, name, lw):
    a1 = s.values("abs_m")
    x = np.stack([a1, a1**2, a1**4], 1)
    _, reps = controlled(lw, x, H)
    f = {
        "abs_m": lambda b: b[..., 0],
        "chi": lambda b: V * (b[..., 1] - b[..., 0] ** 2),
        "binder": lambda b: 1 - b[..., 2] / (3 * b[..., 1] ** 2),
    }[name]
    return jackknife_error(f(reps))


for seed in (1, 2, 3):
    n = 10000
    s = flow.sample(n, seed=seed, keep_fields=False, batch=1000)
    P = np.concatenate(
        [
            np.stack([np.mean(x0**2, (1, 2)) - EP2, np.mean(x0**4, (1, 2)) - EP4, np.mean(x0**6, (1, 2)) - EP6], 1)
            for x0 in base_draws(base, seed, n)
        ]
    )
    print("P means / se", P.mean(0) / (P.std(0) / np.sqrt(n)))
    H19 = control_matrix(s.base_controls, V, **s.base_law)
    lw = s._log_w_at(1.0)
    row = {}
    for name in ("abs_m", "chi", "binder"):
        e19 = est(s, H19, name, lw)
        e21 = est(s, np.concatenate([H19, P[:, :2]], 1), name, lw)
        e22 = est(s, np.concatenate([H19, P], 1), name, lw)
        row[name] = [round((e19 / e21) ** 2, 3), round((e19 / e22) ** 2, 3)]
    print(seed, row, flush=True)
