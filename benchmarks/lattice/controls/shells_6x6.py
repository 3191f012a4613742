"""Which functions of the shells' energies to keep: 6x6 (-1, 1), 30 draws of 2000 samples of a lean flow; for
each set of controls the spread of the controlled chi over the draws, its mean reported error and their ratio.
Q_s m_b^2 carries the gain; Q_s m_b^4 makes chi noisier, with errors that understate the spread.

Run: ``python benchmarks/lattice/controls/shells_6x6.py`` (about 2 minutes).
"""

# ruff: noqa: B023  (the variants are evaluated inside the loop that defines them)

import numpy as np

import pikflow.lattice as pl
from pikflow.flow._controls import control_matrix, controlled, jackknife_error

L = int(__import__("sys").argv[1]) if len(__import__("sys").argv) > 1 else 6
path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": -1.0, "lam": 1.0})
flow = pl.fit_lattice(path, basis="lean", steps=2, schedule=3, seed=0, progress=False)
draws = [flow.sample(2000, seed=seed, keep_fields=False) for seed in range(30)]
V = L * L


def full_matrix(s):
    """The 13 controls of m_b and Q, then per shell Q_s, Q_s^2, Q_s m_b^2, Q_s m_b^4, Q_s |m_b| (28 columns)."""
    from pikflow.flow._controls import zero_mode_moment

    law = s.base_law
    values = np.asarray(s.base_controls)
    H = control_matrix(values[:, :2], V, law["centres"], law["sigma"])
    m = values[:, 0]
    c, sg = law["centres"], law["sigma"]
    e2, e4 = zero_mode_moment(c, sg, 2), zero_mode_moment(c, sg, 4)
    a1 = zero_mode_moment(c, sg, 1, absolute=True)
    cols = []
    for j, size in enumerate(law["shells"]):
        q, E = values[:, 2 + j], size / 2
        cols += [q - E, q**2 - (E * E + E), q * m**2 - E * e2, q * m**4 - E * e4, q * np.abs(m) - E * a1]
    return np.concatenate([H, np.stack(cols, axis=1)], axis=1)


def chi_est(s, cols):
    H = full_matrix(s)[:, cols]
    a1 = s.values("abs_m")
    x = np.stack([a1, a1**2, a1**4], 1)
    means, reps = controlled(s._log_w_at(1.0), x, H)
    chi = lambda b: V * (b[..., 1] - b[..., 0] ** 2)  # noqa: E731
    return chi(means), jackknife_error(chi(reps))


base13 = list(range(13))
variants = {
    "13": base13,
    "13+Qs": base13 + [13, 18, 23],
    "13+Qs,Qs m2 (built in)": base13 + [13, 15, 18, 20, 23, 25],
    "13+Qs,Qs2": base13 + [13, 14, 18, 19, 23, 24],
    "13+Qs,Qs m2,Qs|m|": base13 + [13, 15, 17, 18, 20, 22, 23, 25, 27],
    "13+Qs,Qs m2,Qs m4": base13 + [13, 15, 16, 18, 20, 21, 23, 25, 26],
    "13+s1 all five": base13 + list(range(13, 18)),
    "all": list(range(28)),
}
for name, cols in variants.items():
    est = np.array([chi_est(s, cols) for s in draws])
    spread, err = est[:, 0].std(ddof=1), est[:, 1].mean()
    print(f"{name}: spread {spread:.5f}, mean error {err:.5f}, ratio {spread / err:.2f}, mean {est[:, 0].mean():.4f}")
