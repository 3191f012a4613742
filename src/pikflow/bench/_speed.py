"""``pikflow bench speed``: solve time of every layer, and the sampling rate of each sampling method.

The methods of :meth:`pikflow.Flow.sample`, measured on the same flow in one run:
``rk4`` with the exact log-Jacobian (``2 * steps + 1`` kernels, 4 evaluations per step
plus forward-mode derivatives), ``rk4`` with the continuous log-density, and the
tabulated map (one table look-up per sample): the monotone map of one field component,
or the radial map of an :math:`O(N)` flow with a radial kernel. The ratios are against
the RK4 exact-log-Jacobian rate measured in the same run (the ``auto`` method of several
components before the radial table existed).

Peak memory: the peak resident set size of the process while a method runs, measured
from the kernel's high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs``
before each method; Linux), once for the first call (compilation included) and once
for the timed calls, and reported above the resident size before the method.
``--on N`` replaces the configuration by the :math:`O(N)` model in 0-D (the O(2)
example's path with ``N`` components).
"""

from __future__ import annotations

import pathlib
import time

import numpy as np

from . import register
from ._common import flow_inputs, write_json


def _arguments(p):
    p.add_argument("--n", type=int, default=1_000_000, help="samples per rate measurement (default 1000000)")
    p.add_argument("--n-rk4", type=int, default=100_000, help="samples for the (slow) RK4 rates (default 100000)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats after compilation (default 3)")
    p.add_argument(
        "--on",
        type=int,
        default=None,
        metavar="N",
        help="the O(N) model in 0-D, N >= 2 components, instead of CONFIG",
    )


def _memory(reset: bool = False) -> tuple[float, float] | None:
    """``(resident, peak)`` MB of this process (Linux ``/proc``), the peak reset first if asked; else None."""
    status = pathlib.Path("/proc/self/status")
    try:
        if reset:
            pathlib.Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


def _rate(flow, n, repeats, **kw):
    """Median rate of ``repeats`` timed calls of ``n`` samples after one untimed call of the same size
    (compilation), and the peak memory above the start of each phase (MB; None where not measurable)."""
    before = _memory(reset=True)
    flow.sample(n, seed=0, keep_layers=False, progress=False, **kw)  # compile every batch size of n
    first = _memory()
    start = _memory(reset=True)
    rates, s = [], None
    for r in range(repeats):
        s = flow.sample(n, seed=r + 1, keep_layers=False, progress=False, **kw)
        rates.append(n / s.sample_seconds)
    timed = _memory()
    memory = None
    if before and first and start and timed:
        memory = {"first_call_peak_mb": first[1] - before[0], "timed_peak_mb": timed[1] - start[0]}
    return float(np.median(rates)), rates, s, memory


def _o_n_inputs(n_fields: int):
    """The O(N) model of the O(2) example with ``n_fields`` components (``--on N``)."""
    from .. import Action, Path
    from .._errors import ConfigError
    from ..cli import build, config_source

    if n_fields < 2:
        raise ConfigError(f"--on needs N >= 2 components, got {n_fields}")
    data, _ = config_source(None, "o2-0d")
    _, opts, sampling, _ = build(data)
    fields = [f"phi{i + 1}" for i in range(n_fields)]
    r2 = "(" + " + ".join(f"{f}**2" for f in fields) + ")"
    action = Action(f"m2/2*{r2} + lam/4*{r2}**2", fields=fields)
    path = Path(action, dict(data["path"]))
    return f"O({n_fields}) model in 0-D (--on {n_fields})", path, opts, sampling


@register("speed", "solve time of all layers and the sampling rate of each method")(_arguments)
def run(args) -> dict:
    import jax

    from .. import solve

    if args.on is not None:
        source, path, opts, sampling = _o_n_inputs(args.on)
    else:
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
    if flow.n_fields == 1 or flow._radial():
        methods["table"] = (args.n, dict(method="table", table_nodes=sampling.get("table_nodes", 8192)))
    rates = {}
    for name, (n, kw) in methods.items():
        med, all_rates, s, memory = _rate(flow, n, args.repeats, **kw)
        rates[name] = {
            "samples_per_second": med,
            "all": all_rates,
            "n": n,
            "ess": s.ess,
            "n_nonfinite": s.n_nonfinite,
            "memory": memory,
        }
    res = {
        "n_fields": flow.n_fields,
        "auto_method": "table" if "table" in methods else "rk4",
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
        spread = f"{min(r['all']):.3g}-{max(r['all']):.3g}"
        print(
            f"| sampling rate, {name} ({r['n']} samples) | {r['samples_per_second']:.3g} /s (range {spread}; "
            f"{r['samples_per_second'] / base:.3g}x rk4_exact), ESS/N = {r['ess']:.10f} |"
        )
    for name, r in rates.items():
        m = r["memory"]
        if m is not None:
            print(
                f"| peak memory above start, {name}: first call (compilation) / timed calls | "
                f"{m['first_call_peak_mb']:.0f} MB / {m['timed_peak_mb']:.0f} MB |"
            )
    print(f"| method chosen by sample(method='auto') | {res['auto_method']} |")
    if "table" in res:
        tb = res["table"]
        print(
            f"| table: build after compilation, nodes, interpolation error, coverage | {tb['build_seconds']:.2f} s, "
            f"{tb['n_nodes']}, {tb['max_interpolation_error']:.1e}, 1 - {1 - tb['coverage']:.1e} |"
        )
    write_json(args, res)
    return res
