r"""Residual-driven refinement of kernels (paper sec. IV A 2, eqs. 26-29, Appendix B).

* residuals (eq. 27) of any kernel at any points, and per-layer summaries:
  :func:`kernel_residual`, :func:`layer_residual`, :func:`residual_summary`;
* Wendland corrections (eqs. B2-B4) as a kernel of their own: :class:`CorrectedKernel`;
* the refinement loop to a tolerance, never making a layer worse: :func:`refine_kernels`;
* one entry for every field space, dispatching on the flow's type: :func:`refine`
  (spaces add theirs with :func:`register_refiner`); a lattice flow (a potential basis) is
  enriched: :func:`enrich_lattice` adds the basis's candidate terms where the residual of eq. 34
  says so, judged by :func:`score_flow`, and returns an :class:`Enrichment`;
* out-of-domain detection while sampling and local correction: :func:`detect_ood`,
  :func:`refine_online`;
* where the flow misses the target (reference samples of largest weight, pulled back),
  the centres of ``refine(centres_at="missed")``: :func:`missed_points`;
* the coefficients of a solved lattice flow polished on the KL divergence of the RK4 map actually
  applied, its log-density kept that of the map: :func:`polish`, returning a :class:`PolishRecord`;
* the paper's Fig. 6 scenario (under-resolved last layers): :func:`underresolve`.
"""

from ._enrich import Enrichment, EnrichmentStep, enrich_lattice, score_flow
from ._entry import refine, register_refiner
from ._missed import missed_points, missed_weights
from ._online import OnlineRefinement, detect_ood, refine_online, underresolve
from ._polish import PolishRecord, polish
from ._records import STATUSES, LayerRound, Refinement, RefinementRound
from ._refine import correct_layer, refine_kernels, select_centres, with_kernels
from ._residual import LayerResidual, kernel_residual, layer_points, layer_residual, residual_summary, stage_points
from ._wendland import CorrectedKernel, correction_columns, smoothness, wendland, wendland_g

__all__ = [
    "Enrichment",
    "EnrichmentStep",
    "STATUSES",
    "CorrectedKernel",
    "LayerResidual",
    "LayerRound",
    "OnlineRefinement",
    "PolishRecord",
    "Refinement",
    "RefinementRound",
    "correct_layer",
    "correction_columns",
    "detect_ood",
    "enrich_lattice",
    "kernel_residual",
    "layer_points",
    "layer_residual",
    "missed_points",
    "missed_weights",
    "polish",
    "refine",
    "refine_kernels",
    "refine_online",
    "register_refiner",
    "residual_summary",
    "score_flow",
    "select_centres",
    "smoothness",
    "stage_points",
    "underresolve",
    "wendland",
    "wendland_g",
    "with_kernels",
]
