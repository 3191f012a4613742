r"""Ridge terms: clipped squares of signed sums of smoothed fields and of the zero mode (:class:`SmoothedRidges`).

The smoothed powers and products (:mod:`._basis_smoothed`) are functions of one smoothed field
:math:`\psi_s` at a site, or products of two. Near a critical point the residual of eq. 34 that
they leave (about a fifth of the right-hand side's fluctuation at :math:`t = 1`, whatever the
lattice size) has a large part in functions of *combinations* of scales: the field at a short
scale relative to, or together with, its longer-range average and the magnetisation. A ridge
term is a function of one such combination,

.. math::

    T_j = \sum_n q_c\big(u_j(n)\big), \qquad
    u_j = \sum_s W_{js}\,\frac{\psi_s}{\sigma_s} + W_{jm}\,\frac{m}{\sigma_m},

with :math:`\sigma_s` (:math:`\sigma_m`) the standard deviation of :math:`\psi_s` (of the
magnetisation :math:`m`) under the Gaussian of ``precision``, and the clipped square :math:`q_c`
(:func:`ridge_function`: :math:`u^2 - u^4/6c^2` for :math:`|u| \le c`, a straight line beyond, so
the velocity stays bounded; :math:`c = 1.5`). The default directions :math:`W` are every sum and difference
of two scales and of each scale with :math:`m`: 20 terms on 4 scales. With the smoothing
:math:`S_s` (symmetric) and :math:`m = \frac1V\sum_n\phi_n`,

.. math::

    \partial T_j = \sum_s \frac{W_{js}}{\sigma_s} S_s\,q_c'(u_j)
                   + \frac{W_{jm}}{V\sigma_m}\sum_n q_c'(u_j(n)), \qquad
    \Delta T_j = \kappa_j \sum_n q_c''(u_j(n)),

where :math:`\kappa_j = \sum_{ab}\hat W_{ja}\hat W_{jb}\,h_{ab}` with the normalised directions
:math:`\hat W` and the filters' overlaps :math:`h_{ab} = \frac1V\sum_k \bar f_a(k)\bar f_b(k)` (the zero
mode's filter is :math:`\delta_{k,0}`; :math:`\bar f(k) = (f(k) + f(-k))/2`, what the real smoothing
applies). Measured (the lattice guide, "Ridge terms"): at :math:`(m^2, \lambda) = (-2, 2)` they lower
the relative residual of eq. 34 at :math:`t = 1` from 0.33 to 0.17 on target configurations (16×16) and lift
the flow's ESS/N from 0.74-0.84 to 0.91-0.94 (16×16), from 0.30-0.37 to 0.52-0.66 (32×32) and from
0.03-0.05 to 0.26-0.34 (64×64).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from .._errors import BasisError
from ..action._geometry import Lattice
from ._basis_smoothed import SMOOTHINGS, SmoothedPowers
from ._basis_spectral import LatticeFamily, site_sum
from ._separable import hermitian_part

#: Default width :math:`c` of the ridge terms' clipped squares (:func:`ridge_function`), in units of the
#: normalised fields (measured: 1.5 left the residual of eq. 34 at 0.171, 2 at 0.206, 3 at 0.268).
RIDGE_WIDTH = 1.5


def ridge_function(u, c):
    r""":math:`(q, q', q'')` of the ridge terms' clipped square :math:`q_c`; :math:`v = \mathrm{clip}(u, -c, c)`:

    .. math::  q_c(u) = v^2 - \frac{v^4}{6c^2} + \frac{4c}{3}\,(|u| - |v|), \qquad
               q_c' = v\Big(2 - \frac{2v^2}{3c^2}\Big), \qquad q_c'' = 2 - \frac{2v^2}{c^2}.

    A square with a quartic correction inside :math:`|u| \le c` and a straight line outside, joined with
    two continuous derivatives (:math:`q_c'' = 0` at :math:`|u| = c`): the velocity it gives is bounded. No
    division, square root or exponential: at 16x16 an evaluation with the 20 default terms cost 1.6 times
    one without them, against 2.3 times with the tamed square :math:`u^2(1 + u^2/c^2)^{-1/2}`, whose residual
    of eq. 34 it matches (0.171 against 0.170 at 16x16 :math:`(-2, 2)`, the lattice guide, "Ridge terms").
    """
    v = jnp.clip(u, -c, c)
    v2 = v * v
    inv = 1.0 / (c * c)
    q = v2 - v2 * v2 * (inv / 6.0) + (4.0 * c / 3.0) * (jnp.abs(u) - jnp.abs(v))
    return q, v * (2.0 - (2.0 / 3.0) * inv * v2), 2.0 - 2.0 * inv * v2


def pair_directions(n_scales: int, zero_mode: bool = True) -> np.ndarray:
    r"""The default ridge directions: :math:`\hat\psi_a \pm \hat\psi_b` for every pair of scales :math:`a < b`, then
    :math:`\hat\psi_a \pm \hat m` for every scale (``zero_mode``); shape ``(terms, n_scales + zero_mode)``."""
    rows = []
    for a, b in itertools.combinations(range(n_scales), 2):
        for sign in (1.0, -1.0):
            w = np.zeros(n_scales + zero_mode)
            w[a], w[b] = 1.0, sign
            rows.append(w)
    if zero_mode:
        for a in range(n_scales):
            for sign in (1.0, -1.0):
                w = np.zeros(n_scales + 1)
                w[a], w[n_scales] = 1.0, sign
                rows.append(w)
    return np.asarray(rows).reshape(-1, n_scales + zero_mode)


class SmoothedRidges(LatticeFamily):
    r"""Clipped squares of signed sums of normalised smoothed fields and the magnetisation (see the module docstring).

    Parameters
    ----------
    lattice
        The lattice.
    scales
        Smoothing scales :math:`s` of :math:`\psi_s = e^{-s(K - K_{\min})}\phi` (as :class:`SmoothedPowers`).
    precision
        :math:`K(k)` of the base: it sets the smoothing (unless ``smoothing="lattice"``) and the widths
        :math:`\sigma_s`, :math:`\sigma_m`. Default: the free lattice :math:`\hat k^2 + 1`.
    width
        The width :math:`c` of every term's clipped square (default :data:`RIDGE_WIDTH`).
    zero_mode
        Include the magnetisation as one more coordinate of the directions.
    smoothing
        ``"precision"`` or ``"lattice"`` (as :class:`SmoothedPowers`).
    directions
        ``(terms, len(scales) + zero_mode)`` coefficients :math:`W` on the normalised fields; default
        :func:`pair_directions`.
    """

    kind = "smoothed_ridges"
    #: Lattice sites per compiled push call (:func:`pikflow.flow.push_batch`): the 20 terms per site of these
    #: families take more cache than the smoothed powers' (measured at 32x32: 104-107 us an evaluation in
    #: batches of 32 configurations against 228-232 in 64-128; at 64x64 229 in 8, 285 in 16).
    push_sites = 2**15

    def __init__(
        self,
        lattice: Lattice,
        scales: Sequence[float],
        *,
        precision=None,
        width: float = RIDGE_WIDTH,
        zero_mode: bool = True,
        smoothing: str = "precision",
        directions=None,
    ):
        if smoothing not in SMOOTHINGS:
            raise BasisError(f"smoothing must be one of {list(SMOOTHINGS)}, got {smoothing!r}")
        if not (isinstance(width, (int, float)) and width > 0):
            raise BasisError(f"the ridge width must be a positive number, got {width!r}")
        if len(scales) == 0:
            raise BasisError("ridge terms need at least one smoothing scale")
        self.lattice = lattice
        self.symmetry = None
        self.components = 1
        self.smoothing = smoothing
        # the filters, h and sigma of the smoothed powers on the same scales: one smoothing, shared when fused
        powers = SmoothedPowers(lattice, scales, (2,), precision=precision, tame=None, smoothing=smoothing)
        self.scales, self.precision = powers.scales, powers.precision
        self.filters = powers.filters
        # what the real transforms apply is each filter's Hermitian part: overlaps and widths from it
        F = np.stack([hermitian_part(f) for f in np.asarray(powers.filters)])
        K = np.asarray(lattice.khat2()) + 1.0 if precision is None else np.asarray(powers.precision)
        G = hermitian_part(1.0 / K)
        self.zero_mode = bool(zero_mode)
        if self.zero_mode:
            zm = np.zeros_like(F[:1])
            zm[(0,) * (1 + lattice.d)] = 1.0
            F = np.concatenate([F, zm])
        sigma = np.sqrt(np.mean(F**2 * G, axis=tuple(range(1, F.ndim))))
        n_in = len(self.scales) + self.zero_mode
        W = pair_directions(len(self.scales), self.zero_mode) if directions is None else np.asarray(directions, float)
        if W.ndim != 2 or W.shape[1] != n_in or len(W) == 0 or not np.all(np.isfinite(W)):
            raise BasisError(
                f"ridge directions must be a finite (terms, {n_in}) array (scales{' + zero mode' if zero_mode else ''})"
                f", got shape {list(W.shape)}"
            )
        self.directions = W
        self.width = float(width)
        #: the directions on the normalised fields, ``(terms, scales + zero_mode)``
        self.weights = W / sigma[None]
        flat = F.reshape(len(F), -1)
        overlaps = flat @ flat.T / flat.shape[1]
        #: :math:`\kappa_j`: the Laplacian factor of each term
        self.kappa = np.einsum("ra,ab,rb->r", self.weights, overlaps, self.weights)
        self.n = len(W)
        self.names = [f"sum q(u_{j})" for j in range(self.n)]
        if not np.all(self.kappa > 0):
            raise BasisError("every ridge direction must touch a scale that keeps some momentum (kappa > 0)")

    def spec(self) -> dict:
        spec = {
            "kind": self.kind,
            "scales": list(self.scales),
            "width": self.width,
            "zero_mode": self.zero_mode,
            "directions": self.directions.tolist(),
        }
        if self.smoothing != "precision":
            spec["smoothing"] = self.smoothing
        if self.precision is not None:
            spec["precision"] = np.asarray(self.precision, dtype=float).tolist()
        return spec

    # ---- the ridge variables
    def _smooth(self, field):
        axes = tuple(range(1, field.ndim + 1))
        return jnp.real(jnp.fft.ifftn(self.filters * jnp.fft.fftn(field)[None], axes=axes))

    def _u(self, field):
        """:math:`u_j(n)`, shape ``(terms, *lattice)`` (linear in ``field``)."""
        return ridge_variables(self._smooth(field), jnp.mean(field), jnp.asarray(self.weights), self.zero_mode)

    def values(self, field):
        return site_sum(ridge_function(self._u(field), self.width)[0], self.lattice.d)

    def laplacians(self, field):
        return jnp.asarray(self.kappa) * site_sum(ridge_function(self._u(field), self.width)[2], self.lattice.d)

    def columns(self, field, dS):
        w, kappa = jnp.asarray(self.weights), jnp.asarray(self.kappa)
        psi, sdS = self._smooth(field), self._smooth(dS)
        return ridge_columns(psi, sdS, field, dS, w, kappa, self.width, self.zero_mode, self.lattice.d)

    def gradient(self, a, field):
        _, q1, _ = ridge_function(self._u(field), self.width)
        g = a[(...,) + (None,) * field.ndim] * q1
        inner, uniform = ridge_adjoint(g, jnp.asarray(self.weights), self.zero_mode)
        axes = tuple(range(1, field.ndim + 1))
        smoothed = jnp.real(jnp.fft.ifftn(jnp.sum(self.filters * jnp.fft.fftn(inner, axes=axes), axis=0)))
        return smoothed + uniform

    def laplacian(self, a, field):
        q2 = ridge_function(self._u(field), self.width)[2]
        return jnp.dot(a * jnp.asarray(self.kappa), site_sum(q2, self.lattice.d))


def ridge_variables(psi, m, weights, zero_mode: bool):
    r""":math:`u_j = \sum_s \hat W_{js}\psi_s + \hat W_{jm} m` of the smoothed fields ``psi`` ``(scales, *lattice)``."""
    n = psi.shape[0]
    u = jnp.tensordot(weights[:, :n], psi, axes=1)
    return u + weights[:, n].reshape((-1,) + (1,) * (psi.ndim - 1)) * m if zero_mode else u


def ridge_adjoint(g, weights, zero_mode: bool):
    r"""The adjoint of :func:`ridge_variables` on ``g`` ``(terms, *lattice)``: per scale :math:`\sum_j \hat W_{js} g_j`
    and the uniform zero-mode part :math:`\frac1V\sum_n\sum_j \hat W_{jm} g_j(n)` (0.0 without the zero mode)."""
    n = weights.shape[1] - zero_mode
    inner = jnp.tensordot(weights[:, :n].T, g, axes=1)
    return inner, jnp.mean(jnp.tensordot(weights[:, n], g, axes=1)) if zero_mode else 0.0


def ridge_columns(psi, sdS, field, dS, weights, kappa, width, zero_mode: bool, d: int):
    r"""The rows of eq. 34 of the ridge terms, :math:`\kappa_j\sum_n q_c''(u_j) - \sum_n q_c'(u_j)u_j[\partial\hat S]`,
    from the smoothed fields ``psi`` of ``field`` and ``sdS`` of :math:`\partial\hat S` (``dS``)."""
    _, q1, q2 = ridge_function(ridge_variables(psi, jnp.mean(field), weights, zero_mode), width)
    drift = ridge_variables(sdS, jnp.mean(dS), weights, zero_mode)
    return kappa * site_sum(q2, d) - site_sum(q1 * drift, d)
