"""Shared test fixtures. Importing pikflow enables float64 (``jax_enable_x64``)."""

import itertools
import os

import jax
import pytest
from hypothesis import HealthCheck, settings

import pikflow  # noqa: F401  (enables float64 before any array is made)


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
