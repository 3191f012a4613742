r"""Translation-invariant bases for the potential :math:`\Omega_t` of the gradient form (paper eqs. 32-34).

The kernel is :math:`v_t = -\partial\Omega_t` with :math:`\Omega_t = \sum_j a_j T_j(\phi)`, and
eq. 34 with the unknown constant :math:`c_t` (SCIENCE.md section 3) reads

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
    smoothing by FFT) over a ladder of scales (SCIENCE.md 3b).
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

#: The default ladder of smoothing scales (SCIENCE.md 3b: 7 scales gave ESS/N 0.95).
DEFAULT_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


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
    potential :math:`\Omega = \tfrac12\phi^T A\phi` (SCIENCE.md section 3) is exact.
    """

    def __init__(self, lattice: Lattice):
        self.lattice = lattice
        ids, sizes = lattice.momentum_orbits()
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
    r"""Global terms :math:`T_p = V m^p`, :math:`m = \frac1V\sum_n\phi_n`.

    :math:`\partial_n T_p = p\,m^{p-1}`, :math:`\Delta T_p = p(p-1)\,m^{p-2}`.
    """

    def __init__(self, lattice: Lattice, powers: Sequence[int] = (4, 6)):
        self.lattice = lattice
        self.powers = tuple(int(p) for p in powers)
        if any(p < 1 for p in self.powers):
            raise BasisError(f"magnetisation powers must be positive integers, got {list(powers)}")
        self.n = len(self.powers)
        self.names = [f"V*m**{p}" for p in self.powers]

    def values(self, field):
        m = jnp.mean(field)
        return jnp.stack([self.lattice.volume * m**p for p in self.powers])

    def laplacians(self, field):
        m = jnp.mean(field)
        return jnp.stack([p * (p - 1) * m ** max(p - 2, 0) * (p >= 2) for p in self.powers])

    def columns(self, field, dS):
        m = jnp.mean(field)
        total = jnp.sum(dS)
        return self.laplacians(field) - jnp.stack([p * m ** (p - 1) * total for p in self.powers])

    def gradient(self, a, field):
        m = jnp.mean(field)
        g = sum(a[i] * p * m ** (p - 1) for i, p in enumerate(self.powers))
        return jnp.broadcast_to(g, field.shape)


class SmoothedPowers(LatticeFamily):
    r"""Multi-scale terms :math:`T_{s,p} = \sum_n \psi_s(n)^p`, :math:`\psi_s = e^{-s\hat k^2}\phi` (SCIENCE.md 3b).

    With :math:`S_s` the (symmetric) smoothing, :math:`\partial T_{s,p} = S_s(p\,\psi_s^{p-1})`
    and :math:`\Delta T_{s,p} = p(p-1)\,h_s\sum_n\psi_s(n)^{p-2}`,
    :math:`h_s = \frac1V\sum_k e^{-2s\hat k^2}`.
    """

    def __init__(self, lattice: Lattice, scales: Sequence[float] = DEFAULT_SCALES, powers: Sequence[int] = (4, 6)):
        self.lattice = lattice
        self.scales = tuple(float(s) for s in scales)
        self.powers = tuple(int(p) for p in powers)
        if any(s < 0 for s in self.scales) or any(p < 2 for p in self.powers):
            raise BasisError(f"scales must be >= 0 and powers >= 2, got {list(scales)}, {list(powers)}")
        k2 = lattice.khat2()
        self.filters = jnp.asarray(np.stack([np.exp(-s * k2) for s in self.scales]))
        self.h = jnp.asarray(np.array([np.mean(np.exp(-2 * s * k2)) for s in self.scales]))
        self.n = len(self.scales) * len(self.powers)
        self.names = [f"sum psi_{s}**{p}" for s in self.scales for p in self.powers]

    def _psi(self, field):
        ft = jnp.fft.fftn(field)
        return jnp.real(jnp.fft.ifftn(self.filters * ft[None], axes=tuple(range(1, field.ndim + 1))))

    def values(self, field):
        psi = self._psi(field)
        return jnp.stack([jnp.sum(psi[i] ** p) for i in range(len(self.scales)) for p in self.powers])

    def laplacians(self, field):
        psi = self._psi(field)
        return jnp.stack(
            [p * (p - 1) * self.h[i] * jnp.sum(psi[i] ** (p - 2)) for i in range(len(self.scales)) for p in self.powers]
        )

    def columns(self, field, dS):
        psi = self._psi(field)
        sdS = self._psi(dS)
        out = [
            p * (p - 1) * self.h[i] * jnp.sum(psi[i] ** (p - 2)) - p * jnp.sum(sdS[i] * psi[i] ** (p - 1))
            for i in range(len(self.scales))
            for p in self.powers
        ]
        return jnp.stack(out)

    def gradient(self, a, field):
        psi = self._psi(field)
        a = a.reshape(len(self.scales), len(self.powers))
        inner = sum(a[:, j].reshape((-1,) + (1,) * field.ndim) * p * psi ** (p - 1) for j, p in enumerate(self.powers))
        axes = tuple(range(1, field.ndim + 1))
        return jnp.real(jnp.fft.ifftn(jnp.sum(self.filters * jnp.fft.fftn(inner, axes=axes), axis=0)))


