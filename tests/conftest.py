"""Shared test fixtures. Importing pikflow enables float64 (``jax_enable_x64``)."""

import gc
import itertools
import os
import shutil
import tempfile

# The tests are compile-bound: hundreds of small XLA programs, each run briefly. With XLA's LLVM back end at
# optimisation level 0 they take ~30% less CPU time on 2 cores (measured per file: tests/test_pipeline.py and
# tests/test_zoo.py 315 -> 226 s; the whole run 27:47 against 34:00 on another machine). The programs are the
# same; float64 results may differ in the last bits from the default level, which no test compares against.
# Set before JAX starts its backend, and inherited by the CLI subprocesses of the tests.
# PIKFLOW_TEST_XLA_DEFAULT=1 tests at XLA's default level instead.
if not os.environ.get("PIKFLOW_TEST_XLA_DEFAULT") and "xla_backend_optimization_level" not in os.environ.get(
    "XLA_FLAGS", ""
):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

# numpy's OpenBLAS starts a thread per core in every pytest-xdist worker, so on 2 cores with 2 workers its small
# factorisations fight for the cores: a least-squares fit of 2000 x 20 took 2-5 ms against 0.4 ms on one thread,
# and the controlled estimates' jackknife runs 21 of them per observable. One thread per worker (inherited by
# the workers, set before they import numpy). OpenBLAS's blocked factorisations may round differently in the last
# bits with another thread count; no test compares across thread counts.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

# `pikflow run` keeps its XLA compilations in ~/.cache/pikflow/jax by default; the tests' in-process runs do not
# (they would fill a user's cache with optimisation-level-0 programs). tests/test_compilation_cache.py sets its own.
os.environ.setdefault("PIKFLOW_CACHE_DIR", "off")

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

import pikflow  # noqa: F401  (enables float64 before any array is made)

# Many tests compile the same XLA programs (the modules' programs are released after each module, below, and
# the two pytest-xdist workers compile apart). One persistent compilation cache per run, shared by the
# workers (the controller makes it before they start, and they inherit its path) and removed at the end,
# lets a program compiled once be loaded elsewhere. PIKFLOW_TEST_JAX_CACHE=off: no cache.
_CACHE_ENV = "PIKFLOW_TEST_JAX_CACHE"
_OWN_CACHE = None  # the directory this process made (and removes at the end), if any
if os.environ.get(_CACHE_ENV, "").lower() != "off":
    if not os.environ.get(_CACHE_ENV):
        os.environ[_CACHE_ENV] = tempfile.mkdtemp(prefix="pikflow-test-jax-cache-")
        _OWN_CACHE = os.environ[_CACHE_ENV]
    jax.config.update("jax_compilation_cache_dir", os.environ[_CACHE_ENV])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_sessionfinish(session):
    """The process that made the run's compilation cache removes it (the controller, or a run without xdist)."""
    if _OWN_CACHE and not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


# Every compiled XLA program keeps a few memory mappings (about 3 on CPU) while JAX's caches hold it. One
# pytest-xdist worker runs ~340 tests and reached 14,000 mappings in 3 minutes of tests: over a whole run it
# comes near Linux's limit of 65,530 per process (vm.max_map_count), where mmap fails and XLA's compiler
# segfaults in backend_compile_and_load (a CI run died that way in its last test; with the limit lowered to
# 3,000, a loop of small jitted functions reproduces that crash and its stack). So the programs are released
# after every test module, and after any test that leaves more than _MAX_MAPPINGS. Within a test nothing
# changes.
_MAX_MAPPINGS = 20_000


def _mappings() -> int:
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux: no such limit to watch
        return 0


def _release():
    jax.clear_caches()
    gc.collect()


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    yield
    _release()


@pytest.fixture(autouse=True)
def _bounded_mappings():
    yield
    if _mappings() > _MAX_MAPPINGS:
        _release()


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


# The longest test files first (pytest-xdist hands out whole files, ``--dist loadfile``, in collection
# order): on 2 workers a long file collected last would run alone at the end. Measured per-file times on
# 2 cores, longest first; files not listed keep their order after these. Order only, never selection.
_LONGEST_FIRST = (
    "test_lattice.py",
    "test_zoo.py",
    "test_holes.py",
    "test_scaleout.py",
    "test_refine.py",
    "test_pipeline.py",
    "test_lattice_cli.py",
    "test_level_flow.py",
    "test_reliability.py",
    "test_smc.py",
    "test_radial.py",
    "test_lattice_on.py",
    "test_smc_cli.py",
    "test_resume.py",
    "test_one_interface.py",
    "test_solvers.py",
    "test_hmc.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
