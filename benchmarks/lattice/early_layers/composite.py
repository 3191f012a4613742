r"""Prototype: a cheaper basis for the early layers of the path, the separable preset for the late ones (issue #20).

python benchmarks/lattice/early_layers/composite.py OUT.json CHEAP [CHEAP ...] [--chains=K] [--late=VARIANT]

Every layer of a PIK flow is its own linear solve of eq. 34 at its time, so layers from two flows solved on the
same path and base can be combined (each flow's later layers were collocated on configurations pushed through its
own earlier layers, so a solve with a basis per layer could come out a little differently).
On the clock t**3 with 2 RK4 steps the layers sit at tau = 0, 1/4, 1/2, 3/4, 1;
the first three carry little of the path (dt/dtau = 3 tau**2) and the separable preset leaves relative residuals of
only 0.02-0.03 there, so a cheaper basis might do for them: the layer at 1/4 is evaluated twice a sample and the one
at 1/2 twice, 4 of the 7 evaluations.

At 16x16 (m2, lam) = (-2, 2): the separable preset's flow (fit_lattice, seed 0), then each CHEAP basis (the variants
of ``reduced_basis/reduced.py``: s3, s2, s3p2, s2p2; or a preset name, e.g. magnetisation) solved on the same
path and base. A jitted 2-step RK4 push
(the zero first layer skipped) evaluates each stage with the basis its layer comes from; log w = -S(x_1) - log q_1.
Combinations: all layers from the preset (checked against the flow's own push on the same draws), the
layer at 1/4 from CHEAP, the layers at 1/4 and 1/2 from CHEAP. Per combination: ESS/N of 8064 draws (the same base
draws), the relative residuals of the layers used, and ms a sample of the push alone (batches of 128, 5 alternated
repeats against the all-preset push through the same code). With ``--chains=K``: K sets of 8064 base draws (the
first the ESS/N's), each an IMH chain: the tau_int of |m|, its mean and standard error. JSON
``composite_16x16_m2-2.json`` (one chain), ``composite_tau_16x16_m2-2.json`` (``--chains=4``). ``--late=s3``: also
the 3-scale variant (two-point term kept) solved on the same path and base, alone and with each CHEAP basis at 1/4
(``composite_late_s3_16x16_m2-2.json``: ``s2 --chains=4 --late=s3``).
"""

import json
import sys
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/reduced_basis")
from reduced import VARIANTS, builder  # noqa: E402

import pikflow.lattice as pl  # noqa: E402
from pikflow.diagnostics import imh_chain  # noqa: E402
from pikflow.diagnostics._gamma import gamma_method  # noqa: E402
from pikflow.flow import rk4  # noqa: E402

L, BATCH = 16, 128


def ess(log_w):
    lw = np.asarray(log_w)
    return float(np.exp(2 * logsumexp(lw) - logsumexp(2 * lw)) / len(lw))


def make_push(flows, which):
    """RK4 with 2 steps; stage layer k evaluated by ``flows[which[k]]``; layer 0 zero (skipped)."""
    evs = [(f.basis.fused, jnp.asarray(f.coeffs)) for f in flows]
    assert not np.any(flows[which[0]].coeffs[0]), "layer 0 must be zero (the clock t**p, p > 1): it is skipped"

    def velocity(k, x):
        ev, coeffs = evs[which[k]]
        g, lap = jax.vmap(ev.evaluate, (None, None, 0))(ev.params, coeffs[k], x)
        return -g, lap

    dt = 0.5

    @jax.jit
    def push(x, lq):
        for i in range(2):  # pikflow's RK4 step, each stage by its layer's basis; the zero layer 0 not evaluated
            first = (lambda y: (jnp.zeros_like(y), jnp.zeros(y.shape[0]))) if i == 0 else partial(velocity, 2 * i)
            x, dlq = rk4(first, partial(velocity, 2 * i + 1), partial(velocity, 2 * i + 2), x, dt)
            lq = lq + dlq
        return x, lq

    return push


def run(push, target, x0, lq0, magnetisation=False):
    outs = [push(x0[s : s + BATCH], lq0[s : s + BATCH]) for s in range(0, len(x0), BATCH)]
    x1, lq1 = jnp.concatenate([o[0] for o in outs]), jnp.concatenate([o[1] for o in outs])
    lw = -target(x1) - lq1
    return (lw, np.abs(np.asarray(x1.mean(axis=(1, 2))))) if magnetisation else lw


