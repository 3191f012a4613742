r"""The lattice branch of ``pikflow run``: ``[action] lattice = [...]`` configurations (issue #7).

A configuration is a lattice run when ``[action]`` has ``lattice = [L1, ..., Ld]``; its
``density`` is then a site density (``phi``, ``shift(phi, mu[, -1])``, ``sum_mu(...)``,
``d``, couplings; see :class:`pikflow.action.LatticeAction`) and the ``[path]``
couplings are numbers, ``[start, end]`` pairs or expressions in ``t``. The run builds
the :class:`~pikflow.action.LatticePath`, fits the flow of eqs. 32-34 with
:func:`~pikflow.lattice.fit_lattice` (by default from a matched Gaussian base: only
the path's values at ``t = 1`` matter then), samples it, runs the IMH step and writes
``results.json`` (``ess``, ``imh_acceptance``, ``n_nonfinite``, ``observables``
``abs_m``/``chi``/``binder``, timings, residuals per layer), two plots and the flow
(``flow/``, read back with :meth:`pikflow.flow.LatticeFlow.load`). The configuration's checks, defaults and
parsing are in :mod:`._lattice_config`.
"""

from __future__ import annotations

import json
import time as _time

from .._devices import run_info
from .._errors import ConfigError, PikflowError
from ._lattice_config import build_lattice
from ._lattice_report import (
    _imh_magnetisation,
    _json_default,
    _log_q_check,
    _plots,
    _summary,
    dataclass_dict,
    reliability_warnings,
)
from ._levers import (
    checkpoint_dir,
    drop_checkpoint,
    lattice_hmc,
    lattice_observables,
    lattice_solver,
    lattice_solver_spec,
    observable_estimates,
    refine_lattice,
)
from ._smc import smc_settings


def fit_from_settings(
    path, settings: dict, *, progress: bool = True, solver=None, hmc: dict | None = None, checkpoint=None
):
    """Fit the flow of ``path`` as the settings say (base, basis overrides, steps, collocation, HMC).

    ``solver`` (``[solver]``), ``hmc`` (``fit_lattice`` HMC arguments from ``[hmc]``, see
    :func:`~pikflow.cli._levers.lattice_hmc`) and ``checkpoint`` (a directory) are passed on.
    """
    from ..lattice import fit_lattice

    over = settings["basis"]
    hmc = hmc or {"hmc_samples": settings["hmc_samples"], "hmc_chains": settings["hmc_chains"]}
    return fit_lattice(
        path,
        base=settings["base"],
        basis=(lambda flow_path, base: _basis(flow_path, base, over)) if over else settings.get("basis_preset"),
        steps=settings["steps"],
        schedule=settings.get("schedule", "auto"),
        n_collocation=settings["collocation"],
        select=settings["select"],
        tames=settings["tames"],
        fourier_bins=settings.get("fourier_bins", "auto"),
        smooth_base=settings.get("smooth_base", "auto"),
        seed=settings["seed"],
        solver=solver,
        checkpoint=checkpoint,
        progress=progress,
        **hmc,
    )


def _basis(path, base, over: dict):
    import numpy as np

    from ..lattice import DEFAULT_TAME, LatticeBasis, Magnetisation, default_scales, lattice_basis

    K0 = np.asarray(base.precision)
    try:
        basis = lattice_basis(
            path.lattice,
            fourier=over.get("fourier", True),
            magnetisation=tuple(over.get("magnetisation", ())),
            scales=tuple(over["scales"]) if "scales" in over else default_scales(K0),
            powers=tuple(over.get("powers", (4, 6))),
            precision=K0,
            tame=over.get("tame", DEFAULT_TAME),
            local_range=over.get("local_range"),
            local_degree=over.get("local_degree", 4),
            symmetry=path.symmetry(),
        )
    except PikflowError as err:
        raise ConfigError(f"[lattice] basis settings: {err}") from None
    if base.m0 > 0:  # a mixture base: its action's -log cosh(bM) term belongs in the basis too
        basis = LatticeBasis([*basis.families, Magnetisation(path.lattice, (), log_cosh=base.zero_mode_coupling)])
    return basis


def _scan_or_multilevel(args, data: dict, source: str) -> int | None:
    """A ``[scan]`` or ``[multilevel]`` lattice run (no flow of the target): its exit code; None for a flow run."""
    from ._output import RunOutput
    from ._scan import run_scan, scan_settings

    scan = scan_settings(data)
    if scan is not None:  # one SMC run per size along the [path] as written: no flow, no matched base
        return run_scan(data, source, scan, RunOutput(args.out), progress=not args.quiet)
    from ._multilevel import multilevel_settings, run_multilevel

    levels = multilevel_settings(data)
    if levels is not None:  # coarsest lattice by HMC, then upsampling + SMC level by level
        return run_multilevel(data, source, levels, RunOutput(args.out), progress=not args.quiet)
    return None


