"""The Pareto shape of the weights' tail (PSIS k-hat) against weights of known tail, and its warning."""

import math

import numpy as np
import pytest

from pikflow import PikflowError, SamplingError
from pikflow.diagnostics import (
    khat_threshold,
    khat_warning,
    largest_weight,
    pareto_khat,
    reliability_warnings,
    weight_tail,
)


@pytest.mark.parametrize("k", [0.3, 0.8])
def test_khat_of_pareto_weights(k):
    """Weights w = u^(-k), u uniform, have P(w > x) = x^(-1/k): a generalised Pareto tail of shape k exactly.

    With 50 000 weights the fit uses the 671 largest; the estimate's spread is about (1 + k)/sqrt(671) = 0.05-0.07,
    so the mean of 8 independent sets is within 0.1 (4 of its standard errors) of k."""
    rng = np.random.default_rng(7)
    ks = [pareto_khat(-k * np.log(rng.uniform(size=50_000))) for _ in range(8)]
    assert abs(np.mean(ks) - k) < 0.1, ks


def test_khat_of_light_tails_and_its_invariances():
    rng = np.random.default_rng(3)
    lw = np.log(rng.uniform(size=20_000))  # bounded weights: exceedances uniform, a GPD of shape -1
    assert pareto_khat(lw) < -0.5
    heavy = -0.9 * np.log(rng.uniform(size=20_000))
    assert pareto_khat(heavy + 300.0) == pytest.approx(pareto_khat(heavy), abs=1e-9)  # a shift is Z's scale
    with_zeros = np.concatenate([heavy, [-np.inf, np.nan, np.inf]])  # non-finite weights: zero weight, left out
    assert pareto_khat(with_zeros) == pytest.approx(pareto_khat(heavy), abs=1e-9)
    assert math.isnan(pareto_khat(np.zeros(1000)))  # equal weights: no tail to fit
    with pytest.raises(SamplingError):
        pareto_khat([-np.inf, np.nan])
    with pytest.raises(PikflowError):
        pareto_khat(np.zeros((3, 3)))


def test_khat_warning_threshold():
    """The PSIS threshold min(1 - 1/log10 N, 0.7): 0.5 at 100 samples, 0.7 from about 2200 on."""
    assert khat_threshold(100) == pytest.approx(0.5) and khat_threshold(10**6) == 0.7
    assert khat_warning(0.75, 4000) and not khat_warning(0.65, 4000)
    assert khat_warning(0.6, 100) and not khat_warning(None, 100) and not khat_warning(float("nan"), 100)
    assert "Pareto k-hat 0.90" in reliability_warnings(0.5, 4000, khat=0.9)[-1]
    assert reliability_warnings(0.5, 4000, khat=0.3) == []


def test_khat_warning_needs_a_tail_at_the_weights_scale():
    """Near-constant weights with a heavy-tailed spread (log w = 1e-8 * Pareto(0.8)) have k-hat about 0.8, but
    their largest weight is the mean to 1e-2: no feasible run brings the tail near the mean, so no warning; the
    same shape at scale 1 (w Pareto(0.8)) warns."""
    rng = np.random.default_rng(5)
    x = rng.uniform(size=20_000) ** -0.8
    tiny, heavy = 1e-8 * x, np.log(x)
    assert pareto_khat(tiny) > 0.7 and pareto_khat(heavy) > 0.7
    assert largest_weight(tiny) < 1.01 and largest_weight(heavy) > 10
    assert reliability_warnings(0.99, 20_000, khat=pareto_khat(tiny), largest=largest_weight(tiny)) == []
    assert reliability_warnings(0.2, 20_000, khat=pareto_khat(heavy), largest=largest_weight(heavy))
    assert largest_weight(np.log([1.0, 1.0, 1.0, 3.0])) == pytest.approx(2.0)
    assert largest_weight([0.0, -np.inf, np.nan, 0.0]) == pytest.approx(2.0)  # zero weights count in N
    assert khat_warning(0.9, 2000, 1.5) == [] and khat_warning(0.9, 2000, 2.5)
    assert weight_tail(heavy) == {"pareto_khat": pareto_khat(heavy), "largest_weight": largest_weight(heavy)}
    dead = weight_tail([-np.inf, np.nan])  # no finite weight: no k-hat, and no exception in a run's results
    assert dead["pareto_khat"] is None and math.isnan(dead["largest_weight"])


def _arviz_khat(log_w):
    """ArviZ's ``psislw`` k-hat (its ``_gpdfit``, ``reff = 1``), transcribed as ArviZ writes it: the reference."""
    x = np.asarray(log_w, float).copy()
    n = len(x)
    x -= x.max()
    cut = -int(np.ceil(min(0.2 * n, 3 * np.sqrt(n)))) - 1
    xc = max(np.sort(x)[cut], np.log(np.finfo(float).tiny))
    ary = np.sort(x[x > xc])
    if len(ary) <= 4:
        return np.inf
    ary = np.exp(ary) - np.exp(xc)
    n = len(ary)
    m_est = 30 + int(n**0.5)
    b = 1 - np.sqrt(m_est / (np.arange(1, m_est + 1, dtype=float) - 0.5))
    b /= 3 * ary[int(n / 4 + 0.5) - 1]
    b += 1 / ary[-1]
    k = np.log1p(-b[:, None] * ary).mean(axis=1)
    len_scale = n * (np.log(-(b / k)) - k - 1)
    w = 1 / np.exp(len_scale - len_scale[:, None]).sum(axis=1)
    keep = w >= 10 * np.finfo(float).eps
    w, b = w[keep] / w[keep].sum(), b[keep]
    b_post = np.sum(b * w)
    k_post = np.log1p(-b_post * ary).mean()
    return (n * k_post + 5) / (n + 10)


def test_khat_is_arviz_psis():
    """The same numbers as ArviZ's algorithm on light, heavy, bounded, Student-t and tied weights, and inf for a
    tail of a few isolated weights (ArviZ's answer there)."""
    rng = np.random.default_rng(0)
    cases = [rng.normal(size=2000) * 2, -0.9 * np.log(rng.uniform(size=8000)), np.log(rng.uniform(size=500)),
             rng.standard_t(3, size=4000), np.round(rng.normal(size=3000), 1)]  # fmt: skip
    for lw in cases:
        assert pareto_khat(lw) == pytest.approx(_arviz_khat(lw), abs=1e-9)
    few = np.r_[np.zeros(2000), 40.0, 41.0, 42.0]
    assert pareto_khat(few) == _arviz_khat(few) == np.inf
    assert khat_warning(pareto_khat(few), few.size, largest_weight(few))  # and it warns
