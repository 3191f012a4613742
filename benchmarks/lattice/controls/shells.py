"""Momentum-shell controls at 16x16 (-2, 2), measured before they were built in: the energies Q_s of the
1 to 6 lowest shells (exact law chi^2_{n_s}/2), with five functions each (Q_s, Q_s^2, Q_s m_b^2, Q_s m_b^4,
Q_s |m_b|) or two (Q_s, Q_s m_b^2), next to the 13 controls of m_b and Q. Prints, per seed, the variance of
the controlled <|m|>, chi and U with the 13 controls over that with each set (separable flow, 2 RK4 steps on
t^3, 10^4 samples, seeds 1-3).

Run: ``python benchmarks/lattice/controls/shells.py`` (a few minutes on 2 cores; JSON lines to shells.jsonl).
"""

# ruff: noqa: B023  (the variants are evaluated inside the loop that defines them)

import json

import numpy as np
from _base_draws import base_draws

import pikflow.lattice as pl
from pikflow.flow._controls import control_matrix, controlled, jackknife_error, zero_mode_moment

L, m2, lam = 16, -2.0, 2.0
path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})
flow = pl.fit_lattice(path, basis="separable", steps=2, schedule=3.0, seed=0, progress=False)
base = flow.base
V = L * L
K = np.asarray(base.precision)
kx = np.minimum(np.arange(L), L - np.arange(L))
SH = [(1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (3, 0)]
masks = []
for a, b in SH:
    mk = np.zeros((L, L), bool)
    for i in range(L):
        for j in range(L):
            if sorted((kx[i], kx[j]), reverse=True) == [a, b]:
                mk[i, j] = True
    masks.append(mk)


def feats(x0):
    ft = np.fft.fftn(np.asarray(x0), axes=(1, 2))
    e = 0.5 * K * np.abs(ft) ** 2 / V
    return [e[:, mk].sum(1) for mk in masks]


def gamma_moments(dof):  # Q ~ chi2_dof / 2: E Q, E Q^2
    h = dof / 2
    return h, h * h + h


for seed in (1, 2, 3):
    n = 10000
    s = flow.sample(n, seed=seed, keep_fields=False, batch=1000)
    QS = [feats(x0) for x0 in base_draws(base, seed, n)]
    QS = [np.concatenate([q[j] for q in QS]) for j in range(len(SH))]
    vals = np.asarray(s.base_controls)
    mb = vals[:, 0]
    centres, sigma = base.zero_mode_law()
    H13 = control_matrix(vals[:, :2], V, centres, sigma)
    Em2 = zero_mode_moment(centres, sigma, 2)
    Em4 = zero_mode_moment(centres, sigma, 4)
    Ea1 = zero_mode_moment(centres, sigma, 1, absolute=True)

    def shell_cols(j, full=True):
        q = QS[j]
        E, EE = gamma_moments(int(masks[j].sum()))
        cols = [q - E, q * mb**2 - E * Em2]
        if full:
            cols += [q**2 - EE, q * mb**4 - E * Em4, q * np.abs(mb) - E * Ea1]
        return cols

    variants = {
        "none": np.zeros((n, 0)),
        "13": H13,
        "13+s1": np.concatenate([H13, np.stack(shell_cols(0), 1)], 1),
        "13+s1,s2": np.concatenate([H13, np.stack(shell_cols(0) + shell_cols(1), 1)], 1),
        "13+s1..s3": np.concatenate([H13, np.stack(shell_cols(0) + shell_cols(1) + shell_cols(2), 1)], 1),
        "13+s1..s6": np.concatenate([H13, np.stack(sum((shell_cols(j) for j in range(6)), []), 1)], 1),
        "13+s1..s6 lean": np.concatenate([H13, np.stack(sum((shell_cols(j, False) for j in range(6)), []), 1)], 1),
    }
    m = np.asarray(s.magnetisation_values).reshape(n, -1)[:, 0]
    lw = np.asarray(s.log_w)
    values = np.stack([m**2, np.abs(m), m**4], axis=1)
    row = {"seed": seed, "ess": float(s.ess())}
    for name, H in variants.items():
        means, reps = controlled(lw, values, H)  # columns m^2, |m|, m^4; the jackknife replicates
        chi = lambda b: V * (b[..., 0] - b[..., 1] ** 2)  # noqa: E731
        binder = lambda b: 1 - b[..., 2] / (3 * b[..., 0] ** 2)  # noqa: E731
        row[name] = {
            "chi": [chi(means), jackknife_error(chi(reps))],
            "abs_m": [means[1], jackknife_error(reps[:, 1])],
            "binder": [binder(means), jackknife_error(binder(reps))],
        }
    print(
        seed,
        {
            k: [round((row["13"][o][1] / v[o][1]) ** 2, 3) for o in ("abs_m", "chi", "binder")]
            for k, v in row.items()
            if isinstance(v, dict)
        },
        flush=True,
    )
    with open("shells.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
