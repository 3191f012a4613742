"""Transport bases with local Hermite terms at (-2, 2): flow ESS/N after few RK4 steps on the t^2 clock.

``python benchmarks/lattice/local_terms.py L STEPS VARIANTS``: one ``fit_lattice`` per variant (seed 0), then the
ESS/N of 4000 samples. Variants: ``lean`` and ``default`` (presets, every taming width tried), ``lean+local``
(the lean preset at the default taming width plus ``LocalHermite(range 1, degree 4, min_degree 3)``),
``lean+local6`` (degree 6), ``lean+local2`` (range 2). JSON ``local_terms_m2-2.json`` beside it (the SMC
guide's "Transports of graded cost").
"""

import json
import sys
import time

import jax
import numpy as np

import pikflow.lattice as pl
from pikflow.lattice import LatticeBasis, LocalHermite, preset_basis

L = int(sys.argv[1]) if len(sys.argv) > 1 else 32
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
which = sys.argv[3].split(",") if len(sys.argv) > 3 else ["lean", "lean+local", "default"]
action = pl.LatticeAction(pl.PHI4_DENSITY, [L, L])
target = pl.LatticePath(action, {"m2": -2.0, "lam": 2.0})


def with_local(rng, deg, sites=2):
    def make(path, base):
        b = preset_basis("lean", path, base)
        loc = LocalHermite(path.lattice, rng, deg, max_sites=sites, z2=True, min_degree=3, symmetry=path.symmetry())
        return LatticeBasis([*b.families, loc])

    return make


variants = {
    "lean": "lean",
    "default": "default",
    "lean+local": with_local(1, 4),
    "lean+local6": with_local(1, 6),
    "lean+local2": with_local(2, 4),
}
for name in which:
    t0 = time.perf_counter()
    flow = pl.fit_lattice(target, basis=variants[name], steps=steps, seed=0, progress=False)
    setup = time.perf_counter() - t0
    s = flow.sample(jax.random.PRNGKey(1), 2000)
    t1 = time.perf_counter()
    s = flow.sample(jax.random.PRNGKey(2), 4000)
    secs = time.perf_counter() - t1
    lw = np.where(s.finite, np.asarray(s.log_w), np.nan)
    fin = np.isfinite(lw)
    w = np.exp(lw[fin] - lw[fin].max())
    ess = float(w.sum() ** 2 / (w**2).sum() / len(lw))
    print(
        json.dumps(
            dict(
                variant=name,
                steps=steps,
                L=L,
                setup=round(setup, 1),
                sample_s_per_4000=round(secs, 2),
                ess=round(ess, 4),
                nonfinite=int((~fin).sum()),
                var_logw=float(np.var(lw[fin])),
                n_terms=int(flow.basis.n),
                info={k: v for k, v in flow.info.items() if isinstance(v, (int, float, str))},
            )
        ),
        flush=True,
    )
