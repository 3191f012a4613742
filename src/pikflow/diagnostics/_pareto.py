r"""The Pareto shape :math:`\hat k` of the importance weights' upper tail: can their errors be trusted?

The ESS and the reweighted errors are built from the sample variance of the weights. Where the weights' tail
is heavy, that variance is dominated by samples not yet drawn: a run of :math:`N` samples shows a good ESS and
small errors, and a longer run moves the estimate by several of those errors. Fitting a generalised Pareto
distribution to the largest weights measures the tail (Vehtari, Simpson, Gelman, Yao and Gabry, "Pareto smoothed
importance sampling", JMLR 25 (2024), the PSIS diagnostic): with shape :math:`k`,
:math:`E_q[w^r]` is finite only for :math:`r < 1/k`, so

- :math:`k < 1/2`: the weights have a finite variance, the ESS and the errors are what they say;
- :math:`1/2 \le k <` :func:`khat_threshold` (0.7 at most): the variance is infinite, yet the estimates converge
  at a usable rate for this :math:`N`;
- above: the estimates and their errors from these samples are not to be trusted, and more samples from the
  same proposal help only slowly.

:math:`\hat k` does not see the weights' scale: the weights of a near-exact flow, all within :math:`10^{-4}` of
their mean, can have a tail of shape 0.75 (measured on 0-D flows with ESS/N :math:`1 - 10^{-8}`) that no feasible
run ever brings near the mean. The warning therefore also asks that the largest weight exceed
:data:`LARGEST_WEIGHT` times the mean (:func:`largest_weight`): below that, the part of the mean carried beyond the
largest weight seen is of order :math:`(w_{\max}/\bar w)/(N(1-k))`, far below the estimates' errors.

:func:`pareto_khat` fits the :math:`M = \lceil\min(N/5, 3\sqrt N)\rceil` largest weights' exceedances over the
next one with Zhang and Stephens' empirical-Bayes estimate (Technometrics 51 (2009) 316) and the weak prior of
the PSIS paper, as ArviZ's ``psislw`` does (no heavy dependency for forty lines). Lattice runs report it
(``pareto_khat``) and warn above the threshold (:func:`pikflow.diagnostics.reliability_warnings`).
"""

from __future__ import annotations

import math

import numpy as np

from .._errors import PikflowError, SamplingError

__all__ = ["LARGEST_WEIGHT", "khat_threshold", "khat_warning", "largest_weight", "pareto_khat", "weight_tail"]

#: The warning needs a tail that reaches the weights' scale: the largest weight above this many times the mean.
LARGEST_WEIGHT = 2.0


def khat_threshold(n: int) -> float:
    r"""The PSIS paper's threshold for :math:`N` samples, :math:`\min(1 - 1/\log_{10}N,\ 0.7)`."""
    return float(min(1.0 - 1.0 / math.log10(max(int(n), 11)), 0.7))


def _gpd_fit(x: np.ndarray) -> float:
    """Zhang and Stephens' estimate of the generalised Pareto shape of the sorted exceedances ``x`` (positive),
    with the PSIS paper's prior (10 pseudo-observations at 1/2)."""
    n = x.size
    m = 30 + int(math.sqrt(n))
    b = 1.0 - np.sqrt(m / (np.arange(1, m + 1, dtype=float) - 0.5))
    b = b / (3.0 * x[int(n / 4 + 0.5) - 1]) + 1.0 / x[-1]
    k = np.log1p(-b[:, None] * x).mean(axis=1)
    log_like = n * (np.log(-b / k) - k - 1.0)
    weights = np.exp(log_like - np.logaddexp.reduce(log_like))  # 1 / sum_j exp(l_j - l_i), without overflow
    keep = weights >= 10 * np.finfo(float).eps
    weights, b = weights[keep], b[keep]
    b_post = float(np.sum(b * weights / weights.sum()))
    k_post = float(np.log1p(-b_post * x).mean())
    return (n * k_post + 10 * 0.5) / (n + 10)


def pareto_khat(log_w) -> float:
    r"""The generalised Pareto shape :math:`\hat k` of the upper tail of the weights :math:`e^{\log w}`.

    ``log_w``: per-sample log weights (1-D; shifts do not matter). Non-finite entries are left out (zero weight:
    ``+inf`` and ``nan`` come from a failed integration, as in :func:`pikflow.diagnostics.ess_fraction`). Where the
    tail holds fewer than 5 weights above the cutoff, the result is ``inf`` if it holds some (a few isolated
    weights, as ArviZ's ``psislw`` says) and ``nan`` if none (all tail weights equal: no tail to fear), and ``nan``
    for fewer than 25 samples. Module docstring: what the value means. Checked against Pareto-distributed weights
    of known shape, and against ArviZ's algorithm on a fixed input (tested).
    """
    lw = np.asarray(log_w, dtype=float)
    if lw.ndim != 1:
        raise PikflowError(f"log_w must be a 1-D array of per-sample log weights, got shape {lw.shape}")
    lw = np.sort(lw[np.isfinite(lw)])
    if lw.size == 0:
        raise SamplingError("pareto_khat needs finite log weights: every weight is zero or non-finite")
    n = lw.size
    tail = int(math.ceil(min(0.2 * n, 3.0 * math.sqrt(n))))
    if tail < 5 or n <= tail:
        return float("nan")
    lw = lw - lw[-1]
    cutoff = lw[-tail - 1]
    x = math.exp(cutoff) * np.expm1(lw[-tail:] - cutoff)  # exceedances, precise for near-equal weights
    x = x[x > 0]
    if x.size < 5:
        return float("inf") if x.size else float("nan")
    return _gpd_fit(x)


def largest_weight(log_w) -> float:
    """The largest weight over the mean weight, :math:`N\\,w_{\\max}/\\sum_i w_i` (non-finite weights count as zero
    but in :math:`N`)."""
    lw = np.asarray(log_w, dtype=float).ravel()
    lw = np.where(np.isfinite(lw), lw, -np.inf)
    if not np.any(np.isfinite(lw)):
        return float("nan")
    return float(np.exp(np.log(lw.size) + lw.max() - np.logaddexp.reduce(lw)))


def khat_warning(khat: float | None, n: int, largest: float | None = None) -> list[str]:
    """A one-item list with the warning for a :math:`\\hat k` above :func:`khat_threshold` of ``n`` samples whose
    largest weight (:func:`largest_weight`; ``None``: not known) is above :data:`LARGEST_WEIGHT` times the mean, else
    empty (also for ``khat`` ``None`` or ``nan``: not measured, or no tail; ``inf``, a few isolated weights, warns)."""
    if khat is None or np.isnan(khat) or khat <= khat_threshold(n):
        return []
    if largest is not None and np.isfinite(largest) and largest <= LARGEST_WEIGHT:
        return []
    return [
        f"the weights' upper tail is heavy (Pareto k-hat {khat:.2f}, above {khat_threshold(n):.2f} for {n} samples): "
        "the ESS and the errors rest on a variance these samples do not determine, and a longer run may move the "
        "estimates by several of their errors; use a better flow (more steps, a richer basis) rather than more samples"
    ]


def weight_tail(log_w) -> dict:
    """``{"pareto_khat", "largest_weight"}`` of the log weights, the two numbers :func:`khat_warning` reads (as a
    run's results record them); ``pareto_khat`` is None where no weight is finite (the ESS warnings say so)."""
    lw = np.asarray(log_w, dtype=float).ravel()
    khat = pareto_khat(lw) if np.any(np.isfinite(lw)) else None
    return {"pareto_khat": khat, "largest_weight": largest_weight(lw)}
