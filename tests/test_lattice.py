"""Tests of pikflow.lattice: symbolic lattice actions, stencils, Omega bases, free fields, conventions.

References are independent of the code under test: JAX autodiff (``jax.grad``, the trace
of ``jax.hessian``) of the summed action or basis values, hand-written actions with
explicit ``jnp.roll``, exact free-field formulas (SCIENCE.md section 3), and the exact
log-determinant of the RK4 map.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import pikflow as pf  # noqa: F401  (float64)
from pikflow import ActionError, BasisError
from pikflow.lattice import (
    HOPPING_DENSITY,
    NF_DENSITY,
    NF_FIELD_SCALE,
    PHI4_DENSITY,
    GaussianLatticeBase,
    Lattice,
    LatticeAction,
    LatticePath,
    d,
    free_kernel,
    from_hopping,
    hopping_field_scale,
    lattice_basis,
    mu,
    phi,
    shift,
    solve_lattice,
    sum_mu,
    to_hopping,
)

SHAPES = {1: (4,), 2: (4, 4), 3: (4, 4, 4)}
# A density with every grammar element: shifts both ways, a double shift, d, non-polynomial terms.
ODD = (
    "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"
    " + g*sum_mu(shift(phi, mu, -1)**2*shift(shift(phi, mu), mu)) + 0.1*cosh(phi)"
)


def phi4_path(shape, start=(1.0, 0.0), end=(-1.0, 1.0)):
    S = LatticeAction(PHI4_DENSITY, shape)
    return LatticePath(S, {"m2": (start[0], end[0]), "lam": (start[1], end[1])})


def explicit_phi4(x, m2, lam):
    """Eq. 31 written by hand with jnp.roll."""
    dim = x.ndim
    hop = sum(x * jnp.roll(x, -1, axis=a) for a in range(dim))
    return jnp.sum(0.5 * (m2 + 2 * dim) * x**2 - hop + lam / 4 * x**4)


# ---------------------------------------------------------------- parsing
def test_density_expands_to_site_symbols():
    S = LatticeAction(PHI4_DENSITY, [4, 4])
    p10, p01 = sp.Symbol("phi_1_0", real=True), sp.Symbol("phi_0_1", real=True)
    m2, lam, ph = sp.symbols("m2 lam phi", real=True)
    expected = (m2 + 4) / 2 * ph**2 - ph * p10 - ph * p01 + lam / 4 * ph**4
    assert sp.expand(S.expr - expected) == 0
    assert [str(c) for c in S.couplings] == ["lam", "m2"]


def test_sympy_objects_give_the_same_action():
    m2, lam = sp.symbols("m2 lam")
    dens = (m2 + 2 * d) / 2 * phi**2 - sum_mu(phi * shift(phi, mu)) + lam / 4 * phi**4
    a = LatticeAction(dens, [4, 4, 4])
    b = LatticeAction(PHI4_DENSITY, [4, 4, 4])
    assert sp.expand(a.expr - b.expr) == 0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("phi**2 + foo(phi)", "unknown function"),
        ("phi*shift(phi, mu)", "only defined inside sum_mu"),
        ("phi*shift(phi, 5)", "integer 0..1"),
        ("phi**2 + lambda*phi**4", "keyword"),
        ("phi**2 +", "cannot parse"),
        ("", "empty"),
        ("m2*mu", "outside sum_mu"),
    ],
)
def test_bad_densities_raise_action_error(text, match):
    with pytest.raises(ActionError, match=match):
        LatticeAction(text, [4, 4])


@pytest.mark.parametrize("shape", [(), (4, 4, 4, 4, 4), (1, 4), (4.0,), "x"])
def test_bad_lattices_raise(shape):
    with pytest.raises(ActionError):
        Lattice(shape)


def test_path_needs_every_coupling():
    with pytest.raises(ActionError, match="no value"):
        LatticePath(LatticeAction(PHI4_DENSITY, [4]), {"m2": 1.0})


# ---------------------------------------------------------------- stencils
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_action_value_matches_explicit_rolls(dim, getkey):
    path = phi4_path(SHAPES[dim])
    x = jax.random.normal(getkey(), SHAPES[dim])
    for t in (0.0, 0.37, 1.0):
        m2, lam = 1.0 - 2.0 * t, t
        np.testing.assert_allclose(path.value(x, t), explicit_phi4(x, m2, lam), rtol=1e-13)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_gradient_and_laplacian_stencils_match_autodiff(dim, getkey):
    S = LatticeAction(ODD, SHAPES[dim])
    path = LatticePath(S, {"m2": (1.0, -1.0), "lam": (0.0, 1.0), "g": "0.3*t**2"})
    V = int(np.prod(SHAPES[dim]))
    for t in (0.0, 0.61):
        x = jax.random.normal(getkey(), SHAPES[dim])
        total = lambda f: path.value(f, t)  # noqa: B023
        # float64 round-off on O(10) numbers: 1e-12
        np.testing.assert_allclose(path.gradient(x, t), jax.grad(total)(x), atol=1e-12)
        hess_trace = jnp.trace(jax.hessian(total)(x).reshape(V, V))
        np.testing.assert_allclose(path.laplacian(x, t), hess_trace, rtol=1e-12)
        dsdt = jax.grad(lambda s: path.value(x, s))(t)  # noqa: B023
        np.testing.assert_allclose(path.dsdt(x, t), dsdt, rtol=1e-12)


# ---------------------------------------------------------------- Omega bases
@pytest.mark.parametrize("dim,tame", [(1, None), (2, None), (3, None), (2, 1.5)])
def test_basis_gradient_laplacian_columns_match_autodiff(dim, tame, getkey):
    lat = Lattice(SHAPES[dim])
    # tamed: smoothing with a non-trivial K(k) (a matched base's) and widths of ~1.5 sigma, so the
    # random configurations below reach the tamed region and every closed-form derivative is exercised
    K = None if tame is None else 0.3 + lat.khat2() + 0.1 * np.cos(lat.khat2())
    B = lattice_basis(
        lat,
        local_range=1,
        local_degree=4,
        magnetisation=(4, 6),
        scales=(0.0, 1.0),
        powers=(4, 6),
        precision=K,
        tame=tame,
    )
    V = lat.volume
    x = jax.random.normal(getkey(), lat.shape)
    a = jax.random.normal(getkey(), (B.n,))
    dS = jax.random.normal(getkey(), lat.shape)
    omega = lambda f: jnp.dot(a, B.values(f))
    np.testing.assert_allclose(B.gradient(a, x), jax.grad(omega)(x), atol=1e-11)
    np.testing.assert_allclose(B.laplacian(a, x), jnp.trace(jax.hessian(omega)(x).reshape(V, V)), rtol=1e-11)
    jac = jax.jacfwd(B.values)(x).reshape(B.n, V)
    laps = jax.vmap(lambda i: jnp.trace(jax.hessian(lambda f: B.values(f)[i])(x).reshape(V, V)))(jnp.arange(B.n))
    np.testing.assert_allclose(B.columns(x, dS), laps - jac @ dS.reshape(-1), atol=1e-10)


def test_tamed_powers_grow_quadratically():
    """f_p(x) = x^p (1 + x^2/c^2)^(-(p-2)/2): x^p near 0, c^(p-2) x^2 far out (bounded velocity growth)."""
    from pikflow.lattice import tamed_power

    for p in (4, 6):
        assert tamed_power(1e-3, p, 2.0) == pytest.approx(1e-3**p, rel=1e-6)
        assert tamed_power(1e6, p, 2.0) == pytest.approx(2.0 ** (p - 2) * 1e12, rel=1e-6)


def test_local_hermite_counts_and_errors():
    lat = Lattice((8, 8))
    # range 1, degree 4, pairs, Z2-even: He2, He4, He1He1, He1He3, He2He2 (He3He1 is a reflection of He1He3)
    assert lattice_basis(lat, fourier=False, magnetisation=(), scales=()).n == 5
    # with the Fourier term the quadratic local terms (He2, He1He1) are in its span and left out
    assert lattice_basis(lat, magnetisation=(), scales=()).families[-1].n == 3
    with pytest.raises(BasisError, match="too long"):
        lattice_basis(Lattice((4, 4)), local_range=2)


# ---------------------------------------------------------------- free fields
def test_gaussian_base_is_exact(getkey):
    lat = Lattice((4, 4))
    path = phi4_path(lat.shape, start=(0.7, 0.0))
    base = GaussianLatticeBase.from_path(path)
    np.testing.assert_allclose(base.precision, 0.7 + lat.khat2(), rtol=1e-13)
    # normalisation against the dense precision matrix (Hessian of S_0)
    Kd = jax.hessian(lambda f: path.value(f, 0.0))(jnp.zeros(lat.shape)).reshape(16, 16)
    x, lq = base.sample(getkey(), 5)
    dense = (
        0.5 * np.linalg.slogdet(Kd)[1]
        - 8 * np.log(2 * np.pi)
        - 0.5 * jnp.einsum("na,ab,nb->n", x.reshape(5, -1), Kd, x.reshape(5, -1))
    )
    np.testing.assert_allclose(lq, dense, rtol=1e-12)
    np.testing.assert_allclose(base.log_prob(x), dense, rtol=1e-12)
    # covariance: <phi_0 phi_r> = (1/V) sum_k cos(k r)/K(k); 40000 samples, 5 sigma on each entry
    x, _ = base.sample(getkey(), 40000)
    corr = np.mean(np.asarray(x[:, 0, 0])[:, None] * np.asarray(x.reshape(40000, -1)), axis=0)
    exact = np.real(np.fft.ifftn(1.0 / np.asarray(base.precision))).reshape(-1)
    sigma = np.sqrt((exact[0] * exact[0] + exact**2) / 40000)
    assert np.all(np.abs(corr - exact) < 5 * sigma)


def test_base_must_be_gaussian_and_positive():
    with pytest.raises(ActionError, match="quadratic"):
        GaussianLatticeBase.from_path(phi4_path((4, 4), start=(1.0, 0.5)))
    with pytest.raises(ActionError, match="normalisable"):
        GaussianLatticeBase.from_path(phi4_path((4, 4), start=(-1.0, 0.0)))


def test_free_flow_reproduces_exact_kernel_and_sampler(getkey):
    """Flow between two masses: with the Fourier term the kernel is exact (SCIENCE.md 3)."""
    lat = Lattice((16, 16))
    path = LatticePath(LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", lat), {"m2": (1.0, 0.1)})
    B = lattice_basis(lat, magnetisation=(), scales=(), local_range=None)
    flow = solve_lattice(path, B, steps=4, n_collocation=300, progress=False)
    assert flow.residuals().max() < 1e-10  # exact up to round-off
    x = jax.random.normal(getkey(), (3, *lat.shape))
    for layer in (0, 5, 8):
        v, exact = flow.velocity(layer, x), free_kernel(path, flow.times[layer], x)
        # free_kernel's central difference in t: relative error ~1e-10
        assert np.abs(v - exact).max() < 1e-8 * np.abs(exact).max()
    samples = flow.sample(getkey(), 1000)
    # log q from RK4 of d log q/dt = Delta Omega with 4 steps; ESS deficit ~ var(log w) is O(dt^8) tiny
    assert samples.ess() > 0.999
    assert samples.n_nonfinite == 0


def test_continuous_log_density_matches_exact_jacobian(getkey):
    """d log q/dt = +Delta Omega, integrated with RK4, agrees with log|det| of the RK4 map (phi^4, d = 1)."""
    path = phi4_path((4,))
    flow = solve_lattice(path, steps=8, n_collocation=300, progress=False)
    x0, lq0 = flow.base.sample(getkey(), 4)
    _, lq1 = flow.push(x0, lq0)

    def one(x):
        return flow.push(x[None], jnp.zeros(1))[0][0]

    for i in range(4):
        logdet = jnp.linalg.slogdet(jax.jacfwd(one)(x0[i]))[1]
        # the continuous log-density differs from the discrete map's by O(dt^4) ~ 1e-4 at 8 steps
        assert abs((lq1[i] - lq0[i]) + logdet) < 1e-3
    # the public check and the exact sampler use the same log|det| of the applied map
    assert np.abs(flow.log_density_error(getkey(), 4)).max() < 1e-3
    key = getkey()
    cont, exact = flow.sample(key, 3), flow.sample(key, 3, logdet="exact")
    np.testing.assert_allclose(exact.fields, cont.fields, atol=1e-12)  # same samples
    x0, lq0 = flow.base.sample(jax.random.fold_in(key, 0), 3)
    target = -jax.vmap(lambda x: flow.path.value(x, 1.0))(exact.fields)
    for i in range(3):
        logdet = jnp.linalg.slogdet(jax.jacfwd(one)(x0[i]).reshape(4, 4))[1]
        np.testing.assert_allclose(exact.log_w[i], target[i] - (lq0[i] - logdet), rtol=1e-12, atol=1e-10)


# ---------------------------------------------------------------- conventions
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_conventions_give_equal_actions(dim, getkey):
    shape = SHAPES[dim]
    x = jax.random.normal(getkey(), shape)
    ours = lambda m2, lam: LatticePath(LatticeAction(PHI4_DENSITY, shape), {"m2": m2, "lam": lam}).value
    # hopping form: phi = sqrt(2 kappa) varphi
    kappa, lam_k = 0.23, 0.37
    m2, lam = from_hopping(kappa, lam_k, dim)
    hop = LatticePath(LatticeAction(HOPPING_DENSITY, shape), {"kappa": kappa, "lam_k": lam_k}).value
    np.testing.assert_allclose(ours(m2, lam)(hopping_field_scale(kappa) * x, 1.0), hop(x, 1.0), rtol=1e-12)
    np.testing.assert_allclose(to_hopping(m2, lam, dim), (kappa, lam_k), rtol=1e-12)
    # normalising-flow convention: same (m2, lam), phi = sqrt(2) chi
    nf = LatticePath(LatticeAction(NF_DENSITY, shape), {"m2": -4.0, "lam": 8.0}).value
    np.testing.assert_allclose(ours(-4.0, 8.0)(NF_FIELD_SCALE * x, 1.0), nf(x, 1.0), rtol=1e-12)


def test_hopping_check_values():
    """SCIENCE.md 6: (0.25, 0.5) in d = 2 is (-4, 8); (0.25, 0.01) is (-0.08, 0.16)."""
    np.testing.assert_allclose(from_hopping(0.25, 0.5, 2), (-4.0, 8.0), rtol=1e-14)
    np.testing.assert_allclose(from_hopping(0.25, 0.01, 2), (-0.08, 0.16), rtol=1e-12)


# ---------------------------------------------------------------- the default pipeline (matched base)
def test_fit_lattice_matched_base_agrees_with_hmc():
    """fit_lattice's defaults on 4x4 phi^4 (-1, 1): high ESS, observables = HMC within errors, no runaway blow-up."""
    import pikflow.lattice as pl

    action = pl.LatticeAction(pl.PHI4_DENSITY, [4, 4])
    target = pl.LatticePath(action, {"m2": -1.0, "lam": 1.0})
    flow = pl.fit_lattice(target, steps=6, n_collocation=400, hmc_samples=1500, seed=3, progress=False)
    assert flow.info["base"] == "matched" and isinstance(flow.basis.families[-1], pl.SmoothedProducts)
    samples = flow.sample(jax.random.PRNGKey(7), 3000)
    # measured 0.98 at steps=10; 0.8 leaves room for the coarser settings and seed-to-seed scatter
    assert samples.ess() > 0.8
    assert samples.n_nonfinite == 0 and samples.n_runaway < 30  # at most 1%
    obs, acc = pl.flow_observables(samples, 16, jax.random.PRNGKey(8))
    assert acc > 0.7
    fields, _ = pl.hmc(target, jax.random.PRNGKey(11), 8000, n_chains=8)
    ref = pl.chain_observables(fields.reshape(fields.shape[0], fields.shape[1], -1).sum(-1).reshape(-1), 16)
    for key in ("abs_m", "chi"):
        # both errors are Gamma-method errors (the HMC one from the concatenated chains); 4 combined sigma:
        # a chance failure ~1e-4 per observable, while a flow that misses the broken phase is off by > 10 sigma
        pull = (obs[key].value - ref[key].value) / np.hypot(obs[key].error, ref[key].error)
        assert abs(pull) < 4, (key, obs[key], ref[key])


