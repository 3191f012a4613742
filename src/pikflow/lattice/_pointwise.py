r"""The pointwise part of a fused velocity evaluation: tamed powers and cross-scale products (issue #20).

For the smoothed fields :math:`\psi_s` of every scale, :class:`~pikflow.lattice._fused.FusedEvaluator`
needs only the coefficient-contracted sums (paper eq. 32 and the divergence of eq. 11)

.. math::

    \text{inner}_s = \sum_p a_{s,p} f_p'(\psi_s) + [\text{products}], \qquad
    \Delta\Omega \ni \sum_n \sum_s h_s \sum_p a_{s,p} f_p''(\psi_s) + [\text{products}],

never the per-term columns. With :math:`u^2 = \psi^2/c^2`, :math:`r = 1 + u^2`,
:math:`s = 1/r` and :math:`t = \psi^2 s`, the tamed power :math:`f_p = \psi^p r^{-(p-2)/2}`
(:func:`~pikflow.lattice.tamed_power`) has, for even :math:`p = 2k + 2`,

.. math::

    f_p' = \psi\,s\,t^k\,(p + 2u^2), \qquad f_p'' = s^2\,t^k\,\big(p(p-1) + (p+2)u^2 + 2u^4\big),

and for odd :math:`p = 2k + 3` the same with :math:`f_p' = r^{-1/2} t^{k+1}(p+2u^2)` and
:math:`f_p'' = \psi\,s^2 r^{-1/2}\,t^k(\dots)`: the closed forms of
:func:`~pikflow.lattice.tamed_power_derivatives` with the bracket expanded in :math:`u^2`. So one
division (and one ``rsqrt`` for odd powers) per site and scale is shared by all powers, the
powers of :math:`t` and :math:`\psi` are built by multiplication, and the coefficients are
contracted into two polynomials in :math:`u^2` per power before they meet the fields: one
elementwise pass per family. The cross-scale products
:math:`T_{ab} = \sum_n q_a q_b` (:class:`~pikflow.lattice.SmoothedProducts`) contract likewise
through the symmetric coupling matrix :math:`A_{ab} = a_{(a,b)}`:
:math:`\text{inner}_a = q'_a (Aq)_a` and the Laplacian density
:math:`\sum_a h_{aa} q''_a (Aq)_a + \sum_{a<b} 2h_{ab}a_{(a,b)} q'_a q'_b`.

The numbers are those of the per-term formulas to float64 rounding (tested in
``tests/test_lattice_fused.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


class _Powers:
    """``x ** n`` by repeated squaring and multiplication, memoised (no ``pow``; ``n >= 1``)."""

    def __init__(self, x):
        self.cache = {1: x}

    def __getitem__(self, n: int):
        if n not in self.cache:
            half = self[n // 2]
            v = half * half
            self.cache[n] = v * self.cache[1] if n % 2 else v
        return self.cache[n]


def powers_part(x, a, w, h, powers, d: int):
    r"""``(inner, density)`` of :class:`SmoothedPowers` on the smoothed fields ``x`` (``(scales, *lattice)``).

    ``inner`` :math:`= \sum_p a_{s,p} f_p'(\psi_s)` and ``density``
    :math:`= h_s\sum_p a_{s,p} f_p''(\psi_s)`, both of the shape of ``x``; ``a`` scale-major
    ``(scales * len(powers),)``, ``w`` the taming widths broadcasting against ``x`` (``None``:
    plain powers), ``h`` per scale.
    """
    shape = (-1,) + (1,) * d
    a = a.reshape(x.shape[0], len(powers))
    ha = a * h[:, None]

    def col(v):
        return v.reshape(shape)

    X = _Powers(x)
    inner = density = 0.0
    tamed = []
    for j, p in enumerate(powers):
        if w is not None and p > 2:
            tamed.append((j, p))
            continue
        inner = inner + col(p * a[:, j]) * X[p - 1]
        density = density + col(p * (p - 1) * ha[:, j]) * (X[p - 2] if p > 2 else 1.0)
    if tamed:
        x2 = X[2]
        u2 = x2 * (1.0 / (w * w))
        r = 1.0 + u2
        s = 1.0 / r
        T = _Powers(x2 * s)
        parts = {0: [0.0, 0.0], 1: [0.0, 0.0]}  # by parity of p: (inner, density) before the common factors
        for j, p in tamed:
            c1 = col(p * a[:, j]) + col(2.0 * a[:, j]) * u2
            c2 = col(p * (p - 1) * ha[:, j]) + (col((p + 2) * ha[:, j]) + col(2.0 * ha[:, j]) * u2) * u2
            k = (p - 2) // 2 if p % 2 == 0 else (p - 3) // 2
            acc = parts[p % 2]
            acc[0] = acc[0] + c1 * T[k + p % 2]
            acc[1] = acc[1] + (c2 * T[k] if k else c2)
        s2 = s * s
        even, odd = parts[0], parts[1]
        if any(p % 2 == 0 for _, p in tamed):
            inner = inner + x * s * even[0]
            density = density + s2 * even[1]
        if any(p % 2 for _, p in tamed):
            rs = jax.lax.rsqrt(r)
            inner = inner + rs * odd[0]
            density = density + x * s2 * rs * odd[1]
    return jnp.broadcast_to(inner, x.shape), jnp.broadcast_to(density, x.shape)


def tamed_square_parts(x, w):
    r""":math:`(q, q', q'')` of the tamed square :math:`q = x^2 r^{-1/2}` (``w`` ``None``: :math:`x^2`)."""
    if w is None:
        return x * x, 2.0 * x, jnp.full_like(x, 2.0)
    x2 = x * x
    u2 = x2 * (1.0 / (w * w))
    r = 1.0 + u2
    rs = jax.lax.rsqrt(r)
    rs3 = rs / r
    return x2 * rs, x * (2.0 + u2) * rs3, (2.0 - u2) * rs3 / r


def pair_matrix(a, pairs, n: int):
    """The symmetric ``(n, n)`` matrix with ``a[j]`` at ``pairs[j]`` and its transpose, zero elsewhere."""
    index = np.full((n, n), len(pairs))
    for j, (x, y) in enumerate(pairs):
        index[x, y] = index[y, x] = j
    return jnp.concatenate([a, jnp.zeros((1,), dtype=a.dtype)])[index]


def products_part(x, a, w, hab, pairs, d: int):
    r"""``(inner, density)`` of :class:`SmoothedProducts` on the smoothed fields ``x`` (``(scales, *lattice)``).

    ``inner`` :math:`= q'_a (Aq)_a` and ``density`` :math:`= h_{aa} q''_a (Aq)_a + q'_a (Mq')_a`
    (:math:`M = A\circ h`, zero diagonal: the cross terms :math:`2h_{ab}a_{(a,b)}q'_aq'_b`), both
    of the shape of ``x``; ``a`` one coefficient per pair of ``pairs``, ``w`` the widths
    broadcasting against ``x`` or ``None``, ``hab`` the overlaps :math:`h_{ab}`.
    """
    shape = (-1,) + (1,) * d
    n = x.shape[0]
    q, q1, q2 = tamed_square_parts(x, w)
    A = pair_matrix(a, pairs, n)
    M = A * hab
    aq = mq1 = 0.0
    for y in range(n):
        aq = aq + A[:, y].reshape(shape) * q[y]
        mq1 = mq1 + M[:, y].reshape(shape) * q1[y]
    inner = q1 * aq
    density = jnp.diagonal(hab).reshape(shape) * q2 * aq + q1 * mq1
    return inner, density


def ridges_part(x, m, a, weights, kappa, width, zero_mode: bool):
    r"""``(inner, density, uniform)`` of :class:`~pikflow.lattice.SmoothedRidges` on the smoothed fields ``x``.

    With :math:`u_j` the ridge variables (:func:`~pikflow.lattice._basis_ridge.ridge_variables`; ``m`` the
    magnetisation) and :math:`g_j = a_j q_c'(u_j)`: ``inner`` :math:`= \sum_j \hat W_{js} g_j` per scale (shape
    of ``x``), ``density`` :math:`= \sum_j a_j\kappa_j q_c''(u_j)` (one lattice) and ``uniform``
    :math:`= \frac1V\sum_n\sum_j\hat W_{jm}g_j(n)`, the zero mode's part of the gradient (0.0 without it).
    Dense in the directions (two contractions with :math:`\hat W`): as fast as sums over each term's two
    non-zero entries, and faster in float32.
    """
    from ._basis_ridge import ridge_adjoint, ridge_function, ridge_variables

    _, q1, q2 = ridge_function(ridge_variables(x, m, weights, zero_mode), width)
    col = (-1,) + (1,) * (x.ndim - 1)
    inner, uniform = ridge_adjoint(a.reshape(col) * q1, weights, zero_mode)
    return inner, jnp.tensordot(a * kappa, q2, axes=1), uniform
