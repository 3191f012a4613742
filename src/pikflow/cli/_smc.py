"""``[sampling] method = "smc"`` in ``pikflow run``: the ``[smc]`` settings, the run, its results block and plot."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import ConfigError, PikflowError, SamplingError

#: ``[smc]`` key -> (types, description); merged into the TOML schema.
SMC_SCHEMA: dict[str, tuple[tuple[type, ...], str]] = {
    "particles": ((int,), "particles per replica; default 1000"),
    "replicas": ((int,), "independent runs giving the errors; default 4"),
    "transport": (
        (str,),
        "'pik' (the flow's RK4 maps), 'none' (plain annealed SMC) or 'langevin' (App. C); on lattices the "
        "transport's cost is set by [lattice] basis ('two-point' | 'magnetisation' | 'short' | 'lean' | 'default')",
    ),
    "mcmc": (
        (str,),
        "rejuvenation kernel: 'mala', 'hmc' or, on lattices, 'fhmc' (HMC with the Fourier-accelerated mass "
        "k^2 + mu^2; BlackJAX) or 'hmc+cluster' (each HMC trajectory followed by a Swendsen-Wang sweep of the signs; "
        "phi^4-like actions); default 'mala'",
    ),
    "fourier_mass": ((int, float, str), "fhmc: mu^2 of the mass k^2 + mu^2 (positive) or 'adaptive'; default 1"),
    "mcmc_steps": ((int,), "MCMC moves per annealing step; default 2"),
    "mcmc_every": ((int,), "resample and move only at every n-th step (the others reweight); default 1"),
    "step_size": ((int, float), "initial MCMC step size (adapted per step); default 0.2 size^(-1/3)"),
    "leapfrog_steps": ((int,), "hmc: leapfrog steps per trajectory; default 10"),
    "resample": ((int, float), "resample when the ESS/N falls below this fraction; default 0.5"),
    "logdet": (
        (str,),
        "'exact' or 'continuous' log-Jacobian of the transport; default exact (0-D), continuous (lattice)",
    ),
    "precision": (
        (str,),
        "'float64' or 'float32': a lattice transport's velocity evaluations (continuous logdet); default float64",
    ),
    "estimate": (
        (str,),
        "'after', 'before' or 'moves': each step's means after its resampling and moves, before them (from the "
        "transported, weighted particles: smaller errors where the moves mix slowly), or averaged over the "
        "configurations after each move (smaller errors where the moves decorrelate); default 'after'",
    ),
    "seed": ((int,), "seed of the particles and moves; default [sampling] seed"),
}


def smc_settings(data: dict) -> dict[str, Any] | None:
    """The SMC settings of a validated configuration, or ``None`` unless ``[sampling] method = "smc"``."""
    method = data.get("sampling", {}).get("method")
    if method != "smc":
        if "smc" in data:
            raise ConfigError('[smc] is given but [sampling] method is not "smc": add method = "smc" to [sampling]')
        return None
    s = dict(data.get("smc", {}))
    out = {
        "n": s.get("particles", 1000),
        "replicas": s.get("replicas", 4),
        "transport": s.get("transport", "pik"),
        "mcmc": s.get("mcmc", "mala"),
        "mcmc_steps": s.get("mcmc_steps", 2),
        "mcmc_every": s.get("mcmc_every", 1),
        "step_size": s.get("step_size"),
        "leapfrog_steps": s.get("leapfrog_steps", 10),
        "fourier_mass": fourier_mass_setting("smc", s.get("fourier_mass"), s.get("mcmc", "mala")),
        "resample": float(s.get("resample", 0.5)),
        "logdet": s.get("logdet"),
        "precision": s.get("precision", "float64"),
        "estimate": s.get("estimate", "after"),
        "seed": s.get("seed", data.get("sampling", {}).get("seed", 0)),
    }
    if out["precision"] not in ("float64", "float32"):
        raise ConfigError(f"[smc] precision must be 'float64' or 'float32', got {out['precision']!r}")
    from ..samplers import ESTIMATES

    if out["estimate"] not in ESTIMATES:
        raise ConfigError(f"[smc] estimate must be one of {list(ESTIMATES)}, got {out['estimate']!r}")
    for key, low in (("n", 2), ("replicas", 2), ("mcmc_steps", 0), ("mcmc_every", 1), ("leapfrog_steps", 1)):
        if out[key] < low:
            name = "particles" if key == "n" else key
            raise ConfigError(f"[smc] {name} must be >= {low}, got {out[key]!r}")
    _check_choices(out)
    if out["mcmc"] == "fhmc" and "lattice" not in data.get("action", {}):
        raise ConfigError("[smc] mcmc = 'fhmc' (Fourier-accelerated HMC) is for lattice runs: use 'mala' or 'hmc'")
    if out["mcmc"] == "hmc+cluster" and "lattice" not in data.get("action", {}):
        raise ConfigError("[smc] mcmc = 'hmc+cluster' (cluster moves of the signs) is for lattice runs: use 'hmc'")
    return out


def _check_choices(out: dict) -> None:
    """The ``[smc]`` choices and numbers that :func:`pikflow.samplers.smc` would refuse only after the solve."""
    from ..samplers import TARGET_ACCEPTANCE, TRANSPORTS

    if out["transport"] not in TRANSPORTS:
        raise ConfigError(f"[smc] transport must be one of {list(TRANSPORTS)}, got {out['transport']!r}")
    if out["mcmc"] not in TARGET_ACCEPTANCE:
        raise ConfigError(f"[smc] mcmc must be one of {list(TARGET_ACCEPTANCE)}, got {out['mcmc']!r}")
    if out["logdet"] not in (None, "exact", "continuous"):
        raise ConfigError(f"[smc] logdet must be 'exact' or 'continuous', got {out['logdet']!r}")
    if not 0.0 <= out["resample"] <= 1.0:
        raise ConfigError(f"[smc] resample must be a fraction from 0 to 1, got {out['resample']!r}")


def fourier_mass_setting(section: str, value, mcmc) -> float | str:
    """``fourier_mass`` (mu^2 of the Fourier-accelerated HMC mass, or ``"adaptive"``; ``None``: not given, 1) of
    ``[section]``, checked before any solve by :func:`pikflow.samplers.check_fourier_mass`; given only with
    ``mcmc = "fhmc"``, whose mass it is."""
    from ..samplers import check_fourier_mass

    if value is None:
        return 1.0
    try:
        mass = check_fourier_mass(value)
    except PikflowError as err:
        raise ConfigError(f"[{section}] {err}") from None
    if mcmc != "fhmc":
        raise ConfigError(f"[{section}] fourier_mass is the mass of mcmc = 'fhmc' moves; mcmc is {mcmc!r}")
    return mass


def run_smc(flow, settings: dict, observables: dict, *, progress: bool):
    """Run :func:`pikflow.samplers.smc` with ``observables`` (name -> one-configuration JAX function)."""
    from ..samplers import smc

    return smc(flow, observables=observables, progress=progress, **settings)


def zero_d_observables(flow, observables: dict) -> dict:
    """``[observables]`` (name -> SymPy text) as one-configuration functions of a 0-D flow's fields."""
    from ..lowering import lower_observable

    out = {}
    for name, text in observables.items():
        f = lower_observable(text, flow.path.fields)
        out[name] = lambda x, f=f: f(x[None])[0]
    return out


