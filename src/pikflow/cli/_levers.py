"""The shared TOML levers on lattice runs: ``[solver]``, ``[hmc]``, ``[refine]``, ``[observables]``; checkpoints.

* ``[solver] kind`` picks how each lattice layer's least squares is solved
  (:func:`pikflow.solvers.solve_system`: ``direct``, ``levenberg-marquardt``, ``adam``).
* ``[hmc]`` sets the reference HMC run of the matched base (trajectories ``n`` per chain,
  ``chains``, ``leapfrog_steps``, ``step_size`` or ``"auto"``, ``thermalisation``).
* ``[refine]`` runs the residual-driven basis enrichment (:func:`pikflow.refine.enrich_lattice`):
  ``tol`` on the largest relative layer residual, ``max_rounds`` families of the ladder tried.
* ``[observables]`` ``name = "site density"`` (the density grammar: ``phi``, ``shift(phi, mu)``,
  ``sum_mu``, ``d``) is averaged over the sites, :math:`O = \\frac1V\\sum_n o_n`, and measured
  along the IMH chain with a Gamma-method error.
* Checkpoints (:mod:`pikflow._checkpoint`): ``--checkpoint DIR``, or by default
  ``OUT/.pikflow-checkpoint``, removed once the run has committed its output.
"""

from __future__ import annotations

import pathlib
import shutil
from typing import Any

from .._errors import ConfigError, PikflowError

#: The default checkpoint directory inside ``--out`` (removed after a complete run).
CHECKPOINT = ".pikflow-checkpoint"
#: ``[hmc]`` keys of a lattice run -> the ``fit_lattice`` argument they set.
LATTICE_HMC = {"chains": "hmc_chains", "n": None, "step_size": "hmc_step", "leapfrog_steps": None}
LATTICE_HMC_KEYS = ("chains", "n", "step_size", "leapfrog_steps", "thermalisation", "jitter", "start")
#: ``[refine]`` keys of a lattice run.
LATTICE_REFINE_KEYS = ("tol", "max_rounds")


def checkpoint_dir(args, out) -> tuple[pathlib.Path, bool]:
    """The checkpoint directory of a run and whether it is the default one (removed after the run)."""
    given = getattr(args, "checkpoint", None)
    if given:
        return pathlib.Path(given), False
    return pathlib.Path(out) / CHECKPOINT, True


def drop_checkpoint(directory: pathlib.Path, default: bool) -> None:
    """Remove the default checkpoint directory once the run's output is complete."""
    if default:
        shutil.rmtree(directory, ignore_errors=True)


def lattice_solver(data: dict, where: str = "config"):
    """The layer solver of a lattice run's ``[solver]`` table (None: the direct SVD default)."""
    if "solver" not in data:
        return None
    from ..solvers import solver_from_config

    return solver_from_config(data["solver"], 1, lattice=True)


def lattice_solver_spec(solver) -> dict:
    """The ``results.json`` entry of a lattice layer solver: its kind and the options that apply to a lattice."""
    from ..solvers import LATTICE_OPTIONS

    if solver is None:
        return {"kind": "direct", "linear_solver": "SVD"}
    spec = solver.spec()
    return {k: v for k, v in spec.items() if k == "kind" or k in LATTICE_OPTIONS[solver.kind]}


def check_lattice_levers(data: dict, where: str = "config") -> None:
    """Raise :class:`ConfigError` for ``[solver]``, ``[hmc]``, ``[refine]`` keys a lattice run does not take."""
    if "solver" in data:
        try:
            lattice_solver(data)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
    for section, keys, hint in (
        ("hmc", LATTICE_HMC_KEYS, ""),
        ("refine", LATTICE_REFINE_KEYS, " (a lattice run refines by enriching the basis)"),
    ):
        extra = sorted(set(data.get(section, {})) - set(keys))
        if extra:
            takes = [f"[{section}] {k}" for k in keys]
            raise ConfigError(f"{where}: [{section}] {extra} not used by lattice runs{hint}; they take {takes}")
    if data.get("observables") and data.get("sampling", {}).get("method") == "smc":
        raise ConfigError(
            f"{where}: [observables] are measured on the flow + IMH run of a lattice; the lattice SMC run reports "
            "abs_m, chi and binder only: remove [observables] or [sampling] method = 'smc'"
        )
    h, lat = data.get("hmc", {}), data.get("lattice", {})
    for a, b in (("chains", "hmc_chains"), ("n", "hmc_samples")):
        if a in h and b in lat:
            raise ConfigError(f"{where}: give [hmc] {a} or [lattice] {b}, not both")
    step = h.get("step_size", "auto")  # not given: fit_lattice's default
    if (isinstance(step, str) and step != "auto") or (not isinstance(step, str) and not step > 0):
        raise ConfigError(f"{where}: [hmc] step_size must be a positive number or 'auto', got {step!r}")
    for key, low in (("chains", 1), ("n", 1), ("leapfrog_steps", 1), ("thermalisation", 0)):
        if key in h and h[key] < low:
            raise ConfigError(f"{where}: [hmc] {key} must be >= {low}, got {h[key]!r}")
    if "jitter" in h and not 0.0 <= h["jitter"] < 1.0:
        raise ConfigError(f"{where}: [hmc] jitter must be a fraction in [0, 1), got {h['jitter']!r}")
    if "start" in h and h["start"] not in ("hot", "ordered"):
        raise ConfigError(f"{where}: [hmc] start must be 'hot' or 'ordered', got {h['start']!r}")
    r = data.get("refine", {})
    if "tol" in r and not r["tol"] > 0:
        raise ConfigError(f"{where}: [refine] tol must be positive, got {r['tol']!r}")
    if r.get("max_rounds", 0) < 0:
        raise ConfigError(f"{where}: [refine] max_rounds must be >= 0, got {r['max_rounds']!r}")


