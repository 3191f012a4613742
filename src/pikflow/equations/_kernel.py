r"""Kernels :math:`v_t(\phi)`: callables with their divergence, as Equinox modules.

A kernel at one layer maps one configuration ``phi`` of shape ``(n_fields,)`` to the
velocity (eq. 11) and gives :math:`\partial\cdot v` for the log-density (paper sec. III).
The kernels of all layers of a flow are stored *stacked*: the same module with a leading
layer axis on every array leaf, so that sampling can index a layer inside ``jax.jit``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

#: kind -> kernel class, for :meth:`pikflow.Flow.load` (filled by :func:`register_kernel`).
KERNEL_KINDS: dict[str, type[AbstractKernel]] = {}


def register_kernel(cls):
    """Class decorator: make a kernel class loadable by its ``kind`` (see :meth:`AbstractKernel.to_spec`)."""
    if not cls.kind or cls.kind in KERNEL_KINDS and KERNEL_KINDS[cls.kind] is not cls:
        raise TypeError(f"kernel kind {cls.kind!r} of {cls.__name__} is empty or already taken")
    KERNEL_KINDS[cls.kind] = cls
    return cls


def kernel_skeleton(spec: dict[str, Any], equation) -> AbstractKernel:
    """A kernel of the kind and shapes in ``spec`` (array values are placeholders, to deserialise into)."""
    kind = spec.get("kind")
    if kind not in KERNEL_KINDS:
        raise ValueError(f"unknown kernel kind {kind!r} (known: {sorted(KERNEL_KINDS)})")
    return KERNEL_KINDS[kind].skeleton(spec, equation)


class AbstractKernel(eqx.Module):
    r"""A velocity field :math:`v(\phi)` with its divergence :math:`\partial\cdot v(\phi)`.

    A kernel class that should survive :meth:`pikflow.Flow.save` / :meth:`~pikflow.Flow.load`
    sets ``kind``, implements :meth:`to_spec` and :meth:`skeleton`, and is decorated with
    :func:`register_kernel`. Its arrays are stored with ``eqx.tree_serialise_leaves``.
    """

    kind: ClassVar[str] = ""

    @abc.abstractmethod
    def __call__(self, phi: Float[Array, " fields"]) -> Float[Array, " fields"]:
        """The velocity at one configuration."""

    @abc.abstractmethod
    def divergence(self, phi: Float[Array, " fields"]) -> Float[Array, ""]:
        """The divergence of the velocity at one configuration."""

    def layer(self, index) -> AbstractKernel:
        """From a stacked kernel (leading layer axis), the kernel of one layer."""
        return jax.tree.map(lambda x: x[index], self)

    def to_spec(self) -> dict[str, Any]:
        """JSON-ready description (``kind`` and array shapes) from which :meth:`skeleton` rebuilds the module."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved: it defines no to_spec()")

    @classmethod
    def skeleton(cls, spec: dict[str, Any], equation) -> AbstractKernel:
        """A module with the structure described by ``spec`` (the inverse of :meth:`to_spec`)."""
        raise NotImplementedError(f"{cls.__name__} cannot be loaded: it defines no skeleton()")


@register_kernel
class LinearKernel(AbstractKernel):
    r"""A kernel linear in its coefficients: :math:`v(\phi) = \sum_j k_j K_j(\phi)` (eq. 18).

    ``values`` and ``divergences`` are the basis functions and their divergences
    (from :class:`~pikflow.WegnerEquation`); ``coeffs`` is an array leaf, and so is
    ``scale`` when the basis is stretched per layer (``pikflow.solve(frequency_range="auto")``):
    then :math:`v(\phi) = \sum_j k_j K_j(\phi/s)` and
    :math:`\partial\cdot v = \sum_j k_j (\partial\cdot K_j)(\phi/s)/s`, i.e. every
    frequency of the sine basis (eq. 25) is divided by the layer's scale :math:`s_t`.
    """

    kind: ClassVar[str] = "linear"
    coeffs: Float[Array, "... basis"]
    values: Callable = eqx.field(static=True)
    divergences: Callable = eqx.field(static=True)
    scale: Float[Array, "..."] | None = None  # noqa: UP037

    def to_spec(self):
        spec = {"kind": self.kind, "shape": list(self.coeffs.shape)}
        if self.scale is not None:
            spec["scaled"] = True
        return spec

    @classmethod
    def skeleton(cls, spec, equation):
        if spec["shape"][-1] != equation.n_basis:
            raise ValueError(f"{spec['shape'][-1]} coefficients per layer for a basis of {equation.n_basis} functions")
        shape = tuple(spec["shape"])
        scale = jnp.ones(shape[:-1]) if spec.get("scaled") else None
        return cls(jnp.zeros(shape), equation.values, equation.divergences, scale)

    def __call__(self, phi):
        if self.scale is None:
            return jnp.tensordot(self.coeffs, self.values(phi), axes=1)
        return jnp.tensordot(self.coeffs, self.values(phi / self.scale), axes=1)

    def divergence(self, phi):
        if self.scale is None:
            return jnp.dot(self.coeffs, self.divergences(phi))
        return jnp.dot(self.coeffs, self.divergences(phi / self.scale)) / self.scale
