r"""Residual-driven refinement of a flow, layer by layer (paper sec. IV A 2, eqs. 26-29, App. B).

Every layer's kernel equation is linear and independent of the other layers, so an
approximate kernel :math:`v^{(0)}_t` is corrected by solving (eq. 28)

.. math::  \mathcal L_\chi\, \Delta v^{(0)}_t = r^{(0)}_\chi

for :math:`\Delta v` in compactly supported Wendland functions (eqs. B2-B4) and adding it,
:math:`v^{(1)} = v^{(0)} + \Delta v^{(0)}` (eq. 29). :func:`refine` repeats
residual → centres → correction until every layer's residual is under a tolerance or the
rounds run out, never accepting a round that makes a layer worse. :func:`refine_online`
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
from ..flow._kernel import LinearKernel
from ._residual import (
    LayerResidual,
    kernel_residual,
    layer_points,
    layer_residual,
    pad_points,
    stage_points,
    summarise,
)
from ._wendland import CorrectedKernel, correction_columns, empty_correction, trim

#: statuses of a layer in one round
STATUSES = ("accepted", "rejected", "converged", "stalled", "skipped")


# ---------------------------------------------------------------------------------- reports
@dataclasses.dataclass(frozen=True)
class LayerRound:
    """What one round did to one layer.

    ``status`` is ``"accepted"`` (correction kept), ``"rejected"`` (it would have raised
    the residual: discarded), ``"converged"`` (already under tolerance), ``"stalled"``
    (given up after repeated rejections) or ``"skipped"`` (not selected for refinement).
    ``before`` and ``after`` summarise the residual on the same points; ``after`` is the
    residual of the correction that was tried (also when rejected).
    """

    index: int
    t: float
    status: str
    before: LayerResidual
    after: LayerResidual | None = None
    n_centres: int = 0
    sigma: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict of this report."""
        return {
            "index": self.index,
            "t": self.t,
            "status": self.status,
            "before": _brief(self.before),
            "after": None if self.after is None else _brief(self.after),
            "n_centres": self.n_centres,
            "sigma": self.sigma,
        }


def _brief(r: LayerResidual) -> dict:
    return {"rms": r.rms, "max": r.max, "tail_max": r.tail_max, "worst_phi": list(r.worst_phi)}


@dataclasses.dataclass(frozen=True)
class RefinementRound:
    """One round over all layers: per-layer results and the ESS/N before and after."""

    round: int
    layers: list[LayerRound]
    ess_before: float | None
    ess_after: float | None
    seconds: float

    def count(self, status: str) -> int:
        """Number of layers with this status."""
        return sum(lr.status == status for lr in self.layers)

    @property
    def max_before(self) -> float:
        """Largest layer residual (max over points) before the round."""
        return max(lr.before.max for lr in self.layers)

    @property
    def max_after(self) -> float:
        """Largest layer residual after the round (rejected corrections do not count)."""
        return max(lr.after.max if lr.status == "accepted" else lr.before.max for lr in self.layers)

    def to_dict(self) -> dict:
        """JSON-ready dict of this report."""
        return {
            "round": self.round,
            "ess_before": self.ess_before,
            "ess_after": self.ess_after,
            "max_residual_before": self.max_before,
            "max_residual_after": self.max_after,
            **{f"n_{s}": self.count(s) for s in STATUSES},
            "seconds": self.seconds,
            "layers": [lr.to_dict() for lr in self.layers if lr.status != "skipped"],
        }


