"""Flows: kernels per layer, RK4 integration with exact log-densities, samples, save/load.

:class:`AbstractFlow` and :class:`AbstractSamples` are the interface of every field space's flows and samples.
:class:`LatticeFlow` and :class:`LatticeSamples` are the flow and samples of a potential basis (eq. 34) on a
lattice, pushed with the same RK4; their save format is registered by :mod:`pikflow.lattice`
(:func:`register_flow_format`).
"""

from ..equations import AbstractKernel as AbstractKernel
from ..equations import LinearKernel as LinearKernel
from ..equations import register_kernel as register_kernel
from ._base import GaussianBase as GaussianBase
from ._build import solve as solve
from ._flow import Flow as Flow
from ._flow import LayerReport as LayerReport
from ._format import read_flow_directory as read_flow_directory
from ._format import register_flow_format as register_flow_format
from ._format import write_flow_directory as write_flow_directory
from ._integrate import exact_log_det as exact_log_det
from ._integrate import rk4 as rk4
from ._integrate import rk4_scan as rk4_scan
from ._integrate import rk4_window as rk4_window
from ._interface import AbstractFlow as AbstractFlow
from ._interface import AbstractSamples as AbstractSamples
from ._interface import CallableFloat as CallableFloat
from ._lattice_base import GaussianLatticeBase as GaussianLatticeBase
from ._lattice_flow import UNRELIABLE_LOG_Q as UNRELIABLE_LOG_Q
from ._lattice_flow import LatticeFlow as LatticeFlow
from ._lattice_flow import LatticeLayerReport as LatticeLayerReport
from ._lattice_flow import push_batch as push_batch
from ._lattice_samples import LatticeSamples as LatticeSamples
from ._lattice_solve import register_default_basis as register_default_basis
from ._lattice_solve import register_solve_path as register_solve_path
from ._lattice_solve import solve_lattice as solve_lattice
from ._lattice_stream import check_sample_memory as check_sample_memory
from ._lattice_stream import sample_memory as sample_memory
from ._lattice_stream import two_point_series as two_point_series
from ._radial import RadialMap as RadialMap
from ._samples import Samples as Samples
from ._streaming import PathEstimates as PathEstimates
from ._streaming import path_estimates as path_estimates
from ._tabulated import TableInfo as TableInfo
from ._tabulated import TabulatedMap as TabulatedMap

__all__ = [
    "exact_log_det",
    "rk4",
    "rk4_scan",
    "rk4_window",
    "AbstractFlow",
    "AbstractKernel",
    "AbstractSamples",
    "CallableFloat",
    "Flow",
    "GaussianBase",
    "GaussianLatticeBase",
    "LatticeFlow",
    "push_batch",
    "UNRELIABLE_LOG_Q",
    "LatticeLayerReport",
    "LatticeSamples",
    "LayerReport",
    "LinearKernel",
    "PathEstimates",
    "RadialMap",
    "Samples",
    "TableInfo",
    "TabulatedMap",
    "check_sample_memory",
    "path_estimates",
    "read_flow_directory",
    "register_flow_format",
    "register_default_basis",
    "register_kernel",
    "sample_memory",
    "register_solve_path",
    "solve",
    "write_flow_directory",
    "solve_lattice",
    "two_point_series",
]
