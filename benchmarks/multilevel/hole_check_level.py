"""The hole check of one flowed level, 32x32 -> 64x64 at seed 002's point (the multilevel guide).

The level flow (level basis with 256 merged orbit groups, the coarse basis on the block means, 10 RK4 steps, 1000
collocation configurations) is solved on 2000 HMC configurations of 32x32 (the pool of ``pikflow bench
multilevel-flow --sizes 32``) and checked (:func:`pikflow.lattice.level_checks`) against: 1008 thinned HMC
configurations of 64x64 (16 chains x 2000 trajectories, every 32nd), their first 200, and 200 drawn as the
hierarchy's ``hole_check`` draws them (8 chains, consecutive after the default thermalisation); the lift alone
too. A second flow is solved on the pool resampled with duplicates (as after an SMC level) and checked against
512 thinned configurations. Usage: ``python hole_check_level.py OUT.json`` (about 8 minutes on 2 cores).
"""

import json
import sys
import time


def main(out_file):
    import jax
    import jax.numpy as jnp
    import numpy as np

    import pikflow.lattice as pl
    from pikflow.lattice import LevelPath, level_checks, make_lift, solve_level

    def path(L):
        return pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": -0.08, "lam": 0.16})

    Lc, t0 = 32, time.time()
    key = jax.random.fold_in(jax.random.PRNGKey(0), Lc)  # as bench multilevel-flow --seed 0
    coarse, fine = path(Lc), path(2 * Lc)
    fields, _ = pl.hmc(coarse, key, 4000, n_chains=8, step="auto", progress=False)
    pool = jnp.asarray(np.asarray(fields).reshape(-1, Lc, Lc)[::2][:2000])
    S_c = jax.jit(jax.vmap(lambda p: coarse.value(p, 1.0)))
    S_1 = jax.jit(jax.vmap(lambda p: fine.value(p, 1.0)))
    k_lift = jax.random.fold_in(key, 1)
    lift, _ = make_lift("conditional", fine.lattice.shape, "free", "auto", "auto", S_c, S_1, pool[:250], k_lift)
    basis = pl.level_basis(fine.lattice, symmetry=fine.symmetry(), coarse={"fourier": False}, fourier_bins=256)
    level = LevelPath(coarse, fine, lift)

    def solve(p):
        return solve_level(level, p, basis, steps=10, n_collocation=1000, seed=0, progress=False)

    def thinned(seed, per_chain, every):
        x, _ = pl.hmc(fine, jax.random.PRNGKey(seed), 16 * per_chain, n_chains=16, step="auto", n_therm=500)
        return np.asarray(x).reshape(16, per_chain, 2 * Lc, 2 * Lc)[:, ::every].reshape(-1, 2 * Lc, 2 * Lc)

    flow = solve(pool)
    ref = thinned(99, 2000, 32)
    hier, _ = pl.hmc(fine, jax.random.PRNGKey(2002), 200, n_chains=8, step="auto")
    check = lambda f, r, fl=None: level_checks(f.base, pool[:1000], jax.random.PRNGKey(7), reference=r, flow=fl)  # noqa: E731
    out = {
        "thinned_1008": check(flow, ref, flow),
        "thinned_first_200": check(flow, ref[:200], flow),
        "hierarchy_style_200": check(flow, np.asarray(hier).reshape(-1, 2 * Lc, 2 * Lc), flow),
        "lift_thinned_1008": check(flow, ref),
    }
    idx = np.random.default_rng(0).choice(2000, size=2000, p=np.random.default_rng(1).dirichlet(np.full(2000, 0.5)))
    dup = pool[idx]
    flow2 = solve(dup)
    out["duplicate_pool"] = level_checks(flow2.base, dup[:1000], jax.random.PRNGKey(7), thinned(99, 500, 16), flow2)
    out["duplicate_pool_distinct"] = int(len(np.unique(idx)))
    out["seconds"] = time.time() - t0
    print(json.dumps(out, indent=1))
    with open(out_file, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
