r"""Means at chosen step times pooled from the neighbouring steps (importance tempering).

SMC visits every step time :math:`t_k` with weighted particles :math:`(W_i, x_i)` of :math:`p_{t_k}`. At a
chosen time :math:`t_p` (a scan point) only the step landing there is normally used, although the steps
around :math:`t_p` hold configurations of nearby theories. Each of them is a
weighted sample of :math:`p_{t_p}` too, with the importance ratio of the two actions:

.. math:: \hat O_{k\to p} = \frac{\sum_i W_i\, r_i\, O(x_i)}{\sum_i W_i\, r_i}, \qquad
          r_i = \frac{\gamma_{t_p}(x_i)}{\gamma_{t_k}(x_i)} = e^{\hat S_{t_k}(x_i) - \hat S_{t_p}(x_i)},

and with ``estimate="moves"`` the configurations after each move of the step enter the sums the same way.
The pooled mean is :math:`\sum_k \lambda_k \hat O_{k\to p}` with :math:`\lambda_k` proportional to the
effective sample size of the weights :math:`W_i r_i` (Gramacy, Samworth & King, Stat. Comput. 20, 1
(2010)): steps far from :math:`t_p`, whose ratios spread, count little. Every term is a self-normalised
importance estimate of :math:`\langle O\rangle_{t_p}`, so the pool is consistent (with the usual
:math:`O(1/N)` bias of SMC means), and its errors still come from the independent replicas.

Reweighting towards a wider distribution has heavy-tailed ratios (for a Gaussian mode of variance
:math:`\sigma_k^2` reweighted to :math:`\sigma_p^2` their variance is infinite once
:math:`\sigma_p^2 \ge 2\sigma_k^2`), and the ESS does not always see it. So a step contributes only to the
pool time nearest to it (half a gap at most: steps before the first and after the last pool time do not
contribute), and only where reweighting keeps at least :data:`MIN_ESS` of its weights' ESS.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._errors import SamplingError
from .._times import step_index

#: a step's contribution counts only where the ratios keep this fraction of its weights' ESS
MIN_ESS = 0.5


def pool_by_default(estimate: str) -> bool:
    """Whether a scan pools its points' means when ``pool`` is not given: yes, except with the means before
    the moves (``estimate="before"``), whose configurations the pool does not hold. The one rule of
    :func:`pikflow.lattice.scan_lattice`, the ``[scan]`` table, ``pikflow bench scan-lattice`` and the work guard."""
    return estimate != "before"


def pool_targets(times, pool) -> tuple[tuple[int, ...], np.ndarray]:
    """The step indices of the ``pool`` times, and per step ``k`` (which arrives at time index ``k + 1``) the
    index of the pool time nearest to it, ``(K,)``: -1 before the first pool time and after the last (and for
    the start, whose means are those of the exact base)."""
    try:
        given = np.asarray(pool, dtype=float)
    except (TypeError, ValueError):
        given = None
    if isinstance(pool, (bool, np.bool_)) or given is None or given.ndim > 1:
        raise SamplingError(f"pool must be a list of step times, got {pool!r}")
    try:
        points = sorted({step_index(times, t) for t in np.atleast_1d(given)} - {0})
    except SamplingError as err:
        raise SamplingError(f"pool: {err}") from None
    times = np.asarray(times, float)
    nearest = np.full(len(times) - 1, -1)
    if points:
        arrival = times[1:]
        table = np.asarray(points, int)
        which = np.argmin(np.abs(arrival[:, None] - times[table][None, :]), axis=1)
        inside = (arrival >= times[table[0]]) & (arrival <= times[table[-1]])
        nearest[inside] = table[which[inside]]
    return tuple(points), nearest


def reweighted(values, log_gamma, times, z, i, p, shift, at_i=None):
    r"""One configuration ``z`` of step index ``i``: ``values(z, i)``, then the ratio
    :math:`r = \gamma_{t_p}(z)/\gamma_{t_i}(z)` (over ``exp(shift)``, which keeps it finite) times
    ``values(z, p)``, and :math:`r`: ``2 n_obs + 1`` numbers. ``at_i``: :math:`\log\gamma_{t_i}(z)` where
    the move has it already."""
    at_i = log_gamma(z, times[i]) if at_i is None else at_i
    r = jnp.exp(log_gamma(z, times[p]) - at_i - shift)
    return jnp.concatenate([values(z, i), r * values(z, p), r[None]])


def pooled_sums(v, w, n_obs: int):
    """From the particles' :func:`reweighted` numbers ``v`` (averaged over the moves) and normalised weights
    ``w``: the reweighted means ``(n_obs,)``, the ESS/N of the weights :math:`W_i r_i` and its fraction of the
    ESS/N of the :math:`W_i`."""
    wr = w * v[:, 2 * n_obs]  # v holds r O and r: the numerator's ratio is in v already
    ess = jnp.sum(wr) ** 2 / (w.shape[0] * jnp.sum(wr**2))
    return jnp.sum(w[:, None] * v[:, n_obs : 2 * n_obs], axis=0) / jnp.sum(wr), ess, ess * w.shape[0] * jnp.sum(w**2)


def pooled_means(moments: np.ndarray, records: list, points, nearest: np.ndarray) -> np.ndarray:
    """``moments`` (time index, replica, observable) with the means at the pool ``points`` replaced by the
    ESS-weighted combination of their steps' reweighted means (``records[k]["pooled"]``: means ``(R, n_obs)``,
    ESS and kept fraction ``(R,)``); contributions that keep less than :data:`MIN_ESS` of their ESS, or where an
    observable is NaN (not observed there), are left out.

    A replica's weights and cut come from the other replicas' ESS (leave one out): from its own ratios they
    would favour its steps without a rare large ratio, and so pull its mean towards the narrower distribution,
    a bias the replicas' spread does not show."""
    out = np.array(moments, dtype=float)
    for p in points:
        steps = [k for k, q in enumerate(nearest) if q == p]
        if not steps:
            continue
        means = np.stack([records[k]["pooled"][0] for k in steps])  # (C, R, n_obs)
        ess = _others(np.stack([records[k]["pooled"][1] for k in steps]))[..., None]  # (C, R, 1)
        kept = _others(np.stack([records[k]["pooled"][2] for k in steps]))[..., None]
        weights = np.where(np.isfinite(means) & np.isfinite(ess) & (kept >= MIN_ESS), ess, 0.0)
        total = weights.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            pooled = np.sum(weights * np.where(weights > 0, means, 0.0), axis=0) / total
        out[p] = np.where(total > 0, pooled, out[p])
    return out


def _others(a: np.ndarray) -> np.ndarray:
    """Per replica (the last axis), the mean of ``a`` over the other replicas (non-finite entries count as 0)."""
    a = np.where(np.isfinite(a), a, 0.0)
    replicas = a.shape[-1]
    if replicas < 2:
        return a
    return (a.sum(axis=-1, keepdims=True) - a) / (replicas - 1)


__all__ = ["MIN_ESS", "pool_targets", "pooled_means", "pooled_sums", "reweighted"]
