r"""The exactly sampled Gaussian base of a lattice flow, diagonal in momentum space (paper eq. 10).

For a translation-invariant quadratic action :math:`\hat S_0 = \tfrac12\phi^T K\phi` the
precision is diagonal in momentum space, :math:`K(k)`; for eq. 31 at :math:`\lambda = 0`,
:math:`K(k) = m^2 + \hat k^2`. Samples are :math:`\phi = \mathcal F^{-1}[K^{-1/2}\mathcal F z]`
with white noise :math:`z` (exact, :math:`O(V\log V)`), and
:math:`\log q_0 = -\tfrac12 z^Tz + \tfrac12\sum_k\log K(k) - \tfrac V2\log 2\pi`.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from jaxtyping import Array, Float

from .. import _random
from .._errors import ActionError
from ..action import Lattice, LatticePath
from ..action._density import site_symbols
from ..action._geometry import reflected
from ..lowering import log_cosh


class GaussianLatticeBase(eqx.Module):
    r"""The normal distribution :math:`p_0\propto e^{-\frac12\phi^TK\phi}`, :math:`K` diagonal in momentum space.

    With ``m0 > 0`` it is the symmetric two-Gaussian mixture split along the zero mode,
    :math:`p_0 = \tfrac12 N(m_0\mathbf 1, K^{-1}) + \tfrac12 N(-m_0\mathbf 1, K^{-1})`
    (a base for the broken phase, whose magnetisation has two peaks). Only the zero mode
    differs from the Gaussian:

    .. math::  \log p_0(\phi) = \log N(\phi; 0, K^{-1}) - \tfrac12 K(0) V m_0^2 + \log\cosh(b M),
               \qquad b = K(0)\,m_0,\ M = \textstyle\sum_n\phi_n,

    so :math:`-\log p_0 = \tfrac12\phi^TK\phi - \log\cosh(bM) + \text{const}` (the path's
    base action, :meth:`LatticePath.matched`), sampled exactly (a fair sign, then the Gaussian).

    Parameters
    ----------
    precision
        :math:`K(k)` on the FFT grid (``numpy.fft`` order), shape of the lattice, positive.
    m0
        The shift :math:`m_0 \ge 0` of the two components along the constant mode (0: Gaussian).
    mean
        A uniform mean :math:`\mu`: the Gaussian :math:`N(\mu\mathbf 1, K^{-1})`, whose action is
        :math:`\tfrac12\phi^TK\phi - hM + \text{const}`, :math:`h = K(0)\mu` (the matched base of an
        action without :math:`Z_2` symmetry, where :math:`\langle\phi\rangle \ne 0`; not with ``m0 > 0``).
    components
        ``n > 1``: ``precision`` has shape ``(n, *lattice)``, one :math:`K_a(k)` per component (the
        components independent), and samples have shape ``(..., n, *lattice)``; no ``m0`` nor ``mean``.
    """

    precision: Float[Array, ...]
    log_norm: Float[Array, ""]
    m0: float = eqx.field(static=True)
    mean: float = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)
    components: int = eqx.field(static=True)

    def __init__(self, precision, m0: float = 0.0, mean: float = 0.0, components: int = 1):
        self.components = int(components)
        K = np.asarray(precision, dtype=float)
        if self.components > 1 and (K.ndim < 2 or K.shape[0] != self.components or m0 or mean):
            raise ActionError(
                f"a {self.components}-component base needs a precision of shape ({self.components}, *lattice) "
                f"and no m0 or mean, got shape {K.shape}, m0 {m0!r}, mean {mean!r}"
            )
        if K.ndim < 1 or not np.all(np.isfinite(K)) or not np.all(K > 0):
            raise ActionError(
                "the base precision K(k) must be finite and positive at every momentum "
                f"(min {np.min(K) if K.size else 'empty'}): give the base a positive mass"
            )
        if not (np.isfinite(m0) and m0 >= 0):
            raise ActionError(f"the mixture shift m0 must be a finite number >= 0, got {m0!r}")
        axes = tuple(range(1 if self.components > 1 else 0, K.ndim))
        mirrored = reflected(K, axes)  # K(-k)
        if not np.allclose(K, mirrored, rtol=1e-10, atol=0.0):
            gap = np.max(np.abs(K - mirrored))
            raise ActionError(
                "the base precision must satisfy K(k) = K(-k), as every real field's Gaussian does (otherwise its "
                f"samples do not have the density it reports; largest |K(k) - K(-k)| {gap:.3g}): give the "
                "symmetric part (K(k) + K(-k)) / 2"
            )
        self.shape = K.shape
        if not np.isfinite(mean) or (mean != 0 and m0 > 0):
            raise ActionError(f"the base mean must be a finite number, and 0 for a mixture (m0 > 0), got {mean!r}")
        self.m0 = float(m0)
        self.mean = float(mean)
        self.precision = jnp.asarray(K)
        log_norm = 0.5 * np.sum(np.log(K)) - 0.5 * K.size * np.log(2 * np.pi)
        self.log_norm = jnp.asarray(log_norm - 0.5 * K.flat[0] * K.size * self.m0**2)

    @property
    def zero_mode_coupling(self) -> float:
        r""":math:`b = K(0)\,m_0` of the base action's :math:`-\log\cosh(bM)` term (0 for a Gaussian)."""
        return float(np.asarray(self.precision).flat[0]) * self.m0

    @property
    def linear_coupling(self) -> float:
        r""":math:`h = K(0)\,\mu` of the base action's :math:`-hM` term (0 without a mean)."""
        return float(np.asarray(self.precision).flat[0]) * self.mean

    @property
    def lattice(self) -> Lattice:
        """The lattice."""
        return Lattice(self.shape if self.components == 1 else self.shape[1:])

    @property
    def _axes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """For a batch ``(n_samples, *shape)``: the FFT (lattice) axes and every axis of a configuration."""
        every = tuple(range(1, len(self.shape) + 1))
        return (every if self.components == 1 else every[1:]), every

    @classmethod
    def free(cls, lattice: Lattice, m2: float) -> GaussianLatticeBase:
        r"""The free field of eq. 31 at :math:`\lambda=0`: :math:`K(k) = m^2 + \hat k^2`."""
        return cls(m2 + lattice.khat2())

    @classmethod
    def from_propagator(
        cls, propagator, m0: float = 0.0, mean: float = 0.0, components: int = 1
    ) -> GaussianLatticeBase:
        r"""The Gaussian with two-point function :math:`G(k) = \langle|\tilde\phi_k|^2\rangle/V`: :math:`K = 1/G`.

        With ``m0 > 0``, the mixture whose components have the propagator ``G`` (the zero
        mode's :math:`G(0)` is then the within-peak variance :math:`V\sigma_m^2`).
        """
        G = np.asarray(propagator, dtype=float)
        if not np.all(G > 0):
            raise ActionError("the propagator G(k) must be positive at every momentum")
        return cls(1.0 / G, m0, mean, components)

    @classmethod
    def from_path(cls, path: LatticePath, time: float = 0.0) -> GaussianLatticeBase:
        r"""The precision of :math:`\hat S_t` at ``time`` (``0``: the base), which must be quadratic, no linear term."""
        dens = sp.expand(path.at(time))
        sites = list(site_symbols(dens, path.d))
        try:
            poly = sp.Poly(dens, *sites) if sites else None
            ok = poly is None or (poly.total_degree() <= 2 and all(sum(m) == 2 for m in poly.monoms()))
        except sp.PolynomialError:
            ok = False
        if not ok:
            raise ActionError(
                f"the action at t = {time}, density {dens}, is not a quadratic form in the field: it cannot be "
                "sampled exactly; start the path at a Gaussian (e.g. lam = [0, ...]) or use a matched base"
            )
        n = path.action.n
        if n == 1:
            delta = jnp.zeros(path.lattice.shape).at[(0,) * path.d].set(1.0)
            K = np.real(np.fft.fftn(np.asarray(path.gradient(delta, time))))
        else:
            K = []
            for a in range(n):
                delta = jnp.zeros(path.field_shape).at[(a,) + (0,) * path.d].set(1.0)
                grad = np.asarray(path.gradient(delta, time))
                if np.any(np.delete(grad, a, axis=0) != 0):
                    raise ActionError(
                        f"the quadratic part of the action at t = {time} couples component {a} to the others: only "
                        "independent components can be sampled exactly; use a matched base"
                    )
                K.append(np.real(np.fft.fftn(grad[a])))
            K = np.stack(K)
        if not np.all(K > 0):
            raise ActionError(
                f"the base action at t = {time} has non-positive K(k) (min {K.min():.3g}): exp(-S_0) is not "
                "normalisable; make the start mass positive"
            )
        return cls(K, components=n)

    def sample(self, key, n: int):
        """``n`` exact samples, shape ``(n, *shape)``, and their normalised log-density.

        The normal draw is JAX's (compiled once per shape, shared by every base of that shape); the
        rest is one compiled program per base structure (``m0``, ``mean``, shape) and ``n``, not a dozen
        eager operations that each compile for every new shape (the set-up of :func:`fit_lattice`).
        """
        kz, ks = (key, None) if self.m0 == 0 else jax.random.split(key)
        z = _random.normal(kz, (int(n), *self.shape))
        return _from_normal(self, z, ks)

    def control_values(self, field):
        r"""Per configuration of a base draw, ``(n, 2 + S)``: its magnetisation :math:`m_b = \frac1V\sum_n\phi_n`,
        :math:`Q = \frac1{2V}\sum_{k\ne0}K(k)|\tilde\phi_k|^2` and the same sum :math:`Q_s` over each of the
        :data:`CONTROL_SHELLS` lowest momentum shells (:func:`momentum_shells`): the controls of
        :mod:`pikflow.flow._controls`, with the laws of :meth:`control_law`."""
        if self.components != 1:
            raise ActionError("base controls are for one-component fields")
        return _control_values(self, field)

    def control_law(self) -> dict:
        r"""The laws of :meth:`control_values` under the base: ``centres`` and ``sigma`` of :math:`m_b`
        (:meth:`zero_mode_law`) and ``shells``, the sizes :math:`n_s` of the shells (:math:`2Q_s \sim \chi^2_{n_s}`)."""
        centres, sigma = self.zero_mode_law()
        return {"centres": centres, "sigma": sigma, "shells": tuple(momentum_shells(self.shape)[1])}

    def zero_mode_law(self) -> tuple[tuple[float, ...], float]:
        r"""The law of :math:`m_b` under the base: the centres :math:`c` (each with equal probability) and
        :math:`\sigma = (VK(0))^{-1/2}` of :math:`N(c, \sigma^2)`."""
        K0 = float(np.asarray(self.precision).flat[0])
        centres = (self.m0, -self.m0) if self.m0 > 0 else (self.mean,)
        return centres, 1.0 / math.sqrt(K0 * math.prod(self.shape))

    def log_prob(self, field):
        """Normalised log-density of configurations ``(..., *shape)`` (compiled per base structure and shape)."""
        return _log_prob(self, field)

    def _from_normal(self, z, ks):
        r"""The base draw from standard normals ``z``, :math:`\phi = \mathcal F^{-1}[\tilde z/\sqrt K]`, and its
        log-density from ``z`` itself.

        The Gaussian's :math:`\phi^TK\phi` is :math:`z\cdot z`. A mixture draw :math:`\phi = g + s\,m_0` (sign
        :math:`s`, Gaussian part :math:`g`) has :math:`\phi^TK\phi = z\cdot z + 2sb\sum_n g_n + K(0)m_0^2V` with
        :math:`b = K(0)m_0`, so
        :math:`\log q = N - \tfrac12 z\cdot z - sb\sum_n g_n - \tfrac12K(0)m_0^2V + \log\cosh(bM)`
        (:math:`N` is ``log_norm``, which holds the other :math:`-\tfrac12K(0)m_0^2V`): no third transform, of the
        field, to evaluate it. The colouring stays a complex transform pair: real transforms (``rfftn`` and
        ``irfftn``) were 1.2x cheaper at 16x16, but on several devices XLA's CPU runtime gave their input a layout
        it then refused (a ``RET_CHECK`` in ``fft_thunk.cc``), and the draws must be the same bits on any number of
        devices.
        """
        axes, every = self._axes
        n = z.shape[0]
        field = jnp.real(jnp.fft.ifftn(jnp.fft.fftn(z, axes=axes) / jnp.sqrt(self.precision), axes=axes))
        gauss = self.log_norm - 0.5 * jnp.sum(z * z, axis=every)
        if self.m0 == 0:
            return field + self.mean, gauss
        sign = jnp.where(jax.random.bernoulli(ks, 0.5, (n,)), 1.0, -1.0)
        k0, volume = self.precision.reshape(-1)[0], math.prod(z.shape[a] for a in axes)
        b, g_sum = k0 * self.m0, jnp.sum(field, axis=every)
        log_q = gauss - sign * b * g_sum - 0.5 * k0 * self.m0**2 * volume
        log_q = log_q + log_cosh(b * (g_sum + sign * self.m0 * volume))
        return field + sign.reshape((n,) + (1,) * len(self.shape)) * self.m0, log_q

    def _log_prob(self, field):
        axes = tuple(range(field.ndim - len(self.shape), field.ndim))
        ft = jnp.fft.fftn(field - self.mean, axes=axes if self.components == 1 else axes[1:])
        quad = jnp.sum(self.precision * jnp.abs(ft) ** 2, axis=axes) / (self.precision.size // self.components)
        out = self.log_norm - 0.5 * quad
        if self.m0 != 0:  # b = K(0) m0 (zero_mode_coupling), from the traced precision
            out = out + log_cosh(self.precision.reshape(-1)[0] * self.m0 * jnp.sum(field, axis=axes))
        return out

    def propagator(self) -> np.ndarray:
        r""":math:`G(k) = 1/K(k)`."""
        return 1.0 / np.asarray(self.precision)


@eqx.filter_jit
def _from_normal(base: GaussianLatticeBase, z, ks):
    return base._from_normal(z, ks)


@eqx.filter_jit
def _log_prob(base: GaussianLatticeBase, field):
    return base._log_prob(field)


#: momentum shells next to the zero mode whose energies are base controls (:meth:`GaussianLatticeBase.control_values`)
CONTROL_SHELLS = 3


def momentum_shells(shape, count: int = CONTROL_SHELLS) -> tuple[np.ndarray, list[int]]:
    r"""The ``count`` lowest momentum shells of a lattice: a ``(V, S)`` 0/1 matrix (momentum index in
    :func:`numpy.fft.fftn` order, shell) and the shells' sizes.

    A shell is the set of momenta with the same folded components :math:`\min(n_\mu, L_\mu - n_\mu)`, sorted
    when every side is equal (reflections, and axis permutations of a hypercube); it is closed under
    :math:`k \to -k`, so its energy has :math:`n_s` real degrees of freedom. Ordered by :math:`\hat k^2`;
    the zero mode is left out.
    """
    shape = tuple(int(n) for n in shape)
    grids = np.meshgrid(*[np.minimum(np.arange(n), n - np.arange(n)) for n in shape], indexing="ij")
    folded = np.stack([g.ravel() for g in grids], axis=1)
    keys = np.sort(folded, axis=1) if len(set(shape)) == 1 else folded
    khat2 = sum(4 * np.sin(np.pi * g.ravel() / n) ** 2 for g, n in zip(grids, shape, strict=True))
    order = {}
    for i, key in enumerate(map(tuple, keys)):
        if any(key):
            order.setdefault(key, (round(float(khat2[i]), 12), key))
    chosen = sorted(order, key=order.get)[:count]
    matrix = np.stack([np.all(keys == np.array(key), axis=1) for key in chosen], axis=1).astype(float)
    return matrix, [int(c) for c in matrix.sum(axis=0)]


@eqx.filter_jit
def _control_values(base: GaussianLatticeBase, field):
    axes, _ = base._axes
    volume = math.prod(base.shape)
    ft = jnp.fft.fftn(field, axes=axes)
    m = jnp.real(ft[(slice(None),) + (0,) * len(axes)]) / volume
    energy = (0.5 * base.precision * jnp.abs(ft) ** 2 / volume).reshape(ft.shape[0], -1)  # per momentum, k = 0 first
    shells = energy @ jnp.asarray(momentum_shells(base.shape)[0])
    Q = jnp.sum(energy[:, 1:], axis=-1)  # every k != 0
    return jnp.concatenate([jnp.stack([m, Q], axis=-1), shells], axis=-1)
