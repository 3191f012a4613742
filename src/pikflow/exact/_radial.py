r"""Exact references of :math:`O(N)`-invariant 0-D models by radial quadrature (numpy only).

For an action that depends on :math:`r = |\phi|` only, :math:`\phi\in\mathbb R^N`, polar
coordinates give the radial density :math:`p_t(r) \propto r^{N-1} e^{-S_t(r)}` on
:math:`r \ge 0` and

.. math:: Z_t = \int d^N\phi\, e^{-S_t} = |S^{N-1}| \int_0^\infty r^{N-1} e^{-S_t(r)}\, dr,
          \qquad |S^{N-1}| = 2\pi^{N/2}/\Gamma(N/2).

Any :math:`O(N)`-invariant observable is a function of :math:`r`; for the components,
:math:`\langle\phi_a^2\rangle = \langle r^2\rangle/N` and :math:`\langle\phi_a\rangle = 0`.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from .._errors import ActionError

__all__ = ["RadialReference", "radial_reference"]

_GL_X, _GL_W = np.polynomial.legendre.leggauss(6)


class RadialReference:
    r"""Radial quadrature of :math:`r^{N-1} e^{-S_t(r)}` on :math:`[0, R_t]` (6-point Gauss-Legendre panels).

    ``action(t, r)`` is :math:`S_t` on the ray :math:`\phi = r e_1`, numpy-vectorised in ``r``.
    :math:`R_t` is where :math:`S_t - (N-1)\log r` exceeds its minimum by ``tail_cut`` (80).
    """

    tail_cut = 80.0

    def __init__(self, action, n_fields: int, *, n_grid: int = 20001):
        if int(n_fields) != n_fields or n_fields < 1:
            raise ValueError(f"n_fields must be a positive integer, got {n_fields!r}")
        self.action, self.n_fields, self.n_grid = action, int(n_fields), int(n_grid)
        self.log_sphere = math.log(2.0) + 0.5 * n_fields * math.log(math.pi) - math.lgamma(0.5 * n_fields)
        self._cache: dict = {}

    def _effective(self, t, r):
        return np.asarray(self.action(t, r), dtype=float) - (self.n_fields - 1) * np.log(r)

    def _layer(self, t):
        t = float(t)
        if t not in self._cache:
            for k in range(15):
                r = np.linspace(0, 2.0**k, 4001)[1:]
                s = self._effective(t, r)
                if s[-1] - s.min() > self.tail_cut:
                    upper = r[min(np.flatnonzero(s - s.min() <= self.tail_cut)[-1] + 1, r.size - 1)]
                    break
            else:
                raise ValueError(f"r^(N-1) exp(-S_t(r)) at t={t} is not normalisable within r < {2.0**14:g}")
            edges = np.linspace(0.0, upper, self.n_grid)
            half = 0.5 * np.diff(edges)[:, None]
            nodes = edges[:-1, None] + half * (1.0 + _GL_X)
            s = self._effective(t, nodes)
            s_min = float(s.min())
            wexp = half * _GL_W * np.exp(-(s - s_min))
            self._cache[t] = (nodes, wexp, float(wexp.sum()), s_min)
        return self._cache[t]

    def expectation(self, t, fn) -> float:
        r""":math:`\langle f(r)\rangle_t` for a numpy function ``fn`` of the radius."""
        nodes, wexp, z, _ = self._layer(t)
        return float((wexp * fn(nodes)).sum() / z)

    def log_z(self, t) -> float:
        r""":math:`\log Z_t = \log\int d^N\phi\, e^{-S_t}` (the normalisation of the importance weights)."""
        _, _, z, s_min = self._layer(t)
        return float(np.log(z) - s_min + self.log_sphere)


def radial_reference(path) -> RadialReference:
    """The :class:`RadialReference` of an :math:`O(N)`-invariant path (its action on the ray ``phi = r e_1``)."""
    if path.n_fields < 2 or not path.is_rotation_invariant():
        raise ActionError("radial references need an O(N)-invariant path with several field components")
    r = sp.Symbol("r", positive=True)
    first, *rest = path.fields
    on_ray = path.expr.xreplace({first: r, **{f: sp.Integer(0) for f in rest}})
    tsym = next((s for s in path.expr.free_symbols if str(s) == "t"), sp.Symbol("t"))
    fn = sp.lambdify([tsym, r], on_ray, modules=["scipy", "numpy"])
    return RadialReference(lambda t, x: np.broadcast_to(fn(t, x), np.shape(x)).astype(float), path.n_fields)
