r"""Lattice configurations of ``pikflow run``: what they may hold, their defaults, and the path they describe.

:func:`check_lattice` rejects a configuration that cannot run (shape, sections, keys, value ranges) with a
:class:`~pikflow.ConfigError` that names the key and what to write instead; :func:`lattice_settings` fills in
the defaults of :func:`~pikflow.lattice.fit_lattice`; :func:`build_lattice` parses the density and couplings
into the :class:`~pikflow.action.LatticePath`. The run itself is :mod:`._lattice`.
"""

from __future__ import annotations

import inspect
from typing import Any

from .._errors import ConfigError, PikflowError
from ._levers import check_lattice_levers

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
#: Sections a ``[scan]`` / ``[multilevel]`` run does not read -> where its settings are instead.
SAMPLER_UNUSED = {
    "scan": {
        "lattice": "the [scan] keys (flow_basis and flow_collocation for transport = 'pik')",
        "smc": "the [scan] keys (particles, replicas, mcmc, ...)",
        "hmc": "the [scan] keys (the scan's moves are its own; its HMC reference is `pikflow bench scan-lattice`)",
        "refine": "no refinement: a scan solves no flow of the target",
        "multilevel": "a separate run: a configuration has [scan] or [multilevel], not both",
    },
    "multilevel": {
        "lattice": "the [multilevel] keys",
        "smc": "the [multilevel] keys (particles, replicas, steps, mcmc, ...)",
        "observables": "the levels' observables (abs_m, chi, binder) only",
        "refine": "no refinement: a multilevel run solves no flow of the target",
    },
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
    for kind, unused in SAMPLER_UNUSED.items():
        for section, instead in unused.items() if kind in data else ():
            if section in data:
                raise ConfigError(f"{where}: [{section}] is not used by a [{kind}] run; use {instead}")
        sampling = data.get("sampling", {}) if kind in data else {}
        for key in ("n", "method", "batch_size"):
            if key in sampling:
                raise ConfigError(
                    f"{where}: [sampling] {key} is not used by a [{kind}] run (its particles and replicas are in "
                    f"[{kind}]); only [sampling] seed is"
                )
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
    lows += (("local_degree", 1), ("polish", 0))
    for key, low in lows:
        if key in lat and lat[key] < low:
            raise ConfigError(f"{where}: [lattice] {key} must be >= {low}, got {lat[key]!r}")
    from ..lattice import MAX_LOCAL_DEGREE

    if lat.get("local_degree", 4) > MAX_LOCAL_DEGREE:
        raise ConfigError(
            f"{where}: [lattice] local_degree must be at most {MAX_LOCAL_DEGREE} (4 or 6 suffice), got "
            f"{lat['local_degree']!r}"
        )
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
        "polish": lat.get("polish", 0),
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
