"""The symmetry group of a lattice action, re-exported: it is detected in the symbolic layer (:mod:`pikflow.action`)."""

from ..action._symmetry import Symmetry  # noqa: F401
