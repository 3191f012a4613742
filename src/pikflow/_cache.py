"""A persistent cache of XLA compilations, so that a second run skips most of its tracing and compiling.

JAX keeps compiled executables on disk when ``jax_compilation_cache_dir`` is set
(JAX's persistent compilation cache). A lattice flow's set-up compiles a handful of
functions whose shapes depend only on the lattice, the basis structure and the step count
(the basis's numbers are arguments, see the guide's lattice page), so a second run of the same
kind of problem finds them on disk: at 16x16 the fit took 3.7 s instead of 11.6 s and the first
sampling call 0.4 s instead of 2.1 s, with the same samples (the same executables); the built-in
examples ``phi4-lattice-8x8`` and ``phi4-0d`` ran in 17.6 s and 16.1 s instead of 33.0 s and 23.5 s
(a loaded 2-core machine). Each new kind of problem adds 1-4 MB to the directory, which is not
pruned (JAX's size limit needs the ``filelock`` package): delete it to start afresh.

``pikflow run`` uses the cache by default (``--cache DIR``, ``PIKFLOW_CACHE_DIR``; ``off`` disables
it); from Python, call :func:`compilation_cache` before the first solve.
"""

from __future__ import annotations

import os
import pathlib
import warnings

import jax

#: the environment variable naming the cache directory (``off``: no cache).
ENV = "PIKFLOW_CACHE_DIR"


def default_cache_dir() -> pathlib.Path | None:
    """``$PIKFLOW_CACHE_DIR`` (``None`` if ``off``), else ``$XDG_CACHE_HOME/pikflow/jax``, ``~/.cache/pikflow/jax``."""
    given = os.environ.get(ENV)
    if given is not None:
        return None if given.strip().lower() in ("off", "none", "") else pathlib.Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "pikflow" / "jax"


def compilation_cache(directory: str | os.PathLike | None = None) -> pathlib.Path | None:
    """Keep XLA compilations in ``directory`` (default :func:`default_cache_dir`); returns it, or ``None``.

    Every compilation is kept, however short (``jax_persistent_cache_min_compile_time_secs = 0``:
    a flow's functions compile in 0.1-3 s each). Call it before the first solve or sample of the
    process: JAX fixes its cache when it first compiles. A directory that cannot be created gives
    a warning and no cache, never an error: the run is the same without it, only slower to start.
    """
    path = default_cache_dir() if directory is None else pathlib.Path(directory).expanduser()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        warnings.warn(f"no compilation cache ({path}: {err}); set {ENV}=off to silence this", stacklevel=2)
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