def _patterns(lattice: Lattice, rng: int, degree: int, max_sites: int, z2: bool, min_degree: int):
    """Symmetry-reduced site patterns ``((offset, k), ...)``: canonical forms and their images."""
    dim = lattice.d
    group = lattice.point_group()
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
    images under the lattice point group (reflections, rotations of equal axes). Values,
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
    ):
        self.lattice = lattice
        if not (isinstance(range, int) and range >= 0):
            raise BasisError(f"range must be a non-negative integer, got {range!r}")
        if 2 * range >= min(lattice.shape):
            raise BasisError(f"range {range} is too long for the lattice {list(lattice.shape)}: use 2*range < L")
        if degree < 1 or max_sites < 1:
            raise BasisError(f"degree and max_sites must be >= 1, got {degree}, {max_sites}")
        self.range, self.degree, self.max_sites = range, degree, max_sites
        dim = lattice.d
        x = sp.Symbol("x")
        herm = {k: sp.hermite_prob(k, x) for k in builtins_range(1, degree + 1)}
        self.terms, self.names = [], []
        for key, imgs in _patterns(lattice, range, degree, max_sites, z2, min_degree):
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

    def __repr__(self) -> str:
        return "LatticeBasis(" + ", ".join(f"{type(f).__name__}[{f.n}]" for f in self.families) + ")"


def lattice_basis(
    lattice: Lattice,
    *,
    fourier: bool = True,
    magnetisation: Sequence[int] = (4, 6),
    scales: Sequence[float] = DEFAULT_SCALES,
    powers: Sequence[int] = (4, 6),
    local_range: int | None = 1,
    local_degree: int = 4,
    max_sites: int = 2,
    z2: bool = True,
) -> LatticeBasis:
    r"""The default basis for :math:`\Omega_t` on a lattice (paper eqs. 32-34; SCIENCE.md 3, 3b).

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
        Scales with :math:`e^{-s\hat k^2_{\min}} < 0.05` are dropped (then
        :math:`\psi_s` is the magnetisation, already in the basis).
    local_range, local_degree, max_sites
        The local Hermite family (``None``: none). With the Fourier term present, local
        quadratic terms are left out (they are in its span).
    z2
        Keep only terms even under :math:`\phi\to-\phi` (for Z2-symmetric paths).
    """
    fams: list[LatticeFamily] = []
    if fourier:
        fams.append(FourierTwoPoint(lattice))
    if magnetisation:
        fams.append(Magnetisation(lattice, magnetisation))
    if scales and powers:
        # A scale that smooths every non-zero momentum below 5% makes psi_s ~ m: nearly collinear with the
        # magnetisation terms (and with other such scales), which gives huge cancelling coefficients.
        k2 = lattice.khat2()
        kmin = k2[k2 > 0].min()
        kept = [s for s in scales if np.exp(-s * kmin) >= 0.05]
        if kept:
            fams.append(SmoothedPowers(lattice, kept, powers))
    if local_range is not None:
        fams.append(
            LocalHermite(lattice, local_range, local_degree, max_sites=max_sites, z2=z2, min_degree=3 if fourier else 1)
        )
    return LatticeBasis(fams)
