"""The tabulated radial map of O(N) flows (``Flow.sample(method="table")`` for several components).

The radial table approximates the RK4 map of the radius, but its weights are exact for
the map applied (its own derivative and the r^(N-1) Jacobian give log q), so estimates
must agree with radial quadrature within their errors. Tolerances: 4 standard errors (a
correct sampler fails with probability < 1e-4 per number); table-vs-RK4 agreement within
the table's own measured interpolation error (about 1e-12 here) times a margin.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pikflow as pf
from pikflow.flow._integrate import push
from pikflow.flow._radial import chi_quantile


def o_n_path(n):
    fields = [f"phi{i + 1}" for i in range(n)]
    r2 = "(" + " + ".join(f"{f}**2" for f in fields) + ")"
    action = pf.Action(f"m2/2*{r2} + lam/4*{r2}**2", fields=fields)
    return pf.Path.linear(action, start={"m2": 1.0, "lam": 0.0}, end={"m2": -2.0, "lam": 0.5})


@pytest.fixture(scope="module", params=[2, 3], ids=["O2", "O3"])
def model(request):
    path = o_n_path(request.param)
    flow = pf.solve(path, steps=10, basis=pf.Radial(8), progress=False)
    return flow, pf.exact.radial_reference(path)


def test_radial_reference_matches_the_gaussian():
    """The radial quadrature itself: at t = 0 the O(N) model is a unit Gaussian, <r^2> = N, Z = (2 pi)^(N/2)."""
    for n in (2, 3, 5):
        ref = pf.exact.radial_reference(o_n_path(n))
        assert ref.expectation(0.0, np.square) == pytest.approx(n, rel=1e-12)
        assert ref.log_z(0.0) == pytest.approx(0.5 * n * np.log(2 * np.pi), rel=1e-12)
    with pytest.raises(pf.PikflowError, match="O\\(N\\)-invariant"):
        pf.exact.radial_reference(pf.Path(pf.Action("(a**2 + 2*b**2)/2", fields=["a", "b"]), {}))


def test_chi_quantile_both_tails():
    """r0(w) is the chi_N quantile: the CDF at r0 gives back u = sigma(w) in both tails; dr0/dw by differences."""
    from scipy import special

    w = np.linspace(-36.9, 36.9, 2001)
    for n in (2, 3, 4):
        rho, drho = chi_quantile(w, n)
        lower = special.gammainc(0.5 * n, 0.5 * rho**2)
        upper = special.gammaincc(0.5 * n, 0.5 * rho**2)
        np.testing.assert_allclose(np.where(w < 0, lower, upper), special.expit(-np.abs(w)), rtol=1e-10)
        h = 1e-5
        fd = (chi_quantile(w + h, n)[0] - chi_quantile(w - h, n)[0]) / (2 * h)
        np.testing.assert_allclose(drho, fd, rtol=1e-6)


def test_auto_picks_the_radial_table_and_matches_quadrature(model):
    flow, ref = model
    n = flow.n_fields
    s = flow.sample(200_000, seed=2, keep_layers=False, progress=False)
    assert s.logdet == "table" and s.n_nonfinite == 0 and s.final.shape == (200_000, n)
    info = flow.table_info
    assert info.coverage > 1 - 1e-12 and info.max_interpolation_error < 1e-8
    assert s.ess > 0.999  # the flow's own quality (steps = 10, degree 8): measured 1 - 2e-5
    r2 = " + ".join(f"phi{i + 1}**2" for i in range(n))
    checks = {
        f"sqrt({r2})": ref.expectation(1.0, lambda r: r),
        r2: ref.expectation(1.0, np.square),
        "phi1**2": ref.expectation(1.0, np.square) / n,
        f"phi{n}": 0.0,
        f"phi1*phi{n}": 0.0,
    }
    for obs, exact in checks.items():
        assert s.observable(obs).deviation(exact) < 4, obs
    assert s.log_z().deviation(ref.log_z(1.0)) < 4


def test_radial_table_along_the_path(model):
    flow, ref = model
    s = flow.sample(50_000, seed=5, progress=False)
    assert s.phi.shape == (11, 50_000, flow.n_fields)
    # t = 0: the table is the Gaussian base itself, so log q is the normal density
    np.testing.assert_allclose(s.log_q[0], flow.base.log_prob(jnp.asarray(s.phi[0])), atol=1e-9)
    r2 = " + ".join(f"phi{i + 1}**2" for i in range(flow.n_fields))
    for t in (0.0, 0.5, 1.0):
        assert s.ess_at(t) > 0.999
        assert s.observable(r2, t).deviation(ref.expectation(t, np.square)) < 4


def test_path_estimates_use_the_radial_table(model):
    """Streamed estimates at every step time: the radial table's samples, reduced without storing them."""
    flow, ref = model
    r2 = " + ".join(f"phi{i + 1}**2" for i in range(flow.n_fields))
    pe = flow.path_estimates({"r2": r2}, 30_000, seed=3, batch_size=10_000, progress=False)
    s = flow.sample(30_000, seed=3, batch_size=10_000, progress=False)
    for t in (0.5, 1.0):
        k = int(round(t * flow.steps))
        assert pe.estimates["r2"][k].value == pytest.approx(s.observable(r2, t).value, rel=1e-10)
        assert pe.estimates["r2"][k].deviation(ref.expectation(t, np.square)) < 4
    assert pe.log_z[-1].deviation(ref.log_z(1.0)) < 4


