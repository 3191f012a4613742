"""Per-layer solvers for the kernel equation, and their collocation points."""

from ._collocation import Collocation as Collocation
from ._direct import AbstractKernelSolver as AbstractKernelSolver
from ._direct import DirectSolver as DirectSolver

__all__ = ["AbstractKernelSolver", "Collocation", "DirectSolver"]
