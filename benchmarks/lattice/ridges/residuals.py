"""The relative residual of eq. 34 at t = 1 on target configurations, by basis (the lattice guide, "Ridge terms").

At t = 1 the collocation distribution of the matched path is the target itself, so HMC configurations
give the residual the basis leaves without any flow: least squares on ``NTRAIN`` configurations, the
relative residual ||A a - b|| / ||b - mean b|| on 2000 others. The lean basis of ``fit_lattice`` (its
Gaussian matched base) is compared with the same plus ridge terms (:class:`pikflow.lattice.SmoothedRidges`)
in several forms. Usage: ``python residuals.py L m2 lam NTRAIN OUT.json`` (e.g. ``16 -2 2 3000``).
"""

import json
import sys


def main(argv):
    import jax
    import jax.numpy as jnp
    import numpy as np

    import pikflow.lattice as pl
    from pikflow.lattice import LatticeBasis, SmoothedPowers, SmoothedRidges
    from pikflow.lowering import LoweredLatticePath

    L, m2, lam, ntrain, out = int(argv[0]), float(argv[1]), float(argv[2]), int(argv[3]), argv[4]
    ntest = 2000
    action = pl.LatticeAction(pl.PHI4_DENSITY, (L, L))
    values = {"m2": m2, "lam": lam}
    target = pl.LatticePath(action, values)
    fields, _ = pl.hmc(target, jax.random.PRNGKey(0), 2 * (ntrain + ntest), n_chains=32, n_therm=400)
    fields = np.asarray(fields).reshape(-1, L, L)
    np.random.default_rng(0).shuffle(fields)
    base = pl.matched_base(fields[:4000], symmetry=target.symmetry())
    path = pl.LatticePath.matched(action, values, np.asarray(base.precision), base.zero_mode_coupling)
    low = LoweredLatticePath(path)
    lean = pl.preset_basis("lean", path, base, tame=5.0)
    scales = next(f for f in lean.families if type(f) is SmoothedPowers).scales
    K = np.asarray(base.precision)
    rng = np.random.default_rng(1)

    def ridges(**kw):
        return LatticeBasis([*lean.families, SmoothedRidges(path.lattice, scales, precision=K, **kw)])

    n = len(scales)
    bases = {
        "lean": lean,
        "lean + ridges (default: 20 pair sums/differences with the zero mode, width 1.5)": ridges(),
        "lean + ridges, width 2": ridges(width=2.0),
        "lean + ridges, width 3": ridges(width=3.0),
        "lean + ridges without the zero mode (12)": ridges(zero_mode=False),
        "lean + ridges on single scales (4)": ridges(directions=np.eye(n + 1)[:n]),
        "lean + 8 random directions": ridges(directions=rng.normal(size=(8, n + 1)) / 2),
        "lean + 20 random directions": ridges(directions=rng.normal(size=(20, n + 1)) / 2),
    }
    X = jnp.asarray(fields[: ntrain + ntest])
    b = np.asarray(jax.lax.map(jax.jit(lambda x: -low.dsdt(x, 1.0)), X, batch_size=200))
    result = {"L": L, "m2": m2, "lam": lam, "ntrain": ntrain, "ntest": ntest, "residual_test": {}, "terms": {}}
    for name, basis in bases.items():
        A = np.asarray(jax.lax.map(jax.jit(lambda x, B=basis: B.columns(x, low.gradient(x, 1.0))), X, batch_size=200))
        A = np.concatenate([A, -np.ones((len(A), 1))], axis=1)  # the constant c_t
        scale = np.linalg.norm(A[:ntrain], axis=0)
        scale[scale == 0] = 1.0
        sol = np.linalg.lstsq(A[:ntrain] / scale, b[:ntrain], rcond=1e-10)[0] / scale
        r = A[ntrain:] @ sol - b[ntrain:]
        rel = float(np.linalg.norm(r) / np.linalg.norm(b[ntrain:] - b[ntrain:].mean()))
        result["residual_test"][name] = rel
        result["terms"][name] = int(basis.n)
        print(f"{name}: {basis.n} terms, relative residual {rel:.4f}", flush=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
