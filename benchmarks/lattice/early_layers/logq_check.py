"""The continuous log-density of the combined push against the exact one of the map it applies (8 draws).

python benchmarks/lattice/early_layers/logq_check.py OUT.json: the preset alone and the 2-scale basis at 1/4
(``composite.py``'s push), the largest and rms |continuous - exact log q_1| over 8 base draws (the exact one by
``pikflow.flow.exact_log_det``: 256 Jacobian columns a draw).
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
from composite import make_push
from reduced import builder

import pikflow.lattice as pl
from pikflow.flow import exact_log_det


def main(out):
    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (16, 16)), {"m2": -2.0, "lam": 2.0})
    full = pl.fit_lattice(path, basis="separable", steps=2, schedule=3.0, seed=0, progress=False)
    cheap = pl.fit_lattice(path, base=full.base, basis=builder("s2"), steps=2, schedule=3.0, seed=0, progress=False)
    x0, lq0 = full.base.sample(jax.random.PRNGKey(9), 8)
    res = {}
    pushes = {"all separable": make_push([full], [0] * 5), "s2 at 1/4": make_push([full, cheap], [0, 1, 0, 0, 0])}
    for label, push in pushes.items():
        one = lambda y, push=push: push(y[None], jnp.zeros(1))  # noqa: E731
        cont = np.array([float(one(x)[1][0]) for x in x0])
        exact = np.array([float(-exact_log_det(lambda y, one=one: one(y)[0][0], x)) for x in x0])
        err = cont - exact
        res[label] = {"max": float(np.max(np.abs(err))), "rms": float(np.sqrt(np.mean(err**2))), "errors": err.tolist()}
        print(label, res[label]["max"], res[label]["rms"], flush=True)
    json.dump(res, open(out, "w"), indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