@dataclasses.dataclass
class Refinement:
    """The result of :func:`refine`: the refined flow and every round's report.

    Attributes
    ----------
    flow
        The refined :class:`~pikflow.Flow` (kernels :class:`CorrectedKernel`; the input
        flow if nothing was accepted).
    rounds
        One :class:`RefinementRound` per round run.
    initial, final
        Per-layer residual summaries (:class:`LayerResidual`) before the first and after
        the last round, on the same points.
    tol
        The tolerance on each layer's maximal residual.
    """

    flow: Flow
    rounds: list[RefinementRound]
    initial: list[LayerResidual]
    final: list[LayerResidual]
    tol: float
    settings: dict

    @property
    def converged(self) -> bool:
        """Whether every refined layer ended under the tolerance."""
        return all(r.max <= self.tol for r in self.final)

    @property
    def ess_before(self) -> float | None:
        """ESS/N before the first round (None if not measured)."""
        return self.rounds[0].ess_before if self.rounds else None

    @property
    def ess_after(self) -> float | None:
        """ESS/N after the last round (None if not measured)."""
        return self.rounds[-1].ess_after if self.rounds else None

    def to_dict(self) -> dict:
        """JSON-ready summary with every round's residuals and ESS (the ``refinement`` entry of results.json)."""
        return {
            "tol": self.tol,
            "settings": self.settings,
            "converged": self.converged,
            "ess_before": self.ess_before,
            "ess_after": self.ess_after,
            "max_residual_before": max(r.max for r in self.initial),
            "max_residual_after": max(r.max for r in self.final),
            "rounds": [r.to_dict() for r in self.rounds],
            "initial": [r.to_dict() for r in self.initial],
            "final": [r.to_dict() for r in self.final],
        }

    def __repr__(self) -> str:
        acc = sum(r.count("accepted") for r in self.rounds)
        rej = sum(r.count("rejected") for r in self.rounds)
        return (
            f"Refinement(rounds={len(self.rounds)}, accepted={acc}, rejected={rej}, "
            f"max residual {max(r.max for r in self.initial):.2e} -> {max(r.max for r in self.final):.2e}, "
            f"converged={self.converged})"
        )


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
    largest. Without it, the centres follow the initial :math:`|r|`.

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
    allowed = np.ones(len(pts), bool)
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


