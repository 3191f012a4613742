r"""Polishing a solved flow of a potential basis on the KL divergence of the map actually applied.

Each layer of a lattice flow solves eq. 34 by least squares on its own, so the coefficients are
the best *per layer* on the collocation configurations, not the best for the discrete RK4 map
that sampling applies (a few steps, on a clock). :func:`polish` moves all layers' coefficients
together, by Adam (Optax) on the reverse Kullback-Leibler divergence of that map,

.. math::  \mathrm{KL}(q\,\|\,p) = E_{q}\big[\log q_1^{\rm exact}(\phi_1) + \hat S_1(\phi_1)\big] + \log Z,

with :math:`\phi_1` the RK4 push of a base draw. Sampling weights with the *continuous* log-density
:math:`\log q_1 = \log q_0 + \int\Delta\Omega_t\,dt` (eq. 11, on the RK4 stages), cheap but exact only
up to the time step. Trained on it alone, the coefficients exploit its error: measured at 16x16
:math:`(-2, 2)`, 2 steps, the mean log-weight rose by 115 in 125 steps (impossible for a density), the error of
:math:`\log q` reached 0.45 rms in 25 iterations and the ESS/N fell from 0.78 to 0.0003. So every
iteration also computes, on ``exact_samples`` fresh draws, the difference
:math:`d = \log q^{\rm cont} - \log q^{\rm exact}` (the exact one from :math:`V` forward-mode
Jacobian columns of the applied map, :func:`pikflow.flow.exact_log_det`) and minimises

.. math::  E_{\rm batch}\big[\log q^{\rm cont} + \hat S_1\big] - E_{\rm exact}[d]
           + \lambda\,E_{\rm exact}[d^2],

the first two terms an unbiased estimate of the KL (the second corrects the first to the exact
log-density), the third keeping the continuous :math:`\log q` that sampling uses that of the map.
The weights of the polished flow are as exact as those of any flow: the same push, the same
continuous log-density, checked against the exact one (:meth:`LatticeFlow.log_density_error`).

The polished flow is kept only if its log-density error stays below :data:`pikflow.flow.UNRELIABLE_LOG_Q`
and its ESS/N on fresh draws (the same for both) is higher, or the input's log-density error was above
that bound (its ESS/N then measures nothing: its weights are not those of its samples); otherwise the
flow is returned unchanged (``record.kept`` is ``False``). The layers are then no longer independent solves of eq. 34,
and their residuals (``flow.reports``) are those of the solve before polishing.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import PikflowError
from ..flow import UNRELIABLE_LOG_Q, LatticeFlow, exact_log_det, rk4_window
from ..progress import progress_bar


@dataclasses.dataclass
class Polish:
    """What :func:`polish` did: the flow (polished, or the input unchanged), and the numbers that decided it."""

    flow: LatticeFlow
    kept: bool
    ess_before: float
    ess_after: float
    log_q_error_before: float
    log_q_error_after: float
    iterations: int
    seconds: float
    history: list = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready numbers (the flow itself is saved with ``flow.save``)."""
        out = dataclasses.asdict(self)
        out.pop("flow")
        return out


