"""Exact reference results (0-D quadrature), independent of the solver code."""

from ._zero_dim import QuadratureReference as QuadratureReference

__all__ = ["QuadratureReference"]
