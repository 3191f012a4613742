r"""Local Hermite terms for :math:`\Omega_t` (paper sec. IV B 2): products of Hermite polynomials of nearby sites."""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._errors import BasisError
from ..action._density import shift_sites, site, site_symbols
from ..action._geometry import Lattice
from ..lowering import lower_site_expressions
from ._basis_spectral import LatticeFamily


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

    kind = "local_hermite"

    def spec(self) -> dict:
        return {
            "kind": self.kind,
            "range": self.range,
            "degree": self.degree,
            "max_sites": self.max_sites,
            "z2": self.z2,
            "min_degree": self.min_degree,
            **self._symmetry_spec(),
        }

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
