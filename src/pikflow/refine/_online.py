r"""Online refinement (paper sec. IV A 2): global solution, out-of-distribution regions, local corrections."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from .._errors import PikflowError, SamplingError
from ..equations import LinearKernel
from ..flow import Flow
from ._records import Refinement
from ._refine import _check, refine_kernels, with_kernels
from ._residual import (
    layer_points,
    layer_residual,
    stage_points,
)


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
    :func:`refine_kernels` (``max_rounds``, ``centres``, ``overlap``, ``n_points`` as there);
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
    ref = refine_kernels(
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
    and testing :func:`refine_kernels`.
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
        x, tt = jnp.asarray(np.concatenate(pts[i])), jnp.asarray(float(t))
        scale = flow.kernels.scale
        A, b = flow.equation.system(x, tt) if scale is None else flow.equation.scaled_system(x, tt, scale[i])
        A = np.asarray(A)
        cols = list(range(n_basis)) + ([A.shape[1] - 1] if form == "constant" else [])
        c, *_ = np.linalg.lstsq(A[:, cols], np.asarray(b), rcond=None)
        coeffs[i] = 0.0
        coeffs[i, :n_basis] = c[:n_basis]
    kernels = LinearKernel(jnp.asarray(coeffs), flow.kernels.values, flow.kernels.divergences, flow.kernels.scale)
    settings = {**flow.settings, "underresolved": {"t_from": t_from, "n_basis": n_basis, "n_points": n_points}}
    return with_kernels(flow, kernels, settings=settings)
