"""Checks of user-given numbers shared by the stages and the command line (no stage's own rules)."""

from __future__ import annotations

import math


def positive_number(value) -> bool:
    """A finite positive number (not a bool or a string; huge integers overflow to not finite)."""
    try:
        return not isinstance(value, bool | str) and 0 < float(value) < math.inf
    except (OverflowError, TypeError, ValueError):
        return False
