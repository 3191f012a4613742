"""Means pooled from the neighbouring steps (smc(pool=...), scan_lattice(pool=True)): the bookkeeping by hand,
then a free-field scan against the exact answers, with smaller errors than without pooling."""

import numpy as np
import pytest

import pikflow as pf
import pikflow.lattice as pl
from pikflow.samplers._pool import MIN_ESS, pool_targets, pooled_means, pooled_sums, reweighted


def test_pool_targets_and_the_combination_by_hand():
    times = np.linspace(0.0, 1.0, 9)
    points, nearest = pool_targets(times, [0.0, 0.25, 0.75])
    assert points == (2, 6)  # t = 0 keeps the base's exact means
    # step k arrives at index k + 1: index 1 lies before the first pool time, 2-4 nearest to 2 (index 4, halfway,
    # goes to the first), 5-6 to 6, and 7-8 after the last
    assert nearest.tolist() == [-1, 2, 2, 2, 6, 6, -1, -1]
    with pytest.raises(pf.SamplingError, match="pool"):
        pool_targets(times, [0.3])
    # three steps feed the point at index 2 (R = 1 replica, 2 observables): (means, ESS/N, kept fraction)
    nearest = np.array([2, 2, 2])
    records = [
        {"pooled": (np.array([[1.0, 10.0]]), np.array([0.2]), np.array([0.9]))},
        {"pooled": (np.array([[2.0, 20.0]]), np.array([0.6]), np.array([1.0]))},
        {"pooled": (np.array([[4.0, np.nan]]), np.array([0.2]), np.array([0.8]))},
        {"pooled": (np.array([[99.0, 99.0]]), np.array([0.9]), np.array([0.4]))},  # below MIN_ESS: left out
    ]
    moments = np.zeros((4, 1, 2))
    out = pooled_means(moments, records, (2,), np.array([2, 2, 2, 2]))
    # observable 0: (0.2 * 1 + 0.6 * 2 + 0.2 * 4) / 1.0; observable 1 lacks the third step: (0.2 * 10 + 0.6 * 20) / 0.8
    assert MIN_ESS > 0.4
    assert out[2, 0].tolist() == pytest.approx([2.2, 17.5])
    assert np.array_equal(out[[0, 1, 3]], moments[[0, 1, 3]])
    assert np.array_equal(pooled_means(moments, records, (2,), nearest * 0 - 1), moments)  # no steps: unchanged
    # two replicas: each one's weights and cut come from the other's ESS (leave one out), never from its own
    records = [
        {"pooled": (np.array([[1.0], [3.0]]), np.array([0.9, 0.1]), np.array([1.0, 0.3]))},
        {"pooled": (np.array([[2.0], [5.0]]), np.array([0.3, 0.3]), np.array([1.0, 1.0]))},
    ]
    out = pooled_means(np.zeros((3, 2, 1)), records, (2,), np.array([2, 2]))
    # replica 0: weights 0.1 and 0.3, but the first contribution is cut (kept 0.3 < MIN_ESS): 2.0
    # replica 1: weights 0.9 and 0.3 (kept 1.0): (0.9 * 3 + 0.3 * 5) / 1.2
    assert out[2, :, 0].tolist() == pytest.approx([2.0, (0.9 * 3 + 0.3 * 5) / 1.2])


