"""Kernel equations: the Wegner operator applied to a basis (eqs. 14, 19, 20), and the kernels they solve for."""

from ._kernel import AbstractKernel as AbstractKernel
from ._kernel import LinearKernel as LinearKernel
from ._kernel import kernel_skeleton as kernel_skeleton
from ._kernel import register_kernel as register_kernel
from ._wegner import WegnerEquation as WegnerEquation

__all__ = ["AbstractKernel", "LinearKernel", "WegnerEquation", "kernel_skeleton", "register_kernel"]
