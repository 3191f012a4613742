"""Lowering: SymPy expressions to jitted, vmappable JAX functions."""

from ._lattice_path import LoweredLatticePath as LoweredLatticePath
from ._lattice_path import log_cosh as log_cosh
from ._lattice_path import log_cosh_term as log_cosh_term
from ._lower import check_observable as check_observable
from ._lower import lower as lower
from ._lower import lower_observable as lower_observable
from ._sites import lower_site_expressions as lower_site_expressions

__all__ = [
    "LoweredLatticePath",
    "check_observable",
    "log_cosh",
    "log_cosh_term",
    "lower",
    "lower_observable",
    "lower_site_expressions",
]
