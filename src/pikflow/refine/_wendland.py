r"""Compactly supported Wendland corrections of a kernel (paper eqs. 28-29, B2-B4).

A correction :math:`\Delta v(\phi) = \sum_i w_i\, W_i(\phi, \phi_i)` (eq. B2) is built from
the Wendland function (eq. B3)

.. math::
    W(r) = (1-r)_+^{l+2}\,[(l^2+4l+3)\,r^2 + (3l+6)\,r + 3], \qquad l = \lfloor d/2\rfloor + 3,

radial in the field space of dimension :math:`d` (the number of field components), and,
when the action is :math:`Z_2` symmetric, anti-symmetrised (eq. B4)

.. math::
    W_i(\phi, \phi_i) = W(|\phi-\phi_i|/\sigma_i) - W(|\phi+\phi_i|/\sigma_i),

so that :math:`\Delta v(-\phi) = -\Delta v(\phi)` and the flow keeps the symmetry. With
several field components each centre carries one weight per component,
:math:`\Delta v_a = \sum_i w_{ia} W_i` (the radial function times the unit vector
:math:`e_a`): :math:`d\cdot M` unknowns for :math:`M` centres. The divergence is analytic,
:math:`\partial_a W(|x|/\sigma) = g(r)\,x_a/\sigma^2` with
:math:`g(r) = W'(r)/r = -(l+3)(l+4)(1-r)_+^{l+1}(1+(l+1)r)`, smooth at :math:`r = 0`.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..equations import AbstractKernel, kernel_skeleton, register_kernel

_TINY = 1e-300  # keeps d|x|/dx finite at x = 0 (where W'(0) = 0 anyway)


def smoothness(n_fields: int) -> int:
    r"""The Wendland index :math:`l = \lfloor d/2\rfloor + 3` for :math:`d` field components (eq. B3)."""
    return n_fields // 2 + 3


def wendland(r, ell: int):
    r"""The Wendland function :math:`W(r)` of eq. B3 (zero for :math:`r \ge 1`); ``ell`` is its index :math:`l`."""
    s = jnp.maximum(1.0 - r, 0.0)
    return s ** (ell + 2) * ((ell * ell + 4 * ell + 3) * r * r + (3 * ell + 6) * r + 3.0)


def wendland_g(r, ell: int):
    r""":math:`g(r) = W'(r)/r = -(l+3)(l+4)(1-r)_+^{l+1}(1+(l+1)r)` (so :math:`\nabla W(|x|) = g\,x`)."""
    s = jnp.maximum(1.0 - r, 0.0)
    return -(ell + 3) * (ell + 4) * s ** (ell + 1) * (1.0 + (ell + 1) * r)


def _norm(x):
    return jnp.sqrt(jnp.sum(x * x, axis=-1) + _TINY)


def basis_values(phi, centres, sigma, *, antisymmetric: bool, ell: int):
    r"""The scalar functions :math:`W_i(\phi, \phi_i)` (eq. B4 or plain eq. B3), shape ``(M,)``."""
    out = wendland(_norm(phi[None, :] - centres) / sigma, ell)
    if antisymmetric:
        out = out - wendland(_norm(phi[None, :] + centres) / sigma, ell)
    return out


def basis_gradients(phi, centres, sigma, *, antisymmetric: bool, ell: int):
    r""":math:`\partial_a W_i(\phi, \phi_i)`, shape ``(M, n_fields)``."""
    dm = phi[None, :] - centres
    s2 = (sigma * sigma)[:, None]
    out = wendland_g(_norm(dm) / sigma, ell)[:, None] * dm / s2
    if antisymmetric:
        dp = phi[None, :] + centres
        out = out - wendland_g(_norm(dp) / sigma, ell)[:, None] * dp / s2
    return out


@register_kernel
class CorrectedKernel(AbstractKernel):
    r"""A kernel plus a Wendland correction: :math:`v^{(1)} = v^{(0)} + \Delta v^{(0)}` (eqs. 29, B2).

    Itself a kernel: its residual can be computed and it can be corrected again (the
    refinement appends centres instead of nesting). Layers are stacked like every
    kernel; layers with fewer centres are padded with zero weights.

    Attributes
    ----------
    base
        The kernel being corrected (any registered kernel, e.g. the solved
        :class:`~pikflow.flow.LinearKernel`).
    centres
        Centres :math:`\phi_i`, shape ``(..., M, n_fields)``.
    weights
        Weights :math:`w_{ia}`, shape ``(..., M, n_fields)``.
    sigma
        Widths :math:`\sigma_i`, shape ``(..., M)``.
    antisymmetric
        Use the anti-symmetrised functions of eq. B4 (for :math:`Z_2` symmetric actions).
    smoothness
        The Wendland index :math:`l` of eq. B3.
    """

    kind: ClassVar[str] = "wendland-corrected"
    base: AbstractKernel
    centres: Float[Array, "... centres fields"]
    weights: Float[Array, "... centres fields"]
    sigma: Float[Array, "... centres"]
    antisymmetric: bool = eqx.field(static=True)
    smoothness: int = eqx.field(static=True)

    @property
    def n_centres(self) -> int:
        """Number of centre slots per layer (zero-weight padding included)."""
        return self.sigma.shape[-1]

    def correction(self, phi: Float[Array, " fields"]) -> Float[Array, " fields"]:
        r"""The correction :math:`\Delta v(\phi)` alone (eq. B2)."""
        w = basis_values(phi, self.centres, self.sigma, antisymmetric=self.antisymmetric, ell=self.smoothness)
        return w @ self.weights

    def correction_divergence(self, phi: Float[Array, " fields"]) -> Float[Array, ""]:
        r""":math:`\partial\cdot\Delta v(\phi)`."""
        g = basis_gradients(phi, self.centres, self.sigma, antisymmetric=self.antisymmetric, ell=self.smoothness)
        return jnp.sum(g * self.weights)

    def __call__(self, phi):
        return self.base(phi) + self.correction(phi)

    def divergence(self, phi):
        return self.base.divergence(phi) + self.correction_divergence(phi)

    def to_spec(self):
        return {
            "kind": self.kind,
            "base": self.base.to_spec(),
            "shape": list(self.centres.shape),
            "antisymmetric": bool(self.antisymmetric),
            "smoothness": int(self.smoothness),
        }

    @classmethod
    def skeleton(cls, spec, equation):
        shape = tuple(spec["shape"])
        return cls(
            base=kernel_skeleton(spec["base"], equation),
            centres=jnp.zeros(shape),
            weights=jnp.zeros(shape),
            sigma=jnp.ones(shape[:-1]),
            antisymmetric=bool(spec["antisymmetric"]),
            smoothness=int(spec["smoothness"]),
        )


def empty_correction(kernels: AbstractKernel, n_layers: int, n_fields: int, capacity: int, *, antisymmetric: bool):
    """Stacked ``kernels`` with ``capacity`` free (zero-weight) centre slots per layer.

    A :class:`CorrectedKernel` gets its slots appended (old centres kept first); any other
    kernel becomes the base of a new one.
    """
    pad_c = jnp.zeros((n_layers, capacity, n_fields))
    pad_s = jnp.ones((n_layers, capacity))
    if isinstance(kernels, CorrectedKernel) and kernels.antisymmetric == antisymmetric:
        return CorrectedKernel(
            base=kernels.base,
            centres=jnp.concatenate([kernels.centres, pad_c], axis=1),
            weights=jnp.concatenate([kernels.weights, pad_c], axis=1),
            sigma=jnp.concatenate([kernels.sigma, pad_s], axis=1),
            antisymmetric=antisymmetric,
            smoothness=kernels.smoothness,
        )
    return CorrectedKernel(
        base=kernels,
        centres=pad_c,
        weights=pad_c,
        sigma=pad_s,
        antisymmetric=antisymmetric,
        smoothness=smoothness(n_fields),
    )


def trim(kernels: CorrectedKernel) -> CorrectedKernel:
    """Drop centre slots that carry zero weight in every layer (compacting each layer's used slots first)."""
    used = jnp.any(kernels.weights != 0, axis=-1)  # (L, M)
    counts = jnp.sum(used, axis=-1)
    keep = int(jnp.max(counts)) if counts.size else 0
    order = jnp.argsort(~used, axis=-1, stable=True)  # used slots first, in their order
    take = lambda x: jnp.take_along_axis(x, order[..., None] if x.ndim == 3 else order, axis=1)[:, :keep]  # noqa: E731
    return CorrectedKernel(
        base=kernels.base,
        centres=take(kernels.centres),
        weights=take(kernels.weights),
        sigma=take(kernels.sigma),
        antisymmetric=kernels.antisymmetric,
        smoothness=kernels.smoothness,
    )


def correction_columns(equation, points, t, centres, sigma, *, antisymmetric: bool, ell: int):
    r"""The collocation matrix of eq. 28 for the Wendland basis: :math:`\mathcal L_\chi` of every :math:`W_i e_a`.

    Row :math:`\phi`, column :math:`(i, a)`:
    :math:`[\partial_a W_i - W_i\,\partial_a\hat S_t](\phi) - [\dots](\chi)`, shape ``(m, M * n_fields)``.
    """

    def op(p):
        vals = basis_values(p, centres, sigma, antisymmetric=antisymmetric, ell=ell)  # (M,)
        grads = basis_gradients(p, centres, sigma, antisymmetric=antisymmetric, ell=ell)  # (M, n)
        ds = equation.gradient_fn(p, t)  # (n,)
        return (grads - vals[:, None] * ds[None, :]).reshape(-1)

    chi = jnp.asarray(equation.chi)
    return jax.vmap(op)(points) - op(chi)[None, :]
