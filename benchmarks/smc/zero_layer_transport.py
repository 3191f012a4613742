r"""The lattice SMC's transport with the zero first layer skipped against every stage evaluated.

At 32x32 (-2, 2), the separable basis with 2 RK4 steps on the clock t^3 (layer 0 is zero), float32 evaluation:
the two transport steps of :func:`pikflow.lattice.lattice_problem` on 2048 particles in the SMC's chunks of
``PARTICLE_BATCH``, the code (``code``: a ``lax.cond`` on the first stage in ``zero_layer_transport.json``, a loop
over the RK4 stages starting one stage later since, ``zero_layer_transport_stages.json``) against the same
transport written with every stage evaluated (``every``), 9 alternating rounds in one process; microseconds per
particle and step, the compilation of each, and the largest difference of the two maps and log-Jacobians
(float32 rounding).

Run: ``python benchmarks/smc/zero_layer_transport.py [OUT.json]``; writes ``zero_layer_transport_stages.json``
beside this file by default.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import pikflow.lattice as pl
from pikflow.flow import rk4
from pikflow.flow._compiled import _as
from pikflow.samplers import PARTICLE_BATCH


def main(L: int = 32, n: int = 2048, rounds: int = 9, out: str = "zero_layer_transport_stages.json") -> dict:
    jax.config.update("jax_enable_x64", True)
    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": -2.0, "lam": 2.0})
    flow = pl.fit_lattice(path, basis="separable", steps=2, schedule=3, seed=0, progress=False)
    prob = pl.lattice_problem(flow, precision="float32")
    ev, low, coeffs, dt = flow.basis.fused, jnp.float32, jnp.asarray(flow.coeffs), 1.0 / flow.steps
    params = _as(low, ev.params)

    def stage(a):
        def f(x):
            g, lap = ev.evaluate(params, a.astype(low), x.astype(low))
            return -g.astype(x.dtype), lap.astype(x.dtype)

        return f

    def every(k, x):  # the transport before: every RK4 stage evaluated
        a = jax.lax.dynamic_slice_in_dim(coeffs, 2 * k, 3)
        new, lap = rk4(stage(a[0]), stage(a[1]), stage(a[2]), x, dt)
        return new, -lap

    steps = {
        name: jax.jit(lambda k, x, t=t: jax.lax.map(lambda z: t(k, z), x, batch_size=PARTICLE_BATCH))
        for name, t in (("every", every), ("code", prob.transport))
    }
    x, _ = flow.base.sample(jax.random.PRNGKey(0), n)
    outs, compile_seconds = {}, {}
    for name, f in steps.items():
        t0 = time.perf_counter()
        f.lower(0, x).compile()
        compile_seconds[name] = time.perf_counter() - t0
        y = f(0, x)
        outs[name] = (y, jax.block_until_ready(f(1, y[0])))
    diff = {
        "x": float(jnp.max(jnp.abs(outs["every"][1][0] - outs["code"][1][0]))),
        "log_jacobian": float(jnp.max(jnp.abs(outs["every"][1][1] - outs["code"][1][1]))),
    }
    us = {f"{name}/step{k}": [] for name in steps for k in (0, 1)}
    for _ in range(rounds):
        for name, f in steps.items():
            for k in (0, 1):
                t0 = time.perf_counter()
                jax.block_until_ready(f(k, x))
                us[f"{name}/step{k}"].append((time.perf_counter() - t0) / n * 1e6)
    med = {k: float(np.median(v)) for k, v in us.items()}
    speedup = (med["every/step0"] + med["every/step1"]) / (med["code/step0"] + med["code/step1"])
    for k, v in us.items():
        print(f"{k}: {med[k]:.1f} [{min(v):.1f}, {max(v):.1f}] us a particle")
    print(f"both steps: {speedup:.3f}x faster; largest differences {diff}; compiled in {compile_seconds} s")
    res = {"L": L, "n": n, "rounds": rounds, "us_per_particle": us, "median": med, "speedup": speedup}
    res["compile_seconds"] = compile_seconds
    res["max_difference"] = diff
    pathlib.Path(__file__).with_name(out).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main(**({"out": sys.argv[1]} if len(sys.argv) > 1 else {}))