def _flow_results(flow, data, source, settings, solver, hmc_kw, samples, sample_seconds) -> dict:
    """The ``results.json`` of a lattice flow run: the fit, its layers and candidates, the samples' ESS and costs."""
    from ..diagnostics import weight_tail

    path, info = flow.path, flow.info
    hmc_s = info.get("hmc_seconds")
    residuals = [dataclass_dict(r) for r in flow.reports]
    results = _lattice_header(flow, data, source)
    results.update(
        {
            "density": str(path.action.source),
            "fields": list(path.action.field_names),
            "couplings": {str(k): str(v) for k, v in path.coupling_exprs.items()},
            "symmetry": info.get("symmetry"),
            "base_m0": info.get("m0", 0.0),
            "basis": repr(flow.basis),
            "n_basis": flow.basis.n,
            "fourier_bins": info.get("fourier_bins"),
            "smooth_base": info.get("smooth_base"),
            "solver": lattice_solver_spec(solver),
            "layers": len(flow.reports),
            "n_collocation": info.get("n_collocation", settings["collocation"]),
            "n_samples": int(settings["n"]),
            "n_nonfinite": samples.n_nonfinite,
            "n_runaway": samples.n_runaway,
            "collocation_dropped": int(flow.reports[-1].dropped) if flow.reports else 0,
            "log_q_error_max": _log_q_check(flow, settings),
            "ess": float(samples.ess()),
            **weight_tail(samples.log_w),
            "target_ess": info.get("target_ess"),
            "hmc_seconds": hmc_s,
            "hmc_acceptance": info.get("hmc_acceptance"),
            "hmc_binder": info.get("binder"),
            "hmc_samples": hmc_kw["hmc_samples"] if hmc_s is not None else None,
            "candidates": info.get("attempts"),
            "solve_seconds": info["solve_seconds"],
            "sample_seconds": sample_seconds,
            "samples_per_second": settings["n"] / sample_seconds,
            "layer_residuals": residuals,
            "max_layer_residual": max(r["residual"] for r in residuals),
        }
    )
    return results


