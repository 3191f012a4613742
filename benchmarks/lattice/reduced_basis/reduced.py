"""Prototype: cheaper (and richer) separable bases, solved and polished, against the ``"separable"`` preset (issue #20).

python benchmarks/lattice/reduced_basis/reduced.py OUT.json ITERS VARIANT [VARIANT ...]

Runs: screen_polish200.json (separable p2 s3p2 s2p2), screen_richer_polish200.json (separable sep246 sep468),
screen_scales_polish200.json (separable s3 s2), all with ITERS 200.

At 16x16 (m2, lam) = (-2, 2), 2 RK4 steps on t**3 (as #20's measurements), each VARIANT's basis is solved by
fit_lattice (the matched bases; taming width 5), polished ITERS Adam steps (pikflow.refine.polish), and
then every flow is timed alternately in one process (flow.sample of 2000 draws, float64, 5 repeats), with an
HMC run of 40 leapfrog steps (the tuned length at this point) as the same-process yardstick. Per variant:
ESS/N, the IMH tau_int of |m| (8000 draws), the log q error of 8 draws, ms per sample and its ratio to
"separable".

Variants (all smoothed with the free lattice's e^{-s k^2}: matrices per axis, no transforms but the two-point
term's pair):
  separable   the preset: Fourier two-point term, f4 f6 on 4 scales, their 6 products, log cosh(bM)
  p2          the two-point term replaced by tamed squares f2 on the same 4 scales (no transforms at all)
  no2pt       the two-point term dropped
  s3          3 scales (0.5, 4, 32), with the two-point term
  s3p2        3 scales, f2 f4 f6, no two-point term
  s2          2 scales (1, 16), with the two-point term
  s2p2        2 scales, f2 f4 f6, no two-point term
  sep246      the preset plus tamed squares f2 on its 4 scales (more functions at nearly the same cost)
  sep468      the preset plus f8 on its 4 scales
"""

import json
import sys
import time

import jax
import numpy as np

import pikflow.lattice as pl
from pikflow.diagnostics import imh_chain
from pikflow.diagnostics._gamma import gamma_method
from pikflow.lattice._basis import LatticeBasis, Magnetisation, SmoothedProducts, kept_scales, lattice_basis
from pikflow.lattice._fit_basis import LEAN_SCALE_LADDER, default_scales
from pikflow.refine import polish

LADDERS = {4: LEAN_SCALE_LADDER, 3: (0.5, 4.0, 32.0), 2: (1.0, 16.0)}
VARIANTS = {  # name: (scales, fourier, powers)
    "separable": (4, True, (4, 6)),
    "p2": (4, False, (2, 4, 6)),
    "no2pt": (4, False, (4, 6)),
    "s3": (3, True, (4, 6)),
    "s3p2": (3, False, (2, 4, 6)),
    "s2": (2, True, (4, 6)),
    "s2p2": (2, False, (2, 4, 6)),
    "sep246": (4, True, (2, 4, 6)),
    "sep468": (4, True, (4, 6, 8)),
}
TAME = 5.0


def builder(name):
    n_scales, fourier, powers = VARIANTS[name]

    def build(path, base):
        K0 = np.asarray(base.precision)
        scales = default_scales(K0, LADDERS[n_scales])
        basis = lattice_basis(
            path.lattice,
            fourier=fourier,
            magnetisation=(),
            scales=scales,
            powers=powers,
            precision=K0,
            tame=TAME,
            local_range=None,
            symmetry=path.symmetry(),
            smoothing="lattice",
        )
        fams = list(basis.families)
        pairs = kept_scales(path.lattice, K0, scales)
        if len(pairs) >= 2:
            fams.append(SmoothedProducts(path.lattice, pairs, precision=K0, tame=TAME, smoothing="lattice"))
        if base.m0 > 0:
            fams.append(Magnetisation(path.lattice, (), log_cosh=base.zero_mode_coupling))
        return LatticeBasis(fams)

    return build


def tau_abs_m(samples, key, volume):
    chain = imh_chain(key, samples.log_w).chain(np.abs(np.nan_to_num(samples.magnetisation())) / volume)
    return float(gamma_method(chain).tau_int)


def main(argv):
    out, iters, names = argv[0], int(argv[1]), argv[2:]
    L = 16
    action = pl.LatticeAction(pl.PHI4_DENSITY, (L, L))
    path = pl.LatticePath(action, {"m2": -2.0, "lam": 2.0})
    res, flows = {}, {}
    for name in names:
        t0 = time.perf_counter()
        flow = pl.fit_lattice(path, basis=builder(name), steps=2, schedule=3.0, seed=0, progress=False)
        solve = time.perf_counter() - t0
        rec = polish(flow, iterations=iters, progress=False) if iters else None
        if rec is not None:
            flow = rec.flow
        s = flow.sample(jax.random.PRNGKey(1), 8000)
        res[name] = {
            "basis": repr(flow.basis),
            "n_basis": int(flow.basis.n),
            "base": flow.info.get("base"),
            "solve_seconds": solve,
            "polish": None if rec is None else {k: v for k, v in rec.to_dict().items() if k != "history"},
            "ess": float(s.ess()),
            "tau_int_abs_m": tau_abs_m(s, jax.random.PRNGKey(2), L * L),
            "log_q_error": float(np.max(np.abs(flow.log_density_error(jax.random.PRNGKey(3), 8)))),
        }
        flows[name] = flow
        print(name, json.dumps(res[name]), flush=True)
        json.dump(res, open(out, "w"), indent=1)
    key = jax.random.PRNGKey(11)
    for f in flows.values():
        f.sample(key, 2000)
    pl.hmc(path, jax.random.PRNGKey(12), 4096, n_chains=256, step="auto", n_therm=200, n_leapfrog=40,
           keep="magnetisation")  # fmt: skip
    times = {n: [] for n in flows} | {"hmc trajectory": []}
    for _ in range(5):
        for n, f in flows.items():
            t0 = time.perf_counter()
            f.sample(key, 2000)
            times[n].append((time.perf_counter() - t0) / 2000 * 1e3)
        t0 = time.perf_counter()
        pl.hmc(path, jax.random.PRNGKey(12), 4096, n_chains=256, step="auto", n_therm=200, n_leapfrog=40,
               keep="magnetisation")  # fmt: skip
        times["hmc trajectory"].append((time.perf_counter() - t0) / (4096 + 200 * 256) * 1e3)
    for n, t in times.items():
        med = float(np.median(t))
        entry = res.setdefault(n, {})
        entry["ms"] = {"median": med, "min": float(min(t)), "max": float(max(t)), "values": t}
        if n in flows and "separable" in flows:
            entry["ms_over_separable"] = med / float(np.median(times["separable"]))
        print(n, entry["ms"], flush=True)
    json.dump(res, open(out, "w"), indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
