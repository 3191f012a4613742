r"""Where the flow misses the target: reference samples with the largest weights, at every layer.

The hole check (:func:`pikflow.diagnostics.target_ess`) draws exact samples :math:`y` of
the target (inverse CDF from quadrature, one field component) and pulls them back through
the flow (:meth:`pikflow.Flow.log_density`). Their weights :math:`w = p/q \propto
e^{-\hat S_1(y) - \log q(y)}` are largest where :math:`q` misses :math:`p`; a flow
sample hardly ever lands there, so the residual-driven refinement, whose collocation
points are flow samples, never sees the region. :func:`missed_points` returns the
``n_missed`` samples of largest weight (those the flow cannot invert, :math:`q = 0` or
``nan``, first), carried back along the flow to every layer time by backward RK4 steps,
as collocation points and centre candidates for ``refine(centres_at="missed")``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import PikflowError


def missed_weights(flow, reference) -> np.ndarray:
    r""":math:`\log w = -\hat S_1 - \log q` of reference samples ``(n, n_fields)`` under the flow's RK4 map.

    ``+inf`` where the flow puts no probability or cannot be inverted (``nan``): missed.
    """
    ref = jnp.asarray(np.asarray(reference, float).reshape(-1, flow.n_fields))
    log_q = np.asarray(flow.log_density(ref, method="rk4"))
    action = jax.vmap(flow.equation.action_fn, in_axes=(0, None))
    log_w = -np.asarray(action(ref, 1.0)) - log_q
    return np.where(np.isnan(log_w), np.inf, log_w)


@eqx.filter_jit
def _backward(kernels, x, steps: int):
    """Positions at every layer time (2 steps + 1) of the trajectories ending at ``x`` (backward RK4)."""
    dt = 1.0 / steps

    def body(x, i):
        ka, km, kb = kernels.layer(2 * i + 2), kernels.layer(2 * i + 1), kernels.layer(2 * i)
        v1 = jax.vmap(ka)(x)
        v2 = jax.vmap(km)(x - 0.5 * dt * v1)
        v3 = jax.vmap(km)(x - 0.5 * dt * v2)
        v4 = jax.vmap(kb)(x - dt * v3)
        prev = x - dt / 6.0 * (v1 + 2 * v2 + 2 * v3 + v4)
        mid = x - 0.5 * dt * v1 - 0.25 * dt * (v2 - v1)  # about the half step back (the stage points' layer)
        return prev, (prev, mid)

    _, (starts, mids) = jax.lax.scan(body, x, jnp.arange(steps - 1, -1, -1))
    starts, mids = starts[::-1], mids[::-1]  # index i: step start i and its midpoint
    out = jnp.empty((2 * steps + 1, *x.shape))
    out = out.at[0 : 2 * steps : 2].set(starts).at[1 : 2 * steps : 2].set(mids).at[-1].set(x)
    return out


def missed_points(flow, *, n_missed: int = 64, n_reference: int = 20_000, seed: int = 0) -> list[np.ndarray]:
    r"""The ``n_missed`` reference samples of largest :math:`p/q`, carried back to every layer time.

    Exact samples of the target (seed ``seed + 7``) for one field component; returns one
    array ``(k, 1)`` per layer of the flow (``k <= n_missed``; samples whose backward
    trajectory leaves the finite numbers are dropped).
    """
    if flow.n_fields != 1:
        raise PikflowError("refine(centres_at='missed') needs exact reference samples: one field component only")
    if isinstance(n_missed, bool) or not isinstance(n_missed, (int, np.integer)) or n_missed < 1:
        raise PikflowError(f"refine: n_missed must be a positive integer, got {n_missed!r}")
    from ..exact import reference_for

    try:
        ref = reference_for(flow.path)
    except (ValueError, ArithmeticError) as err:
        raise PikflowError(f"refine(centres_at='missed') needs the target's quadrature, which failed: {err}") from None
    y = ref.sample(1.0, max(int(n_reference), int(n_missed)), seed=seed + 7)[:, None]
    log_w = missed_weights(flow, y)
    top = np.argsort(-log_w, kind="stable")[: int(n_missed)]
    traj = np.asarray(_backward(flow.kernels, jnp.asarray(y[top]), flow.steps))
    ok = np.all(np.isfinite(traj), axis=(0, 2))
    return [traj[i][ok] for i in range(traj.shape[0])]


__all__ = ["missed_points", "missed_weights"]
