"""Random draws of many-axis shapes, drawn flat and reshaped: the same numbers, compiled faster.

``jax.random.normal(key, (n, 16, 16))`` and ``jax.random.normal(key, (n * 256,)).reshape(n, 16, 16)`` are the
same numbers bit for bit (the random bits of an element follow its row-major index), but XLA's CPU back end
compiles the flat draw about 4 times faster (0.17 against 0.65-0.75 s at ``(1000, 16, 16)``) and runs it no
slower. Every lattice-shaped draw of pikflow (base samples, HMC starts and momenta, Langevin noise,
cluster bonds) goes through these two functions.
"""

from __future__ import annotations

import math

import jax


def _flat(shape) -> tuple[tuple[int, ...], int]:
    shape = tuple(int(s) for s in shape)
    return shape, math.prod(shape)


def normal(key, shape, dtype=None):
    """``jax.random.normal(key, shape, dtype)``, the same numbers, drawn as one flat axis."""
    shape, size = _flat(shape)
    return jax.random.normal(key, (size,), dtype).reshape(shape)


def uniform(key, shape, dtype=None):
    """``jax.random.uniform(key, shape, dtype)`` on [0, 1), the same numbers, drawn as one flat axis."""
    shape, size = _flat(shape)
    return jax.random.uniform(key, (size,), dtype).reshape(shape)
