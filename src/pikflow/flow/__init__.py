"""Flows: kernels per layer, RK4 integration with exact log-densities, samples, save/load.

:class:`AbstractFlow` and :class:`AbstractSamples` are the interface of every field space's flows and samples.
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
from ._interface import AbstractFlow as AbstractFlow
from ._interface import AbstractSamples as AbstractSamples
from ._interface import CallableFloat as CallableFloat
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
    "AbstractFlow",
    "AbstractKernel",
    "AbstractSamples",
    "CallableFloat",
    "Flow",
    "GaussianBase",
    "LayerReport",
    "LinearKernel",
    "PathEstimates",
    "RadialMap",
    "Samples",
    "TableInfo",
    "TabulatedMap",
    "path_estimates",
    "read_flow_directory",
    "register_flow_format",
    "register_kernel",
    "solve",
    "write_flow_directory",
]
