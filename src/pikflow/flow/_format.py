r"""The one save format of solved flows, for every field space (version 2).

A saved flow is a directory, written atomically (a temporary sibling renamed into place,
:mod:`pikflow._atomic`), holding three files:

* ``flow.json``: ``format = "pikflow-flow"``, ``version``, ``space`` (``"zero-dim"`` or
  ``"lattice"``: which reader rebuilds the flow), ``pikflow_version`` (who wrote it) and
  the space's metadata (the path as text, the basis spec, steps, per-layer reports...);
* ``arrays.npz``: every array of the flow (NumPy's zip of ``.npy`` files, read with
  ``allow_pickle=False``): the kernel coefficients of every layer (eq. 11's stages) and
  the base's and path's numeric parts;
* ``manifest.json``: the SHA-256 and size of both files, verified on load.

Each space keeps its metadata and arrays; this module owns the container: the tag, the
version, the checks on load and the errors that say what to do. :func:`pikflow.load`
reads ``space`` and calls the reader the space registered with :func:`register_flow_format`.

Older layouts are still read: version 1 of 0-D flows (``"format": 1``, the kernels in
``kernels.eqx``, Equinox serialisation) and of lattice flows
(``"format": "pikflow-lattice-flow"``, ``arrays.npz``).
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Mapping

import numpy as np

from .._atomic import atomic_directory, verify_manifest
from .._errors import FlowFileError
from .._version import __version__

#: The ``format`` tag of ``flow.json``.
FORMAT = "pikflow-flow"
#: The version written; :func:`read_flow_directory` reads it and the legacy layouts of :data:`LEGACY`.
VERSION = 2
#: Legacy ``format`` tags (version 1) -> the space they hold.
LEGACY = {1: "zero-dim", "pikflow-lattice-flow": "lattice"}

#: ``space`` -> ``(reader, flow class or None, writer or None)`` (:func:`register_flow_format`).
_FORMATS: dict[str, tuple[Callable, type | None, Callable | None]] = {}


def register_flow_format(
    space: str, reader: Callable, *, cls: type | None = None, writer: Callable | None = None
) -> None:
    """Register how the flows of field space ``space`` are read and, for ``cls``, written.

    :func:`pikflow.load` (and :meth:`AbstractFlow.load`) call ``reader(directory)`` for saved flows whose
    ``flow.json`` has ``space = space`` (``"zero-dim"``: :meth:`pikflow.Flow.load`; ``"lattice"``:
    :func:`pikflow.lattice.load_lattice_flow`). A flow class of this stage whose metadata belongs to its
    space (:class:`LatticeFlow`: :func:`pikflow.lattice.save_lattice_flow`, which writes this format
    through :func:`write_flow_directory`) passes ``cls`` and ``writer``: then ``cls.save`` calls
    ``writer(flow, directory)`` and ``cls.load`` calls ``reader(directory)``, so that this stage imports
    no space.
    """
    if (cls is None) != (writer is None):
        raise TypeError("register_flow_format: give both cls and writer, or neither")
    _FORMATS[space] = (reader, cls, writer)


def flow_io(cls: type) -> tuple[Callable, Callable]:
    """The ``(writer, reader)`` registered for ``cls`` or its nearest base class (:func:`register_flow_format`)."""
    for klass in cls.__mro__:
        for reader, registered, writer in _FORMATS.values():
            if registered is klass:
                return writer, reader
    raise FlowFileError(f"no save format is registered for {cls.__name__}: import pikflow (pikflow.lattice) first")


def reader_for(directory) -> Callable:
    """The registered reader of the flow saved in ``directory`` (the 0-D one, which reports the error, if unknown)."""
    return (_FORMATS.get(saved_space(directory)) or _FORMATS["zero-dim"])[0]


def _meta(directory) -> Mapping | None:
    meta_file = pathlib.Path(directory) / "flow.json"
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, Mapping) else None


def _space_of(meta: Mapping) -> str | None:
    fmt = meta.get("format")
    if fmt == FORMAT:
        space = meta.get("space")
        return space if isinstance(space, str) else None
    if isinstance(fmt, (str, int)) and not isinstance(fmt, bool):
        return LEGACY.get(fmt)
    return None


def saved_space(directory) -> str | None:
    """The field space of the flow saved in ``directory``, or None if there is none to read (the reader says why)."""
    meta = _meta(directory)
    return None if meta is None else _space_of(meta)


def _refuse_foreign(directory, found: str | None, own: str, what: str) -> None:
    """A :class:`FlowFileError` if ``directory`` holds a flow of another registered space (``found``) than ``own``."""
    if found is not None and found != own and found in _FORMATS:
        raise FlowFileError(
            f"{directory} holds a flow of another field space ({found!r}), not {what}: read it with "
            "pikflow.load (or pikflow.flow.AbstractFlow.load), which picks the class from flow.json"
        )


def write_flow_directory(directory, space: str, meta: Mapping, arrays: Mapping[str, np.ndarray]) -> pathlib.Path:
    """Write ``flow.json`` (the header, then ``meta``), ``arrays.npz`` and ``manifest.json`` atomically.

    ``meta`` must be JSON-ready (the caller converts its numbers); an unwritable directory or
    a full disk raises :class:`FlowFileError`.
    """
    header = {"format": FORMAT, "version": VERSION, "space": space, "pikflow_version": __version__}
    text = json.dumps({**header, **meta}, indent=2)
    d = pathlib.Path(directory)
    with atomic_directory(d, error=FlowFileError) as tmp:
        with open(tmp / "arrays.npz", "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
        (tmp / "flow.json").write_text(text)
    return d


def read_flow_directory(directory, space: str, what: str, how: str) -> tuple[dict, dict[str, np.ndarray] | None]:
    """``(meta, arrays)`` of a flow of ``space`` saved in ``directory``, checked, or a :class:`FlowFileError`.

    ``what`` names the flow in messages (``"a 0-D pikflow.Flow"``), ``how`` says how to
    write one again (``"pikflow run CONFIG, or pikflow.solve and Flow.save"``). Checks, in
    order: a directory path; another registered space (the error names :func:`pikflow.load`);
    ``flow.json`` present; ``manifest.json``'s checksums; ``flow.json`` a JSON object of this
    space; the version (a newer one names the pikflow that wrote it); ``arrays.npz`` present
    and readable without pickles.
    ``arrays`` is None for a legacy 0-D flow (its kernels are in ``kernels.eqx``).
    """
    if not isinstance(directory, (str, os.PathLike)):
        raise FlowFileError(f"load needs a directory path, got {type(directory).__name__}: {directory!r}")
    d = pathlib.Path(directory)
    meta = _meta(d)  # read once: the space first, then (after the checksums) the rest
    _refuse_foreign(d, None if meta is None else _space_of(meta), space, what)
    if not (d / "flow.json").is_file():
        raise FlowFileError(f"{d} is not a saved flow: flow.json is missing (write one with {how})")
    verify_manifest(d)
    if meta is None:
        raise FlowFileError(
            f"cannot read the flow in {d}: flow.json is not a JSON object (damaged or not written by pikflow); "
            f"save the flow again ({how})"
        )
    legacy = meta.get("format") != FORMAT
    if _space_of(meta) != space:
        raise FlowFileError(
            f"{d / 'flow.json'} is not a pikflow flow of this kind (format {meta.get('format')!r}, space "
            f"{meta.get('space')!r}); write one with {how}"
        )
    if not legacy and meta.get("version") != VERSION:
        raise FlowFileError(
            f"{d / 'flow.json'} has flow format version {meta.get('version')!r} (written by pikflow "
            f"{meta.get('pikflow_version', '?')}); this pikflow {__version__} reads version {VERSION} and the "
            f"older layouts: load it with the pikflow that wrote it, or solve the flow again ({how})"
        )
    array_file = "kernels.eqx" if legacy and space == "zero-dim" else "arrays.npz"
    if not (d / array_file).is_file():
        raise FlowFileError(f"{d} is not a saved flow: {array_file} is missing (write one with {how})")
    return dict(meta), (None if array_file == "kernels.eqx" else _read_arrays(d, meta, how))


def _read_arrays(d: pathlib.Path, meta: Mapping, how: str) -> dict[str, np.ndarray]:
    try:
        with np.load(d / "arrays.npz", allow_pickle=False) as npz:
            return {k: np.asarray(npz[k]) for k in npz.files}
    except Exception as err:  # not a zip, truncated, bad CRC, pickled objects
        raise FlowFileError(
            f"cannot read the flow in {d}: {d / 'arrays.npz'} is corrupt or truncated, or was not written "
            f"by pikflow (flow.json says pikflow {meta.get('pikflow_version', '?')}; this is {__version__}): "
            f"{type(err).__name__}: {err}. The files are damaged or incomplete: solve the flow again ({how})"
        ) from None
