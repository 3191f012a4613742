"""Lattice-shaped draws are drawn flat and reshaped (:mod:`pikflow._random`): the same numbers as JAX's own."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pikflow import _random


@pytest.mark.parametrize("shape", [(7, 4, 4), (3, 2, 5, 6), (11,), (2, 1, 3)])
@pytest.mark.parametrize("dtype", [None, jnp.float32])
def test_flat_draws_are_jax_draws_bit_for_bit(shape, dtype):
    key = jax.random.fold_in(jax.random.PRNGKey(12), 3)
    for ours, theirs in ((_random.normal, jax.random.normal), (_random.uniform, jax.random.uniform)):
        a = ours(key, shape, dtype)
        b = theirs(key, shape) if dtype is None else theirs(key, shape, dtype)
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_flat_draws_under_jit_and_vmap_and_typed_keys():
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    a = jax.jit(jax.vmap(lambda k: _random.normal(k, (4, 6))))(keys)
    b = jax.vmap(lambda k: jax.random.normal(k, (4, 6)))(keys)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    key = jax.random.key(9)  # a typed key
    assert np.array_equal(np.asarray(_random.normal(key, (2, 3, 3))), np.asarray(jax.random.normal(key, (2, 3, 3))))
