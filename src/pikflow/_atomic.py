"""Atomic output: files and directories written under a temporary name and renamed into place.

A process killed at any point leaves either the previous complete file (or directory)
or none, never a half-written one: the content goes to a hidden sibling
(``.NAME.tmp-*``), is flushed to disk, and ``os.replace`` (atomic on POSIX within one
file system) puts it in place. Saved flows carry a manifest (``manifest.json``: the
SHA-256 of every file) that :func:`verify_manifest` checks on load.

Failures to write (an unwritable directory, a full disk) raise :class:`OutputError`
naming the path and what to change; the temporary files are removed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator

from ._errors import FlowFileError, OutputError

#: Name of the checksum manifest inside a saved flow directory.
MANIFEST = "manifest.json"
#: Files of saved flows (0-D and lattice): a directory holding only these is replaced as a whole.
FLOW_FILES = frozenset({"flow.json", "kernels.eqx", "arrays.npz", MANIFEST})
#: The ``format`` tag of the manifest.
MANIFEST_FORMAT = "pikflow-manifest"


def describe_os_error(err: OSError) -> str:
    """A short reason for a failed write, with what to change."""
    if err.errno == errno.ENOSPC:
        return "the disk is full: free some space or write elsewhere (--out)"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied (or a read-only file system): choose a writable directory (--out)"
    if err.errno in (errno.EEXIST, errno.ENOTDIR):
        return "a file of that name is in the way (a directory is needed): remove it or choose another --out"
    return f"{err.strerror or err}"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: pathlib.Path) -> None:
    with contextlib.suppress(OSError):  # some file systems do not support fsync on directories
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: str | pathlib.Path, data: bytes) -> pathlib.Path:
    """Write ``data`` to ``path`` through a temporary sibling and a rename (raises :class:`OutputError`)."""
    path = pathlib.Path(path)
    tmp = None
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
        tmp = pathlib.Path(name)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        raise OutputError(f"cannot write {path}: {describe_os_error(err)}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return path


def write_text_atomic(path: str | pathlib.Path, text: str) -> pathlib.Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def save_figure(fig, path: str | pathlib.Path, **kwargs) -> pathlib.Path:
    """``fig.savefig`` into a temporary sibling, then rename (raises :class:`OutputError`)."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        fig.savefig(tmp, **kwargs)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(f"cannot write {path}: {describe_os_error(err)}") from None
    return path


def replace_directory(src: pathlib.Path, dst: pathlib.Path) -> None:
    """Put the complete directory ``src`` at ``dst``, replacing what is there (two renames, then a delete).

    A kill between the renames leaves ``dst`` absent (the old one under a hidden
    ``.NAME.old-*`` name, removed by the next :func:`clean_stale`), never mixed.
    """
    old = None
    if dst.exists() or dst.is_symlink():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
    os.replace(src, dst)
    _fsync(dst.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def clean_stale(directory: pathlib.Path, name: str) -> None:
    """Remove the hidden leftovers (``.NAME.tmp-*``, ``.NAME.old-*``) of writes killed in ``directory``."""
    if not directory.is_dir():
        return
    for p in directory.glob(f".{name}.*"):
        if ".tmp-" in p.name or ".old-" in p.name:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    p.unlink()


@contextlib.contextmanager
def atomic_directory(directory: str | pathlib.Path, error=OutputError) -> Iterator[pathlib.Path]:
    """Yield a fresh temporary directory next to ``directory``; on success it replaces ``directory``.

    On an exception (or a kill) the temporary directory is removed (or left hidden, to be
    removed by the next write) and ``directory`` keeps its previous content. An
    :class:`OSError` becomes ``error`` with the reason. A ``directory`` that holds other
    files as well is not replaced: the new files are renamed into it one by one, the
    manifest first, so that a kill part-way leaves files that fail their checksums.
    """
    d = pathlib.Path(directory)
    tmp = None
    try:
        d.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(d.parent, d.name)
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{d.name}.tmp-", dir=d.parent))
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; a saved flow gets the usual permissions
        yield tmp
        write_manifest(tmp)
        ours = {p.name for p in tmp.iterdir()}
        theirs = {p.name for p in d.iterdir() if not p.name.startswith(".")} if d.is_dir() else set()
        if theirs - ours - FLOW_FILES:  # other files live there too: replace ours one by one, never the directory
            os.replace(tmp / MANIFEST, d / MANIFEST)  # first: until every file is in, the checksums fail
            for name in sorted(ours - {MANIFEST}):
                os.replace(tmp / name, d / name)
            _fsync(d)
        else:
            replace_directory(tmp, d)
            tmp = None
    except OSError as err:
        raise error(f"cannot write {d}: {describe_os_error(err)}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(directory: pathlib.Path) -> None:
    """Write ``manifest.json``: the SHA-256 and size of every other file in ``directory``."""
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.name != MANIFEST)
    manifest = {
        "format": MANIFEST_FORMAT,
        "files": {p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in files},
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))


def verify_manifest(directory: str | pathlib.Path) -> bool:
    """Check every file listed in ``manifest.json``; raise :class:`FlowFileError` on a mismatch.

    Returns ``False`` for a directory without a manifest (written before checksums were
    added), ``True`` when every checksum matches.
    """
    d = pathlib.Path(directory)
    m = d / MANIFEST
    if not m.is_file():
        return False
    try:
        manifest = json.loads(m.read_text())
        files = manifest["files"]
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
            raise ValueError("not a pikflow manifest")
        entries = [(str(name), str(e["sha256"]), int(e["bytes"])) for name, e in files.items()]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise FlowFileError(f"{m} is damaged ({type(err).__name__}: {err}): save the flow again") from None
    for name, sha, size in entries:
        p = d / name
        if pathlib.Path(name).name != name or not p.is_file():
            raise FlowFileError(f"{d} is incomplete: {name} (listed in {MANIFEST}) is missing: save the flow again")
        if p.stat().st_size != size or _sha256(p) != sha:
            raise FlowFileError(
                f"{p} does not match its checksum in {MANIFEST} (the file was changed, truncated or damaged "
                "after it was saved): save the flow again"
            )
    return True
