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

from .._errors import ConfigError, PikflowError
from ._multilevel import MULTILEVEL_SCHEMA
from ._scan import SCAN_SCHEMA
from ._smc import SMC_SCHEMA

#: section -> key -> (type(s), description). "*" means any key (couplings, observables).
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], str]]] = {
    "action": {
        "density": ((str,), "the action (0-D: the whole action) in SymPy syntax; lattice: the density per site"),
        "fields": ((list,), "field names; default: every symbol not in [path] (lattice: the symbols inside shift)"),
        "lattice": (
            (list,),
            "lattice shape, e.g. [8, 8] (1 to 4 sizes, each >= 3; periodic): makes this a lattice run, whose density "
            "is a site density in phi, shift(phi, mu) / shift(phi, mu, -1), sum_mu(...), d and couplings, and whose "
            "flow is fitted with pikflow.lattice.fit_lattice (see [lattice])",
        ),
    },
    "path": {
        "*": (
            (list, str, int, float),
            "coupling = [start, end] (linear in t), a number, or an expression in t; lattice runs with the "
            "default matched base use only the values at t = 1 (the target)",
        )
    },
    "flow": {
        "steps": (
            (int, str),
            "RK4 steps (2*steps+1 kernels), or 'auto' (default): 25, or 100 or 200 where 25 fold the map",
        ),
        "form": ((str,), "'chi' (eq. 20) or 'constant' (free c_t); default 'chi'"),
        "logdet": ((str,), "'auto', 'exact' (RK4 map Jacobian) or 'continuous'; default 'auto'"),
        "seed": ((int,), "seed of the collocation samples (lattice: and of the matched base's HMC); default 0"),
        "schedule": (
            (str, int, float),
            "'auto' (layers denser where p_t changes fastest: tau = t**p, one component), 'uniform', or a power p",
        ),
        "frequency_range": (
            (str,),
            "'fixed' (default): the basis as given; 'auto': its frequencies/scale follow the width of p_t per layer",
        ),
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
        "mala_steps": ((int,), "[solver] mode = 'parallel', several components: MALA chain length; default 200"),
    },
    "solver": {
        "kind": ((str,), "'direct' (Lineax least squares), 'adam' (Optax training) or 'levenberg-marquardt'"),
        "mode": ((str,), "'sequential' (pushed samples) or 'parallel' (points from p_t, all layers at once)"),
        "linear_solver": ((str,), "direct: 'qr', 'svd' or 'auto'; default qr (1 field) / svd (several)"),
        "model": ((str,), "adam: 'sine' (eq. 25, learnable frequencies) or 'mlp'; default 'sine'"),
        "n_frequencies": ((int,), "adam/levenberg-marquardt sine model: frequencies; default 25 / 10"),
        "max_frequency": ((int, float), "adam/levenberg-marquardt: largest initial frequency; default 6"),
        "width": ((int,), "adam mlp: hidden width; default 16"),
        "depth": ((int,), "adam mlp: hidden layers; default 2"),
        "learning_rate": ((int, float), "adam: learning rate of the first layers; default 1e-2"),
        "epochs": ((int,), "adam: epochs of the first layers; default 600"),
        "warm_learning_rate": ((int, float), "adam: learning rate of warm-started layers; default 1e-3"),
        "warm_epochs": ((int,), "adam: maximal epochs of warm-started layers; default 600"),
        "patience": ((int,), "adam: early stopping after this many epochs without improvement; default 50"),
        "batch_size": ((int,), "adam: minibatch size; default 512"),
        "first_layers": ((int,), "adam: layers trained with learning_rate/epochs; default 2"),
        "seed": ((int,), "adam: seed of the model initialisation; default 0"),
        "method": ((str,), "levenberg-marquardt: 'levenberg-marquardt' or 'gauss-newton'"),
        "rtol": ((int, float), "levenberg-marquardt: relative tolerance; default 1e-6"),
        "atol": ((int, float), "levenberg-marquardt: absolute tolerance; default 1e-9"),
        "max_steps": ((int,), "levenberg-marquardt: iterations per layer; default 100"),
        "ridge": ((int, float), "levenberg-marquardt: relative ridge of the inner solve; default 1e-14"),
    },
    "sampling": {
        "n": ((int,), "number of samples; default 100000 (lattice runs: 10000)"),
        "method": (
            (str,),
            "'auto' (table for one component), 'table', 'rk4', or 'smc' (sequential Monte Carlo with PIK "
            "transport, see [smc]); default 'auto'",
        ),
        "table_nodes": ((int,), "grid nodes of the tabulated map; default 8192"),
        "seed": ((int,), "sampling seed; default 0"),
        "batch_size": ((int,), "samples per compiled batch; default 2**20 (table) or 2**16 (rk4); lattice runs: 1000"),
        "keep_layers": ((bool,), "keep every step's samples (path observables); default true"),
    },
    "observables": {
        "*": (
            (str,),
            "name = SymPy expression in the fields, e.g. 'Abs(phi)'; lattice runs: a site density averaged over "
            "the sites, e.g. 'phi**2' or 'phi*shift(phi, 0)'",
        )
    },
    "refine": {
        "tol": (
            (int, float),
            "absolute tolerance on each layer's largest residual (eq. 27); lattice runs: on the largest relative "
            "layer residual (basis enrichment); default 1e-2",
        ),
        "max_rounds": (
            (int,),
            "most refinement rounds (0: only report residuals); lattice runs: families of the enrichment ladder "
            "tried; default 3",
        ),
        "centres": ((int,), "most new Wendland centres per layer and round; default 16"),
        "overlap": ((int, float), "Wendland width in units of the centre spacing; default 4"),
        "n_points": ((int,), "flow samples per layer used as collocation points; default 2000"),
        "online": ((bool,), "detect out-of-domain samples while sampling and refine those layers; default false"),
        "centres_at": (
            (str,),
            "'residual' (default): new centres where the residual is largest; 'missed': at the reference samples the "
            "flow misses (largest weight, pulled back)",
        ),
        "n_missed": ((int,), "centres_at = 'missed': reference samples per layer; default that of refine()"),
    },
    "hmc": {
        "step_size": (
            (int, float, str),
            "HMC leapfrog step; default 1/25 (the paper's); lattice runs: default 'auto' (adapted to an "
            "acceptance of 0.8 during thermalisation only)",
        ),
        "leapfrog_steps": ((int,), "leapfrog steps per trajectory (lattice, or step_size = 'auto'); default 10"),
        "trajectory_length": ((int, float), "molecular-dynamics time per trajectory; default 1 (the paper's)"),
        "chains": ((int,), "chains of the vectorised HMC run; default 2048 (lattice runs: that of fit_lattice)"),
        "n": ((int,), "measured trajectories per chain of the vectorised run; default 1000 (lattice: 500)"),
        "n_single": ((int,), "measured trajectories of the single-chain run; default 100000"),
        "thermalisation": ((int,), "trajectories discarded per chain; default 200"),
        "workers": ((int,), "host threads the vectorised chains are split over; default: CPU cores (at most 8)"),
        "seed": ((int,), "HMC seed; default 0"),
        "start": (
            (str,),
            "lattice runs: 'hot' (default: small random fields) or 'ordered' (the uniform field that minimises the "
            "action, +-c per chain: for the broken phase, where a hot start leaves domain walls on large lattices)",
        ),
        "jitter": (
            (int, float),
            "each chain's leapfrog step drawn per trajectory, uniform in [(1-j) step, (1+j) step], against "
            "trajectory lengths resonant with a mode; a fraction in [0, 1); default 0",
        ),
    },
    "lattice": {
        "base": (
            (str,),
            "'matched' (default): a base fitted to a short HMC run at the target; the [path] end values (t = 1) "
            "define the target and the base replaces the start point, the path being S_t = (1-t) S_0 + t S_1. "
            "Both a Gaussian with the target's two-point function and (where the magnetisation's Binder cumulant "
            "is positive) a two-Gaussian mixture split along the zero mode are solved, and the flow with the "
            "better ESS/N (the smaller of the flow-side and the HMC-side estimate, which sees holes) is kept. "
            "'gaussian' / 'mixture': only that matched base. 'free': the [path] as given, whose start (t = 0) "
            "must be a Gaussian (e.g. lam = [0, 1])",
        ),
        "steps": ((int,), "RK4 steps (2*steps+1 layers); default that of fit_lattice (10)"),
        "schedule": (
            (int, float, str),
            "where the RK4 steps sit: the matched path reparametrised by tau = t**p, so that p > 1 puts more steps "
            "at the start, where the flow moves fastest; a number 1 <= p <= 4, 'uniform' (p = 1) or 'auto' "
            "(default: p = 2 with a matched base, 1 with base = 'free'). With p = 2, 3 steps have the log-density "
            "error of 10 uniform ones (16x16, (-2, 2))",
        ),
        "basis": (
            (str,),
            "basis preset of the flow (and so of the SMC transport), cheapest first: 'two-point' (the Fourier "
            "two-point term: a linear map, one FFT pair per evaluation), 'magnetisation' (plus V m^4, V m^6: the "
            "zero mode's double well), 'short' (plus smoothed powers on 3 scales), 'lean' (the default families on "
            "4 smoothing filters), 'default' (9 scales and cross-scale products), and 'separable+ridges', "
            "'lean+ridges', 'default+ridges' (with 20 ridge terms: functions of sums of smoothed fields, "
            "better near a critical point, about 1.6 times the cost of an evaluation); see "
            "pikflow.lattice.preset_basis. "
            "Not combined with the basis overrides below",
        ),
        "polish": (
            (int,),
            "Adam steps that polish the solved flow's coefficients on the KL divergence of its RK4 map, its "
            "continuous log-density held to the map's exact one (pikflow.refine.polish; kept only if the ESS/N, "
            "hole check included, rises); default 0 (off). Each step computes V Jacobian columns of a draw: for "
            "small lattices (at 16x16, 300 steps take about 7 minutes on 2 cores and raised the ESS/N of 2 RK4 steps "
            "from 0.76 to 0.87)",
        ),
        "collocation": (
            (int,),
            "collocation configurations per layer; default that of fit_lattice (7 per basis function, at least 500 "
            "and at most 1000: pikflow.lattice.auto_collocation)",
        ),
        "select": ((int,), "samples per candidate flow when choosing between them; default that of fit_lattice (500)"),
        "tames": (
            (list,),
            "taming widths tried with the default basis; default [5]. The earlier, thorough set-up (2.5 times as "
            "long, the same candidates at the lattice goal points): collocation = 1000, select = 2000, tames = [10, 5]",
        ),
        "hmc_samples": ((int,), "matched base: HMC configurations fitting G(k); default that of fit_lattice (4000)"),
        "hmc_chains": ((int,), "matched base: HMC chains; default that of fit_lattice (8)"),
        "fourier_bins": (
            (int, str),
            "merge the Fourier two-point term's momentum orbits into this many groups in khat^2 (large lattices: "
            "2145 orbits at 128x128), with the default basis or a preset; 0: one coefficient per orbit; default "
            "'auto' (that of fit_lattice: 64 groups above 300 orbits, i.e. from 64x64 in 2-D)",
        ),
        "smooth_base": (
            (int, str),
            "matched base: fit 1/G(k) at k != 0 by a polynomial of this degree in khat_mu^2 instead of per orbit "
            "(e.g. 3), which merged orbits need; 0: per orbit; default 'auto' (degree 3 where the orbits are merged)",
        ),
        "fourier": (
            (bool,),
            "basis override: the Fourier two-point term (one coefficient per momentum orbit); default true. "
            "Giving any basis override builds lattice_basis(..., precision=<base precision>) with the other "
            "overrides at the defaults of default_basis",
        ),
        "scales": ((list,), "basis override: smoothing scales of the smoothed powers; default: adapted to the base"),
        "powers": ((list,), "basis override: powers of the smoothed fields, e.g. [4, 6]; default [4, 6]"),
        "tame": ((int, float), "basis override: taming width of the smoothed powers, in sigma; default 10"),
        "magnetisation": ((list,), "basis override: powers of the global terms V m^p, e.g. [4, 6]; default []"),
        "local_range": ((int,), "basis override: range of the local Hermite products; default: no local terms"),
        "local_degree": ((int,), "basis override: total degree of the local Hermite products; default 4"),
    },
}