def chains(push, target, draws):
    """ESS/N and the IMH tau_int of |m| of each set of base draws (one chain a set): values, mean, standard error."""
    ess_values, taus = [], []
    for c, (x0, lq0) in enumerate(draws):
        lw, m = run(push, target, x0, lq0, magnetisation=True)
        ess_values.append(ess(lw))
        taus.append(float(gamma_method(imh_chain(jax.random.PRNGKey(300 + c), lw).chain(m)).tau_int))
    error = float(np.std(taus, ddof=1) / np.sqrt(len(taus))) if len(taus) > 1 else None
    return {"ess_chains": ess_values, "tau_int_abs_m": taus, "tau_mean": float(np.mean(taus)), "tau_error": error}


def main(out, cheap_names, n_chains=1, late=()):
    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": -2.0, "lam": 2.0})
    full = pl.fit_lattice(path, basis="separable", steps=2, schedule=3.0, seed=0, progress=False)
    target = jax.jit(jax.vmap(lambda x: full.path.value(x, 1.0)))
    draws = [full.base.sample(jax.random.PRNGKey(1 + c), 8064) for c in range(n_chains)]  # 63 batches of 128
    x0, lq0 = draws[0]
    res = {"separable": {"residuals": full.layer_residuals().tolist()}}
    pushes = {"all separable": make_push([full], [0] * 5)}
    lw = run(pushes["all separable"], target, x0, lq0)
    x1, lq1 = full.push(x0[:256], lq0[:256])  # the package's push of the same draws
    check = np.asarray(lw[:256]) - np.asarray(-target(x1) - lq1)
    res["check_against_flow_push"] = float(np.max(np.abs(check)))
    res["all separable"] = {"ess": ess(lw), **chains(pushes["all separable"], target, draws)}
    print(json.dumps(res), flush=True)
    mains = []
    for name in late:  # another basis for the late layers, on the same path and base
        other = pl.fit_lattice(path, base=full.base, basis=builder(name), steps=2, schedule=3.0, seed=0, progress=False)
        mains.append((name, other))
        pushes[f"all {name}"] = make_push([other], [0] * 5)
        res[f"all {name}"] = {"ess": ess(run(pushes[f"all {name}"], target, x0, lq0))}
        res[f"all {name}"] |= chains(pushes[f"all {name}"], target, draws)
    for name in cheap_names:
        basis = builder(name) if name in VARIANTS else name  # a reduced variant, or a preset name
        cheap = pl.fit_lattice(path, base=full.base, basis=basis, steps=2, schedule=3.0, seed=0, progress=False)
        for main_name, other in mains:
            label = f"{main_name} with {name} at 1/4"
            pushes[label] = make_push([other, cheap], [0, 1, 0, 0, 0])
            res[label] = {"ess": ess(run(pushes[label], target, x0, lq0)), **chains(pushes[label], target, draws)}
            print(label, res[label], flush=True)
        same = float(jnp.max(jnp.abs(target(x0[:64]) - jax.vmap(lambda x, p=cheap.path: p.value(x, 1.0))(x0[:64]))))
        res[name] = {"residuals": cheap.layer_residuals().tolist(), "n_basis": int(cheap.basis.n), "same_path": same}
        for label, which in ((f"{name} at 1/4", [0, 1, 0, 0, 0]), (f"{name} at 1/4, 1/2", [0, 1, 1, 0, 0])):
            pushes[label] = make_push([full, cheap], which)
            res[label] = {"ess": ess(run(pushes[label], target, x0, lq0)), **chains(pushes[label], target, draws)}
            print(label, res[label], flush=True)
        json.dump(res, open(out, "w"), indent=1)
    xb, lb = x0[:BATCH], lq0[:BATCH]
    for p in pushes.values():
        jax.block_until_ready(p(xb, lb))
    times = {k: [] for k in pushes}
    for _ in range(5):
        for k, p in pushes.items():
            t0 = time.perf_counter()
            for s in range(0, 2048, BATCH):
                o = p(x0[s : s + BATCH], lq0[s : s + BATCH])
            jax.block_until_ready(o)
            times[k].append((time.perf_counter() - t0) / 2048 * 1e3)
    for k, t in times.items():
        res[k]["push_ms"] = t
        res[k]["push_ms_median"] = float(np.median(t))
        res[k]["push_over_all_separable"] = float(np.median(t) / np.median(times["all separable"]))
        print(k, res[k], flush=True)
    json.dump(res, open(out, "w"), indent=1)


if __name__ == "__main__":
    args = [a for a in sys.argv[2:] if not a.startswith("--")]
    k = [int(a.split("=")[1]) for a in sys.argv[2:] if a.startswith("--chains=")]
    late = [a.split("=")[1] for a in sys.argv[2:] if a.startswith("--late=")]
    main(sys.argv[1], args, k[0] if k else 1, late)
