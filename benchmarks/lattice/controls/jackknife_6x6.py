"""Are the controlled estimates' errors honest? 6x6 (-1, 1), the lean flow (2 steps on t^3): 60 independent draws
of N samples, each estimated with the base controls; the errors by the regression's leverage-corrected residuals
("HC3", the earlier error), by the delete-a-group jackknife (20 groups, what ``controls=True`` now reports) and
the jackknife's bias-corrected estimate, against a controlled reference from 2e5 samples.

Run: ``python benchmarks/lattice/controls/jackknife_6x6.py N [DRAWS]`` (N = 2000: about 4 minutes); appends a JSON
line to ``jackknife_6x6.jsonl`` beside this script.
"""

import json
import pathlib
import sys

import numpy as np

import pikflow.lattice as pl
from pikflow.flow._controls import controlled, jackknife_error

L, V, G = 6, 36, 20
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
D = int(sys.argv[2]) if len(sys.argv) > 2 else 60
F = {
    "abs_m": lambda b: b[..., 0],
    "chi": lambda b: V * (b[..., 1] - b[..., 0] ** 2),
    "binder": lambda b: 1 - b[..., 2] / (3 * b[..., 1] ** 2),
}


def grad(name, b):
    b1, b2, b4 = b
    return {
        "abs_m": np.array([1.0, 0, 0]),
        "chi": np.array([-2 * V * b1, V, 0.0]),
        "binder": np.array([0.0, 2 * b4 / (3 * b2**3), -1 / (3 * b2**2)]),
    }[name]


def hc3_error(lw, x, H, g):
    """The earlier error: residuals of the regression of the linearised series, divided by 1 - leverage."""
    w = np.exp(lw - lw.max())
    w = w / w.mean()
    u = w[:, None] * (x - (w @ x) / w.sum())
    X = np.concatenate([np.ones((len(lw), 1)), H / H.std(axis=0)], axis=1)
    beta, *_ = np.linalg.lstsq(X, u, rcond=None)
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    lev = np.sum(U[:, s > s[0] * 1e-12] ** 2, axis=1)
    r = (u - X @ beta) / (1 - np.minimum(lev, 0.5))[:, None]
    return float(np.sqrt(np.sum((r @ g) ** 2)) / len(lw))


path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": -1.0, "lam": 1.0})
flow = pl.fit_lattice(path, basis="lean", steps=2, schedule=3, seed=0, progress=False)
ref = flow.sample(200_000, seed=1000, keep_fields=False)
reference = {n: ref.observable(n, controls=True) for n in F}
rows = {n: [] for n in F}
for seed in range(D):
    s = flow.sample(N, seed=seed, keep_fields=False)
    lw, a1 = np.asarray(s._log_w_at(1.0)), s.values("abs_m")
    x, H = np.stack([a1, a1**2, a1**4], 1), s._control_matrix
    means, reps = controlled(lw, x, H)
    for n, f in F.items():
        th = f(reps)
        rows[n].append([f(means), hc3_error(lw, x, H, grad(n, means)), G * f(means) - (G - 1) * th.mean(),
                        jackknife_error(th)])  # fmt: skip
out = {"lattice": [L, L], "couplings": {"m2": -1.0, "lam": 1.0}, "samples": N, "draws": D, "groups": G}
for n, a in rows.items():
    a = np.array(a)
    rv = reference[n].value
    out[n] = {"reference": [rv, reference[n].error]}
    for label, vi, ei in (("hc3", 0, 1), ("jackknife", 0, 3), ("jackknife_bias_corrected", 2, 3)):
        v, e = a[:, vi], a[:, ei]
        spread = float(v.std(ddof=1))
        pulls = (v - rv) / e
        out[n][label] = {
            "spread": spread, "mean_error": float(e.mean()), "spread_over_error": spread / float(e.mean()),
            "bias_over_spread": float((v.mean() - rv) / spread), "pull_rms": float(np.sqrt(np.mean(pulls**2))),
        }  # fmt: skip
        print(n, label, {k: round(val, 3) for k, val in out[n][label].items() if k != "spread"})
with open(pathlib.Path(__file__).with_name("jackknife_6x6.jsonl"), "a") as fh:
    fh.write(json.dumps(out) + "\n")
