r"""The fine-lattice base of one multilevel level: a coarse field lifted to the fine lattice, exact density.

A coarse configuration :math:`\phi` on :math:`L^d`, scaled by :math:`a`, becomes a fine one
:math:`\Psi` on :math:`(2L)^d` whose block mean is :math:`P\Psi = a\phi` (:math:`P = U^\dagger`,
the mean over every :math:`2^d` block). Three noises complete it:

* ``"white"``: :math:`\Psi = aU\phi + \zeta`, :math:`\zeta` white noise of width :math:`\sigma`
  with zero sum over every block (Bauer, Kapust, Pawlowski and Temmen, eqs. 17-21 there);
* ``"conditional"``: the exact conditional of a Gaussian :math:`N(0, G)`, :math:`G = K^{-1}`,
  given its block means: draw :math:`\Psi' \sim N(0, G)`, then

  .. math::  \Psi = \Psi' + A(a\phi - P\Psi'),\qquad A = GP^T(PGP^T)^{-1},

  so that :math:`P\Psi = a\phi` exactly. :math:`C = PGP^T` is translation invariant on the
  coarse lattice, so :math:`C^{-1}` is a division by its coarse Fourier symbol :math:`c(q)` and
  :math:`A` costs four FFTs. :math:`K(k) = \hat k^2 + m_f^2` by default (the free field of
  eq. 31 with an effective mass), or any positive :math:`K(k)`.
* ``"fourier"``: the same with :math:`P` replaced by the Fourier projector :math:`P_F = SF`
  (:math:`F` the ideal low-pass filter to the coarse Brillouin zone, :math:`S` the even sites;
  module ``_lift_fourier``): the low momenta of :math:`\Psi` are those of :math:`a\phi`, the high
  ones are drawn independently from :math:`G(k)`. Its coarse field is :math:`P_F\Psi/a`.

The base density is exact (a density statement, no Jacobian to track): with
:math:`y = P\Psi`,

.. math::  q(\Psi) = \frac{p_{\rm c}(y/a)}{a^{V_c}}\,
           \frac{N(\Psi; 0, G)}{N(y; 0, C)}\quad\text{(conditional)},\qquad
           q(\Psi) = \frac{p_{\rm c}(y/a)}{a^{V_c}}\,
           \frac{2^{dV_c/2}\,e^{-|\zeta|^2/2\sigma^2}}{(2\pi\sigma^2)^{(V_f-V_c)/2}}\quad\text{(white)},

so :math:`\hat S_0(\Psi) = \hat S_{\rm c}(y/a) + \tfrac12\Psi^TK\Psi - \tfrac12 y^TC^{-1}y`
(conditional, fourier with :math:`P_F`) or :math:`\hat S_{\rm c}(y/a) + |\zeta|^2/2\sigma^2` (white), and
:math:`\log Z_0 = \log Z_{\rm c} +` :meth:`Lift.log_z0_offset`. For a free fine target with
:math:`K` its own precision and coarse samples from the exact :math:`N(0, C)`, the
conditional and the fourier base each *is* the fine target.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import _random
from .._errors import SamplingError
from ._lift_fourier import project as fourier_project
from ._lift_fourier import project_t as fourier_project_t

NOISES = ("white", "conditional", "fourier")


def upsample(x, d: int):
    """Copy every site of the last ``d`` axes into its :math:`2^d` block (the map :math:`U`)."""
    for axis in range(x.ndim - d, x.ndim):
        x = jnp.repeat(x, 2, axis=axis)
    return x


def block_mean(x, d: int):
    r"""The mean over every :math:`2^d` block of the last ``d`` axes (:math:`P = U^\dagger`)."""
    lead = x.shape[: x.ndim - d]
    shape = sum(((s // 2, 2) for s in x.shape[x.ndim - d :]), ())
    return x.reshape(lead + shape).mean(axis=tuple(len(lead) + 2 * i + 1 for i in range(d)))


def khat2(shape: Sequence[int]) -> np.ndarray:
    r""":math:`\hat k^2 = \sum_\mu 4\sin^2(k_\mu/2)` on the FFT grid of ``shape``."""
    grids = np.meshgrid(*[2 * np.pi * np.fft.fftfreq(n) for n in shape], indexing="ij")
    return sum(4 * np.sin(g / 2) ** 2 for g in grids)


def _fft(x, d):
    return jnp.fft.fftn(x, axes=tuple(range(x.ndim - d, x.ndim)))


def _ifft(x, d):
    return jnp.real(jnp.fft.ifftn(x, axes=tuple(range(x.ndim - d, x.ndim))))


def _project(noise: str, x, d: int):
    r""":math:`P x`: the block mean, or :math:`P_F x` for ``"fourier"`` (last ``d`` axes)."""
    return fourier_project(x, d) if noise == "fourier" else block_mean(x, d)


def _project_t(noise: str, r, d: int):
    r""":math:`P^T r`: :math:`U r/2^d`, or :math:`P_F^T r` for ``"fourier"`` (last ``d`` axes)."""
    return fourier_project_t(r, d) if noise == "fourier" else upsample(r, d) / 2**d


@functools.partial(jax.jit, static_argnums=(1, 2))
def coarse_symbol(G, d: int, noise: str = "conditional"):
    r"""The coarse Fourier symbol :math:`c(q)` of :math:`C = PGP^T`, from :math:`C` applied to a coarse delta.

    ``G`` is :math:`G(k) = 1/K(k)` on the fine FFT grid; :math:`P` the block mean
    (:math:`P^T = U/2^d`), or :math:`P_F` with ``noise="fourier"``.
    """
    shape_c = tuple(s // 2 for s in G.shape)
    delta = jnp.zeros(shape_c).at[(0,) * d].set(1.0)
    col = _project(noise, _ifft(_fft(_project_t(noise, delta, d), d) * G, d), d)
    return jnp.real(_fft(col, d))


@dataclasses.dataclass(frozen=True)
class Lift:
    r"""The map from a coarse field to a fine base sample, and the base's action and normalisation.

    Build it with :meth:`white`, :meth:`conditional` or :meth:`fourier`. ``scale`` is :math:`a`
    (:math:`P\Psi = a\phi`; :math:`P_F\Psi = a\phi` for ``"fourier"``).
    """

    noise: str
    fine_shape: tuple[int, ...]
    scale: float
    sigma: float | None = None
    precision: jnp.ndarray | None = None  # K(k), conditional and fourier only
    symbol: jnp.ndarray | None = None  # c(q), conditional and fourier only

    @classmethod
    def white(cls, fine_shape: Sequence[int], sigma: float, scale: float = 1.0) -> Lift:
        """Zero-block-sum white noise of width ``sigma``."""
        _check(fine_shape, scale)
        if not (np.isfinite(sigma) and sigma > 0):
            raise SamplingError(f"the noise width sigma must be a positive number, got {sigma!r}")
        return cls("white", tuple(fine_shape), float(scale), sigma=float(sigma))

    @classmethod
    def conditional(cls, fine_shape: Sequence[int], mass2: float = 1.0, scale: float = 1.0, precision=None) -> Lift:
        r"""The conditional Gaussian of :math:`K = \hat k^2 + m_f^2` (or the given ``precision`` :math:`K(k)`)."""
        K = _precision("conditional", fine_shape, mass2, scale, precision)
        return cls(
            "conditional", tuple(fine_shape), float(scale), precision=K, symbol=coarse_symbol(1 / K, len(K.shape))
        )

    @classmethod
    def fourier(cls, fine_shape: Sequence[int], mass2: float = 1.0, scale: float = 1.0, precision=None) -> Lift:
        r"""The conditional lift with :math:`P_F = SF` for :math:`P`: low momenta from :math:`a\phi`, high ones from G.

        :math:`K` as in :meth:`conditional`; :math:`P_F` is the low-pass filter to the coarse Brillouin
        zone followed by the even sites (module ``_lift_fourier``).
        """
        K = _precision("fourier", fine_shape, mass2, scale, precision)
        symbol = coarse_symbol(1 / K, len(K.shape), "fourier")
        return cls("fourier", tuple(fine_shape), float(scale), precision=K, symbol=symbol)

    @property
    def d(self) -> int:
        """The number of lattice dimensions :math:`d` (a block has :math:`2^d` fine sites)."""
        return len(self.fine_shape)

    def project(self, psi):
        r""":math:`y = P\Psi` (the block mean; :math:`P_F\Psi` for ``"fourier"``) of ``(..., *fine_shape)``."""
        return _project(self.noise, psi, self.d)

    def project_t(self, r):
        r""":math:`P^Tr` of coarse fields ``r`` (:math:`U r/2^d`; :math:`P_F^T r` for ``"fourier"``)."""
        return _project_t(self.noise, r, self.d)

    def coarse(self, psi):
        r"""The coarse field of fine configurations ``(..., *fine_shape)``: :math:`P\Psi/a`."""
        return self.project(psi) / self.scale

    def lift(self, key, phi):
        """Fine base samples ``(n, *fine_shape)`` from coarse fields ``(n, *coarse_shape)``."""
        d, y = self.d, self.scale * phi
        z = _random.normal(key, (phi.shape[0], *self.fine_shape))
        if self.noise == "white":
            z = self.sigma * z
            return upsample(y, d) + z - upsample(block_mean(z, d), d)
        psi = _ifft(_fft(z, d) / jnp.sqrt(self.precision), d)  # N(0, G)
        r = _ifft(_fft(y - self.project(psi), d) / self.symbol, d)  # C^{-1}(y - P psi')
        return psi + _ifft(_fft(self.project_t(r), d) / self.precision, d)

    def extra(self, psi):
        r""":math:`\hat S_0(\Psi) - \hat S_{\rm c}(P\Psi/a)` of one or more configurations."""
        d = self.d
        y = self.project(psi)
        axes = tuple(range(psi.ndim - d, psi.ndim))
        if self.noise == "white":
            zeta = psi - upsample(y, d)
            return jnp.sum(zeta * zeta, axis=axes) / (2 * self.sigma**2)
        vf, vc = np.prod(self.fine_shape), np.prod(self.fine_shape) // 2**d
        quad_f = jnp.sum(self.precision * jnp.abs(_fft(psi, d)) ** 2, axis=axes) / vf
        quad_c = jnp.sum(jnp.abs(_fft(y, d)) ** 2 / self.symbol, axis=axes) / vc
        return 0.5 * (quad_f - quad_c)

    def log_z0_offset(self) -> float:
        r""":math:`\log Z_0 - \log Z_{\rm c}` of the base :math:`e^{-\hat S_0}`."""
        vf = int(np.prod(self.fine_shape))
        vc = vf // 2**self.d
        out = vc * np.log(self.scale)
        if self.noise == "white":
            return float(out + 0.5 * self.d * vc * np.log(2) + 0.5 * (vf - vc) * np.log(2 * np.pi * self.sigma**2))
        logdet = np.sum(np.log(np.asarray(self.precision))) + np.sum(np.log(np.asarray(self.symbol)))
        return float(out + 0.5 * (vf - vc) * np.log(2 * np.pi) - 0.5 * logdet)


def log_weights(lift: Lift, S_c, S_1, phi, key, per: int = 2):
    r""":math:`\log w = \hat S_0 - \hat S_1` of ``per`` base samples lifted from each coarse field, shape ``(m, per)``.

    ``S_c`` and ``S_1`` are batched coarse and fine actions, ``phi`` has shape ``(m, *coarse)``.
    """
    arrays = (lift.scale, lift.sigma, lift.precision, lift.symbol)
    lw = _log_w(lift.noise, lift.fine_shape, S_c, S_1, per, arrays, jnp.asarray(phi), key)
    return np.asarray(lw).reshape(phi.shape[0], per)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _log_w(noise, fine_shape, S_c, S_1, per, arrays, phi, key):
    """One compiled lift and weight evaluation per shape and actions (the tuning grid reuses it)."""
    lift = Lift(noise, fine_shape, *arrays)
    psi = lift.lift(key, jnp.repeat(phi, per, axis=0))
    return S_c(lift.coarse(psi)) + lift.extra(psi) - S_1(psi)


def weight_diagnostics(lw) -> dict:
    r"""ESS/N of the weights and the split of :math:`\mathrm{Var}\log w` into its two sources.

    ``lw`` has shape ``(m, per)``: ``per`` fine samples per coarse field. ``within`` is
    :math:`E[\mathrm{Var}(\log w\mid\phi)]`, the mismatch of the noise (the conditional of the fine
    target given its block means against the lift's); ``between`` is
    :math:`\mathrm{Var}(E[\log w\mid\phi])`, the mismatch of the coarse marginal (plus the
    :math:`\phi` dependence of the conditional's normalisation). ``var = within + between``.
    """
    lw = np.asarray(lw, dtype=float)
    flat = lw.ravel()
    ok = np.isfinite(flat)
    w = np.exp(np.where(ok, flat - np.max(flat[ok]), -np.inf)) if ok.any() else np.zeros_like(flat)
    ess = float(w.sum() ** 2 / (flat.size * (w**2).sum())) if w.sum() > 0 else 0.0
    if not ok.all():
        return {"ess": ess, "var": float("inf"), "within": float("inf"), "between": float("inf")}
    within = float(np.mean(np.var(lw, axis=1, ddof=1))) if lw.shape[1] > 1 else float("nan")
    between = float(np.var(lw.mean(axis=1), ddof=1) - within / lw.shape[1]) if lw.shape[1] > 1 else float("nan")
    return {"ess": ess, "var": float(np.var(flat, ddof=1)), "within": within, "between": between}


def tune_lift(make, S_c, S_1, phi, key, mass2="auto", scale="auto", rounds: int = 2) -> tuple[Lift, list[dict]]:
    r"""The lift minimising :math:`\mathrm{Var}\log w` over a grid of :math:`m_f^2` and :math:`a` (IR matching).

    ``make(mass2, scale) -> Lift``; ``mass2`` and ``scale`` are numbers (kept fixed) or ``"auto"``
    (scanned by coordinate descent: :math:`m_f^2` on a log grid from 0.03 to 30, :math:`a` from
    0.6 to 1.6). Returns the best lift and the landscape (every point tried with its diagnostics).
    """
    m_grid = np.geomspace(0.03, 30.0, 13) if mass2 == "auto" else [float(mass2)]
    a_grid = np.linspace(0.6, 1.6, 11) if scale == "auto" else [float(scale)]
    best = {"mass2": 1.0 if mass2 == "auto" else float(mass2), "scale": 1.0 if scale == "auto" else float(scale)}
    landscape, seen = [], {}

    def score(m, a):
        if (m, a) not in seen:
            diag = weight_diagnostics(log_weights(make(m, a), S_c, S_1, phi, key))
            seen[(m, a)] = diag["var"]
            landscape.append({"mass2": float(m), "scale": float(a), **diag})
        return seen[(m, a)]

    for _ in range(rounds if len(m_grid) > 1 and len(a_grid) > 1 else 1):
        best["mass2"] = min(m_grid, key=lambda m: score(m, best["scale"]))
        best["scale"] = min(a_grid, key=lambda a: score(best["mass2"], a))
    return make(best["mass2"], best["scale"]), landscape


def _precision(noise, fine_shape, mass2, scale, precision):
    r""":math:`K(k)`: :math:`\hat k^2 + m_f^2` or the given ``precision``, checked positive."""
    _check(fine_shape, scale)
    K = khat2(fine_shape) + mass2 if precision is None else np.asarray(precision, dtype=float)
    if K.shape != tuple(fine_shape) or not np.all(np.isfinite(K)) or not np.all(K > 0):
        raise SamplingError(
            f"the {noise} noise needs a positive K(k) of shape {tuple(fine_shape)} (mass2 > 0), "
            f"got mass2 {mass2!r}, min K {np.min(K):.3g}"
        )
    return jnp.asarray(K)


def _check(shape, scale):
    if any(int(s) % 2 for s in shape):
        raise SamplingError(f"the fine lattice {tuple(shape)} must have even sizes (2^d blocks)")
    if not (np.isfinite(scale) and scale > 0):
        raise SamplingError(f"the field scale a must be a positive number, got {scale!r}")


__all__ = [
    "NOISES",
    "Lift",
    "block_mean",
    "coarse_symbol",
    "khat2",
    "log_weights",
    "tune_lift",
    "upsample",
    "weight_diagnostics",
]
