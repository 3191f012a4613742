r"""Cost of a lattice flow sample against an HMC trajectory, and a profile of one velocity evaluation (issue #20).

* :func:`cost_table`: microseconds per velocity evaluation (the fused :math:`(\partial\Omega,
  \Delta\Omega)` of :meth:`LatticeBasis.gradient_and_laplacian`), milliseconds per flow sample
  (``4 steps`` evaluations of RK4, the log-density and the weight), milliseconds per HMC
  trajectory (``n_leapfrog`` steps, 10 by default, step adapted to acceptance 0.8, thermalisation included)
  and their ratio, each repeated (median, min, max); the flow and HMC are timed alternately
  in the same process so that load from elsewhere hits both.
* :func:`evaluation_profile`: one evaluation taken apart (the forward transform of
  :math:`\phi`, the smoothing transforms or matrices, the gradient transforms or matrices, the rest:
  pointwise powers, products and Laplacians) plus XLA's cost analysis (flops, bytes) of the whole evaluation.

Compilation is excluded everywhere (every function is called once before it is timed).
"""

from __future__ import annotations

import time

import numpy as np


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _spread(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()), "values": v.tolist()}


def cost_table(
    flow,
    target,
    *,
    n_samples: int = 2000,
    n_hmc: int = 4000,
    chains: int = 16,
    repeats: int = 3,
    seed=0,
    float32: bool = False,
    n_leapfrog: int = 10,
):
    """Flow sample vs HMC trajectory cost, ``repeats`` alternating repeats (see the module docstring).

    ``float32``: also the flow sample with the evaluation in float32 (``LatticeFlow.sample``'s
    ``precision``), timed in the same alternation, and ESS/N of both on the same draws.
    """
    import jax

    from ..lattice import hmc

    key = jax.random.PRNGKey(seed + 11)
    n_therm = 200

    def flow_run(precision="float64"):
        s = flow.sample(key, n_samples, precision=precision)
        return s

    def hmc_run():
        return hmc(
            target, jax.random.PRNGKey(seed + 12), n_hmc, n_chains=chains, step="auto", n_therm=n_therm,
            n_leapfrog=n_leapfrog, keep="magnetisation",
        )  # fmt: skip

    ref = flow_run()
    low = flow_run("float32") if float32 else None
    _, acc = hmc_run()
    per_hmc = n_hmc // chains * chains + n_therm * chains  # trajectories, thermalisation included
    evals = flow.evaluations_per_sample  # a zero layer 0 is not evaluated
    sample_ms, traj_ms, low_ms = [], [], []
    for _ in range(repeats):
        sample_ms.append(_timed(flow_run, 1)[0] / n_samples * 1e3)
        traj_ms.append(_timed(hmc_run, 1)[0] / per_hmc * 1e3)
        if float32:
            low_ms.append(_timed(lambda: flow_run("float32"), 1)[0] / n_samples * 1e3)
    ratio = [a / b for a, b in zip(sample_ms, traj_ms, strict=True)]
    extra = {}
    if float32:
        extra["float32"] = {
            "ms_per_sample": _spread(low_ms),
            "speedup": _spread([a / b for a, b in zip(sample_ms, low_ms, strict=True)]),
            "ess_float64": float(ref.ess()),
            "ess_float32": float(low.ess()),
            "n_nonfinite_float32": int(low.n_nonfinite),
            "max_abs_log_w_difference": float(np.nanmax(np.abs(low.log_w - ref.log_w))),
        }
    return {
        **extra,
        "evaluations_per_sample": evals,
        "us_per_evaluation": _spread(np.asarray(sample_ms) / evals * 1e3),
        "ms_per_sample": _spread(sample_ms),
        "ms_per_hmc_trajectory": _spread(traj_ms),
        "hmc_acceptance": float(acc),
        "hmc_chains": chains,
        "hmc_leapfrog": n_leapfrog,
        "samples_per_repeat": n_samples,
        "sample_over_trajectory": _spread(ratio),
    }


