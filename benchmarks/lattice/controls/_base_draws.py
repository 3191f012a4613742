"""The base draws behind a lattice flow's samples, regenerated for functions of them that are not recorded."""

import jax
import numpy as np


def base_draws(base, seed: int, n: int, batch: int = 1000):
    """Yield, batch by batch, the base draws of ``flow.sample(n, seed=seed, batch=batch)`` (the same keys)."""
    key = jax.random.PRNGKey(seed)
    for i, start in enumerate(range(0, n, batch)):
        x0, _ = base.sample(jax.random.fold_in(key, i), min(batch, n - start))
        yield np.asarray(x0)
