"""Bases for kernels: polynomials, the paper's sines (eq. 25), Hermite functions, custom; potential bases (eq. 34)."""

from ._basis import AbstractBasis as AbstractBasis
from ._basis import Custom as Custom
from ._basis import Hermite as Hermite
from ._basis import Polynomial as Polynomial
from ._basis import Radial as Radial
from ._basis import Sine as Sine
from ._basis import basis_from_spec as basis_from_spec
from ._basis import default_basis as default_basis
from ._potential import AbstractPotentialBasis as AbstractPotentialBasis
from ._potential import PotentialEvaluator as PotentialEvaluator
from ._potential import potential_kinds as potential_kinds
from ._potential import register_basis as register_basis

__all__ = [
    "AbstractBasis",
    "AbstractPotentialBasis",
    "PotentialEvaluator",
    "Custom",
    "Hermite",
    "Polynomial",
    "Radial",
    "Sine",
    "basis_from_spec",
    "default_basis",
    "potential_kinds",
    "register_basis",
]
