"""Where pikflow's HMC spends its fixed cost per trajectory: the momentum draw.

Run: ``python benchmarks/hmc/fixed_cost.py OUT.json``. At 16x16 :math:`(m^2, \\lambda) = (-2, 2)` with 256 chains
(the benches' batch) it times :func:`pikflow.lattice.hmc` at 1, 10 and 40 leapfrog steps (200 trajectories a chain
kept as the magnetisation, fixed step 0.05, minimum of 3 calls after a compiling one), so that a straight line in
the length gives the fixed cost per trajectory and chain and the cost per leapfrog step; and, in the same process,
the parts of a trajectory's fixed cost that do not depend on the action, each in a compiled scan over 200
trajectories of 256 chains: the momentum draw as BlackJAX makes it (a key per chain, 256 float64 normals each),
one draw of all chains' normals, the raw 64-bit random bits alone, uniforms plus the inverse error function, and a
Box-Muller transform, for JAX's default PRNG (threefry) and for ``rbg`` and ``unsafe_rbg``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

CHAINS, SITES, TRAJECTORIES = 256, 256, 200


def _min_seconds(f, *args, repeats=5):
    import jax

    jax.block_until_ready(f(*args))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t0)
    return min(ts)


def parts(impl: str) -> dict:
    """µs per trajectory and chain of each random part, with ``impl`` as JAX's PRNG."""
    import jax

    jax.config.update("jax_default_prng_impl", impl)
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    C, D, T = CHAINS, SITES, TRAJECTORIES

    def scanned(draw):
        def run(key):
            body = lambda c, k: (c + jnp.sum(draw(k)).astype(jnp.float64), None)  # noqa: E731
            return jax.lax.scan(body, jnp.float64(0.0), jax.random.split(key, T))[0]

        return jax.jit(run)

    def box_muller(k):
        u = jax.random.uniform(k, (2, C, D // 2), minval=jnp.finfo(jnp.float64).tiny)
        r, th = jnp.sqrt(-2 * jnp.log(u[0])), 2 * jnp.pi * u[1]
        return jnp.concatenate([r * jnp.cos(th), r * jnp.sin(th)], -1)

    draws = {
        "momentum as BlackJAX draws it (a key per chain)": lambda k: jax.vmap(lambda kk: jax.random.normal(kk, (D,)))(
            jax.random.split(k, C)
        ),
        "one normal draw of all chains": lambda k: jax.random.normal(k, (C, D)),
        "64-bit random bits alone": lambda k: jax.random.bits(k, (C, D), dtype=jnp.uint64) >> 40,
        "uniforms and erfinv": lambda k: jax.scipy.special.erfinv(jax.random.uniform(k, (C, D), minval=-1 + 1e-16)),
        "Box-Muller": box_muller,
    }
    key = jax.random.PRNGKey(0)
    return {name: _min_seconds(scanned(f), key) / (C * T) * 1e6 for name, f in draws.items()}


def trajectories() -> dict:
    """µs per trajectory and chain of the library's HMC at 1, 10 and 40 leapfrog steps, and the straight line."""
    import jax

    import pikflow.lattice as pl

    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [16, 16]), {"m2": -2.0, "lam": 2.0})
    out = {}
    for L in (1, 10, 40):
        kw = dict(n_chains=CHAINS, step=0.05, n_leapfrog=L, keep="magnetisation")
        key = jax.random.PRNGKey(0)
        pl.hmc(path, key, 25 * CHAINS, n_therm=0, **kw)
        ts = []
        for _ in range(3):
            t0 = time.perf_counter()
            pl.hmc(path, key, TRAJECTORIES * CHAINS, n_therm=0, **kw)
            ts.append(time.perf_counter() - t0)
        out[L] = min(ts) / (TRAJECTORIES * CHAINS) * 1e6
    per_step, fixed = np.polyfit(list(out), list(out.values()), 1)
    return {"us_per_trajectory": out, "us_per_leapfrog_step": per_step, "us_fixed_per_trajectory": fixed}


if __name__ == "__main__":
    if len(sys.argv) > 2:  # a child process: one PRNG implementation's parts
        print(json.dumps(parts(sys.argv[2])))
        sys.exit()
    res = {"chains": CHAINS, "sites": SITES, "hmc": trajectories(), "parts": {}}
    for impl in ("threefry2x32", "rbg", "unsafe_rbg"):  # each in its own process (the PRNG is a global setting)
        child = subprocess.run([sys.executable, __file__, "-", impl], capture_output=True, text=True, check=True)
        res["parts"][impl] = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(res, indent=1))
    json.dump(res, open(sys.argv[1], "w"), indent=1)
