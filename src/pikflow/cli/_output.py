"""The output directory of ``pikflow run``, written atomically.

A run writes its flow, plots and ``results.json`` into a hidden staging directory inside
``--out`` (``.pikflow-run.tmp-*``); :meth:`RunOutput.commit` then removes the previous
``results.json``, renames the new flow and plots into place and renames ``results.json``
last. ``results.json`` marks a complete output: a run killed at any point leaves either
the previous complete output (killed before the commit) or no ``results.json`` (killed
during it), never a half-written file. The next run removes the hidden leftovers.

``.pikflow-output.json`` lists what the run wrote; the next commit into the same ``--out``
removes what the previous run wrote and this one does not (a scan run after a 0-D run does
not leave the old flow and plots beside its ``results.json``). Other files are not touched.

A run holds an advisory lock on ``--out`` (``.pikflow-run.lock``, :func:`fcntl.flock`) from its start to its
commit: a second run into the same ``--out`` is refused at once instead of removing the first one's staging
directory or, at its commit, the files the first one wrote. The lock goes with the process, so a killed run
leaves none behind. (Where :mod:`fcntl` is missing, on Windows, or the file system has no ``flock``, some NFS
and Lustre mounts, there is no lock.)
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import tempfile

from .._atomic import clean_stale, describe_os_error, replace_directory
from .._devices import is_main_process
from .._errors import OutputError

_STAGE = "pikflow-run"
#: What the last committed run wrote into ``--out`` (names), so that the next one can remove what it does not write.
_MANIFEST = ".pikflow-output.json"
#: The advisory lock of a run on its ``--out``.
_LOCK = ".pikflow-run.lock"
#: The staging directories of runs not yet committed or discarded, and each run's lock (its file descriptor, or None).
_PENDING: dict[pathlib.Path, int | None] = {}


class RunOutput:
    """A staging directory in ``out`` (``self.stage``) for one run; :meth:`commit` puts its content in place.

    Raises :class:`OutputError` if ``out`` cannot be created or written.
    """

    def __init__(self, out: str | pathlib.Path):
        self.out = pathlib.Path(out)
        #: only process 0 of a multi-process run writes ``out``; the others stage privately and discard
        self.writes = is_main_process()
        if not self.writes:
            self.stage = pathlib.Path(tempfile.mkdtemp(prefix=f"{_STAGE}-process-"))
            _PENDING[self.stage] = None
            return
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            lock = _lock(self.out)  # before the leftovers are removed: they may be another run's
            try:
                clean_stale(self.out, _STAGE)
                self.stage = pathlib.Path(tempfile.mkdtemp(prefix=f".{_STAGE}.tmp-", dir=self.out))
            except BaseException:
                if lock is not None:
                    os.close(lock)
                raise
        except OSError as err:
            raise OutputError(f"cannot write the output directory {self.out}: {describe_os_error(err)}") from None
        _PENDING[self.stage] = lock

    def commit(self) -> None:
        """Move the staged files into ``out``: old ``results.json`` removed first, the new one renamed last."""
        if not self.writes:
            self.discard()
            return
        try:
            names = sorted(p.name for p in self.stage.iterdir())
            previous = _previous_names(self.out)
            with contextlib.suppress(FileNotFoundError):
                (self.out / "results.json").unlink()
            for name in names:
                if name == "results.json":
                    continue
                src, dst = self.stage / name, self.out / name
                if src.is_dir():
                    replace_directory(src, dst)
                else:
                    os.replace(src, dst)
            for name in previous - set(names):  # the previous run's, not rewritten: stale
                stale = self.out / name
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        stale.unlink()
            (self.out / _MANIFEST).write_text(json.dumps({"names": names}))
            if "results.json" in names:
                os.replace(self.stage / "results.json", self.out / "results.json")
        except OSError as err:
            raise OutputError(f"cannot write the output in {self.out}: {describe_os_error(err)}") from None
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the staging directory (a failed run leaves the previous output as it was)."""
        _forget(self.stage)


def _lock(out: pathlib.Path) -> int | None:
    """An exclusive advisory lock on ``out`` (its file descriptor), or :class:`OutputError` if a run holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here
        return None
    fd = os.open(out / _LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # held by another process
        os.close(fd)
        raise OutputError(
            f"another pikflow run is writing into {out} (it holds {out / _LOCK}): wait for it to end, or give this "
            "run another --out"
        ) from None
    except OSError:  # a file system without flock (ENOLCK, ENOSYS: some NFS and Lustre mounts): no lock
        os.close(fd)
        return None
    return fd


def _forget(stage: pathlib.Path) -> None:
    """Remove a run's staging directory and release its lock (closing the descriptor releases the flock)."""
    shutil.rmtree(stage, ignore_errors=True)
    fd = _PENDING.pop(stage, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _previous_names(out: pathlib.Path) -> set[str]:
    """The names the previous run committed into ``out`` (:data:`_MANIFEST`), plain names only."""
    try:
        names = json.loads((out / _MANIFEST).read_text())["names"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    if not isinstance(names, list):
        return set()
    return {n for n in names if isinstance(n, str) and n and "/" not in n and "\\" not in n and n not in (".", "..")}


def discard_pending() -> None:
    """Remove the staging directories of runs that did not commit (called when ``pikflow`` exits)."""
    for stage in list(_PENDING):
        _forget(stage)
