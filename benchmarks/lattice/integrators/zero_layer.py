r"""The zero layer of the clock t = tau**p (p > 1) is not evaluated: loop, peeled, unrolled and stage-loop pushes.

On the clock tau**p layer 0 carries dt/dtau = 0, so RK4's first stage of the first step is zero. Six pushes of
one fitted flow (16x16 (-2, 2), separable basis, 2 steps on t^3), float64 and float32, batch 128, 21 alternating
rounds: ``loop`` (a loop over the steps, every stage evaluated), ``peeled`` (the first step with 3 evaluations,
peeled off that loop: the code from the zero-layer change to pikflow a2c84fb), ``unrolled`` and ``unrolled-zero``
(both steps written out, to see whether the gain is the skipped evaluation or the unrolling), and ``stages`` and
``stages-every`` (the code now: the library's compiled push, :func:`pikflow.flow._compiled.window_push`, one loop
over the RK4 stages with one evaluation in its body and the window, step and skip traced, with and without the zero
stage skipped). Checks that all give the same samples and log q bit for bit; times each compilation.

Run: ``python benchmarks/lattice/integrators/zero_layer.py [L] [steps]``; writes
``zero_layer_L{L}_steps{steps}_stages.json`` beside this file (``zero_layer_L16_steps2.json``: the first four kinds,
before the stage loop).
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
from pikflow.flow import _compiled
from pikflow.flow._integrate import _stage_step, rk4

KINDS = ("loop", "peeled", "unrolled", "unrolled-zero", "stages", "stages-every")


def step_loop(stage, x, lq, first, count, dt):
    """RK4 steps ``first .. first + count - 1`` in a loop over the steps: four evaluations in the body (the push
    before the stage loop)."""
    return jax.lax.fori_loop(first, first + count, lambda i, carry: _stage_step(stage, i, carry, dt), (x, lq))


def zeros_of(evaluate, y):
    """Zeros of the shapes and dtypes ``evaluate(y)`` returns, without evaluating it (a zero layer's stage)."""
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(evaluate, y))


def zero_first_step(stage, x, lq, i, dt):
    """RK4 step ``i`` with the zero layer ``2i`` not evaluated, written out (the push's peeled first step before)."""
    zero = lambda z: zeros_of(lambda w: stage(2 * i + 1, w), z)  # noqa: E731
    new, dlq = rk4(zero, lambda z: stage(2 * i + 1, z), lambda z: stage(2 * i + 2, z), x, dt)
    return new, lq + dlq


def make(ev, kind, precision, steps):
    """The jitted push ``(params, coeffs, x, lq)`` of ``kind`` (see the module docstring)."""
    both = jax.vmap(ev.evaluate, (None, None, 0))
    low = jnp.float32 if precision == "float32" else None
    dt = 1.0 / steps

    def push(params, coeffs, x, lq):
        if low is not None:
            params = _compiled._as(low, params)

        def stage(k, y):
            a = coeffs[k]
            if low is None:
                return (lambda g, lap: (-g, lap))(*both(params, a, y))
            g, lap = both(params, a.astype(low), y.astype(low))
            return -g.astype(y.dtype), lap.astype(y.dtype)

        if kind == "loop":
            return step_loop(stage, x, lq, 0, steps, dt)
        if kind == "peeled":
            x, lq = zero_first_step(stage, x, lq, 0, dt)
            return step_loop(stage, x, lq, 1, steps - 1, dt)
        carry = (x, lq)
        for i in range(steps):
            zero = i == 0 and kind == "unrolled-zero"
            carry = zero_first_step(stage, *carry, 0, dt) if zero else _stage_step(stage, i, carry, dt)
        return carry

    if kind.startswith("stages"):  # the library's program, its window, step and skip traced arguments
        library = jax.jit(_compiled.window_push(ev.evaluate, precision))
        skip = int(kind == "stages")
        return lambda params, coeffs, x, lq: library(params, coeffs, x, lq, 0, steps, -1.0, dt, skip)
    return jax.jit(push)


def main(L: int = 16, steps: int = 2, rounds: int = 21) -> dict:
    jax.config.update("jax_enable_x64", True)
    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": -2.0, "lam": 2.0})
    basis = "separable" if L <= 32 else "lean"
    flow = pl.fit_lattice(path, basis=basis, steps=steps, schedule=3, seed=0, progress=False)
    ev, coeffs = flow.basis.fused, jnp.asarray(flow.coeffs)
    x, lq = flow.base.sample(jax.random.PRNGKey(0), 128)
    runs, compile_seconds = {}, {}
    for p in ("float64", "float32"):
        for kind in KINDS:
            f = make(ev, kind, p, steps)
            t0 = time.perf_counter()
            if kind.startswith("stages"):  # the first call compiles (the same program for both kinds: twice here)
                jax.block_until_ready(f(ev.params, coeffs, x, lq))
            else:
                f.lower(ev.params, coeffs, x, lq).compile()
            compile_seconds[f"{kind}/{p}"] = time.perf_counter() - t0
            runs[f"{kind}/{p}"] = lambda f=f: f(ev.params, coeffs, x, lq)
    outs = {k: jax.block_until_ready(f()) for k, f in runs.items()}
    bitwise = {}
    for k, out in outs.items():
        ref = outs["loop/" + k.split("/")[1]]
        bitwise[k] = bool(jnp.array_equal(ref[0], out[0]) and jnp.array_equal(ref[1], out[1]))
    us = {k: [] for k in runs}
    for _ in range(rounds):
        for k, f in runs.items():
            t0 = time.perf_counter()
            for _ in range(10):
                jax.block_until_ready(f())
            us[k].append((time.perf_counter() - t0) / 10 / 128 * 1e6)
    speedup = {k: float(np.median(np.array(us["loop/" + k.split("/")[1]]) / np.array(v))) for k, v in us.items()}
    for k, v in us.items():
        print(f"{k}: {np.median(v):.2f} [{min(v):.2f}, {max(v):.2f}] us/sample, speed-up {speedup[k]:.3f}, "
              f"bitwise {bitwise[k]}, compile {compile_seconds[k]:.2f} s")  # fmt: skip
    res = {"L": L, "steps": steps, "basis": basis, "batch": 128, "rounds": rounds, "compile_seconds": compile_seconds,
           "bitwise_vs_loop": bitwise, "speedup_vs_loop": speedup, "us_per_sample": us}  # fmt: skip
    out = pathlib.Path(__file__).with_name(f"zero_layer_L{L}_steps{steps}_stages.json")
    out.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
