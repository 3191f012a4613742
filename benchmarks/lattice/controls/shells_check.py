"""The built-in controls (19, with the shells) against the 13 of m_b and Q: at 6x6 (-1, 1) the spread of 60
controlled estimates over their mean error and the variance gain over the plain estimate; at 16x16 (-2, 2) the
variance gain of 19 over 13 and over plain (three draws of 10^4).

Run: ``python benchmarks/lattice/controls/shells_check.py`` (writes shells_check.json).
"""

import json

import numpy as np

import pikflow.lattice as pl
from pikflow.flow._controls import control_matrix, controlled, jackknife_error


def est(s, name, cols):
    V = s.volume
    H = control_matrix(s.base_controls, V, **s.base_law)[:, cols]
    a1 = s.values("abs_m")
    x = np.stack([a1, a1**2, a1**4], 1)
    means, reps = controlled(s._log_w_at(1.0), x, H)
    f = {
        "abs_m": lambda b: b[..., 0],
        "chi": lambda b: V * (b[..., 1] - b[..., 0] ** 2),
        "binder": lambda b: 1 - b[..., 2] / (3 * b[..., 1] ** 2),
    }[name]
    return f(means), jackknife_error(f(reps))


out = {}
path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [6, 6]), {"m2": -1.0, "lam": 1.0})
flow = pl.fit_lattice(path, basis="lean", steps=2, schedule=3, seed=0, progress=False)
draws = [flow.sample(2000, seed=seed, keep_fields=False) for seed in range(60)]
for name in ("abs_m", "chi", "binder"):
    plain = np.array([s.observable(name).value for s in draws])
    for label, cols in (("13", list(range(13))), ("19", list(range(19)))):
        e = np.array([est(s, name, cols) for s in draws])
        out[f"6x6 {name} {label}"] = dict(
            ratio=float(e[:, 0].std(ddof=1) / e[:, 1].mean()), gain=float(plain.var(ddof=1) / e[:, 0].var(ddof=1))
        )
        print(f"6x6 {name} {label}", out[f"6x6 {name} {label}"], flush=True)
path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [16, 16]), {"m2": -2.0, "lam": 2.0})
flow = pl.fit_lattice(path, basis="separable", steps=2, schedule=3.0, seed=0, progress=False)
for seed in (1, 2, 3):
    s = flow.sample(10000, seed=seed, keep_fields=False)
    for name in ("abs_m", "chi", "binder"):
        a, b = est(s, name, list(range(13))), est(s, name, list(range(19)))
        p = s.observable(name)
        out[f"16x16 {name} seed{seed}"] = dict(
            gain_19_over_13=(a[1] / b[1]) ** 2, gain_19_over_plain=(p.error / b[1]) ** 2, v13=a[0], v19=b[0], e19=b[1]
        )
        print(f"16x16 {name} seed{seed}", out[f"16x16 {name} seed{seed}"], flush=True)
json.dump(out, open("shells_check.json", "w"), indent=1)
