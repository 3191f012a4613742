"""One velocity evaluation of the lean basis by Fourier transforms against the à-trous chain by stencils (issue #20).

Fits the lean basis with heat-kernel filters and with the à-trous chain (``atrous.py``) at one point,
checks that the stencil evaluation of the à-trous basis equals its Fourier evaluation to rounding, and
times, alternating in one process, µs per configuration of one evaluation (vmapped, jitted, batch B) for

* ``fft lean``: :class:`~pikflow.lattice._fused.FusedEvaluator` on the heat-kernel lean basis (today);
* ``fft a trous``: the same evaluator on the à-trous basis (11 transforms);
* ``stencil a trous``: rfftn/irfftn for the Fourier two-point term only, the smoothing by 3-tap passes
  as dilated convolutions;
* ``action gradient``: one gradient of the target action (an HMC trajectory is 10 of them).

Usage: ``python stencil_cost.py L m2 lam OUT.json [ROUNDS]``.
"""

import json
import pathlib
import sys
import time

import numpy as np

here = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(here))
from atrous import adjoint_conv, atrous_basis, chain_conv  # noqa: E402


def stencil_evaluate(ev, params, a, field):
    """``FusedEvaluator.evaluate`` with the smoothing and its adjoint by the à-trous passes."""
    import jax.numpy as jnp

    from pikflow.lattice._basis import Magnetisation

    ft = jnp.fft.rfftn(field)
    spec = None
    lap = jnp.zeros((), dtype=field.dtype)
    for (fam, lo, hi), ids in zip(ev.fourier, ev._orbit_half, strict=True):
        c = a[lo:hi][ids]
        spec = c * ft if spec is None else spec + c * ft
        lap = lap + jnp.dot(a[lo:hi], fam.sizes)
    psi = jnp.stack(chain_conv(field))
    pw = ev._pointwise(params["smoothed"], a, psi)
    lap = lap + jnp.sum(pw[-1])
    grad = adjoint_conv([pw[i] for i in range(ev.n_scales)])
    if spec is not None:
        grad = grad + jnp.fft.irfftn(spec, s=ev.shape)
    mags = iter(params["mag"])
    for fam, lo, hi in ev.other:
        if type(fam) is Magnetisation:
            _, d1, d2 = ev._magnetisation(fam, next(mags))._parts(field)
            grad = grad + jnp.dot(a[lo:hi], d1)
            lap = lap + jnp.dot(a[lo:hi], d2)
    return grad, lap


def main(argv):
    import jax
    import jax.numpy as jnp

    import pikflow.lattice as pl
    from pikflow.flow._compiled import _as
    from pikflow.lattice._fused import FusedEvaluator

    L, m2, lam, out = int(argv[0]), float(argv[1]), float(argv[2]), argv[3]
    rounds = int(argv[4]) if len(argv) > 4 else 7
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})
    kw = {"steps": 2, "schedule": 3, "seed": 0, "progress": False}
    lean = pl.fit_lattice(target, basis="lean", **kw)
    atr = pl.fit_lattice(target, basis=atrous_basis("lean"), **kw)
    ev_lean, ev_atr = FusedEvaluator(lean.basis), FusedEvaluator(atr.basis)
    assert ev_atr.n_scales == 4, ev_atr.n_scales
    x = np.asarray(atr.sample(1024, seed=1).fields)
    k = len(atr.coeffs) // 2
    a_lean, a_atr = jnp.asarray(lean.coeffs[k]), jnp.asarray(atr.coeffs[k])
    grad_s = jax.jit(jax.vmap(jax.grad(lambda f: target.value(f, 1.0))))

    def fns(dtype):
        cast = (lambda t: _as(dtype, t)) if dtype is not None else (lambda t: t)
        p_lean, p_atr = cast(ev_lean.params), cast(ev_atr.params)
        al, aa = cast(a_lean), cast(a_atr)
        return {
            "fft lean": (jax.jit(jax.vmap(lambda f: ev_lean.evaluate(p_lean, al, f))), None),
            "fft a trous": (jax.jit(jax.vmap(lambda f: ev_atr.evaluate(p_atr, aa, f))), None),
            "stencil a trous": (jax.jit(jax.vmap(lambda f: stencil_evaluate(ev_atr, p_atr, aa, f))), None),
            "action gradient": (grad_s, None),
        }

    # the same numbers: stencil vs Fourier evaluation of the à-trous basis, float64
    f64 = fns(None)
    g1, l1 = f64["fft a trous"][0](jnp.asarray(x[:64]))
    g2, l2 = f64["stencil a trous"][0](jnp.asarray(x[:64]))
    agree = {"grad_max_abs_diff": float(jnp.max(jnp.abs(g1 - g2))), "grad_scale": float(jnp.max(jnp.abs(g1))),
             "lap_max_abs_diff": float(jnp.max(jnp.abs(l1 - l2)))}  # fmt: skip
    print(agree, flush=True)
    res = {"L": L, "m2": m2, "lam": lam, "terms": int(atr.basis.n), "agree": agree, "timings": {}}
    for dtype_name, dtype in (("float64", None), ("float32", jnp.float32)):
        fs = fns(dtype)
        for batch in (128, 1000):
            xb = jnp.asarray(x[:batch])
            if dtype is not None:
                xb = xb.astype(dtype)
            times = {n: [] for n in fs}
            for f, _ in fs.values():
                jax.block_until_ready(f(xb))
            for _ in range(rounds):
                for n, (f, _) in fs.items():
                    reps = 20
                    t0 = time.perf_counter()
                    for _ in range(reps):
                        r = f(xb)
                    jax.block_until_ready(r)
                    times[n].append((time.perf_counter() - t0) / reps / batch * 1e6)
            summary = {n: [float(np.median(v)), float(np.min(v)), float(np.max(v))] for n, v in times.items()}
            res["timings"][f"{dtype_name} batch {batch}"] = summary
            print(dtype_name, batch, json.dumps(summary), flush=True)
    pathlib.Path(out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
