r"""The exactly sampled Gaussian base distribution :math:`p_0 \propto e^{-\hat S_0}` (paper eq. 10)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


class GaussianBase(eqx.Module):
    r"""A normal distribution :math:`\hat S_0 = \tfrac12(\phi-\mu)^T K (\phi-\mu)`, sampled exactly.

    ``log_prob`` is normalised: :math:`\log q_0 = -\hat S_0 + \tfrac12\log\det K - \tfrac n2\log 2\pi`.
    """

    mean: Float[Array, " fields"]
    precision: Float[Array, "fields fields"]
    cholesky_cov: Float[Array, "fields fields"]
    log_norm: Float[Array, ""]

    def __init__(self, mean, precision):
        mean = np.asarray(mean, dtype=float)
        precision = np.asarray(precision, dtype=float)
        cov = np.linalg.inv(precision)
        self.mean = jnp.asarray(mean)
        self.precision = jnp.asarray(precision)
        self.cholesky_cov = jnp.asarray(np.linalg.cholesky(cov))
        sign, logdet = np.linalg.slogdet(precision)
        self.log_norm = jnp.asarray(0.5 * logdet - 0.5 * len(mean) * np.log(2 * np.pi))

    def sample(self, key, n: int) -> tuple[jax.Array, jax.Array]:
        """``n`` exact samples and their normalised log-density."""
        z = jax.random.normal(key, (n, self.mean.shape[0]))
        phi = self.mean + z @ self.cholesky_cov.T
        return phi, self.log_norm - 0.5 * jnp.sum(z * z, axis=1)

    def log_prob(self, phi):
        """Normalised log-density of configurations ``(..., n_fields)``."""
        d = phi - self.mean
        return self.log_norm - 0.5 * jnp.einsum("...a,ab,...b->...", d, self.precision, d)
