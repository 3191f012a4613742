"""HMC's trajectory length for a lattice reference: the number of leapfrog steps that gives the most
independent samples per second (``pikflow bench lattice --leapfrog auto``, ``bench smc`` and ``bench multilevel``
``--hmc-leapfrog auto``), and one per point for the batched reference of a scan (``bench scan-lattice
--hmc-leapfrog auto``: :func:`best_leapfrog_points`, :func:`batched_points`).

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
#: The longest trajectory a pilot extends to when the longest it tried was the best (leapfrog steps).
PILOT_LONGEST = 160


def next_length(L: int) -> int:
    """The length a pilot tries after ``L`` when ``L`` was its best: 1.5 times longer, rounded up to tens."""
    return 10 * int(np.ceil(1.5 * int(L) / 10))


def _extension(last: int, best_is_last: bool, longest) -> int | None:
    """The length to try after ``last`` (:func:`next_length`), or None: the best was shorter, or it would pass
    ``longest``."""
    nxt = next_length(last)
    return nxt if best_is_last and longest is not None and nxt <= longest else None


def best_leapfrog(
    target,
    chains: int,
    *,
    lengths=PILOT_LENGTHS,
    gradients: int = 3000,
    seed: int = 0,
    step="auto",
    start=None,
    longest: int | None = PILOT_LONGEST,
) -> tuple[int, list[dict], float]:
    """A pilot of HMC at every length in ``lengths``: ``(best length, rows, seconds)``.

    Each length runs ``chains`` chains of ``gradients // L`` trajectories (at least 50) after 200 thermalisation
    trajectories (8 blocks of the step's adaptation in :func:`pikflow.lattice.hmc`, which it needs from its start),
    timed on a second call (the first, short, compiles); its rate is ``chains * n / (2 tau_int)`` over the timed
    call's production share (its seconds times ``n / (n + 200)``), with
    :math:`\\tau_{\\rm int}` of :math:`|m|` from the chains as the Gamma method's replica. The best length has the
    highest rate; ``seconds`` is the whole pilot's wall time, compilation included (HMC's tuning cost). Where the
    longest length tried is the best, the pilot goes on with :func:`next_length` (60, 90, 140 after 40) until a length
    is slower or would pass ``longest`` (``None``: only ``lengths``): at 64x64 :math:`(-2, 2)` 40 steps, the longest of
    the four, were the best.
    """

    def row(L):
        return length_row(target, chains, L, per=max(gradients // L, 50), seed=seed + 31 * L, step=step, start=start)

    t_start = time.perf_counter()
    rows = [row(int(L)) for L in lengths]
    while (nxt := _extension(rows[-1]["leapfrog"], _last_is_best([_rate(r) for r in rows]), longest)) is not None:
        rows.append(row(nxt))
    best = max(rows, key=_rate)["leapfrog"]
    return best, rows, time.perf_counter() - t_start


def length_row(target, chains: int, L: int, *, per: int, therm: int = 200, seed: int = 0, step="auto", start=None):
    """One length of a pilot: ``chains`` HMC chains of ``L`` leapfrog steps a trajectory, ``per`` trajectories each
    after ``therm`` of thermalisation, compiled on a short call and timed on the next, as :func:`best_leapfrog`
    describes. A row: ``tau_int_abs_m`` (with its error and whether the Gamma method's window was cut off: a pilot's
    chains are short, its numbers only compared, so the window's warning is silenced), ``acceptance``, ``seconds``,
    ``us_per_trajectory_and_chain`` (thermalisation included) and ``independent_per_second`` of production."""
    import jax

    import pikflow.lattice as pl

    from ..diagnostics import gamma_method
    from ._common import abs_m

    volume = int(np.prod(target.lattice.shape))
    kw = dict(n_chains=chains, step=step, n_leapfrog=int(L), start=start, keep="magnetisation")
    key = jax.random.PRNGKey(seed)
    pl.hmc(target, key, 25 * chains, n_therm=25, **kw)  # compiles this length's trajectories
    t0 = time.perf_counter()
    M, acc = pl.hmc(target, key, per * chains, n_therm=therm, **kw)
    seconds = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = gamma_method(abs_m(M, volume))
    return {
        "leapfrog": int(L),
        "per_chain": int(per),
        "tau_int_abs_m": g.tau_int,
        "tau_int_abs_m_error": g.tau_int_error,
        "truncated": bool(g.truncated),
        "acceptance": float(acc),
        "seconds": seconds,
        "us_per_trajectory_and_chain": seconds / (chains * (per + therm)) * 1e6,
        "independent_per_second": chains * per / (2 * g.tau_int) / (seconds * per / (per + therm)),
    }


def _last_is_best(rates) -> bool:
    """Whether the last of the rates is finite and above every earlier one (ties keep the shorter length)."""
    return bool(np.isfinite(rates[-1]) and rates[-1] > max(rates[:-1], default=-np.inf))


def _rate(row) -> float:
    """A pilot row's independent samples per second, ``-inf`` where it is NaN (never the best)."""
    r = row["independent_per_second"]
    return float(r) if r is not None and np.isfinite(r) else -np.inf


def tuned_leapfrog(setting, target, chains: int, **pilot) -> tuple[int, list[dict] | None, float]:
    """``(length, pilot rows, pilot seconds)`` of a ``--leapfrog`` / ``--hmc-leapfrog`` setting: a number as it is
    (no pilot, 0 s), ``"auto"`` by :func:`best_leapfrog` with ``pilot``'s keywords."""
    if setting == "auto":
        return best_leapfrog(target, chains, **pilot)
    return setting, None, 0.0


def batched_points(path, ts, *, chains, per, leapfrog, seed, therm=200, start=None, fill=False, progress=False):
    """Batched HMC (:func:`pikflow.baselines.hmc_points`) at the path's times ``ts``, ``leapfrog`` steps a trajectory:
    one number, or one per point.

    The points of one length run together, in batches of as many points as fill HMC's cheapest batch of chains at
    this volume (``--chains auto``'s), one batch after another. With ``fill`` each length's points are spread evenly
    over as few batches as hold them, and each batch's points get more chains so that they fill it too (a narrow
    batch costs more per chain); without it every point has ``chains`` and the batches are full ones and a rest, as
    in the scan bench's fixed-length reference. ``start(t, chains)``: the chains' first configurations at ``t``.
    Returns a dict: ``M`` (per point, the magnetisation sums ``(chains_p, per)``), ``step_size``, ``acceptance``,
    ``chains`` and ``seconds`` per point (its batch's sampling time shared by the batch's points; compilation and
    thermalisation excluded), ``leapfrog`` per point, ``batches`` (``[length, points, chains a point]`` of each batch)
    and ``sample_seconds`` (all batches).
    """
    from ..baselines import hmc_points
    from ._common import cheapest_chains

    P, volume = len(ts), int(np.prod(path.lattice.shape))
    lengths = [int(x) for x in np.broadcast_to(np.asarray(leapfrog, dtype=int), (P,))]
    out = {key: [None] * P for key in ("M", "step_size", "acceptance", "chains", "seconds")}
    out.update(leapfrog=lengths, batches=[], sample_seconds=0.0)
    width = cheapest_chains(volume)
    for L in sorted(set(lengths)):
        idx = [p for p in range(P) if lengths[p] == L]
        group = max(1, width // chains)
        if fill:  # as few batches as hold the points, the points spread evenly, each batch filled with chains
            parts = [list(a) for a in np.array_split(idx, -(-len(idx) // group))]
        else:
            parts = [idx[g0 : g0 + group] for g0 in range(0, len(idx), group)]
        for part in parts:
            c = max(chains, width // len(part)) if fill else chains
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
            out["batches"].append([L, len(part), c])
            out["sample_seconds"] += run.sample_seconds
    return out


def linearised_tau(M, volume: int) -> dict:
    r""":math:`\tau_{\rm int}` of the linearised series of :math:`\langle|m|\rangle`, :math:`\chi` and the Binder
    cumulant (:func:`pikflow.lattice.observable_series`: the series whose errors
    :func:`pikflow.lattice.chain_observables` reports) from chains of magnetisation sums ``(chains, n)``, the chains
    as replica; the Gamma method's window warnings of short pilot chains are silenced, the numbers are only compared.

    The three differ: deep in the broken phase a length that decorrelates :math:`|m|` (or makes it alternate about
    its mean) can leave its squared fluctuations, which carry :math:`\chi` and :math:`U`, correlated (tested on such
    a series).
    """
    import pikflow.lattice as pl

    from ..diagnostics import gamma_method

    M = np.asarray(M, dtype=float)
    series = pl.observable_series(M.reshape(-1), volume)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: float(gamma_method(s.reshape(M.shape[0], -1)).tau_int) for k, (_, s) in series.items()}


def best_leapfrog_points(
    path, ts, *, chains, lengths=PILOT_LENGTHS, gradients=5000, seed=0, therm=200, start=None, longest=PILOT_LONGEST
):
    r"""A pilot of :func:`batched_points` at every length of ``lengths``, all points at once:
    ``(best length per point, rows, seconds)``.

    Each length runs ``chains`` chains a point of about ``gradients / L`` trajectories (at least 50, a multiple of
    the 25-trajectory blocks that :func:`pikflow.baselines.hmc_points` runs and times). A point's rate at that length
    is ``chains * n / (2 tau)`` over the point's sampling seconds, with ``tau`` the largest of the
    :math:`\tau_{\rm int}` of :math:`\langle|m|\rangle`, :math:`\chi` and the Binder cumulant
    (:func:`linearised_tau`), and each point keeps its highest rate: far from the transition one trajectory of 10
    steps already decorrelates the magnetisation, near it longer trajectories pay (the HMC guide, "Trajectory
    length"). (The observables' variances do not depend on the length, so the rate ranks the lengths as their costs
    at equal errors do, without the noise of the variance estimates.) ``rows``: per length, each point's
    ``tau_int`` per observable and ``independent_per_second``; ``seconds``: the whole pilot's wall time
    (compilation and thermalisation included). Where the longest length is a point's best, the pilot goes on
    with :func:`next_length` at those points alone (``points`` in their rows; the others' ``tau_int`` and rates
    None; their batches filled with chains, as ``fill`` in :func:`batched_points`, since a narrow batch costs more
    per chain) until none is faster or the next would pass ``longest`` (``None``: only ``lengths``), as
    :func:`best_leapfrog` does.
    """
    volume, P = int(np.prod(path.lattice.shape)), len(ts)
    rows, t_start, points = [], time.perf_counter(), list(range(P))
    for L in [int(x) for x in lengths]:
        rows.append(_points_row(path, ts, points, L, chains, gradients, seed, therm, start, volume))
    while True:
        last = np.argmax(_rates(rows), axis=0) == len(rows) - 1
        points = [p for p in range(P) if last[p]]
        nxt = _extension(rows[-1]["leapfrog"], bool(points), longest)
        if nxt is None:
            break
        rows.append(_points_row(path, ts, points, nxt, chains, gradients, seed, therm, start, volume))
    best = [int(rows[i]["leapfrog"]) for i in np.argmax(_rates(rows), axis=0)]
    return best, rows, time.perf_counter() - t_start


def _rates(rows) -> np.ndarray:
    """The pilot rows' rates ``(lengths, points)``, NaN and None as ``-inf`` (never a point's best)."""
    return np.nan_to_num(np.array([row["independent_per_second"] for row in rows], dtype=float), nan=-np.inf)


def _points_row(path, ts, points, L, chains, gradients, seed, therm, start, volume) -> dict:
    """One pilot row of :func:`best_leapfrog_points`: length ``L`` at the points ``points`` (indices into ``ts``)."""
    per = 25 * max(-(-int(gradients) // (25 * int(L))), 2)
    some = len(points) < len(ts)
    r = batched_points(path, [ts[p] for p in points], chains=chains, per=per, leapfrog=L, seed=seed + 7919 * int(L),
                       therm=therm, start=start, fill=some)  # fmt: skip
    taus, rates, acc = [None] * len(ts), [None] * len(ts), [None] * len(ts)
    for j, p in enumerate(points):
        taus[p] = linearised_tau(r["M"][j], volume)
        rates[p] = float(r["chains"][j] * per / (2 * np.max(list(taus[p].values()))) / r["seconds"][j])
        acc[p] = r["acceptance"][j]
    row = {"leapfrog": int(L), "trajectories_per_chain": per, "tau_int": taus,
           "independent_per_second": rates, "acceptance": acc}  # fmt: skip
    return {**row, "points": list(points)} if some else row
