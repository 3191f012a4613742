r"""Independent Metropolis-Hastings (IMH) with the flow as proposal.

The flow's samples :math:`\phi_1, \dots, \phi_N` are independent draws from :math:`q`.
Using them, in order, as proposals of a Metropolis-Hastings chain targeting
:math:`p \propto e^{-S}` gives the acceptance probability

.. math::  A(\phi \to \phi')
           = \min\Bigl(1, \frac{p(\phi')\,q(\phi)}{p(\phi)\,q(\phi')}\Bigr)
           = \min\Bigl(1, \frac{w'}{w}\Bigr), \qquad w = \frac{e^{-S}}{q},

so only the unnormalised log weights are needed. The chain is exactly distributed as
:math:`p` asymptotically, whatever the quality of :math:`q`: this makes the sampler
exact, and the acceptance rate is the headline number (1 for a perfect flow).
Consecutive chain states are correlated (a rejection repeats the state), so errors of
chain averages need the Gamma method (:func:`pikflow.diagnostics.gamma_method`).

Implementation: with :math:`E_i = -\log u_i \sim \mathrm{Exp}(1)` drawn up front,
proposal :math:`i` is accepted iff :math:`\log w_{\mathrm{cur}} < \log w_i + E_i`. A
``jax.lax.scan`` over :math:`N` carries only the current log weight and emits the
accept flags; the state indices follow as a running maximum of the accepted positions.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import PikflowError, SamplingError

__all__ = ["IMHResult", "imh_chain"]


@dataclasses.dataclass(frozen=True, eq=False)
class IMHResult:
    r"""Outcome of :func:`imh_chain`.

    Attributes
    ----------
    indices : numpy.ndarray of int, shape (N,)
        ``indices[i]`` is the index (into the proposals) of the chain's state after
        step ``i``; repeated entries are rejections.
    acceptance : float
        Accepted proposals divided by the :math:`N - 1` proposals made after the
        starting state (``nan`` when :math:`N = 1`).

    """

    indices: np.ndarray
    acceptance: float

    def chain(self, values):
        r"""Return ``values[indices]``: per-sample quantities along the chain.

        Parameters
        ----------
        values : array_like, shape (N, ...)
            One entry per proposal (configurations, observables, ...), in the order of
            the ``log_w`` given to :func:`imh_chain`.

        Returns
        -------
        array, shape (N, ...)
            The same type as ``values`` for numpy and JAX arrays.

        """
        if not hasattr(values, "shape"):
            values = np.asarray(values)
        if values.ndim == 0 or values.shape[0] != self.indices.shape[0]:
            raise PikflowError(
                f"values must have one entry per proposal (leading axis "
                f"{self.indices.shape[0]}), got shape {values.shape}"
            )
        return values[self.indices]


@jax.jit
def _accept_flags(key, lw, start):
    n = lw.shape[0]
    pos = jnp.arange(n)
    valid = jnp.isfinite(lw) & (pos > start)
    exp_draws = jax.random.exponential(key, (n,), dtype=lw.dtype)
    # Accept proposal i iff lw_cur < lw_i + E_i, i.e. u_i < w_i / w_cur. Non-finite
    # proposals, and those at or before the start, get -inf: never accepted.
    threshold = jnp.where(valid, lw + exp_draws, -jnp.inf)
    lw_safe = jnp.where(valid, lw, 0.0)

    def step(cur, x):
        thr, lwi = x
        acc = cur < thr
        return jnp.where(acc, lwi, cur), acc

    _, accepted = jax.lax.scan(step, lw[start], (threshold, lw_safe), unroll=8)
    return accepted


def imh_chain(key, log_w) -> IMHResult:
    r"""Run an independent Metropolis-Hastings chain over the proposals in order.

    The chain starts at proposal 0 (at the first proposal with finite ``log_w`` if
    proposal 0's is not finite); proposal :math:`i` is accepted with probability
    :math:`\min(1, w_i / w_{\mathrm{cur}})`. Proposals with non-finite ``log_w`` are
    always rejected.

    Parameters
    ----------
    key : jax.Array
        A JAX PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``) for the uniform
        variates of the accept/reject steps.
    log_w : array_like, shape (N,)
        Unnormalised log importance weights of the proposals, in sampling order.

    Returns
    -------
    IMHResult
        ``indices`` of the chain's state after each step and the ``acceptance`` rate;
        ``result.chain(x)`` maps per-proposal data onto the chain.

    Raises
    ------
    SamplingError
        If ``log_w`` is empty or has no finite entry.

    """
    lw = jnp.asarray(log_w)
    if lw.ndim != 1:
        raise PikflowError(f"log_w must be a 1-D array of per-sample log weights, got shape {lw.shape}")
    if jnp.issubdtype(lw.dtype, jnp.complexfloating):
        raise PikflowError("log_w must be real, got a complex array")
    lw = lw.astype(jnp.result_type(lw.dtype, float))
    n = lw.shape[0]
    finite = np.isfinite(np.asarray(lw))
    if not finite.any():
        raise SamplingError(
            f"all {n} log weights are non-finite (or there are none): "
            "an IMH chain needs at least one proposal with a finite weight"
        )
    start = int(np.argmax(finite))
    accepted = np.asarray(_accept_flags(key, lw, start))
    positions = np.arange(n, dtype=np.int64)
    indices = np.maximum.accumulate(np.where(accepted, positions, start))
    acceptance = float(accepted.sum() / (n - 1)) if n > 1 else float("nan")
    return IMHResult(indices=indices, acceptance=acceptance)
