"""Tests for pikflow.diagnostics: weights, IMH chains and the Gamma method.

Every statistical check compares with an exact (closed-form) value or an independent
simulation, with a tolerance derived from the estimator's own standard error; all
random streams have fixed seeds, so the tests are deterministic.
"""

import time
import warnings

import jax
import numpy as np
import pytest
from scipy.signal import lfilter

from pikflow.diagnostics import (
    GammaResult,
    GammaWindowWarning,
    IMHResult,
    ess_fraction,
    ess_fraction_error,
    gamma_method,
    imh_chain,
    log_mean_weight,
    reweight,
)

# float64 before any array is made (importing pikflow.diagnostics creates none).
jax.config.update("jax_enable_x64", True)

# Gaussian-to-Gaussian importance sampling: proposal q = N(0, 1) (normalised), target
# p = N(MU, SIG^2) given unnormalised as exp(-(x - MU)^2 / (2 SIG^2)), so that
# Z = sqrt(2 pi) SIG. SIG < 1 keeps w = p~/q bounded (finite variance of every
# weighted estimator below, and a uniformly ergodic IMH chain).
MU, SIG = 0.5, 0.8
EXACT_X2 = MU**2 + SIG**2  # <x^2>_p
EXACT_LOG_Z = 0.5 * np.log(2 * np.pi) + np.log(SIG)


def gauss_log_w(x):
    """log p~(x) - log q(x) for the setup above."""
    return -((x - MU) ** 2) / (2 * SIG**2) + 0.5 * x**2 + 0.5 * np.log(2 * np.pi)


def ar1(rng, a, n):
    """Stationary AR(1) chain x_{i+1} = a x_i + sqrt(1 - a^2) eps_i, Var x = 1."""
    eps = rng.normal(size=n)
    eps[0] /= np.sqrt(1 - a * a)  # so that x_0 = eps_0 ~ N(0, 1): start in equilibrium
    return lfilter([np.sqrt(1 - a * a)], [1.0, -a], eps)


# ---------------------------------------------------------------- ess_fraction


@pytest.mark.parametrize("offset", [0.0, 3.7, -800.0, 1.0e4])
def test_ess_equal_weights_is_one(offset):
    # exp(offset) under/overflows for the large offsets: log-space must not care.
    assert ess_fraction(np.full(1000, offset)) == pytest.approx(1.0, abs=1e-12)


def test_ess_single_weight_is_one_over_n():
    n = 1000
    log_w = np.full(n, -np.inf)
    log_w[17] = 2.5
    assert ess_fraction(log_w) == pytest.approx(1.0 / n, rel=1e-12)
    # nan and +inf count as zero weight too, but still count in N.
    log_w[3], log_w[4] = np.nan, np.inf
    assert ess_fraction(log_w) == pytest.approx(1.0 / n, rel=1e-12)
    assert ess_fraction(np.full(5, -np.inf)) == 0.0


def test_ess_lognormal_weights():
    # log w ~ N(0, s^2): ESS/N = A^2 / B with A = mean(w), B = mean(w^2) tends to
    # mu_1^2 / mu_2 = exp(-s^2), mu_k = E[w^k] = exp(k^2 s^2 / 2). Its sampling standard
    # deviation follows from the delta method on log(ESS/N) = 2 log A - log B:
    #   N Var = 4 Var(w)/mu_1^2 - 4 Cov(w, w^2)/(mu_1 mu_2) + Var(w^2)/mu_2^2,
    # which for s = 0.5, N = 1e6 is 5.1e-4 (relative); we allow 5 of them.
    s, n = 0.5, 1_000_000
    log_w = np.random.default_rng(11).normal(0.0, s, size=n)
    mu = [np.exp(k * k * s * s / 2) for k in range(5)]
    n_var = (
        4 * (mu[2] - mu[1] ** 2) / mu[1] ** 2
        - 4 * (mu[3] - mu[1] * mu[2]) / (mu[1] * mu[2])
        + (mu[4] - mu[2] ** 2) / mu[2] ** 2
    )
    rel_sd = np.sqrt(n_var / n)
    assert 3e-4 < rel_sd < 1e-3
    assert ess_fraction(log_w) == pytest.approx(np.exp(-(s**2)), rel=5 * rel_sd)
    # ess_fraction_error estimates that standard deviation from the same weights (its own sampling error
    # there, set by the 8th moment of w, is ~1% at N = 1e6)
    assert ess_fraction_error(log_w) == pytest.approx(rel_sd * np.exp(-(s**2)), rel=0.05)
    assert ess_fraction_error(np.full(5, -np.inf)) == 0.0


