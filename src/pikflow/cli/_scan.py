"""``[scan]`` in a lattice ``pikflow run``: one SMC run per size along the ``[path]``, Binder crossings, plots."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from .._errors import ConfigError, PikflowError
from .._memory import available_memory
from ._smc import fourier_mass_setting

#: ``[scan]`` key -> (types, description); merged into the TOML schema.
SCAN_SCHEMA: dict[str, tuple[tuple[type, ...], str]] = {
    "points": ((int,), "scan points, evenly spaced in t_range; default 31"),
    "sizes": ((list,), "linear lattice sizes L, e.g. [8, 16, 32]; default the [action] lattice alone"),
    "t_range": ((list,), "[t_lo, t_hi]: the physical segment of the [path] to report; default [0, 1]"),
    "steps": (
        (int, list),
        "annealing steps over t_range, or one step count per gap between consecutive points (points - 1 of "
        "them: finer steps where the particles need them); default 4 * (points - 1)",
    ),
    "prep_steps": ((int,), "annealing steps over the preparatory segment [0, t_lo]; default steps // 2"),
    "particles": ((int,), "SMC particles per replica; default 2000"),
    "replicas": ((int,), "independent replicas giving the errors; default 4"),
    "mcmc": (
        (str,),
        "'hmc', 'fhmc' (HMC with the Fourier-accelerated mass k^2 + mu^2), 'hmc+cluster' (each HMC trajectory "
        "followed by a Swendsen-Wang sweep of the signs; phi^4-like actions) or 'mala' (BlackJAX) moves after "
        "each step; default 'hmc'",
    ),
    "fourier_mass": ((int, float, str), "fhmc: mu^2 of the mass k^2 + mu^2 (positive) or 'adaptive'; default 1"),
    "mcmc_steps": ((int,), "MCMC moves per annealing step; default 2"),
    "mcmc_every": ((int,), "resample and move only at every n-th step (the others reweight); default 1"),
    "leapfrog_steps": ((int,), "hmc: leapfrog steps per move; default 10"),
    "estimate": (
        (str,),
        "'moves', 'after' or 'before': each point's means averaged over the configurations after each of its "
        "step's moves (smaller errors where the moves decorrelate), after the moves, or before the resampling and "
        "moves; default 'moves'",
    ),
    "pool": (
        (bool,),
        "each point's means also take in the configurations of the steps around it (each step's towards its "
        "nearest point), reweighted to it (importance tempering); default true (false with estimate = 'before')",
    ),
    "transport": (
        (str,),
        "'none' (plain annealing) or 'pik' (a PIK flow solved along the path transports "
        "the particles at every step; uniform step times); default 'none'",
    ),
    "flow_basis": (
        (dict,),
        "with transport = 'pik': lattice_basis keywords of the flow's basis, e.g. "
        "{scales = [], local_range = false}; default its default basis",
    ),
    "flow_collocation": ((int,), "with transport = 'pik': collocation configurations per layer; default 500"),
    "seed": ((int,), "seed; default [sampling] seed"),
}


#: ``[scan] flow_basis`` keys (keywords of ``pikflow.lattice.lattice_basis``).
FLOW_BASIS_KEYS = frozenset(
    {"fourier", "magnetisation", "scales", "powers", "tame", "local_range", "local_degree", "max_sites"}
)


def scan_settings(data: dict) -> dict[str, Any] | None:
    """The validated ``[scan]`` settings, or ``None`` without a ``[scan]`` section."""
    if "scan" not in data:
        return None
    from ..samplers import pool_by_default

    if "lattice" not in data.get("action", {}):
        raise ConfigError("[scan] is for lattice runs (give [action] lattice); a 0-D scan is `pikflow bench scan`")
    s = dict(data["scan"])
    out = {
        "points": s.get("points", 31),
        "sizes": s.get("sizes"),
        "t_range": tuple(s.get("t_range", (0.0, 1.0))),
        "steps": s.get("steps"),
        "prep_steps": s.get("prep_steps"),
        "particles": s.get("particles", 2000),
        "replicas": s.get("replicas", 4),
        "mcmc": s.get("mcmc", "hmc"),
        "mcmc_steps": s.get("mcmc_steps", 2),
        "mcmc_every": s.get("mcmc_every", 1),
        "leapfrog_steps": s.get("leapfrog_steps", 10),
        "estimate": s.get("estimate", "moves"),
        "pool": s.get("pool", pool_by_default(s.get("estimate", "moves"))),
        "fourier_mass": fourier_mass_setting("scan", s.get("fourier_mass"), s.get("mcmc", "hmc")),
        "transport": s.get("transport", "none"),
        "flow_basis": s.get("flow_basis"),
        "flow_collocation": s.get("flow_collocation", 500),
        "seed": s.get("seed", data.get("sampling", {}).get("seed", 0)),
    }
    for key, low, high in (
        ("points", 2, 10**4),
        ("particles", 2, 10**6),
        ("replicas", 2, 10**3),
        ("mcmc_steps", 0, 10**3),
        ("mcmc_every", 1, 10**6),
        ("leapfrog_steps", 1, 10**4),
        ("flow_collocation", 10, 10**6),
    ):
        if not low <= out[key] <= high:
            raise ConfigError(f"[scan] {key} must be from {low} to {high}, got {out[key]!r}")
    if isinstance(out["steps"], list):
        ok = all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= 10**6 for k in out["steps"])
        if not ok or len(out["steps"]) != out["points"] - 1:
            raise ConfigError(
                f"[scan] steps must be a number or {out['points'] - 1} step counts from 1 to 10**6 (one per gap "
                f"between the {out['points']} points), got {out['steps']!r}"
            )
    for key in ("steps", "prep_steps"):
        if out[key] is not None and not isinstance(out[key], list) and not 1 <= out[key] <= 10**6:
            raise ConfigError(f"[scan] {key} must be from 1 to 10**6, got {out[key]!r}")
    lo_hi = out["t_range"]
    if len(lo_hi) != 2 or not all(isinstance(x, (int, float)) for x in lo_hi) or not 0 <= lo_hi[0] < lo_hi[1] <= 1:
        raise ConfigError(f"[scan] t_range must be [t_lo, t_hi] with 0 <= t_lo < t_hi <= 1, got {list(lo_hi)!r}")
    if out["sizes"] is not None:
        sizes = out["sizes"]
        if not sizes or not all(isinstance(L, int) and not isinstance(L, bool) and 3 <= L <= 256 for L in sizes):
            raise ConfigError(f"[scan] sizes must be a list of integers from 3 to 256, got {sizes!r}")
        if sorted(sizes) != list(sizes) or len(set(sizes)) != len(sizes):
            raise ConfigError(f"[scan] sizes must increase, got {sizes!r}")
    if out["mcmc"] not in ("hmc", "fhmc", "mala", "hmc+cluster"):
        raise ConfigError(f"[scan] mcmc must be 'hmc', 'fhmc', 'hmc+cluster' or 'mala', got {out['mcmc']!r}")
    if out["transport"] not in ("none", "pik"):
        raise ConfigError(f"[scan] transport must be 'none' or 'pik', got {out['transport']!r}")
    from ..samplers import ESTIMATES

    if out["estimate"] not in ESTIMATES:
        raise ConfigError(f"[scan] estimate must be one of {list(ESTIMATES)}, got {out['estimate']!r}")
    if out["pool"] and out["estimate"] == "before":
        raise ConfigError(
            "[scan] pool combines the configurations after the moves: use estimate = 'moves' or 'after', or "
            "pool = false"
        )
    given = sorted(k for k in ("flow_basis", "flow_collocation") if k in s)
    if given and out["transport"] != "pik":
        raise ConfigError(f"[scan] {', '.join(given)} set the flow of transport = 'pik'; transport is 'none'")
    if out["flow_basis"] is not None:
        fb = dict(out["flow_basis"])
        if fb.get("local_range") is False:  # TOML has no null: false means no local terms
            fb["local_range"] = None
        unknown = sorted(set(fb) - FLOW_BASIS_KEYS)
        if unknown:
            raise ConfigError(f"[scan] flow_basis has unknown keys {unknown}; known: {sorted(FLOW_BASIS_KEYS)}")
        _check_flow_basis(fb, data["action"]["lattice"])
        out["flow_basis"] = fb
    volume = max(out["sizes"] or [max(data["action"]["lattice"])]) ** len(data["action"]["lattice"])
    check_particle_memory("scan", out["particles"], out["replicas"], volume)
    return out


def _check_flow_basis(options: dict, shape) -> None:
    """Build ``[scan] flow_basis`` once on the ``[action]`` lattice: a bad value is a ConfigError, no traceback."""
    from ..lattice import Lattice, lattice_basis

    try:
        lattice_basis(Lattice(tuple(shape)), **options)
    except Exception as err:  # noqa: BLE001  (any bad value: wrong type, negative scale, ...)
        raise ConfigError(
            f"[scan] flow_basis {options!r} does not make a basis ({type(err).__name__}: {err}); give "
            "lattice_basis values: lists of numbers for scales, powers and magnetisation, a number for tame"
        ) from None


def check_particle_memory(section: str, particles: int, replicas: int, sites: int) -> None:
    """Refuse an SMC-based run whose particles (with their moves and records, ~20 copies) exceed the memory."""
    need = 8.0 * 20 * particles * replicas * sites
    if need > available_memory():
        raise ConfigError(
            f"[{section}] {particles} particles x {replicas} replicas of {sites} sites need about "
            f"{need / 2**30:.3g} GiB, more than the memory available: use fewer particles or replicas"
        )


def run_scan(data: dict, source: str, settings: dict, output, *, progress: bool) -> int:
    """Build the path, scan it at every size, write ``results.json`` and the plots into ``output``."""
    from .._version import __version__
    from ..lattice import (
        GaussianLatticeBase,
        LatticeAction,
        LatticePath,
        check_bounded_below,
        scan_lattice,
        scan_observables,
    )

    try:
        action = LatticeAction(data["action"]["density"], data["action"]["lattice"], data["action"].get("fields"))
        path = LatticePath(action, dict(data["path"]))
        check_bounded_below(path)
    except PikflowError as err:
        raise ConfigError(f"[path]: {err}") from None
    try:
        GaussianLatticeBase.from_path(path)
    except PikflowError as err:
        raise ConfigError(f"[scan] samples the [path] from t = 0, which must be a Gaussian: {err}") from None
    if path.action.n > 1:
        raise ConfigError("[scan] is for single-component lattice fields so far; remove [scan] for an O(N) run")
    observables = dict(data.get("observables", {}))
    try:
        scan_observables(observables, path.lattice.shape)  # before any sampling
    except PikflowError as err:
        raise ConfigError(f"[observables]: {err}") from None
    print(f"pikflow {__version__}: {source}")
    print(f"  scan of S_t = {path.density}")
    sizes = settings["sizes"] or [path.lattice.shape[0]]
    print(f"  sizes {sizes}, {settings['points']} points in t {settings['t_range']}")
    scan = scan_lattice(path, progress=progress, observables=observables, **settings)
    out = output.stage
    results = {
        "pikflow_version": __version__,
        "config_source": source,
        "config": data,
        "kind": "lattice-scan",
        "density": str(path.action.source),
        "couplings": {str(k): str(v) for k, v in path.coupling_exprs.items()},
        **scan.summary(),
    }
    results["warnings"] = _warnings(scan)
    results["plots"] = plot_scan(scan, out)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    output.commit()
    for size, sec in scan.seconds.items():
        print(f"  {size}: {len(scan.points[size])} points in {sec:.1f} s")
    for c in scan.crossings:
        pretty = ", ".join(f"{k} = {v['value']:.4f} +- {v['error']:.2g}" for k, v in c["couplings"].items())
        print(f"  Binder crossing {c['sizes'][0]} / {c['sizes'][1]}: {pretty}")
    print(f"  wrote {output.out / 'results.json'} and {len(results['plots'])} plots")
    return 0


def _warnings(scan) -> list[str]:
    from scipy.stats import t as student_t

    from ._smc import warnings_of

    out = []
    for size, result in scan.runs.items():
        out += [f"{size}: {w}" for w in warnings_of(result)]
        # log Z gained (unbiased for any moves) against -int <dS/dt> dt (right only where the particles follow p_t)
        pull, replicas = scan.free_energy_check(size)["pull"], result.settings["replicas"]
        limit = float(student_t.ppf(0.995, replicas - 1)) if replicas > 1 else np.inf
        if np.isfinite(pull) and abs(pull) > limit:
            out.append(
                f"{size}: the log Z gained over the scan and -int <dS/dt> dt differ by {pull:+.1f} sigma (beyond "
                f"the 99 % range {limit:.2g} of {replicas} replicas): the particles do not follow p_t, e.g. they "
                "lag behind an ordering transition; use more steps, more or longer moves, or mcmc = 'fhmc'"
            )
            print(f"  warning: {out[-1]}")
    if len(scan.points) > 1 and not scan.crossings:
        out.append("the Binder cumulants of the sizes do not cross inside t_range: no critical coupling found there")
    return out


def scan_variable(scan) -> str:
    """The coupling that changes most along the scan (the x axis of the plots)."""
    rows = next(iter(scan.points.values()))
    spread = {k: abs(rows[-1]["couplings"][k] - rows[0]["couplings"][k]) for k in rows[0]["couplings"]}
    return max(spread, key=spread.get)


def plot_scan(scan, out) -> list[str]:
    """``scan_binder.png`` (U per size, error bands), ``scan_collapse.png`` (χ/L^{7/4} against (g − g_c) L) and
    ``scan_log_z.png`` (log Z per site); the collapse uses the 2-D Ising exponents γ/ν = 7/4, ν = 1 and the last
    crossing (that of the largest sizes, the nearest to the infinite-volume coupling: corrections to scaling move
    the crossings of small lattices)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    var = scan_variable(scan)
    files = []
    last = scan.crossings[-1] if scan.crossings else None
    crossing = last["couplings"][var]["value"] if last else None
    for name, ylabel, fname in (
        ("binder", "Binder cumulant U", "scan_binder.png"),
        ("log_z", "log Z / V (per site)", "scan_log_z.png"),
    ):
        fig, ax = plt.subplots(figsize=(6, 4))
        for size, rows in scan.points.items():
            x = np.array([r["couplings"][var] for r in rows])
            v, e = scan.series(size, name)
            if name == "log_z":  # per site, so that the sizes share the axis
                sites = math.prod(int(n) for n in size.split("x"))
                v, e = v / sites, e / sites
            ax.plot(x, v, label=size)
            ax.fill_between(x, v - e, v + e, alpha=0.3)
        if crossing is not None and name == "binder":
            pair = " / ".join(last["sizes"])
            ax.axvline(crossing, color="k", ls=":", label=f"crossing {pair}: {var} = {crossing:.3f}")
        ax.set_xlabel(var)
        ax.set_ylabel(ylabel)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / fname, dpi=120)
        plt.close(fig)
        files.append(fname)
    if crossing is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        for size, rows in scan.points.items():
            L = int(size.split("x")[0])
            x = (np.array([r["couplings"][var] for r in rows]) - crossing) * L
            v, e = scan.series(size, "chi")
            ax.errorbar(x, v / L**1.75, e / L**1.75, fmt=".", label=size)
        ax.set_xlabel(f"({var} - {var}_c) L")
        ax.set_ylabel("chi / L^(7/4)")
        ax.set_title("finite-size collapse, 2-D Ising exponents")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "scan_collapse.png", dpi=120)
        plt.close(fig)
        files.append("scan_collapse.png")
    return files
