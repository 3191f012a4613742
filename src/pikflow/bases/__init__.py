"""Bases for kernels: polynomials, the paper's sines (eq. 25), Hermite functions, custom."""

from ._basis import AbstractBasis as AbstractBasis
from ._basis import Custom as Custom
from ._basis import Hermite as Hermite
from ._basis import Polynomial as Polynomial
from ._basis import Radial as Radial
from ._basis import Sine as Sine
from ._basis import basis_from_spec as basis_from_spec
from ._basis import default_basis as default_basis

__all__ = ["AbstractBasis", "Custom", "Hermite", "Polynomial", "Radial", "Sine", "basis_from_spec", "default_basis"]
