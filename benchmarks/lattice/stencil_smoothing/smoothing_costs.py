"""What one smoothing chain and one velocity evaluation cost, by implementation (issue #20).

Times, alternating in one process, µs per configuration (jitted, median [min, max] of ROUNDS rounds of
20 calls on a batch of B random fields):

1. ``chain``: the 4-scale smoothing of the lean ladder and its adjoint (psi_s = F_s phi, then
   sum_s F_s psi_s**3) by
   * ``rolls``: the à-trous 3-tap passes with ``jnp.roll`` (slices and concatenations),
   * ``pad``: the same passes, each one periodic pad and two slices,
   * ``conv``: each level one dilated 3x3 convolution (``lax.conv_general_dilated``),
   * ``matrices``: one circulant matrix per axis and scale, one ``einsum`` each way,
   * ``transforms``: ``rfftn``, 4 filters, batched ``irfftn``, batched ``rfftn``, filter sum, ``irfftn``;
2. ``evaluation``: :class:`~pikflow.lattice._fused.FusedEvaluator` on the ``"separable"`` preset's basis
   (matrices) and on the same basis forced onto the transforms, with random coefficients;
3. ``parts``: the lean basis's whole evaluation, its transforms alone, its pointwise part alone, and one
   gradient of the target action (an HMC trajectory is 10 of them and a leapfrog's bookkeeping).

Usage: ``python smoothing_costs.py L B OUT.json [ROUNDS]`` (float64 and float32).
"""

import json
import pathlib
import sys
import time

import numpy as np

here = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(here))
from atrous import ALPHA, HOLES, adjoint, chain, symbols  # noqa: E402


def _timed(fns, rounds):
    import jax

    times = {n: [] for n in fns}
    for f, x in fns.values():
        jax.block_until_ready(f(*x))
    for _ in range(rounds):
        for n, (f, x) in fns.items():
            t0 = time.perf_counter()
            for _ in range(20):
                r = f(*x)
            jax.block_until_ready(r)
            times[n].append((time.perf_counter() - t0) / 20)
    return times


def chain_variants(L, dt):
    """Callables ``f(batch)`` -> sum_s F_s (F_s phi)**3 on the à-trous chain (or heat kernels for the transforms)."""
    import jax
    import jax.numpy as jnp

    from pikflow.lattice._fused import _half_batched
    from pikflow.lattice._separable import axis_factors, smooth, unsmooth

    shape = (L, L)
    F = symbols(shape)
    half = jnp.asarray(_half_batched(F, 2)).astype(dt)
    mats = [jnp.asarray(m).astype(dt) for m in axis_factors(F, 2)]

    def pad_pass(x, taps, h, axis):
        side, centre = taps
        n = x.shape[axis]
        parts = [jax.lax.slice_in_dim(x, n - h, n, axis=axis), x, jax.lax.slice_in_dim(x, 0, h, axis=axis)]
        xp = jnp.concatenate(parts, axis=axis)
        lo, hi = jax.lax.slice_in_dim(xp, 0, n, axis=axis), jax.lax.slice_in_dim(xp, 2 * h, 2 * h + n, axis=axis)
        return centre * x + side * (lo + hi)

    def pad_chain(f):
        ps = []
        y = f
        for ax in (0, 1):
            y = pad_pass(y, (ALPHA / 2, 1 - ALPHA), 1, ax)
        ps.append(y)
        for h in HOLES:
            for ax in (0, 1):
                y = pad_pass(y, (0.25, 0.5), h, ax)
            ps.append(y)
        g = ps[-1] ** 3
        for s in range(len(HOLES) - 1, -1, -1):
            for ax in (0, 1):
                g = pad_pass(g, (0.25, 0.5), HOLES[s], ax)
            g = ps[s] ** 3 + g
        for ax in (0, 1):
            g = pad_pass(g, (ALPHA / 2, 1 - ALPHA), 1, ax)
        return g

    def conv(x, taps, h):
        k = jnp.outer(jnp.asarray(taps, dtype=x.dtype), jnp.asarray(taps, dtype=x.dtype))
        xp = jnp.pad(x, h, mode="wrap")[None, None]
        return jax.lax.conv_general_dilated(xp, k[None, None], (1, 1), "VALID", rhs_dilation=(h, h))[0, 0]

    def conv_chain(f):
        a, b = (ALPHA / 2, 1 - ALPHA, ALPHA / 2), (0.25, 0.5, 0.25)
        ps = [conv(f, a, 1)]
        for h in HOLES:
            ps.append(conv(ps[-1], b, h))
        g = ps[-1] ** 3
        for s in range(len(HOLES) - 1, -1, -1):
            g = ps[s] ** 3 + conv(g, b, HOLES[s])
        return conv(g, a, 1)

    def transforms(f):
        ft = jnp.fft.rfftn(f)
        ps = jnp.fft.irfftn(half * ft[None], s=shape, axes=(1, 2))
        return jnp.fft.irfftn(jnp.sum(half * jnp.fft.rfftn(ps**3, axes=(1, 2)), 0), s=shape)

    return {
        "rolls": jax.vmap(lambda f: adjoint([p**3 for p in chain(f, (0, 1))], (0, 1))),
        "pad": jax.vmap(pad_chain),
        "conv": jax.vmap(conv_chain),
        "matrices": jax.vmap(lambda f: unsmooth(mats, smooth(mats, f) ** 3)),
        "transforms": jax.vmap(transforms),
    }


