r"""Basis terms in the block-mean and block-fluctuation fields of a multilevel level (issue #16).

On the fine lattice of a level, :math:`B = UP` projects a configuration on block-constant
fields: :math:`m = B\Psi` (every site carries its block's mean, :math:`y = P\Psi` the coarse
field) and :math:`\zeta = (1-B)\Psi` (zero sum over every block). The lifted base of a level
(:class:`~pikflow.lattice.Lift`) treats the two differently, so its action is invariant under
translations by 2 only; the translation-invariant families of :func:`lattice_basis` cannot
represent the potential :math:`\Omega_t` of eq. 34 between it and the fine target. :class:`BlockTerms`
adds

* a two-point term of the coarse field per coarse momentum orbit,
  :math:`T_o = \frac{1}{2V_c}\sum_{q\in o}|\tilde y_q|^2`
  (:math:`\partial T_o = P^T F_o y`, :math:`\Delta T_o = |o|/b`, :math:`b = 2^d`);
* a two-point term of the fluctuation per fine momentum orbit,
  :math:`T_o = \frac{1}{2V}\sum_{k\in o}|\tilde\zeta_k|^2`
  (:math:`\partial T_o = (1-B)F_o\zeta`, :math:`\Delta T_o = \sum_{k\in o}(1 - \prod_\mu\cos^2\frac{k_\mu}{2})`);
* local products :math:`T_{pq} = \sum_n\zeta_n^p m_n^q`: with :math:`f = \zeta^p m^q`,
  :math:`\partial T = (1-B)f_\zeta + Bf_m` and :math:`\Delta T = \sum_n[(1-\tfrac1b)f_{\zeta\zeta} + \tfrac1b f_{mm}]`
  (:math:`\sum_k(1-B)_{nk}B_{nk} = 0`). Terms with :math:`p = 1` vanish (:math:`\zeta` sums to zero
  over a block) and are left out.

Every column of eq. 34, :math:`\Delta T_j - \partial\hat S\cdot\partial T_j`, needs
:math:`\partial\hat S` split once into :math:`(1-B)\partial\hat S` and :math:`B\partial\hat S`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import BasisError
from ..action._geometry import Lattice
from ._basis import LatticeBasis, lattice_basis
from ._basis_spectral import LatticeFamily, _binned_orbits
from ._levels import block_mean, upsample

#: default local products (p, q) of T = sum_n zeta^p m^q: even total degree up to 4, p != 1
DEFAULT_PRODUCTS = ((2, 0), (2, 2), (4, 0), (3, 1), (0, 4))


class BlockTerms(LatticeFamily):
    r"""Two-point terms of the coarse field and of the fluctuation, and local products :math:`\sum\zeta^pm^q`.

    Parameters
    ----------
    lattice
        The fine lattice (even sizes).
    coarse_two_point, fluctuation_two_point
        Include the two-point terms of :math:`y = P\Psi` (per coarse orbit) and of :math:`\zeta` (per fine orbit).
    products
        The local products :math:`(p, q)`, :math:`p \ne 1`.
    fourier_bins
        ``None`` (default): one coefficient per momentum orbit; a number: the orbits of each two-point term merged
        into at most that many groups with geometric edges in :math:`\hat k^2` (as the lattice basis's
        ``fourier_bins``): on large lattices the orbits outnumber what a collocation set determines (2145 at
        128x128).
    """

    def __init__(
        self,
        lattice: Lattice,
        *,
        coarse_two_point: bool = True,
        fluctuation_two_point: bool = True,
        products: Sequence[tuple[int, int]] = DEFAULT_PRODUCTS,
        fourier_bins: int | None = None,
    ):
        if any(int(s) % 2 for s in lattice.shape):
            raise BasisError(f"block terms need even lattice sizes, got {list(lattice.shape)}")
        products = tuple((int(p), int(q)) for p, q in products)
        if not (coarse_two_point or fluctuation_two_point or products):
            raise BasisError("block terms need at least one of the two-point terms or a product")
        if any(p == 1 or p < 0 or q < 0 or p + q < 2 for p, q in products):
            raise BasisError(f"products (p, q) need p != 1, p, q >= 0 and p + q >= 2, got {products}")
        if fourier_bins is not None and (isinstance(fourier_bins, bool) or not isinstance(fourier_bins, int)
                                         or fourier_bins < 1):  # fmt: skip
            raise BasisError(f"fourier_bins must be a positive integer or None, got {fourier_bins!r}")
        self.lattice, self.d = lattice, lattice.d
        self.b = 2**self.d
        self.fourier_bins = fourier_bins

        def orbits(lat: Lattice):
            ids, sizes = lat.momentum_orbits()
            if fourier_bins is None or fourier_bins >= len(sizes) - 1:
                return ids, sizes
            return _binned_orbits(lat, np.asarray(ids), fourier_bins, "log")

        names: list[str] = []
        if coarse_two_point:
            ids, sizes = orbits(Lattice(tuple(s // 2 for s in lattice.shape)))
            self.c_ids, self.c_lap = jnp.asarray(ids), jnp.asarray(np.asarray(sizes, dtype=float) / self.b)
            names += [f"block_mean_fourier[{i}]" for i in range(len(sizes))]
        else:
            self.c_ids = None
        if fluctuation_two_point:
            ids, sizes = orbits(lattice)
            grids = np.meshgrid(*[2 * np.pi * np.fft.fftfreq(n) for n in lattice.shape], indexing="ij")
            keep = 1 - np.prod([np.cos(g / 2) ** 2 for g in grids], axis=0)
            self.f_ids = jnp.asarray(ids)
            self.f_lap = jnp.asarray(np.bincount(np.ravel(ids), weights=np.ravel(keep), minlength=len(sizes)))
            names += [f"fluctuation_fourier[{i}]" for i in range(len(sizes))]
        else:
            self.f_ids = None
        self.products = products
        names += [f"zeta^{p} m^{q}" for p, q in products]
        self.names = names
        self.n = len(names)
        self._nc = 0 if self.c_ids is None else int(self.c_lap.size)
        self._nf = 0 if self.f_ids is None else int(self.f_lap.size)

    # ---------------------------------------------------------------- pieces
    def _split(self, field):
        y = block_mean(field, self.d)
        m = upsample(y, self.d)
        return y, m, field - m

    def _local(self, zeta, m):
        """Per product: f_zeta, f_m and the Laplacian density's sum."""
        out = []
        for p, q in self.products:
            zp = lambda k: zeta**k if k > 0 else jnp.ones_like(zeta)  # noqa: E731
            mq = lambda k: m**k if k > 0 else jnp.ones_like(m)  # noqa: E731
            fz = p * zp(p - 1) * mq(q) if p else jnp.zeros_like(zeta)
            fm = q * zp(p) * mq(q - 1) if q else jnp.zeros_like(m)
            lap = 0.0
            if p >= 2:
                lap = lap + (1 - 1 / self.b) * p * (p - 1) * jnp.sum(zp(p - 2) * mq(q))
            if q >= 2:
                lap = lap + q * (q - 1) * jnp.sum(zp(p) * mq(q - 2)) / self.b
            out.append((fz, fm, lap))
        return out

    def _parts(self, a):
        nc, nf = self._nc, self._nf
        return a[:nc], a[nc : nc + nf], a[nc + nf :]

    # ---------------------------------------------------------------- the family interface
    def values(self, field):
        y, m, zeta = self._split(field)
        vals = []
        if self.c_ids is not None:
            p = jnp.abs(jnp.fft.fftn(y)) ** 2 / (2 * y.size)
            vals.append(jax.ops.segment_sum(p.ravel(), self.c_ids.ravel(), num_segments=self._nc))
        if self.f_ids is not None:
            p = jnp.abs(jnp.fft.fftn(zeta)) ** 2 / (2 * zeta.size)
            vals.append(jax.ops.segment_sum(p.ravel(), self.f_ids.ravel(), num_segments=self._nf))
        if self.products:
            vals.append(jnp.stack([jnp.sum(zeta**p * m**q) for p, q in self.products]))
        return jnp.concatenate(vals)

    def laplacians(self, field):
        _, m, zeta = self._split(field)
        out = [] if self.c_ids is None else [self.c_lap]
        if self.f_ids is not None:
            out.append(self.f_lap)
        if self.products:
            out.append(jnp.stack([jnp.asarray(lap, dtype=field.dtype) for _, _, lap in self._local(zeta, m)]))
        return jnp.concatenate(out)

    def columns(self, field, dS):
        y, m, zeta = self._split(field)
        gc = block_mean(dS, self.d)  # P dS
        gm = upsample(gc, self.d)  # B dS
        gz = dS - gm  # (1 - B) dS
        cols = []
        if self.c_ids is not None:
            prod = jnp.real(jnp.conj(jnp.fft.fftn(gc)) * jnp.fft.fftn(y)) / y.size
            cols.append(self.c_lap - jax.ops.segment_sum(prod.ravel(), self.c_ids.ravel(), num_segments=self._nc))
        if self.f_ids is not None:
            prod = jnp.real(jnp.conj(jnp.fft.fftn(gz)) * jnp.fft.fftn(zeta)) / zeta.size
            cols.append(self.f_lap - jax.ops.segment_sum(prod.ravel(), self.f_ids.ravel(), num_segments=self._nf))
        loc = [lap - jnp.sum(gz * fz) - jnp.sum(gm * fm) for fz, fm, lap in self._local(zeta, m)]
        if loc:
            cols.append(jnp.stack(loc))
        return jnp.concatenate(cols)

    def gradient(self, a, field):
        y, m, zeta = self._split(field)
        ac, af, al = self._parts(a)
        inner_m = jnp.zeros_like(field)  # lies in the block-constant space before B
        inner_z = jnp.zeros_like(field)
        out = jnp.zeros_like(field)
        if self.c_ids is not None:
            gy = jnp.real(jnp.fft.ifftn(ac[self.c_ids] * jnp.fft.fftn(y)))
            out = out + upsample(gy, self.d) / self.b  # P^T = U / b
        if self.f_ids is not None:
            inner_z = inner_z + jnp.real(jnp.fft.ifftn(af[self.f_ids] * jnp.fft.fftn(zeta)))
        for c, (fz, fm, _) in zip(al, self._local(zeta, m), strict=True):
            inner_z = inner_z + c * fz
            inner_m = inner_m + c * fm
        bz = upsample(block_mean(inner_z, self.d), self.d)
        bm = upsample(block_mean(inner_m, self.d), self.d)
        return out + inner_z - bz + bm

    def laplacian(self, a, field):
        return jnp.dot(a, self.laplacians(field))


