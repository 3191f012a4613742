r"""The time schedule of a flow: where along the path the layers sit.

The flow moves fastest where :math:`p_t` changes fastest. A natural speed is the
thermodynamic (Fisher-Rao) one, :math:`L(t) = \sqrt{\mathrm{Var}_t(d\hat S_t/dt)}`: for a
straight path from a Gaussian to a deep well, :math:`L(0)` is 20-60 times :math:`L(1)`,
because the quartic term squeezes the base's tails at once; equally spaced RK4 steps
then overshoot there (the map folds or squashes the tails: a hole). Reparametrising the
path by :math:`\tau = t^p` (:meth:`pikflow.Path.reparametrised`) gives the speed
:math:`p\,t^{p-1} L(t^p)`. ``schedule="auto"`` picks :math:`p \in \{1, 1.5, 2\}`
minimising its maximum, and keeps :math:`p = 1` unless that lowers the maximum by at least
:data:`MIN_GAIN`. :math:`L` comes from exact quadrature, so this needs one field
component (otherwise :math:`p = 1`).
"""

from __future__ import annotations

import numpy as np

from .._errors import SolveError

POWERS = (1.0, 1.5, 2.0)
#: the power is changed from 1 only when the largest speed drops by at least this factor.
MIN_GAIN = 3.0


def thermodynamic_speed(path, times) -> np.ndarray:
    r""":math:`L(t) = \sqrt{\mathrm{Var}_t(d\hat S_t/dt)}` at ``times`` by quadrature (one component)."""
    from ..exact import reference_for

    ref = reference_for(path, n_grid=801)  # 4800 nodes: ample for a variance that only picks p
    out = []
    for x in times:
        m1 = ref.expectation(x, lambda p, x=x: ref.dsdt(x, p))
        m2 = ref.expectation(x, lambda p, x=x: ref.dsdt(x, p) ** 2)
        out.append(np.sqrt(max(m2 - m1 * m1, 0.0)))
    return np.asarray(out)


def choose_power(path, schedule) -> tuple[float, dict]:
    """The power :math:`p` of :math:`\\tau = t^p` for ``schedule`` (``"auto"``, ``"uniform"`` or a number)."""
    if schedule == "uniform":
        return 1.0, {"schedule": "uniform"}
    if schedule != "auto":
        if isinstance(schedule, bool) or not isinstance(schedule, (int, float)) or not schedule > 0:
            raise SolveError(f"schedule must be 'auto', 'uniform' or a positive power p (tau = t**p), got {schedule!r}")
        return float(schedule), {"schedule": "power"}
    if path.n_fields != 1:
        return 1.0, {"schedule": "auto", "reason": "several components: no quadrature for the speed"}
    tau = np.linspace(0.0, 1.0, 21)
    cached = getattr(path, "_speed_cache", None)
    if cached is not None:
        speed = cached
    else:
        try:
            speed = thermodynamic_speed(path, tau)
        except (ValueError, ArithmeticError, FloatingPointError):
            return 1.0, {"schedule": "auto", "reason": "the speed could not be computed by quadrature"}
        path._speed_cache = speed  # the path is immutable: solve it again without recomputing
    tt = np.linspace(0.0, 1.0, 401)
    peaks = {p: float(np.max(p * tt ** (p - 1) * np.interp(tt**p, tau, speed))) for p in POWERS}
    best = min(peaks, key=peaks.get)
    if peaks[best] * MIN_GAIN > peaks[1.0]:
        best = 1.0
    return best, {"schedule": "auto", "max_speed": {f"{p:g}": v for p, v in peaks.items()}}