# ---------------------------------------------------------------------- reweight


def test_reweight_gaussian_and_error_calibration():
    # 100 independent repeats of N = 1e4 proposals. Each estimate must lie within 4 of
    # its own reported errors of the exact value (4 sigma: p = 6e-5 per repeat), the
    # pooled mean within 4 errors of the pooled estimate, and the mean reported error
    # must match the empirical spread of the 100 estimates: the sample standard
    # deviation of 100 values has a relative standard error ~ 1/sqrt(2 * 99) = 7%
    # (slightly more for the mildly heavy-tailed ratio estimator), so 25% is >3 sigma.
    n, reps = 10_000, 100
    x = np.random.default_rng(22).normal(size=(reps, n))
    means, errs = np.array([reweight(gauss_log_w(xi), xi**2) for xi in x]).T
    assert np.all(np.abs(means - EXACT_X2) < 4 * errs)
    pooled_err = np.sqrt(np.mean(errs**2) / reps)
    assert abs(means.mean() - EXACT_X2) < 4 * pooled_err
    assert np.std(means, ddof=1) / np.mean(errs) == pytest.approx(1.0, abs=0.25)


def test_reweight_vectorised_and_exclusions():
    rng = np.random.default_rng(3)
    x = rng.normal(size=5000)
    log_w = gauss_log_w(x)
    obs = np.stack([x, x**2, np.cos(x)], axis=1)
    mean, err = reweight(log_w, obs)
    assert isinstance(mean, np.ndarray) and mean.shape == (3,) and err.shape == (3,)
    for k in range(3):
        m_k, e_k = reweight(log_w, obs[:, k])
        assert isinstance(m_k, float) and isinstance(e_k, float)
        assert m_k == pytest.approx(mean[k], rel=1e-13)
        assert e_k == pytest.approx(err[k], rel=1e-13)
    # Brute-force reference for the formulas (plain numpy, no log-space tricks).
    w = np.exp(log_w)
    ref = np.sum(w[:, None] * obs, 0) / w.sum()
    ref_err = np.sqrt(np.sum(w[:, None] ** 2 * (obs - ref) ** 2, 0)) / w.sum()
    np.testing.assert_allclose(mean, ref, rtol=1e-12)
    np.testing.assert_allclose(err, ref_err, rtol=1e-10)
    # A huge common offset changes nothing (weights are self-normalised).
    mean_off, err_off = reweight(log_w + 5000.0, obs)
    np.testing.assert_allclose(mean_off, mean, rtol=1e-12)
    np.testing.assert_allclose(err_off, err, rtol=1e-10)
    # Non-finite log_w drops the sample; a non-finite value drops it in that column.
    lw_bad, obs_bad = log_w.copy(), obs.copy()
    lw_bad[:10] = [-np.inf, np.nan, np.inf] + [-np.inf] * 7
    obs_bad[10:20, 1] = np.nan
    m_bad, _ = reweight(lw_bad, obs_bad)
    keep = np.ones(len(x), bool)
    keep[:10] = False
    keep1 = keep.copy()
    keep1[10:20] = False
    assert m_bad[0] == pytest.approx(reweight(log_w[keep], obs[keep, 0])[0], rel=1e-13)
    assert m_bad[1] == pytest.approx(reweight(log_w[keep1], obs[keep1, 1])[0], rel=1e-13)


