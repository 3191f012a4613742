r"""``pikflow bench [hmc]``: PIK against HMC on the same action, in one run (the default benchmark).

Measured, after compilation, on the machine it runs on:

* **PIK**: solve every layer (timed after a first, compiling solve), sample ``N``
  (``keep_layers=False``; timed after a compiling call of the same size), run the IMH
  chain. ESS/N, IMH acceptance, :math:`\tau_{\mathrm{int}}` of every observable along the
  IMH chain (Gamma method).
* **HMC, vectorised**: ``chains`` BlackJAX HMC chains (trajectory length 1, step 1/25)
  with :func:`jax.vmap`, split over ``workers`` threads (the CPU cores), compiled ahead of
  time, thermalised, then ``n`` measured trajectories per chain.
* **HMC, single chain**: the paper's comparison (sec. IV A 1).

Independent samples per second: for HMC :math:`N / (2\tau_{\mathrm{int}})` over the
sampling seconds, with :math:`\tau_{\mathrm{int}}` the largest over the observables
(Wolff's Gamma method). For PIK :math:`N \cdot \mathrm{ESS}/N` over the sampling seconds:
its estimates are reweighted averages, whose variance is that of ESS independent samples.
The Gamma-method count along PIK's IMH chain (IMH time added) is reported beside it
(``independent_per_second_imh``, ``ratio_imh``); with ESS/N near 1 the IMH chain has
:math:`\tau_{\mathrm{int}} \approx 1/2` and the two agree.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from . import register
from ._common import write_json


def _arguments(p):
    p.add_argument("--n", type=int, help="PIK samples (default: [sampling] n of the configuration)")
    p.add_argument("--chains", type=int, help="chains of the vectorised HMC run (default: [hmc] chains, 2048)")
    p.add_argument("--hmc-n", type=int, help="measured trajectories per vectorised chain (default: [hmc] n, 1000)")
    p.add_argument("--single-n", type=int, help="trajectories of the single-chain HMC run (default 100000)")
    p.add_argument("--thermalisation", type=int, help="HMC trajectories discarded per chain (default 200)")
    p.add_argument("--workers", type=int, help="threads for the vectorised HMC chains (default: CPU cores)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats after compilation; medians (default 3)")


# ---------------------------------------------------------------------- shared helpers
def inputs(args):
    """``(source, path, solve opts, sampling opts, observables, hmc opts)`` with the CLI overrides."""
    from ..cli import build, config_source, hmc_options

    data, source = config_source(args.config, args.example)
    path, opts, sampling, observables = build(data)
    h = hmc_options(data)
    for key, attr in (
        ("chains", "chains"),
        ("n", "hmc_n"),
        ("n_single", "single_n"),
        ("thermalisation", "thermalisation"),
        ("workers", "workers"),
    ):
        if getattr(args, attr, None) is not None:
            h[key] = getattr(args, attr)
    if not observables:  # a default that every action has: the squared field
        observables = {"phi2": " + ".join(f"{f}**2" for f in path.fields)}
    return source, path, opts, sampling, observables, h


def exact_values_at(path, observable, times) -> list[float] | None:
    """Exact :math:`\\langle O\\rangle_t` at ``times`` by quadrature (one-component paths and string/SymPy
    observables), else ``None``."""
    if path.n_fields != 1 or (callable(observable) and not isinstance(observable, str)):
        return None
    import sympy as sp

    from ..action import as_expression
    from ..exact import reference_for

    ref = reference_for(path)
    (phi,) = path.fields
    expr = as_expression(observable, what="observable")
    expr = expr.xreplace({s: phi for s in expr.free_symbols if str(s) == str(phi)})
    fn = sp.lambdify([phi], expr, modules=["scipy", "numpy"])  # scipy: erf, as the quadrature reference
    return [ref.expectation(float(t), lambda x: np.broadcast_to(fn(x), np.shape(x)).astype(float)) for t in times]


def exact_values(path, observables: dict) -> dict:
    """Exact :math:`\\langle O\\rangle_1` by quadrature for one-component paths, else ``{}``."""
    out = {}
    for name, obs in observables.items():
        v = exact_values_at(path, obs, [1.0])
        if v is not None:
            out[name] = v[0]
    return out


def hmc_sampler(path, h):
    from ..baselines import HMC

    return HMC(
        path,
        step_size=h["step_size"],
        trajectory_length=h["trajectory_length"],
        n_leapfrog=h["n_leapfrog"],
        jitter=h.get("jitter", 0.0),
    )


def _pull(a, b) -> float:
    err = math.hypot(a["error"], b["error"])
    return (a["value"] - b["value"]) / err if err > 0 else math.inf


def _fmt(v, e) -> str:
    from .._estimate import Estimate

    return str(Estimate(v, e))


# ---------------------------------------------------------------------- the benchmark
def _time_pik(path, opts, sampling, observables, n, repeats, progress):
    from .. import solve
    from ..baselines import imh_estimate

    t0 = time.perf_counter()
    flow = solve(path, **{**opts, "progress": progress})
    solve_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    flow = solve(path, **{**opts, "progress": False})
    solve_seconds = time.perf_counter() - t0
    kw = dict(keep_layers=False, progress=False)
    warm = flow.sample(n, seed=sampling["seed"], **kw)  # compile the sampler ...
    _ = warm.imh  # ... and the IMH chain for this N
    runs = []
    for r in range(repeats):
        s = flow.sample(n, seed=sampling["seed"] + 1 + r, **kw)
        t0 = time.perf_counter()
        _ = s.imh
        imh_seconds = time.perf_counter() - t0
        est = {k: imh_estimate(s, o) for k, o in observables.items()}
        runs.append((s, imh_seconds, est))
    return flow, solve_first, solve_seconds, runs


def _hmc_block(sampler, h, observables, chains, n, workers, repeats, seed, progress):
    runs = []
    for r in range(repeats):
        res = sampler.run(
            1.0,
            n=n,
            chains=chains,
            thermalisation=h["thermalisation"],
            seed=seed + r,
            workers=workers,
            observables=observables,
            progress=progress,
        )
        runs.append(res)
    rates = []
    for res in runs:
        tau = max(g.tau_int for g in res.estimates.values())
        rates.append(res.n_total / (2 * tau) / res.sample_seconds)
    i = int(np.argsort(rates)[len(rates) // 2])  # the median run
    res = runs[i]
    tau = max(g.tau_int for g in res.estimates.values())
    n_eff = res.n_total / (2 * tau)
    return {
        "chains": res.n_chains,
        "n_per_chain": res.n,
        "n_total": res.n_total,
        "workers": res.workers,
        "step_size": res.step_size,
        "n_leapfrog": res.n_leapfrog,
        "thermalisation": res.thermalisation,
        "acceptance": res.acceptance,
        "n_divergent": res.n_divergent,
        "tau_int": tau,
        "tau_int_per_observable": {k: g.tau_int for k, g in res.estimates.items()},
        "sample_seconds": res.sample_seconds,
        "sample_seconds_all": [x.sample_seconds for x in runs],
        "thermalisation_seconds": res.thermalisation_seconds,
        "compile_seconds": res.compile_seconds,
        "trajectories_per_second": res.n_total / res.sample_seconds,
        "independent_per_second": n_eff / res.sample_seconds,
        "independent_per_second_all": rates,
        "independent_per_second_with_thermalisation": n_eff / (res.sample_seconds + res.thermalisation_seconds),
    }, {k: {"value": g.mean, "error": g.error, "tau_int": g.tau_int} for k, g in res.estimates.items()}


def _pik_record(flow, solve_first, solve_seconds, runs, n):
    """The median PIK run (by independent samples per second along the IMH chain) and its record."""
    rates = []
    for s, imh_seconds, est in runs:
        tau = max(g.tau_int for g in est.values())
        rates.append(n / (2 * tau) / (s.sample_seconds + imh_seconds))
    i = int(np.argsort(rates)[len(rates) // 2])
    s, imh_seconds, est = runs[i]
    tau = max(g.tau_int for g in est.values())
    n_eff = n / (2 * tau)
    secs = s.sample_seconds + imh_seconds
    log_z = s.log_z(1.0)
    pik = {
        "n": n,
        "ess": s.ess,
        "imh_acceptance": s.imh_acceptance,
        "tau_int": tau,
        "tau_int_per_observable": {k: g.tau_int for k, g in est.items()},
        "sample_seconds": s.sample_seconds,
        "sample_seconds_all": [r[0].sample_seconds for r in runs],
        "imh_seconds": imh_seconds,
        "solve_seconds": solve_seconds,
        "solve_seconds_first": solve_first,
        "layers": len(flow.reports),
        "n_basis": flow.equation.n_basis,
        "samples_per_second": n / s.sample_seconds,
        "independent_per_second": n * s.ess / s.sample_seconds,
        "independent_per_second_all": [n * r[0].ess / r[0].sample_seconds for r in runs],
        "independent_per_second_imh": n_eff / secs,
        "independent_per_second_imh_all": rates,
        "independent_per_second_with_solve": n * s.ess / (s.sample_seconds + solve_seconds),
        "log_z": log_z.to_dict(),
    }
    return pik, s, est


def _agreement(observables, obs_pik, obs_rw, obs_hmc, obs_single, exact):
    """Pulls of PIK, reweighted PIK and both HMC runs against each other and against the exact values."""
    agreement = {}
    for k in observables:
        a = {"pik_vs_hmc": _pull(obs_pik[k], obs_hmc[k]), "pik_vs_hmc_single": _pull(obs_pik[k], obs_single[k])}
        if k in exact:
            ex = {"value": exact[k], "error": 0.0}
            a |= {
                "pik_vs_exact": _pull(obs_pik[k], ex),
                "pik_reweighted_vs_exact": _pull(obs_rw[k], ex),
                "hmc_vs_exact": _pull(obs_hmc[k], ex),
                "hmc_single_vs_exact": _pull(obs_single[k], ex),
            }
        agreement[k] = a
    return agreement


@register("hmc", "PIK vs HMC (vectorised and single chain): independent samples per second, observables")(_arguments)
def run(args) -> dict:
    import jax

    source, path, opts, sampling, observables, h = inputs(args)
    n = args.n if args.n is not None else sampling["n"]
    repeats = max(1, args.repeats)
    progress = not args.quiet
    workers = min(h["workers"], h["chains"])
    chains = -(-h["chains"] // workers) * workers  # a multiple of the workers

    # ---- PIK
    flow, solve_first, solve_seconds, runs = _time_pik(path, opts, sampling, observables, n, repeats, progress)
    pik, s, est = _pik_record(flow, solve_first, solve_seconds, runs, n)
    obs_pik = {k: {"value": g.mean, "error": g.error, "tau_int": g.tau_int} for k, g in est.items()}
    obs_rw = {k: s.observable(o).to_dict() for k, o in observables.items()}

    # ---- HMC
    sampler = hmc_sampler(path, h)
    hmc, obs_hmc = _hmc_block(sampler, h, observables, chains, h["n"], workers, repeats, h["seed"], progress)
    single, obs_single = _hmc_block(sampler, h, observables, 1, h["n_single"], 1, repeats, h["seed"] + 100, progress)

    exact = exact_values(path, observables)
    if path.n_fields == 1:
        from ..exact import reference_for

        pik["log_z_exact"] = reference_for(path).log_z(1.0)
    agreement = _agreement(observables, obs_pik, obs_rw, obs_hmc, obs_single, exact)

    res = {
        "config_source": source,
        "device": str(jax.devices()[0]),
        "cpu_count": os.cpu_count(),
        "definitions": {
            "independent_per_second": "HMC: N / (2 tau_int) over the sampling seconds, tau_int by Wolff's Gamma "
            "method (the chains as replica, about their overall mean), the largest over the observables. PIK: N * "
            "ESS/N over the sampling seconds (its "
            "estimates are reweighted, with the variance of ESS independent samples); the same Gamma-method count "
            "along PIK's IMH chain, IMH time added, is independent_per_second_imh (ratio_imh)",
            "ratio": "PIK over vectorised HMC, sampling only (solve, thermalisation, compilation excluded)",
            "ratio_with_solve": "PIK with its solve time (after compilation) amortised over N, over vectorised HMC "
            "sampling only",
            "ratio_single_chain": "PIK over single-chain HMC, sampling only",
            "agreement": "differences in units of the combined one-sigma error",
        },
        "pik": pik,
        "hmc": hmc,
        "hmc_single": single,
        "ratio": pik["independent_per_second"] / hmc["independent_per_second"],
        "ratio_with_solve": pik["independent_per_second_with_solve"] / hmc["independent_per_second"],
        "ratio_single_chain": pik["independent_per_second"] / single["independent_per_second"],
        "ratio_imh": pik["independent_per_second_imh"] / hmc["independent_per_second"],
        "observables": {
            "pik": obs_pik,
            "pik_reweighted": obs_rw,
            "hmc": obs_hmc,
            "hmc_single": obs_single,
            "exact": exact,
        },
        "agreement": agreement,
    }
    _print_table(res, observables)
    write_json(args, res)
    return res


def _print_table(res, observables):
    p, h, s = res["pik"], res["hmc"], res["hmc_single"]
    ex = res["observables"]["exact"]
    print(f"| quantity | PIK | HMC, {h['chains']} chains ({h['workers']} threads) | HMC, 1 chain |")
    print("|---|---|---|---|")
    print(f"| samples N | {p['n']} | {h['n_total']} | {s['n_total']} |")
    print(f"| ESS/N | {p['ess']:.6f} | | |")
    acc = f"{p['imh_acceptance']:.4f} | {h['acceptance']:.4f} | {s['acceptance']:.4f}"
    print(f"| acceptance (IMH / Metropolis) | {acc} |")
    print(f"| tau_int (largest over observables) | {p['tau_int']:.3f} | {h['tau_int']:.3f} | {s['tau_int']:.3f} |")
    print(f"| sampling seconds | {p['sample_seconds']:.3f} | {h['sample_seconds']:.3f} | {s['sample_seconds']:.3f} |")
    print(
        f"| set-up seconds (solve / thermalisation) | {p['solve_seconds']:.3f} | {h['thermalisation_seconds']:.3f} | "
        f"{s['thermalisation_seconds']:.3f} |"
    )
    print(
        f"| **independent samples / s** | **{p['independent_per_second']:.3g}** | "
        f"**{h['independent_per_second']:.3g}** | **{s['independent_per_second']:.3g}** |"
    )
    print(f"| independent / s via the IMH chain (IMH time added) | {p['independent_per_second_imh']:.3g} | | |")
    print(
        f"| independent / s with set-up | {p['independent_per_second_with_solve']:.3g} | "
        f"{h['independent_per_second_with_thermalisation']:.3g} | "
        f"{s['independent_per_second_with_thermalisation']:.3g} |"
    )
    for k in observables:
        cells = []
        for key in ("pik", "hmc", "hmc_single"):
            o = res["observables"][key][k]
            cell = _fmt(o["value"], o["error"])
            if k in ex:
                cell += f" ({(o['value'] - ex[k]) / o['error']:+.1f}σ)" if o["error"] > 0 else ""
            cells.append(cell)
        exact = f"; exact {ex[k]:.6f}" if k in ex else ""
        print(f"| <{k}>{exact} | " + " | ".join(cells) + " |")
    if "log_z_exact" in p:
        lz = p["log_z"]
        print(f"| log Z (flow weights); exact {p['log_z_exact']:.8f} | {_fmt(lz['value'], lz['error'])} | | |")
    print()
    print(f"PIK / vectorised HMC, sampling only:      {res['ratio']:.3g}x")
    print(f"PIK (solve amortised) / vectorised HMC:   {res['ratio_with_solve']:.3g}x")
    print(f"PIK / single-chain HMC (paper's):         {res['ratio_single_chain']:.3g}x")
    print(f"PIK via its IMH chain / vectorised HMC:   {res['ratio_imh']:.3g}x")
    for k, a in res["agreement"].items():
        print(f"<{k}>: PIK - HMC = {a['pik_vs_hmc']:+.2f} combined sigma")