def test_bad_pool_settings_are_refused():
    path = pl.LatticePath(pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", (4, 4)), {"m2": 1.0})
    problem = pl.path_problem(path, np.linspace(0, 1, 5))
    for bad in (True, [[0.5]], "half"):
        with pytest.raises(pf.SamplingError, match="pool must be a list of step times"):
            pf.samplers.smc(problem, 10, transport="none", pool=bad, progress=False)
    with pytest.raises(pf.SamplingError, match="pool combines the configurations after the moves"):
        pf.samplers.smc(problem, 10, transport="none", pool=[0.5], estimate="before", progress=False)
    with pytest.raises(pf.SamplingError, match="mcmc must be one of"):  # checked without moves too
        pf.samplers.smc(problem, 10, transport="none", mcmc="hcm", mcmc_steps=0, progress=False)
    for bad in ([0.5], "yes"):
        with pytest.raises(pf.SamplingError, match="pool must be True, False or None"):
            pl.scan_lattice(path, points=2, pool=bad, progress=False)
    with pytest.raises(pf.SamplingError, match="pool combines"):
        pl.scan_lattice(path, points=2, pool=True, estimate="before", progress=False)


def test_reweighted_sums_by_hand():
    """The numbers of one configuration and the pooled means of a replica, against the formula written out:
    sum_i W_i <r O>_i / sum_i W_i <r>_i over the moves' averages <.>_i, and the ESS of W_i <r>_i."""
    import jax.numpy as jnp

    times = jnp.array([0.0, 0.5, 1.0])
    log_gamma = lambda z, t: -(1 + t) * z[0] ** 2  # noqa: E731
    values = lambda z, i: jnp.array([z[0], z[0] ** 2 + times[i]])  # noqa: E731
    z = jnp.array([0.7])
    v = reweighted(values, log_gamma, times, z, 1, 2, 0.1)
    r = np.exp(-2.0 * 0.49 + 1.5 * 0.49 - 0.1)
    assert np.asarray(v) == pytest.approx([0.7, 0.49 + 0.5, r * 0.7, r * 1.49, r])
    rng = np.random.default_rng(0)
    w = rng.random(5)
    w /= w.sum()
    rs, ro = rng.random(5), rng.normal(size=(5, 2))  # <r>_i and <r O>_i
    v = np.concatenate([np.zeros((5, 2)), ro, rs[:, None]], axis=1)
    means, ess, kept = pooled_sums(jnp.asarray(v), jnp.asarray(w), 2)
    assert np.asarray(means) == pytest.approx((w @ ro) / (w @ rs))
    assert float(ess) == pytest.approx((w @ rs) ** 2 / (5 * np.sum((w * rs) ** 2)))
    assert float(kept) == pytest.approx(float(ess) * 5 * np.sum(w**2))


def test_pooled_free_field_scan_is_exact():
    """A free field K = m2 + khat^2 on 4x4 with m2 rising from 0.5 to 2 over 3 points (the steps reweighted
    to narrower distributions, so the ratios spread but stay bounded): log Z(m2) (not pooled: the same as
    without) and chi = (1 - 2/pi)/m2 within 4 replica errors (t_15) at every point, and <m^2> = 1/(V m2)."""
    path = pl.LatticePath(
        pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", (4, 4)), {"m2": [[0, 0.5], [1, 2.0]]}
    )
    kw = dict(points=3, steps=12, particles=200, replicas=16, mcmc="hmc", mcmc_steps=1, seed=3, progress=False)
    plain = pl.scan_lattice(path, pool=False, **kw)
    pooled = pl.scan_lattice(path, **kw)  # pooled by default
    k = 2 * np.pi * np.fft.fftfreq(4)
    khat2 = (4 * np.sin(k / 2) ** 2)[:, None] + (4 * np.sin(k / 2) ** 2)[None, :]
    for a, b in zip(plain.points["4x4"], pooled.points["4x4"], strict=True):
        m2 = b["couplings"]["m2"]
        log_z = 8 * np.log(2 * np.pi) - 0.5 * np.sum(np.log(m2 + khat2))
        assert b["log_z"].value == a["log_z"].value
        assert abs(b["log_z"].value - log_z) <= 4 * b["log_z"].error + 1e-9, (m2, b["log_z"])
        assert abs(b["chi"].value - (1 - 2 / np.pi) / m2) < 4 * b["chi"].error, (m2, b["chi"])
    assert pooled.settings["pool"] and not plain.settings["pool"]
    t = pooled.points["4x4"][-1]["t"]
    m2 = pooled.runs["4x4"].observable("m2", t)
    assert abs(m2.value - 1 / (16 * 2.0)) < 4 * m2.error, m2