def test_radial_table_follows_rk4_on_the_same_base_points(model):
    """The same base points (radius from w, a direction) pushed by RK4 with the exact log-Jacobian:
    the radius, the untouched direction and log q agree to the table's accuracy."""
    flow, _ = model
    n = flow.n_fields
    radial, info = flow.table()
    w = np.linspace(-30.0, 30.0, 601)
    rho, _ = chi_quantile(w, n)
    sd = float(flow.base.cholesky_cov[0, 0])
    direction = np.random.default_rng(0).normal(size=(w.size, n))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    phi0 = jnp.asarray(sd * rho[:, None] * direction)
    ph, lq = push(flow.kernels, phi0, flow.base.log_prob(phi0), steps=flow.steps, logdet="exact")
    r, log_slope = radial.radius.evaluate(jnp.asarray(w), -1)
    log_pw = -np.logaddexp(0.0, w) - np.logaddexp(0.0, -w)
    lq_table = radial.log_density(jnp.exp(log_pw), r, jnp.exp(log_slope))
    tol = 1e3 * info.max_interpolation_error + 1e-12
    np.testing.assert_allclose(np.asarray(ph[-1]), np.asarray(r)[:, None] * direction, atol=tol)
    np.testing.assert_allclose(np.asarray(lq_table), np.asarray(lq[-1]), atol=1e-7)


