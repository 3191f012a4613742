"""A PIK flow per multilevel level (lattice/_level_flow.py) against the exact free field.

A free fine target (lam = 0) on 8x8 with exact coarse samples of the free 4x4 field: log Z of every
level is known, log Z = 0.5 V log 2 pi - 0.5 sum_k log(m2 + khat^2). The lift is deliberately
mismatched (m_f^2 = 4 instead of the target's 0.5, scale a = 1), so the base is far from the target
and the flow has something to transport. The flow's weights log w = -S_1 - log q_1 (log q_0 of the
lift with the exact log Z_0) must give Z_fine without bias, whatever the basis; |deviation| < 4 sigma
(sigma from the sample variance of the weights, N = 4000: the delta method is accurate at the
measured Var log w < 1; the seed is fixed).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pikflow as pf
import pikflow.lattice as pl
from pikflow.lattice._level_flow import LevelPath, level_log_weights, solve_level
from pikflow.lattice._levels import weight_diagnostics
from pikflow.lattice._multilevel import multilevel

M2 = 0.5


def _path(L):
    return pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": M2, "lam": 0.0})


def _log_z(L):
    k = 2 * np.pi * np.fft.fftfreq(L)
    khat2 = (4 * np.sin(k / 2) ** 2)[:, None] + (4 * np.sin(k / 2) ** 2)[None, :]
    return 0.5 * L * L * np.log(2 * np.pi) - 0.5 * np.sum(np.log(M2 + khat2))


@pytest.fixture(scope="module")
def level():
    coarse, fine = _path(4), _path(8)
    lift = pl.Lift.conditional((8, 8), mass2=4.0, scale=1.0)
    pool, _ = pl.GaussianLatticeBase.from_path(coarse, 1.0).sample(jax.random.PRNGKey(0), 4000)
    path = LevelPath(coarse, fine, lift)
    flow = solve_level(path, pool[:1000], log_z_coarse=_log_z(4), steps=2, n_collocation=400, progress=False)
    return flow, pool


def test_flowed_level_gives_the_exact_log_z(level):
    flow, pool = level
    lw = level_log_weights(flow.base, pool, jax.random.PRNGKey(1), per=1, flow=flow).ravel()
    w = np.exp(lw - lw.max())
    est = lw.max() + np.log(w.mean())
    err = np.std(w, ddof=1) / np.sqrt(w.size) / w.mean()
    assert abs(est - _log_z(8)) < 4 * err, (est, _log_z(8), err)


def test_flow_shrinks_the_lift_weight_variance(level):
    """The same draws without and with the flow (block terms): Var log w falls > 100x (measured 17 -> 0.0006)."""
    flow, pool = level
    lift = weight_diagnostics(level_log_weights(flow.base, pool[:1000], jax.random.PRNGKey(2)))
    flowed = weight_diagnostics(level_log_weights(flow.base, pool[:1000], jax.random.PRNGKey(2), flow=flow))
    assert flowed["var"] < lift["var"] / 100 and flowed["ess"] > 0.99 > lift["ess"], (lift, flowed)


def test_lift_weights_without_flow_are_exact(level):
    """log q_0 of LevelBase is the lift's normalised density: the lift alone also gives log Z (larger error)."""
    flow, pool = level
    lw = level_log_weights(flow.base, pool, jax.random.PRNGKey(3), per=1).ravel()
    w = np.exp(lw - lw.max())
    est = lw.max() + np.log(w.mean())
    err = np.std(w, ddof=1) / np.sqrt(w.size) / w.mean()
    assert abs(est - _log_z(8)) < 4 * err, (est, _log_z(8), err)


