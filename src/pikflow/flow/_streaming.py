r"""Observables at every step time from one flow, streamed (parameter-conditional sampling, Fig. 8).

One sample of the flow gives a configuration at every step time :math:`t_k`, each with
its exact weight :math:`w_k = e^{-\hat S_{t_k}(\phi_k) - \log q_k(\phi_k)}`. So one flow
estimates :math:`\langle O\rangle_{t_k}` for every intermediate theory at once.
:func:`path_estimates` does this without storing the samples: each batch is reduced,
inside one compiled function, to the sums of the self-normalised estimator

.. math::
    \bar O_k = \frac{\sum_i w_{ki} O_{ki}}{\sum_i w_{ki}}, \qquad
    \delta\bar O_k = \frac{\sqrt{\sum_i w_{ki}^2 (O_{ki}-\bar O_k)^2}}{\sum_i w_{ki}},

(the delta-method error of :func:`pikflow.diagnostics.reweight`), ESS/N
:math:`= (\sum w)^2/(N\sum w^2)` and :math:`\log Z_k = \log\langle w_k\rangle`. Memory
is independent of N. Weights are shifted by the first batch's largest log-weight and
observables centred on its estimate, so the sums do not lose precision.
"""

from __future__ import annotations

import dataclasses
import time as _time
from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._errors import SamplingError
from .._estimate import Estimate


@dataclasses.dataclass(frozen=True)
class PathEstimates:
    """Estimates at every step time of a flow (:func:`path_estimates`).

    Attributes
    ----------
    times
        Step times :math:`t_k`.
    estimates
        ``name -> [Estimate at t_k for every k]``.
    ess
        ESS/N at every step time.
    log_z
        :math:`\\log Z_{t_k}` with its error at every step time.
    n_samples, n_nonfinite, seconds
        Samples drawn, samples with a non-finite weight at ``t = 1``, wall time.
    """

    times: np.ndarray
    estimates: dict[str, list[Estimate]]
    ess: np.ndarray
    log_z: list[Estimate]
    n_samples: int
    n_nonfinite: int
    seconds: float

    def at(self, name: str, t: float) -> Estimate:
        """The estimate of ``name`` at step time ``t``."""
        k = int(np.argmin(np.abs(self.times - t)))
        if abs(self.times[k] - t) > 1e-9:
            raise SamplingError(f"t = {t} is not a step time: use a multiple of 1/{len(self.times) - 1}")
        return self.estimates[name][k]

    def to_dict(self) -> dict:
        """JSON-ready: per time, every estimate, the ESS/N and log Z."""
        return {
            f"{t:.6g}": {
                **{name: est[k].to_dict() for name, est in self.estimates.items()},
                "ess": float(self.ess[k]),
                "log_z": self.log_z[k].to_dict(),
            }
            for k, t in enumerate(self.times)
        }


