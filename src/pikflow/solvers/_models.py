r"""Kernels with trainable parameters, as Equinox modules (paper eq. 25 and an MLP).

Both are :class:`~pikflow.flow.AbstractKernel` subclasses registered for
:meth:`pikflow.Flow.save` / :meth:`~pikflow.Flow.load`, and both have an exact divergence
(analytic for the sine model, the trace of the forward-mode Jacobian for the MLP), so the
log-density of the flow stays exact.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..equations import AbstractKernel, register_kernel


def _batch_shape(leaf: jax.Array, core: int) -> list[int]:
    return list(leaf.shape[: leaf.ndim - core])


@register_kernel
class SineKernel(AbstractKernel):
    r"""The paper's kernel (eq. 25) with learnable frequencies, acting on each field component.

    .. math::
        v_a(\phi) = k_a \phi_a + \sum_{j=1}^{n} s_{ja} \sin(\omega_{ja} \phi_a)
        \;\Big[ + c_{0a} + \sum_j c_{ja} \cos(\omega_{ja} \phi_a) \Big]_{\text{not odd}}

    The bracket is present only when ``odd`` is false (a path that is not :math:`Z_2`
    symmetric); with ``odd`` the kernel is odd by construction, :math:`v(-\phi) = -v(\phi)`.
    The divergence :math:`\sum_a \partial_a v_a` is analytic. The model is linear in its
    coefficients for fixed frequencies: :meth:`features` gives that linear basis (used by the
    variable-projection fit, eq. 18-19).

    Parameters
    ----------
    linear
        :math:`k_a`, shape ``(n_fields,)``.
    sin_coeffs, frequencies
        :math:`s_{ja}` and :math:`\omega_{ja}`, shape ``(n, n_fields)``.
    cos_coeffs, constant
        :math:`c_{ja}` (``(n, n_fields)``) and :math:`c_{0a}` (``(n_fields,)``); zeros and unused when ``odd``.
    odd
        Odd kernel (static).
    """

    kind: ClassVar[str] = "sine-model"
    linear: Float[Array, "... fields"]
    sin_coeffs: Float[Array, "... n fields"]
    frequencies: Float[Array, "... n fields"]
    cos_coeffs: Float[Array, "... n fields"]
    constant: Float[Array, "... fields"]
    odd: bool = eqx.field(static=True, default=True)

    @classmethod
    def init(cls, n_fields: int, n_frequencies: int = 25, *, max_frequency: float = 6.0, odd: bool = True, key=None):
        r"""Equally spaced frequencies :math:`\omega_j = j\,\omega_{\max}/n` and small random coefficients.

        Zero coefficients would give the frequencies zero gradient; ``key`` (default
        ``PRNGKey(0)``) draws them with standard deviation :math:`10^{-2}`.
        """
        key = jax.random.PRNGKey(0) if key is None else key
        w = np.arange(1, n_frequencies + 1) * max_frequency / n_frequencies
        k1, k2 = jax.random.split(key)
        return cls(
            linear=jnp.zeros(n_fields),
            sin_coeffs=1e-2 * jax.random.normal(k1, (n_frequencies, n_fields)),
            frequencies=jnp.asarray(np.repeat(w[:, None], n_fields, axis=1)),
            cos_coeffs=jnp.zeros((n_frequencies, n_fields)),
            constant=jnp.zeros(n_fields),
            odd=odd,
        )

    @property
    def n_frequencies(self) -> int:
        """Number of learnable frequencies per layer."""
        return self.frequencies.shape[-2]

    def to_spec(self):
        return {
            "kind": self.kind,
            "batch_shape": _batch_shape(self.linear, 1),
            "n_frequencies": int(self.frequencies.shape[-2]),
            "n_fields": int(self.frequencies.shape[-1]),
            "odd": bool(self.odd),
        }

    @classmethod
    def skeleton(cls, spec, equation):
        b, n, f = tuple(spec["batch_shape"]), int(spec["n_frequencies"]), int(spec["n_fields"])
        z = lambda *s: jnp.zeros(b + s)  # noqa: E731
        return cls(z(f), z(n, f), z(n, f), z(n, f), z(f), odd=bool(spec["odd"]))

    def __call__(self, phi):
        x = self.frequencies * phi[None, :]
        v = self.linear * phi + jnp.sum(self.sin_coeffs * jnp.sin(x), axis=0)
        if not self.odd:
            v = v + self.constant + jnp.sum(self.cos_coeffs * jnp.cos(x), axis=0)
        return v

    def divergence(self, phi):
        x = self.frequencies * phi[None, :]
        d = jnp.sum(self.linear) + jnp.sum(self.sin_coeffs * self.frequencies * jnp.cos(x))
        if not self.odd:
            d = d - jnp.sum(self.cos_coeffs * self.frequencies * jnp.sin(x))
        return d

    # ---------------------------------------------------------------- linear structure
    def features(self, phi) -> tuple[jax.Array, jax.Array]:
        r"""The basis the kernel is linear in (current frequencies): values ``(m, n_fields)``, divergences ``(m,)``.

        Order: ``linear`` (one per component), ``sin_coeffs`` (row-major), then, if not odd,
        ``constant`` and ``cos_coeffs``: the same order as :meth:`coefficients`.
        """
        n, f = self.frequencies.shape
        eye = jnp.eye(f)
        x = self.frequencies * phi[None, :]
        vals = [eye * phi[None, :], (jnp.sin(x)[:, :, None] * eye[None]).reshape(n * f, f)]
        divs = [jnp.ones(f), (self.frequencies * jnp.cos(x)).reshape(n * f)]
        if not self.odd:
            vals += [eye, (jnp.cos(x)[:, :, None] * eye[None]).reshape(n * f, f)]
            divs += [jnp.zeros(f), (-self.frequencies * jnp.sin(x)).reshape(n * f)]
        return jnp.concatenate(vals), jnp.concatenate(divs)

    def coefficients(self) -> jax.Array:
        """All linear coefficients as one vector (the order of :meth:`features`)."""
        parts = [self.linear, self.sin_coeffs.reshape(-1)]
        if not self.odd:
            parts += [self.constant, self.cos_coeffs.reshape(-1)]
        return jnp.concatenate(parts)

    def with_coefficients(self, c: jax.Array) -> SineKernel:
        """The same frequencies with the linear coefficients ``c`` (the order of :meth:`features`)."""
        n, f = self.frequencies.shape
        lin, sin = c[:f], c[f : f + n * f].reshape(n, f)
        const, cos = self.constant, self.cos_coeffs
        if not self.odd:
            const, cos = c[f + n * f : 2 * f + n * f], c[2 * f + n * f :].reshape(n, f)
        return SineKernel(lin, sin, self.frequencies, cos, const, odd=self.odd)


@register_kernel
class MLPKernel(AbstractKernel):
    r"""A small tanh multilayer perceptron plus a linear term, odd by construction when ``odd``.

    .. math::
        v(\phi) = W\phi + g(\phi) \quad\text{or, if odd,}\quad v(\phi) = W\phi + \tfrac12\,[g(\phi) - g(-\phi)],

    with :math:`g` the MLP. The linear term carries the growth at large :math:`|\phi|` (the
    exact kernel of a quartic action grows linearly). The divergence is the trace of the
    forward-mode Jacobian (exact; cheap for few components).
    """

    kind: ClassVar[str] = "mlp"
    linear: Float[Array, "... fields fields"]
    weights: tuple[Float[Array, "... out in"], ...]
    biases: tuple[Float[Array, "... out"], ...]
    odd: bool = eqx.field(static=True, default=True)

    @classmethod
    def init(cls, n_fields: int, width: int = 16, depth: int = 2, *, odd: bool = True, key=None):
        """Glorot-normal hidden layers, a zero output layer (the kernel starts at zero) and a zero linear term."""
        key = jax.random.PRNGKey(0) if key is None else key
        sizes = [n_fields] + [width] * depth + [n_fields]
        ws, bs = [], []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            key, sub = jax.random.split(key)
            last = i == len(sizes) - 2
            ws.append(jnp.zeros((b, a)) if last else jax.random.normal(sub, (b, a)) * np.sqrt(2.0 / (a + b)))
            bs.append(jnp.zeros(b) if last else 0.1 * jax.random.normal(jax.random.fold_in(sub, 1), (b,)))
        return cls(jnp.zeros((n_fields, n_fields)), tuple(ws), tuple(bs), odd=odd)

    def to_spec(self):
        return {
            "kind": self.kind,
            "batch_shape": _batch_shape(self.linear, 2),
            "sizes": [int(self.weights[0].shape[-1])] + [int(w.shape[-2]) for w in self.weights],
            "odd": bool(self.odd),
        }

    @classmethod
    def skeleton(cls, spec, equation):
        b, sizes = tuple(spec["batch_shape"]), [int(s) for s in spec["sizes"]]
        ws = tuple(jnp.zeros(b + (o, i)) for i, o in zip(sizes[:-1], sizes[1:], strict=True))
        bs = tuple(jnp.zeros(b + (o,)) for o in sizes[1:])
        return cls(jnp.zeros(b + (sizes[0], sizes[0])), ws, bs, odd=bool(spec["odd"]))

    def _mlp(self, x):
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            x = jnp.tanh(w @ x + b)
        return self.weights[-1] @ x + self.biases[-1]

    def __call__(self, phi):
        g = 0.5 * (self._mlp(phi) - self._mlp(-phi)) if self.odd else self._mlp(phi)
        return self.linear @ phi + g

    def divergence(self, phi):
        return jnp.trace(jax.jacfwd(self.__call__)(phi))


def stack_kernels(kernels: list[AbstractKernel]) -> AbstractKernel:
    """One kernel with a leading layer axis on every array leaf (what :class:`~pikflow.Flow` stores)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *kernels)
