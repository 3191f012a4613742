"""The lattice density grammar, re-exported: it lives in the symbolic layer (:mod:`pikflow.action`), its
lowering to JAX in :mod:`pikflow.lowering`."""

from ..action._density import (  # noqa: F401
    _FIELD_SITE_RE,
    _RESERVED,
    _SITE_RE,
    _field_names,
    d,
    expand_density,
    mu,
    parse_density,
    phi,
    shift,
    shift_arguments,
    shift_sites,
    site,
    site_key,
    site_offset,
    site_symbols,
    sum_mu,
)
from ..lowering._sites import _lambdify_sites, _lower_components, lower_site_expressions  # noqa: F401
