"""Per-layer solvers for the kernel equation, their kernel models, and their collocation points.

All solvers are interchangeable objects for :func:`pikflow.solve`:

* :class:`DirectSolver`: a fixed basis, one Lineax least-squares solve per layer (eq. 19);
* :class:`AdamSolver`: the paper's training (Optax Adam on eq. 20, Appendix A) of a
  :class:`SineKernel` (eq. 25, learnable frequencies) or an :class:`MLPKernel`;
* :class:`LevenbergMarquardtSolver`: frequencies and coefficients of eq. 25 as a nonlinear
  least-squares problem (Optimistix), by variable projection.

Each of them also solves a linear least-squares layer (a lattice layer, eq. 34) through
:func:`solve_system`, returning a :class:`LayerSolution` (value, result code, stats);
:func:`layer_assembler` collocates such a layer on a potential basis (the outlier rule) and solves it.
"""

from ._collocation import Collocation as Collocation
from ._direct import AbstractKernelSolver as AbstractKernelSolver
from ._direct import DirectSolver as DirectSolver
from ._from_config import LATTICE_OPTIONS as LATTICE_OPTIONS
from ._from_config import solver_from_config as solver_from_config
from ._linear import LayerSolution as LayerSolution
from ._linear import solve_system as solve_system
from ._models import MLPKernel as MLPKernel
from ._models import SineKernel as SineKernel
from ._nonlinear import LevenbergMarquardtSolver as LevenbergMarquardtSolver
from ._potential_layer import layer_assembler as layer_assembler
from ._potential_layer import layer_solver as layer_solver
from ._potential_layer import least_squares as least_squares
from ._train import AdamSolver as AdamSolver

#: ``[solver] kind`` -> solver class
SOLVERS = {cls.kind: cls for cls in (DirectSolver, AdamSolver, LevenbergMarquardtSolver)}

__all__ = [
    "LATTICE_OPTIONS",
    "SOLVERS",
    "AbstractKernelSolver",
    "AdamSolver",
    "Collocation",
    "DirectSolver",
    "LayerSolution",
    "LevenbergMarquardtSolver",
    "MLPKernel",
    "SineKernel",
    "layer_assembler",
    "layer_solver",
    "least_squares",
    "solve_system",
    "solver_from_config",
]
