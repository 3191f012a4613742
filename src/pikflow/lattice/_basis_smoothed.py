r"""Multi-scale smoothed families for :math:`\Omega_t` (paper eqs. 32-34; the user guide).

:class:`SmoothedPowers` (powers of heat-kernel-smoothed fields) and :class:`SmoothedProducts`
(cross-scale products). With ``n > 1`` components the powers are of the local invariant
:math:`|\psi_s(n)| = (\sum_a\psi_{s,a}(n)^2)^{1/2}` (radial functions: :math:`O(n)`-equivariant velocities).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import BasisError
from ..action._geometry import Lattice
from ._basis_spectral import LatticeFamily, radial_parts, site_sum, tamed_power, tamed_power_derivatives

#: How the smoothed families filter: ``"precision"`` with :math:`e^{-s(K-K_{\min})}` of their precision
#: :math:`K` (default), ``"lattice"`` with :math:`e^{-s\hat k^2}` of the free lattice (separable across axes).
SMOOTHINGS = ("precision", "lattice")

#: The default ladder of smoothing scales (the user guide: 7 scales gave ESS/N 0.95).
DEFAULT_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


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
    ``smoothing="lattice"``: the filters use the free lattice :math:`\hat k^2` instead of
    ``precision`` (which still sets the widths): :math:`e^{-s\hat k^2} = \prod_\mu e^{-s\hat k_\mu^2}`
    is a product over the axes, so :class:`~pikflow.lattice._fused.FusedEvaluator` smooths with one
    small matrix per axis instead of Fourier transforms on small lattices (issue #20).

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
        components: int = 1,
        smoothing: str = "precision",
    ):
        self.lattice = lattice
        self.scales = tuple(float(s) for s in scales)
        self.powers = tuple(int(p) for p in powers)
        self.components = int(components)
        if any(s < 0 for s in self.scales) or any(p < 2 for p in self.powers):
            raise BasisError(f"scales must be >= 0 and powers >= 2, got {list(scales)}, {list(powers)}")
        if self.components > 1 and any(p % 2 for p in self.powers):
            raise BasisError(
                f"with {self.components} components the smoothed powers are even powers of |psi_s| (O(n) "
                f"invariants), got powers {list(powers)}"
            )
        if tame is not None and not tame > 0:
            raise BasisError(f"tame must be a positive multiple of the field's width (or None), got {tame!r}")
        if smoothing not in SMOOTHINGS:
            raise BasisError(f"smoothing must be one of {list(SMOOTHINGS)}, got {smoothing!r}")
        self.smoothing = smoothing
        if precision is None:
            K = lattice.khat2()
            G = 1.0 / (K + 1.0)
        else:
            K = np.asarray(precision, dtype=float)
            if self.components > 1 and K.shape == (self.components, *lattice.shape):
                K = 1.0 / np.mean(1.0 / K, axis=0)  # one smoothing for every component (equal K for O(n))
            if K.shape != lattice.shape or not np.all(K > 0):
                raise BasisError(f"precision must be positive with the lattice's shape {list(lattice.shape)}")
            G = 1.0 / K
        self.precision = None if precision is None else K
        if smoothing == "lattice":
            K = lattice.khat2()
        Kr = K - K.min()
        filt = np.stack([np.exp(-s * Kr) for s in self.scales])
        self.filters = jnp.asarray(filt)
        self.h = jnp.asarray(np.mean(filt**2, axis=tuple(range(1, filt.ndim))))
        sigma = np.sqrt(np.mean(filt**2 * G, axis=tuple(range(1, filt.ndim))))
        self.tame = tame
        # the width of |psi_s| with n components is sqrt(n) times that of one component
        self.widths = None if tame is None else tuple(float(tame * x * np.sqrt(self.components)) for x in sigma)
        self.n = len(self.scales) * len(self.powers)
        bar = "|psi_{}|" if self.components > 1 else "psi_{}"
        self.names = [f"sum {bar.format(s)}**{p}" for s in self.scales for p in self.powers]

    kind = "smoothed_powers"

    def spec(self) -> dict:
        """Scales, powers, taming and (when given) the precision :math:`K(k)` as nested lists."""
        spec = {"kind": self.kind, "scales": list(self.scales), "powers": list(self.powers), "tame": self.tame}
        spec.update(self._components_spec())
        if self.smoothing != "precision":
            spec["smoothing"] = self.smoothing
        if type(self) is SmoothedProducts:
            del spec["powers"]
        if self.precision is not None:
            spec["precision"] = np.asarray(self.precision, dtype=float).tolist()
        return spec

    # ---- n > 1 components: radial functions F(|psi_s|) of the local invariant
    def _psi_c(self, field):
        """``(scales, n, *lattice)``: every component smoothed at every scale."""
        axes = tuple(range(-self.lattice.d, 0))
        ft = jnp.fft.fftn(field, axes=axes)
        filt = self.filters.reshape((len(self.scales), 1) + self.lattice.shape)
        return jnp.real(jnp.fft.ifftn(filt * ft[None], axes=axes))

    def _radial(self, field):
        """Per power ``(F, F'/r, F'')`` of :math:`r = |\\psi_s|` (shape ``(scales, *lattice)`` each), and ``psi``."""
        psi = self._psi_c(field)
        r2 = jnp.sum(psi * psi, axis=1)
        w = self._w(self.lattice.d)
        return [radial_parts(r2, p, w) for p in self.powers], psi

    def _radial_laplacians(self, parts):
        d, n = self.lattice.d, self.components
        return self._stack([self.h * site_sum(f2 + (n - 1) * f1r, d) for _, f1r, f2 in parts])

    def _values_c(self, field):
        parts, _ = self._radial(field)
        return self._stack([site_sum(f, self.lattice.d) for f, _, _ in parts])

    def _columns_c(self, field, dS):
        parts, psi = self._radial(field)
        proj = jnp.sum(self._psi_c(dS) * psi, axis=1)  # sum_a (S_s dS)_a psi_{s,a}
        drift = self._stack([site_sum(proj * f1r, self.lattice.d) for _, f1r, _ in parts])
        return self._radial_laplacians(parts) - drift

    def _gradient_c(self, a, field):
        parts, psi = self._radial(field)
        a = a.reshape(len(self.scales), len(self.powers))
        shape = (-1,) + (1,) * self.lattice.d
        over = sum(a[:, j].reshape(shape) * f1r for j, (_, f1r, _) in enumerate(parts))
        axes = tuple(range(-self.lattice.d, 0))
        filt = self.filters.reshape((len(self.scales), 1) + self.lattice.shape)
        inner = jnp.fft.fftn(over[:, None] * psi, axes=axes)
        return jnp.real(jnp.fft.ifftn(jnp.sum(filt * inner, axis=0), axes=axes))

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
        if self.components > 1:
            return self._values_c(field)
        psi, w = self._psi(field), self._w(field.ndim)
        return self._stack([self._sum(tamed_power(psi, p, w)) for p in self.powers])

    def laplacians(self, field):
        if self.components > 1:
            return self._radial_laplacians(self._radial(field)[0])
        psi, w = self._psi(field), self._w(field.ndim)
        return self._stack([self.h * self._sum(tamed_power_derivatives(psi, p, w)[1]) for p in self.powers])

    def columns(self, field, dS):
        if self.components > 1:
            return self._columns_c(field, dS)
        psi, w = self._psi(field), self._w(field.ndim)
        sdS = self._psi(dS)
        out = []
        for p in self.powers:
            d1, d2 = tamed_power_derivatives(psi, p, w)
            out.append(self.h * self._sum(d2) - self._sum(sdS * d1))
        return self._stack(out)

    def gradient(self, a, field):
        if self.components > 1:
            return self._gradient_c(a, field)
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

    def __init__(
        self,
        lattice: Lattice,
        scales: Sequence[float] = DEFAULT_SCALES,
        *,
        precision=None,
        tame=None,
        smoothing: str = "precision",
    ):
        if precision is not None and np.ndim(precision) != lattice.d:
            raise BasisError("SmoothedProducts is for single-component fields only (precision of the lattice's shape)")
        super().__init__(lattice, scales, (4,), precision=precision, tame=tame, smoothing=smoothing)
        ns = len(self.scales)
        self.pairs = [(a, b) for a in range(ns) for b in range(a + 1, ns)]
        if not self.pairs:
            raise BasisError("SmoothedProducts needs at least two scales")
        f = np.asarray(self.filters).reshape(ns, -1)
        self.hab = jnp.asarray(f @ f.T / f.shape[1])
        self.n = len(self.pairs)
        self.names = [f"sum q(psi_{self.scales[a]}) q(psi_{self.scales[b]})" for a, b in self.pairs]

    kind = "smoothed_products"

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
