r"""Bounded memory for lattice sampling: the memory a run needs, and batches reduced as they are drawn.

A lattice configuration is :math:`V` float64 numbers: :math:`10^5` samples of
:math:`128\times128` are 13 GiB. The estimates of a lattice run need far less per sample:
the weight, the magnetisation and the two-point series :math:`C(r)`, :math:`r \le L/2`
(:func:`two_point_series`). :meth:`LatticeFlow.sample` with
``keep_fields=False`` reduces each batch to these before drawing the next, so memory is one
batch of configurations plus :math:`O(n L)`; :func:`sample_memory` estimates it before the
run starts and :func:`check_sample_memory` refuses a run that would not fit, naming the
setting to change.
"""

from __future__ import annotations

import math

import numpy as np

from .._errors import SamplingError
from .._memory import available_memory

#: float64 arrays of one batch's size alive at once while a batch is pushed and reduced, at least: the
#: base draw, the RK4 stages, their FFTs (complex) and the pushed batch. A lower bound: the peak RSS
#: measured grows by 10 to 17 batch-sized arrays (128x128 and 64x64, batches of 250 and 1000)
BATCH_COPIES = 8


def sample_memory(shape, n: int, batch: int, keep_fields: bool, components: int = 1) -> dict[str, float]:
    """Bytes a lattice sampling run holds at its peak, by what holds them (a lower bound, float64).

    ``configurations``: ``n`` x volume when kept; ``per sample``: the weight, finiteness,
    magnetisation and :math:`C(r)` of every sample; ``batch``: :data:`BATCH_COPIES` arrays of
    one batch of configurations.
    """
    volume = math.prod(shape) * components
    per_sample = 3 + components + min(shape) // 2 + 1
    return {
        "configurations": 8.0 * n * volume if keep_fields else 0.0,
        "per sample": 8.0 * n * per_sample,
        "batch": 8.0 * BATCH_COPIES * min(batch, n) * volume,
    }


def check_sample_memory(
    shape, n: int, batch: int, keep_fields: bool, *, memory: int | None = None, components: int = 1
) -> None:
    """Raise :class:`SamplingError` if :func:`sample_memory` exceeds the memory available, saying what to change."""
    need = sample_memory(shape, n, batch, keep_fields, components)
    total, limit = sum(need.values()), available_memory() if memory is None else memory
    if total <= limit:
        return
    what = max(need, key=need.get)
    fix = {
        "configurations": "sample with keep_fields=False (the estimates are streamed) or draw fewer samples (n)",
        "per sample": "draw fewer samples (n), in several runs",
        "batch": "use a smaller batch",
    }[what]
    raise SamplingError(
        f"{n} samples of {math.prod(shape)} sites in batches of {min(batch, n)} (keep_fields={keep_fields}) need "
        f"{total / 2**30:.3g} GiB ({what}: {need[what] / 2**30:.3g} GiB), more than the {limit / 2**30:.3g} GiB "
        f"available: {fix}"
    )


def reductions(x: np.ndarray, components: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per configuration of a batch ``(m, *lattice)`` (``(m, components, *lattice)``): finite, magnetisation
    (``(m,)`` or ``(m, components)``), :math:`C(r)` summed over components (zero if not finite)."""
    axes = tuple(range(1, x.ndim))
    finite = np.all(np.isfinite(x), axis=axes)
    mag = x.reshape(len(x), -1).sum(axis=1) if components == 1 else x.reshape(len(x), components, -1).sum(axis=2)
    two = two_point_series(np.where(finite.reshape((-1,) + (1,) * (x.ndim - 1)), x, 0.0), components)
    return finite, mag, two


def two_point_series(fields, components: int = 1) -> np.ndarray:
    r"""Per configuration, :math:`C(r) = \frac1{Vd}\sum_\mu\sum_x\phi(x)\phi(x+r\hat e_\mu)` for :math:`r \le L/2`.

    The lattice autocorrelation by FFT, :math:`\frac1V\mathcal F^{-1}|\tilde\phi|^2`, read
    along every axis and averaged over them. ``fields`` has shape ``(n, *lattice)``
    (``(n, components, *lattice)`` with ``components > 1``: :math:`\phi\cdot\phi`, summed over components);
    returns shape ``(n, L_min // 2 + 1)``.
    """
    x = np.asarray(fields, dtype=float)
    first = 1 if components == 1 else 2
    shape = x.shape[first:]
    axes = tuple(range(first, x.ndim))
    auto = np.real(np.fft.ifftn(np.abs(np.fft.fftn(x, axes=axes)) ** 2, axes=axes))  # sum_x phi(x) phi(x+y), /V below
    if components > 1:
        auto = auto.sum(axis=1)
    R = min(shape) // 2
    per_axis = []
    for mu in range(len(shape)):
        idx = [0] * len(shape)
        rows = []
        for r in range(R + 1):
            idx[mu] = r
            rows.append(auto[(slice(None), *idx)])
        per_axis.append(np.stack(rows, axis=1))
    return np.mean(per_axis, axis=0) / np.prod(shape)


def _site_means(x, components: int):
    """The magnetisation per site, ``(n,)`` or ``(n, components)``."""
    return x.reshape(x.shape[0], -1).mean(axis=1) if components == 1 else x.reshape(*x.shape[:2], -1).mean(axis=2)
