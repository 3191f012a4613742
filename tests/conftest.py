"""Shared test fixtures. Importing pikflow enables float64 (``jax_enable_x64``).

Most of the suite's time is XLA compilation, and many tests (and the ``pikflow`` subprocesses
that the CLI tests start) compile the same programs again. A JAX persistent compilation cache,
fresh for each test session and removed at its end, is shared by the xdist workers and their
subprocesses (through ``JAX_COMPILATION_CACHE_DIR``, set before any of them starts): a program
is compiled once per session. A size limit turns on JAX's file lock, so a process never reads
an entry another one is still writing. A cache directory set by the caller is used as it is.
"""

import itertools
import os
import shutil
import tempfile

_OWN_CACHE = "PIKFLOW_TEST_JAX_CACHE_OWNER"
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # the session's first process (xdist: the controller)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="pikflow-test-jax-cache-")
    os.environ[_OWN_CACHE] = str(os.getpid())
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # most programs compile in < 1 s
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(8 << 30))  # > 0: reads and writes take a file lock

import jax  # noqa: E402  (reads the JAX_* variables above)
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

import pikflow  # noqa: E402, F401  (enables float64 before any array is made)

# the same settings in case jax was imported before this file
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update(
    "jax_persistent_cache_min_compile_time_secs", float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"])
)
jax.config.update(
    "jax_persistent_cache_min_entry_size_bytes", int(os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"])
)
jax.config.update("jax_compilation_cache_max_size", int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]))


def pytest_unconfigure(config):
    """The process that made the session's compilation cache removes it."""
    if os.environ.get(_OWN_CACHE) == str(os.getpid()):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


@pytest.fixture
def getkey():
    """A function returning a fresh JAX PRNG key on every call (deterministic per test)."""
    base = jax.random.PRNGKey(0)
    counter = itertools.count()
    return lambda: jax.random.fold_in(base, next(counter))


# Hypothesis (tests/test_fuzz.py): reproducible, no example database, no per-example deadline (the
# first examples include SymPy and JAX imports); each test sets max_examples. HYPOTHESIS_PROFILE=fuzz-long
# multiplies the examples by 20 for a longer, randomised hunt (not part of the default run).
settings.register_profile(
    "pikflow", deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile(
    "fuzz-long", deadline=None, derandomize=False, suppress_health_check=list(HealthCheck), max_examples=20000
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "pikflow"))
