r"""The symmetry group of a lattice action, detected symbolically (never assumed).

A point-group element :math:`g` (a signed permutation of the axes, permuting only axes of
equal size) acts on fields by :math:`(g\phi)_n = \phi_{gn}`; on a site symbol of the
density it maps the offset :math:`o` to :math:`go`, so ``shift(phi, mu)`` becomes
``shift(phi, mu, -1)`` under the reflection of axis ``mu``. :math:`Z_2` maps
:math:`\phi\to-\phi`. The action :math:`\hat S = \sum_n\rho(n)` is invariant when the
transformed density sums to the same action: both are brought to a canonical form modulo
translations (every term moved so that its lexicographically smallest site is the origin,
equal terms collected) and compared coefficient by coefficient in SymPy, so couplings that
are symbols or functions of ``t`` are compared as expressions (a path is symmetric only if
it is at every ``t``). Translations are always symmetries (periodic lattice).

Symmetrising the matched base's :math:`G(k)` and the Fourier two-point basis uses the
orbits of the momenta under the detected group: :math:`\tilde{(g\phi)}_k = \tilde\phi_{gk}`,
together with :math:`k\to-k` (:math:`|\tilde\phi_{-k}| = |\tilde\phi_k|` for every real field).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from ._action import shift_sites, site_offset
from ._lattice import Lattice


def _canonical(expr: sp.Expr, dim: int) -> dict:
    """The density as ``{canonical site monomial: coefficient}``, modulo translations."""
    out: dict = {}
    for term in sp.Add.make_args(sp.expand(expr)):
        sites = {s: o for s in term.free_symbols if (o := site_offset(s, dim)) is not None}
        coeff, dep = term.as_independent(*sites, as_Add=False) if sites else (term, sp.Integer(1))
        if sites:
            low = min(sites.values())
            dep = shift_sites(dep, [-x for x in low], dim)
        out[dep] = out.get(dep, sp.Integer(0)) + coeff
    return out


def _same(a: dict, b: dict) -> bool:
    for key in set(a) | set(b):
        diff = sp.expand(a.get(key, 0) - b.get(key, 0))
        if diff != 0 and sp.simplify(diff) != 0:
            return False
    return True


def _transform(expr: sp.Expr, g: np.ndarray, sign: int, dim: int) -> sp.Expr:
    from ._action import site

    table = {}
    for s in expr.free_symbols:
        o = site_offset(s, dim)
        if o is not None:
            table[s] = sign * site(tuple(int(x) for x in g @ np.asarray(o)))
    return expr.xreplace(table)


@dataclass(frozen=True)
class Symmetry:
    r"""The symmetries of a lattice action beyond translations: point-group elements and :math:`Z_2`.

    Attributes
    ----------
    lattice
        The lattice.
    group
        The point-group elements that leave the action invariant, as ``d x d`` signed
        permutation matrices (nested tuples); always holds the identity.
    z2
        Whether :math:`\phi\to-\phi` leaves the action invariant.

    Examples
    --------
    >>> from pikflow.lattice import LatticeAction
    >>> S = LatticeAction("(m2 + 2*d)/2*phi**2 - kx*phi*shift(phi, 0) - ky*phi*shift(phi, 1)", [8, 8])
    >>> sym = S.symmetry()
    >>> sym.reflections, sym.permutations, sym.z2
    ((True, True), ((0, 1),), True)
    """

    lattice: Lattice
    group: tuple
    z2: bool

    @classmethod
    def full(cls, lattice: Lattice, z2: bool = True) -> Symmetry:
        """The whole point group of ``lattice`` (reflections, permutations of equal-size axes), and ``z2``."""
        return cls(lattice, tuple(_key(g) for g in lattice.point_group()), bool(z2))

    @classmethod
    def of_density(cls, density: sp.Expr, lattice: Lattice) -> Symmetry:
        """Detect the symmetries of :math:`\\sum_n\\rho(n)` for an expanded density in site symbols."""
        dim = lattice.d
        ref = _canonical(density, dim)
        group = tuple(
            _key(g) for g in lattice.point_group() if _same(ref, _canonical(_transform(density, g, 1, dim), dim))
        )
        z2 = _same(ref, _canonical(_transform(density, np.eye(dim, dtype=np.int64), -1, dim), dim))
        return cls(lattice, group, z2)

    def matrices(self) -> list[np.ndarray]:
        """The group elements as integer matrices."""
        return [np.asarray(g, dtype=np.int64) for g in self.group]

    def intersect(self, other: Symmetry) -> Symmetry:
        """The symmetries both have."""
        return Symmetry(self.lattice, tuple(g for g in self.group if g in set(other.group)), self.z2 and other.z2)

    def restrict_to_spectrum(self, values) -> Symmetry:
        r"""The subgroup under which the spectrum ``values`` (shape of the lattice) is invariant."""
        K = np.asarray(values, dtype=float)
        idx = np.indices(self.lattice.shape).reshape(self.lattice.d, -1)
        L = np.asarray(self.lattice.shape)[:, None]
        keep = []
        for g in self.matrices():
            moved = tuple(((g @ idx) % L).tolist())
            if np.allclose(K[moved].reshape(K.shape), K, rtol=1e-9, atol=0):
                keep.append(_key(g))
        return Symmetry(self.lattice, tuple(keep), self.z2)

    @property
    def reflections(self) -> tuple[bool, ...]:
        """Per axis, whether its reflection :math:`n_\\mu\\to-n_\\mu` is a symmetry."""
        out = []
        for mu in range(self.lattice.d):
            g = np.eye(self.lattice.d, dtype=np.int64)
            g[mu, mu] = -1
            out.append(_key(g) in set(self.group))
        return tuple(out)

    @property
    def permutations(self) -> tuple[tuple[int, ...], ...]:
        """The axis permutations that occur in the group (with some signs), sorted; ``(0, .., d-1)`` always."""
        perms = {tuple(int(np.argmax(np.abs(row))) for row in np.asarray(g)) for g in self.group}
        return tuple(sorted(perms))

    def orbits(self) -> tuple[np.ndarray, np.ndarray]:
        """Momentum orbits under the group and :math:`k\\to-k` (see :meth:`Lattice.momentum_orbits`)."""
        return self.lattice.momentum_orbits(self.matrices())

    def to_spec(self) -> dict:
        """A JSON-able record (for saved flows)."""
        return {"group": [[list(r) for r in g] for g in self.group], "z2": self.z2}

    @classmethod
    def from_spec(cls, spec: dict, lattice: Lattice) -> Symmetry:
        """The inverse of :meth:`to_spec`."""
        return cls(lattice, tuple(_key(np.asarray(g)) for g in spec["group"]), bool(spec["z2"]))

    def __str__(self) -> str:
        perms = [p for p in self.permutations if p != tuple(range(self.lattice.d))]
        refl = [mu for mu, r in enumerate(self.reflections) if r]
        shown = "none" if not perms else (str(perms) if len(perms) <= 3 else f"{len(perms)} of them")
        return (
            f"translations, {len(self.group)} of {len(self.lattice.point_group())} point-group elements "
            f"(reflections of axes {refl}, axis permutations {shown}), Z2 {'yes' if self.z2 else 'no'}"
        )


def _key(g) -> tuple:
    return tuple(tuple(int(x) for x in row) for row in np.asarray(g))
