"""Resource guards of ``pikflow run``: ranges of numeric settings, memory and work estimated before a run.

A configuration can be well typed and still impossible: ``[flow] steps = 10000000000``
would allocate 149 GiB for its coefficients, ``[sampling] n = 100000000000000`` would run
for years, ``[action] lattice = [100000, 100000]`` aborts inside native code. These checks
run on the validated TOML data (no SymPy, no JAX; microseconds) and refuse such a run
with a :class:`ConfigError` naming the setting to change:

* :func:`check_ranges`: every numeric setting within its range (finite, positive counts,
  seeds in ``[0, 2**32)``);
* :func:`check_resources`: the largest arrays of the run (steps x collocation x basis for
  the solve, samples x volume for the sampler, ...) against the available memory
  (:func:`available_memory`), and the floating-point work against :data:`WORK_LIMIT`.

The estimates are lower bounds (float64 entries of the largest arrays; the
field count is taken as ``len(fields)`` or 1), so a refused run could not have fitted.
"""

from __future__ import annotations

import math

from .._errors import ConfigError
from .._memory import available_memory

#: Work (floating-point operations, estimated) above which a run is refused: ~1e16 is days to weeks on a CPU.
WORK_LIMIT = 1e16
#: Largest accepted seed (exclusive): the samplers take 32-bit seeds.
SEED_LIMIT = 2**32

_POS = "positive"  # finite and > 0
_NONNEG = "non-negative"  # finite and >= 0
_SEED = "seed"

#: (section, key) -> lower bound (an int: integer >= bound) or one of the tags above.
RANGES: dict[tuple[str, str], int | str] = {
    ("flow", "steps"): 1,
    ("flow", "seed"): _SEED,
    ("basis", "n"): 1,
    ("basis", "max_frequency"): _POS,
    ("basis", "degree"): 1,
    ("basis", "scale"): _POS,
    ("collocation", "n_samples"): 1,
    ("collocation", "n_tail"): 0,
    ("collocation", "tail_gap"): _POS,
    ("collocation", "radius"): _POS,
    ("collocation", "mala_steps"): 1,
    ("solver", "n_frequencies"): 1,
    ("solver", "max_frequency"): _POS,
    ("solver", "width"): 1,
    ("solver", "depth"): 0,
    ("solver", "learning_rate"): _POS,
    ("solver", "epochs"): 1,
    ("solver", "warm_learning_rate"): _POS,
    ("solver", "warm_epochs"): 0,
    ("solver", "patience"): 1,
    ("solver", "batch_size"): 1,
    ("solver", "first_layers"): 0,
    ("solver", "seed"): _SEED,
    ("solver", "rtol"): _POS,
    ("solver", "atol"): _NONNEG,
    ("solver", "max_steps"): 1,
    ("solver", "ridge"): _NONNEG,
    ("sampling", "n"): 1,
    ("sampling", "table_nodes"): 2,
    ("sampling", "seed"): _SEED,
    ("sampling", "batch_size"): 1,
    ("refine", "tol"): _POS,
    ("refine", "max_rounds"): 0,
    ("refine", "centres"): 1,
    ("refine", "overlap"): _POS,
    ("refine", "n_points"): 1,
    ("hmc", "step_size"): _POS,
    ("hmc", "trajectory_length"): _POS,
    ("hmc", "chains"): 1,
    ("hmc", "n"): 1,
    ("hmc", "n_single"): 1,
    ("hmc", "thermalisation"): 0,
    ("hmc", "leapfrog_steps"): 1,
    ("hmc", "workers"): 1,
    ("hmc", "seed"): _SEED,
    ("smc", "seed"): _SEED,
    ("smc", "step_size"): _POS,
    ("scan", "seed"): _SEED,
    ("multilevel", "seed"): _SEED,
    ("lattice", "steps"): 1,
    ("lattice", "collocation"): 10,
    ("lattice", "hmc_samples"): 1,
    ("lattice", "hmc_chains"): 1,
    ("lattice", "tame"): _POS,
    ("lattice", "local_range"): 0,
    ("lattice", "local_degree"): 1,
}

#: Lists of numbers that must be finite: (section, key).
FINITE_LISTS = (("basis", "frequencies"), ("lattice", "scales"))


