r"""Paths of actions :math:`\hat S_t`, :math:`t \in [0, 1]` (paper eqs. 22a-b).

A :class:`Path` is an action whose couplings are functions of the RG time ``t``:
linear interpolation between two points (eq. 22b) or any expression in ``t`` the user
writes. Everything the kernel equation needs is derived here, symbolically, once:
:math:`d\hat S_t/dt` and :math:`\partial \hat S_t`. ``Path(action, ...)`` of an action with
a geometry (``action.lattice`` set) is the path class of that space, a subclass
(:class:`~pikflow.action.LatticePath`), registered by its package with
:func:`register_path_class` (``import pikflow`` registers the lattice one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import sympy as sp

from .._errors import ActionError
from ._action import Action, by_name, is_even
from ._far import far_values
from ._parse import as_expression, as_mapping

#: The RG-time symbol used by every path.
t = sp.Symbol("t", real=True)

#: The :class:`Path` subclass of each geometry type (``action.lattice``'s), filled by :func:`register_path_class`.
_PATH_CLASSES: dict[type, type] = {}


def register_path_class(geometry: type, cls: type) -> None:
    """Make ``Path(action, ...)`` build a ``cls`` for an action whose ``lattice`` is a ``geometry``.

    The space's package registers its path class on import (the symbolic layer imports no later stage).
    """
    if not (isinstance(cls, type) and issubclass(cls, Path)):
        raise TypeError(f"a path class must subclass Path, got {cls!r}")
    _PATH_CLASSES[geometry] = cls


def clock(power) -> sp.Expr | None:
    r""":math:`\tau = t^p` of :meth:`Path.reparametrised` (``None`` for :math:`p = 1`), the power checked."""
    power = float(power)
    if not (np.isfinite(power) and power > 0):
        raise ActionError(f"the time power must be a positive number, got {power!r}")
    if power == 1.0:
        return None
    return t ** sp.Float(power) if power != int(power) else t ** int(power)


class Path:
    r"""A path of actions :math:`\hat S_t(\phi)` from a base (``t = 0``) to a target (``t = 1``).

    Parameters
    ----------
    action
        The action whose couplings move along the path.
    couplings
        For every coupling of ``action``: a number (constant), a pair
        ``(start, end)`` (linear in ``t``, eq. 22b), or an expression (SymPy or string)
        in the symbol ``t``.

    Examples
    --------
    >>> import sympy as sp
    >>> phi, m2, lam = sp.symbols("phi m2 lam")
    >>> S = Action(m2 / 2 * phi**2 + lam / 4 * phi**4, fields=[phi])
    >>> path = Path.linear(S, start={m2: 1.0, lam: 0.0}, end={m2: -2.0, lam: 0.5})
    >>> path.dsdt
    -1.5*phi**2 + 0.125*phi**4
    """

    def __new__(cls, *args, **kwargs):
        action = args[0] if args else kwargs.get("action")
        geometry = getattr(action, "lattice", None)
        if cls is Path and geometry is not None and isinstance(action, Action):
            space = _PATH_CLASSES.get(type(geometry))
            if space is None:
                raise ActionError(
                    f"no path class is registered for a {type(geometry).__name__}: register one with "
                    "pikflow.action.register_path_class (a Lattice geometry has LatticePath)"
                )
            return object.__new__(space)
        return super().__new__(cls)

    def __init__(self, action: Action, couplings: Mapping[sp.Symbol | str, object] | None = None):
        self._bind(action, couplings)
        self.expr: sp.Expr = action.expr.xreplace(self.coupling_exprs)
        extra = self.expr.free_symbols - set(action.fields) - {t}
        if extra:
            raise ActionError(f"the path still depends on unknown symbol(s) {sorted(map(str, extra))}")
        self.dsdt: sp.Expr = sp.diff(self.expr, t)
        self.gradient: list[sp.Expr] = [sp.diff(self.expr, f) for f in self.fields]

    def _bind(self, action: Action, couplings: Mapping | None) -> None:
        """Check ``action`` and give each of its couplings its expression in ``t`` (every space's path)."""
        if not isinstance(action, Action):
            raise ActionError(f"{type(self).__name__} needs an Action, got {type(action).__name__}")
        if t in action.fields or "t" in map(str, action.fields):
            raise ActionError("'t' is the RG time of the path and cannot be a field name; rename the field")
        couplings = as_mapping(couplings, what="couplings")
        self.action = action
        self.coupling_exprs: dict[sp.Symbol, sp.Expr] = {}
        self._linear: dict[str, tuple[float, float]] = {}
        for name, value in couplings.items():
            sym = action.coupling(name)
            self.coupling_exprs[sym] = self._coupling_expression(str(sym), value)
        missing = [str(c) for c in action.couplings if c not in self.coupling_exprs]
        if missing:
            raise ActionError(self._missing_message(missing, [str(c) for c in self.coupling_exprs]))

    def _missing_message(self, missing: list[str], given: list[str]) -> str:
        return _missing_message(missing, self.action, given)

    @property
    def lattice(self):
        """The geometry of the path's field space: ``None`` in 0-D (``action.lattice``)."""
        return self.action.lattice

    def _coupling_expression(self, name: str, value: object) -> sp.Expr:
        expr, ends = coupling_expression(name, value)
        if ends is not None:
            self._linear[name] = ends
        return expr

    @classmethod
    def linear(cls, action: Action, start: Mapping, end: Mapping) -> Path:
        r"""Couplings linear in ``t`` from ``start`` to ``end`` (paper eq. 22b)."""
        start = {str(k): v for k, v in as_mapping(start, what="start").items()}
        end = {str(k): v for k, v in as_mapping(end, what="end").items()}
        unknown = sorted(set(end) - set(start)) + sorted(set(start) - set(end))
        if unknown:
            raise ActionError(f"coupling(s) {unknown} are given at one end of the path only: give both start and end")
        return cls(action, {k: (start[k], end[k]) for k in start})

    @classmethod
    def from_expression(cls, expr: sp.Expr | str, fields: Iterable[sp.Symbol | str]) -> Path:
        r"""A path given directly as :math:`\hat S_t(\phi)`, an expression in the fields and ``t``."""
        expr = as_expression(expr, what="path action")
        fields = [fields] if isinstance(fields, (str, sp.Symbol)) else list(fields)
        if "t" in map(str, fields):
            raise ActionError("'t' is the RG time of the path and cannot be a field name; rename the field")
        has_t = "t" in map(str, expr.free_symbols)
        return cls(Action(expr, fields=fields, couplings=["t"] if has_t else []), {"t": t} if has_t else {})

    # ------------------------------------------------------------------ properties
    @property
    def fields(self) -> tuple[sp.Symbol, ...]:
        """The field components."""
        return self.action.fields

    @property
    def n_fields(self) -> int:
        """Number of real field components."""
        return self.action.n_fields

    def at(self, time: float) -> sp.Expr:
        r""":math:`\hat S_t` at a fixed time, as a SymPy expression in the fields."""
        return self.expr.xreplace({t: sp.Float(time)})

    def is_z2_symmetric(self) -> bool:
        r"""Whether every :math:`\hat S_t` is even under :math:`\phi \to -\phi`."""
        return is_even(self.expr, self.fields)

    def is_rotation_invariant(self) -> bool:
        r"""Whether every :math:`\hat S_t` is :math:`O(n)` invariant.

        That is :math:`(\phi_a\partial_b - \phi_b\partial_a)\hat S_t = 0` for all pairs.
        """
        f, g = self.fields, self.gradient
        return self.n_fields > 1 and all(
            sp.simplify(sp.expand(f[a] * g[b] - f[b] * g[a])) == 0
            for a in range(self.n_fields)
            for b in range(a + 1, self.n_fields)
        )

    def reparametrised(self, power: float) -> Path:
        r"""The same actions along a new clock: :math:`\hat S'_t = \hat S_{\tau(t)}`, :math:`\tau = t^{p}`.

        Base and target are unchanged (:math:`\tau(0) = 0`, :math:`\tau(1) = 1`); with
        :math:`p > 1` the early times, where the flow moves fastest, get more layers.
        """
        tau = clock(power)
        if tau is None:
            return self
        return Path(self.action, {k: v.xreplace({t: tau}) for k, v in self.coupling_exprs.items()})

    def spec(self) -> dict:
        """A JSON-serialisable description from which :meth:`from_spec` rebuilds the path (a lattice path's has
        its ``lattice`` shape)."""
        return {
            "action": str(self.action.expr),
            "fields": [str(f) for f in self.fields],
            "couplings": {
                str(k): list(self._linear[str(k)]) if str(k) in self._linear else str(v)
                for k, v in self.coupling_exprs.items()
            },
        }

    @classmethod
    def from_spec(cls, spec: Mapping) -> Path:
        """Rebuild a path from :meth:`spec`."""
        try:
            fields = list(spec["fields"])
            lattice = spec.get("lattice")
            action = Action(spec["action"], fields=fields, couplings=list(spec["couplings"]), lattice=lattice)
            return cls(action, dict(spec["couplings"]))
        except KeyError as err:
            raise ActionError(f"path description lacks the entry {err}") from None

    # ------------------------------------------------------------------ checks
    def check_normalisable(self, times: Sequence[float] | None = None, *, seed: int = 0) -> None:
        r"""Raise :class:`ActionError` unless every :math:`\hat S_t` grows to :math:`+\infty` far out.

        :math:`e^{-\hat S_t}` must be normalisable at every time of the path. Checked
        numerically: along the coordinate axes and 32 random directions, at radii
        10, 100 and 1000, the action must increase and exceed its value at the origin by
        more than 50.
        """
        times = np.linspace(0.0, 1.0, 21) if times is None else np.asarray(times, dtype=float)
        n = self.n_fields
        rng = np.random.default_rng(seed)
        dirs = (
            np.concatenate([np.eye(n), -np.eye(n), _unit(rng.normal(size=(32, n)))])
            if n > 1
            else np.array([[1.0], [-1.0]])
        )
        radii = np.array([0.0, 10.0, 100.0, 1000.0])
        for time in times:
            pts = radii[:, None, None] * dirs[None]  # (radius, direction, field)
            # cosh - sinh cancelled symbolically, float64 NaN evaluated again exactly (pikflow.action._far)
            vals = far_values(self.at(time), list(self.fields), list(np.moveaxis(pts, -1, 0)))  # 0 * inf drops out
            undefined = np.isnan(vals)  # log or sqrt of a negative field: the density is not real there
            vals = np.where(undefined, -np.inf, vals)
            far = vals[1:]
            with np.errstate(invalid="ignore"):  # inf - inf: an action that overflows to +inf far out still grows
                steps_up = (np.diff(far, axis=0) > 0) | (np.isposinf(far[1:]) & np.isposinf(far[:-1]))
                grows = steps_up.all(axis=0) & (vals[-1] - vals[0] > 50.0)
            if not grows.all():
                u = dirs[np.argmin(grows)]
                axis = np.flatnonzero(np.abs(u) > 1e-12)
                fix = (  # NaN already at radius 10 along a failing direction: log or sqrt of a negative, not overflow
                    "Give an action that is real for every field value (e.g. log(1 + phi**2) instead of log(phi))."
                    if undefined[1, ~grows].any()
                    else "Make the highest power positive (e.g. lam > 0)."
                )
                raise ActionError(
                    f"the action at t = {time:.3g}, {self.at(time)}, is not bounded below / does not grow for "
                    f"{_direction_name(u, self.fields)}: exp(-S_t) is not normalisable. "
                    + fix
                    + self.action.inference_hint(self.fields[int(axis[0])] if len(axis) == 1 else None)
                )

    def gaussian_base(self) -> tuple[np.ndarray, np.ndarray]:
        r"""Mean and precision matrix :math:`K` of the base :math:`\hat S_0 = \tfrac12 (\phi-\mu)^T K (\phi-\mu) + c`.

        Raises :class:`ActionError` if :math:`\hat S_0` is not a normalisable Gaussian.
        """
        s0 = sp.expand(self.at(0.0))
        try:
            poly = sp.Poly(s0, *self.fields)
            ok = poly.total_degree() <= 2 and not (s0.free_symbols - set(self.fields))
        except sp.PolynomialError:
            ok = False
        if not ok:
            raise ActionError(
                f"the base action S_0 = {s0} is not quadratic in the fields, so it cannot be sampled exactly: "
                "choose a path whose start point is Gaussian (e.g. lam = [0, ...])"
            )
        hess = np.array([[float(sp.diff(s0, a, b)) for b in self.fields] for a in self.fields])
        grad0 = np.array([float(sp.diff(s0, a).xreplace({f: 0 for f in self.fields})) for a in self.fields])
        if not np.all(np.linalg.eigvalsh(hess) > 0):
            raise ActionError(
                f"the base action S_0 = {s0} is a Gaussian with a non-positive mass matrix {hess.tolist()}: "
                "exp(-S_0) is not normalisable; make the start mass positive"
            )
        return -np.linalg.solve(hess, grad0), hess

    def __repr__(self) -> str:
        return f"Path({self.expr}, fields={list(self.fields)})"


def _missing_message(missing: list[str], action: Action, given: list[str]) -> str:
    """The symbols of an action that are neither fields nor couplings with a value, with a likely fix."""
    import difflib

    known = [str(f) for f in action.fields] + given
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        if close:
            hints.append(f"{name!r} looks like {close[0]!r}")
        elif not name.isascii():
            hints.append(f"{name!r} is not an ASCII name (a pasted Unicode letter?)")
    hint = f" ({'; '.join(hints)}: if misspelt, correct the action)" if hints else ""
    return (
        f"symbol(s) {missing} in the action are neither fields {[str(f) for f in action.fields]} nor couplings with "
        f"a value on the path {sorted(given)}{hint}. Give each coupling a number, [start, end] or an expression in t "
        "([path] in a configuration), or list it among the fields ([action] fields = [...])"
    )


def _direction_name(u: np.ndarray, fields: Sequence[sp.Symbol]) -> str:
    """A direction in field space in words: ``phi -> +inf`` along an axis, else the fields' proportions."""
    nonzero = np.flatnonzero(np.abs(u) > 1e-12)
    if len(nonzero) == 1:
        i = int(nonzero[0])
        rest = " (the other fields at 0)" if len(fields) > 1 else ""
        return f"{fields[i]} -> {'+' if u[i] > 0 else '-'}inf{rest}"
    parts = ", ".join(f"{f} = {c:+.3g} r" for f, c in zip(fields, u, strict=True))
    return f"{parts} with r -> +inf"


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def coupling_expression(name: str, value: object) -> tuple[sp.Expr, tuple[float, float] | None]:
    """A coupling of a path as an expression in ``t``, and its ``(start, end)`` if it is linear in ``t``.

    ``value`` is ``[start, end]`` (linear in ``t``, paper eq. 22b), a number (constant), an
    expression (string or SymPy) in ``t`` only, or knots ``[[0, v0], [t1, v1], ..., [1, vK]]``
    (piecewise linear through them: e.g. a preparatory segment from a Gaussian, then a
    physical segment of a parameter scan). Shared by :class:`Path` and the lattice paths.
    """
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, (tuple, list)) for v in value):
        return piecewise_linear(name, value), None
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ActionError(f"coupling {name!r}: give [start, end], got {value!r}")
        try:
            a, b = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ActionError(f"coupling {name!r}: start and end must be numbers, got {value!r}") from None
        if not (np.isfinite(a) and np.isfinite(b)):
            raise ActionError(f"coupling {name!r}: start and end must be finite, got {value!r}")
        return (sp.Float(a) + t * (sp.Float(b) - sp.Float(a)) if a != b else sp.Float(a)), (a, b)
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
        if not np.isfinite(value):
            raise ActionError(f"coupling {name!r} must be finite, got {value!r}")
        return sp.Float(float(value)), (float(value), float(value))
    expr = as_expression(value, what=f"coupling {name!r}")
    bad = {s for s in expr.free_symbols if str(s) != "t"}
    if bad:
        raise ActionError(f"coupling {name!r} = {expr} may depend on t only, not on {sorted(map(str, bad))}")
    return by_name(expr, [t]), None


def piecewise_linear(name: str, knots) -> sp.Expr:
    """The piecewise-linear coupling through ``knots`` ``[[t, value], ...]`` from ``t = 0`` to ``t = 1``."""
    try:
        pts = [(float(a), float(b)) for a, b in knots]
    except (TypeError, ValueError):
        raise ActionError(f"coupling {name!r}: knots must be pairs [t, value] of numbers, got {knots!r}") from None
    ts = [a for a, _ in pts]
    if len(pts) < 2 or ts[0] != 0.0 or ts[-1] != 1.0 or any(b <= a for a, b in zip(ts, ts[1:], strict=False)):
        raise ActionError(f"coupling {name!r}: knots [[t, value], ...] need t increasing from 0 to 1, got t = {ts}")
    if not all(np.isfinite(v) for _, v in pts):
        raise ActionError(f"coupling {name!r}: knot values must be finite, got {knots!r}")
    pieces = []
    for (t0, v0), (t1, v1) in zip(pts, pts[1:], strict=False):
        line = sp.Float(v0) + (t - sp.Float(t0)) * sp.Float((v1 - v0) / (t1 - t0))
        pieces.append((line, t < sp.Float(t1)) if t1 < 1.0 else (line, True))
    return sp.Piecewise(*pieces)