SCHEMA["smc"] = SMC_SCHEMA
SCHEMA["scan"] = SCAN_SCHEMA
SCHEMA["multilevel"] = MULTILEVEL_SCHEMA

EXAMPLES = ("phi4-0d", "o2-0d", "asymmetric-0d", "phi4-lattice-8x8", "o2-lattice-8x8")

#: One line per built-in example, shown by ``pikflow examples``.
EXAMPLE_DESCRIPTIONS = {
    "phi4-0d": "0-D phi^4, one component: Gaussian (m2 = 1) to double well (m2 = -2, lam = 1/2); 10^6 samples",
    "o2-0d": "0-D O(2) model, two components: the radial basis, m2 1 -> -2, lam 0 -> 1/2",
    "asymmetric-0d": "0-D phi^4 with a cubic term (g = 1/2): no phi -> -phi symmetry, even and odd basis terms",
    "phi4-lattice-8x8": "2-D lattice phi^4 on 8x8 at (m2, lam) = (-1, 1), matched base fitted to a short HMC run",
    "o2-lattice-8x8": "2-D lattice O(2) model on 8x8 at (m2, lam) = (-1, 1): two components, O(2)-invariant basis",
}


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


#: Python types of the schema -> their TOML names, for the messages.
_TOML_TYPES = {
    dict: "a table", list: "an array", str: "a string", int: "an integer", float: "a float", bool: "a boolean",
}  # fmt: skip