def test_reweight_bad_input():
    with pytest.raises(ValueError, match="no sample"):
        reweight(np.full(4, -np.inf), np.arange(4.0))
    with pytest.raises(ValueError, match="shape"):
        reweight(np.zeros(4), np.arange(5.0))
    with pytest.raises(ValueError, match="1-D"):
        ess_fraction(np.zeros((2, 2)))


# --------------------------------------------------------------- log_mean_weight


def test_log_mean_weight_gaussian():
    # mean(w) estimates Z = sqrt(2 pi) SIG exactly (q normalised): the estimate must be
    # within 4 of its errors; with N = 1e5 the Jensen bias ~ err^2/2 ~ 1e-6 is
    # negligible against err ~ 2e-3.
    x = np.random.default_rng(5).normal(size=100_000)
    value, err = log_mean_weight(gauss_log_w(x))
    assert 1e-3 < err < 5e-3
    assert abs(value - EXACT_LOG_Z) < 4 * err
    # Calibration of the error over 100 repeats of N = 1e4 (relative standard error
    # of the empirical spread ~7%, see test_reweight_...): 25% tolerance.
    xs = np.random.default_rng(6).normal(size=(100, 10_000))
    vals, errs = np.array([log_mean_weight(gauss_log_w(xi)) for xi in xs]).T
    assert np.std(vals, ddof=1) / np.mean(errs) == pytest.approx(1.0, abs=0.25)
    # Stable under huge offsets; exact on a hand-made example.
    v_off, e_off = log_mean_weight(gauss_log_w(x) + 1.0e4)
    assert v_off - 1.0e4 == pytest.approx(value, abs=1e-9)
    assert e_off == pytest.approx(err, rel=1e-9)
    w = np.array([1.0, 2.0, 0.0, 5.0])
    v, e = log_mean_weight([0.0, np.log(2.0), -np.inf, np.log(5.0)])
    assert v == pytest.approx(np.log(2.0), rel=1e-14)
    assert e == pytest.approx(np.std(w) / (2 * 2.0), rel=1e-14)
    with pytest.raises(ValueError, match="non-finite"):
        log_mean_weight([-np.inf, np.nan])


# --------------------------------------------------------------------- imh_chain


def test_imh_equal_weights_accepts_everything():
    res = imh_chain(jax.random.key(0), np.full(1000, -3.2))
    assert isinstance(res, IMHResult)
    assert res.acceptance == 1.0
    np.testing.assert_array_equal(res.indices, np.arange(1000))


def test_imh_non_finite_start_and_proposals():
    log_w = np.array([-np.inf, np.nan, 0.0, np.inf, 0.0, np.nan, 0.0])
    res = imh_chain(jax.random.key(1), log_w)
    # Starts at 2 (first finite); 3 and 5 always rejected, 4 and 6 always accepted
    # (equal weights): 2 accepted out of 6 proposals.
    np.testing.assert_array_equal(res.indices, [2, 2, 2, 2, 4, 4, 6])
    assert res.acceptance == pytest.approx(2 / 6)
    np.testing.assert_array_equal(res.chain(np.arange(7) * 10), res.indices * 10)
    with pytest.raises(ValueError, match="finite"):
        imh_chain(jax.random.key(1), np.full(3, -np.inf))
    with pytest.raises(ValueError, match="one entry per proposal"):
        res.chain(np.arange(3))


def test_imh_is_deterministic_and_respects_ratio():
    # Two alternating weights w and w/4: from a heavy state, a light proposal is
    # accepted with probability 1/4; light -> heavy always. Deterministic given a key.
    log_w = np.tile([0.0, -np.log(4.0)], 100_000)
    r1 = imh_chain(jax.random.key(7), log_w)
    r2 = imh_chain(jax.random.key(7), log_w)
    np.testing.assert_array_equal(r1.indices, r2.indices)
    heavy_then_light = r1.indices[:-1] % 2 == 0
    moved = r1.indices[1:] != r1.indices[:-1]
    proposals_light = np.arange(1, len(log_w)) % 2 == 1
    sel = heavy_then_light & proposals_light
    frac = moved[sel].mean()  # binomial, sd = sqrt(3/16 / 1e5) = 1.4e-3
    assert frac == pytest.approx(0.25, abs=5 * 1.4e-3)