class BlockNeighbours(LatticeFamily):
    r"""Neighbouring fluctuation pairs times powers of the block mean: :math:`\sum_{n,\mu}\zeta_n\zeta_{n+\mu}m_n^q`.

    With :math:`\sum_k(1-B)_{nk}(1-B)_{n+\mu,k} = -B_{n,n+\mu}` and the cross sums zero,
    :math:`\Delta T_q = \sum_{n,\mu}[-\tfrac2b s_{n\mu}m_n^q + \tfrac{q(q-1)}{b}\zeta_n\zeta_{n+\mu}m_n^{q-2}]`,
    :math:`s_{n\mu} = 1` when :math:`n` and :math:`n+\mu` share a block; gradients by autodiff.
    """

    def __init__(self, lattice: Lattice, powers: Sequence[int] = (0, 2)):
        if any(int(s) % 2 for s in lattice.shape):
            raise BasisError(f"block terms need even lattice sizes, got {list(lattice.shape)}")
        self.powers = tuple(int(q) for q in powers)
        if not self.powers or any(q < 0 for q in self.powers):
            raise BasisError(f"powers must be non-negative integers (at least one), got {powers!r}")
        self.lattice, self.d, self.b = lattice, lattice.d, 2**lattice.d
        self.n = len(self.powers)
        self.names = [f"zeta zeta_nn m^{q}" for q in self.powers]
        grids = np.meshgrid(*[np.arange(s) for s in lattice.shape], indexing="ij")
        self.same = jnp.asarray(np.stack([(g % 2 == 0).astype(float) for g in grids]))  # n, n + mu in one block

    def _pieces(self, field):
        m = upsample(block_mean(field, self.d), self.d)
        zeta = field - m
        pair = sum(zeta * jnp.roll(zeta, -1, axis=mu) for mu in range(self.d))
        return m, zeta, pair

    def values(self, field):
        m, _, pair = self._pieces(field)
        return jnp.stack([jnp.sum(pair * m**q) for q in self.powers])

    def laplacians(self, field):
        m, _, pair = self._pieces(field)
        same = jnp.sum(self.same, axis=0)
        out = []
        for q in self.powers:
            lap = -2 / self.b * jnp.sum(same * m**q)
            if q >= 2:
                lap = lap + q * (q - 1) / self.b * jnp.sum(pair * m ** (q - 2))
            out.append(lap)
        return jnp.stack(out)

    def columns(self, field, dS):
        grads = jax.jacrev(self.values)(field).reshape(self.n, -1)
        return self.laplacians(field) - grads @ dS.reshape(-1)

    def gradient(self, a, field):
        return jax.grad(lambda x: jnp.dot(a, self.values(x)))(field)