def run_lattice(args, data: dict, source: str) -> int:
    """``pikflow run`` for a lattice configuration: fit, save, sample, IMH, write ``results.json`` and plots."""
    import jax

    from .._version import __version__
    from ..diagnostics import imh_chain
    from ..lattice import flow_observables, flow_two_point, reweighted_observables

    for kind in ("scan", "multilevel"):
        if kind in data and args.n is not None:
            raise ConfigError(f"--n is not used by a [{kind}] run: set [{kind}] particles and replicas")
    code = _scan_or_multilevel(args, data, source)
    if code is not None:
        return code
    path, settings = build_lattice(data)
    if args.n is not None:
        if args.n < 1:
            raise ConfigError(f"--n must be >= 1, got {args.n}")
        from ._guards import check_resources

        check_resources(data, "--n", n=args.n)
        settings["n"] = args.n
    solver = lattice_solver(data)
    hmc_kw = lattice_hmc(data, settings)
    user_obs = lattice_observables(data, path)  # parsed before the (long) solve
    from ._output import RunOutput

    output = RunOutput(args.out)  # writes go to output.stage, moved into --out by commit()
    out = output.stage
    ckpt, default_ckpt = checkpoint_dir(args, output.out)
    progress = not args.quiet
    print(f"pikflow {__version__}: {source}")
    print(f"  lattice {list(path.lattice.shape)}, density {path.action.source}")
    if settings["base"] == "free":
        print(f"  S_t = {path.density}")
    else:
        print(f"  target S_1 = {path.at(1.0)}  (from a base matched to it: {settings['base']})")
    flow = fit_from_settings(path, settings, progress=progress, solver=solver, hmc=hmc_kw, checkpoint=ckpt)
    refinement = None
    if "refine" in data:
        flow, refinement = refine_lattice(flow, data, settings, solver, ckpt, progress)
    polished = None
    if settings.get("polish"):
        from ..refine import polish

        record = polish(flow, iterations=settings["polish"], seed=settings["seed"], progress=progress)
        flow, polished = record.flow, record.to_dict()
        kept = "kept" if record.kept else "not kept"
        print(
            f"  polished {record.iterations} steps in {record.seconds:.1f} s: ESS/N {record.ess_before:.3f} -> "
            f"{record.ess_after:.3f}, largest log q error {record.log_q_error_after:.2g} ({kept})"
        )
    info = flow.info
    print(f"  symmetry of the action (detected): {info.get('symmetry')}")
    hmc_s = info.get("hmc_seconds")
    print(
        f"  base {info.get('base')}"
        + (f" (m0 = {info['m0']:.4g})" if info.get("m0") else "")
        + (f" (HMC {hmc_s:.2f} s, acceptance {info.get('hmc_acceptance', float('nan')):.3f})" if hmc_s else "")
        + f"; solved {len(flow.reports)} layers in {info['solve_seconds']:.2f} s ({flow.basis!r}, "
        f"{flow.basis.n} terms)"
    )
    flow.save(out / "flow")
    smc_opts = smc_settings(data)
    if smc_opts is not None:
        code = _run_smc(flow, data, source, smc_opts, output, progress)
        drop_checkpoint(ckpt, default_ckpt)
        return code
    key_s, key_imh = jax.random.split(jax.random.PRNGKey(settings["sampling_seed"]))
    t0 = _time.perf_counter()
    # streamed: each batch is reduced to the weights, magnetisations and C(r) (no configurations kept)
    # streamed: each batch is reduced to the weights, magnetisations and C(r); configurations are kept only for
    # user [observables] (site densities), which need them
    samples = flow.sample(
        key_s, settings["n"], batch=settings["batch_size"], progress=progress, keep_fields=bool(user_obs)
    )
    sample_seconds = _time.perf_counter() - t0
    volume = path.lattice.volume
    obs, acceptance = flow_observables(samples, volume, key_imh)
    obs.update(observable_estimates(user_obs, samples, key_imh))
    two_point = flow_two_point(samples, key_imh, components=path.action.n)
    rew = reweighted_observables(samples, volume)
    results = _flow_results(flow, data, source, settings, solver, hmc_kw, samples, sample_seconds)
    results.update(observables={k: v.to_dict() for k, v in obs.items()}, imh_acceptance=float(acceptance))
    results["reweighted_observables"] = {k: v.to_dict() for k, v in rew.items()}
    if samples.has_controls:  # one-component fields, enough samples: the base draws' control variates
        results["controlled_observables"] = {
            k: samples.observable(k, controls=True).to_dict() for k in ("abs_m", "chi", "binder")
        }
    results["two_point"] = {
        "r": list(range(len(two_point))),
        "value": [g.value for g in two_point],
        "error": [g.error for g in two_point],
    }
    if refinement is not None:
        results["refinement"] = refinement
    if polished is not None:
        results["polish"] = polished
    results["warnings"] = reliability_warnings(
        results["ess"],
        results["target_ess"],
        len(samples.log_w),
        results["log_q_error_max"],
        results["pareto_khat"],
        results["largest_weight"],
    )
    chain = _imh_magnetisation(samples, key_imh, imh_chain, path.action.n) / volume
    results["plots"] = _plots(flow, samples, chain, out)
    results.update(run_info())
    (out / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))
    output.commit()
    drop_checkpoint(ckpt, default_ckpt)
    _summary(results, output.out)
    return 0


def _lattice_header(flow, data: dict, source: str) -> dict:
    """The first keys of a lattice run's ``results.json``, shared by the flow and the SMC branches."""
    from .._version import __version__
    from ..lattice import target_values

    path = flow.path
    return {
        "pikflow_version": __version__,
        "config_source": source,
        "config": data,
        "kind": "lattice",
        "lattice": list(path.lattice.shape),
        "volume": path.lattice.volume,
        "target": target_values(path),
        "base": flow.info.get("base"),
        "steps": flow.steps,
        "time_power": flow.info.get("time_power", 1.0),
        "flow": "flow",
    }


def _run_smc(flow, data: dict, source: str, smc_opts: dict, output, progress: bool) -> int:
    """``[sampling] method = "smc"`` on a lattice: SMC with PIK transport, abs_m / chi / binder per step time."""
    from ..lattice import magnetisation_moments, smc_observables
    from . import _smc

    out = output.stage
    volume = flow.path.lattice.volume
    result = _smc.run_smc(flow, smc_opts, magnetisation_moments(flow.path.action.n), progress=progress)
    derived = {
        "chi": lambda r, t: smc_observables(r, volume, t)["chi"],
        "binder": lambda r, t: smc_observables(r, volume, t)["binder"],
    }
    results = _lattice_header(flow, data, source)
    results.update(_smc.results_block(result, ["abs_m"], derived))
    results["warnings"] = _smc.warnings_of(result)
    results["plots"] = [_smc.plot(result, out)]
    results.update(run_info())
    (out / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))
    output.commit()
    out = output.out
    _smc.print_summary(result)
    for name, v in results["observables"].items():
        print(f"  {name} = {v['value']:.5f} +- {v['error']:.2g}  (SMC, {result.replicas} replicas)")
    print(f"  wrote {out / 'results.json'}, plot {results['plots'][0]}, flow in {out / 'flow'}")
    return 0