def correct_layer(flow, kernel: CorrectedKernel, t: float, samples, tails, slot: int, n_centres: int, **select):
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
def refine(
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
) -> Refinement:
    r"""Refine a flow's kernels until every layer's residual (eq. 27) is under ``tol``.

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
            new, k, sigma, _, r_after = correct_layer(flow, layer, t, s, tl, int(used[i]), centres, overlap=widths[i])
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
    if int(used.max()) > 0 and refined is not flow:
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
        history.append({**settings, "rounds": len(rounds)})
        refined = with_kernels(flow, kernels, reports, {**flow.settings, "refinement": history})
    return Refinement(flow=refined, rounds=rounds, initial=initial, final=current, tol=float(tol), settings=settings)


# ---------------------------------------------------------------------------------- online
@dataclasses.dataclass
class OnlineRefinement:
    """The result of :func:`refine_online`.

    Attributes
    ----------
    flow
        The refined flow.
    samples
        Samples of the refined flow (same seed as the first sampling).
    n_samples
        Samples drawn.
    affected_before, affected_after
        Samples whose path crossed a region with :math:`|r_\\chi| >` ``tol`` at some layer,
        before and after the refinement.
    layers
        Indices of the layers where samples were flagged (those refined).
    ess_before, ess_after
        ESS/N of the samples before and after.
    refinement
        The :class:`Refinement` of the affected layers (every round's report).
    """

    flow: Flow
    samples: object
    n_samples: int
    affected_before: int
    affected_after: int
    layers: list[int]
    ess_before: float
    ess_after: float
    refinement: Refinement | None

    def to_dict(self) -> dict:
        """JSON-ready dict of this report."""
        return {
            "n_samples": self.n_samples,
            "affected_before": self.affected_before,
            "affected_after": self.affected_after,
            "layers": self.layers,
            "ess_before": self.ess_before,
            "ess_after": self.ess_after,
            "refinement": None if self.refinement is None else self.refinement.to_dict(),
        }


def detect_ood(flow: Flow, samples, tol: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Flag samples whose path crosses a region with :math:`|r_\chi| >` ``tol`` (out of the solve's domain).

    Returns ``(flags, residuals)``, both of shape ``(n_layers, n)``: per layer, whether
    (and how much) the sample's position at that layer violates the kernel equation.
    """
    if not samples.layers_kept:
        raise SamplingError("OOD detection follows each sample's path: sample with keep_layers=True")
    stages = stage_points(flow, samples.phi)
    res = np.stack([np.abs(layer_residual(flow, p, i)) for i, p in enumerate(stages)])
    finite = np.isfinite(samples.log_w[-1])[None, :]
    flags = ((res > tol) | ~np.isfinite(res)) & finite
    return flags, res


def refine_online(
    flow: Flow,
    n: int,
    *,
    tol: float = 1e-2,
    seed: int = 0,
    max_rounds: int = 3,
    centres: int = 16,
    overlap: float = 4.0,
    n_points: int = 2000,
    max_extra: int = 2000,
    sample_options: dict | None = None,
    progress: bool = True,
) -> OnlineRefinement:
    r"""Sample, detect out-of-domain samples, refine the affected layers, resample.

    The paper's workflow (sec. IV A 2), automated: (a) the global solution ``flow``;
    (b) ``n`` samples are drawn and every sample's path is checked layer by layer
    (:func:`detect_ood`): positions where :math:`|r_\chi| >` ``tol`` are out of the domain
    the kernel was solved on; (c) those positions (up to ``max_extra`` per layer, the
    worst first) join the collocation points of the affected layers, which are refined by
    :func:`refine` (``max_rounds``, ``centres``, ``overlap``, ``n_points`` as there);
    finally the same ``n`` samples (same seed) are drawn again.

    Parameters
    ----------
    sample_options
        More keyword arguments of :meth:`pikflow.Flow.sample` (``method``, ``logdet``,
        ``batch_size``, ...); every step is always kept.

    Returns
    -------
    OnlineRefinement
        The refined flow, its samples, how many samples were affected and the ESS/N
        before and after.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise SamplingError(f"refine_online: n must be a positive integer, got {n!r}")
    _check(tol, max_rounds, centres, n_points)
    kw = {**(sample_options or {}), "seed": seed, "keep_layers": True, "progress": progress}
    samples = flow.sample(n, **kw)
    flags, res = detect_ood(flow, samples, tol)
    affected = int(np.sum(np.any(flags, axis=0)))
    layers = [int(i) for i in np.flatnonzero(np.any(flags, axis=1))]
    if not layers:
        return OnlineRefinement(flow, samples, n, 0, 0, [], samples.ess, samples.ess, None)
    stages = stage_points(flow, samples.phi)
    extra = {}
    for i in layers:
        idx = np.flatnonzero(flags[i])
        idx = idx[np.argsort(-res[i, idx], kind="stable")][:max_extra]
        extra[i] = stages[i][idx]
    ref = refine(
        flow,
        tol=tol,
        max_rounds=max_rounds,
        centres=centres,
        overlap=overlap,
        n_points=n_points,
        n_ess=0,
        layers=layers,
        extra_points=extra,
        samples=samples,
        seed=seed,
        progress=progress,
    )
    after = ref.flow.sample(n, **kw)
    flags_after, _ = detect_ood(ref.flow, after, tol)
    return OnlineRefinement(
        flow=ref.flow,
        samples=after,
        n_samples=n,
        affected_before=affected,
        affected_after=int(np.sum(np.any(flags_after, axis=0))),
        layers=layers,
        ess_before=samples.ess,
        ess_after=after.ess,
        refinement=ref,
    )


# ---------------------------------------------------------------------------------- scenario
def underresolve(flow: Flow, *, t_from: float = 0.6, n_basis: int = 3, n_points: int = 20000, seed: int = 0) -> Flow:
    r"""The paper's Fig. 6 scenario: refit the last layers with too few basis functions.

    Every layer with :math:`t \ge` ``t_from`` is solved again (eq. 19, least squares) with
    only the first ``n_basis`` functions of the flow's basis, on ``n_points`` samples of
    ``flow`` at that layer; the other coefficients are set to zero. The result is a flow
    with deliberately under-resolved kernels at the end of the path, for demonstrating
    and testing :func:`refine`.
    """
    if not isinstance(flow.kernels, LinearKernel):
        raise PikflowError("underresolve needs a flow of solved linear kernels (from pikflow.solve)")
    n_total = flow.equation.n_basis
    if isinstance(n_basis, bool) or not isinstance(n_basis, (int, np.integer)) or not 1 <= n_basis <= n_total:
        raise PikflowError(f"underresolve: n_basis must be an integer in [1, {n_total}], got {n_basis!r}")
    pts = layer_points(flow, n_points, seed=seed)
    coeffs = np.array(flow.kernels.coeffs)
    form = flow.equation.form
    for i, t in enumerate(flow.times):
        if t < t_from - 1e-12:
            continue
        A, b = flow.equation.system(jnp.asarray(np.concatenate(pts[i])), jnp.asarray(float(t)))
        A = np.asarray(A)
        cols = list(range(n_basis)) + ([A.shape[1] - 1] if form == "constant" else [])
        c, *_ = np.linalg.lstsq(A[:, cols], np.asarray(b), rcond=None)
        coeffs[i] = 0.0
        coeffs[i, :n_basis] = c[:n_basis]
    kernels = LinearKernel(jnp.asarray(coeffs), flow.kernels.values, flow.kernels.divergences)
    settings = {**flow.settings, "underresolved": {"t_from": t_from, "n_basis": n_basis, "n_points": n_points}}
    return with_kernels(flow, kernels, settings=settings)
