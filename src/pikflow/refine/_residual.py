r"""Residuals of the kernel equation (eq. 27) for any kernel, anywhere, and per-layer summaries.

For a kernel :math:`v_t` the residual with reference configuration :math:`\chi` is

.. math::
    r_\chi(\phi) = \frac{d\hat S_t}{dt}(\phi) - \frac{d\hat S_t}{dt}(\chi) - \mathcal L_\chi v_t(\phi),

(eqs. 26-27); it vanishes for the exact kernel. It is computable at every point, for
direct, trained or corrected kernels alike. A layer is judged where its probability is:
on the flow's own samples at that layer's time (for the RK4 half-step layers, the step
samples advanced by the Euler half step through the previous layer, as in the solve),
plus points covering the tails (as in :class:`~pikflow.solvers.Collocation`).
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import SamplingError
from ..solvers._collocation import tail_points, tail_radius


@dataclasses.dataclass(frozen=True)
class LayerResidual:
    r"""Summary of one layer's residual :math:`r_\chi` (eq. 27).

    Attributes
    ----------
    index, t
        Layer index and time.
    rms
        Root mean square over the layer's samples (where its probability is).
    max
        Largest :math:`|r_\chi|` over the samples: what a tolerance is applied to.
    tail_max
        Largest :math:`|r_\chi|` over the tail points (``None`` without them): the range a
        rare sample could reach, where :math:`|\partial\hat S_t|` and so the residual of a
        small kernel error are large.
    worst_phi
        The sample with the largest :math:`|r_\chi|`.
    worst_region
        ``(low, high)`` per field component: the bounding box of the samples where
        :math:`|r_\chi| \ge` half the maximum (the region a correction targets).
    n_points
        Number of samples the summary is over.
    """

    index: int
    t: float
    rms: float
    max: float
    tail_max: float | None
    worst_phi: tuple[float, ...]
    worst_region: tuple[tuple[float, float], ...]
    n_points: int

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "index": self.index,
            "t": self.t,
            "rms": self.rms,
            "max": self.max,
            "tail_max": self.tail_max,
            "worst_phi": list(self.worst_phi),
            "worst_region": [list(b) for b in self.worst_region],
            "n_points": self.n_points,
        }


@eqx.filter_jit
def _residual(equation, kernel, points, t):
    return equation.residual(kernel, kernel.divergence, points, t)


def kernel_residual(flow, kernel, points, t: float) -> np.ndarray:
    r"""The residual :math:`r_\chi` (eq. 27) of any single-layer ``kernel`` of ``flow``'s equation at ``points``.

    Parameters
    ----------
    flow
        The flow whose path (and so equation) the kernel belongs to.
    kernel
        A single-layer kernel (e.g. ``flow.kernels.layer(i)`` or a corrected one).
    points
        Configurations, shape ``(m, n_fields)``.
    t
        The layer time.
    """
    pts = np.asarray(points, dtype=float).reshape(-1, flow.n_fields)
    padded = pad_points(pts, flow.equation.chi)
    return np.asarray(_residual(flow.equation, kernel, jnp.asarray(padded), jnp.asarray(float(t))))[: len(pts)]


def pad_points(points: np.ndarray, chi) -> np.ndarray:
    r"""``points`` padded with copies of :math:`\chi` to a multiple of 512 rows (few compiled shapes).

    At :math:`\chi` the residual of eq. 27 and every column of eq. 28 vanish identically,
    so padded rows change no least-squares solution.
    """
    n = len(points)
    m = max(512, -(-n // 512) * 512)
    return np.concatenate([points, np.broadcast_to(np.asarray(chi, float), (m - n, points.shape[1]))])


def layer_residual(flow, points, index: int) -> np.ndarray:
    """The residual (eq. 27) of layer ``index`` of ``flow`` at ``points`` of shape ``(m, n_fields)``."""
    return kernel_residual(flow, flow.kernels.layer(index), points, flow.times[index])


def stage_points(flow, step_phi) -> list[np.ndarray]:
    r"""Per-layer configurations from per-step samples ``step_phi`` of shape ``(steps + 1, n, n_fields)``.

    Layer ``2i`` gets the step-``i`` samples; the half-step layer ``2i + 1`` gets them
    advanced by :math:`\tfrac{\Delta t}{2} v_{t_i}` (the Euler half step of the solve).
    """
    step_phi = np.asarray(step_phi)
    if step_phi.ndim != 3 or step_phi.shape[0] != flow.steps + 1:
        raise SamplingError(f"need samples of every step, shape ({flow.steps + 1}, n, n_fields); got {step_phi.shape}")
    dt = 1.0 / flow.steps
    out: list[np.ndarray] = []
    for i in range(flow.steps):
        p = np.nan_to_num(step_phi[i])
        out.append(p)
        v = np.asarray(_velocity(flow.kernels.layer(2 * i), jnp.asarray(p)))
        out.append(p + 0.5 * dt * v)
    out.append(np.nan_to_num(step_phi[-1]))
    return out


@eqx.filter_jit
def _velocity(kernel, points):
    return jax.vmap(kernel)(points)


def layer_tails(flow, seed: int = 0) -> list[np.ndarray]:
    """Per-layer tail points, as the solve's :class:`~pikflow.solvers.Collocation` makes them."""
    col = flow.settings.get("collocation", {}) or {}
    n_tail, gap, radius = int(col.get("n_tail", 500)), float(col.get("tail_gap", 20.0)), col.get("radius")
    key = jax.random.PRNGKey(seed + 104729)
    out = []
    for i, t in enumerate(flow.times):
        rad = (
            jnp.asarray(float(radius))
            if radius is not None
            else tail_radius(flow.equation.action_fn, jnp.asarray(t), flow.n_fields, gap)
        )
        out.append(np.asarray(tail_points(jax.random.fold_in(key, i), rad, n_tail, flow.n_fields)))
    return out


