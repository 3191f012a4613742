"""Does the layer-parallel solve hang when its layers are sharded by GSPMD (one jit over a sharded layer axis)?

``XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu python benchmarks/gspmd_probe.py direct``
(or ``lm``, ``adam``; a second argument ``sync`` turns off asynchronous CPU dispatch). It solves the
paper's phi^4 path with ``mode="parallel"`` (one block of layers per device, as pikflow does), then
calls the same compiled all-layers function once with the layer axis sharded over the devices by
GSPMD, and prints "gspmd ok" or, after 170 s without progress, the Python stacks and exits. It
also prints which collectives the partitioned program holds. See docs/guide/scaling.md for what it
measured with jax 0.10.2 on CPU.
"""

import faulthandler
import re
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import pikflow as pf

COLLECTIVES = r"(all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter|send|recv)\("


def main(kind: str, sync: bool) -> None:
    faulthandler.dump_traceback_later(170, exit=True)
    if sync:
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    action = pf.Action("m2/2*phi**2 + lam/4*phi**4", fields=["phi"])
    path = pf.Path.linear(action, start={"m2": 1.0, "lam": 0.0}, end={"m2": -2.0, "lam": 0.5})
    solvers = {
        "direct": None,
        "lm": pf.LevenbergMarquardtSolver(n_frequencies=3, max_steps=20),
        "adam": pf.AdamSolver(epochs=50, warm_epochs=50),
    }
    kw = {} if solvers[kind] is None else {"solver": solvers[kind]}
    t0 = time.time()
    flow = pf.solve(path, steps=4, mode="parallel", progress=False, **kw)  # per-device blocks (pikflow's way)
    print(kind, "blocks ok", round(time.time() - t0, 1), flush=True)
    eq = flow.equation
    (key, fn), *_ = [(k, v) for k, v in eq.cache.items() if isinstance(k, tuple) and k and k[0] == "parallel"]
    solver, colloc = key[1], key[2]
    mesh = Mesh(np.array(jax.devices()), ("samples",))
    n = 12
    times = jax.device_put(jnp.linspace(0, 1, n), NamedSharding(mesh, P("samples")))
    keys = jax.device_put(jax.random.split(jax.random.PRNGKey(0), n), NamedSharding(mesh, P("samples")))
    start, _ = flow.base.sample(jax.random.PRNGKey(1), max(colloc.n_samples, 1))
    init = solver.initial(eq, jax.random.PRNGKey(7))
    t0 = time.time()
    compiled = fn.lower(times, keys, start, init).compile()
    hlo = compiled.compiled.as_text()
    print("compiled", round(time.time() - t0, 1), "collectives:", sorted(set(re.findall(COLLECTIVES, hlo))), flush=True)
    out = compiled(times, keys, start, init)
    jax.block_until_ready(out)
    print(kind, "gspmd ok", round(time.time() - t0, 1), jax.device_count(), "devices", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], len(sys.argv) > 2 and sys.argv[2] == "sync")
