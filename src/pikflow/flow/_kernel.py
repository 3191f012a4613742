r"""Kernels :math:`v_t(\phi)`: callables with their divergence, as Equinox modules.

A kernel at one layer maps one configuration ``phi`` of shape ``(n_fields,)`` to the
velocity (eq. 11) and gives :math:`\partial\cdot v` for the log-density (paper sec. III).
The kernels of all layers of a flow are stored *stacked*: the same module with a leading
layer axis on every array leaf, so that sampling can index a layer inside ``jax.jit``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class AbstractKernel(eqx.Module):
    r"""A velocity field :math:`v(\phi)` with its divergence :math:`\partial\cdot v(\phi)`."""

    @abc.abstractmethod
    def __call__(self, phi: Float[Array, " fields"]) -> Float[Array, " fields"]:
        """The velocity at one configuration."""

    @abc.abstractmethod
    def divergence(self, phi: Float[Array, " fields"]) -> Float[Array, ""]:
        """The divergence of the velocity at one configuration."""

    def layer(self, index) -> AbstractKernel:
        """From a stacked kernel (leading layer axis), the kernel of one layer."""
        return jax.tree.map(lambda x: x[index], self)


class LinearKernel(AbstractKernel):
    r"""A kernel linear in its coefficients: :math:`v(\phi) = \sum_j k_j K_j(\phi)` (eq. 18)."""

    coeffs: Float[Array, "... basis"]
    values: Callable = eqx.field(static=True)
    divergences: Callable = eqx.field(static=True)

    def __call__(self, phi):
        return jnp.tensordot(self.coeffs, self.values(phi), axes=1)

    def divergence(self, phi):
        return jnp.dot(self.coeffs, self.divergences(phi))
