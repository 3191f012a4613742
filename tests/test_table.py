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
        assert abs(s.observable(obs).deviation(reference.expectation(1.0, f))) < 4, obs
    lz = s.log_z()
    assert abs(lz.value - reference.log_z(1.0)) < 4 * lz.error + 1e-9


def test_coarse_table_still_exact(flow, reference):
    """64 nodes: a visibly wrong map (ESS/N < 1), yet exact weights give unbiased estimates."""
    s = flow.sample(200_000, seed=3, keep_layers=False, progress=False, table_nodes=64)
    assert flow.table_info.n_nodes == 64 and flow.table_info.max_interpolation_error > 1e-3
    assert s.ess < 1 - 1e-6  # the coarse map is not the flow...
    assert s.ess > 0.5
    assert abs(s.observable("phi**2").deviation(reference.expectation(1.0, lambda x: x**2))) < 4  # ...and still exact
    lz = s.log_z()
    assert abs(lz.deviation(reference.log_z(1.0))) < 4


def test_table_along_the_path(flow, reference):
    s = flow.sample(100_000, seed=4, progress=False)
    assert s.phi.shape == (26, 100_000, 1)
    for t in (0.0, 0.48, 1.0):
        assert s.ess_at(t) > 1 - 1e-9
        assert abs(s.observable("phi**2", t).deviation(reference.expectation(t, lambda x: x**2))) < 4
    # the t = 0 table is the base itself: log q is the normal density
    base = flow.base.log_prob(jnp.asarray(s.phi[0]))
    np.testing.assert_allclose(s.log_q[0], base, atol=1e-6)


def test_seeds_and_batches(flow):
    a = flow.sample(3000, seed=9, keep_layers=False, progress=False)
    b = flow.sample(3000, seed=9, keep_layers=False, progress=False, batch_size=1000)
    c = flow.sample(3000, seed=9, keep_layers=False, progress=False)
    np.testing.assert_array_equal(a.log_w, c.log_w)
    assert b.log_w.shape == a.log_w.shape and np.all(np.isfinite(b.log_w))


def test_table_needs_one_component_or_a_radial_flow():
    action = pf.Action("(phi1**2 + 2*phi2**2)/2", fields=["phi1", "phi2"])
    path = pf.Path(action, {})
    flow = pf.solve(path, steps=2, basis=pf.Polynomial(1), progress=False)
    with pytest.raises(pf.SamplingError, match="radial table needs"):  # not O(2): tests/test_radial.py
        flow.sample(10, method="table", progress=False)
    with pytest.raises(pf.SamplingError, match="method"):
        flow.sample(10, method="magic", progress=False)
    assert flow.sample(100, progress=False).logdet == "exact"
    jax.clear_caches()


def test_streamed_path_estimates(flow, reference):
    """Streaming sums give the same estimates as stored samples, and match quadrature at every step time."""
    n = 60_000
    pe = flow.path_estimates({"abs": "Abs(phi)", "phi2": phi**2}, n, seed=5, batch_size=1 << 20, progress=False)
    s = flow.sample(n, seed=5, progress=False, table_nodes=2048)  # path_estimates' default table
    for t in (0.0, 0.48, 1.0):
        a, b = pe.at("abs", t), s.observable("Abs(phi)", t)
        assert abs(a.value - b.value) < 1e-12 and abs(a.error - b.error) < 1e-12
        assert abs(pe.ess[round(t * 25)] - s.ess_at(t)) < 1e-12
    devs = [
        abs(pe.estimates["phi2"][k].deviation(reference.expectation(t, lambda x: x**2))) for k, t in enumerate(pe.times)
    ]
    assert max(devs) < 4.5  # 26 correlated estimates; 4.5 sigma keeps the false-alarm rate < 1e-4
    assert abs(pe.log_z[-1].deviation(reference.log_z(1.0))) < 4
    with pytest.raises(pf.SamplingError, match="not a step time"):
        pe.at("abs", 0.5)


def test_fused_scan_matches_quadrature(flow, reference):
    """The fused pass of the parameter scan (one look-up per sample for every step time, blocks of 512,
    two threads, a last batch that is not a whole number of blocks) against quadrature."""
    pe = flow.path_estimates({"abs": "Abs(phi)"}, 200_001, seed=11, batch_size=50_000, workers=2, progress=False)
    assert pe.n_nonfinite == 0 and np.all(pe.ess > 1 - 1e-7)  # 2048 nodes: measured 1 - ESS/N < 2e-9
    for t in (0.0, 0.52, 1.0):
        est = pe.at("abs", t)
        assert 0 < est.error < 3e-3  # ~ sd(|phi|) / sqrt(N) with ESS/N = 1
        assert abs(est.deviation(reference.expectation(t, np.abs))) < 4, t
    assert abs(pe.log_z[-1].deviation(reference.log_z(1.0))) < 4


