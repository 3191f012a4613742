"""Per-layer checkpoints of a solve: a killed solve resumes where it stopped and gives the same flow bit for bit.

A checkpoint directory holds ``checkpoint.json`` (the format and the fingerprint of the
solve) and one ``layer-NNNNN.npz`` per finished layer, each written atomically
(:func:`~pikflow._atomic.write_bytes_atomic`): a kill leaves every file either complete or
absent. A layer's file holds its coefficients (or serialised kernel), its report and, at
the end of an RK4 step, whatever the next step needs (the pushed collocation points). A
rerun with the same fingerprint loads the finished layers instead of solving them; every
later layer sees exactly the arrays an uninterrupted solve would have seen, so the flow is
bit-identical. Each layer file carries the SHA-256 of its arrays: a truncated, damaged or
altered file is solved again, with a :class:`CheckpointWarning`.

The fingerprint hashes the solve's settings and *probe values*: the path, basis and base
evaluated at fixed points. A checkpoint from a different solve (another config, path,
basis, seed, ...) is **ignored with a** :class:`CheckpointWarning` **and overwritten**: it is
a cache, never an input.
"""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import re
import warnings

import numpy as np

from ._atomic import write_bytes_atomic, write_text_atomic
from ._errors import OutputError, PikflowError

#: The ``format`` tag of ``checkpoint.json``.
FORMAT = "pikflow-checkpoint-2"  # 2: every layer file carries the SHA-256 of its arrays
_LAYER = re.compile(r"layer-(\d{5})\.npz")
_CHECKSUM = "__sha256__"


def _digest(arrays: dict) -> bytes:
    """SHA-256 of a layer's arrays: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.digest()


class CheckpointWarning(UserWarning):
    """A checkpoint directory that belongs to another solve (it is ignored and overwritten)."""


def fingerprint(settings: dict, arrays=()) -> str:
    """SHA-256 of JSON-ready ``settings`` and the exact bytes of ``arrays`` (probe values)."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class LayerCheckpoint:
    """The checkpoint of one solve in ``directory`` (created if missing), for a solve with ``fingerprint``.

    ``load(i)`` returns the arrays of finished layer ``i`` (None if not finished), ``save(i, **arrays)``
    writes them atomically. Raises :class:`OutputError` when the directory cannot be written.
    """

    def __init__(self, directory, fingerprint: str):
        self.directory = pathlib.Path(directory)
        self.fingerprint = fingerprint
        meta_path = self.directory / "checkpoint.json"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
        except OSError as err:
            raise OutputError(f"cannot use the checkpoint directory {self.directory}: {err}") from None
        except (ValueError, UnicodeDecodeError):
            meta = "damaged"
        if meta is not None and meta != {"format": FORMAT, "fingerprint": fingerprint}:
            if meta == "damaged":
                why = "is damaged (checkpoint.json is not JSON)"
            elif isinstance(meta, dict) and meta.get("format") != FORMAT:
                why = f"was written in another checkpoint format ({meta.get('format')!r}, not {FORMAT!r})"
            else:
                why = "belongs to a different solve (another configuration, path, basis, base or seed)"
            warnings.warn(
                f"the checkpoint in {self.directory} {why}: it is ignored and overwritten",
                CheckpointWarning,
                stacklevel=3,
            )
            self.clear()
            meta = None
        elif meta is None and self._layer_files():
            self.clear()  # layer files without the metadata that says whose they are
        if meta is None:
            write_text_atomic(meta_path, json.dumps({"format": FORMAT, "fingerprint": fingerprint}))
        self.resumed = 0

    def _layer_files(self) -> list[pathlib.Path]:
        return sorted(p for p in self.directory.iterdir() if _LAYER.fullmatch(p.name))

    def clear(self) -> None:
        """Remove every layer file."""
        for p in self._layer_files():
            p.unlink(missing_ok=True)

    def load(self, i: int) -> dict | None:
        """The arrays saved for layer ``i``, or None if it is not finished (or its file is unreadable or altered:
        then with a :class:`CheckpointWarning`, and the layer is solved again)."""
        path = self.directory / f"layer-{i:05d}.npz"
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
            ok = _CHECKSUM in out and bytes(out.pop(_CHECKSUM)) == _digest(out)
        except Exception:  # noqa: BLE001  (truncated zip, bad CRC, pickled objects, ...)
            ok = False
        if not ok:
            warnings.warn(
                f"the checkpoint layer {path} is damaged or was altered (its checksum does not match): "
                "that layer is solved again",
                CheckpointWarning,
                stacklevel=3,
            )
            return None
        self.resumed += 1
        return out

    def save(self, i: int, **arrays) -> None:
        """Write layer ``i``'s arrays atomically, with their checksum."""
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        buf = io.BytesIO()
        np.savez(buf, **arrays, **{_CHECKSUM: np.frombuffer(_digest(arrays), dtype=np.uint8)})
        write_bytes_atomic(self.directory / f"layer-{i:05d}.npz", buf.getvalue())


def open_checkpoint(checkpoint, settings: dict, arrays=()) -> LayerCheckpoint | None:
    """A :class:`LayerCheckpoint` in ``checkpoint`` (a path, or None for no checkpoint) for this solve."""
    if checkpoint is None:
        return None
    if not isinstance(checkpoint, (str, pathlib.Path)):
        raise PikflowError(f"checkpoint must be a directory path (or None), got {type(checkpoint).__name__}")
    return LayerCheckpoint(checkpoint, fingerprint(settings, arrays))


__all__ = ["FORMAT", "CheckpointWarning", "LayerCheckpoint", "fingerprint", "open_checkpoint"]
