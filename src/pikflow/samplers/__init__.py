r"""Samplers built on a solved flow: sequential Monte Carlo with PIK transport (paper App. C).

* :func:`smc`: particles from the base, transported by the PIK maps (or not, or by App. C's
  Langevin form), reweighted exactly, resampled and rejuvenated by BlackJAX MALA/HMC moves;
  errors from independent replicas (:class:`SMCResult`); on a lattice the HMC moves can take a
  Fourier-accelerated mass, fixed or measured from the particles (:func:`measured_mass`;
  :func:`check_fourier_mass` checks a ``fourier_mass`` setting).
* :class:`AnnealingProblem`: what a sequential sampler needs from a path and a flow, for
  any field space; :func:`flow_problem` builds it for a 0-D flow, a space registers its own
  (:func:`register_problem`).
"""

from ._batch import PARTICLE_BATCH as PARTICLE_BATCH
from ._mcmc import ADAPTIVE_MASS as ADAPTIVE_MASS
from ._mcmc import TARGET_ACCEPTANCE as TARGET_ACCEPTANCE
from ._mcmc import check_fourier_mass as check_fourier_mass
from ._mcmc import measured_mass as measured_mass
from ._pool import pool_by_default as pool_by_default
from ._problem import AnnealingProblem as AnnealingProblem
from ._problem import as_problem as as_problem
from ._problem import flow_problem as flow_problem
from ._problem import register_problem as register_problem
from ._result import ReplicaWarning as ReplicaWarning
from ._result import SMCResult as SMCResult
from ._result import replica_estimate as replica_estimate
from ._smc import ESTIMATES as ESTIMATES
from ._smc import TRANSPORTS as TRANSPORTS
from ._smc import smc as smc

__all__ = [
    "ADAPTIVE_MASS",
    "ESTIMATES",
    "PARTICLE_BATCH",
    "ReplicaWarning",
    "TARGET_ACCEPTANCE",
    "TRANSPORTS",
    "AnnealingProblem",
    "SMCResult",
    "as_problem",
    "check_fourier_mass",
    "flow_problem",
    "measured_mass",
    "pool_by_default",
    "register_problem",
    "replica_estimate",
    "smc",
]
