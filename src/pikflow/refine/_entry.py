r"""One refinement entry for every field space: :func:`refine` dispatches on the flow's type.

A flow's residual says where its kernels are wrong (eq. 27 in 0-D, eq. 34 on a lattice); each
space corrects them its own way:

* a 0-D :class:`pikflow.Flow`: Wendland corrections of each layer's kernel (eqs. 28-29, App. B),
  :func:`refine_kernels`;
* a lattice flow: the next family of a ladder of candidate basis terms, every layer solved again,
  kept only if the residual and the score improve (:func:`pikflow.refine.enrich_lattice`, through
  the potential-basis interface; registered by :mod:`._enrich`).

Each space registers its refiner with :func:`register_refiner`, so this stage imports no space.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

from .._errors import PikflowError
from ..flow import Flow
from ._refine import refine_kernels

#: flow type -> (refiner, the keywords it accepts)
_REFINERS: dict[type, tuple[Callable, frozenset[str]]] = {}


def register_refiner(flow_type: type, refiner: Callable, keywords: Iterable[str] | None = None) -> None:
    """Make :func:`refine` refine flows of ``flow_type`` (and its subclasses) with ``refiner(flow, **options)``.

    ``keywords``: the options :func:`refine` passes on (default: the keyword parameters of
    ``refiner``); any other is refused with a :class:`~pikflow.PikflowError` naming them.
    """
    if keywords is None:
        params = list(inspect.signature(refiner).parameters.values())[1:]
        keywords = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    _REFINERS[flow_type] = (refiner, frozenset(keywords))


register_refiner(Flow, refine_kernels)


def refine(flow, **options):
    r"""Refine a solved flow of any space where its residual says so; returns the refinement record.

    * :class:`pikflow.Flow` (0-D): :func:`refine_kernels` (Wendland corrections, eqs. 28-29) with
      ``tol`` (absolute residual of eq. 27), ``max_rounds``, ``centres``, ``n_points``, ``n_ess``,
      ``overlap``, ``layers``, ``extra_points``, ``samples``, ``seed``, ``progress``,
      ``centres_at``, ``n_missed``; returns a :class:`~pikflow.refine.Refinement`.
    * :class:`pikflow.flow.LatticeFlow`: :func:`pikflow.refine.enrich_lattice` (basis
      enrichment, eq. 34) with ``tol`` (relative layer residual), ``enrichments``, ``gain``,
      ``reference``, ``select``, ``n_collocation``, ``seed``, ``solver``, ``checkpoint``,
      ``progress``; returns a :class:`pikflow.refine.Enrichment`.

    Both records hold the refined flow as ``.flow``, ``.converged`` and ``to_dict()``. A keyword
    the flow's space does not take raises a :class:`~pikflow.PikflowError` that lists those it does.
    """
    entry = next((_REFINERS[c] for c in type(flow).__mro__ if c in _REFINERS), None)
    if entry is None:
        kinds = ", ".join(sorted(c.__name__ for c in _REFINERS))
        raise PikflowError(f"refine needs a solved flow ({kinds}), got {type(flow).__name__}")
    refiner, keywords = entry
    unknown = sorted(set(options) - keywords)
    if unknown:
        raise PikflowError(
            f"refine: a {type(flow).__name__} takes the keywords {', '.join(sorted(keywords))}; "
            f"got {', '.join(unknown)}"
        )
    return refiner(flow, **options)