def results_block(result, names, derived=None) -> dict:
    """``ess``, ``log_z``, ``observables``, ``path_observables`` and the ``smc`` block of ``results.json``."""
    derived = derived or {}

    def at(t):
        obs = {k: result.observable(k, t).to_dict() for k in names}
        obs.update({k: fn(result, t).to_dict() for k, fn in derived.items()})
        return obs

    out = {
        "sampler": "smc",
        "ess": result.final_ess,
        "log_z": result.log_z_estimate().to_dict(),
        "observables": at(None),
        "path_observables": {f"{t:.6g}": at(t) for t in result.times},
        "smc": result.summary(names),
    }
    every = [out["observables"], *out["path_observables"].values()]
    bad = {k for obs in every for k, v in obs.items() if not np.isfinite(v["value"])}
    for k in names:  # a replica's mean that is not finite would be left out of the pooled estimate: biased
        finite = np.isfinite(np.asarray(result.moments[k], dtype=float))
        if (finite.any(axis=-1) & ~finite.all(axis=-1)).any():
            bad.add(k)
    if bad:
        raise SamplingError(
            f"the SMC estimates of {sorted(bad)} are not finite in some replicas: the observable is NaN or infinite "
            "on some particles (e.g. log(phi) at phi < 0; give an observable defined on every configuration), or "
            "a replica's weights all vanished (see the ESS/N)"
        )
    return out


