"""The exact base draw's cost (issue #20): GaussianLatticeBase.sample of 1000 configurations at 16x16.

A Gaussian and a mixture (m0 = 0.9) base with a random symmetric precision, 7 repeats of 10 calls, microseconds per
configuration (median, min, max). JSON of the change: base_draw_16x16.json.
"""

import time

import jax
import numpy as np

from pikflow.flow import GaussianLatticeBase

rng = np.random.default_rng(0)
K = 0.5 + rng.random((16, 16))
K = 0.5 * (K + np.roll(np.flip(K), 1, (0, 1)))
for m0 in (0.0, 0.9):
    base = GaussianLatticeBase(K, m0=m0)
    jax.block_until_ready(base.sample(jax.random.PRNGKey(3), 1000))
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(10):
            out = base.sample(jax.random.PRNGKey(3), 1000)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t0) / 10 / 1000 * 1e6)
    print(m0, round(float(np.median(times)), 2), round(min(times), 2), round(max(times), 2))
