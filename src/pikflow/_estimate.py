"""A number with its standard error."""

from __future__ import annotations

import math
from typing import NamedTuple


class Estimate(NamedTuple):
    """An estimate and its one-sigma standard error."""

    value: float
    error: float

    def __str__(self) -> str:
        v, e = self.value, self.error
        if not (math.isfinite(v) and math.isfinite(e)) or e <= 0:
            return f"{v:.6g} +- {e:.2g}"
        digits = max(0, 1 - int(math.floor(math.log10(e))))
        return f"{v:.{digits}f} +- {e:.{digits}f}" if digits < 12 else f"{v:.6g} +- {e:.2g}"

    def to_dict(self) -> dict:
        """``{"value": ..., "error": ...}`` for JSON."""
        return {"value": float(self.value), "error": float(self.error)}

    def deviation(self, exact: float) -> float:
        """Signed distance ``(value - exact) / error`` in units of the error.

        Positive when the estimate lies above ``exact``. With a zero or non-finite error
        it is ``+inf`` or ``-inf`` by the sign of the difference (``nan`` when the value is).
        """
        diff = self.value - exact
        if self.error > 0 and math.isfinite(self.error):
            return diff / self.error
        return math.copysign(math.inf, diff) if diff == diff else math.nan
