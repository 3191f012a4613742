r"""Lattice field theories: what only lattices know (paper sec. IV B), plugged into the shared stages.

The stages are those of every field space; this package holds only the lattice-specific parts
and re-exports, for convenience, the names that live in the stages:

- symbolic layer (:mod:`pikflow.action`): :class:`Lattice`, :class:`LatticeAction` (a density string
  or SymPy expression in ``phi``, ``shift(phi, mu[, -1])``, ``sum_mu``, ``d``; several components
  per site, e.g. an O(n) model in ``phi1, phi2``: configurations of shape ``(n, *lattice)``),
  :class:`LatticePath`, :func:`check_bounded_below`, :class:`Symmetry` (the reflections, axis
  permutations and :math:`Z_2` of an action, detected in SymPy; bases and the matched base are
  symmetrised only under it);
- flow (:mod:`pikflow.flow`): :func:`solve_lattice` -> :class:`LatticeFlow` -> :class:`LatticeSamples`
  (the flow and samples interface of every space), :class:`LatticeLayerReport`,
  :class:`GaussianLatticeBase` (exact FFT sampling; optionally a two-Gaussian zero-mode mixture),
  :func:`two_point_series`; solvers (:mod:`pikflow.solvers`): :func:`least_squares`;
- refinement (:mod:`pikflow.refine`): :func:`enrich_lattice` (residual-driven basis enrichment, also
  ``pikflow.refine(flow)`` -> :class:`Enrichment`, :class:`EnrichmentStep`).

Lattice-specific, here:

- Bases for :math:`\Omega_t` (eq. 34): :class:`FourierTwoPoint`, :class:`Magnetisation`,
  :class:`SmoothedPowers`, :class:`SmoothedProducts`, :class:`SmoothedRidges`, :class:`LocalHermite`,
  :func:`lattice_basis`
  (the default basis of :func:`solve_lattice`, registered), and the enrichment ladder
  :func:`default_enrichments`.
- :func:`free_kernel` (exact :math:`v = -\tfrac12 K^{-1}\dot K\phi`); the conventions
  :func:`from_hopping`, :func:`to_hopping`, :func:`from_nf`, :func:`to_nf`.
- :func:`fit_lattice` (builds and scores candidate flows); observables: :func:`flow_observables`
  (IMH + Gamma method), :func:`flow_two_point`, :func:`hmc`, :func:`matched_base`.
- The npz save format (:func:`save_lattice_flow`, :func:`load_lattice_flow`; ``LatticeFlow.save``).
- SMC on a lattice flow: :func:`lattice_problem` (:func:`pikflow.samplers.smc` takes the flow directly),
  :func:`magnetisation_moments`, :func:`smc_observables`.
- Multilevel sampling: :func:`multilevel` (block upsampling plus zero-block-sum white noise or
  the conditional Gaussian, :class:`Lift`, :func:`make_lift`; SMC per level to the fine target;
  :class:`Level` per size); a level's base diagnostics :func:`log_weights`, :func:`weight_diagnostics`;
  a PIK flow per level (``multilevel(..., transport="pik")``): :class:`LevelPath`, :class:`LevelBase`,
  :func:`solve_level`, the block terms :class:`BlockTerms`, :class:`BlockNeighbours`,
  :class:`CoarseFamily`, :func:`level_basis`, :func:`level_log_weights`, :func:`level_diagnostics`,
  :func:`level_checks`.
- Parameter scans along a physical path: :func:`scan_lattice` (one SMC run per lattice size,
  :math:`\langle|m|\rangle`, :math:`\chi`, Binder cumulant and :math:`\log Z` at every point) ->
  :class:`LatticeScan`; :func:`binder_crossings`; :func:`path_problem`.
"""

