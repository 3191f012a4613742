"""The conditional-Gaussian lift of a multilevel level against dense linear algebra and the exact free field.

Dense: on 4x4 -> 8x8, P (block mean), G = K^{-1} and C = P G P^T as 64x64 / 16x64 matrices. The FFT lift must
give P Psi = a phi, the base action of the dense formula, and the conditional mean A a phi and covariance
G - A C A^T (sampled: 40000 draws; tolerances 5 standard errors of the sample moments).
Free field: with the coarse pool from the exact N(0, C / a^2), the base IS the fine free field (log w = 0,
ESS/N = 1) and log Z_c + log_z0_offset is the exact log Z of the fine lattice (to rounding).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pikflow as pf
import pikflow.lattice as pl
from pikflow.lattice._levels import Lift, block_mean, log_weights, weight_diagnostics

SHAPE, VF, VC = (8, 8), 64, 16


def _dense(lift):
    eye = np.eye(VF).reshape(VF, *SHAPE)
    K = np.ones(SHAPE) if lift.precision is None else np.asarray(lift.precision)
    Kd = np.stack([np.real(np.fft.ifftn(np.fft.fftn(e) * K)).ravel() for e in eye], axis=1)
    P = np.stack([np.asarray(block_mean(jnp.asarray(e), 2)).ravel() for e in eye], axis=1)
    G = np.linalg.inv(Kd)
    C = P @ G @ P.T
    return Kd, P, G, C, G @ P.T @ np.linalg.inv(C)


def test_conditional_lift_against_dense_matrices():
    lift = Lift.conditional(SHAPE, mass2=0.7, scale=1.3)
    Kd, P, G, C, A = _dense(lift)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(C)), np.sort(np.asarray(lift.symbol).ravel()), rtol=1e-10)
    psi = np.random.default_rng(0).normal(size=(5, *SHAPE))
    y = psi.reshape(5, -1) @ P.T
    dense = 0.5 * np.einsum("ni,ij,nj->n", psi.reshape(5, -1), Kd, psi.reshape(5, -1))
    dense -= 0.5 * np.einsum("ni,ni->n", y, np.linalg.solve(C, y.T).T)
    np.testing.assert_allclose(np.asarray(lift.extra(jnp.asarray(psi))), dense, rtol=1e-10)
    # log Z_0 - log Z_c = V_c log a + (V_f - V_c)/2 log 2 pi + 1/2 log det G - 1/2 log det C
    off = VC * np.log(1.3) + (VF - VC) / 2 * np.log(2 * np.pi)
    off += 0.5 * np.linalg.slogdet(G)[1] - 0.5 * np.linalg.slogdet(C)[1]
    assert abs(lift.log_z0_offset() - off) < 1e-9
    n = 40000
    phi = np.random.default_rng(1).normal(size=(1, 4, 4))
    x = np.asarray(lift.lift(jax.random.PRNGKey(1), jnp.asarray(np.repeat(phi, n, 0))))
    np.testing.assert_allclose(np.asarray(block_mean(jnp.asarray(x), 2)), np.repeat(1.3 * phi, n, 0), atol=1e-12)
    x = x.reshape(n, -1)
    cov = G - A @ C @ A.T
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    assert np.all(np.abs(x.mean(0) - A @ (1.3 * phi.ravel())) <= 5 * sd / np.sqrt(n) + 1e-12)
    se_cov = np.sqrt((np.outer(sd**2, sd**2) + cov**2) / n)  # standard error of a Gaussian sample covariance
    assert np.all(np.abs(np.cov(x.T) - cov) <= 5 * se_cov + 1e-12)


@pytest.mark.parametrize("scale", [1.0, 0.8])
def test_conditional_base_is_the_free_field_given_the_exact_coarse_marginal(scale):
    m2 = 0.5
    lift = Lift.conditional(SHAPE, mass2=m2, scale=scale)
    c = np.asarray(lift.symbol) / scale**2  # the coarse field phi = y / a ~ N(0, C / a^2)
    coarse = pl.GaussianLatticeBase.from_propagator(c)
    phi, _ = coarse.sample(jax.random.PRNGKey(3), 500)
    S_c = jax.vmap(lambda p: -coarse.log_prob(p) + coarse.log_norm)  # 1/2 phi^T (C/a^2)^{-1} phi
    fine = pl.GaussianLatticeBase.free(pl.Lattice(SHAPE), m2)
    S_1 = jax.vmap(lambda p: -fine.log_prob(p) + fine.log_norm)
    lw = log_weights(lift, S_c, S_1, phi, jax.random.PRNGKey(4))
    assert np.max(np.abs(lw)) < 1e-9 and weight_diagnostics(lw)["ess"] > 1 - 1e-12
    log_zc = -float(coarse.log_norm)
    assert abs(log_zc + lift.log_z0_offset() - -float(fine.log_norm)) < 1e-9


def _log_normal(x, cov):
    return -0.5 * x @ np.linalg.solve(cov, x) - 0.5 * np.linalg.slogdet(2 * np.pi * cov)[1]


@pytest.mark.parametrize("noise", ["white", "conditional"])
def test_base_density_is_normalised(noise):
    """With a white coarse field phi ~ N(0, 1), the base is the Gaussian of covariance from the dense lift map;
    -S_c(P Psi / a) - extra - log Z_c - log_z0_offset must be its log-density."""
    a = 1.5
    lift = Lift.white(SHAPE, sigma=0.6, scale=a) if noise == "white" else Lift.conditional(SHAPE, 0.3, a)
    _, P, G, C, A = _dense(lift)
    U = 4 * P.T  # P^T = U / 2^d
    if noise == "white":  # Psi = a U phi + (1 - U P) z sigma
        cov = a**2 * U @ U.T + 0.36 * (np.eye(VF) - U @ P)
    else:  # Psi = (1 - A P) Psi' + a A phi, Psi' ~ N(0, G)
        cov = (np.eye(VF) - A @ P) @ G @ (np.eye(VF) - A @ P).T + a**2 * A @ A.T
    psi = np.asarray(lift.lift(jax.random.PRNGKey(6), jax.random.normal(jax.random.PRNGKey(5), (3, 4, 4))))
    np.testing.assert_allclose(np.asarray(block_mean(jnp.asarray(psi), 2)) / a, np.asarray(lift.coarse(psi)))
    phi = np.asarray(lift.coarse(psi)).reshape(3, -1)
    log_q = -0.5 * np.sum(phi**2, 1) - VC / 2 * np.log(2 * np.pi) - np.asarray(lift.extra(jnp.asarray(psi)))
    log_q -= lift.log_z0_offset()
    np.testing.assert_allclose(log_q, [_log_normal(p.ravel(), cov) for p in psi], rtol=1e-9)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"noise": "red"}, "noise"),
        ({"mass2": -1.0, "noise": "conditional"}, "mass2"),
        ({"mass2": 0.0, "noise": "fourier"}, "mass2"),
        ({"scale": 0.0}, "scale"),
    ],
)
def test_bad_lift_options(kwargs, match):
    with pytest.raises(pf.SamplingError, match=match):
        pl.multilevel(lambda L: None, [4, 8], progress=False, **kwargs)


# The Fourier lift (noise = "fourier"): P_F = S F, F the ideal low-pass filter to the coarse zone, S the even sites.
# P_F is built here from dense 1D DFT matrices (independently of the FFT code of pikflow.lattice._lift_fourier).


def _dense_fourier_projector():
    n = SHAPE[0]  # 8 = 2L, L = 4: weight 1 for |k| < 2, 1/2 for |k| = 2, 0 otherwise
    k = np.abs(np.fft.fftfreq(n) * n)
    w = np.where(k < 2, 1.0, np.where(k == 2, 0.5, 0.0))
    dft = np.fft.fft(np.eye(n), axis=0)
    F1 = np.real(np.linalg.inv(dft) @ np.diag(w) @ dft)
    np.testing.assert_allclose(F1, F1.T, atol=1e-14)  # real and symmetric
    P1 = F1[::2]  # S F: the even sites of the filtered field
    return np.kron(P1, P1)  # row-major 8x8 -> 4x4


def test_fourier_lift_against_dense_matrices():
    """C's symbol, the lift's quadratic form and log_z0_offset: the base's log-density equals
    log p_c(y/a) - V_c log a + log N(Psi; 0, G) - log N(y; 0, C), y = P_F Psi, with p_c = N(0, 1)."""
    a = 1.3
    lift = Lift.fourier(SHAPE, mass2=0.7, scale=a)
    Kd, _, G, _, _ = _dense(lift)
    P = _dense_fourier_projector()
    C = P @ G @ P.T
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(C)), np.sort(np.asarray(lift.symbol).ravel()), rtol=1e-10)
    psi = np.random.default_rng(0).normal(size=(5, *SHAPE))
    y = psi.reshape(5, -1) @ P.T
    np.testing.assert_allclose(np.asarray(lift.coarse(jnp.asarray(psi))).reshape(5, -1), y / a, atol=1e-12)
    dense = 0.5 * np.einsum("ni,ij,nj->n", psi.reshape(5, -1), Kd, psi.reshape(5, -1))
    dense -= 0.5 * np.einsum("ni,ni->n", y, np.linalg.solve(C, y.T).T)
    np.testing.assert_allclose(np.asarray(lift.extra(jnp.asarray(psi))), dense, rtol=1e-10)
    log_q = -0.5 * np.sum((y / a) ** 2, 1) - VC / 2 * np.log(2 * np.pi) - np.asarray(lift.extra(jnp.asarray(psi)))
    log_q -= lift.log_z0_offset()
    exact = [
        _log_normal(yi / a, np.eye(VC)) - VC * np.log(a) + _log_normal(p, G) - _log_normal(yi, C)
        for p, yi in zip(psi.reshape(5, -1), y, strict=True)
    ]
    np.testing.assert_allclose(log_q, exact, rtol=1e-10)


def test_fourier_lift_keeps_the_coarse_modes_and_samples_its_density():
    """Round trip P_F(lift(phi)) / a = phi (to 1e-12, FFT and dense P_F); the lift's samples of a fixed phi
    have the conditional mean A a phi and covariance G - A C A^T of the dense formula (4000 draws, 5 standard
    errors), and with phi ~ N(0, 1) the base is the Gaussian whose log-density the lift's action gives."""
    a = 0.8
    lift = Lift.fourier(SHAPE, mass2=0.3, scale=a)
    _, _, G, _, _ = _dense(lift)
    P = _dense_fourier_projector()
    C = P @ G @ P.T
    A = G @ P.T @ np.linalg.inv(C)
    phi = jax.random.normal(jax.random.PRNGKey(5), (3, 4, 4))
    psi = np.asarray(lift.lift(jax.random.PRNGKey(6), phi))
    np.testing.assert_allclose(np.asarray(lift.coarse(jnp.asarray(psi))), np.asarray(phi), atol=1e-12)
    np.testing.assert_allclose(psi.reshape(3, -1) @ P.T / a, np.asarray(phi).reshape(3, -1), atol=1e-12)
    cov = (np.eye(VF) - A @ P) @ G @ (np.eye(VF) - A @ P).T + a**2 * A @ A.T  # Psi = (1 - A P) Psi' + a A phi
    log_q = -0.5 * np.sum(np.asarray(phi).reshape(3, -1) ** 2, 1) - VC / 2 * np.log(2 * np.pi)
    log_q -= np.asarray(lift.extra(jnp.asarray(psi))) + lift.log_z0_offset()
    np.testing.assert_allclose(log_q, [_log_normal(p.ravel(), cov) for p in psi], rtol=1e-9)
    n = 4000
    x = np.asarray(lift.lift(jax.random.PRNGKey(7), jnp.repeat(phi[:1], n, 0))).reshape(n, -1)
    cov = G - A @ C @ A.T
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    assert np.all(np.abs(x.mean(0) - A @ (a * np.asarray(phi[0]).ravel())) <= 5 * sd / np.sqrt(n) + 1e-12)
    se_cov = np.sqrt((np.outer(sd**2, sd**2) + cov**2) / n)
    assert np.all(np.abs(np.cov(x.T) - cov) <= 5 * se_cov + 1e-12)


