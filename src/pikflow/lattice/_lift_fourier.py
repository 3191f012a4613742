r"""The Fourier projector of the ``"fourier"`` lift: low momenta from the coarse field, high ones from the Gaussian.

The conditional lift (:class:`~pikflow.lattice.Lift`) completes :math:`y = P\Psi` with the exact
conditional of :math:`N(0, G)`; its density formula holds for any linear surjective :math:`P`.
The ``"fourier"`` lift takes :math:`P_F = SF`: :math:`F` the ideal low-pass filter on the fine
lattice :math:`(2L)^d`, per axis on the fine momentum index :math:`n\in[-L, L)`

.. math::  w(n) = 1\ (|n| < L/2),\qquad \tfrac12\ (|n| = L/2),\qquad 0\ \text{otherwise},

the product over the axes (real and symmetric, :math:`F^T = F`), and :math:`S` the even sites
(:math:`S^T` inserts zeros). :math:`P_F\Psi` keeps exactly the fine modes of the coarse Brillouin
zone (at the coarse Nyquist momentum the sum of the two fine modes that alias to it), and for
:math:`G` diagonal in :math:`k` the conditional given :math:`P_F\Psi` is the high modes drawn
independently from :math:`G(k)`. A constant field keeps its value, :math:`P_F 1 = 1`, as under
the block mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np


def lowpass(fine_shape: Sequence[int]) -> np.ndarray:
    r"""The filter :math:`w(k)` of :math:`F` on the FFT grid of ``fine_shape`` (each size :math:`2L`)."""
    out = np.ones(tuple(fine_shape))
    for axis, n in enumerate(fine_shape):
        k = np.abs(np.fft.fftfreq(n) * n)  # |n| in [0, L]
        w = np.where(k < n / 4, 1.0, np.where(k == n / 4, 0.5, 0.0))
        out = out * w.reshape([-1 if i == axis else 1 for i in range(len(fine_shape))])
    return out


def _axes(x, d):
    return tuple(range(x.ndim - d, x.ndim))


def _fold(xh, d):
    r"""Sum the fine modes :math:`n \equiv m \bmod L` on the last ``d`` axes (FFT order: :math:`n = jL + m`)."""
    for axis in range(xh.ndim - d, xh.ndim):
        n = xh.shape[axis]
        xh = xh.reshape(xh.shape[:axis] + (2, n // 2) + xh.shape[axis + 1 :]).sum(axis=axis)
    return xh


def project(psi, d: int):
    r""":math:`P_F\Psi = SF\Psi`: the low-passed fine field at the even sites, shape ``(..., L, ...)``.

    In Fourier space: :math:`\tilde y(m) = 2^{-d}\sum_{n\equiv m} w(n)\tilde\Psi(n)` (one fine FFT, one coarse).
    """
    ph = jnp.fft.fftn(psi, axes=_axes(psi, d)) * lowpass(psi.shape[psi.ndim - d :])
    return jnp.real(jnp.fft.ifftn(_fold(ph, d), axes=_axes(psi, d))) / 2**d


def project_t(r, d: int):
    r""":math:`P_F^T r = FS^Tr`: the Fourier transform of :math:`S^Tr` is :math:`\tilde r` repeated periodically."""
    rh = jnp.fft.fftn(r, axes=_axes(r, d))
    rh = jnp.tile(rh, (1,) * (r.ndim - d) + (2,) * d)
    return jnp.real(jnp.fft.ifftn(rh * lowpass(rh.shape[rh.ndim - d :]), axes=_axes(r, d)))


__all__ = ["lowpass", "project", "project_t"]
