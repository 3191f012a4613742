r"""Kutta's third-order step on the first RK4 step only, where the clock's zero layer makes it 2 evaluations.

On the clock :math:`t = \tau^p` (``fit_lattice``'s ``schedule``) layer 0 is zero, so the first RK4 step costs 3
evaluations. Kutta's third-order step through the same
layers, :math:`k_1 = 0`, :math:`k_2 = v_{h/2}(x)`, :math:`k_3 = v_h(x + 2hk_2)`, :math:`x' = x + \tfrac h6(4k_2 +
k_3)`, costs 2: a flow sample 6 evaluations instead of 7. On :math:`t^3` the first of two steps carries an eighth
of the path's :math:`\Delta\hat S`, so its third-order error may matter less than Kutta's on both steps (measured
worse: ``kutta3.py``).

Run: ``python benchmarks/lattice/integrators/kutta3_first.py {rk4,kutta3-first} -- <pikflow bench lattice
options>``: patches the first step before anything is compiled and runs ``pikflow bench lattice``. Written for the
push that peeled its first step off the loop over the steps (``rk4_zero_first_step``, pikflow a2c84fb and earlier;
the push now loops over the stages, :func:`pikflow.flow.rk4_window`): run it at that commit.
"""

from __future__ import annotations

import sys

import pikflow.flow._compiled as compiled
import pikflow.flow._integrate as integrate
from pikflow.cli import main


def kutta3_zero_first_step(stage, x, log_q, i, dt):
    """Kutta's third-order step ``i`` for a zero layer ``2i`` (the signature of ``rk4_zero_first_step``)."""
    k2, r2 = stage(2 * i + 1, x)
    k3, r3 = stage(2 * i + 2, x + 2.0 * dt * k2)
    return x + dt / 6.0 * (4.0 * k2 + k3), log_q + dt / 6.0 * (4.0 * r2 + r3)


if __name__ == "__main__":
    which, rest = sys.argv[1], sys.argv[sys.argv.index("--") + 1 :]
    if not hasattr(integrate, "rk4_zero_first_step"):
        raise SystemExit("this script patches the peeled first step of pikflow a2c84fb and earlier: run it there")
    if which == "kutta3-first":
        integrate.rk4_zero_first_step = compiled.rk4_zero_first_step = kutta3_zero_first_step
    elif which != "rk4":
        raise SystemExit("first argument: rk4 or kutta3-first")
    sys.exit(main(["bench", "lattice", *rest]))
