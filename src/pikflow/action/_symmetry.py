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

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ._density import shift_sites, site, site_key, site_offset
from ._geometry import Lattice


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


def _transform(expr: sp.Expr, g: np.ndarray, sign, dim: int, rename: dict | None = None) -> sp.Expr:
    """``expr`` with site offsets mapped by ``g``, fields renamed by ``rename`` and multiplied by ``sign``.

    ``sign`` is a number (every field) or a mapping from field name to +-1.
    """
    table = {}
    for s in expr.free_symbols:
        key = site_key(s, dim)
        if key is not None:
            field, o = key
            f = sign.get(field, 1) if isinstance(sign, dict) else sign
            table[s] = f * site(tuple(int(x) for x in g @ np.asarray(o)), (rename or {}).get(field, field))
    return expr.xreplace(table)


def _rotation_invariant(density: sp.Expr, dim: int, a: str, b: str) -> bool:
    r"""Whether :math:`\sum_n\rho` is invariant under rotations in the plane of components ``a``, ``b``.

    The generator :math:`\sum_{n}(\phi_{a,n}\partial_{\phi_{b,n}} - \phi_{b,n}\partial_{\phi_{a,n}})` applied to
    the action must vanish; on the density every site offset :math:`o` of either field contributes.
    """
    offsets = {k[1] for s in density.free_symbols if (k := site_key(s, dim)) is not None and k[0] in (a, b)}
    delta = sp.Integer(0)
    for o in offsets:
        sa, sb = site(o, a), site(o, b)
        delta += sa * sp.diff(density, sb) - sb * sp.diff(density, sa)
    return _same(_canonical(delta, dim), {})


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
    components: int = 1
    on: bool = False
    component_z2: tuple = ()
    component_perms: tuple = ()

    @classmethod
    def full(cls, lattice: Lattice, z2: bool = True) -> Symmetry:
        """The whole point group of ``lattice`` (reflections, permutations of equal-size axes), and ``z2``."""
        return cls(lattice, tuple(_key(g) for g in lattice.point_group()), bool(z2))

    @classmethod
    def of_density(cls, density: sp.Expr, lattice: Lattice, fields=("phi",)) -> Symmetry:
        """Detect the symmetries of :math:`\\sum_n\\rho(n)` for an expanded density in site symbols.

        With several ``fields`` (components) also the internal ones: :math:`O(n)` (every rotation
        generator annihilates the action, and one component's sign flip is a symmetry), the sign
        flip of each component and the permutations of components.
        """
        dim = lattice.d
        ref = _canonical(density, dim)
        one = np.eye(dim, dtype=np.int64)
        group = tuple(
            _key(g) for g in lattice.point_group() if _same(ref, _canonical(_transform(density, g, 1, dim), dim))
        )
        z2 = _same(ref, _canonical(_transform(density, one, -1, dim), dim))
        fields = tuple(str(f) for f in fields)
        if len(fields) == 1:
            return cls(lattice, group, z2)
        flips = tuple(_same(ref, _canonical(_transform(density, one, {f: -1}, dim), dim)) for f in fields)
        perms = tuple(
            p
            for p in itertools.permutations(range(len(fields)))
            if _same(ref, _canonical(_transform(density, one, 1, dim, {fields[i]: fields[p[i]] for i in p}), dim))
        )
        pairs = itertools.combinations(fields, 2)
        on = flips[0] and all(_rotation_invariant(density, dim, a, b) for a, b in pairs)
        return cls(lattice, group, z2, len(fields), bool(on), flips, perms)

    def matrices(self) -> list[np.ndarray]:
        """The group elements as integer matrices."""
        return [np.asarray(g, dtype=np.int64) for g in self.group]

    def intersect(self, other: Symmetry) -> Symmetry:
        """The symmetries both have."""
        return dataclasses.replace(
            self,
            group=tuple(g for g in self.group if g in set(other.group)),
            z2=self.z2 and other.z2,
            on=self.on and other.on,
            component_z2=tuple(a and b for a, b in zip(self.component_z2, other.component_z2, strict=True)),
            component_perms=tuple(p for p in self.component_perms if p in set(other.component_perms)),
        )

    def restrict_to_spectrum(self, values) -> Symmetry:
        r"""The subgroup under which the spectrum ``values`` (shape of the lattice, or ``(n, *lattice)``) is invariant.

        With ``n`` components, :math:`O(n)` and a permutation of components survive only if they
        leave the per-component spectra :math:`K_a(k)` unchanged (the Gaussian is even per component).
        """
        K = np.asarray(values, dtype=float)
        per = K.reshape((-1,) + tuple(self.lattice.shape))
        idx = np.indices(self.lattice.shape).reshape(self.lattice.d, -1)
        L = np.asarray(self.lattice.shape)[:, None]
        keep = []
        for g in self.matrices():
            moved = tuple(((g @ idx) % L).tolist())
            if all(np.allclose(k[moved].reshape(k.shape), k, rtol=1e-9, atol=0) for k in per):
                keep.append(_key(g))
        if self.components == 1:
            return Symmetry(self.lattice, tuple(keep), self.z2)
        same = lambda p: all(np.allclose(per[p[i]], per[i], rtol=1e-9, atol=0) for i in range(len(p)))  # noqa: E731
        perms = tuple(p for p in self.component_perms if same(p))
        on = self.on and all(np.allclose(k, per[0], rtol=1e-9, atol=0) for k in per)
        return dataclasses.replace(self, group=tuple(keep), on=on, component_perms=perms)

    @property
    def shared_components(self) -> bool:
        """Whether every component has the same two-point function: :math:`O(n)`, or permutations mixing all."""
        if self.components == 1 or self.on:
            return True
        reach = {0}
        for p in self.component_perms:
            reach.add(p[0])
        return len(reach) == self.components

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
        spec = {"group": [[list(r) for r in g] for g in self.group], "z2": self.z2}
        if self.components > 1:
            spec.update(
                components=self.components,
                on=self.on,
                component_z2=list(self.component_z2),
                component_perms=[list(p) for p in self.component_perms],
            )
        return spec

    @classmethod
    def from_spec(cls, spec: dict, lattice: Lattice) -> Symmetry:
        """The inverse of :meth:`to_spec`."""
        group = tuple(_key(np.asarray(g)) for g in spec["group"])
        if int(spec.get("components", 1)) == 1:
            return cls(lattice, group, bool(spec["z2"]))
        return cls(
            lattice,
            group,
            bool(spec["z2"]),
            int(spec["components"]),
            bool(spec["on"]),
            tuple(bool(x) for x in spec["component_z2"]),
            tuple(tuple(int(i) for i in p) for p in spec["component_perms"]),
        )

    def __str__(self) -> str:
        perms = [p for p in self.permutations if p != tuple(range(self.lattice.d))]
        refl = [mu for mu, r in enumerate(self.reflections) if r]
        shown = "none" if not perms else (str(perms) if len(perms) <= 3 else f"{len(perms)} of them")
        text = (
            f"translations, {len(self.group)} of {len(self.lattice.point_group())} point-group elements "
            f"(reflections of axes {refl}, axis permutations {shown}), Z2 {'yes' if self.z2 else 'no'}"
        )
        if self.components > 1:
            if self.on:
                text += f", O({self.components}) of the {self.components} components"
            else:
                flips = [i for i, f in enumerate(self.component_z2) if f]
                text += (
                    f", sign flips of components {flips}, {len(self.component_perms)} of "
                    f"{np.prod(range(1, self.components + 1))} component permutations, no O({self.components})"
                )
        return text


def _key(g) -> tuple:
    return tuple(tuple(int(x) for x in row) for row in np.asarray(g))
