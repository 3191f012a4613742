"""Lowering: SymPy expressions to jitted, vmappable JAX functions."""

from ._lower import lower as lower

__all__ = ["lower"]
