r"""A preconditioned velocity :math:`v_t = -M\partial\Omega_t` for lattice flows (prototype, issue #15).

Eq. 14 holds for any velocity with :math:`\partial\cdot(p_t v_t) = -\partial_t p_t`. With a constant,
symmetric, positive-definite :math:`M` (here translation invariant: a multiplier :math:`M(k)` in
momentum space) and :math:`v = -M\partial\Omega`, it becomes

.. math::

    \partial\cdot(M\partial\Omega) - \partial\hat S_t\cdot M\partial\Omega
    = \dot{\hat S}_t - \langle\dot{\hat S}_t\rangle_t,

the generator of Langevin dynamics with mass :math:`M^{-1}` (Fourier acceleration) in place of eq. 34's
plain one. With :math:`M = K_0^{-1}` (the matched base's covariance) every Gaussian mode relaxes at
rate 1, so near the critical point the operator's gap no longer closes with the mass; a local quartic
right-hand side has a local solution at the Gaussian point. For the fused evaluator this changes only
constants: the gradient's spectrum is multiplied by :math:`M(k)` before the last inverse transform,
the Laplacian constants become :math:`\mathrm{tr}(MH)` (:math:`h_s = \overline{S_s^2 M}`,
:math:`h_{ab} = \overline{S_aS_bM}`, orbit sizes :math:`\sum_{k\in j}M(k)`, a factor :math:`M(0)` for
the magnetisation terms), and the solve's :math:`\partial\hat S` becomes :math:`M\partial\hat S`.
"""

import jax
import jax.numpy as jnp
import numpy as np

from pikflow.lattice import LatticeBasis, Magnetisation
from pikflow.lattice._fused import FusedEvaluator, half_spectrum


class PreconditionedEvaluator(FusedEvaluator):
    """:class:`FusedEvaluator` of :math:`(M\\partial\\Omega, \\mathrm{tr}(M\\,\\partial^2\\Omega))`."""

    def __init__(self, basis, mass):
        self.mass = np.asarray(mass, dtype=float)
        super().__init__(basis)
        if any(type(f) is not Magnetisation for f, _, _ in self.other):
            raise ValueError("the prototype preconditions Fourier, smoothed and magnetisation families only")

    def _params_and_key(self):
        params, key = super()._params_and_key()
        M = self.mass
        axes = tuple(range(1, M.ndim + 1))
        for (fam, _, _, _), p in zip(self.smoothed, params["smoothed"], strict=True):
            f = np.asarray(fam.filters).reshape((-1,) + M.shape)
            if p["hab"] is not None:
                g = f.reshape(len(f), -1)
                p["hab"] = jnp.asarray((g * M.reshape(1, -1)) @ g.T / g.shape[1])
            else:
                p["h"] = jnp.asarray(np.mean(f**2 * M[None], axis=axes))
        params["mass"] = jnp.asarray(half_spectrum(M))
        params["mass0"] = jnp.asarray(M.reshape(-1)[0])
        params["sizes"] = [
            jnp.asarray(np.bincount(np.asarray(fam.ids).reshape(-1), weights=M.reshape(-1), minlength=fam.n))
            for fam, _, _ in self.fourier
        ]
        return params, ("preconditioned",) + key

    def evaluate(self, params, a, field):
        filters = params["filters"]
        ft = jnp.fft.rfftn(field)
        spec = None
        lap = jnp.zeros((), dtype=field.dtype)
        for (_fam, lo, hi), ids, sizes in zip(self.fourier, self._orbit_half, params["sizes"], strict=True):
            c = a[lo:hi][ids]
            spec = c * ft if spec is None else spec + c * ft
            lap = lap + jnp.dot(a[lo:hi], sizes)
        if self.smoothed:
            psi = jnp.fft.irfftn(filters * ft[None], s=self.shape, axes=self.axes)
            psi = psi[np.arange(self.n_scales)]
            inner_ft = jnp.fft.rfftn(self._pointwise(params["smoothed"], a, psi)[0], axes=self.axes)
            lap = lap + jnp.real(inner_ft[(-1,) + (0,) * self.d])
            part = jnp.sum(filters * inner_ft[:-1], axis=0)
            spec = part if spec is None else spec + part
        grad = jnp.zeros_like(field) if spec is None else jnp.fft.irfftn(params["mass"] * spec, s=self.shape)
        mags = iter(params["mag"])
        for fam, lo, hi in self.other:
            _, d1, d2 = self._magnetisation(fam, next(mags))._parts(field)
            grad = grad + params["mass0"] * jnp.dot(a[lo:hi], d1)
            lap = lap + params["mass0"] * jnp.dot(a[lo:hi], d2)
        return grad, lap

    def columns(self, field, dS, params=None):
        params = self.params if params is None else params
        ft, fd = jnp.fft.rfftn(field), params["mass"] * jnp.fft.rfftn(dS)
        out = {}
        for (fam, lo, _), ids, sizes in zip(self.fourier, self._orbit_half, params["sizes"], strict=True):
            prod = jnp.real(jnp.conj(fd) * ft) * self._half_weights
            seg = jax.ops.segment_sum(prod.reshape(-1), ids.reshape(-1), num_segments=fam.n)
            out[lo] = sizes - seg / fam.lattice.volume
        if self.smoothed:
            spec = params["filters"][None] * jnp.stack([ft, fd])[:, None]
            both = jnp.fft.irfftn(spec, s=self.shape, axes=tuple(a + 1 for a in self.axes))
            for (fam, lo, _, idx), p in zip(self.smoothed, params["smoothed"], strict=True):
                out[lo] = self._smoothed_columns(fam, p, both[0][idx], both[1][idx])
        mags = iter(params["mag"])
        for fam, lo, _ in self.other:
            out[lo] = params["mass0"] * self._magnetisation(fam, next(mags)).columns(field, dS)
        pieces = zip(self._offsets, self.basis.sizes, strict=True)
        return jnp.concatenate([jnp.broadcast_to(out[k], (n,)) for k, n in pieces])


def preconditioned(basis: LatticeBasis, mass) -> LatticeBasis:
    """A copy of ``basis`` whose evaluations and solve use :math:`v = -M\\partial\\Omega` (multiplier ``mass``)."""
    out = LatticeBasis(list(basis.families))
    out._fused = PreconditionedEvaluator(out, mass)
    return out
