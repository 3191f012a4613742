"""What the flow's log-weights depend on: a regression of log w on global features of the sample (issue #15).

Fits the lean flow (3 steps, ``fit_lattice`` defaults otherwise), draws 4000 samples and regresses the
centred log w on sets of per-sample features: the magnetisation (V m^2, V m^4 / 100), the site sums
sum phi^2, sum phi^4, the nearest-neighbour sum E = sum_x,mu phi_x phi_{x+mu}, their products with V m^2,
and the site sums of the smoothed squares psi_s^2 at the lean basis's four scales. Prints the fraction
of Var log w each set explains (R^2, in-sample, and on a second 4000-sample draw with the first's
coefficients). Usage: ``python weight_features.py L m2 lam OUT.jsonl``.
"""

import json
import sys

import numpy as np


def features(fields, filters):
    V = fields[0].size
    m = fields.mean(axis=(1, 2))
    p2 = (fields**2).sum(axis=(1, 2))
    p4 = (fields**4).sum(axis=(1, 2))
    e = sum((fields * np.roll(fields, 1, axis=ax)).sum(axis=(1, 2)) for ax in (1, 2))
    ft = np.fft.fftn(fields, axes=(1, 2))
    psi2 = [(np.real(np.fft.ifftn(f * ft, axes=(1, 2))) ** 2).sum(axis=(1, 2)) for f in filters]
    vm2 = V * m**2
    return {
        "zero mode (V m^2, V m^4)": [vm2, V * m**4 / 100],
        "local sums (phi^2, phi^4, E)": [p2, p4, e],
        "zero mode + local sums": [vm2, V * m**4 / 100, p2, p4, e],
        "+ products with V m^2": [vm2, V * m**4 / 100, p2, p4, e, vm2 * p2, vm2 * p4, vm2 * e],
        "smoothed squares (4 scales)": psi2,
        "all of the above": [vm2, V * m**4 / 100, p2, p4, e, vm2 * p2, vm2 * p4, vm2 * e, *psi2],
    }


def r2(X, y, coef=None):
    A = np.column_stack([np.ones(len(y)), *X])
    if coef is None:
        coef = np.linalg.lstsq(A, y, rcond=None)[0]
    res = y - A @ coef
    return float(1 - np.var(res) / np.var(y)), coef


def main(argv):
    import pikflow.lattice as pl

    L, m2, lam, out = int(argv[0]), float(argv[1]), float(argv[2]), argv[3]
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})
    flow = pl.fit_lattice(target, basis="lean", steps=3, seed=0, progress=False)
    fams = [f for f in flow.basis.families if type(f).__name__ == "SmoothedPowers"]
    filters = np.asarray(fams[0].filters)
    draws = []
    for seed in (1, 2):
        smp = flow.sample(4000, seed=seed)
        ok = np.isfinite(smp.log_w)
        lw = np.asarray(smp.log_w)[ok]
        draws.append((features(np.asarray(smp.fields)[ok], filters), lw - lw.mean(), float(smp.ess)))
    rec = {"L": L, "m2": m2, "lam": lam, "ess": [d[2] for d in draws]}
    rec["var_log_w"] = [float(np.var(d[1])) for d in draws]
    rec["r2"] = {}
    for name in draws[0][0]:
        fit, coef = r2(draws[0][0][name], draws[0][1])
        held, _ = r2(draws[1][0][name], draws[1][1], coef)
        rec["r2"][name] = [fit, held]
    print(json.dumps(rec, indent=1), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
