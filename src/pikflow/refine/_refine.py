r"""Residual-driven refinement of a flow, layer by layer (paper sec. IV A 2, eqs. 26-29, App. B).

Every layer's kernel equation is linear and independent of the other layers, so an
approximate kernel :math:`v^{(0)}_t` is corrected by solving (eq. 28)

.. math::  \mathcal L_\chi\, \Delta v^{(0)}_t = r^{(0)}_\chi

for :math:`\Delta v` in compactly supported Wendland functions (eqs. B2-B4) and adding it,
:math:`v^{(1)} = v^{(0)} + \Delta v^{(0)}` (eq. 29). :func:`refine_kernels` repeats
residual → centres → correction until every layer's residual is under a tolerance or the
rounds run out, never accepting a round that makes a layer worse; it is the 0-D refiner of
:func:`pikflow.refine.refine`. :func:`refine_online`
automates the paper's "(a) global solution → (b) detect OOD regions during sampling →
(c) local correction" workflow.
"""

from __future__ import annotations

import dataclasses
import time as _time

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np

from .._errors import PikflowError, SamplingError, SolveError
from ..flow import Flow
from ._records import LayerRound, Refinement, RefinementRound
from ._residual import (
    LayerResidual,
    kernel_residual,
    layer_points,
    pad_points,
    summarise,
)
from ._wendland import CorrectedKernel, correction_columns, empty_correction, trim


