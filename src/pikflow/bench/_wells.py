r"""``pikflow bench wells``: deep and tilted double wells at the default settings, against quadrature.

The ladder of targets :math:`\hat S_1 = a(\phi^2 - 1)^2 + h\phi` from the Gaussian
:math:`\hat S_0 = \phi^2/2` along the straight path :math:`\hat S_t = (1-t)\hat S_0 + t\hat S_1`
(barrier :math:`\approx a` in units of the action, tilt ``h``). Each well is solved with
the defaults of :func:`pikflow.solve`, sampled with the table, checked for holes
(:meth:`pikflow.Samples.check`: ESS/N seen from exact samples of the target) and compared
with exact quadrature: :math:`\langle\phi\rangle`, :math:`\langle\phi^2\rangle`, :math:`\log Z`
in units of their errors. Prints a markdown table (``--markdown FILE`` writes it too).
"""

from __future__ import annotations

import pathlib
import time

import numpy as np

from .._errors import PikflowError
from . import register
from ._common import write_json

#: (a, h): barrier height a (action units) and tilt h; (4, 0.5) is the well of issue #14.
LADDER = ((2.0, 0.25), (2.0, 1.0), (4.0, 0.5), (6.0, 0.5), (8.0, 0.5), (8.0, 2.0))


def well_path(a: float, h: float):
    r"""The path :math:`(1-t)\phi^2/2 + t\,[a(\phi^2-1)^2 + h\phi]` (the constant :math:`a` dropped)."""
    from .. import Action, Path

    action = Action("m2/2*phi**2 + g4*phi**4 + h*phi", fields=["phi"])
    return Path(action, {"m2": [1.0, -4.0 * a], "g4": [0.0, a], "h": [0.0, h]})


def _arguments(p):
    p.add_argument("--n", type=int, default=100_000, help="samples per well (default 100000)")
    p.add_argument("--wells", help="comma-separated a:h pairs (default the ladder 2:0.25,2:1,4:0.5,6:0.5,8:0.5,8:2)")
    p.add_argument("--steps", type=int, help="RK4 steps (default: pikflow.solve's default)")
    p.add_argument("--markdown", help="also write the markdown table to this file")
    p.add_argument(
        "--sampler",
        choices=("table", "smc", "smc-plain"),
        default="table",
        help="table: the flow's samples (default); smc: pikflow.smc with PIK transport, smc-plain: without "
        "(transport='none'); both with --replicas replicas of n/replicas particles, errors from the replicas",
    )
    p.add_argument("--replicas", type=int, default=16, help="SMC replicas (default 16)")
    p.add_argument(
        "--frequency-range",
        choices=("auto", "fixed"),
        help="pikflow.solve's frequency_range (default: solve's default, 'fixed')",
    )


def _wells(text):
    if not text:
        return LADDER
    try:
        return tuple(tuple(float(x) for x in pair.split(":")) for pair in text.split(","))
    except ValueError:
        raise PikflowError(f"--wells must be comma-separated a:h pairs like 4:0.5,8:1, got {text!r}") from None


def measure_well(a: float, h: float, *, n: int = 100_000, seed: int = 0, **solve_options) -> dict:
    """Solve, sample and check one well at the given (default) settings; the numbers of one table row."""
    from .. import solve

    path = well_path(a, h)
    t0 = time.perf_counter()
    flow = solve(path, progress=False, seed=seed, **solve_options)
    solve_seconds = time.perf_counter() - t0
    s = flow.sample(n, seed=seed, keep_layers=False, progress=False)
    warnings = s.check(flow)
    return {
        "a": a,
        "h": h,
        "steps": flow.steps,
        "auto_steps": flow.settings.get("auto_steps"),  # the step counts tried by steps="auto"
        "n_basis": flow.equation.n_basis,
        "ess": s.ess,
        "target_ess": s.target_ess,
        "imh_acceptance": s.imh_acceptance,
        "deviations_sigma": s.deviations,
        "coverage": flow.table_info.coverage,
        "range": [float(s.final.min()), float(s.final.max())],
        "solve_seconds": solve_seconds,
        "warnings": warnings,
        "ok": s.target_ess >= 0.9 and all(abs(v) <= 3.0 for v in s.deviations.values()),
    }