def polish(
    flow: LatticeFlow,
    *,
    iterations: int = 300,
    learning_rate: float = 0.01,
    batch: int = 256,
    exact_samples: int = 1,
    penalty: float = 100.0,
    n_check: int = 4000,
    seed: int = 0,
    progress: bool = True,
) -> Polish:
    r"""Polish the coefficients of a solved lattice flow on the reverse KL of its RK4 map (module docstring).

    Parameters
    ----------
    flow
        A solved :class:`pikflow.flow.LatticeFlow` (any potential basis, any number of steps).
    iterations, learning_rate, batch
        Adam steps (Optax), its rate on the coefficients in units of each basis function's RMS
        coefficient over the layers, and base draws per step. A zero first layer (the clock
        :math:`t^p`, :math:`p > 1`) stays zero, so a sample costs the same evaluations.
    exact_samples, penalty
        Draws per step whose exact log-density (:math:`V` Jacobian columns each: the cost of
        polishing grows as :math:`V^2`) corrects the KL and whose squared error :math:`d^2` is
        penalised with weight ``penalty`` (at least one draw: without it the training exploits the
        continuous log-density's error).
    n_check
        Fresh draws on which the ESS/N before and after decides whether the polished flow is kept
        (the same draws of the base for both), and 8 more whose exact log-density checks it.
    seed, progress
        The seed of every draw; a progress bar.
    """
    import optax

    if not isinstance(flow, LatticeFlow):
        raise PikflowError(
            f"polish takes a solved lattice flow (a potential basis), got {type(flow).__name__}; "
            "0-D flows are refined by pikflow.refine.refine"
        )
    for name, value, low in (("iterations", iterations, 0), ("batch", batch, 1), ("exact_samples", exact_samples, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise PikflowError(f"{name} must be an integer of at least {low}, got {value!r}")
    for name, value in (("learning_rate", learning_rate), ("penalty", penalty)):
        if not np.isfinite(value) or value <= 0:
            raise PikflowError(f"{name} must be a positive number, got {value!r}")
    t0 = time.perf_counter()
    ev, path, steps = flow.basis.fused, flow.path, flow.steps
    both = jax.vmap(ev.evaluate, (None, None, 0))
    c0 = jnp.asarray(flow.coeffs)
    scale = jnp.sqrt(jnp.mean(c0**2, axis=0, keepdims=True))
    scale = jnp.where(scale > 0, scale, 1.0)
    skip = int(not np.any(flow.coeffs[0]))  # the clock's zero first layer (t**p, p > 1): not evaluated, kept zero
    mask = jnp.ones_like(c0).at[0].set(1.0 - skip)

    def coeffs_of(theta):
        return c0 + mask * scale * theta

    def push(coeffs, x, lq):  # the sampling push: a loop over the RK4 stages, one evaluation in its body
        def stage(k, y):
            g, lap = both(ev.params, coeffs[k], y)
            return -g, lap

        return rk4_window(stage, x, lq, 0, steps, 1.0 / steps, skip)

    target = jax.vmap(lambda x: path.value(x, 1.0))

    def difference(coeffs, x):  # continuous minus exact log q of one base draw's push
        one = lambda y: push(coeffs, y[None], jnp.zeros(1))  # noqa: E731
        return one(x)[1][0] + exact_log_det(lambda y: one(y)[0][0], x)

    def loss(theta, key):
        coeffs = coeffs_of(theta)
        k1, k2 = jax.random.split(key)
        x0, lq0 = flow.base.sample(k1, batch)
        x1, lq1 = push(coeffs, x0, lq0)
        d = jax.vmap(difference, (None, 0))(coeffs, flow.base.sample(k2, exact_samples)[0])
        return jnp.mean(lq1 + target(x1)) - jnp.mean(d) + penalty * jnp.mean(d**2), jnp.sqrt(jnp.mean(d**2))

    # the rate decays to a tenth over the run (cosine): the last steps settle rather than wander
    opt = optax.adam(optax.cosine_decay_schedule(learning_rate, max(iterations, 1), alpha=0.1))

    @jax.jit
    def update(theta, state, key):
        (value, err), grad = jax.value_and_grad(loss, has_aux=True)(theta, key)
        upd, state = opt.update(grad, state, theta)
        return optax.apply_updates(theta, upd), state, value, err

    theta = jnp.zeros_like(c0)
    state = opt.init(theta)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
    history = []
    bar = progress_bar(total=iterations, desc="polishing", disable=not progress)
    for it in range(iterations):
        theta, state, value, err = update(theta, state, jax.random.fold_in(key, it))
        value, err = float(value), float(err)
        if not np.isfinite(value):
            break  # the map folded on a draw: keep the input flow (judged below)
        history.append({"iteration": it + 1, "loss": value, "log_q_error_rms": err})
        bar.update(1)
    bar.close()
    polished = _with_coeffs(flow, np.asarray(coeffs_of(theta)))
    before, after = (_check(f, n_check, seed) for f in (flow, polished))
    # a flow whose continuous log q misses its map has no ESS/N to beat: its weights are not those of its samples
    kept = bool(after[1] < UNRELIABLE_LOG_Q and (before[1] >= UNRELIABLE_LOG_Q or after[0] > before[0]))
    if kept:
        polished.info["polish"] = {"iterations": len(history), "ess_before": before[0], "ess_after": after[0]}
        if flow.reference is not None:  # the hole check of fit_lattice, redone for the new map
            polished.info["target_ess"] = float(polished.target_ess(flow.reference, after[2]))
    return Polish(
        flow=polished if kept else flow,
        kept=kept,
        ess_before=before[0],
        ess_after=after[0],
        log_q_error_before=before[1],
        log_q_error_after=after[1],
        iterations=len(history),
        seconds=time.perf_counter() - t0,
        history=history,
    )


def _with_coeffs(flow: LatticeFlow, coeffs) -> LatticeFlow:
    """A copy of ``flow`` with other coefficients (the same path, basis, base, reports, info and reference)."""
    out = LatticeFlow(flow.path, flow.basis, flow.base, coeffs, flow.steps, flow.reports)
    out.info, out.reference = dict(flow.info), flow.reference
    out._exact_fn = flow._exact_fn  # the compiled exact log-density takes the coefficients as an argument
    return out


def _check(flow: LatticeFlow, n: int, seed: int):
    """ESS/N of ``n`` draws, the largest :math:`|\\log q|` error of 8 (exact log-densities), seeded alike, and
    the draws."""
    samples = flow.sample(n, seed=seed + 2, progress=False)
    err = flow.log_density_error(jax.random.PRNGKey(seed + 3), 8)
    worst = float(np.max(np.abs(err))) if np.all(np.isfinite(err)) else float("inf")
    return float(samples.ess()), worst, samples
