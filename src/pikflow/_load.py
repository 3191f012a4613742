"""``pikflow.load``: read any saved flow, of any field space.

Every flow is saved the same way: a directory written atomically, with ``flow.json``
(metadata, a ``format`` tag and version, the pikflow version that wrote it), the arrays,
and ``manifest.json`` (SHA-256 of each file, checked on load). ``flow.json``'s ``format``
says which reader rebuilds it: ``1`` (0-D, :meth:`pikflow.Flow.load`: ``kernels.eqx``) or
``"pikflow-lattice-flow"`` (lattices, :func:`pikflow.lattice.load_lattice_flow`:
``arrays.npz``). :func:`load` dispatches on it, so scripts need not know which space a flow
lives in.
"""

from __future__ import annotations

import json
import os
import pathlib

from ._errors import FlowFileError

__all__ = ["load"]


def load(directory: str | os.PathLike):
    """Read a flow saved by :meth:`pikflow.Flow.save` or :meth:`pikflow.lattice.LatticeFlow.save`.

    Returns a :class:`pikflow.Flow` (0-D) or a :class:`pikflow.lattice.LatticeFlow`, as
    ``flow.json`` says; each gives the same samples as the flow that was saved for the same
    seed. A missing, damaged or foreign directory raises :class:`~pikflow.FlowFileError`
    saying what to do.
    """
    if not isinstance(directory, (str, os.PathLike)):
        raise FlowFileError(f"load needs a directory path, got {type(directory).__name__}: {directory!r}")
    meta_file = pathlib.Path(directory) / "flow.json"
    fmt = None
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
            fmt = meta.get("format") if isinstance(meta, dict) else None
        except (OSError, ValueError, UnicodeDecodeError):
            fmt = None  # the reader below reports the damage with its own message
    if fmt == "pikflow-lattice-flow":
        from .lattice import load_lattice_flow

        return load_lattice_flow(directory)
    from .flow import Flow

    return Flow.load(directory)