class CoarseFamily(LatticeFamily):
    r"""A family of the coarse lattice acting on the block means: :math:`T_j(\Psi) = T^{\rm c}_j(P\Psi)`.

    With :math:`PP^T = 1/b`: :math:`\partial T = P^T\partial T^{\rm c}`, :math:`\Delta T = \Delta T^{\rm c}/b`,
    and the column :math:`\Delta T - \partial\hat S\cdot\partial T` is the coarse family's column for
    :math:`b\,P\partial\hat S`, divided by :math:`b`.
    """

    def __init__(self, lattice: Lattice, family: LatticeFamily):
        if tuple(2 * s for s in family.lattice.shape) != tuple(lattice.shape):
            raise BasisError(f"a coarse family lives on {list(family.lattice.shape)}, half of {list(lattice.shape)}")
        self.lattice, self.family, self.d, self.b = lattice, family, lattice.d, 2**lattice.d
        self.n = family.n
        self.names = [f"coarse {name}" for name in family.names]

    def values(self, field):
        return self.family.values(block_mean(field, self.d))

    def laplacians(self, field):
        return jnp.broadcast_to(self.family.laplacians(block_mean(field, self.d)), (self.n,)) / self.b

    def columns(self, field, dS):
        return self.family.columns(block_mean(field, self.d), self.b * block_mean(dS, self.d)) / self.b

    def gradient(self, a, field):
        return upsample(self.family.gradient(a, block_mean(field, self.d)), self.d) / self.b


