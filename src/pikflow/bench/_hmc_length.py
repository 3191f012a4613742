"""HMC's trajectory length for a lattice reference: the number of leapfrog steps that gives the most
independent samples of :math:`|m|` per second (``pikflow bench lattice --leapfrog auto``).

At 16x16 :math:`(m^2, \\lambda) = (-2, 2)` HMC with 30 leapfrog steps a trajectory delivers several times the
independent samples per second of 10 steps, and 20 steps about twice at 64x64 near the critical point (the HMC
guide, "Trajectory length"): a reference with a fixed length flatters any sampler compared with it.
"""

from __future__ import annotations

import time
import warnings

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


def batched_points(path, ts, *, chains, per, leapfrog, seed, therm=200, start=None, fill=False, progress=False):
    """Batched HMC (:func:`pikflow.baselines.hmc_points`) at the path's times ``ts``, ``leapfrog`` steps a trajectory:
    one number, or one per point.

    The points of one length run together, in batches of as many points as fill HMC's cheapest batch of chains at
    this volume (``--chains auto``'s); with ``fill`` a length with few points gives each more chains so that they fill
    it too (a narrow batch costs more per chain). ``start(t, chains)``: the chains' first configurations at ``t``.
    Returns a dict: ``M`` (per point, the magnetisation sums ``(chains_p, per)``), ``step_size``, ``acceptance``,
    ``chains`` and ``seconds`` per point (its batch's sampling time shared by the batch's points; compilation and
    thermalisation excluded), ``leapfrog`` per point, ``batches`` (``[length, points]`` of each batch) and
    ``sample_seconds`` (all batches).
    """
    from ..baselines import hmc_points
    from ._common import cheapest_chains

    P, volume = len(ts), int(np.prod(path.lattice.shape))
    lengths = [int(x) for x in np.broadcast_to(np.asarray(leapfrog, dtype=int), (P,))]
    out = {key: [None] * P for key in ("M", "step_size", "acceptance", "chains", "seconds")}
    out.update(leapfrog=lengths, batches=[], sample_seconds=0.0)
    for L in sorted(set(lengths)):
        idx = [p for p in range(P) if lengths[p] == L]
        c = max(chains, cheapest_chains(volume) // len(idx)) if fill else chains
        group = max(1, cheapest_chains(volume) // c)
        for g0 in range(0, len(idx), group):
            part = idx[g0 : g0 + group]
            init = None if start is None else np.stack([start(ts[p], c) for p in part])
            run = hmc_points(
                path, [ts[p] for p in part], n=per, chains=c, seed=seed + part[0], init=init, n_leapfrog=L,
                keep=lambda x, t: x.sum()[None], thermalisation=therm, progress=progress,
            )  # fmt: skip
            for j, p in enumerate(part):
                out["M"][p] = run.positions[j, ..., 0]
                out["step_size"][p] = float(run.step_size[j])
                out["acceptance"][p] = float(run.acceptance[j])
                out["chains"][p] = c
                out["seconds"][p] = run.seconds_per_point
            out["batches"].append([L, len(part)])
            out["sample_seconds"] += run.sample_seconds
    return out


def best_leapfrog_points(path, ts, *, chains, lengths=PILOT_LENGTHS, gradients=5000, seed=0, therm=200, start=None):
    """A pilot of :func:`batched_points` at every length of ``lengths``, all points at once:
    ``(best length per point, rows, seconds)``.

    Each length runs ``chains`` chains a point of ``gradients // L`` trajectories (at least 50); a point's rate at
    that length is ``chains * n / (2 tau_int)`` of :math:`|m|` (the chains as replica) over the point's sampling
    seconds. Each point keeps its highest rate: far from the transition one trajectory of 10 steps already
    decorrelates :math:`|m|`, near it longer trajectories pay (the HMC guide, "Trajectory length"). ``rows``: per
    length, the points' ``tau_int_abs_m`` and ``independent_per_second``; ``seconds``: the whole pilot's wall time
    (compilation and thermalisation included).
    """
    from ..diagnostics import gamma_method

    volume = int(np.prod(path.lattice.shape))
    rows, t_start = [], time.perf_counter()
    for L in lengths:
        per = max(int(gradients) // int(L), 50)
        r = batched_points(path, ts, chains=chains, per=per, leapfrog=L, seed=seed + 7919 * int(L), therm=therm,
                           start=start)  # fmt: skip
        with warnings.catch_warnings():  # a pilot's short chains may stop the window early: tau is only compared
            warnings.simplefilter("ignore")
            taus = [gamma_method(np.abs(M) / volume).tau_int for M in r["M"]]
        rates = [c * per / (2 * tau) / s for c, tau, s in zip(r["chains"], taus, r["seconds"], strict=True)]
        rows.append({"leapfrog": int(L), "trajectories_per_chain": per, "tau_int_abs_m": taus,
                     "independent_per_second": rates, "acceptance": r["acceptance"]})  # fmt: skip
    rates = np.array([row["independent_per_second"] for row in rows])
    best = [int(lengths[i]) for i in np.argmax(rates, axis=0)]
    return best, rows, time.perf_counter() - t_start
