"""Prototype: a 2-step flow solved for RK4, sampled with Kutta's third-order step, polished on that map's KL.

Kutta's step uses the three stage layers of an RK4 step once each (k1 at t, k2 at t + h/2, k3 at t + h from
x - h k1 + 2h k2; x' = x + h/6 (k1 + 4 k2 + k3)); with the clock's zero first layer a 2-step sample costs 5
evaluations instead of RK4's 7. Unpolished it missed (the lattice guide: ESS/N 0.59, log q error 0.21 rms);
here the polish of pikflow.refine.polish (the same loss) is applied to the Kutta map.

python benchmarks/lattice/kl_polish/polish_kutta3.py L M2 LAM BASIS POWER ITERS LR BATCH NEXACT PENALTY
(measured: 16 -2 2 separable 3 300 0.003 256 1 100, and at rate 0.01, whose map folded; JSON and log beside it)
"""

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pikflow.lattice as pl
from pikflow.diagnostics import ess_fraction
from pikflow.flow import exact_log_det

jax.config.update("jax_enable_x64", True)

L, m2, lam, basis, power, iters, lr, batch, nexact, penalty = sys.argv[1:11]
L, iters, batch, nexact = int(L), int(iters), int(batch), int(nexact)
m2, lam, power, lr, penalty = float(m2), float(lam), float(power), float(lr), float(penalty)
steps = 2
path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": m2, "lam": lam})
flow = pl.fit_lattice(path, basis=basis, steps=steps, schedule=power, progress=False, seed=0)
ev, fpath = flow.basis.fused, flow.path
both = jax.vmap(ev.evaluate, (None, None, 0))
c0 = jnp.asarray(flow.coeffs)
assert not np.any(flow.coeffs[0])
overall = float(jnp.sqrt(jnp.mean(c0**2)))
scale = jnp.maximum(jnp.sqrt(jnp.mean(c0**2, axis=0, keepdims=True)), 1e-6 * overall)
mask = jnp.ones_like(c0).at[0].set(0.0)
target = jax.vmap(lambda x: fpath.value(x, 1.0))


def coeffs_of(theta):
    return c0 + mask * scale * theta


def push(coeffs, x, lq, method):
    h = 1.0 / steps

    def stage(k, y):
        g, lap = both(ev.params, coeffs[k], y)
        return -g, lap

    for i in range(steps):
        if i == 0:  # the zero first layer: k1 = 0, its rate 0
            k1, r1 = jnp.zeros_like(x), jnp.zeros_like(lq)
        else:
            k1, r1 = stage(2 * i, x)
        k2, r2 = stage(2 * i + 1, x + 0.5 * h * k1)
        if method == "kutta3":
            k3, r3 = stage(2 * i + 2, x - h * k1 + 2 * h * k2)
            x, lq = x + h / 6 * (k1 + 4 * k2 + k3), lq + h / 6 * (r1 + 4 * r2 + r3)
        else:
            k3, r3 = stage(2 * i + 1, x + 0.5 * h * k2)
            k4, r4 = stage(2 * i + 2, x + h * k3)
            x, lq = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), lq + h / 6 * (r1 + 2 * r2 + 2 * r3 + r4)
    return x, lq


def difference(coeffs, x, method):
    one = lambda y: push(coeffs, y[None], jnp.zeros(1), method)  # noqa: E731
    return one(x)[1][0] + exact_log_det(lambda y: one(y)[0][0], x)


@jax.jit
def check(theta, key):  # log weights of 4000 draws (Kutta), and the continuous minus exact log q of 8
    coeffs = coeffs_of(theta)
    k1, k2 = jax.random.split(key)
    x0, lq0 = flow.base.sample(k1, 4000)
    chunks = (x0.reshape(40, 100, L, L), lq0.reshape(40, 100))
    x1, lq1 = jax.lax.map(lambda a: push(coeffs, a[0], a[1], "kutta3"), chunks)
    lw = -target(x1.reshape(4000, L, L)) - lq1.reshape(4000)
    d = jax.vmap(difference, (None, 0, None))(coeffs, flow.base.sample(k2, 8)[0], "kutta3")
    return lw, d


def loss(theta, key):
    coeffs = coeffs_of(theta)
    k1, k2 = jax.random.split(key)
    x0, lq0 = flow.base.sample(k1, batch)
    x1, lq1 = push(coeffs, x0, lq0, "kutta3")
    d = jax.vmap(difference, (None, 0, None))(coeffs, flow.base.sample(k2, nexact)[0], "kutta3")
    return jnp.mean(lq1 + target(x1)) - jnp.mean(d) + penalty * jnp.mean(d**2)


opt = optax.adam(optax.cosine_decay_schedule(lr, iters, alpha=0.1))


@jax.jit
def update(theta, state, key):
    val, g = jax.value_and_grad(loss)(theta, key)
    upd, new_state = opt.update(g, state, theta)
    ok = jnp.isfinite(val) & jnp.all(jnp.isfinite(g))  # a draw whose map folded: skip the step
    new = jnp.where(ok, optax.apply_updates(theta, upd), theta)
    state = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new_state, state)
    return new, state, val


def report(theta, it, t0):
    lw, d = check(theta, jax.random.PRNGKey(1000))  # the same draws at every checkpoint
    lw = np.asarray(lw)
    row = {"iter": it, "ess": float(ess_fraction(np.where(np.isfinite(lw), lw, -np.inf))),
           "logq_rms": float(np.sqrt(np.mean(np.asarray(d) ** 2))), "logq_max": float(np.max(np.abs(d))),
           "seconds": time.perf_counter() - t0}  # fmt: skip
    print(row, flush=True)
    return row


theta = jnp.zeros_like(c0)
state = opt.init(theta)
t0 = time.perf_counter()
rows = [report(theta, 0, t0)]
key = jax.random.PRNGKey(123)
for it in range(1, iters + 1):
    theta, state, val = update(theta, state, jax.random.fold_in(key, it))
    if it % max(1, iters // 6) == 0 or it == iters:
        rows.append(report(theta, it, t0))
out = {"L": L, "m2": m2, "lam": lam, "basis": basis, "power": power, "lr": lr, "batch": batch}
out.update(nexact=nexact, penalty=penalty, method="kutta3", rows=rows)
json.dump(out, open(f"/tmp/kutta3_{L}_{basis}_{lr}_{iters}.json", "w"), indent=1)