def main(argv):
    import jax
    import jax.numpy as jnp

    import pikflow as pf  # noqa: F401  (float64)
    import pikflow.lattice as pl
    from pikflow.flow._compiled import _as
    from pikflow.lattice._fused import FusedEvaluator

    L, B, out = int(argv[0]), int(argv[1]), argv[2]
    rounds = int(argv[3]) if len(argv) > 3 else 7
    rng = np.random.default_rng(0)
    S = pl.LatticeAction(pl.PHI4_DENSITY, [L, L])
    K = np.asarray(S.lattice.khat2()) + 0.3 + 0.05 * rng.random((L, L))  # a matched-like K_0: no product
    K = 0.5 * (K + np.roll(K[::-1, ::-1], 1, (0, 1)))  # K(k) = K(-k), as GaussianLatticeBase requires
    g = pl.GaussianLatticeBase(K, m0=0.2)
    path = pl.LatticePath.matched(S, {"m2": -2.0, "lam": 2.0}, K, g.zero_mode_coupling)
    lean, sep = (pl.preset_basis(p, path, g, tame=5.0) for p in ("lean", "separable"))
    ev_lean, ev_sep, ev_fft = FusedEvaluator(lean), FusedEvaluator(sep), FusedEvaluator(sep)
    assert ev_lean.matrices is None and ev_sep.matrices is not None
    ev_fft.matrices = None  # the same basis by the transforms
    res = {"L": L, "batch": B, "rounds": rounds, "us_per_configuration": {}}
    for name, dt in (("float64", jnp.float64), ("float32", jnp.float32)):
        x = jnp.asarray(rng.normal(size=(B, L, L))).astype(dt)
        a = jnp.asarray(rng.normal(size=lean.n) * 0.01).astype(dt)
        psi = jnp.asarray(rng.normal(size=(B, ev_lean.n_scales, L, L))).astype(dt)
        fns = {f"chain: {k}": (jax.jit(f), (x,)) for k, f in chain_variants(L, dt).items()}
        for label, ev in (("matrices", ev_sep), ("transforms", ev_fft)):
            p = _as(dt, ev.params)
            ev_fn = jax.vmap(lambda y, ev=ev, p=p, a=a: ev.evaluate(p, a, y))
            fns[f"evaluation, separable basis: {label}"] = (jax.jit(ev_fn), (x,))
        p = _as(dt, ev_lean.params)
        fns["lean basis: whole evaluation"] = (jax.jit(jax.vmap(lambda y, p=p, a=a: ev_lean.evaluate(p, a, y))), (x,))
        filt = p["filters"]

        def transforms(y, filt=filt):
            ft = jnp.fft.rfftn(y)
            ps = jnp.fft.irfftn(filt * ft[None], s=(L, L), axes=(1, 2))
            sp = jnp.fft.rfftn(jnp.concatenate([ps, ps[:1]]), axes=(1, 2))
            return jnp.fft.irfftn(jnp.sum(filt * sp[:-1], 0) + ft, s=(L, L)), sp[-1, 0, 0]

        fns["lean basis: transforms alone"] = (jax.jit(jax.vmap(transforms)), (x,))
        fns["lean basis: pointwise alone"] = (
            jax.jit(jax.vmap(lambda s, p=p, a=a: ev_lean._pointwise(p["smoothed"], a, s)[0])),
            (psi,),
        )
        grad = jax.grad(lambda f: path.value(f, 1.0))
        fns["one gradient of the action"] = (jax.jit(jax.vmap(grad)), (x,))
        times = _timed(fns, rounds)
        summary = {n: [float(np.median(v)) / B * 1e6, float(np.min(v)) / B * 1e6, float(np.max(v)) / B * 1e6]
                   for n, v in times.items()}  # fmt: skip
        res["us_per_configuration"][name] = summary
        for n, v in summary.items():
            print(f"{L}x{L} batch {B} {name}: {n}: {v[0]:.2f} [{v[1]:.2f}, {v[2]:.2f}]", flush=True)
    pathlib.Path(out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
