r"""Importance-weight diagnostics: effective sample size, :math:`\log Z`, reweighting.

A sampler with density :math:`q` draws :math:`\phi_1, \dots, \phi_N`; the target is
:math:`p = e^{-S}/Z`. The unnormalised log importance weights are

.. math::  \log w_i = -S(\phi_i) - \log q(\phi_i),
           \qquad \mathbb{E}_q[w] = Z .

Everything here works on ``log_w`` alone and is computed in log space, shifted by
:math:`\max_i \log w_i`, so weights spanning hundreds of orders of magnitude neither
overflow nor underflow. Non-finite entries (``-inf`` for samples outside the support,
``nan`` or ``+inf`` from a failed integration) are treated as **zero weight** but still
count in :math:`N`: they are proposals the sampler spent and lost.

The numerical kernels are jitted JAX (float64 when ``jax_enable_x64`` is on, as the
package sets on import); the public functions return python floats and numpy arrays.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from .._errors import PikflowError, SamplingError

__all__ = ["ess_fraction", "ess_fraction_error", "log_mean_weight", "reweight"]


def _as_log_weights(log_w) -> jax.Array:
    """Validate ``log_w`` (1-D, non-empty, real) and return it as a float JAX array."""
    lw = jnp.asarray(log_w)
    if lw.ndim != 1:
        raise PikflowError(f"log_w must be a 1-D array of per-sample log weights, got shape {lw.shape}")
    if lw.shape[0] == 0:
        raise SamplingError("log_w is empty: there are no samples to weigh")
    if jnp.issubdtype(lw.dtype, jnp.complexfloating):
        raise PikflowError("log_w must be real, got a complex array")
    return lw.astype(jnp.result_type(lw.dtype, float))


@jax.jit
def _log_ess_fraction(lw):
    valid = jnp.isfinite(lw)
    lw = jnp.where(valid, lw, -jnp.inf)
    n = lw.shape[0]
    val = 2.0 * logsumexp(lw) - logsumexp(2.0 * lw) - jnp.log(n)
    # All weights zero: no effective sample (instead of -inf - -inf = nan).
    val = jnp.where(jnp.any(valid), val, -jnp.inf)
    # Cauchy-Schwarz gives ESS/N <= 1; clip the last-bit rounding above it.
    return jnp.minimum(val, 0.0)


def ess_fraction(log_w) -> float:
    r"""Effective sample size per sample, :math:`\mathrm{ESS}/N`, of importance weights.

    .. math::  \frac{\mathrm{ESS}}{N}
               = \frac{\bigl(\sum_i w_i\bigr)^2}{N \sum_i w_i^2}
               = \exp\Bigl(2\,\mathrm{LSE}_i(\log w_i) - \mathrm{LSE}_i(2\log w_i)
                 - \log N\Bigr),

    with :math:`\mathrm{LSE}` the log-sum-exp. It is 1 for a perfect sampler (all
    weights equal) and :math:`1/N` when a single weight dominates. For log-normal
    weights, :math:`\log w \sim \mathcal N(\mu, s^2)`, it tends to :math:`e^{-s^2}`.

    Parameters
    ----------
    log_w : array_like, shape (N,)
        Unnormalised log importance weights. Non-finite entries count as zero weight
        but still count in :math:`N`.

    Returns
    -------
    float
        :math:`\mathrm{ESS}/N \in [0, 1]`; 0.0 if every weight is zero.

    """
    lw = _as_log_weights(log_w)
    return float(np.exp(np.asarray(_log_ess_fraction(lw))))


def ess_fraction_error(log_w) -> float:
    r"""The statistical error of :func:`ess_fraction` (delta method).

    With the weights scaled by their maximum, :math:`\mathrm{ESS}/N = f(a, b) = a^2/b` of the sample
    means :math:`a = \overline{w}` and :math:`b = \overline{w^2}`; its variance is
    :math:`\nabla f^T\,\mathrm{Cov}(w, w^2)\,\nabla f / N` with :math:`\nabla f = (2a/b, -a^2/b^2)`.
    Like every moment-based error of importance weights it is itself estimated from the
    weights, so it is too small when a rare large weight has not been drawn yet (heavy tails).
    Non-finite entries count as zero weight, as in :func:`ess_fraction`.
    """
    lw = np.asarray(_as_log_weights(log_w), dtype=float)
    ok = np.isfinite(lw)
    if not ok.any():
        return 0.0
    w = np.where(ok, np.exp(np.where(ok, lw - lw[ok].max(), 0.0)), 0.0)
    n = w.size
    a, b = w.mean(), (w**2).mean()
    grad = np.array([2 * a / b, -(a**2) / b**2])
    cov = np.cov(np.stack([w, w**2]), ddof=1) if n > 1 else np.zeros((2, 2))
    return float(np.sqrt(max(grad @ cov @ grad, 0.0) / n))


@jax.jit
def _log_mean_weight(lw):
    valid = jnp.isfinite(lw)
    n = lw.shape[0]
    m = jnp.max(jnp.where(valid, lw, -jnp.inf))
    w = jnp.where(valid, jnp.exp(jnp.where(valid, lw - m, 0.0)), 0.0)
    mean = jnp.sum(w) / n
    std = jnp.sqrt(jnp.sum((w - mean) ** 2) / n)
    return m + jnp.log(mean), std / (jnp.sqrt(n) * mean)


def log_mean_weight(log_w) -> tuple[float, float]:
    r"""Estimate :math:`\log Z = \log \mathbb{E}_q[w]` by :math:`\log \bar w` ± error.

    .. math::  \widehat{\log Z} = \log \frac{1}{N}\sum_i w_i
               = \mathrm{LSE}_i(\log w_i) - \log N ,
               \qquad
               \delta\widehat{\log Z} = \frac{\mathrm{std}(w)}{\sqrt N\,\bar w} ,

    the error being the delta-method propagation of the standard error of
    :math:`\bar w` through the logarithm (``std`` with ``ddof=0``). Both are computed
    with weights rescaled by :math:`e^{-\max_i \log w_i}`, so no overflow occurs. The
    estimator of :math:`\log Z` is biased low by :math:`\approx \delta^2/2` (Jensen),
    which is negligible when the error is.

    Parameters
    ----------
    log_w : array_like, shape (N,)
        Unnormalised log importance weights; with :math:`\log w = -S - \log q` and a
        normalised :math:`q` the result estimates :math:`\log \int e^{-S}` (minus the
        free energy). Non-finite entries count as zero weight but still count in
        :math:`N`.

    Returns
    -------
    value, error : float
        The estimate of :math:`\log Z` and its standard error.

    Raises
    ------
    SamplingError
        If every weight is zero (no finite ``log_w``).

    """
    lw = _as_log_weights(log_w)
    value, error = _log_mean_weight(lw)
    value = float(value)
    if not math.isfinite(value):
        raise SamplingError(f"all {lw.shape[0]} log weights are non-finite: log Z cannot be estimated")
    return value, float(error)


@jax.jit
def _reweight(lw, vals):
    # vals: (N, k). Each column is masked on its own: an entry is used only when both
    # its log weight and its value are finite.
    valid = jnp.isfinite(lw)[:, None] & jnp.isfinite(vals)
    lwk = jnp.where(valid, lw[:, None], -jnp.inf)
    m = jnp.max(lwk, axis=0)
    w = jnp.where(valid, jnp.exp(jnp.where(valid, lwk - m, 0.0)), 0.0)
    v = jnp.where(valid, vals, 0.0)
    sw = jnp.sum(w, axis=0)
    mean = jnp.sum(w * v, axis=0) / sw
    err = jnp.sqrt(jnp.sum((w * (v - mean)) ** 2, axis=0)) / sw
    return mean, err, jnp.sum(valid, axis=0)


def reweight(log_w, values) -> tuple[float | np.ndarray, float | np.ndarray]:
    r"""Self-normalised importance-sampling estimate of :math:`\langle O \rangle_p`.

    .. math::  \bar O = \frac{\sum_i w_i O_i}{\sum_i w_i},
               \qquad
               \delta \bar O = \frac{\sqrt{\sum_i w_i^2 (O_i - \bar O)^2}}{\sum_i w_i},

    the error being the delta-method (linearised ratio) standard error of the
    self-normalised estimator, consistent as :math:`N \to \infty`. Its relative bias is
    :math:`O(1/\mathrm{ESS})`. Weights are rescaled by :math:`e^{-\max \log w}` first.

    Parameters
    ----------
    log_w : array_like, shape (N,)
        Unnormalised log importance weights.
    values : array_like, shape (N,) or (N, k) (or (N, ...))
        Real observable(s) per sample; trailing axes are estimated independently.
        An entry is excluded (weight 0) when its ``log_w`` or its own value is
        non-finite, so a ``nan`` in one observable does not discard the sample for the
        others.

    Returns
    -------
    mean, error : float, or numpy.ndarray of shape ``values.shape[1:]``
        The estimate and its standard error (floats for 1-D ``values``).

    Raises
    ------
    SamplingError
        If an observable has no entry with finite weight and value.

    """
    lw = _as_log_weights(log_w)
    vals = jnp.asarray(values)
    if vals.ndim == 0 or vals.shape[0] != lw.shape[0]:
        raise PikflowError(
            f"values must have shape (N, ...) with N = {lw.shape[0]} (the length of log_w), got shape {vals.shape}"
        )
    if jnp.issubdtype(vals.dtype, jnp.complexfloating):
        raise PikflowError("values must be real; reweight real and imaginary parts separately")
    out_shape = vals.shape[1:]
    vals = vals.astype(lw.dtype).reshape(lw.shape[0], math.prod(out_shape))
    mean, err, n_valid = _reweight(lw, vals)
    n_valid = np.asarray(n_valid)
    if np.any(n_valid == 0):
        bad = np.flatnonzero(n_valid == 0)
        raise SamplingError(
            f"no sample has both a finite log weight and a finite value "
            f"(observable column(s) {bad.tolist()[:10]} of the flattened values): "
            "the reweighted mean is undefined"
        )
    mean = np.asarray(mean).reshape(out_shape)
    err = np.asarray(err).reshape(out_shape)
    if not out_shape:
        return float(mean), float(err)
    return mean, err
