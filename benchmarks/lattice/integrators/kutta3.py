r"""Kutta's third-order step on the RK4 layers: 3 velocity evaluations a step instead of 4 (issue #20's lever).

The solved layers sit at :math:`t`, :math:`t + \Delta t/2` and :math:`t + \Delta t` of every step (RK4 uses the
middle one twice). Kutta's third-order method uses the same three times once each,

.. math::  k_1 = v_t(x),\quad k_2 = v_{t+h/2}(x + \tfrac h2 k_1),\quad k_3 = v_{t+h}(x - h k_1 + 2h k_2),
           \quad x' = x + \tfrac h6(k_1 + 4k_2 + k_3),

with the continuous log-density accumulated by the same weights. So a flow solved for RK4 can be sampled with a
quarter fewer evaluations; the price is a third-order error in the map and in :math:`\log q`, which
``log_q_error_rms`` (continuous against the exact log-Jacobian of the map applied) measures.

Run: ``python benchmarks/lattice/integrators/kutta3.py {rk4,kutta3} -- <pikflow bench lattice options>``: patches
the one integrator, :func:`pikflow.flow._integrate.rk4`, before anything is compiled (the solve's own pushes
then use it too), and runs ``pikflow bench lattice``. Written for the push of pikflow a2c84fb and earlier, which
called ``rk4`` once a step; the push now loops over the RK4 stages (:func:`pikflow.flow.rk4_window`): run it there.
"""

from __future__ import annotations

import sys

import pikflow.flow._integrate as integrate
from pikflow.cli import main


def kutta3(first, middle, last, x, dt):
    """Kutta's third-order step with the signature of :func:`pikflow.flow._integrate.rk4`."""
    k1, r1 = first(x)
    k2, r2 = middle(x + 0.5 * dt * k1)
    k3, r3 = last(x - dt * k1 + 2.0 * dt * k2)
    return x + dt / 6.0 * (k1 + 4.0 * k2 + k3), dt / 6.0 * (r1 + 4.0 * r2 + r3)


if __name__ == "__main__":
    which, rest = sys.argv[1], sys.argv[sys.argv.index("--") + 1 :]
    if not hasattr(integrate, "rk4_zero_first_step"):  # the push now loops over the stages and never calls rk4
        raise SystemExit("this script patches the RK4 step of the push of pikflow a2c84fb and earlier: run it there")
    if which == "kutta3":
        integrate.rk4 = kutta3
    elif which != "rk4":
        raise SystemExit("first argument: rk4 or kutta3")
    sys.exit(main(["bench", "lattice", *rest]))
