"""The Pareto shape of the weights' tail (PSIS k-hat) against weights of known tail, and its warning."""

import math

import numpy as np
import pytest

from pikflow import PikflowError, SamplingError
from pikflow.diagnostics import khat_threshold, khat_warning, pareto_khat, reliability_warnings


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
    with_zeros = np.concatenate([heavy, [-np.inf, np.nan]])  # non-finite weights are zero weights, left out
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
