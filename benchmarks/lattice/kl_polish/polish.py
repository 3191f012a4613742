"""Prototype: polish a solved lattice flow's coefficients on the reverse KL of the applied 2-step map.

python benchmarks/lattice/kl_polish/polish.py L M2 LAM BASIS STEPS POWER ITERS LR BATCH NEXACT PENALTY

NEXACT draws a step get the exact log-density (0: the KL of the continuous log q alone, which the training
exploits); PENALTY weighs their squared error. The prototype of pikflow.refine.polish (the same loss), with the
ESS/N and log q error of fresh draws checked along the way; the package function checks only at the end.
"""

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pikflow.lattice as pl
from pikflow.flow._integrate import exact_log_det, rk4_scan

jax.config.update("jax_enable_x64", True)

L, m2, lam, basis, steps, power, iters, lr, batch, nexact, penalty = sys.argv[1:12]
nexact, penalty = int(nexact), float(penalty)
L, m2, lam, steps, power, iters, lr, batch = (
    int(L),
    float(m2),
    float(lam),
    int(steps),
    float(power),
    int(iters),
    float(lr),
    int(batch),
)
action = pl.LatticeAction(pl.PHI4_DENSITY, (L, L))
path = pl.LatticePath(action, {"m2": m2, "lam": lam})
t0 = time.perf_counter()
flow = pl.fit_lattice(path, basis=basis, steps=steps, schedule=power, progress=False, seed=0)
setup = time.perf_counter() - t0
ev = flow.basis.fused
fpath = flow.path
both = jax.vmap(ev.evaluate, (None, None, 0))
c0 = jnp.asarray(flow.coeffs)
scale = jnp.sqrt(jnp.mean(c0**2, axis=0, keepdims=True)) + 1e-12
mask = jnp.ones_like(c0).at[0].set(0.0 if not np.any(flow.coeffs[0]) else 1.0)


def coeffs_of(theta):
    return c0 + mask * scale * theta


def push(coeffs, x, lq):
    def stage(k, y):
        g, lap = both(ev.params, coeffs[k], y)
        return -g, lap

    return rk4_scan(stage, x, lq, steps=steps)


target = jax.vmap(lambda x: fpath.value(x, 1.0))


def loss(theta, key):
    coeffs = coeffs_of(theta)
    k1, k2 = jax.random.split(key)
    x0, lq0 = flow.base.sample(k1, batch)
    x1, lq1 = push(coeffs, x0, lq0)
    lw = -target(x1) - lq1
    val = -jnp.mean(lw)
    if nexact:
        y0, _ = flow.base.sample(k2, nexact)

        def one(x):
            f = lambda y: push(coeffs, y[None], jnp.zeros(1))[0][0]  # noqa: E731
            cont = push(coeffs, x[None], jnp.zeros(1))[1][0]
            return cont + exact_log_det(f, x)  # continuous minus exact log q (both from lq0 = 0)

        d = jax.vmap(one)(y0)
        # unbiased correction of the KL to the exact log q, and a penalty on the difference
        val = val - jnp.mean(d) + penalty * jnp.mean(d**2)
    return val, lw


opt = optax.adam(lr)
theta = jnp.zeros_like(c0)
state = opt.init(theta)


@jax.jit
def update(theta, state, key):
    (val, lw), g = jax.value_and_grad(loss, has_aux=True)(theta, key)
    upd, state = opt.update(g, state, theta)
    return optax.apply_updates(theta, upd), state, val


def ess_of(coeffs, seed, n=4000):
    old = flow.coeffs
    flow.coeffs = np.asarray(coeffs)
    s = flow.sample(n, seed=seed)
    err = flow.log_density_error(jax.random.PRNGKey(seed + 7), 8)
    flow.coeffs = old
    return float(s.ess()), float(np.sqrt(np.mean(err**2))), float(np.max(np.abs(err)))


rows = []
e0 = ess_of(c0, 100)
print("init", e0, "setup", round(setup, 1), flush=True)
rows.append({"iter": 0, "ess": e0[0], "logq_rms": e0[1], "logq_max": e0[2]})
key = jax.random.PRNGKey(123)
t0 = time.perf_counter()
for it in range(1, iters + 1):
    key, sub = jax.random.split(key)
    theta, state, val = update(theta, state, sub)
    if it % max(1, iters // 8) == 0 or it == iters:
        e = ess_of(coeffs_of(theta), 100 + it)
        el = time.perf_counter() - t0
        print(it, "loss", float(val), "ess", e, "sec", round(el, 1), flush=True)
        rows.append({"iter": it, "loss": float(val), "ess": e[0], "logq_rms": e[1], "logq_max": e[2], "seconds": el})
out = {
    "L": L,
    "m2": m2,
    "lam": lam,
    "basis": basis,
    "steps": steps,
    "power": power,
    "lr": lr,
    "batch": batch,
    "nexact": nexact,
    "penalty": penalty,
    "rows": rows,
}
json.dump(out, open(f"/tmp/kl_{L}_{basis}_{steps}_{power}_{lr}_{batch}_{nexact}_{penalty}.json", "w"), indent=1)
