"""``[multilevel]`` in a lattice ``pikflow run``: from a small lattice up to the ``[action]`` lattice."""

from __future__ import annotations

import json
import math
from typing import Any

from .._checks import positive_number
from .._errors import ConfigError, PikflowError
from ._levers import lattice_hmc_keywords
from ._scan import check_particle_memory
from ._smc import fourier_mass_setting

#: Default ``[multilevel] hole_check``: HMC configurations per level for the hole check of its proposal.
HOLE_CHECK = 1000

#: ``[multilevel]`` key -> (types, description); merged into the TOML schema.
MULTILEVEL_SCHEMA: dict[str, tuple[tuple[type, ...], str]] = {
    "coarsest": (
        (int,),
        "linear size of the coarsest lattice (HMC); sizes double up to the [action] lattice",
    ),
    "sigma": ((int, float, str), "noise width of every level, or 'free' (the free-field block width); default 'free'"),
    "noise": (
        (str,),
        "'conditional' (Gaussian conditional, default), 'fourier' (low momenta from the coarse field, high ones "
        "from the Gaussian) or 'white' (zero-block-sum white noise)",
    ),
    "mass2": ((int, float, str), "m_f^2 of the conditional noise's K = khat^2 + m_f^2, or 'auto'; default 'auto'"),
    "scale": ((int, float, str), "field scale a (block mean = a * coarse field), or 'auto'; default 'auto'"),
    "particles": ((int,), "SMC particles per replica at every level; default 1000"),
    "replicas": ((int,), "independent hierarchies giving the errors; default 4"),
    "steps": ((int,), "SMC steps per level from the upsampled base to the fine target; default 20"),
    "mcmc": ((str,), "'hmc', 'fhmc' (Fourier-accelerated HMC) or 'mala' moves; default 'hmc'"),
    "fourier_mass": ((int, float, str), "fhmc: mu^2 of the mass k^2 + mu^2 (positive) or 'adaptive'; default 1"),
    "mcmc_steps": ((int,), "MCMC moves per step; default 2"),
    "transport": ((str,), "'none' (annealed SMC, default) or 'pik' (a PIK flow per level as the SMC transport)"),
    "collocation": ((int,), "collocation configurations of each level's PIK flow (transport = 'pik'); default 1000"),
    "hole_check": (
        (int,),
        "HMC configurations per level for the hole check of the level's proposal (levels[i].target_ess); 0: none; "
        "default 1000",
    ),
    "seed": ((int,), "seed; default [sampling] seed"),
}


def multilevel_settings(data: dict) -> dict[str, Any] | None:
    """The validated ``[multilevel]`` settings (with the ``sizes``), or ``None`` without the section."""
    if "multilevel" not in data:
        return None
    shape = data.get("action", {}).get("lattice")
    if shape is None:
        raise ConfigError("[multilevel] is for lattice runs (give [action] lattice)")
    if len(set(shape)) != 1:
        raise ConfigError(f"[multilevel] needs a hypercubic lattice (all sizes equal), got {shape}")
    s = dict(data["multilevel"])
    L, L0 = int(shape[0]), s.get("coarsest", 4)
    if not 3 <= L0 < L:  # before the doubling loop: 0 or a negative size would never reach L
        raise ConfigError(f"[multilevel] coarsest = {L0} must be at least 3 and below the lattice size {L}")
    sizes = [L0]
    while sizes[-1] < L:
        sizes.append(2 * sizes[-1])
    if sizes[-1] != L or len(sizes) < 2:
        raise ConfigError(
            f"[multilevel] coarsest = {L0} must be the lattice size {L} halved one or more times (e.g. {L // 2})"
        )
    sigma = s.get("sigma", "free")
    if isinstance(sigma, str) and sigma != "free" or not isinstance(sigma, str) and not 0 < sigma < math.inf:
        raise ConfigError(f"[multilevel] sigma must be a positive finite number or 'free', got {sigma!r}")
    for key, default in (("mass2", "auto"), ("scale", "auto")):
        v = s.get(key, default)
        if v != "auto" and not positive_number(v):
            raise ConfigError(f"[multilevel] {key} must be a positive number or 'auto', got {v!r}")
    if s.get("noise", "conditional") not in ("white", "conditional", "fourier"):
        raise ConfigError(f"[multilevel] noise must be 'white', 'conditional' or 'fourier', got {s['noise']!r}")
    out = {
        "sizes": sizes,
        "sigma": sigma,
        "noise": s.get("noise", "conditional"),
        "mass2": s.get("mass2", "auto"),
        "scale": s.get("scale", "auto"),
        "particles": s.get("particles", 1000),
        "replicas": s.get("replicas", 4),
        "steps": s.get("steps", 20),
        "mcmc": s.get("mcmc", "hmc"),
        "mcmc_steps": s.get("mcmc_steps", 2),
        "fourier_mass": fourier_mass_setting("multilevel", s.get("fourier_mass"), s.get("mcmc", "hmc")),
        "transport": s.get("transport", "none"),
        "flow_options": {"n_collocation": s.get("collocation", 1000)},
        "hole_check": s.get("hole_check", HOLE_CHECK),
        "seed": s.get("seed", data.get("sampling", {}).get("seed", 0)),
    }
    if out["transport"] not in ("none", "pik"):
        raise ConfigError(
            f"[multilevel] transport must be 'none' or 'pik' (a PIK flow per level), got {out['transport']!r}"
        )
    if (
        not isinstance(out["flow_options"]["n_collocation"], int)
        or not 10 <= out["flow_options"]["n_collocation"] <= 10**6
    ):
        raise ConfigError(f"[multilevel] collocation must be an integer from 10 to 10^6, got {s.get('collocation')!r}")
    for key, low, high in (
        ("particles", 10, 10**6),
        ("replicas", 2, 10**3),
        ("steps", 1, 10**5),
        ("mcmc_steps", 0, 10**3),
        ("hole_check", 0, 10**6),
    ):
        if not low <= out[key] <= high:
            raise ConfigError(f"[multilevel] {key} must be from {low} to {high}, got {out[key]!r}")
    check_particle_memory("multilevel", out["particles"], out["replicas"], L ** len(shape))
    if out["mcmc"] not in ("hmc", "fhmc", "mala"):
        raise ConfigError(f"[multilevel] mcmc must be 'hmc', 'fhmc' or 'mala', got {out['mcmc']!r}")
    out.update(_coarsest_hmc(data))
    return out


