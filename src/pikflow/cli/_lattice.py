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
(``flow/``, read back with :meth:`pikflow.flow.LatticeFlow.load`).
"""

from __future__ import annotations

import inspect
import json
import time as _time
from typing import Any

from .._devices import run_info
from .._errors import ConfigError, PikflowError
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
    check_lattice_levers,
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

#: ``[lattice]`` keys that override the default basis (:func:`pikflow.lattice.default_basis`).
BASIS_KEYS = ("fourier", "scales", "powers", "tame", "magnetisation", "local_range", "local_degree")
#: Sections of the 0-D pipeline that a lattice configuration does not take, with what to use instead.
ZERO_D_SECTIONS = {
    "basis": "the basis overrides in [lattice] (fourier, scales, powers, tame, magnetisation, local_range, ...)",
    "collocation": "[lattice] collocation",
}
#: Keys of shared sections a lattice configuration takes.
LATTICE_KEYS = {
    "action": ("lattice", "density", "fields"),
    "flow": ("seed",),
    "sampling": ("n", "seed", "batch_size", "method"),
}
#: Default number of samples of a lattice run (``[sampling] n``).
DEFAULT_N = 10_000


def is_lattice(data: dict) -> bool:
    """Whether a configuration describes a lattice run (``[action] lattice`` given)."""
    return isinstance(data.get("action"), dict) and "lattice" in data["action"]


def check_lattice(data: dict, where: str = "config") -> None:
    """Raise :class:`ConfigError` for a lattice configuration that cannot run, or ``[lattice]`` in a 0-D one.

    Checks the shape (``check_shape``: 1..4 integer sizes, each at least 3), the sections and keys a lattice
    run takes, and the ranges of the ``[lattice]`` values. The density and couplings are
    checked when they are parsed (:func:`build_lattice`).
    """
    if not is_lattice(data):
        if "lattice" in data:
            raise ConfigError(
                f"{where}: [lattice] is only for lattice runs: add [action] lattice = [L, L] (and a site density), "
                "or remove the [lattice] section for a 0-D run"
            )
        return
    shape = data["action"]["lattice"]
    from ..lattice import check_shape

    try:
        check_shape(shape)  # the same rule as pikflow.lattice.Lattice
    except PikflowError as err:
        raise ConfigError(f"{where}: [action] lattice: {err}") from None
    for section, instead in ZERO_D_SECTIONS.items():
        if section in data:
            raise ConfigError(f"{where}: [{section}] is not used by lattice runs; use {instead}")
    for section, allowed in LATTICE_KEYS.items():
        for key in data.get(section, {}):
            if key not in allowed:
                hint = " (use [lattice] steps)" if (section, key) == ("flow", "steps") else ""
                raise ConfigError(
                    f"{where}: [{section}] {key} is not used by lattice runs{hint}; "
                    f"lattice runs take {[f'[{section}] {k}' for k in allowed]}"
                )
    method = data.get("sampling", {}).get("method", "auto")
    if method not in ("auto", "rk4", "smc"):
        raise ConfigError(
            f"{where}: [sampling] method of a lattice run is 'auto' (the flow + IMH) or 'smc', got {method!r}"
        )
    lat = data.get("lattice", {})
    from ..lattice import BASE_KINDS

    if "base" in lat and lat["base"] not in BASE_KINDS:
        raise ConfigError(f"{where}: [lattice] base must be one of {list(BASE_KINDS)}, got {lat['base']!r}")
    lows = (("steps", 1), ("collocation", 10), ("select", 10), ("hmc_samples", 1), ("hmc_chains", 1))
    lows += (("local_degree", 1),)
    for key, low in lows:
        if key in lat and lat[key] < low:
            raise ConfigError(f"{where}: [lattice] {key} must be >= {low}, got {lat[key]!r}")
    schedule = lat.get("schedule", "auto")
    if schedule not in ("auto", "uniform"):
        number = isinstance(schedule, int | float) and not isinstance(schedule, bool)
        if not number or not 1 <= schedule <= 4:
            raise ConfigError(
                f"{where}: [lattice] schedule must be 'auto', 'uniform' or a power p with 1 <= p <= 4 "
                f"(tau = t**p), got {schedule!r}"
            )
    if "tames" in lat:
        widths = lat["tames"]
        ok = all(isinstance(w, int | float) and not isinstance(w, bool) and 0 < w < float("inf") for w in widths)
        if not widths or not ok:
            raise ConfigError(f"{where}: [lattice] tames must be a list of positive widths, e.g. [5.0], got {widths!r}")
        if "basis" in lat and lat["basis"] != "default" or any(k in lat for k in BASIS_KEYS):
            raise ConfigError(f"{where}: [lattice] tames sets the widths of the default basis: drop the basis keys")
    for key, high, what in (("fourier_bins", None, "groups"), ("smooth_base", 8, "a degree")):
        value = lat.get(key, "auto")
        whole = isinstance(value, int) and not isinstance(value, bool)
        if value != "auto" and (not whole or value < 0 or (high is not None and value > high)):
            span = f"from 0 to {high}" if high else ">= 0"
            raise ConfigError(f"{where}: [lattice] {key} is 'auto' or {what} {span} (0: off), got {value!r}")
    if lat.get("smooth_base", 0) not in (0, "auto") and lat.get("base", "matched") == "free":
        raise ConfigError(f"{where}: [lattice] smooth_base smooths the matched base: drop it, or base = 'matched'")
    if lat.get("fourier_bins", 0) not in (0, "auto") and any(k in lat for k in BASIS_KEYS):
        raise ConfigError(f"{where}: [lattice] fourier_bins is for the default basis or a preset: drop the basis keys")
    if "local_range" in lat and lat["local_range"] < 0:
        raise ConfigError(f"{where}: [lattice] local_range must be >= 0, got {lat['local_range']!r}")
    if "local_range" in lat and 2 * lat["local_range"] >= min(shape):
        raise ConfigError(
            f"{where}: [lattice] local_range = {lat['local_range']} is too long for the lattice {shape}: "
            "use 2*local_range < L"
        )
    if "basis" in lat:
        from ..lattice import BASIS_PRESETS

        if lat["basis"] not in BASIS_PRESETS:
            raise ConfigError(f"{where}: [lattice] basis must be one of {list(BASIS_PRESETS)}, got {lat['basis']!r}")
        given = [k for k in BASIS_KEYS if k in lat]
        if given:
            raise ConfigError(
                f"{where}: [lattice] basis = {lat['basis']!r} is a preset; it cannot be combined with the basis "
                f"overrides {given}: give one or the other"
            )
    if "tame" in lat and not lat["tame"] > 0:
        raise ConfigError(f"{where}: [lattice] tame must be positive, got {lat['tame']!r}")
    if "hmc_samples" in lat and lat["hmc_samples"] < lat.get("hmc_chains", 8):
        raise ConfigError(f"{where}: [lattice] hmc_samples must be at least hmc_chains, got {lat['hmc_samples']}")
    for key, low, kind in (("scales", 0, (int, float)), ("powers", 2, (int,)), ("magnetisation", 1, (int,))):
        if key in lat:
            vals = lat[key]
            good = all(isinstance(v, kind) and not isinstance(v, bool) and v >= low for v in vals)
            if not good:
                what = "numbers" if kind == (int, float) else "integers"
                raise ConfigError(f"{where}: [lattice] {key} must be a list of {what} >= {low}, got {vals!r}")
    empty = (
        not lat.get("fourier", True)
        and not lat.get("magnetisation")
        and (lat.get("scales") == [] or lat.get("powers") == [])
        and "local_range" not in lat
    )
    if empty:
        raise ConfigError(
            f"{where}: the [lattice] basis overrides leave no basis terms: keep fourier = true, or give "
            "magnetisation, scales and powers, or local_range"
        )
    smp = data.get("sampling", {})
    for key in ("n", "batch_size"):
        if key in smp and smp[key] < 1:
            raise ConfigError(f"{where}: [sampling] {key} must be >= 1, got {smp[key]!r}")
    check_lattice_levers(data, where)


def lattice_settings(data: dict) -> dict[str, Any]:
    """The ``[lattice]``, ``[flow]`` and ``[sampling]`` settings of a lattice configuration, with defaults.

    ``steps``, ``collocation``, ``hmc_samples`` and ``hmc_chains`` default to those of
    :func:`pikflow.lattice.fit_lattice`; ``basis`` holds only the overrides given.
    """
    from ..lattice import fit_lattice

    defaults = {k: p.default for k, p in inspect.signature(fit_lattice).parameters.items()}
    lat = data.get("lattice", {})
    smp = data.get("sampling", {})
    return {
        "base": lat.get("base", "matched"),
        "steps": lat.get("steps", defaults["steps"]),
        "schedule": lat.get("schedule", defaults["schedule"]),
        "collocation": lat.get("collocation", defaults["n_collocation"]),
        "select": lat.get("select", defaults["select"]),
        "tames": lat.get("tames"),
        "fourier_bins": lat.get("fourier_bins", defaults["fourier_bins"]) or None,
        "smooth_base": lat.get("smooth_base", defaults["smooth_base"]) or None,
        "hmc_samples": lat.get("hmc_samples", defaults["hmc_samples"]),
        "hmc_chains": lat.get("hmc_chains", defaults["hmc_chains"]),
        "seed": data.get("flow", {}).get("seed", 0),
        "basis": {k: lat[k] for k in BASIS_KEYS if k in lat},
        "basis_preset": lat.get("basis", "default"),
        "n": smp.get("n", DEFAULT_N),
        "sampling_seed": smp.get("seed", 0),
        "batch_size": smp.get("batch_size", 1000),
    }


def build_lattice(data: dict):
    """The :class:`~pikflow.action.LatticePath` of a validated lattice configuration, and its settings.

    Raises
    ------
    ConfigError
        A density that does not parse, couplings missing or unknown, a target that is not
        numeric at ``t = 1`` (matched base), or a start that is not Gaussian (free base).
    """
    from ..lattice import GaussianLatticeBase, LatticeAction, LatticePath, check_bounded_below, target_values

    check_lattice(data)
    settings = lattice_settings(data)
    try:
        action = LatticeAction(data["action"]["density"], data["action"]["lattice"], data["action"].get("fields"))
    except PikflowError as err:
        raise ConfigError(f"[action] density: {err}") from None
    try:
        path = LatticePath(action, dict(data.get("path", {})))
    except PikflowError as err:
        raise ConfigError(f"[path]: {err}") from None
    try:
        check_bounded_below(path, None if settings["base"] == "free" else [1.0])
    except PikflowError as err:
        raise ConfigError(f"[path]: {err}") from None
    if settings["base"] == "free":
        try:
            GaussianLatticeBase.from_path(path)
        except PikflowError as err:
            raise ConfigError(f"[lattice] base = 'free' needs a Gaussian start of the [path]: {err}") from None
    else:
        try:
            target_values(path)
        except PikflowError as err:
            raise ConfigError(f"[path]: with a matched base the values at t = 1 are the target: {err}") from None
    return path, settings


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
    results["two_point"] = {
        "r": list(range(len(two_point))),
        "value": [g.value for g in two_point],
        "error": [g.error for g in two_point],
    }
    if refinement is not None:
        results["refinement"] = refinement
    results["warnings"] = reliability_warnings(
        results["ess"], results["target_ess"], len(samples.log_w), results["log_q_error_max"]
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
