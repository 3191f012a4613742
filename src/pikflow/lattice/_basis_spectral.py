r"""Global lattice families for :math:`\Omega_t` (paper eqs. 32-34): the Fourier two-point term, the magnetisation.

The common interface is :class:`LatticeFamily` (see :mod:`pikflow.lattice` and the user guide).
With ``n > 1`` field components a configuration has shape ``(n, *lattice)`` and the families
are built from :math:`O(n)` invariants: :math:`\sum_a|\tilde\phi_a(k)|^2` per momentum orbit
and powers of :math:`|m| = (\sum_a m_a^2)^{1/2}`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import BasisError
from ..action._geometry import Lattice
from ..bases import AbstractPotentialBasis


def site_sum(x, ndim: int):
    """Sum over the last ``ndim`` (lattice) axes, as a dot product with ones.

    Same number as ``jnp.sum`` (to rounding); on CPU XLA's reduction over small minor axes
    is several times slower than the BLAS dot (measured 8x on an 8x8 lattice).
    """
    lead = x.shape[: x.ndim - ndim]
    flat = x.reshape(lead + (-1,))
    return flat @ jnp.ones(flat.shape[-1], dtype=flat.dtype)


class LatticeFamily(AbstractPotentialBasis):
    """A family of translation-invariant basis functions :math:`T_j(\\phi)` for :math:`\\Omega` (a potential basis).

    The interface is :class:`pikflow.bases.AbstractPotentialBasis` (values, Laplacians, rows of
    eq. 34, gradient and Laplacian of :math:`\\Omega`); :meth:`spec` describes the family and
    :func:`pikflow.bases.basis_from_spec` (with ``lattice=``) rebuilds it.
    """

    lattice: Lattice

    def _components_spec(self) -> dict:
        return {} if getattr(self, "components", 1) == 1 else {"components": self.components}

    def _symmetry_spec(self) -> dict:
        """The family's :class:`Symmetry` (absent: the lattice's whole point group)."""
        return {} if self.symmetry is None else {"symmetry": self.symmetry.to_spec()}


#: How :class:`FourierTwoPoint` merges orbits into groups (``spacing``).
BIN_SPACINGS = ("count", "log")


class FourierTwoPoint(LatticeFamily):
    r"""Quadratic terms diagonal in momentum space, one per momentum orbit.

    :math:`T_o = \frac{1}{2V}\sum_{k\in o}|\tilde\phi_k|^2`, :math:`\partial T_o = P_o\phi`
    (projector on the orbit), :math:`\Delta T_o = |o|`. With them the free-field
    potential :math:`\Omega = \tfrac12\phi^T A\phi` (the user guide) is exact.

    The orbits are those of ``symmetry`` (a :class:`Symmetry`, e.g. ``path.symmetry()``) with
    :math:`k\to-k`; ``None``: the lattice's whole point group (an isotropic action). With
    orbits larger than the action's symmetry allows the free part of an anisotropic action
    is not in the span.

    ``bins`` (one component only): merge the non-zero orbits, in order of the free lattice momentum
    :math:`\hat k^2 = \sum_\mu 4\sin^2(k_\mu/2)`, into that many groups of consecutive orbits
    (:math:`k = 0` stays alone), so :math:`A(k)` is piecewise constant in :math:`\hat k^2`. The number
    of orbits grows like :math:`V/8` in 2-D (2145 at 128x128), and each coefficient needs rows of
    eq. 34: binned, a large lattice keeps a basis that its collocation set can determine. Exact for a
    free field only where :math:`A(k)` is constant on each group.

    ``spacing``: ``"count"`` (default) gives the groups equal numbers of orbits, so equal areas of the
    Brillouin zone (at 128x128 with 64 groups the lowest spans :math:`\hat k^2` over a factor of about
    100); ``"log"`` gives them geometrically spaced edges in :math:`\hat k^2` (the most edges that give at
    most ``bins`` non-empty groups, so the lowest orbits stay alone and every group spans the same ratio of
    :math:`\hat k^2`), which follows :math:`G(k)` where it changes fastest, near :math:`k = 0`.
    """

    def __init__(
        self,
        lattice: Lattice,
        symmetry=None,
        *,
        components: int = 1,
        shared: bool | None = None,
        bins: int | None = None,
        spacing: str = "count",
    ):
        self.lattice = lattice
        self.symmetry = symmetry
        self.components = int(components)
        ids, sizes = lattice.momentum_orbits() if symmetry is None else symmetry.orbits()
        self.bins = None if bins is None else int(bins)
        if spacing not in BIN_SPACINGS:
            raise BasisError(f"FourierTwoPoint: spacing must be one of {list(BIN_SPACINGS)}, got {spacing!r}")
        self.spacing = spacing
        if self.bins is not None:
            if isinstance(bins, bool) or self.bins < 1 or self.bins != bins:
                raise BasisError(f"FourierTwoPoint: bins must be a whole number >= 1 or None, got {bins!r}")
            if self.components > 1:
                raise BasisError("FourierTwoPoint: bins is for one field component")
            ids, sizes = _binned_orbits(lattice, np.asarray(ids), self.bins, spacing)
        if self.components > 1:
            # n components: T_o = 1/(2V) sum_a sum_{k in o} |phi_a(k)|^2 when they share G(k) (O(n), or permutations
            # that mix them all), else one term per component and orbit
            self.shared = bool(symmetry.shared_components if shared is None and symmetry else shared is not False)
            n_orb = len(sizes)
            offs = np.zeros(self.components, dtype=np.int64) if self.shared else np.arange(self.components) * n_orb
            ids = np.asarray(ids)[None] + offs.reshape((-1,) + (1,) * lattice.d)
            sizes = np.bincount(ids.reshape(-1))
        else:
            self.shared = True
        self.ids = jnp.asarray(ids)
        self.sizes = jnp.asarray(sizes, dtype=float)
        self.n = len(sizes)
        self.names = [f"fourier[{i}]" for i in range(self.n)]
        self._axes = None if self.components == 1 else tuple(range(-lattice.d, 0))

    kind = "fourier"

    def spec(self) -> dict:
        comps = self._components_spec()
        binned = {} if self.bins is None else {"bins": self.bins}
        if self.bins is not None and self.spacing != "count":
            binned["spacing"] = self.spacing
        shared = {"shared": self.shared} if comps else {}
        return {"kind": self.kind, **self._symmetry_spec(), **comps, **shared, **binned}

    def _seg(self, x):
        return jax.ops.segment_sum(x.reshape(-1), self.ids.reshape(-1), num_segments=self.n)

    def _ft(self, x):
        return jnp.fft.fftn(x, axes=self._axes)

    def values(self, field):
        ft = self._ft(field)
        return self._seg(jnp.abs(ft) ** 2) / (2 * self.lattice.volume)

    def laplacians(self, field):
        return self.sizes

    def columns(self, field, dS):
        prod = jnp.real(jnp.conj(self._ft(dS)) * self._ft(field))
        return self.sizes - self._seg(prod) / self.lattice.volume

    def gradient(self, a, field):
        return jnp.real(jnp.fft.ifftn(a[self.ids] * self._ft(field), axes=self._axes))

    def laplacian(self, a, field):
        return jnp.dot(a, self.sizes)


def _binned_orbits(lattice: Lattice, ids: np.ndarray, bins: int, spacing: str = "count") -> tuple:
    r"""Orbit ids merged into ``bins`` groups of consecutive non-zero orbits in :math:`\hat k^2` (0 stays 0).

    ``"count"``: equal numbers of orbits per group; ``"log"``: geometric edges in :math:`\hat k^2`, the most
    that give at most ``bins`` non-empty groups.
    """
    khat2 = np.asarray(lattice.khat2())
    n_orb = int(ids.max()) + 1
    orbit_k2 = np.zeros(n_orb)
    orbit_k2[ids.reshape(-1)] = khat2.reshape(-1)  # one value per orbit: the group keeps k^2
    order = 1 + np.argsort(orbit_k2[1:], kind="stable")
    group = np.zeros(n_orb, dtype=np.int64)
    if spacing == "log":
        logk = np.log(orbit_k2[order])
        span = max(float(logk[-1] - logk[0]), 1e-12)

        def groups(edges: int) -> np.ndarray:
            cell = np.minimum((logk - logk[0]) / span * edges, edges - 1).astype(np.int64)
            return np.unique(cell, return_inverse=True)[1]  # non-empty cells, relabelled in order

        lo, hi = 1, max(bins, 1)
        while groups(hi).max() + 1 <= bins and hi < 1 << 30:  # the most edges that give at most bins groups
            lo, hi = hi, 2 * hi
        while lo < hi - 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if groups(mid).max() + 1 <= bins else (lo, mid)
        group[order] = 1 + groups(lo)
    else:
        for g, chunk in enumerate(np.array_split(order, min(bins, n_orb - 1))):
            group[chunk] = g + 1
    new = group[ids]
    return new, np.bincount(new.reshape(-1))


class Magnetisation(LatticeFamily):
    r"""Global terms :math:`T_p = V f_p(m)`, :math:`m = \frac1V\sum_n\phi_n`, and optionally :math:`\log\cosh(bM)`.

    :math:`f_p` is :func:`tamed_power` with the absolute ``width`` (``None``: :math:`m^p`);
    :math:`\partial_n T_p = f_p'(m)`, :math:`\Delta T_p = f_p''(m)`. With ``log_cosh`` :math:`=b`
    one more term :math:`T = \log\cosh(bM)` (:math:`\partial_n T = b\tanh bM`,
    :math:`\Delta T = Vb^2/\cosh^2 bM`): the zero-mode structure of the two-Gaussian
    mixture base (:class:`GaussianLatticeBase` with ``m0 > 0``), whose action carries it.
    ``log_cosh=0`` gives that term as an identically zero column (its coefficient is 0): it gives
    a Gaussian candidate of :func:`fit_lattice` the mixture's structure, so both share compiled code.
    """

    def __init__(
        self,
        lattice: Lattice,
        powers: Sequence[int] = (4, 6),
        *,
        width: float | None = None,
        log_cosh: float | None = None,
        components: int = 1,
    ):
        self.lattice = lattice
        self.powers = tuple(int(p) for p in powers)
        self.components = int(components)
        if any(p < 1 for p in self.powers):
            raise BasisError(f"magnetisation powers must be positive integers, got {list(powers)}")
        if self.components > 1 and (any(p % 2 or p < 2 for p in self.powers) or log_cosh is not None):
            raise BasisError(
                f"with {self.components} components the magnetisation terms are even powers of |m| (O(n) "
                f"invariants), without log cosh; got powers {list(powers)}"
            )
        if width is not None and not width > 0:
            raise BasisError(f"the magnetisation taming width must be positive (or None), got {width!r}")
        if log_cosh is not None and not log_cosh >= 0:
            raise BasisError(f"the log cosh coupling b must be >= 0 (or None), got {log_cosh!r}")
        self.width = None if width is None else float(width)
        self.log_cosh = None if log_cosh is None else float(log_cosh)
        self.n = len(self.powers) + (self.log_cosh is not None)
        self.names = [f"V*{'|m|' if self.components > 1 else 'm'}**{p}" for p in self.powers]
        if self.log_cosh is not None:
            self.names.append(f"log cosh({self.log_cosh:.4g} M)")

    kind = "magnetisation"

    def spec(self) -> dict:
        return {
            "kind": self.kind,
            "powers": list(self.powers),
            "width": self.width,
            "log_cosh": self.log_cosh,
            **self._components_spec(),
        }

    def _radial(self, field):
        r"""``n > 1``: per term :math:`T_p = V F_p(|m|)`, :math:`F_p'/|m|` and :math:`\Delta T_p`, and :math:`m_a`."""
        d = self.lattice.d
        m = jnp.mean(field, axis=tuple(range(-d, 0)))
        r2 = jnp.sum(m * m)
        vals, over, laps = [], [], []
        for p in self.powers:
            f, f1r, f2 = radial_parts(r2, p, self.width)
            vals.append(self.lattice.volume * f)
            over.append(f1r)
            laps.append(f2 + (self.components - 1) * f1r)
        return jnp.stack(vals), jnp.stack(over), jnp.stack(laps), m

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
            from ..lowering import log_cosh_term

            for out, part in zip((vals, d1, d2), log_cosh_term(self.log_cosh, V * m, V), strict=True):
                out.append(part)
        return jnp.stack(vals), jnp.stack(d1), jnp.stack(d2)

    def values(self, field):
        return self._parts(field)[0] if self.components == 1 else self._radial(field)[0]

    def laplacians(self, field):
        return self._parts(field)[2] if self.components == 1 else self._radial(field)[2]

    def columns(self, field, dS):
        if self.components > 1:
            _, over, lap, m = self._radial(field)
            return lap - over * jnp.dot(m, jnp.sum(dS, axis=tuple(range(-self.lattice.d, 0))))
        _, d1, d2 = self._parts(field)
        return d2 - d1 * jnp.sum(dS)

    def gradient(self, a, field):
        if self.components > 1:
            _, over, _, m = self._radial(field)
            g = jnp.dot(a, over) * m
            return jnp.broadcast_to(g.reshape((-1,) + (1,) * self.lattice.d), field.shape)
        return jnp.broadcast_to(jnp.dot(a, self._parts(field)[1]), field.shape)


def radial_parts(r2, p: int, width):
    r"""Even ``p``: :math:`F(r) = f_p(r)` (:func:`tamed_power`), :math:`F'(r)/r`, :math:`F''(r)`, from :math:`r^2`.

    The pieces of an :math:`O(n)`-invariant term :math:`F(|x|)`, :math:`x\in\mathbb R^n`: its
    gradient is :math:`(F'/r)\,x` and its Laplacian :math:`F'' + (n-1)F'/r`; all are polynomials
    in :math:`r^2` times powers of :math:`1 + r^2/c^2`, so no square root is taken.
    """
    if p % 2 or p < 2:
        raise BasisError(f"radial powers must be even and >= 2, got {p}")
    h = p // 2
    low = r2 ** (h - 1)
    if width is None or p <= 2:
        return r2**h, p * low, p * (p - 1) * low
    u2 = r2 / width**2
    r = 1 + u2
    a = p + 2 * u2
    rp = _rpow(r, p / 2)
    f = r2**h * _rpow(r, (p - 2) / 2)
    return f, low * rp * a, low * rp / r * ((p - 1) * a * r - p * u2 * a + 4 * u2 * r)


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