@pytest.mark.parametrize("scale", [1.0, 0.8])
def test_fourier_base_is_the_free_field_given_the_exact_coarse_marginal(scale):
    """K the fine target's precision, phi ~ N(0, C / a^2) exactly: log w = S_0 - S_1 = 0 and
    log Z_c + log_z0_offset = log Z of the fine free field."""
    m2 = 0.5
    lift = Lift.fourier(SHAPE, mass2=m2, scale=scale)
    coarse = pl.GaussianLatticeBase.from_propagator(np.asarray(lift.symbol) / scale**2)
    phi, _ = coarse.sample(jax.random.PRNGKey(3), 500)
    S_c = jax.vmap(lambda p: -coarse.log_prob(p) + coarse.log_norm)
    fine = pl.GaussianLatticeBase.free(pl.Lattice(SHAPE), m2)
    S_1 = jax.vmap(lambda p: -fine.log_prob(p) + fine.log_norm)
    lw = log_weights(lift, S_c, S_1, phi, jax.random.PRNGKey(4))
    assert np.max(np.abs(lw)) < 1e-9 and weight_diagnostics(lw)["ess"] > 1 - 1e-12
    assert abs(-float(coarse.log_norm) + lift.log_z0_offset() - -float(fine.log_norm)) < 1e-9


def test_fourier_lift_on_odd_coarse_sizes_and_in_3d():
    """No coarse Nyquist mode (L = 3) and d = 3: the round trip and C's symbol (G(q) / 2^d inside the zone)."""
    for shape in ((6, 6), (4, 4, 4)):
        lift = Lift.fourier(shape, mass2=0.4, scale=1.1)
        phi = jax.random.normal(jax.random.PRNGKey(8), (2, *(s // 2 for s in shape)))
        psi = lift.lift(jax.random.PRNGKey(9), phi)
        np.testing.assert_allclose(np.asarray(lift.coarse(psi)), np.asarray(phi), atol=1e-12)
        d, G = len(shape), 1 / np.asarray(lift.precision)
        inner = tuple(slice(0, (s // 2 + 1) // 2) for s in shape)  # 0 <= q < L/2 on every axis (FFT order)
        np.testing.assert_allclose(np.asarray(lift.symbol)[inner], G[inner] / 2**d, rtol=1e-12)