def lattice_hmc(data: dict, settings: dict) -> dict[str, Any]:
    """``fit_lattice`` keyword arguments of the reference HMC run (``[hmc]`` over ``[lattice]`` hmc_*)."""
    h = data.get("hmc", {})
    chains = h.get("chains", settings["hmc_chains"])
    samples = chains * h["n"] if "n" in h else settings["hmc_samples"]
    if samples < chains:
        raise ConfigError(f"the reference HMC needs at least one trajectory per chain: {samples} for {chains} chains")
    return {"hmc_samples": samples, "hmc_chains": chains, **lattice_hmc_keywords(h)}


def lattice_hmc_keywords(h: dict) -> dict[str, Any]:
    """``hmc_step`` and ``hmc_options`` (keywords of :func:`pikflow.lattice.hmc`) from an ``[hmc]`` table.

    Shared by :func:`fit_lattice`'s reference run and the multilevel coarsest level; a key not given keeps the
    library's default (one source for the library and the CLI).
    """
    out: dict[str, Any] = {}
    if "step_size" in h:
        out["hmc_step"] = h["step_size"]
    extra: dict[str, Any] = {}
    if "leapfrog_steps" in h:
        extra["n_leapfrog"] = h["leapfrog_steps"]
    if "thermalisation" in h:
        extra["n_therm"] = h["thermalisation"]
    if h.get("jitter"):
        extra["jitter"] = float(h["jitter"])
    if "start" in h:
        extra["start"] = h["start"]
    if extra:
        out["hmc_options"] = extra
    return out


def lattice_observables(data: dict, path) -> dict:
    """``name -> f(fields) = (1/V) sum_n o_n`` (vmapped, jitted) for each ``[observables]`` site density."""
    import jax

    from ..lattice import site_density

    out = {}
    for name, text in data.get("observables", {}).items():
        if name in ("abs_m", "chi", "binder"):
            raise ConfigError(f"[observables] {name} is reported by every lattice run: choose another name")
        try:
            fn, _ = site_density(text, path.lattice.shape)
        except PikflowError as err:
            raise ConfigError(f"[observables] {name} = {err}") from None
        out[name] = jax.jit(jax.vmap(fn))
    return out


def observable_estimates(fns: dict, samples, key, batch: int = 1000) -> dict:
    """The user observables along the IMH chain (the same chain as :func:`flow_observables` with ``key``)."""
    import numpy as np

    from .._estimate import Estimate
    from ..diagnostics import gamma_method, imh_chain

    if not fns:
        return {}
    ok = samples.finite
    lw = np.where(ok, np.asarray(samples.log_w, dtype=float), -np.inf)
    res = imh_chain(key, lw)
    fields = np.where(ok.reshape((-1,) + (1,) * (samples.fields.ndim - 1)), samples.fields, 0.0)
    out = {}
    for name, fn in fns.items():
        vals = np.concatenate([np.asarray(fn(fields[i : i + batch])) for i in range(0, len(fields), batch)])
        chain = np.asarray(res.chain(vals))
        err = gamma_method(chain).error if np.ptp(chain) > 0 else 0.0
        out[name] = Estimate(float(chain.mean()), float(err))
    return out


def refine_lattice(flow, data: dict, settings: dict, solver, checkpoint, progress: bool):
    """``[refine]`` on a lattice run: :func:`enrich_lattice` with the HMC reference; the flow and a report."""
    from ..lattice import default_enrichments, enrich_lattice

    r = data["refine"]
    tol, rounds = float(r.get("tol", 1e-2)), int(r.get("max_rounds", 3))
    before = flow.residuals()
    report = {"tol": tol, "max_rounds": rounds, "max_residual_before": float(before.max())}
    report["mean_residual_before"] = float(before.mean())
    if rounds == 0:
        return flow, {**report, "steps": []}
    ladder = default_enrichments(flow)[:rounds]
    new, steps = enrich_lattice(
        flow,
        tol=tol,
        enrichments=ladder,
        reference=getattr(flow, "reference", None),
        **({} if settings["collocation"] is None else {"n_collocation": settings["collocation"]}),
        seed=settings["seed"],
        solver=solver,
        checkpoint=None if checkpoint is None else pathlib.Path(checkpoint) / "enrich",
        progress=progress,
    )
    if new is not flow:
        new.reference = getattr(flow, "reference", None)
        new.info = {**flow.info, **new.info, "solve_seconds": flow.info.get("solve_seconds")}
    after = new.residuals()
    report.update(
        max_residual_after=float(after.max()),
        mean_residual_after=float(after.mean()),
        kept=[s.family for s in steps if s.kept],
        steps=[{k: v for k, v in s.__dict__.items()} for s in steps],
    )
    return new, report


__all__ = [
    "CHECKPOINT",
    "check_lattice_levers",
    "checkpoint_dir",
    "drop_checkpoint",
    "lattice_hmc",
    "lattice_observables",
    "lattice_solver",
    "lattice_solver_spec",
    "observable_estimates",
    "refine_lattice",
]