def load_config(source: str | pathlib.Path) -> dict[str, Any]:
    """Read and validate a TOML file."""
    p = pathlib.Path(source)
    if p.is_dir():
        raise ConfigError(f"{str(p)!r} is a directory, not a configuration file: give the path of a .toml file")
    if not p.is_file():
        raise ConfigError(f"configuration file {str(p)!r} does not exist")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{p} is not a UTF-8 text file (byte {err.object[err.start]:#04x} at position {err.start}): "
            "save the configuration as UTF-8 TOML"
        ) from None
    except OSError as err:
        raise ConfigError(f"cannot read the configuration file {p}: {err.strerror or err}") from None
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
                elsewhere = sorted(s for s, k in SCHEMA.items() if key in k and s != section)
                hint = f" (it is a key of [{'] or ['.join(elsewhere)}])" if elsewhere else _suggest(key, keys)
                raise ConfigError(f"{where}: unknown key '{key}' in [{section}]{hint}")
            types = spec[0]
            if isinstance(value, bool) and bool not in types:
                ok = False
            else:
                ok = isinstance(value, types) or (float in types and isinstance(value, int))
            if not ok:
                names = " or ".join(_TOML_TYPES.get(t, t.__name__) for t in types)
                raise ConfigError(f"{where}: [{section}] {key} must be {names}, got {value!r}")
    for need in ("action", "path"):
        if need not in data:
            raise ConfigError(f"{where}: the section [{need}] is missing")
    if "density" not in data["action"]:
        raise ConfigError(f'{where}: [action] needs density = "..." (the action in SymPy syntax)')
    from ._guards import check_ranges, check_resources
    from ._lattice_config import check_lattice
    from ._multilevel import multilevel_settings
    from ._scan import scan_settings
    from ._smc import smc_settings

    check_ranges(data, where)
    check_lattice(data, where)
    try:
        smc_settings(data)
        scan_settings(data)
        multilevel_settings(data)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    check_resources(data, where)


def _suggest(key: str, options) -> str:
    close = difflib.get_close_matches(key, [k for k in options if k != "*"], n=1)
    return f" (did you mean '{close[0]}'?)" if close else f"; valid: {sorted(k for k in options if k != '*')}"


def build(data: dict):
    """The path, solve options and sampling options a validated configuration describes."""
    from ..action import Action, Path
    from ..bases import basis_from_spec
    from ..solvers import Collocation, solver_from_config

    if "lattice" in data["action"]:
        raise ConfigError("this is a lattice configuration ([action] lattice): run it with `pikflow run`")
    couplings = data["path"]
    fields = data["action"].get("fields")
    try:
        action = Action(data["action"]["density"], fields=fields, couplings=None if fields else list(couplings))
        path = Path(action, couplings)
    except PikflowError as err:
        raise type(err)(f"[action]/[path]: {err}") from None
    flow = data.get("flow", {})
    if isinstance(flow.get("steps"), str) and flow["steps"] != "auto":
        raise ConfigError(f"[flow] steps must be a positive integer or 'auto', got {flow['steps']!r}")
    opts: dict[str, Any] = {
        "steps": flow.get("steps", "auto"),
        "form": flow.get("form", "chi"),
        "seed": flow.get("seed", 0),
        "schedule": flow.get("schedule", "auto"),
    }
    if "frequency_range" in flow:
        if flow["frequency_range"] not in ("fixed", "auto"):
            raise ConfigError(f"[flow] frequency_range must be 'fixed' or 'auto', got {flow['frequency_range']!r}")
        opts["frequency_range"] = flow["frequency_range"]
    if "basis" in data:
        functions = data["basis"].get("functions", [])
        if not all(isinstance(f, str) for f in functions):
            raise ConfigError(f'[basis] functions must be SymPy strings, e.g. ["phi**2"], got {functions!r}')
        try:
            opts["basis"] = basis_from_spec(data["basis"])
        except PikflowError as err:
            raise ConfigError(f"[basis] {err}") from None
    if "collocation" in data:
        opts["collocation"] = Collocation(**data["collocation"])
    solver, mode = solver_from_config(data.get("solver", {}), path.n_fields)
    if solver is not None:
        opts["solver"] = solver
    if mode != "sequential":
        opts["mode"] = mode
    smp = data.get("sampling", {})
    sampling = {
        "n": smp.get("n", 100_000),
        "seed": smp.get("seed", 0),
        "batch_size": smp.get("batch_size"),
        "method": smp.get("method", "auto"),
        "table_nodes": smp.get("table_nodes", 8192),
        "keep_layers": smp.get("keep_layers", True),
        "logdet": flow.get("logdet", "auto"),
    }
    observables = dict(data.get("observables", {}))
    _check_observables(observables, path.fields)
    return path, opts, sampling, observables


def _check_observables(observables: dict, fields) -> None:
    """Refuse an observable with a bad expression or an unknown symbol before the (long) solve."""
    from ..lowering import check_observable

    for name, text in observables.items():
        try:
            check_observable(text, fields, what=f"observable {name} =")
        except PikflowError as err:
            raise type(err)(f"[observables]: {err}") from None


def hmc_options(data: dict) -> dict[str, Any]:
    """The ``[hmc]`` settings of a validated configuration, with defaults (used by the benchmarks)."""
    import os

    h = data.get("hmc", {})
    step = h.get("step_size", 1 / 25)
    if isinstance(step, str) and step != "auto":
        raise ConfigError(f"[hmc] step_size must be a positive number or 'auto', got {step!r}")
    if "leapfrog_steps" in h and not step == "auto":
        raise ConfigError(
            "[hmc] leapfrog_steps goes with step_size = 'auto' (the step is then trajectory_length / "
            "leapfrog_steps to start with); with a numeric step_size give trajectory_length instead"
        )
    opts = {
        "step_size": step if step == "auto" else float(step),
        "n_leapfrog": h.get("leapfrog_steps"),
        "trajectory_length": float(h.get("trajectory_length", 1.0)),
        "chains": h.get("chains", 2048),
        "n": h.get("n", 1000),
        "n_single": h.get("n_single", 100_000),
        "thermalisation": h.get("thermalisation", 200),
        "workers": h.get("workers", max(1, min(8, os.cpu_count() or 1))),
        "seed": h.get("seed", 0),
        "jitter": float(h.get("jitter", 0.0)),
    }
    if not 0.0 <= opts["jitter"] < 1.0:
        raise ConfigError(f"[hmc] jitter must be a fraction in [0, 1) of the leapfrog step, got {h['jitter']!r}")
    if opts["n_leapfrog"] is not None and opts["n_leapfrog"] < 1:
        raise ConfigError(f"[hmc] leapfrog_steps must be >= 1, got {opts['n_leapfrog']!r}")
    for key in ("step_size", "trajectory_length") if step != "auto" else ("trajectory_length",):
        if not opts[key] > 0:
            raise ConfigError(f"[hmc] {key} must be positive, got {opts[key]!r}")
    for key in ("chains", "n", "n_single", "workers"):
        if opts[key] < 1:
            raise ConfigError(f"[hmc] {key} must be >= 1, got {opts[key]!r}")
    if opts["thermalisation"] < 0:
        raise ConfigError(f"[hmc] thermalisation must be >= 0, got {opts['thermalisation']!r}")
    return opts


def refine_options(data: dict) -> dict[str, Any] | None:
    """The ``[refine]`` settings of a validated configuration, with defaults; ``None`` without the section."""
    if "refine" not in data:
        return None
    r = data["refine"]
    opts = {
        "tol": float(r.get("tol", 1e-2)),
        "max_rounds": r.get("max_rounds", 3),
        "centres": r.get("centres", 16),
        "overlap": float(r.get("overlap", 4.0)),
        "n_points": r.get("n_points", 2000),
        "online": r.get("online", False),
    }
    if "centres_at" in r:
        if r["centres_at"] not in ("residual", "missed"):
            raise ConfigError(f"[refine] centres_at must be 'residual' or 'missed', got {r['centres_at']!r}")
        opts["centres_at"] = r["centres_at"]
    if "n_missed" in r:
        if r["n_missed"] < 1:
            raise ConfigError(f"[refine] n_missed must be >= 1, got {r['n_missed']!r}")
        opts["n_missed"] = r["n_missed"]
    if not opts["tol"] > 0:
        raise ConfigError(f"[refine] tol must be positive, got {opts['tol']!r}")
    if not opts["overlap"] > 0:
        raise ConfigError(f"[refine] overlap must be positive, got {opts['overlap']!r}")
    for key, low in (("max_rounds", 0), ("centres", 1), ("n_points", 1)):
        if opts[key] < low:
            raise ConfigError(f"[refine] {key} must be >= {low}, got {opts[key]!r}")
    return opts