def test_weights_exact_for_the_applied_map(model):
    """log q of the sampler equals the change of variables of the applied map (w, angles) -> phi,
    with the Jacobian determinant by forward-mode autodiff (an independent computation)."""
    flow, _ = model
    n = flow.n_fields
    radial, _ = flow.table()
    key = jax.random.key(3, impl="rbg")
    phi, lq = radial.sample(key, 500, all_times=False)
    u, v, w = radial.radius.uniforms(key, 500)
    nhat = radial.directions(jax.random.fold_in(key, 1), 500)

    def radius(wi):
        return radial.radius.evaluate(wi[None], -1)[0][0]

    if n == 2:  # (w, theta), density p_w(w) / (2 pi)
        angles = jnp.arctan2(nhat[:, 1], nhat[:, 0])[:, None]

        def apply(x):
            return radius(x[0]) * jnp.stack([jnp.cos(x[1]), jnp.sin(x[1])])

        log_angle_density = -jnp.log(2 * jnp.pi)
    else:  # (w, z, theta): Archimedes, density p_w(w) / (4 pi)
        angles = jnp.stack([nhat[:, 2], jnp.arctan2(nhat[:, 1], nhat[:, 0])], axis=1)

        def apply(x):
            rho = jnp.sqrt(1 - x[1] ** 2)
            return radius(x[0]) * jnp.stack([rho * jnp.cos(x[2]), rho * jnp.sin(x[2]), x[1]])

        log_angle_density = -jnp.log(4 * jnp.pi)
    x = jnp.concatenate([w[:, None], angles], axis=1)
    np.testing.assert_allclose(np.asarray(jax.vmap(apply)(x)), np.asarray(phi), rtol=1e-12, atol=1e-14)
    logdet = jnp.linalg.slogdet(jax.vmap(jax.jacfwd(apply))(x))[1]
    want = jnp.log(u * v) + log_angle_density - logdet
    np.testing.assert_allclose(np.asarray(lq), np.asarray(want), rtol=1e-10, atol=1e-10)


def test_laguerre_ray_is_the_kernel(model):
    """The table's fast radial velocity (Laguerre recurrence) is the lowered kernel on the ray r e_1, and
    the kernel is along phi elsewhere (what the table relies on)."""
    from pikflow.flow._radial import _radial_velocity, check_equivariant

    flow, _ = model
    fast = _radial_velocity(flow)
    assert fast.__name__ == "laguerre"
    r = jnp.linspace(0.0, 6.0, 97)
    e1 = jnp.zeros(flow.n_fields).at[0].set(1.0)
    for t in (0.0, 0.35, 1.0):
        k = flow.kernel(t)
        f, df = fast(k, r)
        want, dwant = jax.jvp(lambda q, k=k: jax.vmap(k)(q[:, None] * e1)[:, 0], (r,), (jnp.ones_like(r),))
        np.testing.assert_allclose(f, want, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(df, dwant, rtol=1e-10, atol=1e-11)
    assert check_equivariant(flow.kernels, flow.n_fields, 1.0) < 1e-12


def test_coarse_radial_table_still_exact(model):
    """16 nodes: a visibly wrong map, yet unbiased estimates."""
    flow, ref = model
    s = flow.sample(100_000, seed=7, keep_layers=False, progress=False, table_nodes=16)
    assert flow.table_info.n_nodes == 16 and flow.table_info.max_interpolation_error > 1e-3
    assert s.ess > 0.3
    r2 = " + ".join(f"phi{i + 1}**2" for i in range(flow.n_fields))
    assert s.observable(r2).deviation(ref.expectation(1.0, np.square)) < 4
    assert s.log_z().deviation(ref.log_z(1.0)) < 4


def test_radial_table_refuses_what_is_not_radial():
    """A non-isotropic base or a kernel that is not along phi: a clear error, and auto falls back to RK4."""
    aniso = pf.Path(pf.Action("(a**2 + 2*b**2)/2 + lam/4*(a**2 + b**2)**2", fields=["a", "b"]), {"lam": [0.0, 0.1]})
    flow = pf.solve(aniso, steps=1, basis=pf.Polynomial(1), progress=False)
    with pytest.raises(pf.SamplingError, match="isotropic Gaussian base"):
        flow.sample(10, method="table", progress=False)
    assert flow.sample(100, progress=False).logdet == "exact"
    # an isotropic base, but g a^4 breaks O(2): the linear kernel v = A phi is not along phi
    iso = pf.Path(pf.Action("(a**2 + b**2)/2 + g*a**4", fields=["a", "b"]), {"g": [0.0, 0.2]})
    flow = pf.solve(iso, steps=1, basis=pf.Polynomial(1), progress=False)
    with pytest.raises(pf.SamplingError, match="not radial"):
        flow.sample(10, method="table", progress=False)
    assert flow.sample(100, progress=False).logdet == "exact"
