r"""Saving and loading solved lattice flows (:class:`LatticeFlow`).

A saved flow is a directory in pikflow's one save format (``flow.json`` with
``space = "lattice"``, ``arrays.npz``, ``manifest.json``; :func:`pikflow.flow.write_flow_directory`),
like the 0-D :meth:`pikflow.Flow.save`:

* ``flow.json``: the format tag and version, the pikflow version, the lattice shape, the
  density as text (the unexpanded ``LatticeAction.source``, re-parsed by
  :class:`LatticeAction`), the couplings of the path as expressions in ``t``, the
  basis (each family's kind and constructor arguments), ``steps``, the per-layer
  reports and ``flow.info``;
* ``arrays.npz``: the coefficients :math:`a_j` of :math:`\Omega_t = \sum_j a_j T_j`
  (eqs. 32-34) at every stage, the base precision :math:`K_0(k)`, the spectral
  precision of a matched path :math:`\hat S_t = (1-t)\frac12\phi^TK_0\phi + t\hat S_1`
  and the precisions of smoothed-power families.
* ``manifest.json``: the SHA-256 and size of both files, verified on load; the directory
  is written atomically (a temporary sibling renamed into place).

Floating-point numbers inside expressions are stored with every digit (placeholders plus
exact decimal strings), so a loaded flow is the same program: for the same key it gives
bitwise-identical samples.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
from collections.abc import Mapping

import numpy as np
import sympy as sp
from mpmath.libmp import repr_dps, to_str

from .._errors import FlowFileError, PikflowError
from ..flow import LatticeFlow, read_flow_directory, register_flow_format, write_flow_directory

_PLACEHOLDER = "_pikflow_float{}"
_PLACEHOLDER_RE = re.compile(r"^_pikflow_float(\d+)$")


# ---------------------------------------------------------------- exact expression text
def _expr_to_spec(expr: sp.Expr) -> dict:
    """``{"text": str with placeholders, "floats": [[digits, precision], ...]}``, exact for every Float."""
    expr = sp.sympify(expr)
    floats = sorted(expr.atoms(sp.Float), key=lambda f: (f._prec, f._mpf_))
    table = {f: sp.Symbol(_PLACEHOLDER.format(i)) for i, f in enumerate(floats)}
    return {
        "text": sp.sstr(expr.xreplace(table), order="none"),
        "floats": [[to_str(f._mpf_, repr_dps(f._prec)), int(f._prec)] for f in floats],
    }


def _restore_floats(expr: sp.Expr, floats) -> sp.Expr:
    values = [sp.Float(digits, precision=int(prec)) for digits, prec in floats]
    table = {}
    for s in expr.free_symbols:
        m = _PLACEHOLDER_RE.match(str(s))
        if m:
            table[s] = values[int(m.group(1))]
    return expr.xreplace(table)


def _density_from_spec(spec: Mapping) -> sp.Expr:
    from ..action._density import parse_density

    return _restore_floats(parse_density(spec["text"]), spec["floats"])


def _coupling_from_spec(spec: Mapping) -> sp.Expr:
    from ..action._parse import as_expression

    return _restore_floats(as_expression(spec["text"], what="saved coupling"), spec["floats"])


# ---------------------------------------------------------------- basis families
def _family_spec(fam, i: int, arrays: dict) -> dict:
    """The family's :meth:`~LatticeFamily.spec`, its precision array moved to the npz file."""
    from ._basis import (
        FourierTwoPoint,
        LocalHermite,
        Magnetisation,
        SmoothedPowers,
        SmoothedProducts,
        SmoothedRidges,
    )

    stored = (FourierTwoPoint, Magnetisation, SmoothedPowers, SmoothedProducts, SmoothedRidges, LocalHermite)
    if type(fam) not in stored:
        raise FlowFileError(
            f"cannot save a basis family of type {type(fam).__name__}: only FourierTwoPoint, Magnetisation, "
            "SmoothedPowers, SmoothedProducts, SmoothedRidges and LocalHermite are stored; build the basis from those"
        )
    spec = fam.spec()
    if spec.get("precision") is not None:
        arrays[f"family{i}_precision"] = np.asarray(spec["precision"], dtype=float)
        spec["precision"] = f"family{i}_precision"
    return spec


