"""``pikflow.load``: read any saved flow, of any field space.

Every flow is saved the same way (version 2 of the one format): a directory written
atomically, with ``flow.json`` (``"format": "pikflow-flow"``, the version, the pikflow
version that wrote it, the field ``space`` and the metadata), ``arrays.npz`` (every array)
and ``manifest.json`` (SHA-256 of each file, checked on load). ``flow.json``'s ``space``
says which reader rebuilds it: ``"zero-dim"`` (:meth:`pikflow.Flow.load`) or ``"lattice"``
(:func:`pikflow.lattice.load_lattice_flow`). :func:`load` dispatches on it
(:meth:`pikflow.flow.AbstractFlow.load`; each space registers its reader with
:func:`pikflow.flow.register_flow_format`), so scripts need not know which space a flow lives
in. Version 1 directories (0-D: ``kernels.eqx``; lattices: ``"pikflow-lattice-flow"``) are
still read.
"""

from __future__ import annotations

import os

__all__ = ["load"]


def load(directory: str | os.PathLike):
    """Read a flow saved by :meth:`pikflow.Flow.save` or :meth:`pikflow.flow.LatticeFlow.save`.

    Returns a :class:`pikflow.Flow` (0-D) or a :class:`pikflow.flow.LatticeFlow`, as
    ``flow.json`` says (both are :class:`pikflow.AbstractFlow`); each gives the same samples as
    the flow that was saved for the same seed. A missing, damaged or foreign directory raises
    :class:`~pikflow.FlowFileError` saying what to do.
    """
    from .flow import AbstractFlow

    return AbstractFlow.load(directory)
