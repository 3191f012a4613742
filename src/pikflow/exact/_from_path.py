"""Build the exact 0-D reference of a one-component :class:`~pikflow.Path` (SymPy to numpy, once)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from .._errors import ActionError
from ._zero_dim import QuadratureReference


def reference_for(path, **options) -> QuadratureReference:
    """The :class:`QuadratureReference` of a path with a single real field (``options``: e.g. ``n_grid``)."""
    if path.n_fields != 1:
        raise ActionError(f"exact quadrature references need one field component, the path has {path.n_fields}")
    (phi,) = path.fields
    tsym = next((s for s in path.expr.free_symbols if str(s) == "t"), sp.Symbol("t"))
    s_fn = sp.lambdify([tsym, phi], path.expr, modules=["scipy", "numpy"])
    d_fn = sp.lambdify([tsym, phi], path.dsdt, modules=["scipy", "numpy"])
    return QuadratureReference(
        lambda t, x: np.broadcast_to(s_fn(t, x), np.shape(x)).astype(float),
        lambda t, x: np.broadcast_to(d_fn(t, x), np.shape(x)).astype(float),
        **options,
    )