def test_multilevel_with_pik_transport_free_field():
    """transport='pik': the SMC log Z ratio of the flowed level and chi of the free field within 4 replica sigmas.

    A small level basis (Fourier and block two-point terms: the free field's Omega is quadratic) keeps it fast.
    """
    basis = pl.level_basis(pl.Lattice((8, 8)), magnetisation=(), scales=(), local_range=None, block={"products": ()})
    levels = multilevel(_path, [4, 8], particles=300, replicas=6, steps=2, noise="conditional", mass2=4.0,
                        scale=1.0, coarsest="exact", transport="pik", mcmc="mala", mcmc_steps=1,
                        flow_options={"n_collocation": 300, "basis": basis}, progress=False)  # fmt: skip
    fine = levels[-1]
    assert fine.flow is not None and fine.flow["flow"]["var"] < fine.flow["lift"]["var"] / 10, fine.flow
    assert fine.min_ess > 0.9  # the flow transports the mismatched lift onto the free target
    est = _log_z(4) + fine.lift["log_z0_offset"] + fine.log_z.value
    assert abs(est - _log_z(8)) < 4 * fine.log_z.error, (est, _log_z(8), fine.log_z)
    chi = fine.observables["chi"]
    assert abs(chi.value - (1 - 2 / np.pi) / M2) < 4 * chi.error, chi


def test_bad_level_inputs():
    with pytest.raises(pf.SamplingError, match="transport"):
        multilevel(_path, [4, 8], transport="flow", progress=False)
    with pytest.raises(pf.SamplingError, match="maps L"):
        LevelPath(_path(4), _path(16), pl.Lift.conditional((16, 16)))
    with pytest.raises(pf.PikflowError, match="LevelBase"):
        pl.solve_lattice(LevelPath(_path(4), _path(8), pl.Lift.conditional((8, 8))), progress=False)
    with pytest.raises(pf.BasisError, match="at least one"):
        pl.BlockTerms(pl.Lattice((8, 8)), coarse_two_point=False, fluctuation_two_point=False, products=())
    with pytest.raises(pf.BasisError, match="p != 1"):
        pl.BlockTerms(pl.Lattice((8, 8)), products=[(1, 3)])
    with pytest.raises(pf.BasisError, match="fourier_bins"):
        pl.BlockTerms(pl.Lattice((8, 8)), fourier_bins=0)
    with pytest.raises(pf.SamplingError, match="pool"):
        solve_level(LevelPath(_path(4), _path(8), pl.Lift.conditional((8, 8))), jnp.zeros((10, 8, 8)))


@pytest.mark.parametrize("bins", [None, 4])
def test_block_terms_match_autodiff(bins):
    """BlockTerms' gradient, Laplacian and eq.-34 columns against autodiff of its values (rounding); with
    ``fourier_bins`` the orbits of each two-point term merge into at most that many groups (the lattice's 20
    orbits and the coarse lattice's 9 into 4 each here)."""
    prods = [(2, 0), (2, 2), (4, 0), (3, 1), (0, 4), (2, 4), (0, 2)]
    fam = pl.BlockTerms(pl.Lattice((8, 12)), products=prods, fourier_bins=bins)
    if bins is not None:
        assert fam._nc <= bins + 1 and fam._nf <= bins + 1 and fam.n == fam._nc + fam._nf + len(prods)
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 12))
    a = jax.random.normal(jax.random.PRNGKey(1), (fam.n,))
    dS = jax.random.normal(jax.random.PRNGKey(2), (8, 12))
    grads = jax.jit(jax.jacrev(fam.values))(x).reshape(fam.n, -1)
    hess = jnp.einsum("jnn->j", jax.jit(jax.jacfwd(jax.jacrev(fam.values)))(x).reshape(fam.n, 96, 96))
    np.testing.assert_allclose(fam.gradient(a, x).ravel(), a @ grads, atol=1e-10)
    np.testing.assert_allclose(fam.laplacians(x), hess, atol=1e-10)
    np.testing.assert_allclose(fam.columns(x, dS), hess - grads @ dS.ravel(), atol=1e-10)


def test_block_neighbours_match_autodiff():
    """BlockNeighbours' closed-form Laplacian and its columns against autodiff (rounding)."""
    fam = pl.BlockNeighbours(pl.Lattice((8, 12)), (0, 2, 4))
    x = jax.random.normal(jax.random.PRNGKey(3), (8, 12))
    dS = jax.random.normal(jax.random.PRNGKey(4), (8, 12))
    grads = jax.jit(jax.jacrev(fam.values))(x).reshape(fam.n, -1)
    hess = jnp.einsum("jnn->j", jax.jit(jax.jacfwd(jax.jacrev(fam.values)))(x).reshape(fam.n, 96, 96))
    np.testing.assert_allclose(fam.laplacians(x), hess, atol=1e-10)
    np.testing.assert_allclose(fam.columns(x, dS), hess - grads @ dS.ravel(), atol=1e-10)


