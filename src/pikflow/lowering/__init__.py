"""Lowering: SymPy expressions to jitted, vmappable JAX functions."""

from ._lower import check_observable as check_observable
from ._lower import lower as lower
from ._lower import lower_observable as lower_observable
from ._sites import lower_site_expressions as lower_site_expressions

__all__ = ["check_observable", "lower", "lower_observable", "lower_site_expressions"]
