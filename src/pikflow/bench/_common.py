"""What every benchmark shares: reading the configuration, writing the JSON, couplings and HMC magnetisations."""

from __future__ import annotations

import json
import pathlib

from .._errors import ConfigError, PikflowError


def flow_inputs(args):
    """``(source, path, solve options, sampling options, observables)`` from ``CONFIG``/``--example``."""
    from ..cli import build, config_source

    data, source = config_source(args.config, args.example)
    return (source, *build(data))


def log_q_error(flow, seed: int, n: int) -> dict:
    """``log_q_error_rms`` and ``log_q_error_max`` of the continuous minus the exact log-density of ``flow``'s
    applied map on ``n`` samples (:meth:`~pikflow.flow.LatticeFlow.log_density_error`; ``None`` for ``n = 0``)."""
    import jax
    import numpy as np

    err = flow.log_density_error(jax.random.PRNGKey(seed), n) if n > 0 else None
    return {
        "log_q_error_rms": None if err is None else float(np.sqrt(np.mean(err**2))),
        "log_q_error_max": None if err is None else float(np.abs(err).max()),
    }


def write_json(args, result: dict) -> None:
    """Write ``result`` to ``--json FILE`` if given, with the ``device`` it ran on (kind, count, processes)."""
    if getattr(args, "json_file", None):
        from .._devices import device_info

        result = {**result, "device": device_info()}
        p = pathlib.Path(args.json_file)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(result, indent=2))
        print(f"wrote {p}")


def extra_couplings(items) -> dict[str, float]:
    """``--set NAME=VALUE`` options as ``{name: value}`` (a clear exit on a value that is not a number)."""
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--set takes NAME=VALUE with a number, got {item!r}") from None
    return out


def chain_series(M):
    """Concatenate the chains of ``pikflow.lattice.hmc(..., keep="magnetisation")`` into one series for
    ``chain_observables(..., chains=M.shape[0])``, which takes the chains as replica."""
    return M.reshape(-1) if M.ndim == 2 else M.reshape(-1, M.shape[-1])


def abs_m(M, volume: int):
    """:math:`|m| = |M|/V` of every chain and trajectory of ``pikflow.lattice.hmc(..., keep="magnetisation")``
    (the length of the vector :math:`M_a` for several components), chains first: the Gamma method's replica."""
    import numpy as np

    M = np.asarray(M)
    return (np.abs(M) if M.ndim == 2 else np.linalg.norm(M, axis=-1)) / volume


#: JAX's monitoring events of one compilation: tracing to a jaxpr, lowering to MLIR, XLA's compile.
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_compile_total = [0.0]


def _on_duration(event: str, seconds: float, **_) -> None:
    if event in COMPILE_EVENTS:
        _compile_total[0] += seconds


def compile_seconds() -> float:
    """Seconds this process has spent tracing, lowering and compiling JAX programs (``jax.monitoring``).

    The listener is registered on the first call; differences of two calls time the compilation in between.
    """
    if not getattr(compile_seconds, "_listening", False):
        import jax

        jax.monitoring.register_event_duration_secs_listener(_on_duration)
        compile_seconds._listening = True
    return _compile_total[0]


#: The lattice observables every bench reports (:func:`pikflow.lattice.chain_observables`' names).
OBSERVABLES = ("abs_m", "chi", "binder")

#: ``--chains auto``: (largest volume, chains) -- the HMC batch that measured cheapest per chain and trajectory
#: on 2 CPU cores (2-D phi^4, µs per trajectory and chain with 16 / 64 / 256 / 1024 chains: 9.3 / 7.5 / 4.8 / 4.5
#: at 16x16, 29.8 / 17.0 / 17.5 / 25.7 at 32x32, 69 / 71 / 105 / 155 at 64x64); larger volumes: 16.
AUTO_CHAINS = ((400, 256), (1600, 64))
#: ``--chains auto``: at least this many measured trajectories per chain (the Gamma method needs chains long
#: against tau_int; the 200 thermalisation trajectories of every chain are not counted).
AUTO_MIN_PER_CHAIN = 600


