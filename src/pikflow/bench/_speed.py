"""``pikflow bench speed``: solve time of every layer and the sampling rate of one flow."""

from __future__ import annotations

import time

import numpy as np

from . import register
from ._common import flow_inputs, write_json


def _arguments(p):
    p.add_argument("--n", type=int, default=200_000, help="samples for the sampling rate (default 200000)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats after compilation (default 3)")


@register("speed", "solve time of all layers and sampling rate of one flow")(_arguments)
def run(args) -> dict:
    import jax

    from .. import solve

    source, path, opts, sampling, _ = flow_inputs(args)
    opts["progress"] = False
    solve(path, **opts)  # compile
    solve_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        flow = solve(path, **opts)
        solve_times.append(time.perf_counter() - t0)
    n = args.n
    kw = dict(n=n, seed=0, logdet=sampling["logdet"], keep_layers=False, batch_size=sampling["batch_size"])
    flow.sample(**{**kw, "progress": False})  # compile
    rates = []
    for r in range(args.repeats):
        s = flow.sample(**{**kw, "seed": r + 1, "progress": False})
        rates.append(n / s.sample_seconds)
    res = {
        "config_source": source,
        "device": str(jax.devices()[0]),
        "layers": len(flow.reports),
        "n_basis": flow.equation.n_basis,
        "solve_seconds_median": float(np.median(solve_times)),
        "solve_seconds_all": solve_times,
        "samples_per_second_median": float(np.median(rates)),
        "samples_per_second_all": rates,
        "n_samples": n,
        "logdet": s.logdet,
        "ess": s.ess,
    }
    print("| quantity | value |\n|---|---|")
    print(f"| layers solved (basis size) | {res['layers']} ({res['n_basis']}) |")
    med = res["solve_seconds_median"]
    print(f"| solve time, all layers, after compilation (median of {args.repeats}) | {med:.3f} s |")
    print(f"| sampling rate ({n} samples, {s.logdet} log-density) | {res['samples_per_second_median']:.3g} /s |")
    print(f"| ESS/N | {res['ess']:.6f} |")
    write_json(args, res)
    return res
