r"""Lowering a lattice path (paper eq. 31) to JAX: :math:`\hat S_t`, :math:`d\hat S_t/dt`, its gradient and Laplacian.

A lattice path is symbolic: a site density :math:`\rho_t` whose couplings are expressions in
``t``, its gradient stencils and Laplacian density (derived in SymPy by the path), and
optionally the matched Gaussian part :math:`w(t)\,[\tfrac12\phi^TK_0\phi - \log\cosh(bM) - hM]`
with :math:`w(t) = 1 - t` (the matched base of the user guide, :math:`M = \sum_n\phi_n`).
:class:`LoweredLatticePath` turns these into JAX functions of one configuration (site sums
with ``jnp.roll``, the Gaussian part by FFT). The numbers of the Gaussian part
(:math:`K_0, b, h`) can be swapped for traced arrays (:meth:`LoweredLatticePath.with_parameters`),
so that compiled code is shared by every path of the same structure.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from ..action._lattice_path import register_lattice_lowering
from ..action._path import t as T
from ._lower import jax_lambdify
from ._sites import lower_site_expressions


def log_cosh(x):
    r""":math:`\log\cosh x`, stable for large :math:`|x|`."""
    a = jnp.abs(x)
    return a + jnp.log1p(jnp.exp(-2 * a)) - np.log(2.0)


def log_cosh_term(b: float, M, volume: int):
    r""":math:`T = \log\cosh(bM)` with :math:`M = \sum_n\phi_n`: value, :math:`\partial_nT = b\tanh bM` (the same
    at every site) and :math:`\Delta T = Vb^2/\cosh^2 bM`; the mixture base's zero-mode term."""
    bM = b * M
    return log_cosh(bM), b * jnp.tanh(bM), volume * b**2 / jnp.cosh(bM) ** 2