def _family_from_spec(spec: Mapping, lattice, arrays) -> object:
    from ._basis import family_from_spec

    spec = dict(spec)
    if spec.get("precision"):
        spec["precision"] = arrays[spec["precision"]]
    return family_from_spec(spec, lattice)


def _path_spec(path, arrays: dict) -> dict:
    from ..action._path import t as T

    spec = {
        "lattice": list(path.lattice.shape),
        "density": _expr_to_spec(path.action.source),
        "couplings": {str(k): _expr_to_spec(v) for k, v in path.coupling_exprs.items()},
        "matched": path.spectral_precision is not None,
    }
    if path.action.field_names != ("phi",):
        spec["fields"] = list(path.action.field_names)
    if path.spectral_precision is not None:
        power = float(getattr(path, "time_power", 1.0))
        weight = sp.lambdify([T], path.spectral_weight, modules="numpy")
        nodes = np.linspace(0.0, 1.0, 7)
        if not np.allclose([float(weight(x)) for x in nodes], 1 - nodes**power, rtol=0, atol=1e-12):
            raise FlowFileError(
                f"cannot save a path with spectral weight {path.spectral_weight}: only LatticePath.matched "
                "paths (weight 1 - t, or 1 - t**p reparametrised) are stored"
            )
        if power != 1.0:
            spec["time_power"] = power
        arrays["path_spectral_precision"] = np.asarray(path.spectral_precision, dtype=float)
        spec["zero_mode"] = path.zero_mode
        if path.linear:
            spec["linear"] = path.linear
    return spec


def _path_from_spec(spec: Mapping, arrays):
    from ..action import LatticeAction, LatticePath

    action = LatticeAction(_density_from_spec(spec["density"]), list(spec["lattice"]), spec.get("fields"))
    couplings = {name: _coupling_from_spec(c) for name, c in spec["couplings"].items()}
    if spec["matched"]:
        values = {}
        for name, expr in couplings.items():
            if expr.free_symbols:
                raise ValueError(f"matched path with a t-dependent coupling {name} = {expr}")
            values[name] = float(expr)
        return LatticePath.matched(
            action,
            values,
            arrays["path_spectral_precision"],
            float(spec.get("zero_mode", 0.0)),
            float(spec.get("linear", 0.0)),
        ).reparametrised(float(spec.get("time_power", 1.0)))
    return LatticePath(action, couplings)


def _json_default(x):
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"flow.info holds a {type(x).__name__}, which is not JSON-serialisable")


# ---------------------------------------------------------------- public API
def save_lattice_flow(flow, directory: str | pathlib.Path) -> pathlib.Path:
    r"""Write a solved :class:`LatticeFlow` into ``directory`` (``flow.json`` and ``arrays.npz``).

    Stores everything needed to rebuild the flow of eqs. 32-34 exactly: the density and
    couplings (as text, floats with every digit), the lattice shape, the spectral
    precision of a matched path, the base precision, the basis families and their
    constructor arguments, the coefficients per stage, ``steps``, the layer reports and
    ``flow.info``. :func:`load_lattice_flow` reads it back; the loaded flow gives
    bitwise-identical samples for the same key.

    Parameters
    ----------
    flow
        A :class:`LatticeFlow` (from :func:`solve_lattice` or :func:`fit_lattice`).
    directory
        Created if needed, atomically: the files are written into a temporary sibling that
        then replaces ``directory`` (a kill leaves the previous flow or none), with a
        ``manifest.json`` of SHA-256 checksums that :func:`load_lattice_flow` verifies.

    Returns
    -------
    pathlib.Path
        The directory.

    Raises
    ------
    FlowFileError
        A basis family or path that cannot be stored, an expression that does not
        survive the round trip through text, or a directory that cannot be written.
    """
    from ..flow import LatticeFlow

    if not isinstance(flow, LatticeFlow):
        raise FlowFileError(f"save_lattice_flow needs a LatticeFlow, got {type(flow).__name__}")
    arrays: dict[str, np.ndarray] = {
        "coeffs": np.asarray(flow.coeffs, dtype=float),
        "base_precision": np.asarray(flow.base.precision, dtype=float),
    }
    meta = {
        "path": _path_spec(flow.path, arrays),
        "basis": [_family_spec(f, i, arrays) for i, f in enumerate(flow.basis.families)],
        "n_basis": int(flow.basis.n),
        "steps": int(flow.steps),
        "base_m0": float(flow.base.m0),
        "base_mean": float(flow.base.mean),
        "base_components": int(flow.base.components),
        "reports": [dataclasses.asdict(r) for r in flow.reports],
        "info": flow.info,
    }
    # Refuse to write what would not come back identical (exotic SymPy objects in the density).
    try:
        action = _path_from_spec(meta["path"], arrays).action
    except PikflowError as err:
        raise FlowFileError(f"cannot store the density {flow.path.action.source} as text: {err}") from None
    if action.expr != flow.path.action.expr:
        raise FlowFileError(
            f"the density {flow.path.action.source} does not survive the round trip through text "
            f"(re-read as {action.source}); write it with the density grammar's names only"
        )
    try:
        meta = json.loads(json.dumps(meta, default=_json_default))
    except (TypeError, ValueError) as err:
        raise FlowFileError(f"cannot write flow.info as JSON: {err}; keep numbers, strings, lists and dicts") from None
    return write_flow_directory(directory, "lattice", meta, arrays)