def test_imh_gaussian_target():
    n = 1_000_000
    x = np.random.default_rng(8).normal(size=n)
    log_w = gauss_log_w(x)
    imh_chain(jax.random.key(9), log_w[:10])  # compile outside the timing
    t0 = time.perf_counter()
    res = imh_chain(jax.random.key(9), log_w)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5.0, f"IMH on 1e6 proposals took {elapsed:.2f} s"  # ~0.1 s
    # The chain samples p exactly: <x^2> within 5 Gamma-method errors of the exact one.
    g = gamma_method(res.chain(x) ** 2)
    assert g.tau_int > 0.5
    assert abs(g.mean - EXACT_X2) < 5 * g.error
    # Stationary acceptance E[min(1, w(y)/w(x))], x ~ p, y ~ q, estimated by a plain
    # numpy simulation with 4e6 exact draws (standard error ~1.6e-4). The chain's rate
    # is the mean of autocorrelated accept indicators, whose error (~5e-4) the Gamma
    # method gives; the two must agree within 5 combined errors, and within 1%.
    rng = np.random.default_rng(10)
    m = 4_000_000
    xp = rng.normal(MU, SIG, size=m)
    yq = rng.normal(size=m)
    a_ref = np.minimum(1.0, np.exp(gauss_log_w(yq) - gauss_log_w(xp)))
    ref, ref_err = a_ref.mean(), a_ref.std() / np.sqrt(m)
    assert 0.5 < ref < 0.9
    moved = (res.indices[1:] != res.indices[:-1]).astype(float)
    g_acc = gamma_method(moved)
    assert g_acc.mean == pytest.approx(res.acceptance, rel=1e-12)
    assert abs(res.acceptance - ref) < 5 * np.hypot(g_acc.error, ref_err)
    assert res.acceptance == pytest.approx(ref, rel=0.01)


# ------------------------------------------------------------------ gamma_method


def test_gamma_ar1_exact_tau():
    a, n = 0.9, 200_000
    tau_exact = (1 + a) / (2 * (1 - a))  # 9.5
    g = gamma_method(ar1(np.random.default_rng(12), a, n))
    assert isinstance(g, GammaResult)
    assert abs(g.tau_int - tau_exact) < 3 * g.tau_int_error
    # Asymptotic error of the mean: sqrt(2 tau Var / N) with Var = 1. The estimated
    # error's relative uncertainty is ~ (1/2) dtau/tau ~ 2% (plus ~0.5% from Gamma(0)),
    # so 8% is about 4 sigma.
    sigma_exact = np.sqrt(2 * tau_exact / n)
    assert g.error == pytest.approx(sigma_exact, rel=0.08)
    assert abs(g.mean) < 4 * sigma_exact
    assert g.n_effective == pytest.approx(n / (2 * g.tau_int))
    assert 20 < g.window < 200


def test_gamma_iid():
    g = gamma_method(np.random.default_rng(13).normal(2.0, 3.0, size=100_000))
    assert abs(g.tau_int - 0.5) < 3 * g.tau_int_error
    assert g.error == pytest.approx(3.0 / np.sqrt(100_000), rel=0.05)
    assert abs(g.mean - 2.0) < 4 * g.error
    naive = gamma_method(np.random.default_rng(13).normal(2.0, 3.0, size=100_000), S=0)
    assert naive.tau_int == 0.5 and naive.window == 0
    assert naive.error == pytest.approx(g.error, rel=0.05)


def test_gamma_replica():
    # Four independent AR(1) replica: tau of the combined analysis within 3 errors.
    rng = np.random.default_rng(14)
    g = gamma_method(np.stack([ar1(rng, 0.9, 50_000) for _ in range(4)]))
    assert abs(g.tau_int - 9.5) < 3 * g.tau_int_error
    assert g.error == pytest.approx(np.sqrt(2 * 9.5 / 200_000), rel=0.08)