def chains_argument(value: str):
    """``--chains``, ``--leapfrog``: a positive integer or ``auto`` (argparse type)."""
    import argparse

    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'auto', got {value!r}")
    return n


def iterations_argument(text: str) -> int:
    """``--polish``: a whole number of Adam steps, 0 or more (refused before the fit, not after it)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"takes a number of Adam steps, 0 or more, got {text!r}")
    return value


def basis_preset_argument(value: str) -> str:
    """``--basis``: a preset name of :data:`pikflow.lattice.BASIS_PRESETS`."""
    import argparse

    from ..lattice import BASIS_PRESETS

    if value not in BASIS_PRESETS:
        raise argparse.ArgumentTypeError(f"one of {list(BASIS_PRESETS)}, not {value!r}")
    return value


def schedule_argument(value: str):
    """``--schedule``: ``auto``, ``uniform`` or a power p of the clock tau = t**p (1 <= p <= 4)."""
    import argparse

    if value in ("auto", "uniform"):
        return value
    try:
        power = float(value)
    except ValueError:
        power = float("nan")
    if not 1 <= power <= 4:
        raise argparse.ArgumentTypeError(f"'auto', 'uniform' or a power p from 1 to 4, not {value!r}")
    return power


def fourier_mass_argument(value: str):
    """``--fourier-mass``: a positive mu^2 or ``adaptive`` (the mass measured from the particles), checked by
    :func:`pikflow.samplers.check_fourier_mass`."""
    import argparse

    from ..samplers import ADAPTIVE_MASS, check_fourier_mass

    try:
        return check_fourier_mass(value if value == ADAPTIVE_MASS else float(value))
    except (ValueError, PikflowError):
        raise argparse.ArgumentTypeError(f"a positive mu^2 or {ADAPTIVE_MASS!r}, not {value!r}") from None


def cheapest_chains(volume: int) -> int:
    """HMC's cheapest batch of chains on a lattice of ``volume`` sites (:data:`AUTO_CHAINS`; 16 above them)."""
    return next((c for v, c in AUTO_CHAINS if volume <= v), 16)


def hmc_chains(chains, reference: int, volume: int) -> tuple[int, int]:
    """``(chains, trajectories per chain)`` of a reference HMC of about ``reference`` trajectories.

    ``chains="auto"``: :data:`AUTO_CHAINS` by volume, and at least :data:`AUTO_MIN_PER_CHAIN`
    trajectories per chain; a number: that many chains, at least 20 trajectories each.
    """
    if chains == "auto":
        n = cheapest_chains(volume)
        return n, max(reference // n, AUTO_MIN_PER_CHAIN)
    return int(chains), max(reference // int(chains), 20)


def replica_cost_correction(replicas: int) -> dict[str, float]:
    r"""Factors that make a cost ratio at equal errors unbiased when its denominator's error comes from replicas.

    A ratio "X's cost / the replicated sampler's cost at equal errors" divides by the replicas' variance
    estimate :math:`s^2`, and for :math:`R` replicas :math:`s^2 \sim \sigma^2\chi^2_\nu/\nu` with
    :math:`\nu = R - 1`, so :math:`E[\sigma^2/s^2] = \nu/(\nu - 2)`: 3 with 4 replicas (and an infinite
    variance: one point whose :math:`s` comes out small dominates a sum), 1.4 with 8, 1.15 with 16.
    ``mean``: :math:`(\nu - 2)/\nu`, the factor for a ratio or a sum of ratios (NaN below 4 replicas);
    ``median``: :math:`\mathrm{median}(\chi^2_\nu)/\nu`, the factor for the median of such ratios.
    """
    from scipy.stats import chi2

    nu = int(replicas) - 1
    return {
        "mean": (nu - 2) / nu if nu > 2 else float("nan"),
        "median": float(chi2.median(nu)) / nu if nu > 0 else float("nan"),
    }
