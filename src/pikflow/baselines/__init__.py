r"""Baselines to compare the flow with: HMC (BlackJAX), thermodynamic integration, IMH-chain errors.

- :func:`hmc` / :class:`HMC`: Hamiltonian Monte Carlo for any pikflow action (0-D,
  multi-component, any flat configuration), leapfrog with the paper's trajectory
  length 1 and step 1/25, many chains vectorised, thermalisation, acceptance, and
  Gamma-method errors (:class:`HMCResult`).
- :func:`hmc_points`: HMC at many points of a path in one vectorised batch, each point with
  its own adapted step (:class:`PointsHMC`): the per-point baseline of a parameter scan.
- :func:`thermodynamic_integration`: :math:`\Delta F` / :math:`\log Z` along the path
  from :math:`\langle d\hat S_t/dt\rangle_t` measured by HMC, the independent check of
  the flow's :math:`\log Z`; :func:`gaussian_log_z` for the base.
- :func:`imh_estimate`: the same Gamma-method analysis for the flow's IMH chain.
"""

from ._compare import imh_estimate as imh_estimate
from ._free_energy import ThermodynamicIntegration as ThermodynamicIntegration
from ._free_energy import gaussian_log_z as gaussian_log_z
from ._free_energy import thermodynamic_integration as thermodynamic_integration
from ._hmc import HMC as HMC
from ._hmc import MIN_ACCEPTANCE as MIN_ACCEPTANCE
from ._hmc import HMCResult as HMCResult
from ._hmc import hmc as hmc
from ._hmc_points import PointsHMC as PointsHMC
from ._hmc_points import hmc_points as hmc_points

__all__ = [
    "HMC",
    "HMCResult",
    "MIN_ACCEPTANCE",
    "PointsHMC",
    "ThermodynamicIntegration",
    "gaussian_log_z",
    "hmc",
    "hmc_points",
    "imh_estimate",
    "thermodynamic_integration",
]