def load_lattice_flow(directory: str | pathlib.Path):
    """Read a lattice flow written by :func:`save_lattice_flow` (or :meth:`LatticeFlow.save`).

    Rebuilds the :class:`LatticeAction` from the stored density, the path (matched or
    not), the basis families, the Gaussian base and the :class:`LatticeFlow` with its
    coefficients, reports and ``info``.

    Raises
    ------
    FlowFileError
        A missing, corrupt or truncated file (checked against ``manifest.json``), another
        format version or field space, or arrays whose shapes do not fit the basis, lattice
        or number of steps. Version 1 lattice flows (``"format": "pikflow-lattice-flow"``)
        are still read.
    """
    from ..flow import GaussianLatticeBase, LatticeFlow, LatticeLayerReport

    how = "pikflow run CONFIG, or fit_lattice and LatticeFlow.save"
    meta, arrays = read_flow_directory(directory, "lattice", "a lattice flow", how)
    d = pathlib.Path(directory)
    try:
        path = _path_from_spec(meta["path"], arrays)
        from ._basis import LatticeBasis

        basis = LatticeBasis([_family_from_spec(s, path.lattice, arrays) for s in meta["basis"]])
        steps = int(meta["steps"])
        coeffs = arrays["coeffs"]
        if coeffs.shape != (2 * steps + 1, basis.n):
            raise ValueError(
                f"coefficients of shape {coeffs.shape}, but {steps} steps and {basis.n} basis terms need "
                f"{(2 * steps + 1, basis.n)}"
            )
        base = GaussianLatticeBase(
            arrays["base_precision"],
            float(meta.get("base_m0", 0.0)),
            float(meta.get("base_mean", 0.0)),
            int(meta.get("base_components", 1)),
        )
        if base.shape != path.field_shape:
            raise ValueError(f"base precision of shape {base.shape} for fields of shape {list(path.field_shape)}")
        reports = [LatticeLayerReport(**r) for r in meta["reports"]]
        info = dict(meta.get("info") or {})
    except FlowFileError:
        raise
    except Exception as err:  # noqa: BLE001  (JSON, missing keys, bad npz, shape mismatch, truncated file...)
        raise FlowFileError(
            f"cannot read the lattice flow in {d}: {type(err).__name__}: {err}; the files are damaged or "
            "incomplete: save the flow again"
        ) from None
    flow = LatticeFlow(path, basis, base, coeffs, steps, reports)
    flow.info = info
    return flow


# pikflow.load / AbstractFlow.load read lattice directories; LatticeFlow.save / LatticeFlow.load
register_flow_format("lattice", load_lattice_flow, cls=LatticeFlow, writer=save_lattice_flow)
