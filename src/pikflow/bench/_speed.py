"""``pikflow bench speed``: solve time of every layer, and the sampling rate of each sampling method.

The methods of :meth:`pikflow.Flow.sample`, measured on the same flow in one run:
``rk4`` with the exact log-Jacobian (``2 * steps + 1`` kernels, 4 evaluations per step
plus forward-mode derivatives), ``rk4`` with the continuous log-density, and the
tabulated monotone map (one field component only; one table look-up per sample). The
ratios are against the RK4 exact-log-Jacobian rate measured in the same run.
"""

from __future__ import annotations

import time

import numpy as np

from . import register
from ._common import flow_inputs, write_json


def _arguments(p):
    p.add_argument("--n", type=int, default=1_000_000, help="samples per rate measurement (default 1000000)")
    p.add_argument("--n-rk4", type=int, default=100_000, help="samples for the (slow) RK4 rates (default 100000)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats after compilation (default 3)")


def _rate(flow, n, repeats, **kw):
    flow.sample(min(n, 1 << 14), seed=0, keep_layers=False, progress=False, **kw)  # compile
    rates, s = [], None
    for r in range(repeats):
        s = flow.sample(n, seed=r + 1, keep_layers=False, progress=False, **kw)
        rates.append(n / s.sample_seconds)
    return float(np.median(rates)), rates, s


@register("speed", "solve time of all layers and the sampling rate of each method")(_arguments)
def run(args) -> dict:
    import jax

    from .. import solve

    source, path, opts, sampling, _ = flow_inputs(args)
    opts["progress"] = False
    t0 = time.perf_counter()
    solve(path, **opts)
    first_solve = time.perf_counter() - t0
    solve_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        flow = solve(path, **opts)
        solve_times.append(time.perf_counter() - t0)
    methods = {
        "rk4_exact": (args.n_rk4, dict(method="rk4", logdet="exact")),
        "rk4_continuous": (args.n_rk4, dict(method="rk4", logdet="continuous")),
    }
    if flow.n_fields == 1:
        methods["table"] = (args.n, dict(method="table", table_nodes=sampling.get("table_nodes", 8192)))
    rates = {}
    for name, (n, kw) in methods.items():
        med, all_rates, s = _rate(flow, n, args.repeats, **kw)
        rates[name] = {"samples_per_second": med, "all": all_rates, "n": n, "ess": s.ess, "n_nonfinite": s.n_nonfinite}
    res = {
        "config_source": source,
        "device": str(jax.devices()[0]),
        "layers": len(flow.reports),
        "n_basis": flow.equation.n_basis,
        "solve_seconds_first_call": first_solve,
        "solve_seconds_median": float(np.median(solve_times)),
        "solve_seconds_all": solve_times,
        "methods": rates,
    }
    if "table" in rates:
        flow.table()  # cached: time a fresh build after compilation
        flow._table = None
        t0 = time.perf_counter()
        _, info = flow.table(sampling.get("table_nodes", 8192))
        res["table"] = {"build_seconds": time.perf_counter() - t0, **info.__dict__}
    base = rates["rk4_exact"]["samples_per_second"]
    print("| quantity | value |\n|---|---|")
    print(f"| layers solved (basis size) | {res['layers']} ({res['n_basis']}) |")
    print(f"| solve time, all layers, first call (compilation included) | {first_solve:.2f} s |")
    med = res["solve_seconds_median"]
    print(f"| solve time, all layers, after compilation (median of {args.repeats}) | {med:.3f} s |")
    for name, r in rates.items():
        print(
            f"| sampling rate, {name} ({r['n']} samples) | {r['samples_per_second']:.3g} /s "
            f"({r['samples_per_second'] / base:.3g}x rk4_exact), ESS/N = {r['ess']:.10f} |"
        )
    if "table" in res:
        tb = res["table"]
        print(
            f"| table: build after compilation, nodes, interpolation error, coverage | {tb['build_seconds']:.2f} s, "
            f"{tb['n_nodes']}, {tb['max_interpolation_error']:.1e}, 1 - {1 - tb['coverage']:.1e} |"
        )
    write_json(args, res)
    return res
