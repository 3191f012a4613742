r"""Prototype: one coefficient vector per RK4 *stage* under the polish, against one per layer (issue #20).

python benchmarks/lattice/stage_coeffs/stage_coeffs.py OUT.json ITERS STEPS [STEPS ...] [--stages-only]

A solved flow holds one coefficient vector per layer, at :math:`t_i`, :math:`t_i + \Delta t/2` and
:math:`t_{i+1}`: RK4's two middle stages share one, and the last stage of a step shares its layer with the
first of the next. Once the coefficients are polished on the KL divergence of the map that sampling applies
(``pikflow.refine.polish``) they no longer solve eq. 34 at any time, so nothing ties the stages together.
Giving every stage its own vector (``4 steps`` of them) adds capacity at no cost per sample: the same
evaluations, only other numbers. The continuous log-density keeps RK4's weights; the polish holds it to the
exact one of the map (its penalty), and its keep rule judges the result as for the layer form.

At 16x16 (m2, lam) = (-2, 2), for each STEPS (RK4 steps on the clock t**3, the separable basis, fit_lattice
with seed 0): the solved flow polished ITERS Adam steps in the layer form (the package's ``polish``), then in
the stage form (the solved layers copied to their stages, the same polish with ``rk4_window`` indexing stages:
the loop's stage ``4 i + j`` uses vector ``4 i + j``). Per flow: ESS/N and the ESS/N seen from the reference
HMC configurations, the IMH tau_int of |m| (8000 draws, one chain), the largest |log q error| of 8 draws.
The layer form run through the stage code gives the same samples (a check printed as ``same``). The reverse push
(``LatticeFlow.log_density``, behind the ESS/N from the reference configurations) reverses the rows, so a reversed
step runs its stages' vectors in the order 3, 2, 1, 0: with untied stages the two middle vectors swap roles, and
the accuracy of that reverse is not checked here.
"""

import importlib
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import pikflow.flow._compiled as compiled
import pikflow.lattice as pl
from pikflow.diagnostics import imh_chain
from pikflow.diagnostics._gamma import gamma_method
from pikflow.flow import LatticeFlow
from pikflow.flow._integrate import RK4_OFFSETS, RK4_WEIGHTS
from pikflow.refine import polish

polish_module = importlib.import_module("pikflow.refine._polish")  # pikflow.refine is also a function

L, SCHEDULE, SEED = 16, 3.0, 0


def rk4_window_stages(stage, x, log_q, first, count, dt, skip=0):
    """``pikflow.flow.rk4_window`` with stage ``s = 4 i + j`` of the loop using coefficient vector ``s``."""
    c = jnp.asarray(RK4_OFFSETS, dtype=x.dtype)
    b = jnp.asarray(RK4_WEIGHTS, dtype=x.dtype)

    def body(s, carry):
        x, lq, k, acc, lacc = carry
        j = s % 4
        y = jnp.where(j == 0, x, x + (c[j] * dt) * k)
        k, r = stage(s, y)
        acc = jnp.where(j == 0, 0.0, acc) + b[j] * k
        lacc = jnp.where(j == 0, 0.0, lacc) + b[j] * r
        done = j == 3
        return jnp.where(done, x + dt / 6.0 * acc, x), jnp.where(done, lq + dt / 6.0 * lacc, lq), k, acc, lacc

    zeros, lzeros = jnp.zeros_like(x), jnp.zeros_like(log_q)
    out = jax.lax.fori_loop(4 * first + skip, 4 * (first + count), body, (x, log_q, zeros, zeros, lzeros))
    return out[0], out[1]


def use_stages():
    """Every push compiled from now on (sampling, reverse, exact log-density, polish) indexes stages."""
    compiled.rk4_window = rk4_window_stages
    polish_module.rk4_window = rk4_window_stages
    compiled.clear_cache()


def as_stages(flow):
    """The same map with one vector per stage (``4 steps`` rows): stage ``(i, j)`` gets layer ``2 i + (0,1,1,2)[j]``."""
    rows = [2 * i + (0, 1, 1, 2)[j] for i in range(flow.steps) for j in range(4)]
    out = LatticeFlow(flow.path, flow.basis, flow.base, np.asarray(flow.coeffs)[rows], flow.steps, flow.reports)
    out.info, out.reference = dict(flow.info), flow.reference
    return out


def measure(flow):
    s = flow.sample(jax.random.PRNGKey(1), 8000, progress=False)
    chain = imh_chain(jax.random.PRNGKey(2), s.log_w).chain(np.abs(np.nan_to_num(s.magnetisation())) / L**2)
    err = flow.log_density_error(jax.random.PRNGKey(3), 8)
    return {
        "ess": float(s.ess()),
        "target_ess": float(flow.target_ess(flow.reference, s)),
        "tau_int_abs_m": float(gamma_method(chain).tau_int),
        "log_q_error": float(np.max(np.abs(err))),
        "first_log_w": float(s.log_w[0]),
    }


def record(rec):
    return {k: v for k, v in rec.to_dict().items() if k != "history"} | {"history": rec.history[::10]}


def main(argv):
    only = "--stages-only" in argv  # the layer form not polished (its solved flow still measured)
    argv = [a for a in argv if a != "--stages-only"]
    out, iters, step_counts = argv[0], int(argv[1]), [int(a) for a in argv[2:]]
    action = pl.LatticeAction(pl.PHI4_DENSITY, (L, L))
    path = pl.LatticePath(action, {"m2": -2.0, "lam": 2.0})
    solved, res = {}, {}
    for steps in step_counts:  # layer form, the package's code
        flow = pl.fit_lattice(path, basis="separable", steps=steps, schedule=SCHEDULE, seed=SEED, progress=False)
        t0 = time.perf_counter()
        rec = polish(flow, iterations=0 if only else iters, progress=False)
        res[f"steps{steps}"] = {
            "solved": measure(flow),
            "layers": {"polish": record(rec), "seconds": time.perf_counter() - t0, **measure(rec.flow)},
        }
        solved[steps] = (flow, rec.flow)
        print(steps, json.dumps(res[f"steps{steps}"]["layers"] | {"polish": None}), flush=True)
        json.dump(res, open(out, "w"), indent=1)
    use_stages()
    for steps in step_counts:
        flow, layered = solved[steps]
        entry = res[f"steps{steps}"]
        check = measure(as_stages(layered))
        entry["layers_through_stage_code"] = check
        entry["same"] = abs(check["first_log_w"] - entry["layers"]["first_log_w"]) < 1e-9
        t0 = time.perf_counter()
        rec = polish(as_stages(flow), iterations=iters, progress=False)
        entry["stages"] = {"polish": record(rec), "seconds": time.perf_counter() - t0, **measure(rec.flow)}
        print(steps, json.dumps(entry["stages"] | {"polish": None}), "same", entry["same"], flush=True)
        json.dump(res, open(out, "w"), indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