def path_estimates(
    flow,
    observables: Mapping[str, sp.Expr | str] | sp.Expr | str,
    n: int,
    *,
    seed: int = 0,
    method: str = "auto",
    batch_size: int | None = None,
    table_nodes: int = 8192,
    progress: bool = True,
) -> PathEstimates:
    """Reweighted observables, ESS/N and log Z at every step time from ``n`` samples, streamed.

    ``observables`` is a SymPy expression or string in the fields, or a mapping
    ``name -> expression``. ``method`` and ``table_nodes`` are those of
    :meth:`pikflow.Flow.sample`; the same seed gives the same samples as
    ``flow.sample(n, seed=seed, keep_layers=True)`` with the same batch size.
    """
    from ..lowering._lower import lower
    from ..progress import progress_bar

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise SamplingError(f"n must be a positive integer, got {n!r}")
    if not isinstance(observables, Mapping):
        observables = {str(observables): observables}
    from ..action._parse import as_expression

    exprs = {name: as_expression(o, what="observable") for name, o in observables.items()}
    if method == "auto":
        method = "table" if flow.n_fields == 1 else "rk4"
    if method == "table":
        table, flow.table_info = flow.table(table_nodes)
        draw, args, key = flow._table_fn(True).jitted, (table,), jax.random.key(seed, impl="rbg")
        batch_size = batch_size or 1 << 16
    elif method == "rk4":
        logdet = "exact" if flow.n_fields <= 8 else "continuous"
        draw, args, key = flow._push_fn(logdet), (flow.kernels,), jax.random.PRNGKey(seed)
        batch_size = batch_size or 1 << 15
    else:
        raise SamplingError(f"method must be 'auto', 'table' or 'rk4', got {method!r}")
    fns = tuple(lower(e, flow.path.fields, time=False, what="observable") for e in exprs.values())
    key_exprs = tuple(sp.srepr(e) for e in exprs.values())
    if method == "table":
        fused = _table_reducer(flow.equation, fns, key_exprs, flow.steps)
        reduce_ = lambda phi, lw, shift, ref, rng, m: fused(table, rng, m, shift, ref)  # noqa: E731
    else:
        stored = _reducer(flow.equation, fns, key_exprs)
        reduce_ = lambda phi, lw, shift, ref, rng, m: stored(phi, lw, shift, ref)  # noqa: E731
    times = np.arange(flow.steps + 1) / flow.steps
    k_times, n_obs = len(times), len(fns)
    sums = np.zeros((k_times, n_obs, 4))
    w_sums = np.zeros((k_times, 2))
    shift = ref = None
    n_bad = 0
    start = _time.perf_counter()
    n_batches = -(-n // batch_size)
    bar = progress_bar(total=n, desc="path estimates", disable=not progress or n_batches < 2)
    for b in range(n_batches):
        m = min(batch_size, n - b * batch_size)
        rng = jax.random.fold_in(key, b)
        phi = lw = None
        if shift is None or method == "rk4":
            phi, _, lw = draw(*args, rng, m)
        if shift is None:  # first batch: the shift of the log-weights and the centring of the observables
            shift, ref = _first_batch(phi, lw, fns)
        s, ws, bad = reduce_(phi, lw, jnp.asarray(shift), jnp.asarray(ref), rng, m)
        sums += np.asarray(s)
        w_sums += np.asarray(ws)
        n_bad += int(bad)
        bar.update(m)
    bar.close()
    if not np.all(w_sums[:, 0] > 0):
        raise SamplingError("every sample has weight zero at some step time: the flow diverged")
    s0, s4 = w_sums[:, 0], w_sums[:, 1]
    estimates = {}
    for j, name in enumerate(exprs):
        sw, s1, s2, s3 = sums[:, j, 0], sums[:, j, 1], sums[:, j, 2], sums[:, j, 3]
        d = s1 / sw
        var = np.maximum(s2 - 2 * d * s3 + d * d * s4, 0.0)
        estimates[name] = [Estimate(float(ref[k, j] + d[k]), float(np.sqrt(var[k]) / sw[k])) for k in range(k_times)]
    mean_w = s0 / n
    var_w = np.maximum(s4 / n - mean_w**2, 0.0)
    log_z = [
        Estimate(float(shift[k] + np.log(mean_w[k])), float(np.sqrt(var_w[k] / n) / mean_w[k])) for k in range(k_times)
    ]
    return PathEstimates(
        times=times,
        estimates=estimates,
        ess=s0**2 / (n * s4),
        log_z=log_z,
        n_samples=n,
        n_nonfinite=n_bad,
        seconds=_time.perf_counter() - start,
    )


def _first_batch(phi, lw, fns):
    lw = np.asarray(lw)
    phi = jnp.asarray(phi).reshape(*lw.shape, -1)
    finite = np.isfinite(lw)
    shift = np.max(np.where(finite, lw, -np.inf), axis=1)
    w = np.where(finite, np.exp(lw - shift[:, None]), 0.0)
    ref = np.empty((lw.shape[0], len(fns)))
    for j, f in enumerate(fns):
        o = np.asarray(jax.vmap(jax.vmap(f))(phi))
        ok = np.isfinite(o) & finite
        ref[:, j] = np.sum(np.where(ok, w * o, 0.0), axis=1) / np.sum(np.where(ok, w, 0.0), axis=1)
    return shift, np.nan_to_num(ref)


def _sums(phi, w, ref, fns):
    """The sums of one step time from shifted weights ``w``: per observable (sum w, sum w d, sum w^2 d^2,
    sum w^2 d), then (sum w, sum w^2), and the number of non-finite samples."""
    ok_w = jnp.isfinite(w) & jnp.all(jnp.isfinite(phi), axis=-1)
    w = jnp.where(ok_w, w, 0.0)
    out = []
    for j, f in enumerate(fns):
        o = jax.vmap(f)(jnp.where(ok_w[:, None], phi, 0.0))
        ok = jnp.isfinite(o) & ok_w
        wo = jnp.where(ok, w, 0.0)
        d = jnp.where(ok, o - ref[j], 0.0)
        out.append(jnp.stack([wo.sum(), (wo * d).sum(), (wo * wo * d * d).sum(), (wo * wo * d).sum()]))
    return jnp.stack(out), jnp.stack([w.sum(), (w * w).sum()]), jnp.sum(~ok_w)


def _reducer(equation, fns: tuple[Callable, ...], key_exprs: tuple[str, ...]):
    """Sums of a batch of stored configurations ``(times, m, fields)`` (the RK4 sampler)."""
    key = ("path-estimates", key_exprs)
    if key in equation.cache:
        return equation.cache[key]

    @eqx.filter_jit
    def reduce_(phi, lw, shift, ref):
        w = jnp.exp(lw - shift[:, None])
        s, ws, bad = jax.vmap(lambda p, wk, r: _sums(p, wk, r, fns))(phi, w, ref)
        return s, ws, bad[-1]

    equation.cache[key] = reduce_
    return reduce_


def _table_reducer(equation, fns: tuple[Callable, ...], key_exprs: tuple[str, ...], steps: int):
    """Draw and reduce in one compiled function, one step time at a time (``lax.map``): no ``(times, m)`` arrays."""
    key = ("path-estimates-table", key_exprs, steps)
    if key in equation.cache:
        return equation.cache[key]
    action = equation.action_fn

    @eqx.filter_jit
    def reduce_(table, rng, m, shift, ref):
        u, v, w = table.uniforms(rng, m)
        pw = u * v

        def one(args):
            c, t, sh, r = args
            value, slope = table._cubic(c, w)
            # w = exp(-S - log q) with q = pw / slope: one exp and no log per sample and time
            weight = jnp.exp(-jax.vmap(action, in_axes=(0, None))(value[:, None], t) - sh) * (slope / pw)
            return _sums(value[:, None], weight, r, fns)

        times = jnp.arange(steps + 1) / steps
        s, ws, bad = jax.lax.map(one, (table.coeffs, times, shift, ref))
        return s, ws, bad[-1]

    equation.cache[key] = reduce_
    return reduce_
