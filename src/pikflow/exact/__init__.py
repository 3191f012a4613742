"""Exact reference results (0-D quadrature), independent of the solver code."""

from ._from_path import reference_for as reference_for
from ._radial import RadialReference as RadialReference
from ._radial import radial_reference as radial_reference
from ._zero_dim import QuadratureReference as QuadratureReference

__all__ = ["QuadratureReference", "RadialReference", "radial_reference", "reference_for"]