def test_coarse_families_on_block_means_match_autodiff():
    """CoarseFamily (the coarse lattice's smoothed powers and local terms on P Psi) against autodiff (rounding)."""
    basis = pl.level_basis(pl.Lattice((8, 8)), magnetisation=(), scales=(), local_range=None,
                           block={"products": ()}, coarse={"fourier": False})  # fmt: skip
    x = jax.random.normal(jax.random.PRNGKey(5), (8, 8))
    dS = jax.random.normal(jax.random.PRNGKey(6), (8, 8))
    for fam in [f for f in basis.families if isinstance(f, pl.CoarseFamily)]:
        grads = jax.jit(jax.jacrev(fam.values))(x).reshape(fam.n, -1)
        hess = jnp.einsum("jnn->j", jax.jit(jax.jacfwd(jax.jacrev(fam.values)))(x).reshape(fam.n, 64, 64))
        a = jnp.linspace(-1.0, 1.0, fam.n)
        np.testing.assert_allclose(fam.gradient(a, x).ravel(), a @ grads, atol=1e-10)
        np.testing.assert_allclose(fam.laplacians(x), hess, atol=1e-10)
        np.testing.assert_allclose(fam.columns(x, dS), hess - grads @ dS.ravel(), atol=1e-10)


def test_level_path_with_a_fourier_lift():
    """The level path rebuilds a fourier lift from its traced arrays (jit): same base action, same lift; the
    LevelBase log-density is -S_0 - log Z_0 with log Z_0 = log Z_c + the lift's offset."""
    from pikflow.lattice._level_flow import LevelBase

    lift = pl.Lift.fourier((8, 8), mass2=0.5, scale=0.7)
    path = LevelPath(_path(4), _path(8), lift)
    params, _ = path.traced_parameters()
    phi = jax.random.normal(jax.random.PRNGKey(4), (3, 4, 4))
    psi = lift.lift(jax.random.PRNGKey(5), phi)
    rebuilt = jax.jit(lambda p, x: jax.vmap(path.with_parameters(p).base_action)(x))(params, psi)
    np.testing.assert_allclose(rebuilt, jax.vmap(path.base_action)(psi), rtol=1e-12)
    assert path.with_parameters(params).lift.noise == "fourier"
    base = LevelBase(path, phi, log_z_coarse=1.5)
    x, log_q = base.draw(jax.random.PRNGKey(5), phi)
    np.testing.assert_allclose(x, psi, atol=1e-14)
    np.testing.assert_allclose(log_q, -jax.vmap(path.base_action)(psi) - 1.5 - lift.log_z0_offset(), rtol=1e-12)


def _dense_covariance(K, shape):
    """The dense covariance of the Gaussian with Fourier precision ``K`` on ``shape``."""
    V = int(np.prod(shape))
    eye = np.eye(V).reshape(V, *shape)
    return np.linalg.inv(np.stack([np.real(np.fft.ifftn(np.fft.fftn(e) * K)).ravel() for e in eye], axis=1))