def test_fused_scan_nonfinite_terms_and_threads(flow):
    """A batch with a non-finite observable is reduced again with per-sample tests: the estimate is that of
    the finite terms of the stored samples; one or two threads give the same sums."""
    obs = {"log": "log(phi)"}  # nan for phi < 0
    kw = dict(seed=3, batch_size=40_000, progress=False)
    a = flow.path_estimates(obs, 90_001, workers=1, **kw)
    b = flow.path_estimates(obs, 90_001, workers=2, **kw)
    s = flow.sample(90_001, table_nodes=2048, **kw)
    for k in (0, 12, 25):
        assert a.estimates["log"][k].value == b.estimates["log"][k].value
        lw, p = s.log_w[k], s.phi[k, :, 0]
        w = np.exp(lw - lw.max())
        with np.errstate(invalid="ignore"):
            o = np.log(p)
        ok = np.isfinite(o)
        assert abs(np.sum(w[ok] * o[ok]) / np.sum(w[ok]) - a.estimates["log"][k].value) < 1e-12


def test_table_of_an_asymmetric_path():
    """All parities of the sine basis (constant, phi, sines, cosines; Clenshaw sums) against the RK4 map."""
    action = pf.Action("m2/2*phi**2 + lam/4*phi**4 + h*phi", fields=["phi"])
    path = pf.Path.linear(action, start={"m2": 1.0, "lam": 0.0, "h": 0.0}, end={"m2": -1.0, "lam": 0.5, "h": 0.3})
    flow = pf.solve(path, steps=8, basis=pf.bases.Sine(n=8, max_frequency=4.0), progress=False, mode="parallel")
    assert not flow.equation.symmetric and flow.kernels.coeffs.shape[-1] == 18  # 1, phi, 8 sines, 8 cosines
    table, info = flow.table(1024)
    assert info.coverage > 1 - 1e-12 and info.max_interpolation_error < 1e-4
    w = jnp.linspace(-10.0, 10.0, 801)
    z, dz = _z_of_w(w)
    mean, sd = flow.base.mean[0], flow.base.cholesky_cov[0, 0]
    lq0 = -0.5 * z**2 - 0.5 * np.log(2 * np.pi) - jnp.log(sd)
    ph, lq = push(flow.kernels, (mean + sd * z)[:, None], lq0, steps=flow.steps, logdet="exact")
    f, log_slope = table.evaluate(w)
    # interpolation error of 1024 nodes (h = 0.072): values to 1e-4, log-derivatives to 1e-3
    np.testing.assert_allclose(f, ph[:, :, 0], atol=1e-4)
    np.testing.assert_allclose(lq0 + jnp.log(sd * dz) - log_slope, lq, atol=1e-3)


def test_bench_scan_flow_has_bounded_weights():
    """The flow of ``pikflow bench scan`` (layer-parallel solve, 200 + 100 collocation points out to
    S - min S = 36): over *every* sample the table can produce (|w| <= 36.9, i.e. |z| <= 8.3) and at every
    step time, the weight p/q stays within a few percent of its value at the centre. So no rare, large
    weights hide beyond the reach of N = 10^6 samples, and the delta-method errors are trustworthy."""
    action = pf.Action("m2/2*phi**2 + lam/4*phi**4", fields=["phi"])
    path = pf.Path.linear(action, start={"m2": 1.0, "lam": 0.0}, end={"m2": -2.0, "lam": 0.5})
    col = pf.solvers.Collocation(n_samples=200, n_tail=100, tail_gap=36.0)
    flow = pf.solve(path, steps=50, collocation=col, mode="parallel", progress=False)
    table, info = flow.table(2048)
    assert info.coverage > 1 - 1e-12 and info.max_interpolation_error < 1e-4  # measured 1.6e-5
    w = jnp.linspace(-36.9, 36.9, 20001)  # centre at index 10000
    log_pw = -jnp.logaddexp(0.0, w) - jnp.logaddexp(0.0, -w)
    f, log_slope = table.evaluate(w)
    for k, t in enumerate(np.arange(51) / 50):
        s = jax.vmap(flow.equation.action_fn, in_axes=(0, None))(f[k][:, None], t)
        lw = -s - (log_pw - log_slope[k])
        assert np.all(np.isfinite(lw))
        assert np.max(np.abs(lw - lw[10000])) < 0.05, t  # measured 0.013
