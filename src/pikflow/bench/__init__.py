"""Benchmarks behind ``pikflow bench KIND``: measurements reported as ratios, never timed tests.

Each benchmark is registered in :data:`BENCHMARKS` with a function that adds its
command-line options and a function that runs it. The common options (``CONFIG``,
``--example``, ``--json``, ``--quiet``) are added by the CLI. A benchmark prints a
markdown table and, with ``--json FILE``, writes its numbers as JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """A benchmark of ``pikflow bench``: its help line, extra options, and runner ``run(args) -> dict``.

    ``config`` says whether it reads a 0-D ``CONFIG``/``--example`` (the lattice benchmark
    takes its own options instead, so its ``--help`` does not offer the 0-D examples).
    """

    help: str
    add_arguments: Callable
    run: Callable
    config: bool = True


#: name -> :class:`Benchmark`.
BENCHMARKS: dict[str, Benchmark] = {}
#: what a bare ``pikflow bench`` runs (PIK against HMC), when registered; else ``"speed"``.
DEFAULT = "hmc"


def register(name: str, help: str, *, config: bool = True):
    """Decorator for a module-level ``add_arguments`` function, pairing it with ``run`` (see ``_speed.py``)."""

    def wrap(add_arguments):
        def deco(run):
            BENCHMARKS[name] = Benchmark(help, add_arguments, run, config)
            return run

        return deco

    return wrap


def load_all() -> None:
    """Import the benchmark modules (each registers itself)."""
    from . import _hmc, _latsolve, _lattice, _multilevel, _scan, _scan_lattice, _smc, _solvers, _speed, _wells  # noqa: F401


__all__ = ["BENCHMARKS", "DEFAULT", "Benchmark", "load_all", "register"]