class LoweredLatticePath:
    r"""A lattice path's JAX functions of one configuration: value, dsdt, gradient, laplacian.

    Built from the path's symbolic pieces (``path.density``, ``path.gradient_densities()``,
    ``path.laplacian_density()``, ``path.spectral_weight``) and numbers (``spectral_precision``
    :math:`K_0`, ``zero_mode`` :math:`b`, ``linear`` :math:`h`).
    """

    def __init__(self, path):
        self.lattice, self.field_shape, self.d = path.lattice, tuple(path.field_shape), path.lattice.d
        dens = path.density
        self._sites = lower_site_expressions(
            [dens, sp.diff(dens, T), *path.gradient_densities(), path.laplacian_density()],
            self.d,
            path.action.field_names,
        )
        self.spectral = path.spectral_precision is not None
        self.K0 = path.spectral_precision  # numpy here; a traced array after with_parameters
        self.zero_mode, self.linear = path.zero_mode, path.linear
        # a matched path of a single-component field always carries the zero-mode term, exactly 0 at b = 0: a
        # Gaussian base and a mixture base then share the compiled functions (fit_lattice's candidates); an
        # O(n) field has no such term (its magnetisation is a shell)
        single = len(self.field_shape) == self.d
        self._zero_on, self._linear_on = bool(path.zero_mode) or (self.spectral and single), bool(path.linear)
        self._w = jax_lambdify([T], path.spectral_weight, what="the spectral weight")
        self._dw = jax_lambdify([T], sp.diff(path.spectral_weight, T), what="the spectral weight's derivative")

    @staticmethod
    def parameters(path) -> dict:
        """The numbers of ``path``'s Gaussian part as arrays (:meth:`~pikflow.action.LatticePath.traced_parameters`)."""
        K0 = path.spectral_precision
        return {
            "K0": None if K0 is None else jnp.asarray(K0),
            "zero_mode": jnp.asarray(path.zero_mode),
            "linear": jnp.asarray(path.linear),
        }

    def with_parameters(self, params) -> LoweredLatticePath:
        """A copy with :math:`K_0, b, h` replaced by ``params`` (``K0``, ``zero_mode``, ``linear``; traceable)."""
        clone = copy.copy(self)
        clone.K0, clone.zero_mode, clone.linear = params["K0"], params["zero_mode"], params["linear"]
        return clone

    def quadratic(self, field):
        r"""The Gaussian part's value and gradient, :math:`\tfrac12\phi^TK_0\phi - \log\cosh(bM) - hM`."""
        axes, shape = self.lattice.axes, tuple(self.lattice.shape)
        # real transforms: K_0(k) = K_0(-k), so the half spectrum holds everything (each k_d of 1 .. ceil(L/2) - 1
        # on the last axis stands for itself and -k_d); half the work of the complex pair
        half = shape[-1] // 2 + 1
        ft = jnp.fft.rfftn(field, axes=axes)
        K = self.K0[..., :half]
        twice = np.ones(half)
        twice[1 : (shape[-1] + 1) // 2] = 2.0
        every = tuple(range(-len(self.field_shape), 0))  # the lattice axes, and the component axis if n > 1
        energy = 0.5 * jnp.sum(K * twice * jnp.abs(ft) ** 2, axis=every) / self.lattice.volume
        grad = jnp.fft.irfftn(K * ft, s=shape, axes=axes)
        if self._zero_on:
            # the mixture base's -log cosh(b M) (GaussianLatticeBase with m0 > 0): value, uniform gradient
            M = jnp.sum(field, axis=axes)
            value, slope, _ = log_cosh_term(self.zero_mode, M, self.lattice.volume)
            energy = energy - value
            grad = grad - slope.reshape(jnp.shape(M) + (1,) * self.d)
        if self._linear_on:
            # a base with a mean mu: -h M, h = K0(0) mu (GaussianLatticeBase with mean)
            energy = energy - self.linear * jnp.sum(field, axis=axes)
            grad = grad - self.linear
        return energy, grad

    def _weighted_quadratic(self, field, time, which: int):
        r""":math:`w(t)` times the Gaussian part's value (``which = 0``) or gradient (1), skipped where
        :math:`w(t) = 0` (at :math:`t = 1`: the target alone, e.g. the final MCMC moves of an SMC run, need
        no Fourier transform; a branch while ``time`` is not batched)."""
        w = jnp.asarray(self._w(time), dtype=field.dtype)
        shape = jax.eval_shape(lambda f: self.quadratic(f)[which], field)
        return jax.lax.cond(
            w == 0, lambda f: jnp.zeros(shape.shape, shape.dtype), lambda f: w * self.quadratic(f)[which], field
        )

    def value(self, field, time):
        r""":math:`\hat S_t(\phi)` of one configuration."""
        out = jnp.sum(self._sites(field, time)[0])
        if self.spectral:
            out = out + self._weighted_quadratic(field, time, 0)
        return out

    def dsdt(self, field, time):
        r""":math:`d\hat S_t/dt(\phi)` of one configuration."""
        out = jnp.sum(self._sites(field, time)[1])
        if self.spectral:
            out = out + self._dw(time) * self.quadratic(field)[0]
        return out

    def gradient(self, field, time):
        r""":math:`\partial\hat S_t/\partial\phi_n`, same shape as ``field`` (the lowered stencil)."""
        parts = self._sites(field, time)[2:-1]
        out = parts[0] if len(parts) == 1 else jnp.stack(parts, axis=-self.d - 1)
        if self.spectral:
            out = out + self._weighted_quadratic(field, time, 1)
        return out

    def laplacian(self, field, time):
        r""":math:`\sum_n\partial^2\hat S_t/\partial\phi_n^2` (trace of the Hessian)."""
        out = jnp.sum(self._sites(field, time)[-1])
        if self.spectral:
            lap = jnp.sum(self.K0)
            if self._zero_on:
                lap = lap - log_cosh_term(self.zero_mode, jnp.sum(field), self.lattice.volume)[2]
            out = out + self._w(time) * lap
        return out


register_lattice_lowering(LoweredLatticePath)
