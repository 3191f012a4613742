"""The solver a ``[solver]`` table of the TOML configuration describes."""

from __future__ import annotations

from typing import Any

import lineax as lx

from .._errors import ConfigError, PikflowError
from ._direct import DirectSolver
from ._nonlinear import LevenbergMarquardtSolver
from ._train import AdamSolver

LINEAR_SOLVERS = {"qr": lx.QR, "svd": lx.SVD, "auto": lambda: lx.AutoLinearSolver(well_posed=False)}
#: kind -> (class, options it accepts)
OPTIONS = {
    "direct": (DirectSolver, ("linear_solver",)),
    "adam": (
        AdamSolver,
        (
            "model",
            "n_frequencies",
            "max_frequency",
            "width",
            "depth",
            "learning_rate",
            "epochs",
            "warm_learning_rate",
            "warm_epochs",
            "patience",
            "batch_size",
            "first_layers",
            "seed",
        ),
    ),
    "levenberg-marquardt": (
        LevenbergMarquardtSolver,
        ("n_frequencies", "max_frequency", "method", "rtol", "atol", "max_steps", "ridge"),
    ),
}
MODES = ("sequential", "parallel")
#: Options that shape a fitted basis or model; a lattice layer has a fixed basis, so they do not apply there.
BASIS_OPTIONS = ("model", "n_frequencies", "max_frequency", "width", "depth", "ridge")
#: ``[solver]`` options of each kind that apply to a lattice layer (:func:`~pikflow.solvers.solve_system`).
LATTICE_OPTIONS = {kind: tuple(o for o in opts if o not in BASIS_OPTIONS) for kind, (_, opts) in OPTIONS.items()}


def solver_from_config(table: dict[str, Any], n_fields: int, *, lattice: bool = False):
    """``(solver or None, mode)`` from a validated ``[solver]`` table; None means the default direct solver.

    ``lattice=True``: the solver of a lattice layer (a fixed basis, :func:`~pikflow.solvers.solve_system`);
    only the options of :data:`LATTICE_OPTIONS` apply, the mode is sequential,
    and the solver alone is returned (None: the direct SVD default).
    """
    kind = table.get("kind", "direct")
    if kind not in OPTIONS:
        raise ConfigError(f"[solver] kind must be one of {sorted(OPTIONS)}, got {kind!r}")
    mode = table.get("mode", "sequential")
    if mode not in MODES or (lattice and mode != "sequential"):
        allowed_modes = ["sequential"] if lattice else list(MODES)
        raise ConfigError(
            f"[solver] mode must be one of {allowed_modes}" + (" on a lattice" if lattice else "") + f", got {mode!r}"
        )
    cls, allowed = OPTIONS[kind]
    if lattice:
        allowed = LATTICE_OPTIONS[kind]
    extra = sorted(set(table) - set(allowed) - {"kind", "mode"})
    if extra:
        where = " on a lattice (a fixed basis)" if lattice else ""
        raise ConfigError(
            f"[solver] option(s) {extra} do not apply to kind = {kind!r}{where}; it takes {list(allowed)}"
        )
    if lattice:
        return _lattice_solver(kind, cls, {k: v for k, v in table.items() if k in allowed})
    opts = {k: v for k, v in table.items() if k in allowed}
    if kind == "direct":
        if "linear_solver" not in opts:
            return None, mode
        name = opts["linear_solver"]
        if name not in LINEAR_SOLVERS:
            raise ConfigError(f"[solver] linear_solver must be one of {sorted(LINEAR_SOLVERS)}, got {name!r}")
        return DirectSolver(LINEAR_SOLVERS[name]()), mode
    try:
        return cls(**opts), mode
    except PikflowError as err:
        raise ConfigError(f"[solver]: {err}") from None


def _lattice_solver(kind: str, cls, opts: dict):
    if kind == "direct":
        name = opts.get("linear_solver", "svd")
        if name not in LINEAR_SOLVERS:
            raise ConfigError(f"[solver] linear_solver must be one of {sorted(LINEAR_SOLVERS)}, got {name!r}")
        return None if name == "svd" else DirectSolver(LINEAR_SOLVERS[name]())
    try:
        return cls(**opts)
    except PikflowError as err:
        raise ConfigError(f"[solver]: {err}") from None
