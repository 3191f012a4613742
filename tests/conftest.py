"""Shared test fixtures. Importing pikflow enables float64 (``jax_enable_x64``)."""

import itertools

import jax
import pytest

import pikflow  # noqa: F401  (enables float64 before any array is made)


@pytest.fixture
def getkey():
    """A function returning a fresh JAX PRNG key on every call (deterministic per test)."""
    base = jax.random.PRNGKey(0)
    counter = itertools.count()
    return lambda: jax.random.fold_in(base, next(counter))
