"""pikflow: exact generative sampling with physics-informed kernels (PIKs).

A physicist's action, written in SymPy, becomes a stack of independent linear solves
(one per RG time, paper eq. 14) and a fast sampler with exact importance weights.
float64 is enabled on import (``jax_enable_x64``).

>>> import sympy as sp, pikflow as pf
>>> phi, m2, lam = sp.symbols("phi m2 lam")
>>> action = pf.Action(m2 / 2 * phi**2 + lam / 4 * phi**4, fields=[phi])
>>> path = pf.Path.linear(action, start={m2: 1.0, lam: 0.0}, end={m2: -2.0, lam: 0.5})
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

# the lattice space registers its Path class (Path(lattice_action, ...) is a LatticePath)
from . import (  # noqa: E402
    baselines,
    bases,
    diagnostics,
    exact,
    lattice,  # noqa: E402
    lowering,  # noqa: F401  (registers the JAX lowering of lattice paths with action/)
    samplers,
)
from ._cache import compilation_cache  # noqa: E402
from ._citation import citation  # noqa: E402
from ._errors import (  # noqa: E402
    ActionError,
    BasisError,
    ConfigError,
    FlowFileError,
    OutputError,
    PikflowError,
    SamplingError,
    SolveError,
)
from ._estimate import Estimate  # noqa: E402
from ._load import load  # noqa: E402
from ._version import __version__  # noqa: E402
from .action import Action, Path, t  # noqa: E402
from .bases import Custom, Hermite, Polynomial, Radial, Sine  # noqa: E402
from .equations import WegnerEquation  # noqa: E402
from .flow import AbstractFlow, AbstractSamples, Flow, Samples, solve  # noqa: E402
from .refine import CorrectedKernel, refine, refine_online, residual_summary  # noqa: E402
from .samplers import smc  # noqa: E402
from .solvers import AdamSolver, Collocation, DirectSolver, LevenbergMarquardtSolver  # noqa: E402

__all__ = [
    "AbstractFlow",
    "AbstractSamples",
    "Action",
    "ActionError",
    "AdamSolver",
    "BasisError",
    "Collocation",
    "ConfigError",
    "CorrectedKernel",
    "Custom",
    "DirectSolver",
    "Estimate",
    "Flow",
    "FlowFileError",
    "Hermite",
    "LevenbergMarquardtSolver",
    "OutputError",
    "Path",
    "PikflowError",
    "Polynomial",
    "Radial",
    "Samples",
    "SamplingError",
    "Sine",
    "SolveError",
    "WegnerEquation",
    "__version__",
    "baselines",
    "bases",
    "citation",
    "compilation_cache",
    "diagnostics",
    "exact",
    "lattice",
    "load",
    "refine",
    "refine_online",
    "residual_summary",
    "samplers",
    "smc",
    "solve",
    "t",
]