def test_level_checks_against_the_exact_gaussian_proposal():
    """A free level 4 -> 8 without flow: the proposal (exact 4x4 free field lifted with a mismatched conditional
    lift) is a Gaussian whose dense covariance is known, Sigma_q = a^2 A C_c A^T + G - A C A^T, so its ESS/N is
    exact: 1 / int p^2 / q. The flow-side and the target-side (hole check, exact samples of the fine field)
    estimates must match it, and the IMH acceptance must match E_{x~p, y~q} min(1, w(y) / w(x)) from independent
    exact draws. ESS/N 0.586 exact; 4000 draws per side (fixed seeds) gave 0.566, 0.598 and an acceptance 0.620
    against 0.615; the bootstrap standard error of the flow-side ESS/N is 0.017 here: tolerance 0.05 (3 sigma).
    """
    from pikflow.lattice import Lattice, LevelBase, level_checks
    from pikflow.lattice._levels import block_mean

    coarse, fine = _path(4), _path(8)
    a, mf2 = 0.7, 1.0
    lift = pl.Lift.conditional((8, 8), mass2=mf2, scale=a)
    G = _dense_covariance(mf2 + Lattice((8, 8)).khat2(), (8, 8))
    eye = np.eye(64).reshape(64, 8, 8)
    P = np.stack([np.asarray(block_mean(jnp.asarray(e), 2)).ravel() for e in eye], axis=1)
    C = P @ G @ P.T
    A = G @ P.T @ np.linalg.inv(C)
    Cc = _dense_covariance(M2 + Lattice((4, 4)).khat2(), (4, 4))
    Sq = a**2 * A @ Cc @ A.T + G - A @ C @ A.T
    Sp = _dense_covariance(M2 + Lattice((8, 8)).khat2(), (8, 8))
    # int p^2/q = det(Sq)^(1/2) / (det(Sp) det(2 Sp^-1 - Sq^-1)^(1/2))
    Mx = 2 * np.linalg.inv(Sp) - np.linalg.inv(Sq)
    assert np.all(np.linalg.eigvalsh(Mx) > 0)
    ld = 0.5 * np.linalg.slogdet(Sq)[1] - np.linalg.slogdet(Sp)[1] - 0.5 * np.linalg.slogdet(Mx)[1]
    exact = float(np.exp(-ld))
    assert 0.4 < exact < 0.95, exact  # a mismatch the estimates can see
    pool, _ = pl.GaussianLatticeBase.from_path(coarse, 1.0).sample(jax.random.PRNGKey(5), 2000)
    ref, _ = pl.GaussianLatticeBase.from_path(fine, 1.0).sample(jax.random.PRNGKey(6), 4000)
    base = LevelBase(LevelPath(coarse, fine, lift), pool)
    out = level_checks(base, pool, jax.random.PRNGKey(7), reference=ref)
    assert abs(out["ess"] - exact) < 0.05 and abs(out["target_ess"] - exact) < 0.05, (out, exact)
    # the IMH acceptance of independent proposals: E min(1, w(y) / w(x)), x ~ p (exact), y ~ q
    S1 = jax.vmap(lambda x: fine.value(x, 1.0))
    lw_p = -np.asarray(S1(ref)) - np.asarray(base.log_prob(ref))
    y, lq = base.sample(jax.random.PRNGKey(8), 4000)
    lw_q = -np.asarray(S1(y)) - np.asarray(lq)
    expected = float(np.mean(np.minimum(1.0, np.exp(lw_q[:, None] - lw_p[None, :1000]))))
    assert abs(out["imh_acceptance"] - expected) < 0.05, (out, expected)
    with pytest.raises(pf.SamplingError, match="hole_check"):
        multilevel(_path, [4, 8], hole_check=-1, progress=False)


def test_multilevel_levels_carry_their_checks():
    """Every level above the coarsest has the proposal's IMH acceptance and, with hole_check, its target ESS/N
    (a free field: the tuned conditional lift of the exact coarse field is close to the target, both near 1)."""
    levels = multilevel(_path, [4, 8], particles=300, replicas=2, steps=2, coarsest="exact", mcmc="mala",
                        mcmc_steps=1, hole_check=400, progress=False)  # fmt: skip
    assert levels[0].imh_acceptance is None and levels[0].summary()["target_ess"] is None
    fine = levels[-1].summary()
    assert 0.5 < fine["imh_acceptance"] <= 1 and 0.5 < fine["target_ess"] <= 1, fine
    assert abs(fine["target_ess"] - fine["base_ess"]) < 0.15, fine  # no hole: both sides agree


def test_level_checks_of_the_flowed_lift(level):
    """Through the flow the proposal is nearly the free target (Var log w 0.0006 measured): the hole check from
    exact fine samples (pulled back through the flow) and the IMH acceptance are near 1, the lift's far below."""
    from pikflow.lattice import level_checks

    flow, pool = level
    ref, _ = pl.GaussianLatticeBase.from_path(_path(8), 1.0).sample(jax.random.PRNGKey(11), 500)
    flowed = level_checks(flow.base, pool[:500], jax.random.PRNGKey(12), reference=ref, flow=flow)
    lift = level_checks(flow.base, pool[:500], jax.random.PRNGKey(12), reference=ref)
    assert flowed["target_ess"] > 0.99 and flowed["imh_acceptance"] > 0.95, flowed
    assert lift["target_ess"] < 0.5 and lift["imh_acceptance"] < 0.5, lift
