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

the first two terms an unbiased estimate of the KL up to the constant :math:`\log Z` (the second corrects
the first to the exact log-density; :math:`\log q_0` of the base draw cancels in :math:`d`), the third keeping
the continuous :math:`\log q` that sampling uses that of the map (it moves the minimum off the KL's by as
little as :math:`d` is held small).
The weights of the polished flow are as exact as those of any flow: the same push, the same
continuous log-density, checked against the exact one (:meth:`LatticeFlow.log_density_error`).

The polished flow is kept only if its log-density error stays below :data:`pikflow.flow.UNRELIABLE_LOG_Q`,
it has no more non-finite or runaway samples, and its score on fresh draws (the same for both) is higher:
the ESS/N, or with reference configurations the smaller of it and the ESS/N seen from them (holes), as
:func:`pikflow.lattice.fit_lattice` chooses between flows. Where the input's log-density error was above
that bound its score measures nothing (its weights are not those of its samples) and the polished flow
need not beat it. Otherwise the flow is returned unchanged (``record.kept`` is ``False``). The layers are
then no longer independent solves of eq. 34, and their residuals (``flow.reports``) are those of the solve
before polishing.
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import positive_number
from .._errors import PikflowError
from ..flow import UNRELIABLE_LOG_Q, LatticeFlow, exact_log_det, rk4_window
from ..progress import progress_bar

#: The largest configuration (numbers per configuration) :func:`polish` takes: every step pushes that many
#: Jacobian columns of a draw through the map and back (reverse mode), about 1.3 s at 16x16 on 2 cores.
MAX_SITES = 1024


@dataclasses.dataclass
class PolishRecord:
    r"""What :func:`polish` did: the flow (polished, or the input unchanged), and the numbers that decided it.

    ``ess_*``: ESS/N of the same base draws through both maps; ``target_ess_*``: the ESS/N seen from the flow's
    reference configurations (its hole check, ``None`` without them); ``log_q_error_*``: the largest
    :math:`|\log q^{\rm cont} - \log q^{\rm exact}|` of 8 draws; ``runaways_*``: non-finite or runaway samples.
    """

    flow: LatticeFlow
    kept: bool
    ess_before: float
    ess_after: float
    target_ess_before: float | None
    target_ess_after: float | None
    log_q_error_before: float
    log_q_error_after: float
    runaways_before: int
    runaways_after: int
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
) -> PolishRecord:
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
        Fresh draws (at least 100; the same base draws for both flows) on which the score before and after
        decides whether the polished flow is kept, and 8 more whose exact log-density checks it. The score is
        the ESS/N, or with the flow's reference configurations (``flow.reference``, set by
        :func:`pikflow.lattice.fit_lattice`) the smaller of it and the ESS/N seen from them
        (:meth:`~pikflow.flow.LatticeFlow.target_ess`, which sees holes that reverse-KL training can open),
        as in ``fit_lattice``'s choice between flows; and the polished flow may not have more non-finite or
        runaway samples.
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
        if not positive_number(value):
            raise PikflowError(f"{name} must be a positive number, got {value!r}")
    if isinstance(n_check, bool) or not isinstance(n_check, (int, np.integer)) or n_check < 100:
        raise PikflowError(f"n_check must be an integer of at least 100, got {n_check!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32 - 4:
        raise PikflowError(f"seed must be an integer in [0, 2**32 - 4), got {seed!r}")
    volume = math.prod(flow.path.field_shape)
    if volume > MAX_SITES:
        raise PikflowError(
            f"polish computes {volume} Jacobian columns of a draw every step (its cost and memory grow as V**2): "
            f"it takes flows of at most {MAX_SITES} numbers per configuration (32x32); polish a smaller lattice"
        )
    t0 = time.perf_counter()
    ev, path, steps = flow.basis.fused, flow.path, flow.steps
    both = jax.vmap(ev.evaluate, (None, None, 0))
    c0 = jnp.asarray(flow.coeffs)
    # steps in units of each basis function's RMS coefficient, at least a millionth of the overall RMS
    overall = float(jnp.sqrt(jnp.mean(c0**2))) or 1.0
    scale = jnp.maximum(jnp.sqrt(jnp.mean(c0**2, axis=0, keepdims=True)), 1e-6 * overall)
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
        finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(grad))
        return optax.apply_updates(theta, upd), state, value, err, finite

    theta = jnp.zeros_like(c0)
    state = opt.init(theta)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
    history = []
    bar = progress_bar(total=iterations, desc="polishing", disable=not progress)
    for it in range(iterations):
        new, new_state, value, err, finite = update(theta, state, jax.random.fold_in(key, it))
        if not bool(finite):
            break  # the map folded on a draw: stop at the last finite coefficients (judged below)
        theta, state = new, new_state
        history.append({"iteration": it + 1, "loss": float(value), "log_q_error_rms": float(err)})
        bar.update(1)
    bar.close()
    polished = _with_coeffs(flow, np.asarray(coeffs_of(theta)))
    before, after = (_check(f, n_check, seed) for f in (flow, polished))
    # a flow whose continuous log q misses its map has no ESS/N to beat: its weights are not those of its samples
    better = before["log_q_error"] >= UNRELIABLE_LOG_Q or after["score"] > before["score"]
    kept = bool(after["log_q_error"] < UNRELIABLE_LOG_Q and better and after["runaways"] <= before["runaways"])
    if kept:
        polished.info["polish"] = {"iterations": len(history), "ess_before": before["ess"], "ess_after": after["ess"]}
        if after["target_ess"] is not None:  # the hole check of fit_lattice, redone for the new map
            polished.info["target_ess"] = after["target_ess"]
    return PolishRecord(
        flow=polished if kept else flow,
        kept=kept,
        ess_before=before["ess"],
        ess_after=after["ess"],
        target_ess_before=before["target_ess"],
        target_ess_after=after["target_ess"],
        log_q_error_before=before["log_q_error"],
        log_q_error_after=after["log_q_error"],
        runaways_before=before["runaways"],
        runaways_after=after["runaways"],
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


def _check(flow: LatticeFlow, n: int, seed: int) -> dict:
    """The numbers that judge ``flow`` on ``n`` draws (seeded alike for every flow): ESS/N, the ESS/N from its
    reference configurations (or None), the score (the smaller of both), non-finite and runaway samples, and
    the largest :math:`|\\log q|` error of 8 draws (exact log-densities)."""
    samples = flow.sample(n, seed=seed + 2, progress=False)
    ess = float(samples.ess())
    target = None if flow.reference is None else float(flow.target_ess(flow.reference, samples))
    err = flow.log_density_error(jax.random.PRNGKey(seed + 3), 8)
    worst = float(np.max(np.abs(err))) if np.all(np.isfinite(err)) else float("inf")
    return {
        "ess": ess,
        "target_ess": target,
        "score": ess if target is None else min(ess, target),
        "runaways": int(samples.n_nonfinite + samples.n_runaway),
        "log_q_error": worst,
    }
