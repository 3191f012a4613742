"""HMC's trajectory length for a lattice reference: the number of leapfrog steps that gives the most
independent samples of :math:`|m|` per second (``pikflow bench lattice --leapfrog auto``).

At 16x16 :math:`(m^2, \\lambda) = (-2, 2)` HMC with 30 leapfrog steps a trajectory delivers several times the
independent samples per second of 10 steps, and 20 steps about twice at 64x64 near the critical point (the HMC
guide, "Trajectory length"): a reference with a fixed length flatters any sampler compared with it.
"""

from __future__ import annotations

import time

import numpy as np

#: The lengths a pilot tries (leapfrog steps a trajectory).
PILOT_LENGTHS = (10, 20, 30, 40)


def best_leapfrog(
    target,
    chains: int,
    *,
    lengths=PILOT_LENGTHS,
    gradients: int = 3000,
    seed: int = 0,
    step="auto",
    start=None,
) -> tuple[int, list[dict], float]:
    """A pilot of HMC at every length in ``lengths``: ``(best length, rows, seconds)``.

    Each length runs ``chains`` chains of ``gradients // L`` trajectories (at least 50) after 200 thermalisation
    trajectories (8 blocks of the step's adaptation in :func:`pikflow.lattice.hmc`, which it needs from its start),
    timed on a second call (the first, short, compiles); its rate is ``chains * n / (2 tau_int)`` over the timed
    call's production share (its seconds times ``n / (n + 200)``), with
    :math:`\\tau_{\\rm int}` of :math:`|m|` from the chains as the Gamma method's replica. The best length has the
    highest rate; ``seconds`` is the whole pilot's wall time, compilation included (HMC's tuning cost).
    """
    import jax

    import pikflow.lattice as pl

    from ..diagnostics import gamma_method
    from ._common import abs_m

    volume = int(np.prod(target.lattice.shape))
    rows, t_start = [], time.perf_counter()
    for L in lengths:
        per, therm = max(gradients // L, 50), 200
        kw = dict(n_chains=chains, step=step, n_leapfrog=int(L), start=start, keep="magnetisation")
        key = jax.random.PRNGKey(seed + 31 * int(L))
        pl.hmc(target, key, 25 * chains, n_therm=25, **kw)  # compiles this length's trajectories
        t0 = time.perf_counter()
        M, acc = pl.hmc(target, key, per * chains, n_therm=therm, **kw)
        seconds = time.perf_counter() - t0
        g = gamma_method(abs_m(M, volume))
        rate = chains * per / (2 * g.tau_int) / (seconds * per / (per + therm))
        rows.append({"leapfrog": int(L), "tau_int_abs_m": g.tau_int, "acceptance": float(acc),
                     "seconds": seconds, "independent_per_second": rate})  # fmt: skip
    best = max(rows, key=lambda r: r["independent_per_second"])["leapfrog"]
    return best, rows, time.perf_counter() - t_start
