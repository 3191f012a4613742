r"""``pikflow bench solvers``: every solver on the same path, one table.

For each solver (and mode) the flow is solved from scratch and sampled; reported:

* the largest per-layer loss :math:`\max_t \langle r_\chi^2\rangle` over the collocation
  samples (eq. 20 with :math:`\chi = 0`, the paper's loss; its square root is the residual
  of eq. 27),
* the kernel error at :math:`t = 1`: :math:`\max|v - v_{\text{exact}}| / \max|v_{\text{exact}}|`
  on :math:`|\phi| \le 3` against the exact quadrature kernel (one field component only),
* ESS/N and the IMH acceptance of ``--n`` samples,
* the wall time of the first solve (compilation included) and of a second one (after compilation).

Rows: ``direct`` (the configured basis, Lineax QR), ``adam`` (the paper's Appendix A
training of eq. 25), ``levenberg-marquardt`` (variable projection, fewer frequencies),
each sequential, plus the layer-parallel mode of ``direct`` and ``levenberg-marquardt``.
"""

from __future__ import annotations

import time

import numpy as np

from . import register
from ._common import flow_inputs, write_json

ROWS = ("direct", "direct-parallel", "adam", "levenberg-marquardt", "levenberg-marquardt-parallel", "adam-parallel")
DEFAULT_ROWS = "direct,direct-parallel,adam,levenberg-marquardt,levenberg-marquardt-parallel"


def _arguments(p):
    p.add_argument("--n", type=int, default=100_000, help="samples per flow for ESS/N and IMH (default 100000)")
    p.add_argument("--solvers", default=DEFAULT_ROWS, help=f"comma-separated rows out of {', '.join(ROWS)}")
    p.add_argument("--lm-frequencies", type=int, default=12, help="levenberg-marquardt frequencies (default 12)")
    p.add_argument("--adam-epochs", type=int, default=600, help="adam epochs, first and warm layers (default 600)")
    p.add_argument("--repeats", type=int, default=1, help="timed solves after the first one (default 1; 0: none)")


def _solver(row: str, args, opts):
    from .. import solvers

    if row.startswith("direct"):
        return opts.get("solver")
    if row.startswith("adam"):
        return solvers.AdamSolver(epochs=args.adam_epochs, warm_epochs=args.adam_epochs)
    return solvers.LevenbergMarquardtSolver(n_frequencies=args.lm_frequencies)


def _n_parameters(flow) -> int:
    """Fitted numbers per layer (a sine model's unused even part not counted)."""
    import equinox as eqx
    import jax

    from ..solvers import SineKernel

    k = flow.kernels.layer(0)
    if isinstance(k, SineKernel):
        return int(k.coefficients().size + k.frequencies.size)
    return int(sum(np.size(x) for x in jax.tree.leaves(eqx.filter(k, eqx.is_inexact_array))))


@register("solvers", "direct, Adam-trained and Levenberg-Marquardt kernels, sequential and layer-parallel")(_arguments)
def run(args) -> dict:
    import jax

    from .. import solve
    from .._errors import ConfigError
    from ..exact import reference_for

    source, path, opts, sampling, _ = flow_inputs(args)
    rows = [r.strip() for r in args.solvers.split(",") if r.strip()]
    bad = [r for r in rows if r not in ROWS]
    if bad or not rows:
        raise ConfigError(f"--solvers: unknown row(s) {bad}; choose from {list(ROWS)}")
    opts = {k: v for k, v in opts.items() if k not in ("solver", "mode")} | {"solver": opts.get("solver")}
    exact = reference_for(path) if path.n_fields == 1 else None
    x = np.linspace(-3.0, 3.0, 601)
    v_exact = exact.kernel(1.0, x) if exact is not None else None
    results = []
    for row in rows:
        mode = "parallel" if row.endswith("-parallel") else "sequential"
        kw = {**opts, "solver": _solver(row, args, opts), "mode": mode, "progress": not args.quiet}
        if row.startswith("adam") or row.startswith("levenberg"):
            kw.pop("basis", None)
            if row.startswith("adam"):
                kw.pop("collocation", None)  # Appendix A: samples only (the solver's default)
        t0 = time.perf_counter()
        flow = solve(path, **kw)
        first = time.perf_counter() - t0
        again = []
        for _ in range(max(args.repeats, 0)):
            t0 = time.perf_counter()
            solve(path, **{**kw, "progress": False})
            again.append(time.perf_counter() - t0)
        s = flow.sample(args.n, seed=sampling["seed"], keep_layers=False, progress=False)
        loss = [r.residual_rms**2 for r in flow.reports]
        res = {
            "solver": row,
            "mode": mode,
            "parameters_per_layer": _n_parameters(flow),
            "max_layer_loss": float(max(loss)),
            "max_layer_residual_rms": float(max(r.residual_rms for r in flow.reports)),
            "kernel_error_t1": None
            if v_exact is None
            else float(np.max(np.abs(flow.velocity(x, 1.0) - v_exact)) / np.max(np.abs(v_exact))),
            "ess": float(s.ess),
            "imh_acceptance": float(s.imh_acceptance),
            "n_nonfinite": int(s.n_nonfinite),
            "solve_seconds_first": first,
            "solve_seconds": float(np.median(again)) if again else None,
            "settings": flow.settings.get("solver", {"kind": "direct", "basis": flow.settings["basis"]}),
        }
        results.append(res)
    by = {r["solver"]: r for r in results}
    ratios = {}
    for name in ("direct", "levenberg-marquardt", "adam"):
        a, b = by.get(name), by.get(name + "-parallel")
        if a and b:
            key = "solve_seconds" if a["solve_seconds"] and b["solve_seconds"] else "solve_seconds_first"
            ratios[name] = a[key] / b[key]
    out = {
        "config_source": source,
        "device": str(jax.devices()[0]),
        "n_devices": jax.device_count(),
        "layers": 2 * opts.get("steps", 25) + 1,
        "n_samples": args.n,
        "rows": results,
        "sequential_over_parallel_time": ratios,
    }
    print(
        "| solver | mode | params/layer | max layer loss | kernel error t=1 | ESS/N | IMH acc. "
        "| solve s (1st) | solve s (after compile) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ke = "n/a" if r["kernel_error_t1"] is None else f"{r['kernel_error_t1']:.1e}"
        again = "" if r["solve_seconds"] is None else f"{r['solve_seconds']:.2f}"
        print(
            f"| {r['solver']} | {r['mode']} | {r['parameters_per_layer']} | {r['max_layer_loss']:.1e} | {ke} "
            f"| {r['ess']:.6f} | {r['imh_acceptance']:.4f} | {r['solve_seconds_first']:.2f} | {again} |"
        )
    for name, ratio in ratios.items():
        print(f"\n{name}: sequential / layer-parallel solve time = {ratio:.1f}")
    write_json(args, out)
    return out
