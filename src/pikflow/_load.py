"""``pikflow.load``: read any saved flow, of any field space.

Every flow is saved the same way: a directory written atomically, with ``flow.json``
(metadata, a ``format`` tag and version, the pikflow version that wrote it), the arrays,
and ``manifest.json`` (SHA-256 of each file, checked on load). ``flow.json``'s ``format``
says which reader rebuilds it: ``1`` (0-D, :meth:`pikflow.Flow.load`: ``kernels.eqx``) or
``"pikflow-lattice-flow"`` (lattices, :func:`pikflow.lattice.load_lattice_flow`:
``arrays.npz``). :func:`load` dispatches on it (:meth:`pikflow.flow.AbstractFlow.load`, each
space registers its reader with :func:`pikflow.flow.register_flow_format`), so scripts need not
know which space a flow lives in.
"""

from __future__ import annotations

import os

__all__ = ["load"]


def load(directory: str | os.PathLike):
    """Read a flow saved by :meth:`pikflow.Flow.save` or :meth:`pikflow.lattice.LatticeFlow.save`.

    Returns a :class:`pikflow.Flow` (0-D) or a :class:`pikflow.lattice.LatticeFlow`, as
    ``flow.json`` says (both are :class:`pikflow.AbstractFlow`); each gives the same samples as
    the flow that was saved for the same seed. A missing, damaged or foreign directory raises
    :class:`~pikflow.FlowFileError` saying what to do.
    """
    from .flow import AbstractFlow

    return AbstractFlow.load(directory)