def warnings_of(result) -> list[str]:
    """Reliability warnings of an SMC run: weight collapse, a lost genealogy, transport faults, stuck moves."""
    out = []
    n = result.settings["n"]
    if result.ess.min() < 0.01:
        out.append(
            f"the ESS/N fell to {result.ess.min():.2g} within one step: the transport does not follow the path "
            "there; use more steps or a better flow"
        )
    if result.unique_ancestors[-1].min() < max(2, 0.01 * n):
        out.append(
            f"only {int(result.unique_ancestors[-1].min())} of {n} time-0 ancestors survive in some replica: the "
            "estimates rest on few independent paths; use more particles, more MCMC moves or more steps"
        )
    if result.nonfinite.sum():
        out.append(f"{int(result.nonfinite.sum())} transported particles were non-finite (given weight zero)")
    acc = result.acceptance[1:]
    if result.settings["mcmc_steps"] and np.isfinite(acc).any() and np.nanmin(acc) < 0.1:
        out.append(f"MCMC acceptance fell to {np.nanmin(acc):.2f}: the moves hardly rejuvenate there")
    for w in out:
        print(f"  warning: {w}")
    return out


def print_summary(result) -> None:
    """One block of lines on the terminal: the run, log Z, and the weakest step."""
    s = result.settings
    lz = result.log_z_estimate()
    worst = int(np.argmin(result.ess.min(axis=1)))
    print(
        f"  SMC ({s['transport']} transport, {s['mcmc']} x {s['mcmc_steps']}): {s['n']} particles x "
        f"{s['replicas']} replicas, {s['steps']} steps in {result.seconds:.1f} s (compilation included)"
    )
    print(
        f"  final ESS/N = {result.final_ess:.6f}; lowest ESS/N {result.ess.min():.4f} at "
        f"t = {result.times[worst]:.4g}; {result.n_resampled} resamplings; log Z = {lz}"
    )


def plot(result, out) -> str:
    """``smc.png``: ESS/N, MCMC acceptance and log Z(t) (with replica errors) along the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = result.times
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].plot(t, result.ess.min(axis=1), "o-", ms=3, label="min over replicas")
    ax[0].plot(t, result.ess.mean(axis=1), "-", label="mean")
    ax[0].set(xlabel="t", ylabel="ESS/N after reweighting", ylim=(0, 1.05), title="SMC weights")
    ax[0].legend()
    acc = result.acceptance[1:]
    ax[1].plot(t[1:], np.nanmean(acc, axis=1) if np.isfinite(acc).any() else np.zeros(len(t) - 1), "o-", ms=3)
    ax[1].set(xlabel="t", ylabel="acceptance", ylim=(0, 1.05), title=f"{result.settings['mcmc']} moves")
    est = [result.log_z_estimate(x) for x in t]
    v, e = np.array([x.value for x in est]), np.array([x.error for x in est])
    ax[2].plot(t, v, "-")
    ax[2].fill_between(t, v - 2 * e, v + 2 * e, alpha=0.3, label="2 replica errors")
    ax[2].set(xlabel="t", ylabel="log Z_t", title="free energy along the path")
    ax[2].legend()
    fig.tight_layout()
    path = out / "smc.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


__all__ = [
    "SMC_SCHEMA",
    "plot",
    "print_summary",
    "results_block",
    "run_smc",
    "smc_settings",
    "warnings_of",
    "zero_d_observables",
]
