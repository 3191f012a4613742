r"""The default enrichment ladder of a lattice basis (issue #7 item 4), tried by :func:`pikflow.refine.enrich_lattice`.

Only tamed or quadratic families, so an enriched velocity still cannot blow up far from the
collocation data:

1. intermediate smoothing scales (geometric midpoints of the current ladder), powers 4, 6
   (and 3, 5 when the path has no :math:`Z_2` symmetry, :meth:`~pikflow.action.LatticePath.symmetry`);
2. the eighth power of the smoothed fields (and the seventh without :math:`Z_2`);
3. cross-scale products over every scale of the current ladder.

:meth:`LatticeBasis.enrichments` offers it to the generic enrichment.
"""

from __future__ import annotations

import numpy as np

from ._basis import LatticeFamily, SmoothedPowers, SmoothedProducts
from ._fit_basis import DEFAULT_TAME


def _smoothed(basis) -> SmoothedPowers | None:
    fams = [f for f in basis.families if type(f) is SmoothedPowers]
    return fams[0] if fams else None


def default_enrichments(flow) -> list[LatticeFamily]:
    """The default ladder of candidate families for ``flow`` (see the module docstring), all tamed."""
    return basis_enrichments(flow.basis, flow.path, flow.base)


def basis_enrichments(basis, path, base) -> list[LatticeFamily]:
    """:func:`default_enrichments` of a basis on ``path`` with ``base`` (:meth:`LatticeBasis.enrichments`)."""
    lat = path.lattice
    ref = _smoothed(basis)
    precision = None if ref is None else ref.precision
    if precision is None:
        precision = np.asarray(base.precision)
    tame = DEFAULT_TAME if ref is None or ref.tame is None else ref.tame
    scales = list(ref.scales) if ref is not None else []
    # the enrichments smooth like the basis (a separable basis stays separable: its matrices, not transforms)
    kw = {"precision": precision, "tame": tame, "smoothing": "precision" if ref is None else ref.smoothing}
    even = path.symmetry().z2  # without Z2 symmetry the odd powers join (detected, never assumed)
    out: list[LatticeFamily] = []
    if len(scales) >= 2:
        mids = [float(np.sqrt(a * b)) for a, b in zip(scales[:-1], scales[1:], strict=True) if a > 0]
        if mids:
            out.append(SmoothedPowers(lat, mids, (4, 6) if even else (3, 4, 5, 6), **kw))
    if scales:
        out.append(SmoothedPowers(lat, scales, (8,) if even else (7, 8), **kw))
    if len(scales) >= 2:
        out.append(SmoothedProducts(lat, scales, **kw))
    return out


__all__ = ["basis_enrichments", "default_enrichments"]
