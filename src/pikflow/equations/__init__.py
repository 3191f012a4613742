"""Kernel equations: the Wegner operator applied to a basis (eqs. 14, 19, 20)."""

from ._wegner import WegnerEquation as WegnerEquation

__all__ = ["WegnerEquation"]
