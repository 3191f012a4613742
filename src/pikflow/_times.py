"""The index of a step time: one lookup for every result that records values per step time."""

from __future__ import annotations

import numpy as np

from ._errors import SamplingError


def step_index(times, t: float) -> int:
    """The index of ``t`` among the step ``times`` (within 1e-9), or a :class:`SamplingError` listing them."""
    times = np.asarray(times, dtype=float)
    i = int(np.argmin(np.abs(times - float(t))))
    if abs(times[i] - float(t)) > 1e-9:
        raise SamplingError(f"t = {t} is not a step time: use one of {np.round(times, 6).tolist()}")
    return i