def level_basis(
    lattice: Lattice,
    *,
    symmetry=None,
    block: dict | None = None,
    neighbours: Sequence[int] = (),
    coarse: dict | None = None,
    **options,
) -> LatticeBasis:
    """:func:`lattice_basis` of the fine lattice (``options``) plus :class:`BlockTerms` (``block`` its keywords).

    With ``fourier_bins`` the block terms' two-point orbits are merged too (unless ``block`` says otherwise).
    ``neighbours``: the powers :math:`q` of :class:`BlockNeighbours` to add (default none); ``coarse``:
    keywords of a :func:`lattice_basis` of the coarse lattice whose families act on the block means
    (:class:`CoarseFamily`; default none).
    """
    base = lattice_basis(lattice, symmetry=symmetry, **options)
    if options.get("fourier_bins") is not None:  # the block two-point terms merged like the fine lattice's
        block = {"fourier_bins": options["fourier_bins"], **(block or {})}
    extra = [BlockNeighbours(lattice, neighbours)] if neighbours else []
    if coarse is not None:  # the coarse lattice's own basis on the block means
        half = Lattice(tuple(s // 2 for s in lattice.shape))
        extra += [CoarseFamily(lattice, f) for f in lattice_basis(half, **coarse).families]
    return LatticeBasis([*base.families, BlockTerms(lattice, **(block or {})), *extra])


__all__ = ["DEFAULT_PRODUCTS", "BlockNeighbours", "BlockTerms", "CoarseFamily", "level_basis"]
