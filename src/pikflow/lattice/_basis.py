r"""Translation-invariant bases for the potential :math:`\Omega_t` of the gradient form (paper eqs. 32-34).

The kernel is :math:`v_t = -\partial\Omega_t` with :math:`\Omega_t = \sum_j a_j T_j(\phi)`, and
eq. 34 with the unknown constant :math:`c_t` (the user guide) reads

.. math::  \sum_j a_j\, \bigl[\Delta T_j - \partial\hat S_t\cdot\partial T_j\bigr](\phi) - c_t
           = -\frac{d\hat S_t}{dt}(\phi).

Every family below gives, per configuration, the values :math:`T_j`, the operator
columns :math:`L T_j = \Delta T_j - \partial\hat S_t\cdot\partial T_j`, and for a
coefficient vector the gradient :math:`\sum_j a_j\partial T_j` and Laplacian
:math:`\sum_j a_j \Delta T_j` (analytic: stencils derived in SymPy, or spectral by FFT).
The number of coefficients does not grow with the volume, except for the Fourier
two-point term (one per momentum orbit).

Families
--------
:class:`FourierTwoPoint`
    :math:`T_o = \frac1{2V}\sum_{k\in o}|\tilde\phi_k|^2` per momentum orbit :math:`o`;
    exact for free fields (:math:`\Omega = \tfrac12\phi^T A\phi`).
:class:`Magnetisation`
    :math:`T_p = V\, m^p`, :math:`m = M/V`, for even powers ``p``.
:class:`SmoothedPowers`
    :math:`T_{s,p} = \sum_n \psi_s(n)^p`, :math:`\psi_s = e^{-s\hat k^2}\phi` (heat-kernel
    smoothing by FFT) over a ladder of scales (the user guide).
:class:`LocalHermite`
    :math:`\sum_n \prod_i He_{k_i}(\phi_{n+o_i})`, products of probabilists' Hermite
    polynomials (the Ornstein-Uhlenbeck eigenfunctions, paper sec. IV B 2) of sites
    within range ``R``, symmetrised under the point group and (optionally) Z2.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._errors import BasisError
from ._action import lower_site_expressions, shift_sites, site, site_symbols
from ._lattice import Lattice

#: The default ladder of smoothing scales (the user guide: 7 scales gave ESS/N 0.95).
DEFAULT_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


def site_sum(x, ndim: int):
    """Sum over the last ``ndim`` (lattice) axes, as a dot product with ones.

    Same number as ``jnp.sum`` (to rounding); on CPU XLA's reduction over small minor axes
    is several times slower than the BLAS dot (measured 8x on an 8x8 lattice).
    """
    lead = x.shape[: x.ndim - ndim]
    flat = x.reshape(lead + (-1,))
    return flat @ jnp.ones(flat.shape[-1], dtype=flat.dtype)


class LatticeFamily:
    """A family of translation-invariant basis functions :math:`T_j(\\phi)` for :math:`\\Omega`."""

    lattice: Lattice
    n: int
    names: list[str]

    def values(self, field):
        """:math:`T_j(\\phi)`, shape ``(n,)``."""
        raise NotImplementedError

    def laplacians(self, field):
        """:math:`\\Delta T_j(\\phi)`, shape ``(n,)``."""
        raise NotImplementedError

    def columns(self, field, dS):
        r""":math:`\Delta T_j - \partial\hat S\cdot\partial T_j` for the action gradient ``dS``, shape ``(n,)``."""
        raise NotImplementedError

    def gradient(self, a, field):
        r""":math:`\sum_j a_j \partial T_j(\phi)`, shape of ``field``."""
        raise NotImplementedError

    def laplacian(self, a, field):
        r""":math:`\sum_j a_j \Delta T_j(\phi)`."""
        return jnp.dot(a, self.laplacians(field))


class FourierTwoPoint(LatticeFamily):
    r"""Quadratic terms diagonal in momentum space, one per momentum orbit.

    :math:`T_o = \frac{1}{2V}\sum_{k\in o}|\tilde\phi_k|^2`, :math:`\partial T_o = P_o\phi`
    (projector on the orbit), :math:`\Delta T_o = |o|`. With them the free-field
    potential :math:`\Omega = \tfrac12\phi^T A\phi` (the user guide) is exact.

    The orbits are those of ``symmetry`` (a :class:`Symmetry`, e.g. ``path.symmetry()``) with
    :math:`k\to-k`; ``None``: the lattice's whole point group (an isotropic action). With
    orbits larger than the action's symmetry allows the free part of an anisotropic action
    is not in the span.
    """

    def __init__(self, lattice: Lattice, symmetry=None):
        self.lattice = lattice
        self.symmetry = symmetry
        ids, sizes = lattice.momentum_orbits() if symmetry is None else symmetry.orbits()
        self.ids = jnp.asarray(ids)
        self.sizes = jnp.asarray(sizes, dtype=float)
        self.n = len(sizes)
        self.names = [f"fourier[{i}]" for i in range(self.n)]

    def _seg(self, x):
        return jax.ops.segment_sum(x.reshape(-1), self.ids.reshape(-1), num_segments=self.n)

    def values(self, field):
        ft = jnp.fft.fftn(field)
        return self._seg(jnp.abs(ft) ** 2) / (2 * self.lattice.volume)

    def laplacians(self, field):
        return self.sizes

    def columns(self, field, dS):
        prod = jnp.real(jnp.conj(jnp.fft.fftn(dS)) * jnp.fft.fftn(field))
        return self.sizes - self._seg(prod) / self.lattice.volume

    def gradient(self, a, field):
        return jnp.real(jnp.fft.ifftn(a[self.ids] * jnp.fft.fftn(field)))

    def laplacian(self, a, field):
        return jnp.dot(a, self.sizes)


class Magnetisation(LatticeFamily):
    r"""Global terms :math:`T_p = V f_p(m)`, :math:`m = \frac1V\sum_n\phi_n`, and optionally :math:`\log\cosh(bM)`.

    :math:`f_p` is :func:`tamed_power` with the absolute ``width`` (``None``: :math:`m^p`);
    :math:`\partial_n T_p = f_p'(m)`, :math:`\Delta T_p = f_p''(m)`. With ``log_cosh`` :math:`=b`
    one more term :math:`T = \log\cosh(bM)` (:math:`\partial_n T = b\tanh bM`,
    :math:`\Delta T = Vb^2/\cosh^2 bM`): the zero-mode structure of the two-Gaussian
    mixture base (:class:`GaussianLatticeBase` with ``m0 > 0``), whose action carries it.
    """

    def __init__(
        self,
        lattice: Lattice,
        powers: Sequence[int] = (4, 6),
        *,
        width: float | None = None,
        log_cosh: float | None = None,
    ):
        self.lattice = lattice
        self.powers = tuple(int(p) for p in powers)
        if any(p < 1 for p in self.powers):
            raise BasisError(f"magnetisation powers must be positive integers, got {list(powers)}")
        if width is not None and not width > 0:
            raise BasisError(f"the magnetisation taming width must be positive (or None), got {width!r}")
        if log_cosh is not None and not log_cosh > 0:
            raise BasisError(f"the log cosh coupling b must be positive (or None), got {log_cosh!r}")
        self.width = None if width is None else float(width)
        self.log_cosh = None if log_cosh is None else float(log_cosh)
        self.n = len(self.powers) + (self.log_cosh is not None)
        self.names = [f"V*m**{p}" for p in self.powers]
        if self.log_cosh is not None:
            self.names.append(f"log cosh({self.log_cosh:.4g} M)")

    def _parts(self, field):
        """Per term: value, first and second derivative in :math:`m` (scaled as documented)."""
        m = jnp.mean(field)
        V = self.lattice.volume
        vals, d1, d2 = [], [], []
        for p in self.powers:
            f = tamed_power(m, p, self.width)
            g1, g2 = tamed_power_derivatives(m, p, self.width)
            vals.append(V * f)
            d1.append(g1)
            d2.append(g2)
        if self.log_cosh is not None:
            from ._free import log_cosh_term

            for out, part in zip((vals, d1, d2), log_cosh_term(self.log_cosh, V * m, V), strict=True):
                out.append(part)
        return jnp.stack(vals), jnp.stack(d1), jnp.stack(d2)

    def values(self, field):
        return self._parts(field)[0]

    def laplacians(self, field):
        return self._parts(field)[2]

    def columns(self, field, dS):
        _, d1, d2 = self._parts(field)
        return d2 - d1 * jnp.sum(dS)

    def gradient(self, a, field):
        return jnp.broadcast_to(jnp.dot(a, self._parts(field)[1]), field.shape)


def tamed_power(x, p: int, width):
    r"""The tamed power :math:`f_p(x) = x^p\,(1 + x^2/c^2)^{-(p-2)/2}` (``width`` :math:`c`; ``None``: :math:`x^p`).

    :math:`f_p(x) = x^p(1 + O(x^2/c^2))` where the data are (:math:`|x|\ll c`) and
    :math:`f_p \sim c^{p-2}x^2` far out, so a velocity built from it grows at most
    linearly with the field and cannot blow up in finite time (issue #7: "tame the
    high-degree terms"); its derivatives stay analytic (:func:`tamed_power_derivatives`).
    """
    if width is None or p <= 2:
        return x**p
    return x**p * _rpow(1 + (x / width) ** 2, (p - 2) / 2)


def tamed_power_derivatives(x, p: int, width):
    r""":math:`f_p'(x)` and :math:`f_p''(x)` of :func:`tamed_power`, in closed form.

    With :math:`u = x/c`, :math:`r = 1+u^2`: :math:`f' = x^{p-1}r^{-p/2}(p + 2u^2)` and
    :math:`f'' = x^{p-2}r^{-p/2-1}[(p-1)(p+2u^2)r - p\,u^2(p+2u^2) + 4u^2 r]`.
    """
    if width is None or p <= 2:
        return p * x ** (p - 1), p * (p - 1) * x ** max(p - 2, 0)
    u2 = (x / width) ** 2
    r = 1 + u2
    a = p + 2 * u2
    rp = _rpow(r, p / 2)
    d1 = x ** (p - 1) * rp * a
    d2 = x ** (p - 2) * rp / r * ((p - 1) * a * r - p * u2 * a + 4 * u2 * r)
    return d1, d2


def _rpow(r, k: float):
    """:math:`r^{-k}` by multiplications (and one rsqrt for half-integer ``k``): no transcendental ``pow``."""
    n = int(k)
    if k == n:
        return 1 / r**n
    if 2 * k == int(2 * k):
        return jax.lax.rsqrt(r) / r**n
    return r ** (-k)


class SmoothedPowers(LatticeFamily):
    r"""Multi-scale terms :math:`T_{s,p} = \sum_n f_p(\psi_s(n))`, :math:`\psi_s = e^{-s(K-K_{\min})}\phi`.

    ``precision`` :math:`K(k)` sets the smoothing: the inverse of the operator of eq. 34 on
    quartic terms at a Gaussian action :math:`\frac12\phi^TK\phi` is
    :math:`\int ds\, e^{sL}`, and :math:`e^{sL}` maps :math:`\sum_n{:}\phi_n^4{:}` to
    :math:`\sum_n{:}(e^{-sK}\phi)_n^4{:}` (Ornstein-Uhlenbeck semigroup), so powers of
    fields smoothed with the base's own :math:`K` span the kernel's quartic part (default
    :math:`K = \hat k^2`, the free field). :math:`f_p` is :func:`tamed_power` with width
    ``tame`` times the standard deviation :math:`\sigma_s` of :math:`\psi_s` under the
    Gaussian :math:`K` (``None``: plain powers :math:`\psi^p`, unbounded velocity).

    With :math:`S_s` the (symmetric) smoothing, :math:`\partial T_{s,p} = S_s f_p'(\psi_s)`
    and :math:`\Delta T_{s,p} = h_s\sum_n f_p''(\psi_s(n))`, :math:`h_s = \frac1V\sum_k e^{-2s(K-K_{\min})}`.
    """

    def __init__(
        self,
        lattice: Lattice,
        scales: Sequence[float] = DEFAULT_SCALES,
        powers: Sequence[int] = (4, 6),
        *,
        precision=None,
        tame: float | None = None,
    ):
        self.lattice = lattice
        self.scales = tuple(float(s) for s in scales)
        self.powers = tuple(int(p) for p in powers)
        if any(s < 0 for s in self.scales) or any(p < 2 for p in self.powers):
            raise BasisError(f"scales must be >= 0 and powers >= 2, got {list(scales)}, {list(powers)}")
        if tame is not None and not tame > 0:
            raise BasisError(f"tame must be a positive multiple of the field's width (or None), got {tame!r}")
        if precision is None:
            K = lattice.khat2()
            G = 1.0 / (K + 1.0)
        else:
            K = np.asarray(precision, dtype=float)
            if K.shape != lattice.shape or not np.all(K > 0):
                raise BasisError(f"precision must be positive with the lattice's shape {list(lattice.shape)}")
            G = 1.0 / K
        self.precision = None if precision is None else K
        Kr = K - K.min()
        filt = np.stack([np.exp(-s * Kr) for s in self.scales])
        self.filters = jnp.asarray(filt)
        self.h = jnp.asarray(np.mean(filt**2, axis=tuple(range(1, filt.ndim))))
        sigma = np.sqrt(np.mean(filt**2 * G, axis=tuple(range(1, filt.ndim))))
        self.tame = tame
        self.widths = None if tame is None else tuple(float(tame * x) for x in sigma)
        self.n = len(self.scales) * len(self.powers)
        self.names = [f"sum psi_{s}**{p}" for s in self.scales for p in self.powers]

    def _psi(self, field):
        ft = jnp.fft.fftn(field)
        return jnp.real(jnp.fft.ifftn(self.filters * ft[None], axes=tuple(range(1, field.ndim + 1))))

    def _w(self, ndim: int):
        """The widths as an array broadcasting against ``psi`` of shape ``(scales, *lattice)``."""
        return None if self.widths is None else jnp.asarray(self.widths).reshape((-1,) + (1,) * ndim)

    def _sum(self, x):
        return site_sum(x, self.lattice.d)

    def _stack(self, per_power):
        # per_power[j] has shape (scales,): order the terms scale-major like self.names
        return jnp.stack(per_power, axis=1).reshape(-1)

    def values(self, field):
        psi, w = self._psi(field), self._w(field.ndim)
        return self._stack([self._sum(tamed_power(psi, p, w)) for p in self.powers])

    def laplacians(self, field):
        psi, w = self._psi(field), self._w(field.ndim)
        return self._stack([self.h * self._sum(tamed_power_derivatives(psi, p, w)[1]) for p in self.powers])

    def columns(self, field, dS):
        psi, w = self._psi(field), self._w(field.ndim)
        sdS = self._psi(dS)
        out = []
        for p in self.powers:
            d1, d2 = tamed_power_derivatives(psi, p, w)
            out.append(self.h * self._sum(d2) - self._sum(sdS * d1))
        return self._stack(out)

    def gradient(self, a, field):
        psi, w = self._psi(field), self._w(field.ndim)
        a = a.reshape(len(self.scales), len(self.powers))
        shape = (-1,) + (1,) * field.ndim
        inner = sum(a[:, j].reshape(shape) * tamed_power_derivatives(psi, p, w)[0] for j, p in enumerate(self.powers))
        axes = tuple(range(1, field.ndim + 1))
        return jnp.real(jnp.fft.ifftn(jnp.sum(self.filters * jnp.fft.fftn(inner, axes=axes), axis=0)))


def _tamed_square(x, width):
    r""":math:`q = x^2 r^{-1/2}`, :math:`q' = x(2+u^2)r^{-3/2}`, :math:`q'' = (2-u^2)r^{-5/2}`.

    With :math:`u = x/c`, :math:`r = 1+u^2` (``width`` :math:`c`; ``None``: :math:`x^2`).
    """
    if width is None:
        return x**2, 2 * x, 2 * jnp.ones_like(x)
    u2 = (x / width) ** 2
    r = 1 + u2
    rs = jax.lax.rsqrt(r)
    r3 = rs / r
    return x**2 * rs, x * (2 + u2) * r3, (2 - u2) * r3 / r


class SmoothedProducts(SmoothedPowers):
    r"""Cross-scale quartic terms :math:`T_{ab} = \sum_n q(\psi_a(n))\,q(\psi_b(n))`, :math:`a < b`.

    :math:`q(x) = x^2(1+x^2/c^2)^{-1/2}` (tamed square, ``tame`` as in :class:`SmoothedPowers`).
    Quartic terms whose momentum structure :math:`e^{-a(K_1+K_2)-b(K_3+K_4)}` mixes two scales
    enrich the :math:`\lambda/\sum_iK(k_i)` structure of the kernel (the user guide) beyond
    single-scale powers. :math:`\partial T_{ab} = S_a[q'_aq_b] + S_b[q_aq'_b]`,
    :math:`\Delta T_{ab} = \sum_n h_{aa}q''_aq_b + 2h_{ab}q'_aq'_b + h_{bb}q_aq''_b` with
    :math:`h_{ab} = \frac1V\sum_k f_a(k)f_b(k)`.
    """

    def __init__(self, lattice: Lattice, scales: Sequence[float] = DEFAULT_SCALES, *, precision=None, tame=None):
        super().__init__(lattice, scales, (4,), precision=precision, tame=tame)
        ns = len(self.scales)
        self.pairs = [(a, b) for a in range(ns) for b in range(a + 1, ns)]
        if not self.pairs:
            raise BasisError("SmoothedProducts needs at least two scales")
        f = np.asarray(self.filters).reshape(ns, -1)
        self.hab = jnp.asarray(f @ f.T / f.shape[1])
        self.n = len(self.pairs)
        self.names = [f"sum q(psi_{self.scales[a]}) q(psi_{self.scales[b]})" for a, b in self.pairs]

    def _q(self, psi):
        return _tamed_square(psi, self._w(psi.ndim - 1))

    def values(self, field):
        q, _, _ = self._q(self._psi(field))
        return jnp.stack([site_sum(q[a] * q[b], self.lattice.d) for a, b in self.pairs])

    def laplacians(self, field):
        q, q1, q2 = self._q(self._psi(field))
        h = self.hab
        return jnp.stack(
            [
                site_sum(h[a, a] * q2[a] * q[b] + 2 * h[a, b] * q1[a] * q1[b] + h[b, b] * q[a] * q2[b], self.lattice.d)
                for a, b in self.pairs
            ]
        )

    def columns(self, field, dS):
        q, q1, _ = self._q(self._psi(field))
        sdS = self._psi(dS)
        lap = self.laplacians(field)
        drift = jnp.stack(
            [site_sum(sdS[a] * q1[a] * q[b] + sdS[b] * q[a] * q1[b], self.lattice.d) for a, b in self.pairs]
        )
        return lap - drift

    def gradient(self, a, field):
        q, q1, _ = self._q(self._psi(field))
        inner = [jnp.zeros_like(field) for _ in self.scales]
        for j, (x, y) in enumerate(self.pairs):
            inner[x] = inner[x] + a[j] * q1[x] * q[y]
            inner[y] = inner[y] + a[j] * q[x] * q1[y]
        axes = tuple(range(1, field.ndim + 1))
        ft = jnp.fft.fftn(jnp.stack(inner), axes=axes)
        return jnp.real(jnp.fft.ifftn(jnp.sum(self.filters * ft, axis=0)))


def _patterns(lattice: Lattice, rng: int, degree: int, max_sites: int, z2: bool, min_degree: int, group=None):
    """Symmetry-reduced site patterns ``((offset, k), ...)``: canonical forms and their images under ``group``."""
    dim = lattice.d
    group = lattice.point_group() if group is None else group
    offsets = [o for o in itertools.product(range(-rng, rng + 1), repeat=dim) if 0 < sum(map(abs, o)) <= rng]

    def canon(pat):
        best = None
        for anchor, _ in pat:
            moved = tuple(sorted((tuple(a - b for a, b in zip(o, anchor, strict=True)), k) for o, k in pat))
            best = moved if best is None or moved < best else best
        return best

    def images(pat):
        return {canon([(tuple(int(x) for x in g @ np.array(o)), k) for o, k in pat]) for g in group}

    seen, out = set(), []
    for n_sites in range(1, max_sites + 1):
        for others in itertools.combinations(offsets, n_sites - 1):
            sites = [(0,) * dim, *others]
            for ks in itertools.product(range(1, degree + 1), repeat=n_sites):
                total = sum(ks)
                if total > degree or total < min_degree or (z2 and total % 2):
                    continue
                pat = list(zip(sites, ks, strict=True))
                imgs = images(pat)
                key = min(imgs)
                if key in seen:
                    continue
                seen.add(key)
                out.append((key, sorted(imgs)))
    return out


class LocalHermite(LatticeFamily):
    r"""Local terms :math:`T = \sum_n\sum_{g}\prod_i He_{k_i}(\phi_{n+g o_i})` (paper sec. IV B 2).

    Products of probabilists' Hermite polynomials of up to ``max_sites`` sites within
    Manhattan distance ``range`` of the first, total degree between ``min_degree`` and
    ``degree`` (even only when ``z2``), summed over translations and over the distinct
    images under the point group of ``symmetry`` (a :class:`Symmetry`; ``None``: the lattice's
    whole point group, reflections and rotations of equal axes). Values,
    gradient stencils and Laplacians are derived in SymPy and lowered with ``jnp.roll``.
    """

    def __init__(
        self,
        lattice: Lattice,
        range: int = 1,
        degree: int = 4,
        *,
        max_sites: int = 2,
        z2: bool = True,
        min_degree: int = 2,
        symmetry=None,
    ):
        self.lattice = lattice
        self.symmetry = symmetry
        if not (isinstance(range, int) and range >= 0):
            raise BasisError(f"range must be a non-negative integer, got {range!r}")
        if 2 * range >= min(lattice.shape):
            raise BasisError(f"range {range} is too long for the lattice {list(lattice.shape)}: use 2*range < L")
        if degree < 1 or max_sites < 1:
            raise BasisError(f"degree and max_sites must be >= 1, got {degree}, {max_sites}")
        self.range, self.degree, self.max_sites = range, degree, max_sites
        self.z2, self.min_degree = bool(z2), int(min_degree)
        dim = lattice.d
        x = sp.Symbol("x")
        herm = {k: sp.hermite_prob(k, x) for k in builtins_range(1, degree + 1)}
        self.terms, self.names = [], []
        group = None if symmetry is None else symmetry.matrices()
        for key, imgs in _patterns(lattice, range, degree, max_sites, z2, min_degree, group):
            expr = sp.Add(*[sp.Mul(*[herm[k].xreplace({x: site(o)}) for o, k in img]) for img in imgs])
            self.terms.append(sp.expand(expr))
            self.names.append(" ".join(f"He{k}{list(o)}" for o, k in key))
        if not self.terms:
            raise BasisError("the local Hermite family is empty: raise degree or range")
        self.n = len(self.terms)
        grads, laps = [], []
        for e in self.terms:
            sites = site_symbols(e, dim)
            grads.append(sp.Add(*[shift_sites(sp.diff(e, s), [-c for c in o], dim) for s, o in sites.items()]))
            laps.append(sp.Add(*[sp.diff(e, s, 2) for s in sites]))
        self._f = lower_site_expressions([*self.terms, *grads, *laps], dim)

    def _all(self, field):
        out = self._f(field)
        n = self.n
        return jnp.stack(out[:n]), jnp.stack(out[n : 2 * n]), jnp.stack(out[2 * n :])

    def values(self, field):
        return jnp.sum(self._all(field)[0], axis=tuple(range(1, field.ndim + 1)))

    def laplacians(self, field):
        return jnp.sum(self._all(field)[2], axis=tuple(range(1, field.ndim + 1)))

    def columns(self, field, dS):
        _, g, lap = self._all(field)
        axes = tuple(range(1, field.ndim + 1))
        return jnp.sum(lap, axis=axes) - jnp.sum(g * dS[None], axis=axes)

    def gradient(self, a, field):
        return jnp.tensordot(a, self._all(field)[1], axes=1)


builtins_range = range


class LatticeBasis:
    r"""A basis for :math:`\Omega_t`: the concatenation of families (see :func:`lattice_basis`)."""

    def __init__(self, families: Sequence[LatticeFamily]):
        self.families = list(families)
        if not self.families:
            raise BasisError("a lattice basis needs at least one family")
        lat = {f.lattice for f in self.families}
        if len(lat) != 1:
            raise BasisError("all families of a lattice basis must live on the same lattice")
        self.lattice = self.families[0].lattice
        self.sizes = [f.n for f in self.families]
        self.n = sum(self.sizes)
        self.names = [name for f in self.families for name in f.names]
        self._splits = np.cumsum(self.sizes)[:-1].tolist()

    def _parts(self, a):
        return jnp.split(a, self._splits)

    def values(self, field):
        """:math:`T_j(\\phi)` of one configuration, shape ``(n,)``."""
        return jnp.concatenate([f.values(field) for f in self.families])

    def laplacians(self, field):
        """:math:`\\Delta T_j(\\phi)`, shape ``(n,)``."""
        return jnp.concatenate([jnp.broadcast_to(f.laplacians(field), (f.n,)) for f in self.families])

    def columns(self, field, dS):
        r"""Rows of eq. 34: :math:`\Delta T_j - \partial\hat S\cdot\partial T_j`, shape ``(n,)``."""
        return jnp.concatenate([f.columns(field, dS) for f in self.families])

    def gradient(self, a, field):
        r""":math:`\partial\Omega = \sum_j a_j\partial T_j` (the velocity is its negative, eq. 32)."""
        return sum(f.gradient(p, field) for f, p in zip(self.families, self._parts(a), strict=True))

    def laplacian(self, a, field):
        r""":math:`\Delta\Omega = \sum_j a_j\Delta T_j = -\partial\cdot v`."""
        return sum(f.laplacian(p, field) for f, p in zip(self.families, self._parts(a), strict=True))

    def gradient_and_laplacian(self, a, field):
        r""":math:`(\partial\Omega, \Delta\Omega)` in one evaluation, Fourier transforms shared (:mod:`._fused`).

        The same numbers as :meth:`gradient` and :meth:`laplacian` to rounding, at a fraction of the cost.
        """
        return self.fused(a, field)

    def fused_columns(self, field, dS):
        """:meth:`columns` with the Fourier transforms shared (:mod:`._fused`): the same numbers to rounding."""
        return self.fused.columns(field, dS)

    @property
    def fused(self):
        """The :class:`~pikflow.lattice._fused.FusedEvaluator` of this basis (built on first use)."""
        if getattr(self, "_fused", None) is None:
            from ._fused import FusedEvaluator

            self._fused = FusedEvaluator(self)
        return self._fused

    def __repr__(self) -> str:
        return "LatticeBasis(" + ", ".join(f"{type(f).__name__}[{f.n}]" for f in self.families) + ")"


def kept_scales(lattice: Lattice, precision, scales: Sequence[float]) -> list[float]:
    r"""The scales whose smoothing :math:`e^{-s(K-K_{\min})}` keeps some non-zero momentum above 5%.

    Larger scales make :math:`\psi_s` the magnetisation: collinear with the global terms and
    with each other (huge cancelling coefficients in the least squares).
    """
    K = lattice.khat2() if precision is None else np.asarray(precision, dtype=float)
    Kr = K - K.min()
    kmin = Kr[Kr > 1e-12 * max(Kr.max(), 1e-300)].min() if np.any(Kr > 0) else 1.0
    return [float(s) for s in scales if np.exp(-s * kmin) >= 0.05]


def lattice_basis(
    lattice: Lattice,
    *,
    fourier: bool = True,
    magnetisation: Sequence[int] = (4, 6),
    scales: Sequence[float] = DEFAULT_SCALES,
    powers: Sequence[int] = (4, 6),
    precision=None,
    tame: float | None = None,
    local_range: int | None = 1,
    local_degree: int = 4,
    max_sites: int = 2,
    z2: bool | None = None,
    symmetry=None,
) -> LatticeBasis:
    r"""A basis for :math:`\Omega_t` on a lattice (paper eqs. 32-34; the user guide).

    Parameters
    ----------
    lattice
        The lattice.
    fourier
        Include the Fourier two-point term (one coefficient per momentum orbit).
    magnetisation
        Powers of the global magnetisation terms :math:`V m^p` (empty: none).
    scales, powers
        The ladder of smoothing scales and the powers of :math:`\sum_n\psi_s^p` (empty: none).
        Scales that smooth every non-zero momentum below 5% are dropped (then
        :math:`\psi_s` is the magnetisation, collinear with the global terms).
    precision, tame
        The smoothing's :math:`K(k)` (default :math:`\hat k^2`; give the base's precision
        for a matched base) and the taming width in units of :math:`\sigma_s`, see
        :class:`SmoothedPowers`.
    local_range, local_degree, max_sites
        The local Hermite family (``None``: none). With the Fourier term present, local
        quadratic terms are left out (they are in its span).
    z2
        Keep only terms even under :math:`\phi\to-\phi` (for Z2-symmetric paths); default:
        ``symmetry.z2``, or ``True`` without a ``symmetry``.
    symmetry
        The action's :class:`Symmetry` (``path.symmetry()``): the Fourier orbits and the local
        terms are symmetrised only under its point group. ``None``: the lattice's whole point
        group (an isotropic action).
    """
    if z2 is None:
        z2 = True if symmetry is None else symmetry.z2
    fams: list[LatticeFamily] = []
    if fourier:
        fams.append(FourierTwoPoint(lattice, symmetry))
    if magnetisation:
        fams.append(Magnetisation(lattice, magnetisation))
    if scales and powers:
        # A scale that smooths every non-zero momentum below 5% makes psi_s ~ m: nearly collinear with the
        # magnetisation terms (and with other such scales), which gives huge cancelling coefficients.
        kept = kept_scales(lattice, precision, scales)
        if kept:
            fams.append(SmoothedPowers(lattice, kept, powers, precision=precision, tame=tame))
    if local_range is not None:
        fams.append(
            LocalHermite(
                lattice,
                local_range,
                local_degree,
                max_sites=max_sites,
                z2=z2,
                min_degree=3 if fourier else 1,
                symmetry=symmetry,
            )
        )
    return LatticeBasis(fams)