def test_gamma_edge_cases():
    g = gamma_method(np.full(100, 0.1))
    assert (g.mean, g.error, g.tau_int, g.tau_int_error) == (
        pytest.approx(0.1),
        0.0,
        0.5,
        0.0,
    )
    assert g.n_effective == 100
    x = np.random.default_rng(15).normal(size=50)
    x[[3, 7]] = np.nan
    x[9] = np.inf
    with pytest.raises(ValueError, match="3 non-finite"):
        gamma_method(x)
    with pytest.raises(ValueError, match="at least 5"):
        gamma_method(np.arange(4.0))
    with pytest.raises(ValueError, match="1-D"):
        gamma_method(np.zeros((2, 3, 10)))
    with pytest.raises(ValueError, match="S must be"):
        gamma_method(np.arange(10.0), S=-1.0)


def _pyerrors_series():
    rng = np.random.default_rng(16)
    yield "ar1", ar1(rng, 0.9, 200_000)
    yield "iid", rng.normal(size=1000)
    yield "short", ar1(rng, 0.5, 40)


@pytest.mark.parametrize("name,chain", list(_pyerrors_series()))
def test_gamma_agrees_with_pyerrors(name, chain):
    # One chain: the numpy implementation against pyerrors itself (the default backend
    # there): same algorithm, same conventions, so agreement to rounding (1e-6 relative
    # is loose).
    pe = pytest.importorskip("pyerrors")
    obs = pe.Obs([chain], ["ens"])
    obs.gamma_method(S=1.5)
    g = gamma_method(chain, S=1.5, backend="numpy")
    assert gamma_method(chain, S=1.5, backend="pyerrors") == gamma_method(chain, S=1.5)
    assert g.window == obs.e_windowsize["ens"]
    assert g.mean == pytest.approx(obs.value, rel=1e-6, abs=1e-12)
    assert g.error == pytest.approx(obs.dvalue, rel=1e-6)
    assert g.tau_int == pytest.approx(obs.e_tauint["ens"], rel=1e-6)
    assert g.tau_int_error == pytest.approx(obs.e_dtauint["ens"], rel=1e-6)


def test_gamma_long_replica_near_pyerrors():
    # Long replica: pyerrors' per-replica means and Wolff's overall mean differ by the
    # scatter of the replica means, which lowers tau_int(W) by 2 tau (W - tau + 1/2) (R - 1) / N
    # on average (module docstring); that scatter is chi-square with R - 1 = 3 degrees of
    # freedom, below 6 times its mean with probability 0.9996.
    rng = np.random.default_rng(16)
    chains = [ar1(rng, 0.8, 30_000) for _ in range(3)] + [ar1(rng, 0.8, 7000)]
    g = gamma_method(chains)
    assert g == gamma_method(chains, backend="numpy")
    pe = gamma_method(chains, backend="pyerrors")
    assert g.mean == pytest.approx(pe.mean, rel=1e-12)
    assert g.window == pe.window
    assert 0 <= g.tau_int - pe.tau_int < 6 * 2 * 4.5 * (g.window - 4.5 + 0.5) * 3 / 97_000
    assert abs(g.tau_int - 4.5) < 3 * g.tau_int_error


def _gamma_direct(chains, window):
    """Wolff's replica formulas by plain sums: Gamma(t) about the overall mean over the pairs at each lag,
    tau_int(W) with eq. (49), and the error, at a given window."""
    n = sum(len(c) for c in chains)
    mean = sum(float(np.sum(c)) for c in chains) / n
    gamma = []
    for t in range(window + 1):
        pairs = sum(max(len(c) - t, 0) for c in chains)
        gamma.append(sum(float(np.dot(c[: len(c) - t] - mean, c[t:] - mean)) for c in chains) / pairs)
    tau = (0.5 + sum(gamma[1:]) / gamma[0]) * (1 + (2 * window + 1) / n) / (1 + 1 / n)
    return mean, tau, np.sqrt(2 * tau * gamma[0] * (1 + 1 / n) / n)


