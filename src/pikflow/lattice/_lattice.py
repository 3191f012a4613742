"""Periodic hypercubic lattices, re-exported: the geometry lives in the symbolic layer (:mod:`pikflow.action`)."""

from ..action._geometry import MIN_SIZE, Lattice, check_shape  # noqa: F401