# ---------------------------------------------------------------------------------- centres
def select_centres(
    points,
    residual,
    n_centres: int,
    *,
    antisymmetric: bool,
    overlap: float = 4.0,
    relative: float = 0.1,
    columns=None,
    candidates=None,
) -> tuple[np.ndarray, float]:
    r"""Greedy centres where :math:`|r|` is largest, and the Wendland width from their spacing.

    The region to correct is the set of points with :math:`|r| \ge` ``relative``
    :math:`\cdot\max|r|`. Its diameter :math:`D` (for :math:`Z_2` symmetric corrections
    measured modulo :math:`\phi \to -\phi`) sets the spacing :math:`h = D / M^{1/d}` for
    :math:`M` = ``n_centres`` in :math:`d` dimensions, and the width
    :math:`\sigma = ` ``overlap`` :math:`\cdot h` (neighbouring supports overlap; the
    paper's 11 centres had :math:`\sigma \approx 0.41`, App. B).

    Centres are then taken one at a time at the point of largest residual, skipping points
    within :math:`h` of a centre already chosen (or of its mirror image). With
    ``columns`` (a function: centre -> its columns of eq. 28 at ``points``, shape
    ``(m, n_fields)``) the selection is the adaptive greedy of Schaback and Wendland (the
    paper's ref. 57): after each new centre the least-squares correction with the centres
    so far is subtracted, and the next centre goes where the *remaining* residual is
    largest. Without it, the centres follow the initial :math:`|r|`. ``candidates`` (a
    boolean mask over ``points``) restricts where centres may go (``refine(centres_at="missed")``:
    the pulled-back reference samples the flow misses); the width still comes from the
    residual's region over all points.

    Returns
    -------
    centres
        Shape ``(k, n_fields)`` with ``1 <= k <= n_centres``.
    sigma
        The common width.
    """
    pts = np.asarray(points, dtype=float)
    r0 = np.nan_to_num(np.asarray(residual, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    a = np.abs(r0)
    if not np.any(a > 0):
        raise SolveError("the residual vanishes at every point: there is nothing to correct")
    d = pts.shape[1]

    def dist(x, c):
        dm = np.linalg.norm(x - c, axis=-1)
        return np.minimum(dm, np.linalg.norm(x + c, axis=-1)) if antisymmetric else dm

    cand = pts[a >= relative * a.max()]
    # diameter of the region by a double sweep (exact in one dimension)
    far = cand[np.argmax(dist(cand, pts[np.argmax(a)]))]
    diameter = float(np.max(dist(cand, far)))
    scale = float(np.max(np.linalg.norm(pts, axis=1))) or 1.0
    h = max(diameter / n_centres ** (1.0 / d), 0.01 * scale)
    sigma = float(overlap * h)
    allowed = np.ones(len(pts), bool) if candidates is None else np.asarray(candidates, bool).copy()
    if antisymmetric:  # W(|phi - c|) - W(|phi + c|) nearly vanishes for c near 0
        allowed &= 2 * np.linalg.norm(pts, axis=1) >= 0.5 * h
    chosen: list[np.ndarray] = []
    basis: list[np.ndarray] = []  # orthonormal basis of the columns so far (Gram-Schmidt)
    r = r0.copy()
    while len(chosen) < n_centres and np.any(allowed):
        j = int(np.argmax(np.where(allowed, np.abs(r), -1.0)))
        c = pts[j]
        chosen.append(c)
        allowed &= dist(pts, c) >= h
        if columns is None:
            continue
        for col in np.asarray(columns(c, sigma)).T:  # the least-squares residual = r0 minus its projection
            norm0 = np.linalg.norm(col)
            for _ in range(2):  # twice is enough (Kahan-Parlett)
                for q in basis:
                    col = col - q * (q @ col)
            if np.linalg.norm(col) > 1e-10 * norm0:
                q = col / np.linalg.norm(col)
                basis.append(q)
                r = r - q * (q @ r)
    if not chosen:
        chosen = [pts[np.argmax(a)]]
    return np.stack(chosen), sigma


# ---------------------------------------------------------------------------------- one layer
def row_weights(flow, tails, t: float, n_samples: int) -> np.ndarray:
    r"""Weights of the collocation rows: 1 for samples, :math:`1/(1 + |\partial\hat S_t|)` for tail points.

    In the tails :math:`r_\chi \approx -\Delta v\cdot\partial\hat S_t` grows with the
    action's gradient, though almost no sample goes there; the weight turns those rows into
    a condition on the kernel error itself, so that they keep the correction bounded
    without dominating the fit where the samples are.
    """
    if not len(tails):
        return np.ones(n_samples)
    g = np.asarray(_gradient(flow.equation, jnp.asarray(tails), jnp.asarray(float(t))))
    return np.concatenate([np.ones(n_samples), 1.0 / (1.0 + np.linalg.norm(g, axis=1))])


@eqx.filter_jit
def _gradient(equation, points, t):
    return jax.vmap(equation.gradient_fn, in_axes=(0, None))(points, t)


@eqx.filter_jit
def _columns(equation, points, t, centres, sigma, rows, antisymmetric, ell):
    return rows[:, None] * correction_columns(equation, points, t, centres, sigma, antisymmetric=antisymmetric, ell=ell)


@eqx.filter_jit
def _solve(equation, points, t, centres, sigma, rows, r, antisymmetric, ell):
    A = rows[:, None] * correction_columns(equation, points, t, centres, sigma, antisymmetric=antisymmetric, ell=ell)
    norms = jnp.linalg.norm(A, axis=0)
    scale = jnp.where(norms > 0, norms, 1.0)
    sol = lx.linear_solve(lx.MatrixLinearOperator(A / scale), r, solver=lx.QR(), throw=False)
    ok = (sol.result == lx.RESULTS.successful) & jnp.all(jnp.isfinite(sol.value))
    return jnp.where(ok, sol.value / scale, 0.0), ok


def correct_layer(
    flow, kernel: CorrectedKernel, t: float, samples, tails, slot: int, n_centres: int, candidates=None, **select
):
    r"""One correction of one layer (eqs. 28-29): centres, collocation solve, corrected kernel.

    Parameters
    ----------
    flow
        The flow (for its equation).
    kernel
        The layer's :class:`CorrectedKernel` with free slots from ``slot`` on.
    t
        The layer time.
    samples, tails
        The collocation points: the layer's samples and tail points (all rows of eq. 28).
    slot
        First free centre slot.
    n_centres
        Most centres to add.
    candidates
        Optional boolean mask over ``samples`` then ``tails``: where centres may go.
    **select
        Passed to :func:`select_centres` (``overlap``, ``relative``).

    Returns
    -------
    (new_kernel, n_added, sigma, residual_before, residual_after) on ``samples`` then ``tails``.
    """
    pts = np.concatenate([samples, tails]) if len(tails) else np.asarray(samples)
    r = kernel_residual(flow, kernel, pts, t)
    free = kernel.n_centres - slot
    if free <= 0:
        raise SolveError(f"no free correction slots left in the layer at t = {t:.4g}")
    eq, tt = flow.equation, jnp.asarray(float(t))
    anti, ell = kernel.antisymmetric, kernel.smoothness
    m = len(pts)
    padded = pad_points(pts, eq.chi)  # zero rows: few compiled shapes
    jpts = jnp.asarray(padded)
    rows_np = np.zeros(len(padded))
    rows_np[:m] = row_weights(flow, tails, t, len(samples))
    rows = jnp.asarray(rows_np)
    wr = np.zeros(len(padded))
    wr[:m] = rows_np[:m] * np.nan_to_num(r)

    def columns(c, sigma):
        return _columns(eq, jpts, tt, jnp.asarray(c)[None, :], jnp.asarray([sigma]), rows, anti, ell)

    if candidates is not None:
        select["candidates"] = np.concatenate([np.asarray(candidates, bool), np.zeros(len(padded) - m, bool)])
    centres, sigma = select_centres(padded, wr, min(n_centres, free), antisymmetric=anti, columns=columns, **select)
    k, n = centres.shape
    sig = np.full(k, sigma)
    w, ok = _solve(eq, jpts, tt, jnp.asarray(centres), jnp.asarray(sig), rows, jnp.asarray(wr), anti, ell)
    if not bool(ok):
        return kernel, 0, sigma, r, r
    new = eqx.tree_at(
        lambda m: (m.centres, m.weights, m.sigma),
        kernel,
        (
            kernel.centres.at[slot : slot + k].set(centres),
            kernel.weights.at[slot : slot + k].set(np.asarray(w).reshape(k, n)),
            kernel.sigma.at[slot : slot + k].set(sig),
        ),
    )
    return new, k, sigma, r, kernel_residual(flow, new, pts, t)


def _not_worse(after: LayerResidual, before: LayerResidual) -> bool:
    return after.rms <= before.rms and after.max <= before.max


def _set_layer(stacked: CorrectedKernel, index: int, layer: CorrectedKernel) -> CorrectedKernel:
    return jax.tree.map(lambda s, x: s.at[index].set(x), stacked, layer)


def with_kernels(flow: Flow, kernels, reports=None, settings=None) -> Flow:
    """A copy of ``flow`` with other (stacked) kernels."""
    return Flow(
        path=flow.path,
        equation=flow.equation,
        base=flow.base,
        kernels=kernels,
        steps=flow.steps,
        reports=flow.reports if reports is None else reports,
        settings=flow.settings if settings is None else settings,
        solve_seconds=flow.solve_seconds,
    )


def _ess(flow: Flow, n: int, seed: int) -> float | None:
    if n <= 0:
        return None
    return float(flow.sample(n, seed=seed, method="rk4", keep_layers=False, progress=False).ess)


def _check(tol, max_rounds, centres, n_points):
    if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and np.isfinite(tol) and tol > 0):
        raise PikflowError(f"refine: tol must be a positive number (an absolute residual), got {tol!r}")
    for name, v, lo in (("max_rounds", max_rounds, 0), ("centres", centres, 1), ("n_points", n_points, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise PikflowError(f"refine: {name} must be an integer >= {lo}, got {v!r}")


# ---------------------------------------------------------------------------------- refine
def _layer_points(flow, samples, seed, n_points, n_ess, extra_points, centres_at, n_missed):
    """Per layer the residual points ``(samples, tail)`` (plus ``extra_points``, plus the missed points of
    ``centres_at="missed"`` with their candidate masks) and the sample size drawn for them and the ESS."""
    # one sample size for the collocation draw and the ESS draws: one compiled sampler per kernel type
    n_draw = max(n_points, n_ess)
    if samples is None:
        samples = flow.sample(n_draw, seed=seed, method="rk4", progress=False)
    elif not samples.layers_kept:
        raise SamplingError("refine needs samples with every step kept (keep_layers=True)")
    pts = [(s[:n_points], tl) for s, tl in layer_points(flow, samples=samples, seed=seed)]
    if extra_points:
        pts = [
            (np.concatenate([s, np.asarray(extra_points[i], float).reshape(-1, flow.n_fields)]), tl)
            if i in extra_points and len(extra_points[i])
            else (s, tl)
            for i, (s, tl) in enumerate(pts)
        ]
    if centres_at not in ("residual", "missed"):
        raise PikflowError(f"refine: centres_at must be 'residual' or 'missed', got {centres_at!r}")
    masks = None
    if centres_at == "missed":
        from ._missed import missed_points

        missed = missed_points(flow, n_missed=n_missed, seed=seed)
        masks = [
            np.concatenate([np.zeros(len(s), bool), np.ones(len(m), bool), np.zeros(len(tl), bool)])
            for (s, tl), m in zip(pts, missed, strict=True)
        ]
        pts = [(np.concatenate([s, m]), tl) for (s, tl), m in zip(pts, missed, strict=True)]
    return pts, masks, n_draw


def _refined_flow(flow, kernels, current, initial, settings, n_rounds):
    """The flow with the accepted corrections (trimmed), its layer reports and refinement history updated."""
    kernels = trim(kernels)
    reports = [
        dataclasses.replace(
            rep,
            residual_rms=cur.rms,
            residual_max=max(cur.max, cur.tail_max or 0.0),
            worst_phi=cur.worst_phi,
            n_points=cur.n_points,
        )
        if cur is not ini
        else rep
        for rep, cur, ini in zip(flow.reports, current, initial, strict=True)
    ]
    history = list(flow.settings.get("refinement", []))
    history.append({**settings, "rounds": n_rounds})
    return with_kernels(flow, kernels, reports, {**flow.settings, "refinement": history})


def refine_kernels(
    flow: Flow,
    *,
    tol: float = 1e-2,
    max_rounds: int = 5,
    centres: int = 16,
    n_points: int = 2000,
    n_ess: int = 20000,
    overlap: float = 4.0,
    layers=None,
    extra_points: dict | None = None,
    samples=None,
    seed: int = 0,
    progress: bool = True,
    centres_at: str = "residual",
    n_missed: int = 64,
) -> Refinement:
    r"""Refine a 0-D flow's kernels until every layer's residual (eq. 27) is under ``tol`` (``pikflow.refine``).

    Each round, for every layer whose largest :math:`|r_\chi|` exceeds ``tol``: choose up
    to ``centres`` Wendland centres greedily where :math:`|r_\chi|` is largest
    (:func:`select_centres`), solve :math:`\mathcal L_\chi\Delta v = r_\chi` (eq. 28) on
    the layer's points by least squares (Lineax QR, columns scaled to unit norm), and add
    the correction (eq. 29). A correction that would raise the layer's RMS (over its
    samples) or maximal residual is **rejected** and reported; the layer retries the
    next round with half the width, and is marked ``"stalled"`` after three rejections
    in a row. Hence no layer ever gets worse.

    Parameters
    ----------
    flow
        A solved (or already refined) flow.
    tol
        Absolute tolerance on each layer's largest residual :math:`|r_\chi|` over its
        samples and tail points (a direct solve of the 0-D path reaches about 1e-4).
    max_rounds
        Most rounds.
    centres
        Most new Wendland centres per layer and round (the paper used 11 for one local
        defect; 16 with ``overlap = 4`` also repairs an error spread over the whole layer).
    n_points
        Flow samples per layer used as collocation points (drawn once, seed ``seed``),
        plus the tail points of the flow's collocation settings.
    n_ess
        Samples for the ESS/N before and after every round (0: skip; seed ``seed + 1``).
        The collocation draw has the same size (its first ``n_points`` are used), so
        that one compiled sampler serves both.
    overlap
        Width :math:`\sigma` in units of the centre spacing (:func:`select_centres`).
    layers
        Indices of the layers to refine (default: all).
    extra_points
        ``{layer index: array (k, n_fields)}``: more collocation points for some layers
        (e.g. out-of-domain samples found while sampling, see :func:`refine_online`).
    samples
        Samples of ``flow`` with every step kept to take the collocation points from (the
        first ``n_points``) instead of drawing them.
    seed
        Seed of the collocation samples and of the ESS samples.
    progress
        Show a progress bar over rounds.
    centres_at
        ``"residual"`` (default): centres where :math:`|r_\chi|` is largest among all the
        layer's points. ``"missed"`` (one field component): the ``n_missed`` exact samples
        of the target with the largest weights :math:`w = p/q` (where the flow misses the
        target, :func:`~pikflow.refine.missed_points`), pulled back to every layer, are
        added to the collocation points and the centres are placed only among them.
    n_missed
        Reference samples kept by ``centres_at="missed"``.

    Returns
    -------
    Refinement
        The refined flow and the report of every round.
    """
    from ..progress import progress_bar

    if not isinstance(flow, Flow):
        raise PikflowError(f"refine needs a pikflow.Flow, got {type(flow).__name__}")
    _check(tol, max_rounds, centres, n_points)
    if not (np.isfinite(overlap) and overlap > 0):
        raise PikflowError(f"refine: overlap must be positive, got {overlap!r}")
    n_layers = len(flow.times)
    todo = list(range(n_layers)) if layers is None else sorted({int(i) % n_layers for i in layers})
    pts, masks, n_draw = _layer_points(flow, samples, seed, n_points, n_ess, extra_points, centres_at, n_missed)
    antisym = bool(flow.equation.symmetric)
    old = flow.kernels.n_centres if isinstance(flow.kernels, CorrectedKernel) else 0
    kernels = empty_correction(flow.kernels, n_layers, flow.n_fields, max_rounds * centres, antisymmetric=antisym)
    used = np.full(n_layers, old)
    widths = np.full(n_layers, float(overlap))
    rejections = np.zeros(n_layers, int)

    def summary(i, kernel):
        s, tl = pts[i]
        r = kernel_residual(flow, kernel, np.concatenate([s, tl]), flow.times[i])
        return summarise(i, flow.times[i], s, r[: len(s)], r[len(s) :])

    current = [summary(i, flow.kernels.layer(i)) for i in range(n_layers)]
    initial = list(current)
    ess = _ess(flow, n_ess and n_draw, seed + 1)
    rounds: list[RefinementRound] = []
    refined = flow
    bar = progress_bar(total=max_rounds, desc="refining", disable=not progress)
    for rnd in range(max_rounds):
        start = _time.perf_counter()
        results: list[LayerRound] = []
        changed = False
        for i in range(n_layers):
            t, before = float(flow.times[i]), current[i]
            if i not in todo:
                results.append(LayerRound(i, t, "skipped", before))
                continue
            if before.max <= tol:
                results.append(LayerRound(i, t, "converged", before))
                continue
            if rejections[i] >= 3:
                results.append(LayerRound(i, t, "stalled", before))
                continue
            layer = kernels.layer(i)
            s, tl = pts[i]
            extra = {} if masks is None else {"candidates": masks[i]}
            new, k, sigma, _, r_after = correct_layer(
                flow, layer, t, s, tl, int(used[i]), centres, overlap=widths[i], **extra
            )
            after = summarise(i, t, s, r_after[: len(s)], r_after[len(s) :])
            if k and _not_worse(after, before):
                kernels = _set_layer(kernels, i, new)
                used[i] += k
                current[i] = after
                rejections[i] = 0
                changed = True
                results.append(LayerRound(i, t, "accepted", before, after, k, sigma))
            else:
                rejections[i] += 1
                widths[i] *= 0.5
                results.append(LayerRound(i, t, "rejected", before, after, k, sigma))
        ess_before = ess
        if changed:
            refined = with_kernels(flow, kernels)
            ess = _ess(refined, n_ess and n_draw, seed + 1)
        rounds.append(RefinementRound(rnd + 1, results, ess_before, ess, _time.perf_counter() - start))
        bar.update(1)
        bar.set_postfix(max_residual=f"{max(c.max for c in current):.1e}")
        if all(c.max <= tol or i not in todo or rejections[i] >= 3 for i, c in enumerate(current)):
            break
    bar.close()
    settings = dict(
        tol=tol, max_rounds=max_rounds, centres=centres, n_points=n_points, n_ess=n_ess, overlap=overlap, seed=seed
    )
    if centres_at != "residual":
        settings.update(centres_at=centres_at, n_missed=n_missed)
    if int(used.max()) > 0 and refined is not flow:
        refined = _refined_flow(flow, kernels, current, initial, settings, len(rounds))
    return Refinement(flow=refined, rounds=rounds, initial=initial, final=current, tol=float(tol), settings=settings)