def test_gamma_replica_of_unequal_length_against_direct_sums():
    # The FFT's lag products and the pair counts of chains of different lengths, at the window
    # the method chose, against the formulas summed directly.
    rng = np.random.default_rng(25)
    chains = [ar1(rng, 0.7, 400) + 0.3, ar1(rng, 0.7, 250), ar1(rng, 0.7, 90) - 0.2]
    g = gamma_method(chains)
    mean, tau, error = _gamma_direct(chains, g.window)
    assert g.mean == pytest.approx(mean, rel=1e-12)
    assert g.tau_int == pytest.approx(tau, rel=1e-10)
    assert g.error == pytest.approx(error, rel=1e-10)


def test_gamma_chains_constant_at_different_values():
    # Each chain frozen at its own value (a chain stuck in one sector): about the overall mean
    # they scatter, so the error is not zero (it was, with each chain about its own mean); two
    # independent frozen chains at 0 and 1 give a mean of 1/2 with error 1/2 / sqrt(2) = 0.35
    # if each counts as one sample (the short window here gives 0.28).
    g = gamma_method(np.array([[0.0] * 10, [1.0] * 10]))
    assert g.mean == 0.5 and 0.25 < g.error < 0.5
    assert gamma_method(np.full((3, 10), 2.0)).error == 0.0  # constant as a whole


def test_gamma_window_cut_off_by_short_chains_warns():
    # tau_int = (1 + a) / (2 (1 - a)) = 32.8 against chains of 60: the window reaches its cap
    # (half a chain) before the criterion is met, well short of 4 tau_int, so tau_int is cut
    # off; it says so. (test_gamma_short_replica_about_the_overall_mean reaches the cap too,
    # at 29 > 4 x 4.5 lags, where the tail left out is below 1e-3: no warning there.)
    rng = np.random.default_rng(24)
    short = np.stack([ar1(rng, 0.97, 60) for _ in range(256)])
    with pytest.warns(GammaWindowWarning, match="longer chains"):
        g = gamma_method(short)
    assert g.truncated and g.window == 29 and g.tau_int < 32.8 - 3 * g.tau_int_error
    # the same ensemble in chains long against tau_int: no warning, the exact tau_int
    long = np.stack([ar1(rng, 0.97, 6000) for _ in range(16)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", GammaWindowWarning)
        g = gamma_method(long)
    assert not g.truncated and abs(g.tau_int - 0.985 / 0.03) < 3 * g.tau_int_error


def test_gamma_short_replica_about_the_overall_mean():
    # Many replica short against tau_int (the vectorised HMC chains of the benchmarks):
    # each about its own mean, the scatter of the replica means is lost and tau_int and
    # the error come out far too small; about the overall mean (Wolff) they are right.
    # 512 stationary AR(1) chains of 60 steps, a = 0.8: tau_int = (1 + a) / (2 (1 - a))
    # = 4.5 and Var x = 1, so the error of the mean is sqrt(2 tau_int / N) exactly.
    rng = np.random.default_rng(23)
    a, tau = 0.8, 4.5
    chains = np.stack([ar1(rng, a, 60) for _ in range(512)])
    n = chains.size
    g = gamma_method(chains)
    assert g.window == 29 and not g.truncated  # at the cap, but 29 lags leave 0.8^30 of the sum out
    assert abs(g.tau_int - tau) < 3 * g.tau_int_error
    # the error's relative uncertainty is about half tau_int's
    assert g.error == pytest.approx(np.sqrt(2 * tau / n), rel=1.5 * g.tau_int_error / tau)
    with warnings.catch_warnings():  # its window never closes: the cut-off warning, expected here
        warnings.simplefilter("ignore", GammaWindowWarning)
        own = gamma_method(chains, backend="pyerrors")  # each replica about its own mean
    assert own.tau_int < tau - 5 * g.tau_int_error
    assert own.error < 0.8 * np.sqrt(2 * tau / n)