from ..action import LatticeAction, LatticePath, check_bounded_below
from ..action._density import d, mu, phi, shift, sum_mu
from ..action._geometry import Lattice, check_shape
from ..action._symmetry import Symmetry
from ..flow import (
    GaussianLatticeBase,
    LatticeFlow,
    LatticeLayerReport,
    LatticeSamples,
    solve_lattice,
    two_point_series,
)
from ..refine import Enrichment, EnrichmentStep, enrich_lattice
from ..solvers import least_squares
from ._basis import (
    DEFAULT_SCALES,
    MAX_LOCAL_DEGREE,
    FourierTwoPoint,
    LatticeBasis,
    LatticeFamily,
    LocalHermite,
    Magnetisation,
    SmoothedPowers,
    SmoothedProducts,
    SmoothedRidges,
    kept_scales,
    lattice_basis,
    tamed_power,
)
from ._basis_block import BlockNeighbours, BlockTerms, CoarseFamily, level_basis
from ._conventions import (
    HOPPING_DENSITY,
    NF_DENSITY,
    NF_FIELD_SCALE,
    PHI4_DENSITY,
    from_hopping,
    from_nf,
    hopping_field_scale,
    to_hopping,
    to_nf,
)
from ._enrichments import default_enrichments
from ._fit import BASE_KINDS, HOLE_CHECK_SAMPLES, fit_lattice, target_values
from ._fit_basis import (
    BASIS_PRESETS,
    COLLOCATION_PER_TERM,
    DEFAULT_SELECT,
    DEFAULT_TAME,
    RIDGE_PRESETS,
    SHORT_SCALE_LADDER,
    TAME_LADDER,
    auto_collocation,
    default_basis,
    default_scales,
    preset_basis,
)
from ._free import free_kernel, log_cosh
from ._io import load_lattice_flow, save_lattice_flow
from ._level_flow import LevelBase, LevelPath, level_checks, level_diagnostics, level_log_weights, solve_level
from ._levels import Lift, log_weights, weight_diagnostics
from ._multilevel import Level, make_lift, multilevel
from ._observables import (
    chain_observables,
    chain_two_point,
    flow_observables,
    flow_two_point,
    hmc,
    magnetisations,
    matched_base,
    matched_base_weighted,
    mixture_moments,
    observable_series,
    ordered_start,
    reweighted_observables,
    site_density,
)
from ._propagator import smooth_propagator
from ._scan import LatticeScan, binder_crossings, couplings_at, path_problem, scan_lattice, scan_observables
from ._smc import lattice_problem, magnetisation_moments, smc_observables

__all__ = [
    "BlockNeighbours",
    "BlockTerms",
    "CoarseFamily",
    "LevelBase",
    "LevelPath",
    "level_basis",
    "level_checks",
    "level_diagnostics",
    "level_log_weights",
    "solve_level",
    "Level",
    "Lift",
    "log_weights",
    "make_lift",
    "weight_diagnostics",
    "multilevel",
    "LatticeScan",
    "binder_crossings",
    "couplings_at",
    "path_problem",
    "scan_lattice",
    "scan_observables",
    "site_density",
    "magnetisations",
    "lattice_problem",
    "magnetisation_moments",
    "smc_observables",
    "chain_two_point",
    "flow_two_point",
    "two_point_series",
    "Enrichment",
    "EnrichmentStep",
    "default_enrichments",
    "enrich_lattice",
    "BASE_KINDS",
    "HOLE_CHECK_SAMPLES",
    "log_cosh",
    "mixture_moments",
    "DEFAULT_SCALES",
    "MAX_LOCAL_DEGREE",
    "DEFAULT_TAME",
    "TAME_LADDER",
    "DEFAULT_SELECT",
    "COLLOCATION_PER_TERM",
    "auto_collocation",
    "BASIS_PRESETS",
    "RIDGE_PRESETS",
    "SHORT_SCALE_LADDER",
    "preset_basis",
    "FourierTwoPoint",
    "GaussianLatticeBase",
    "HOPPING_DENSITY",
    "Lattice",
    "LatticeAction",
    "LatticeBasis",
    "LatticeFamily",
    "LatticeFlow",
    "LatticeLayerReport",
    "LatticePath",
    "LatticeSamples",
    "LocalHermite",
    "Magnetisation",
    "NF_DENSITY",
    "NF_FIELD_SCALE",
    "PHI4_DENSITY",
    "SmoothedPowers",
    "SmoothedProducts",
    "SmoothedRidges",
    "Symmetry",
    "chain_observables",
    "observable_series",
    "check_bounded_below",
    "check_shape",
    "d",
    "default_basis",
    "default_scales",
    "fit_lattice",
    "flow_observables",
    "free_kernel",
    "from_hopping",
    "from_nf",
    "hmc",
    "hopping_field_scale",
    "kept_scales",
    "lattice_basis",
    "least_squares",
    "load_lattice_flow",
    "matched_base",
    "matched_base_weighted",
    "smooth_propagator",
    "ordered_start",
    "mu",
    "phi",
    "reweighted_observables",
    "save_lattice_flow",
    "shift",
    "solve_lattice",
    "sum_mu",
    "to_hopping",
    "target_values",
    "to_nf",
    "tamed_power",
]