def test_free_kernel_error_decreases_with_local_range():
    """Local quadratic terms only (no Fourier term): the free kernel is approached as the range R grows."""
    from pikflow.lattice import LatticeBasis, LocalHermite
    from pikflow.lattice._flow import least_squares

    lat = Lattice((16, 16))
    path = LatticePath(LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", lat), {"m2": (0.5, 0.1)})
    X, _ = GaussianLatticeBase.from_path(path).sample(jax.random.PRNGKey(0), 300)
    errors = []
    for R in (1, 2, 3):
        B = LatticeBasis([LocalHermite(lat, R, 2, max_sites=2, z2=True, min_degree=2)])
        cols, b = jax.vmap(lambda x, B=B: (B.columns(x, path.gradient(x, 0.0)), -path.dsdt(x, 0.0)))(X)
        sol = least_squares(jnp.concatenate([cols, -jnp.ones((len(X), 1))], axis=1), b)
        v = -jax.vmap(B.gradient, (None, 0))(sol[:-1], X[:20])
        exact = free_kernel(path, 0.0, X[:20])
        errors.append(float(jnp.linalg.norm(v - exact) / jnp.linalg.norm(exact)))
    # measured 0.45, 0.27, 0.15 (then 0.09, 0.05 at R = 4, 5): the kernel K^-1 dK/dt decays with the
    # correlation length ~ 1/m = 3 sites, so each extra site of range removes ~40% of the error
    assert errors[0] > 1.4 * errors[1] > 1.4**2 * errors[2]
    assert errors[2] < 0.2
