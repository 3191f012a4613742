"""The clock of the matched path against the accuracy of the continuous log-density at few RK4 steps.

``python benchmarks/lattice/clock_logq.py L M2 LAM BASIS STEPS CLOCK... [--json OUT]``: one ``fit_lattice`` per
clock, each an expression in ``t`` for tau(t) (``t``, ``t**2``, ``1-(1-t)**1.5``, ``3*t**2-2*t**3``; powers ``t**p``
are what ``fit_lattice(schedule=p)`` does), the other settings at their defaults; then ESS/N of 4000 samples and the
continuous minus the exact log q of the applied RK4 map on 8 samples (:meth:`LatticeFlow.log_density_error`,
V forward-mode Jacobian columns each). The docs' table "A clock that puts the steps where the flow moves" (lattice
guide) was measured with it; JSON ``clock_logq_*.json`` beside it.
"""

import argparse
import json
import time

import jax
import numpy as np
import sympy as sp

import pikflow.lattice as pl
from pikflow.action import LatticePath
from pikflow.action._path import t as T


def _with_clock(g):
    """``LatticePath.matched`` on the clock ``tau = g(t)`` (density g(t) rho, spectral weight 1 - g(t))."""
    plain = LatticePath.matched.__func__

    def matched(cls, *args, **kwargs):
        path = plain(cls, *args, **kwargs)
        path.density = sp.expand(path.density.subs(T, g))
        path.spectral_weight = 1 - g
        return path

    return classmethod(matched), classmethod(plain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("L", type=int)
    parser.add_argument("m2", type=float)
    parser.add_argument("lam", type=float)
    parser.add_argument("basis")
    parser.add_argument("steps", type=int)
    parser.add_argument("clocks", nargs="+")
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    for clock in args.clocks:
        patched, plain = _with_clock(sp.sympify(clock, locals={"t": T}))
        LatticePath.matched = patched
        try:
            path = LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [args.L, args.L]), {"m2": args.m2, "lam": args.lam})
            t0 = time.perf_counter()
            flow = pl.fit_lattice(
                path, basis=args.basis, steps=args.steps, schedule="uniform", hmc_step="auto", seed=0, progress=False
            )
            setup = time.perf_counter() - t0
        finally:
            LatticePath.matched = plain
        samples = flow.sample(jax.random.PRNGKey(1), 4000)
        err = flow.log_density_error(jax.random.PRNGKey(2), 8)
        row = {
            "clock": clock,
            "steps": args.steps,
            "ess": float(samples.ess()),
            "target_ess": flow.info.get("target_ess"),
            "base": flow.info.get("base"),
            "log_q_error_rms": float(np.sqrt(np.mean(err**2))),
            "log_q_error_max": float(np.abs(err).max()),
            "setup_seconds": setup,
        }
        print(row, flush=True)
        rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"L": args.L, "m2": args.m2, "lam": args.lam, "basis": args.basis, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