def _coarsest_hmc(data: dict) -> dict[str, Any]:
    """``multilevel`` keywords of the coarsest level's HMC from ``[hmc]`` (checked with the other levers).

    Its length follows ``[multilevel] particles`` (per chain: particles / chains), so ``[hmc] n`` has no
    meaning here and is refused rather than ignored.
    """
    h = data.get("hmc", {})
    if "n" in h:
        raise ConfigError(
            "[hmc] n does not apply to a [multilevel] run: the coarsest level's HMC draws [multilevel] particles "
            "configurations per replica; remove n (chains, step_size, start, leapfrog_steps, thermalisation and "
            "jitter apply)"
        )
    out: dict[str, Any] = {"hmc_chains": h["chains"]} if "chains" in h else {}
    return {**out, **lattice_hmc_keywords(h)}


def run_multilevel(data: dict, source: str, settings: dict, output, *, progress: bool) -> int:
    """Sample the target level by level, write ``results.json`` (with ``levels``) into ``output``."""
    from .._version import __version__
    from ..lattice import LatticeAction, LatticePath, check_bounded_below, multilevel, target_values

    density = data["action"]["density"]
    try:
        path = LatticePath(LatticeAction(density, data["action"]["lattice"]), dict(data["path"]))
        values = target_values(path)
        check_bounded_below(LatticePath(path.action, values), [1.0])
    except PikflowError as err:
        raise ConfigError(f"[path]: the values at t = 1 are the multilevel target: {err}") from None
    if path.action.n > 1:
        raise ConfigError("[multilevel] is for single-component lattice fields so far; remove it for an O(N) run")
    d = path.lattice.d
    target = lambda L: LatticePath(LatticeAction(density, [L] * d), values)  # noqa: E731
    print(f"pikflow {__version__}: {source}")
    print(f"  multilevel sizes {settings['sizes']}, target {values}")
    levels = multilevel(target, progress=progress, **settings)
    final = levels[-1]
    results = {
        "pikflow_version": __version__,
        "config_source": source,
        "config": data,
        "kind": "lattice-multilevel",
        "lattice": list(path.lattice.shape),
        "volume": path.lattice.volume,
        "density": str(path.action.source),
        "target": values,
        "sampler": "multilevel",
        "ess": final.ess,
        "log_z_ratio": final.log_z.to_dict(),
        "observables": {k: v.to_dict() for k, v in final.observables.items()},
        "levels": [lev.summary() for lev in levels],
        "warnings": [
            f"level {lev.L}: the SMC ESS/N fell to {lev.min_ess:.2g}; use more steps or particles"
            for lev in levels[1:]
            if lev.min_ess < 0.01
        ],
    }
    (output.stage / "results.json").write_text(json.dumps(results, indent=2, default=float))
    output.commit()
    for lev in levels:
        obs = ", ".join(f"{k} {v}" for k, v in lev.observables.items())
        base = "" if lev.base_ess is None else f", base alone {lev.base_ess:.3g}"
        if lev.base is not None:
            base += (
                f" (Var log w {lev.base['var']:.3g}: {lev.base['within']:.3g} noise + {lev.base['between']:.3g} coarse)"
            )
        if lev.flow is not None:
            f = lev.flow["flow"]
            base += (
                f"; flowed lift {f['ess']:.3g} (Var log w {f['var']:.3g}), flow solved in {lev.flow['seconds']:.1f} s"
            )
        if lev.imh_acceptance is not None:
            base += f"; proposal's IMH acceptance {lev.imh_acceptance:.3g}"
        if lev.target_ess is not None:
            base += f", ESS/N from HMC (hole check) {lev.target_ess:.3g}"
        print(f"  L = {lev.L}: ESS/N {lev.ess:.3f} (lowest {lev.min_ess:.3f}{base}), {lev.seconds:.1f} s; {obs}")
    print(f"  wrote {output.out / 'results.json'}")
    return 0