def layer_points(flow, n: int = 2000, *, seed: int = 0, samples=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer, ``(samples, tails)``: ``n`` flow samples at the layer's time and the tail points.

    ``samples`` (a :class:`~pikflow.Samples` with every step kept) is used instead of
    drawing new ones when given.
    """
    if samples is None:
        samples = flow.sample(n, seed=seed, method="rk4", progress=False)
    if not samples.layers_kept:
        raise SamplingError("residuals along the flow need every step: sample with keep_layers=True")
    return list(zip(stage_points(flow, samples.phi), layer_tails(flow, seed), strict=True))


def summarise(index: int, t: float, sample_points, sample_r, tail_r=None) -> LayerResidual:
    """A :class:`LayerResidual` from residual values on samples (and optionally on tail points)."""
    pts, r = np.asarray(sample_points), np.abs(np.asarray(sample_r))
    r = np.where(np.isfinite(r), r, np.inf)
    if not r.size:
        raise SamplingError(f"no samples to summarise the residual of the layer at t = {t:.4g}")
    rms = float(np.sqrt(np.mean(r**2)))
    k = int(np.argmax(r))
    bad = pts[r >= 0.5 * r[k]]
    region = tuple((float(lo), float(hi)) for lo, hi in zip(bad.min(axis=0), bad.max(axis=0), strict=True))
    tail = None
    if tail_r is not None and np.size(tail_r):
        ta = np.abs(np.asarray(tail_r))
        tail = float(np.max(np.where(np.isfinite(ta), ta, np.inf)))
    return LayerResidual(
        index=int(index),
        t=float(t),
        rms=rms,
        max=float(r[k]),
        tail_max=tail,
        worst_phi=tuple(float(x) for x in pts[k]),
        worst_region=region,
        n_points=int(len(pts)),
    )


def residual_summary(flow, *, n: int = 2000, seed: int = 0, samples=None, tails: bool = True) -> list[LayerResidual]:
    r"""Per-layer summary of the residual (eq. 27): RMS over the layer's samples, max, worst point and region.

    Parameters
    ----------
    flow
        Any flow (solved, trained or refined kernels).
    n
        Samples drawn from the flow when ``samples`` is not given.
    seed
        Seed of those samples (and of the tail points).
    samples
        Samples with every step kept (e.g. those of a run); at most their first 20000 are used.
    tails
        Also report ``tail_max`` over the tail points (the whole range a sample could reach).
    """
    if samples is None:
        samples = flow.sample(n, seed=seed, method="rk4", progress=False)
    if not samples.layers_kept:
        raise SamplingError("residuals along the flow need every step: sample with keep_layers=True")
    phi = samples.phi[:, :20000]
    stages = stage_points(flow, phi)
    tail = layer_tails(flow, seed) if tails else [None] * len(stages)
    out = []
    for i, (p, tp) in enumerate(zip(stages, tail, strict=True)):
        r = layer_residual(flow, p if tp is None else np.concatenate([p, tp]), i)
        out.append(summarise(i, flow.times[i], p, r[: len(p)], None if tp is None else r[len(p) :]))
    return out
