"""The basis's frequency range follows the scale of p_t (solve(frequency_range="auto"), issue #14).

References: the exact widths of Gaussian p_t; the same kernel written with explicitly divided
frequencies; the exact free-field flow (ESS = 1); save/load.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

import pikflow as pf
from pikflow.flow import LinearKernel
from pikflow.flow._frequency import EPSILON, layer_scale, quantile_width
from pikflow.lowering import lower


def _gauss_path(sigma):
    action = pf.Action("m2/2*phi**2", fields=["phi"])
    return pf.Path.linear(action, start={"m2": 1.0}, end={"m2": 1.0 / sigma**2})


def test_the_scale_is_the_width_of_p_t():
    # p_t = N(0, 1/m2(t)), m2 = (1-t) + t/sigma^2: width ratio = sqrt(m2(0)/m2(t)) exactly
    sigma = 0.3
    path = _gauss_path(sigma)
    fn = lower(path.expr, path.fields, what="action")
    z = norm.ppf(1 - EPSILON)
    assert float(quantile_width(fn, jnp.asarray(0.0))) == pytest.approx(2 * z, rel=1e-4)
    for t in (0.0, 0.3, 1.0):
        m2 = (1 - t) + t / sigma**2
        # quadrature on 8001 nodes over the +-40-action range: interpolated quantiles to ~1e-4
        assert float(layer_scale(fn, jnp.asarray(t))) == pytest.approx(1 / np.sqrt(m2), rel=1e-3)


def test_a_scaled_kernel_is_the_basis_with_divided_frequencies():
    s = 0.4
    basis = pf.bases.Sine(n=5, max_frequency=6.0)
    divided = pf.bases.Sine([w / s for w in basis.frequencies])
    path = _gauss_path(1.0)
    eq = pf.WegnerEquation(path, basis)
    eq2 = pf.WegnerEquation(path, divided)
    c = np.random.default_rng(0).normal(size=eq.n_basis)
    k = LinearKernel(jnp.asarray(c), eq.values, eq.divergences, jnp.asarray(s))
    c2 = c.copy()
    c2[0] /= s  # the linear term phi/s
    k2 = LinearKernel(jnp.asarray(c2), eq2.values, eq2.divergences)
    for x in (-2.3, 0.1, 1.7):
        p = jnp.asarray([x])
        np.testing.assert_allclose(k(p), k2(p), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(k.divergence(p), k2.divergence(p), rtol=1e-12, atol=1e-12)
    # and the system of eq. 19 with the stretched columns is the one of the divided basis
    pts = jnp.linspace(-3, 3, 7)[:, None]
    A, b = eq.scaled_system(pts, jnp.asarray(0.5), jnp.asarray(s))
    A2, b2 = eq2.system(pts, jnp.asarray(0.5))
    A2 = A2.at[:, 0].divide(s)
    np.testing.assert_allclose(A, A2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, b2)


def test_a_scaled_flow_is_exact_on_a_gaussian_and_survives_save_load(tmp_path):
    # narrowing Gaussian: the exact kernel is linear, so ESS/N = 1 up to RK4 error
    flow = pf.solve(_gauss_path(0.3), steps=6, progress=False, frequency_range="auto")
    assert flow.settings["frequency_range"] == "auto"
    scale = np.asarray(flow.kernels.scale)
    assert scale[0] == pytest.approx(1.0) and scale[-1] == pytest.approx(0.3, rel=1e-3)
    s1 = flow.sample(5_000, seed=1, keep_layers=False, progress=False)
    assert s1.ess > 0.999
    flow.save(tmp_path / "f")
    back = pf.Flow.load(tmp_path / "f")
    np.testing.assert_allclose(np.asarray(back.kernels.scale), scale)
    s2 = back.sample(5_000, seed=1, keep_layers=False, progress=False)
    np.testing.assert_allclose(s2.final, s1.final, rtol=1e-12)
    fixed = pf.solve(_gauss_path(0.3), steps=6, progress=False)  # the default
    assert fixed.kernels.scale is None and fixed.settings["frequency_range"] == "fixed"
    with pytest.raises(pf.SolveError, match="frequency_range"):
        pf.solve(_gauss_path(0.3), steps=6, progress=False, frequency_range="wide")
