r"""Sampler diagnostics: importance weights, IMH chains and autocorrelation errors.

- :func:`ess_fraction`, :func:`ess_fraction_error`, :func:`log_mean_weight`, :func:`reweight`:
  effective sample size (and its error), :math:`\log Z` and reweighted observables from log
  importance weights.
- :func:`pareto_khat`: the Pareto shape of the weights' upper tail (PSIS), which tells whether
  the ESS and the reweighted errors can be trusted (:func:`khat_threshold`).
- :func:`imh_chain`: independent Metropolis-Hastings with the flow as proposal,
  which makes the sampler exact; its acceptance rate is the headline number.
- :func:`target_ess`: the hole check, ESS/N seen from samples of the target;
  :func:`reliability_warnings`: tiny ESS, holes, disagreement with exact values, each
  with the lever measured to work (:data:`FIX`).
- :func:`gamma_method`: Wolff's Gamma method (automatic windowing) for the error and
  integrated autocorrelation time of chain averages.
"""

from ._gamma import GammaResult as GammaResult
from ._gamma import GammaWindowWarning as GammaWindowWarning
from ._gamma import gamma_method as gamma_method
from ._holes import FIX as FIX
from ._holes import reliability_warnings as reliability_warnings
from ._holes import target_ess as target_ess
from ._imh import IMHResult as IMHResult
from ._imh import imh_chain as imh_chain
from ._pareto import LARGEST_WEIGHT as LARGEST_WEIGHT
from ._pareto import khat_threshold as khat_threshold
from ._pareto import khat_warning as khat_warning
from ._pareto import largest_weight as largest_weight
from ._pareto import pareto_khat as pareto_khat
from ._pareto import weight_tail as weight_tail
from ._weights import ess_fraction as ess_fraction
from ._weights import ess_fraction_error as ess_fraction_error
from ._weights import log_mean_weight as log_mean_weight
from ._weights import reweight as reweight

__all__ = [
    "FIX",
    "GammaResult",
    "GammaWindowWarning",
    "LARGEST_WEIGHT",
    "IMHResult",
    "ess_fraction",
    "ess_fraction_error",
    "gamma_method",
    "imh_chain",
    "khat_threshold",
    "khat_warning",
    "largest_weight",
    "log_mean_weight",
    "pareto_khat",
    "reliability_warnings",
    "reweight",
    "target_ess",
    "weight_tail",
]
