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
is independent of N. Weights are shifted by the largest log-weight of a pilot sample and
observables centred on its estimate (constants, so the estimators do not depend on
them), so the sums do not lose precision.

With the tabulated map (one field component) drawing and reducing are fused: per block
of 512 samples, one look-up of a row of the table gives the cell coefficients of every
step time (:class:`~pikflow.flow.TabulatedMap`), and the weights, observables and sums
of all step times follow without leaving the CPU cache. The sums are taken without
per-sample finiteness tests; a batch whose sums are not all finite (a non-finite weight
or observable somewhere) is reduced again with the tests, so the result is the same.
Batches run on ``workers`` threads (one per CPU core by default).
"""

from __future__ import annotations

import dataclasses
import os
import time as _time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._errors import SamplingError
from .._estimate import Estimate
from .._times import step_index


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
        return self.estimates[name][step_index(self.times, t)]

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
    table_nodes: int = 2048,
    workers: int | None = None,
    progress: bool = True,
) -> PathEstimates:
    r"""Reweighted observables, ESS/N and log Z at every step time from ``n`` samples, streamed (Fig. 8).

    Parameters
    ----------
    flow
        A solved :class:`~pikflow.Flow`.
    observables
        A SymPy expression or string in the fields, or a mapping ``name -> expression``.
    n
        Samples (each gives a configuration at every step time).
    seed
        Seed: the same seed gives the same samples as
        ``flow.sample(n, seed=seed, keep_layers=True, table_nodes=table_nodes)`` with the
        same batch size.
    method
        ``"table"``, ``"rk4"`` or ``"auto"``, as in :meth:`pikflow.Flow.sample` (the radial
        table of an :math:`O(N)` flow is drawn per batch and reduced like RK4 samples).
    batch_size
        Samples per compiled call (default :math:`2^{16}` for the table, :math:`2^{15}` for RK4,
        for the radial table as in :meth:`pikflow.Flow.sample` with every step time kept).
    table_nodes
        Grid nodes of the tabulated map (default 2048: interpolation error
        :math:`\sim 10^{-5}`, ESS/N above :math:`1 - 10^{-8}` on the paper's path; the
        weights are exact for any table).
    workers
        Threads running batches at the same time (table method; default: the CPU cores).
    progress
        Show a progress bar.

    Returns
    -------
    PathEstimates
        Every observable with its error, ESS/N and :math:`\log Z` at every step time.
    """
    from ..lowering._lower import lower
    from ..progress import progress_bar

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise SamplingError(f"n must be a positive integer, got {n!r}")
    for name, v in (("batch_size", batch_size), ("workers", workers)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0):
            raise SamplingError(f"{name} must be a positive integer (or None for the default), got {v!r}")
    if not isinstance(observables, Mapping):
        observables = {str(observables): observables}
    from ..action._parse import as_expression

    exprs = {name: as_expression(o, what="observable") for name, o in observables.items()}
    if method == "auto":
        method = "table" if flow.n_fields == 1 or flow._radial() else "rk4"
    radial = method == "table" and flow.n_fields > 1
    if radial:  # the radial table of an O(N) flow: drawn per batch, reduced like stored RK4 samples
        table, flow.table_info = flow.table(table_nodes)
        draw, args, key = flow._table_fn(True), (table,), jax.random.key(seed, impl="rbg")
        batch_size = batch_size or flow._default_batch("table", "table", True)
    elif method == "table":
        table, flow.table_info = flow.table(table_nodes)
        key = jax.random.key(seed, impl="rbg")
        batch_size = batch_size or 1 << 16
    elif method == "rk4":
        logdet = "exact" if flow.n_fields <= 8 else "continuous"
        draw, args, key = flow._push_fn(logdet), (flow.kernels,), jax.random.PRNGKey(seed)
        batch_size = batch_size or min(1 << 15, flow._default_batch("rk4", logdet, True))
    else:
        raise SamplingError(f"method must be 'auto', 'table' or 'rk4', got {method!r}")
    fns = tuple(lower(e, flow.path.fields, time=False, what="observable") for e in exprs.values())
    key_exprs = tuple(sp.srepr(e) for e in exprs.values())
    times = flow.step_times
    k_times, n_obs = len(times), len(fns)
    sums = np.zeros((k_times, n_obs, 4))
    w_sums = np.zeros((k_times, 2))
    n_bad = 0
    start = _time.perf_counter()
    n_batches = -(-n // batch_size)
    bar = progress_bar(total=n, desc="path estimates", disable=not progress or n_batches < 2)
    if method == "table" and not radial:
        sums, w_sums, n_bad, shift, ref = _reduce_table(flow, table, key, fns, key_exprs, n, batch_size, workers, bar)
    else:
        stored = _reducer(flow.equation, fns, key_exprs)
        shift = ref = None
        for b in range(n_batches):
            m = min(batch_size, n - b * batch_size)
            phi, _, lw = draw(*args, jax.random.fold_in(key, b), m)
            if shift is None:  # first batch: the shift of the log-weights and the centring of the observables
                shift, ref = _first_batch(phi, lw, fns)
            s, ws, bad = stored(phi, lw, jnp.asarray(shift), jnp.asarray(ref))
            sums += np.asarray(s)
            w_sums += np.asarray(ws)
            n_bad += int(bad)
            bar.update(m)
    bar.close()
    if not np.all(w_sums[:, 0] > 0):
        raise SamplingError("every sample has weight zero at some step time: the flow diverged")
    return _finish(exprs, times, sums, w_sums, shift, ref, n, n_bad, _time.perf_counter() - start)


def _reduce_table(flow, table, key, fns, key_exprs, n, batch_size, workers, bar):
    """The one-component table: every batch drawn and reduced inside one compiled call, batches on threads."""
    k_times, n_obs = len(flow.step_times), len(fns)
    sums = np.zeros((k_times, n_obs, 4))
    w_sums = np.zeros((k_times, 2))
    n_bad = 0
    n_batches = -(-n // batch_size)
    # a pilot of a few thousand samples gives the shift of the log-weights and the centring
    # of the observables (constants: the estimators do not depend on them); then every
    # batch is drawn and reduced inside one compiled call (the key folded in there too)
    fused = _table_reducer(flow.equation, fns, key_exprs, flow.steps, careful=False)
    pilot = _table_pilot(flow.equation, fns, key_exprs, flow.steps)
    shift, ref = pilot(table, jax.random.fold_in(key, n_batches), min(n, batch_size, _PILOT))
    sizes = [min(batch_size, n - b * batch_size) for b in range(n_batches)]

    def run(b):
        out = jax.device_get(fused(table, key, jnp.asarray(b, jnp.uint32), sizes[b], shift, ref))
        if not out[3]:  # a non-finite term somewhere in this batch: reduce it again, testing every sample
            careful = _table_reducer(flow.equation, fns, key_exprs, flow.steps, careful=True)
            out = jax.device_get(careful(table, key, jnp.asarray(b, jnp.uint32), sizes[b], shift, ref))
        bar.update(sizes[b])
        return out

    workers = max(1, min(int(workers or os.cpu_count() or 1), n_batches))
    if workers == 1:
        outs = [run(b) for b in range(n_batches)]
    else:  # JAX releases the GIL while a compiled call runs: one batch per CPU core at a time
        with ThreadPoolExecutor(workers) as ex:
            outs = list(ex.map(run, range(n_batches)))
    for s, ws, bad, _ in outs:  # in batch order: the same sums whatever the threads
        sums += s
        w_sums += ws
        n_bad += int(bad)
    shift, ref = np.asarray(shift), np.asarray(ref)
    return sums, w_sums, n_bad, shift, ref


def _finish(exprs, times, sums, w_sums, shift, ref, n, n_bad, seconds) -> PathEstimates:
    """The estimates (delta method), ESS/N and log Z at every step time from the streamed sums."""
    k_times = len(times)
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
        seconds=seconds,
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


#: samples of the pilot that fixes the shift and the centring (table method)
_PILOT = 4096


def _table_pilot(equation, fns: tuple[Callable, ...], key_exprs: tuple[str, ...], steps: int):
    """Shift (largest finite log-weight) and centring (weighted mean of each observable) per step time, from a pilot."""
    key = ("path-estimates-pilot", key_exprs, steps)
    if key in equation.cache:
        return equation.cache[key]
    action = equation.action_fn

    @eqx.filter_jit
    def pilot(table, rng, m):
        phi, lq = table.sample(rng, m, all_times=True)  # (times, m)
        times = jnp.arange(steps + 1) / steps
        lw = -jax.vmap(lambda p, t: jax.vmap(action, in_axes=(0, None))(p[:, None], t))(phi, times) - lq
        finite = jnp.isfinite(lw)
        shift = jnp.max(jnp.where(finite, lw, -jnp.inf), axis=1)
        shift = jnp.where(jnp.isfinite(shift), shift, 0.0)
        w = jnp.where(finite, jnp.exp(lw - shift[:, None]), 0.0)
        refs = []
        for f in fns:
            o = jax.vmap(jax.vmap(f))(phi[..., None])
            ok = jnp.isfinite(o) & finite
            refs.append(jnp.sum(jnp.where(ok, w * o, 0.0), axis=1) / jnp.sum(jnp.where(ok, w, 0.0), axis=1))
        return shift, jnp.nan_to_num(jnp.stack(refs, axis=1))

    equation.cache[key] = pilot
    return pilot


def _block_sums(value, weight, ref, fns, careful: bool):
    """:func:`_sums` of a block ``(samples, times)`` at every step time at once (reduced over samples).

    ``careful=False`` skips the per-sample finiteness tests: if every term is finite the
    sums are the same, and a non-finite term makes some sum non-finite, which the caller
    detects (the batch is then reduced again with ``careful=True``).
    """
    if careful:
        ok_w = jnp.isfinite(weight) & jnp.isfinite(value)
        w = jnp.where(ok_w, weight, 0.0)
        x = jnp.where(ok_w, value, 0.0)[..., None]
        bad = jnp.sum(~ok_w, axis=0)
    else:
        w, x, bad = weight, value[..., None], jnp.zeros(value.shape[1], jnp.int32)
    out = []
    for j, f in enumerate(fns):
        o = jax.vmap(jax.vmap(f))(x)
        if careful:
            ok = jnp.isfinite(o) & ok_w
            wo = jnp.where(ok, w, 0.0)
            wd = wo * jnp.where(ok, o - ref[:, j], 0.0)
        else:
            wo, wd = w, w * (o - ref[:, j])
        out.append(jnp.stack([wo.sum(0), wd.sum(0), (wd * wd).sum(0), (wo * wd).sum(0)], axis=-1))
    return jnp.stack(out, axis=1), jnp.stack([w.sum(0), (w * w).sum(0)], axis=-1), bad


#: samples per block of the fused table pass: the block's cells for every step time,
#: ``(block, times, 4)``, and its ``(block, times)`` intermediates stay in the CPU cache
_BLOCK = 512


def _table_reducer(equation, fns: tuple[Callable, ...], key_exprs: tuple[str, ...], steps: int, careful: bool):
    """Draw and reduce in one compiled function: per block of samples, one table look-up per sample gives
    every step time (no ``(times, m)`` arrays in memory). Returns the sums, the number of non-finite
    samples at ``t = 1`` and whether every sum is finite."""
    key = ("path-estimates-table", key_exprs, steps, careful)
    if key in equation.cache:
        return equation.cache[key]
    action = equation.action_fn
    s_fn = jax.vmap(jax.vmap(action, in_axes=(0, None)), in_axes=(1, 0), out_axes=1)  # (block, times)

    @eqx.filter_jit
    def reduce_(table, key, b, m, shift, ref):
        u, v, w = table.uniforms(jax.random.fold_in(key, b), m)
        inv_pw = 1.0 / (u * v)
        j, s = table.locate(w)  # the cell and the position in it: the same at every step time
        n_blocks = -(-m // _BLOCK)
        pad = n_blocks * _BLOCK - m  # padding: inv_pw = 0 marks it (weight 0)
        j, s, inv_pw = (jnp.pad(a, (0, pad)).reshape(n_blocks, _BLOCK) for a in (j, s, inv_pw))
        times = jnp.arange(steps + 1) / steps

        def one(args):
            jj, ss, ip = args
            value, slope = table.cubic(table.cells.at[jj].get(mode="promise_in_bounds"), ss[:, None])
            # w = exp(-S - log q) with q = pw / slope: one exp and no log per sample and time
            weight = jnp.exp(-s_fn(value[..., None], times) - shift) * (slope * ip[:, None])
            if pad:
                weight = jnp.where(ip[:, None] > 0, weight, 0.0)
            return _block_sums(value, weight, ref, fns, careful)

        s_, ws, bad = jax.lax.map(one, (j, s, inv_pw))
        s_, ws = s_.sum(0), ws.sum(0)
        finite = jnp.all(jnp.isfinite(s_)) & jnp.all(jnp.isfinite(ws))
        return s_, ws, bad.sum(0)[-1], finite

    equation.cache[key] = reduce_
    return reduce_