def check_ranges(data: dict, where: str = "config") -> None:
    """Raise :class:`ConfigError` for a numeric setting out of its range (see :data:`RANGES`)."""
    for (section, key), rule in RANGES.items():
        table = data.get(section)
        if not isinstance(table, dict) or key not in table:
            continue
        v = table[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue  # the type check of validate() reports it
        name = f"[{section}] {key}"
        if rule == _SEED:
            if not (isinstance(v, int) and 0 <= v < SEED_LIMIT):
                raise ConfigError(f"{where}: {name} must be an integer in [0, 2**32), got {v!r}")
        elif isinstance(rule, int):
            if not isinstance(v, int) or v < rule:
                raise ConfigError(f"{where}: {name} must be >= {rule} (an integer), got {v!r}")
        elif not (isinstance(v, int) or math.isfinite(v)) or v < 0 or (rule == _POS and v == 0):
            raise ConfigError(f"{where}: {name} must be a finite {rule} number, got {v!r}")
    for section, key in FINITE_LISTS:
        vals = data.get(section, {}).get(key) if isinstance(data.get(section), dict) else None
        if isinstance(vals, list):
            for v in vals:
                if isinstance(v, float) and not math.isfinite(v):
                    raise ConfigError(f"{where}: [{section}] {key} must hold finite numbers, got {v!r}")


def _get(data: dict, section: str, key: str, default):
    table = data.get(section)
    v = table.get(key, default) if isinstance(table, dict) else default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (isinstance(v, int) or math.isfinite(v)):
        return float(default)
    return float(min(max(v, 0), 1e300))


def _zero_d_terms(data: dict, n_fields: int) -> tuple[list, list]:
    """(setting, bytes, what) and (setting, operations, what) of a 0-D run."""
    g = lambda s, k, d: _get(data, s, k, d)  # noqa: E731
    nf = float(max(n_fields, 1))
    steps = g("flow", "steps", 25)
    layers = 2 * steps + 1
    n_col = g("collocation", "n_samples", 1000) + g("collocation", "n_tail", 500)
    basis = data.get("basis", {}) if isinstance(data.get("basis"), dict) else {}
    kind = basis.get("kind")
    if kind == "custom" and isinstance(basis.get("functions"), list):
        nb, bkey = float(len(basis["functions"])), "basis.functions"
    elif isinstance(basis.get("frequencies"), list):
        nb, bkey = float(len(basis["frequencies"])), "basis.frequencies"
    elif kind in ("polynomial", "hermite", "radial"):
        nb, bkey = g("basis", "degree", 9) * (nf if kind != "radial" else 1.0), "basis.degree"
    else:
        nb, bkey = g("basis", "n", 25) * nf, "basis.n"
    nb = max(nb, 1.0)
    n = g("sampling", "n", 100_000)
    batch = min(g("sampling", "batch_size", 2**20), n)
    keep = data.get("sampling", {}).get("keep_layers", True) if isinstance(data.get("sampling"), dict) else True
    memory = [
        (("flow.steps", bkey), layers * nb * 8, "kernel coefficients (2 steps + 1 layers x basis)"),
        (("collocation.n_samples", "collocation.n_tail", bkey), n_col * nb * 8, "collocation matrix"),
        (
            ("sampling.n", "flow.steps") if keep is not False else ("sampling.n",),
            n * nf * 8 * ((steps + 1) if keep is not False else 2),
            "samples (x the steps + 1 layers kept; [sampling] keep_layers = false keeps one)"
            if keep is not False
            else "samples",
        ),
        (("sampling.table_nodes", "flow.steps"), g("sampling", "table_nodes", 8192) * (steps + 1) * 8, "table"),
        (("sampling.batch_size",), batch * nf * nf * 8 * 4, "one compiled sampling batch"),
    ]
    if isinstance(data.get("solver"), dict) and data["solver"].get("mode") == "parallel":
        memory.append((("flow.steps", "solver.mode"), layers * n_col * nb * 8, "collocation matrices of all layers"))
    work = [
        (("flow.steps", "collocation.n_samples", bkey), layers * n_col * nb * nb, "the least-squares solves"),
        (("sampling.n", "flow.steps"), n * (steps + 1) * 4 * nb * nf, "RK4 sampling"),
    ]
    solver = data.get("solver", {}) if isinstance(data.get("solver"), dict) else {}
    if solver.get("kind") == "adam":
        params = g("solver", "width", 16) ** 2 * (g("solver", "depth", 2) + 1) + g("solver", "n_frequencies", 25)
        epochs = max(g("solver", "epochs", 600), g("solver", "warm_epochs", 600))
        work.append((("solver.epochs", "solver.warm_epochs"), layers * epochs * n_col * params * 4, "Adam training"))
    if solver.get("kind") == "levenberg-marquardt":
        p = g("solver", "n_frequencies", 10) * 2
        work.append((("solver.max_steps",), layers * g("solver", "max_steps", 100) * n_col * p * p, "Gauss-Newton"))
    if isinstance(data.get("hmc"), dict):
        leap = g("hmc", "trajectory_length", 1.0) / max(g("hmc", "step_size", 0.04), 1e-300)
        traj = g("hmc", "chains", 2048) * (g("hmc", "n", 1000) + g("hmc", "thermalisation", 200))
        hmc = ("hmc.step_size", "hmc.trajectory_length", "hmc.chains", "hmc.n", "hmc.n_single")
        work.append((hmc, (traj + g("hmc", "n_single", 1e5)) * leap * nf * 10, "the HMC reference"))
        memory.append((("hmc.chains", "hmc.n"), g("hmc", "chains", 2048) * g("hmc", "n", 1000) * 16, "HMC chains"))
    _add_smc_terms(data, nf, layers, memory, work)
    return memory, work


#: Copies of the particle array an SMC step holds at once (moves, proposals, gradients, resampling).
SMC_COPIES = 20


def _add_smc_terms(data: dict, sites: float, layers: float, memory: list, work: list) -> None:
    """The particles of ``[sampling] method = "smc"`` (:func:`pikflow.samplers.smc`): memory and work."""
    if not isinstance(data.get("sampling"), dict) or data["sampling"].get("method") != "smc":
        return
    g = lambda s, k, d: _get(data, s, k, d)  # noqa: E731
    particles = g("smc", "particles", 1000) * g("smc", "replicas", 4)
    keys = ("smc.particles", "smc.replicas")
    memory.append((keys, particles * sites * 8 * SMC_COPIES, "SMC particles (all replicas, with their moves)"))
    leap = g("smc", "leapfrog_steps", 10) if data.get("smc", {}).get("mcmc") == "hmc" else 1.0
    moves = g("smc", "mcmc_steps", 2) * leap + 4  # gradient evaluations per particle and annealing step
    work.append((keys + ("smc.mcmc_steps",), particles * layers * moves * sites * 50, "the SMC run"))


def _add_sampler_terms(data: dict, shape, work: list) -> None:
    """The work of a ``[scan]`` or ``[multilevel]`` run: particles x replicas x annealing steps x the gradient
    evaluations of a step's moves (``mcmc_steps`` x ``leapfrog_steps`` for HMC, plus the reweighting) x the sites of
    every size or level, about 50 operations per site."""
    from ..samplers import pool_by_default

    d = len(shape)
    for kind in ("scan", "multilevel"):
        table = data.get(kind)
        if not isinstance(table, dict):
            continue
        g = lambda k, default, kind=kind: _get(data, kind, k, default)  # noqa: E731
        if kind == "scan":
            sizes = table.get("sizes") if isinstance(table.get("sizes"), list) else [max(shape)]
            steps = table.get("steps")
            steps = float(sum(steps)) if isinstance(steps, list) else g("steps", 4 * (g("points", 31) - 1))
            steps += g("prep_steps", max(1, steps // 2))
            keys = ("points", "steps", "particles", "replicas", "mcmc_steps", "leapfrog_steps")
        else:
            sizes = [g("coarsest", 4)]
            while 0 < sizes[-1] < max(shape):
                sizes.append(2 * sizes[-1])
            steps = g("steps", 20)
            keys = ("steps", "particles", "replicas", "mcmc_steps", "leapfrog_steps")
        sites = sum(float(L) ** d for L in sizes)
        leap = g("leapfrog_steps", 10) if table.get("mcmc", "hmc") != "mala" else 1.0
        if table.get("mcmc") == "hmc+cluster":  # a Swendsen-Wang sweep costs 1-3 trajectories
            leap *= 4
        default_particles = 2000 if kind == "scan" else 1000
        particle_steps = g("particles", default_particles) * g("replicas", 4) * steps
        # [scan] pool: two action values and the observables again at every move (about 2 leapfrog steps' worth)
        pooled = kind == "scan" and table.get("pool", pool_by_default(table.get("estimate", "moves")))
        ops = particle_steps * (g("mcmc_steps", 2) * (leap + (2 if pooled else 0)) + 4) * sites * 50
        work.append((tuple(f"{kind}.{k}" for k in keys), ops, f"the [{kind}] run"))


def _lattice_terms(data: dict) -> tuple[list, list]:
    """(setting, bytes, what) and (setting, operations, what) of a lattice run."""
    g = lambda s, k, d: _get(data, s, k, d)  # noqa: E731
    shape = data["action"]["lattice"]
    volume = float(math.prod(min(s, 10**12) for s in shape))
    layers = 2 * g("lattice", "steps", 10) + 1
    n_col = g("lattice", "collocation", 1000)
    nb = volume / 2 ** len(shape) + 20  # momentum orbits of the Fourier term and a few more families
    n = g("sampling", "n", 10_000)
    hmc_n = g("lattice", "hmc_samples", 4000)
    hmc_keys, hmc_work = ("lattice.hmc_samples", "action.lattice"), hmc_n
    if isinstance(data.get("hmc"), dict):  # [hmc] of a lattice run: chains x (n + thermalisation) trajectories
        chains = g("hmc", "chains", g("lattice", "hmc_chains", 8))
        hmc_n = chains * g("hmc", "n", hmc_n / chains)
        leap = g("hmc", "leapfrog_steps", 10) / 10
        hmc_work = (hmc_n + chains * g("hmc", "thermalisation", 200)) * leap
        hmc_keys = ("hmc.chains", "hmc.n", "hmc.thermalisation", "hmc.leapfrog_steps", "action.lattice")
    memory = [
        (("action.lattice",), 8 * volume * 8, "the lattice-sized arrays (momenta, FFTs)"),
        (("lattice.collocation", "action.lattice"), 2 * n_col * volume * 8, "collocation configurations"),
        # samples are streamed (LatticeFlow.sample(keep_fields=False)): per sample its weight, magnetisation, C(r)
        (("sampling.n",), n * (5 + min(shape) // 2) * 8, "per-sample weights and observables"),
        (("sampling.batch_size", "action.lattice"), 64 * min(g("sampling", "batch_size", 1000), n) * volume, "batch"),
        (("lattice.hmc_samples", "action.lattice"), hmc_n * volume * 8, "reference HMC configurations"),
    ]
    logv = max(math.log2(volume), 1.0)
    work = [
        (
            ("lattice.steps", "lattice.collocation", "action.lattice"),
            layers * n_col * (volume * logv * 50 + nb * nb),
            "the layer solves",
        ),
        (("sampling.n", "lattice.steps", "action.lattice"), n * layers * volume * logv * 50, "sampling"),
        (hmc_keys, hmc_work * 100 * volume * logv * 50, "the matched-base HMC"),
    ]
    if isinstance(data.get("solver"), dict):  # iterative layer solvers: epochs / steps over the system
        it = max(g("solver", "epochs", 600), g("solver", "warm_epochs", 600), g("solver", "max_steps", 100))
        work.append(
            (
                ("solver.epochs", "solver.warm_epochs", "solver.max_steps"),
                layers * it * n_col * nb * 4,
                "the layer fits",
            )
        )
    n_comp = len(data["action"].get("fields") or [None]) if isinstance(data["action"].get("fields"), list) else 1
    _add_smc_terms(data, volume * n_comp, layers, memory, work)
    _add_sampler_terms(data, shape, work)
    return memory, work


def _human(x: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if x < 1024 or unit == "PiB":
            return f"{x:.3g} {unit}"
        x /= 1024
    return f"{x:.3g} PiB"  # pragma: no cover


def check_resources(data: dict, where: str = "config", *, n: int | None = None, memory: int | None = None) -> None:
    """Raise :class:`ConfigError` if the run cannot fit in memory or would do more than :data:`WORK_LIMIT` work.

    Parameters
    ----------
    data
        A validated configuration.
    n
        A ``--n`` override of ``[sampling] n``.
    memory
        Bytes available (default :func:`available_memory`).
    """
    if n is not None:
        data = {**data, "sampling": {**data.get("sampling", {}), "n": n}}
    if isinstance(data.get("action"), dict) and "lattice" in data["action"]:
        mem_terms, work_terms = _lattice_terms(data)
    else:
        fields = data.get("action", {}).get("fields") if isinstance(data.get("action"), dict) else None
        mem_terms, work_terms = _zero_d_terms(data, len(fields) if isinstance(fields, list) else 1)
    limit = available_memory() if memory is None else memory
    settings, size, what = max(mem_terms, key=lambda x: x[1])
    if size > limit:
        raise ConfigError(
            f"{where}: the run cannot fit in memory: the {what} alone would need {_human(size)}, but "
            f"{_human(limit)} is available; make {_names(data, settings)} smaller"
        )
    settings, ops, what = max(work_terms, key=lambda x: x[1])
    if ops > WORK_LIMIT:
        raise ConfigError(
            f"{where}: the run would not end: {what} would take about {ops:.2g} floating-point operations "
            f"(the limit is {WORK_LIMIT:.0e}, days of CPU time); make {_names(data, settings)} smaller"
        )


def _names(data: dict, settings) -> str:
    """``[section] key = value`` for the given settings, those set in the configuration first."""
    given, default = [], []
    for s in settings:
        section, _, key = s.partition(".")
        table = data.get(section) if isinstance(data.get(section), dict) else {}
        if key and key in table:
            given.append(f"[{section}] {key} = {table[key]!r}")
        elif not key and table:
            given.append(f"[{section}]")
        elif key:
            default.append(f"[{section}] {key}")
    return " or ".join(given + default) or "the settings"