def evaluation_profile(flow, batch: int | None = None, repeats: int = 5, configurations: int = 4096) -> dict:
    """One fused evaluation at ``batch`` configurations, by parts (microseconds per configuration), and XLA's counts.

    ``batch`` defaults to the push's (:func:`pikflow.flow.push_batch`): the evaluation's cost depends on it (at
    16x16 a configuration costs 2-3 times as much at a batch of 1000, whose intermediates leave the cache).
    Each part is timed over back-to-back calls of about ``configurations`` configurations in all, so that the
    dispatch of a call is not counted as its work; median of ``repeats``.
    """
    import jax
    import jax.numpy as jnp

    from ..flow import push_batch

    basis = flow.basis
    batch = push_batch(basis) if batch is None else int(batch)
    calls = max(1, configurations // batch)
    fused = basis.fused
    lat = basis.lattice
    x, _ = flow.base.sample(jax.random.PRNGKey(5), batch)
    a = jnp.asarray(flow.coeffs[len(flow.coeffs) // 2])
    axes = tuple(range(1, lat.d + 1))
    full = jax.jit(jax.vmap(basis.gradient_and_laplacian, (None, 0)))
    parts = {"whole evaluation": (full, (a, x))}
    ft = jnp.fft.rfftn(x, axes=axes)
    parts["rfftn of phi"] = (jax.jit(lambda y: jnp.fft.rfftn(y, axes=axes)), (x,))
    parts["irfftn of the spectrum (final inverse)"] = (
        jax.jit(lambda f: jnp.fft.irfftn(f, s=lat.shape, axes=axes)),
        (ft,),
    )
    if getattr(fused, "matrices", None) is not None:  # separable filters: small matrices per axis, not transforms
        ns = fused.n_scales
        inner = jnp.broadcast_to(x[:, None], (batch, ns, *lat.shape))
        parts[f"smoothing: {ns} scales by matrices per axis"] = (jax.jit(jax.vmap(fused.smooth)), (x,))
        parts[f"gradient: {ns} scales back by matrices, summed"] = (
            jax.jit(jax.vmap(fused.unsmooth)),
            (inner,),
        )
    elif getattr(fused, "filters", None) is not None:  # (the per-family evaluator of O(n) fields has neither)
        filt = jnp.asarray(fused.filters)
        ns = filt.shape[0]
        sm_axes = tuple(i + 1 for i in axes)
        parts[f"smoothing: {ns} filters + batched irfftn"] = (
            jax.jit(lambda f: jnp.fft.irfftn(filt * f[:, None], s=lat.shape, axes=sm_axes)),
            (ft,),
        )
        # the evaluation transforms the ns gradient contributions and the summed Laplacian density
        # (its k = 0 mode is the site sum) in one batched rfftn of ns + 1 channels
        inner = jnp.broadcast_to(x[:, None], (batch, ns + 1, *lat.shape))

        def gradient_and_laplacian(y):
            spec = jnp.fft.rfftn(y, axes=sm_axes)
            return jnp.sum(filt * spec[:, :ns], axis=1), spec[:, ns].reshape(batch, -1)[:, 0]

        parts[f"gradient + Laplacian: batched rfftn of {ns} + 1 channels, filter sum"] = (
            jax.jit(gradient_and_laplacian),
            (inner,),
        )
    out = {}

    def run(fn, args):
        jax.block_until_ready([fn(*args) for _ in range(calls)])

    for name, (fn, args) in parts.items():
        jax.block_until_ready(fn(*args))
        ts = _timed(lambda fn=fn, args=args: run(fn, args), repeats)
        out[name] = float(np.median(ts)) / (calls * batch) * 1e6
    transforms = sum(v for k, v in out.items() if k != "whole evaluation")
    out["rest: pointwise powers, products, Laplacians"] = max(out["whole evaluation"] - transforms, 0.0)
    cost = full.lower(a, x).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    xla = {k: float(cost[k]) / batch for k in ("flops", "bytes accessed", "transcendentals") if k in (cost or {})}
    return {"batch": batch, "calls": calls, "us_per_configuration": out, "xla_per_configuration": xla}


def push_batch_scan(flow, sizes=None, n: int = 2000, repeats: int = 3) -> dict:
    """Milliseconds per flow sample (the RK4 push alone) for several push batch sizes (median of ``repeats``).

    Default sizes: the flow's own (:func:`pikflow.flow.push_batch`) and a quarter, half, twice and four times it.
    """
    import jax

    from ..flow import push_batch

    if sizes is None:
        b = push_batch(flow.basis)
        sizes = sorted({max(1, b // 4), max(1, b // 2), b, 2 * b, 4 * b})
    x, lq = flow.base.sample(jax.random.PRNGKey(6), n)
    out = {}
    for b in [b for b in sizes if b <= n]:
        chunks = [(x[i : i + b], lq[i : i + b]) for i in range(0, n, b)]

        def run(chunks=chunks):
            for xc, lc in chunks:
                jax.block_until_ready(flow.push(xc, lc))

        run()
        out[str(b)] = float(np.median(_timed(run, repeats))) / n * 1e3
    return out


def print_cost(cost: dict, profile: dict | None, scan: dict | None) -> None:
    """Markdown lines for the bench's output."""

    def fmt(d, f="{:.3g}"):
        return f"{f.format(d['median'])} [{f.format(d['min'])}, {f.format(d['max'])}]"

    print()
    print(f"cost (median [min, max] of {len(cost['ms_per_sample']['values'])} repeats, compilation excluded):")
    print(f"  us per velocity evaluation: {fmt(cost['us_per_evaluation'])} ({cost['evaluations_per_sample']} a sample)")
    print(f"  ms per flow sample: {fmt(cost['ms_per_sample'])}")
    print(
        f"  ms per HMC trajectory (step auto, acceptance {cost['hmc_acceptance']:.2f}, {cost['hmc_chains']} chains): "
        f"{fmt(cost['ms_per_hmc_trajectory'])}"
    )
    print(f"  flow sample / HMC trajectory: {fmt(cost['sample_over_trajectory'])}")
    if "float32" in cost:
        f = cost["float32"]
        print(
            f"  float32 evaluation: ms per flow sample {fmt(f['ms_per_sample'])}, speed-up {fmt(f['speedup'])}, "
            f"ESS/N {f['ess_float32']:.4f} (float64 {f['ess_float64']:.4f}), max |d log w| "
            f"{f['max_abs_log_w_difference']:.2g}"
        )
    if profile:
        print(f"one evaluation by parts (us per configuration, batch {profile['batch']}):")
        for k, v in profile["us_per_configuration"].items():
            print(f"  {k}: {v:.3g}")
        if profile["xla_per_configuration"]:
            print(
                "  XLA cost analysis per configuration: "
                + ", ".join(f"{k} {v:.3g}" for k, v in profile["xla_per_configuration"].items())
            )
    if scan:
        print("ms per sample (push only) by push batch: " + ", ".join(f"{k}: {v:.3g}" for k, v in scan.items()))
