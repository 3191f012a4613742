"""Flows: kernels per layer, RK4 integration with exact log-densities, samples, save/load."""

from ._base import GaussianBase as GaussianBase
from ._build import solve as solve
from ._flow import Flow as Flow
from ._flow import LayerReport as LayerReport
from ._kernel import AbstractKernel as AbstractKernel
from ._kernel import LinearKernel as LinearKernel
from ._kernel import register_kernel as register_kernel
from ._samples import Samples as Samples

__all__ = [
    "AbstractKernel",
    "Flow",
    "GaussianBase",
    "LayerReport",
    "LinearKernel",
    "Samples",
    "register_kernel",
    "solve",
]
