r"""The nearest-neighbour hopping coupling of a lattice action, where cluster moves can use it.

:func:`hopping_coupling` returns :math:`J` when the density (eq. 31) is
:math:`\rho_t(x) = v_t(\phi_x) - J\sum_\mu\phi_x\phi_{x+\mu}` with every site term :math:`v_t` even in
:math:`\phi_x`, :math:`J > 0` a number (the same along the path and in every direction) and one field
component (a term in one neighbour alone, as in the gradient form
:math:`\tfrac12(\phi_{x+\mu} - \phi_x)^2`, is a site term once summed over :math:`x`): then the signs of
:math:`\phi` at fixed :math:`|\phi|` are an Ising model with couplings :math:`J|\phi_x||\phi_{x+\mu}|`
(:mod:`pikflow.samplers._cluster`). Otherwise ``None``.
"""

from __future__ import annotations

import sympy as sp

from ._density import site_symbols
from ._lattice_path import LatticePath


def hopping_coupling(path) -> float | None:
    """:math:`J` of a :class:`~pikflow.lattice.LatticePath` whose density has the form above, else ``None`` (also
    for any other path, e.g. a multilevel flow's level path)."""
    if not isinstance(path, LatticePath):
        return None
    if path.action.n != 1 or path.spectral_precision is not None:  # components, or a nonlocal matched Gaussian
        return None
    d = path.lattice.d
    sites = site_symbols(path.density, d)
    centre = [s for s, o in sites.items() if not any(o)]
    forward = {s: o for s, o in sites.items() if any(o)}
    units = {tuple(int(i == mu) for i in range(d)) for mu in range(d)}
    if len(centre) != 1 or set(forward.values()) != units or len(forward) != d:
        return None
    phi = centre[0]
    local, hop = sp.Integer(0), sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(path.density)):
        present = [s for s in (phi, *forward) if term.has(s)]
        if len(present) == 1 and present[0] is not phi:  # phi_(x+mu) alone: summed over x, the same as phi_x
            local += term.xreplace({present[0]: phi})
        elif len(present) <= 1:
            local += term
        else:
            hop += term
    coupling = -hop.coeff(phi * next(iter(forward)))
    if not (coupling.is_number and coupling > 0):
        return None
    if sp.expand(hop + coupling * phi * sum(forward)) != 0:  # the same J in every direction, nothing else
        return None
    if sp.expand(local - local.xreplace({phi: -phi})) != 0:  # the site terms even in phi
        return None
    return float(coupling)


__all__ = ["hopping_coupling"]
