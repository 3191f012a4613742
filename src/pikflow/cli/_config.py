"""The TOML configuration of ``pikflow run``: schema, validation, and the objects it builds.

Every accepted key is listed in :data:`SCHEMA`; anything else is a :class:`ConfigError`
that names the key and suggests the closest valid one.
"""

from __future__ import annotations

import difflib
import pathlib
import tomllib
from importlib import resources
from typing import Any

import lineax as lx

from .._errors import ConfigError, PikflowError

#: section -> key -> (type(s), description). "*" means any key (couplings, observables).
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], str]]] = {
    "action": {
        "density": ((str,), "the action (0-D: the whole action) in SymPy syntax"),
        "fields": ((list,), "field names; default: every symbol not in [path]"),
    },
    "path": {"*": ((list, str, int, float), "coupling = [start, end] (linear in t), a number, or an expression in t")},
    "flow": {
        "steps": ((int,), "RK4 steps (2*steps+1 kernels); default 25"),
        "form": ((str,), "'chi' (eq. 20) or 'constant' (free c_t); default 'chi'"),
        "logdet": ((str,), "'auto', 'exact' (RK4 map Jacobian) or 'continuous'; default 'auto'"),
        "seed": ((int,), "seed of the collocation samples; default 0"),
    },
    "basis": {
        "kind": ((str,), "'sine', 'polynomial', 'hermite', 'radial' or 'custom'; default by field count"),
        "n": ((int,), "sine: number of frequencies"),
        "max_frequency": ((int, float), "sine: largest frequency"),
        "frequencies": ((list,), "sine: explicit frequencies"),
        "degree": ((int,), "polynomial/hermite/radial: degree"),
        "scale": ((int, float), "hermite/radial: length scale"),
        "parity": ((str,), "'auto', 'odd', 'even' or 'all'"),
        "functions": ((list,), "custom: basis functions as SymPy strings"),
    },
    "collocation": {
        "n_samples": ((int,), "pushed samples per layer; default 1000"),
        "n_tail": ((int,), "points covering the tails; default 500"),
        "tail_gap": ((int, float), "tails reach S_t - min S_t = tail_gap; default 20"),
        "radius": ((int, float), "fixed range |phi| <= radius instead of tail_gap"),
    },
    "solver": {
        "kind": ((str,), "'direct' (Lineax least squares)"),
        "linear_solver": ((str,), "'qr', 'svd' or 'auto'; default qr (1 field) / svd (several)"),
    },
    "sampling": {
        "n": ((int,), "number of samples; default 100000"),
        "seed": ((int,), "sampling seed; default 0"),
        "batch_size": ((int,), "samples per compiled batch; default 65536"),
        "keep_layers": ((bool,), "keep every step's samples (path observables); default true"),
    },
    "observables": {"*": ((str,), "name = SymPy expression in the fields, e.g. 'Abs(phi)'")},
}

EXAMPLES = ("phi4-0d", "o2-0d", "asymmetric-0d")
_LINEAR_SOLVERS = {"qr": lx.QR, "svd": lx.SVD, "auto": lambda: lx.AutoLinearSolver(well_posed=False)}


def example_path(name: str) -> pathlib.Path:
    """Path of a built-in example configuration."""
    if name not in EXAMPLES:
        raise ConfigError(f"unknown example {name!r}: choose one of {list(EXAMPLES)}")
    return pathlib.Path(str(resources.files("pikflow.cli") / "examples" / f"{name}.toml"))


def config_source(config: str | None, example: str | None) -> tuple[dict[str, Any], str]:
    """The validated configuration of a ``CONFIG`` path or ``--example`` name (default: phi4-0d), and its source."""
    if config and example:
        raise ConfigError("give a CONFIG file or --example, not both")
    src = pathlib.Path(config) if config else example_path(example or "phi4-0d")
    return load_config(src), str(src)


def load_config(source: str | pathlib.Path) -> dict[str, Any]:
    """Read and validate a TOML file."""
    p = pathlib.Path(source)
    if not p.is_file():
        raise ConfigError(f"configuration file {str(p)!r} does not exist")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{p} is not valid TOML: {err}") from None
    validate(data, where=str(p))
    return data


def validate(data: dict, *, where: str = "config") -> None:
    """Raise :class:`ConfigError` for an unknown section or key, or a value of the wrong type."""
    for section, table in data.items():
        if section not in SCHEMA:
            raise ConfigError(f"{where}: unknown section [{section}]{_suggest(section, SCHEMA)}")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        keys = SCHEMA[section]
        for key, value in table.items():
            spec = keys.get(key, keys.get("*"))
            if spec is None:
                raise ConfigError(f"{where}: unknown key '{key}' in [{section}]{_suggest(key, keys)}")
            types = spec[0]
            if isinstance(value, bool) and bool not in types:
                ok = False
            else:
                ok = isinstance(value, types) or (float in types and isinstance(value, int))
            if not ok:
                names = " or ".join(t.__name__ for t in types)
                raise ConfigError(f"{where}: [{section}] {key} must be {names}, got {value!r}")
    for need in ("action", "path"):
        if need not in data:
            raise ConfigError(f"{where}: the section [{need}] is missing")
    if "density" not in data["action"]:
        raise ConfigError(f'{where}: [action] needs density = "..." (the action in SymPy syntax)')


def _suggest(key: str, options) -> str:
    close = difflib.get_close_matches(key, [k for k in options if k != "*"], n=1)
    return f" (did you mean '{close[0]}'?)" if close else f"; valid: {sorted(k for k in options if k != '*')}"


def build(data: dict):
    """The path, solve options and sampling options a validated configuration describes."""
    from ..action import Action, Path
    from ..bases import basis_from_spec
    from ..solvers import Collocation, DirectSolver

    couplings = data["path"]
    fields = data["action"].get("fields")
    try:
        action = Action(data["action"]["density"], fields=fields, couplings=None if fields else list(couplings))
        path = Path(action, couplings)
    except PikflowError as err:
        raise type(err)(f"[action]/[path]: {err}") from None
    flow = data.get("flow", {})
    opts: dict[str, Any] = {
        "steps": flow.get("steps", 25),
        "form": flow.get("form", "chi"),
        "seed": flow.get("seed", 0),
    }
    if "basis" in data:
        opts["basis"] = basis_from_spec(data["basis"])
    if "collocation" in data:
        opts["collocation"] = Collocation(**data["collocation"])
    solver = data.get("solver", {})
    if solver.get("kind", "direct") != "direct":
        raise ConfigError(f"[solver] kind {solver['kind']!r} is not available; use 'direct'")
    if "linear_solver" in solver:
        name = solver["linear_solver"]
        if name not in _LINEAR_SOLVERS:
            raise ConfigError(f"[solver] linear_solver must be one of {sorted(_LINEAR_SOLVERS)}, got {name!r}")
        opts["solver"] = DirectSolver(_LINEAR_SOLVERS[name]())
    smp = data.get("sampling", {})
    sampling = {
        "n": smp.get("n", 100_000),
        "seed": smp.get("seed", 0),
        "batch_size": smp.get("batch_size", 1 << 16),
        "keep_layers": smp.get("keep_layers", True),
        "logdet": flow.get("logdet", "auto"),
    }
    observables = dict(data.get("observables", {}))
    return path, opts, sampling, observables