def measure_well_smc(
    a: float, h: float, *, n: int = 100_000, seed: int = 0, replicas: int = 16, transport: str = "pik", **solve_options
) -> dict:
    """Solve one well, then sample it by SMC (:func:`pikflow.smc`); deviations from quadrature in replica errors."""
    from .. import smc, solve
    from ..exact import reference_for

    path = well_path(a, h)
    t0 = time.perf_counter()
    flow = solve(path, progress=False, seed=seed, **solve_options)
    solve_seconds = time.perf_counter() - t0
    obs = {"<phi>": lambda x: x[0], "<phi**2>": lambda x: x[0] ** 2}
    r = smc(
        flow, max(n // replicas, 2), seed=seed, replicas=replicas, transport=transport, observables=obs, progress=False
    )
    ref = reference_for(path)
    exact = {
        "log_z": ref.log_z(1.0),
        "<phi>": ref.expectation(1.0, lambda x: x),
        "<phi**2>": ref.expectation(1.0, np.square),
    }
    est = {"log_z": r.log_z_estimate(), **{k: r.observable(k) for k in obs}}
    dev = {k: (est[k].value - exact[k]) / est[k].error for k in exact}
    return {
        "a": a,
        "h": h,
        "sampler": "smc" if transport == "pik" else "smc-plain",
        "steps": flow.steps,
        "replicas": replicas,
        "ess": r.final_ess,
        "target_ess": None,
        "deviations_sigma": dev,
        "errors": {k: est[k].error for k in exact},
        "resamplings": r.n_resampled,
        "solve_seconds": solve_seconds,
        "sample_seconds": r.seconds,
        "warnings": [],
        "ok": all(abs(v) <= 3.0 for v in dev.values()),
    }


@register("wells", "deep and tilted double wells at default settings: holes, target ESS, quadrature")(_arguments)
def run(args) -> dict:
    opts = {} if args.steps is None else {"steps": args.steps}
    if args.frequency_range is not None:
        opts["frequency_range"] = args.frequency_range
    rows = []
    for a, h in _wells(args.wells):
        try:
            if args.sampler == "table":
                rows.append(measure_well(a, h, n=args.n, **opts))
            else:
                transport = "pik" if args.sampler == "smc" else "none"
                rows.append(measure_well_smc(a, h, n=args.n, replicas=args.replicas, transport=transport, **opts))
        except PikflowError as err:  # a flow that cannot even be sampled is a measured limit, not a crash
            rows.append({"a": a, "h": h, "error": str(err), "ok": False})
        # written after every well: a cut-off run keeps its rows
        write_json(args, {"n": args.n, "settings": opts, "wells": rows, "partial": True})
    lines = [
        "| a (barrier) | h (tilt) | ESS/N | target ESS/N | ⟨φ⟩ | ⟨φ²⟩ | log Z | solve s | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['a']:g} | {r['h']:g} | – | – | – | – | – | – | fails: {r['error'][:90]} |")
            continue
        d = r["deviations_sigma"]
        verdict = "ok" if r["ok"] else ("warns" if r["warnings"] else "NOT FLAGGED")
        if r.get("sampler", "table") != "table" and not r["ok"]:
            verdict = "beyond 3 sigma"
        target = "–" if r["target_ess"] is None else f"{r['target_ess']:.4f}"
        lines.append(
            f"| {r['a']:g} | {r['h']:g} | {r['ess']:.4f} | {target} | {d['<phi>']:+.1f} sigma | "
            f"{d['<phi**2>']:+.1f} sigma | {d['log_z']:+.1f} sigma | {r['solve_seconds']:.1f} | {verdict} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        p = pathlib.Path(args.markdown)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(table + "\n")
    res = {"n": args.n, "sampler": args.sampler, "settings": opts, "wells": rows}
    write_json(args, res)
    return res
