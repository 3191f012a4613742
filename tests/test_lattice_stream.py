"""Bounded memory of lattice sampling: streamed estimates equal those from kept configurations; refusals."""

import jax
import numpy as np
import pytest

from pikflow import SamplingError
from pikflow.flow._lattice_stream import BATCH_COPIES, check_sample_memory, sample_memory
from pikflow.lattice import (
    LatticeAction,
    LatticePath,
    flow_observables,
    flow_two_point,
    reweighted_observables,
    solve_lattice,
)


@pytest.fixture(scope="module")
def flow():
    density = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"
    path = LatticePath(LatticeAction(density, (6, 4)), {"m2": (1.0, -0.5), "lam": (0.0, 0.5)})
    return solve_lattice(path, steps=2, n_collocation=100, progress=False)


def test_streamed_estimates_equal_kept(flow):
    """keep_fields=False reduces each batch on the fly: the same weights, magnetisations, C(r) and estimates."""
    key = jax.random.PRNGKey(3)
    kept = flow.sample(key, 400, batch=200, keep_fields=True)
    streamed = flow.sample(key, 400, batch=200, keep_fields=False)
    assert streamed.fields is None and kept.fields.shape == (400, 6, 4)
    np.testing.assert_array_equal(streamed.log_w, kept.log_w)
    np.testing.assert_array_equal(streamed.finite, kept.finite)
    np.testing.assert_allclose(streamed.magnetisation(), kept.magnetisation(), rtol=1e-13, atol=1e-13)
    (c1, m1), (c2, m2) = streamed.two_point(), kept.two_point()
    np.testing.assert_allclose(c1, c2, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(m1, m2, rtol=1e-13, atol=1e-15)
    # C(0) is the mean of phi^2 per sample: an independent check of the streamed series
    np.testing.assert_allclose(c1[:, 0], np.mean(kept.fields.reshape(400, -1) ** 2, axis=1), rtol=1e-12)
    k = jax.random.PRNGKey(9)
    for a, b in zip(
        flow_observables(streamed, 24, k)[0].values(), flow_observables(kept, 24, k)[0].values(), strict=True
    ):
        assert a.value == pytest.approx(b.value, rel=1e-12) and a.error == pytest.approx(b.error, rel=1e-9)
    for a, b in zip(flow_two_point(streamed, k), flow_two_point(kept, k), strict=True):
        assert a.value == pytest.approx(b.value, rel=1e-10, abs=1e-14)
    for a, b in zip(
        reweighted_observables(streamed, 24).values(), reweighted_observables(kept, 24).values(), strict=True
    ):
        assert a.value == pytest.approx(b.value, rel=1e-12)
    assert streamed.ess() == pytest.approx(kept.ess(), rel=1e-14)


def test_memory_estimate_and_refusal():
    """10^5 samples of 128x128 kept are 12.2 GiB; streamed, one batch and O(n L): refused or not as it fits."""
    need = sample_memory((128, 128), 100_000, 1000, keep_fields=True)
    assert need["configurations"] == 8.0 * 100_000 * 128 * 128
    streamed = sample_memory((128, 128), 100_000, 1000, keep_fields=False)
    assert streamed["configurations"] == 0 and streamed["batch"] == 8.0 * BATCH_COPIES * 1000 * 128 * 128
    four_gib = 4 * 2**30
    assert sum(streamed.values()) < four_gib
    with pytest.raises(SamplingError, match="keep_fields=False"):
        check_sample_memory((128, 128), 100_000, 1000, True, memory=four_gib)
    check_sample_memory((128, 128), 100_000, 1000, False, memory=four_gib)  # fits
    with pytest.raises(SamplingError, match="smaller batch"):
        check_sample_memory((128, 128), 100_000, 100_000, False, memory=four_gib)


def test_sample_refuses_before_drawing(flow, monkeypatch):
    import pikflow.flow._lattice_stream as stream

    monkeypatch.setattr(stream, "available_memory", lambda: 10_000)
    with pytest.raises(SamplingError, match="keep_fields=False"):
        flow.sample(jax.random.PRNGKey(0), 10_000, batch=10, keep_fields=True)


def test_cli_guard_counts_streamed_samples():
    """pikflow run streams lattice samples: 10^5 of 128x128 fit in 4 GiB; 10^9 do not, naming [sampling] n."""
    from pikflow import ConfigError
    from pikflow.cli._guards import check_resources

    data = {
        "action": {"lattice": [128, 128], "density": "m2/2*phi**2"},
        "lattice": {"collocation": 200, "hmc_samples": 1000},
        "sampling": {"n": 100_000},
    }
    check_resources(data, memory=4 * 2**30)
    with pytest.raises(ConfigError, match=r"\[sampling\] n = 1000000000"):
        check_resources({**data, "sampling": {"n": 10**9}}, memory=4 * 2**30)
    with pytest.raises(ConfigError, match=r"\[sampling\] batch_size = 100000"):
        check_resources({**data, "sampling": {"n": 100_000, "batch_size": 100_000}}, memory=4 * 2**30)


def test_cli_guard_counts_smc_particles():
    """[smc] particles x replicas x sites are counted: 1000 x 4 on 64x64 fit in 4 GiB; 10^5 x 4 do not."""
    from pikflow import ConfigError
    from pikflow.cli._guards import check_resources

    data = {
        "action": {"lattice": [64, 64], "density": "m2/2*phi**2"},
        "lattice": {"collocation": 200, "hmc_samples": 1000},
        "sampling": {"n": 1000, "method": "smc"},
        "smc": {"particles": 1000, "replicas": 4},
    }
    check_resources(data, memory=4 * 2**30)  # 4e3 particles x 4096 sites x 8 B x 20 copies = 2.6 GB
    with pytest.raises(ConfigError, match=r"SMC particles.*\[smc\] particles = 100000"):
        check_resources({**data, "smc": {"particles": 100_000, "replicas": 4}}, memory=4 * 2**30)
    # the same particles without method = "smc" are not counted
    check_resources({**data, "sampling": {"n": 1000}, "smc": {"particles": 100_000}}, memory=4 * 2**30)
    # 0-D: O(3) particles
    zero_d = {
        "action": {"density": "phi1**2 + phi2**2 + phi3**2", "fields": ["phi1", "phi2", "phi3"]},
        "sampling": {"n": 1000, "method": "smc"},
        "smc": {"particles": 10**8, "replicas": 4},
    }
    with pytest.raises(ConfigError, match=r"SMC particles"):
        check_resources(zero_d, memory=4 * 2**30)
