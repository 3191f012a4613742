"""The clock of the matched path against the accuracy of the continuous log-density at few RK4 steps.

``python benchmarks/lattice/clock_logq.py L M2 LAM BASIS STEPS CLOCK... [--json OUT]``: one ``fit_lattice`` per
clock, each an expression in ``t`` for tau(t) (``t``, ``t**2``, ``1-(1-t)**1.5``, ``3*t**2-2*t**3``; powers ``t**p``
are what ``fit_lattice(schedule=p)`` does), the other settings at their defaults; then ESS/N of 4000 samples and the
continuous minus the exact log q of the applied RK4 map on 8 samples (:meth:`LatticeFlow.log_density_error`,
V forward-mode Jacobian columns each). The docs' table "A clock that puts the steps where the flow moves" (lattice
guide) was measured with it; JSON ``clock_logq_*.json`` beside it.
"""

import time

import jax
import sympy as sp
from steps_logq import accuracy, point_parser, write  # the same measurement and output as for the step counts

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
    parser = point_parser(__doc__)
    parser.add_argument("steps", type=int)
    parser.add_argument("clocks", nargs="+")
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
        row = {"clock": clock, "steps": args.steps, **accuracy(flow, samples), "base": flow.info.get("base")}
        row["setup_seconds"] = setup
        print(row, flush=True)
        rows.append(row)
    write(args, rows)


if __name__ == "__main__":
    main()
