"""The tabulated monotone map of one-component flows (``Flow.sample(method="table")``).

The table is an approximation of the RK4 map, but the weights are exact for the map
actually applied (its own derivative gives log q), so estimates must agree with
quadrature within their errors even for a deliberately coarse table. Tolerances: 4
standard errors (a correct sampler fails with probability < 1e-4 per number).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import pikflow as pf
from pikflow.flow._integrate import push
from pikflow.flow._tabulated import _z_of_w

phi = sp.Symbol("phi")


@pytest.fixture(scope="module")
def flow():
    action = pf.Action("m2/2*phi**2 + lam/4*phi**4", fields=["phi"])
    path = pf.Path.linear(action, start={"m2": 1.0, "lam": 0.0}, end={"m2": -2.0, "lam": 0.5})
    return pf.solve(path, steps=25, progress=False)


@pytest.fixture(scope="module")
def reference():
    return pf.exact.QuadratureReference.phi4()


def test_table_follows_the_rk4_map(flow):
    table, info = flow.table()
    assert info.coverage > 1 - 1e-12  # the RK4 map is monotone out to |z| ~ 8 on this path
    assert info.max_interpolation_error < 1e-6  # cubic Hermite, h = 74/8191 (measured 7e-8)
    # the same base points, pushed by RK4 with the exact log-Jacobian and looked up in the table
    w = jnp.linspace(-12.0, 12.0, 2001)
    z, dz = _z_of_w(w)
    mean, sd = flow.base.mean[0], flow.base.cholesky_cov[0, 0]
    x = (mean + sd * z)[:, None]
    lq0 = -0.5 * z**2 - 0.5 * np.log(2 * np.pi) - jnp.log(sd)
    ph, lq = push(flow.kernels, x, lq0, steps=flow.steps, logdet="exact")
    f, log_slope = table.evaluate(w, -1)
    np.testing.assert_allclose(f, ph[-1, :, 0], atol=1e-6)
    # log q in phi from the table: log p_w(w) - log F'(w), with log p_w = log p_z + log dz/dw
    np.testing.assert_allclose(lq0 + jnp.log(sd * dz) - log_slope + jnp.log(sd), lq[-1] + jnp.log(sd), atol=1e-5)


def test_table_sampling_matches_quadrature(flow, reference):
    s = flow.sample(400_000, seed=2, keep_layers=False, progress=False)
    assert s.logdet == "table" and s.n_nonfinite == 0
    assert s.ess > 1 - 1e-9
    for obs, f in (("Abs(phi)", np.abs), ("phi**2", lambda x: x**2), ("phi", lambda x: x)):
        assert s.observable(obs).deviation(reference.expectation(1.0, f)) < 4, obs
    lz = s.log_z()
    assert abs(lz.value - reference.log_z(1.0)) < 4 * lz.error + 1e-9


def test_coarse_table_still_exact(flow, reference):
    """64 nodes: a visibly wrong map (ESS/N < 1), yet exact weights give unbiased estimates."""
    s = flow.sample(200_000, seed=3, keep_layers=False, progress=False, table_nodes=64)
    assert flow.table_info.n_nodes == 64 and flow.table_info.max_interpolation_error > 1e-3
    assert s.ess < 1 - 1e-6  # the coarse map is not the flow...
    assert s.ess > 0.5
    assert s.observable("phi**2").deviation(reference.expectation(1.0, lambda x: x**2)) < 4  # ...and still exact
    lz = s.log_z()
    assert lz.deviation(reference.log_z(1.0)) < 4


def test_table_along_the_path(flow, reference):
    s = flow.sample(100_000, seed=4, progress=False)
    assert s.phi.shape == (26, 100_000, 1)
    for t in (0.0, 0.48, 1.0):
        assert s.ess_at(t) > 1 - 1e-9
        assert s.observable("phi**2", t).deviation(reference.expectation(t, lambda x: x**2)) < 4
    # the t = 0 table is the base itself: log q is the normal density
    base = flow.base.log_prob(jnp.asarray(s.phi[0]))
    np.testing.assert_allclose(s.log_q[0], base, atol=1e-6)


def test_seeds_and_batches(flow):
    a = flow.sample(3000, seed=9, keep_layers=False, progress=False)
    b = flow.sample(3000, seed=9, keep_layers=False, progress=False, batch_size=1000)
    c = flow.sample(3000, seed=9, keep_layers=False, progress=False)
    np.testing.assert_array_equal(a.log_w, c.log_w)
    assert b.log_w.shape == a.log_w.shape and np.all(np.isfinite(b.log_w))


def test_table_needs_one_component():
    action = pf.Action("(phi1**2 + phi2**2)/2", fields=["phi1", "phi2"])
    path = pf.Path(action, {})
    flow = pf.solve(path, steps=2, progress=False)
    with pytest.raises(pf.SamplingError, match="one field component"):
        flow.sample(10, method="table", progress=False)
    with pytest.raises(pf.SamplingError, match="method"):
        flow.sample(10, method="magic", progress=False)
    assert flow.sample(100, progress=False).logdet == "exact"
    jax.clear_caches()


def test_streamed_path_estimates(flow, reference):
    """Streaming sums give the same estimates as stored samples, and match quadrature at every step time."""
    n = 60_000
    pe = flow.path_estimates({"abs": "Abs(phi)", "phi2": phi**2}, n, seed=5, batch_size=1 << 20, progress=False)
    s = flow.sample(n, seed=5, progress=False)
    for t in (0.0, 0.48, 1.0):
        a, b = pe.at("abs", t), s.observable("Abs(phi)", t)
        assert abs(a.value - b.value) < 1e-12 and abs(a.error - b.error) < 1e-12
        assert abs(pe.ess[round(t * 25)] - s.ess_at(t)) < 1e-12
    devs = [pe.estimates["phi2"][k].deviation(reference.expectation(t, lambda x: x**2)) for k, t in enumerate(pe.times)]
    assert max(devs) < 4.5  # 26 correlated estimates; 4.5 sigma keeps the false-alarm rate < 1e-4
    assert pe.log_z[-1].deviation(reference.log_z(1.0)) < 4
    with pytest.raises(pf.SamplingError, match="not a step time"):
        pe.at("abs", 0.5)
