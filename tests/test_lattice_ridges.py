"""Ridge terms (:class:`pikflow.lattice.SmoothedRidges`, the ``"+ridges"`` presets) against automatic differentiation.

The family's gradient, Laplacian and rows of eq. 34 are closed forms; the references are JAX's
gradient and the trace of its Hessian of :math:`\\Omega = \\sum_j a_j T_j` on random fields, and the
fused evaluation (one transform of the field for every smoothed family) must give the per-family
numbers to float64 rounding.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pikflow as pf
import pikflow.lattice as pl
from pikflow.bases import basis_from_spec
from pikflow.lattice import LatticeAction, LatticeBasis, LatticePath, SmoothedRidges
from pikflow.lattice._basis_ridge import pair_directions
from pikflow.lattice._separable import hermitian_part

SHAPE = (5, 6)  # odd and even extents


def _family(smoothing, zero_mode, shape=SHAPE):
    lat = LatticeAction(pl.PHI4_DENSITY, list(shape)).lattice
    rng = np.random.default_rng(4)
    # K(k) = K(-k), as for every two-point function of a real field, but not point-group symmetric
    K = np.asarray(lat.khat2()) + 0.4 + 0.05 * hermitian_part(rng.random(shape))
    if smoothing == "lattice":
        K = np.asarray(lat.khat2()) + 0.4
    return SmoothedRidges(lat, (0.1, 0.6, 2.5), precision=K, zero_mode=zero_mode, smoothing=smoothing, width=1.5)


def _reference(basis, a, x, dS):
    """Gradient, Laplacian and rows of eq. 34 by automatic differentiation of the values."""
    n = x.size

    def omega(f):
        return jnp.dot(a, basis.values(f))

    grad = jax.grad(omega)(x)
    lap = jnp.trace(jax.hessian(omega)(x).reshape(n, n))
    jac = jax.jacfwd(basis.values)(x).reshape(basis.n, n)
    laps = jnp.trace(jax.hessian(basis.values)(x).reshape(basis.n, n, n), axis1=1, axis2=2)  # every term at once
    return grad, lap, laps - jac @ dS.reshape(-1)


@pytest.mark.parametrize("smoothing", ["precision", "lattice"])
@pytest.mark.parametrize("zero_mode", [True, False])
def test_ridges_match_autodiff_family_and_fused(smoothing, zero_mode):
    fam = _family(smoothing, zero_mode)
    assert fam.n == (6 + 6 if zero_mode else 6)  # 3 pairs x 2 signs (+ 3 scales x 2 signs with the zero mode)
    lat = fam.lattice
    powers = pl.SmoothedPowers(lat, fam.scales[:2], (4,), precision=fam.precision, tame=5.0, smoothing=smoothing)
    basis = LatticeBasis([pl.FourierTwoPoint(lat), powers, fam])
    rng = np.random.default_rng(5)
    x, dS = (jnp.asarray(rng.normal(size=SHAPE) * 1.5) for _ in range(2))
    a = jnp.asarray(rng.normal(size=basis.n))
    grad, lap, cols = _reference(basis, a, x, dS)
    scale = float(jnp.max(jnp.abs(cols)))
    for g, lp in (
        (basis.gradient(a, x), basis.laplacian(a, x)),  # per family
        basis.gradient_and_laplacian(a, x),  # fused
    ):
        np.testing.assert_allclose(g, grad, rtol=0, atol=1e-12 * float(jnp.max(jnp.abs(grad))))
        assert abs(float(lp - lap)) < 1e-12 * abs(float(lap))
    np.testing.assert_allclose(basis.columns(x, dS), cols, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(basis.fused_columns(x, dS), cols, rtol=0, atol=1e-12 * scale)
    assert (basis.fused.matrices is not None) is (smoothing == "lattice")


def test_default_directions_and_spec_round_trip():
    W = pair_directions(4)
    assert W.shape == (20, 5)  # 6 pairs x 2 signs + 4 scales x 2 signs
    assert np.all(np.sum(W != 0, axis=1) == 2)
    assert len({tuple(r) for r in W}) == 20
    assert pair_directions(3, zero_mode=False).shape == (6, 3)
    fam = _family("lattice", True)
    back = basis_from_spec(fam.spec(), lattice=fam.lattice)
    assert type(back) is SmoothedRidges and back.smoothing == "lattice" and back.width == fam.width
    np.testing.assert_array_equal(back.weights, fam.weights)
    x = jnp.asarray(np.random.default_rng(6).normal(size=SHAPE))
    np.testing.assert_array_equal(back.values(x), fam.values(x))


def test_bad_ridge_arguments_fail_clearly():
    lat = LatticeAction(pl.PHI4_DENSITY, [4, 4]).lattice
    with pytest.raises(pf.PikflowError, match="ridge width must be a positive"):
        SmoothedRidges(lat, (0.5, 1.0), width=0.0)
    with pytest.raises(pf.PikflowError, match="directions must be a finite"):
        SmoothedRidges(lat, (0.5, 1.0), directions=np.ones((2, 2)))  # 2 scales + the zero mode: 3 columns
    with pytest.raises(pf.PikflowError, match="at least one smoothing scale"):
        SmoothedRidges(lat, ())
    with pytest.raises(pf.PikflowError, match="smoothing must be one of"):
        SmoothedRidges(lat, (0.5,), smoothing="separable")
    o2 = "(m2 + 2*d)/2*(phi1**2 + phi2**2) - sum_mu(phi1*shift(phi1, mu) + phi2*shift(phi2, mu))"
    o2 = LatticePath(LatticeAction(o2 + " + lam/4*(phi1**2 + phi2**2)**2", [4, 4]), {"m2": -1.0, "lam": 1.0})
    base = pl.GaussianLatticeBase(np.asarray(lat.khat2()) + 1.0)
    with pytest.raises(pf.PikflowError, match="one-component fields"):
        pl.preset_basis("lean+ridges", o2, base)


def test_ridge_preset_is_exact_on_a_free_field_and_survives_save_load(tmp_path):
    """Between two free masses the exact kernel is in the two-point term: the ridge terms must not spoil it."""
    S = LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", [6, 6])
    path = LatticePath(S, {"m2": (1.0, 0.2)})
    flow = pl.fit_lattice(path, base="free", basis="separable+ridges", steps=3, n_collocation=300, progress=False)
    assert flow.info["basis_preset"] == "separable+ridges"
    assert any(type(f) is SmoothedRidges for f in flow.basis.families)
    samples = flow.sample(2000, seed=1, progress=False)
    assert samples.ess > 0.999
    G = 1.0 / (np.asarray(S.lattice.khat2()) + 0.2)  # the free field's propagator: <phi^2> per site exactly
    phi2 = np.mean(np.asarray(samples.fields) ** 2, axis=(1, 2))
    w = np.exp(samples.log_w - np.max(samples.log_w))
    est = float(np.sum(w * phi2) / np.sum(w))
    assert abs(est - G.mean()) < 4 * float(np.std(phi2) / np.sqrt(2000))
    flow.save(tmp_path / "flow")
    back = pf.load(tmp_path / "flow")
    again = back.sample(200, seed=3, progress=False)
    ref = flow.sample(200, seed=3, progress=False)
    np.testing.assert_array_equal(np.asarray(again.fields), np.asarray(ref.fields))
    np.testing.assert_array_equal(again.log_w, ref.log_w)


def test_clipped_square_is_c2_and_grows_linearly():
    """q_c: u^2 - u^4/6c^2 inside, a straight line outside; q' and q'' by autodiff, continuous at |u| = c."""
    from pikflow.lattice._basis_ridge import ridge_function

    c = 1.5
    u = jnp.linspace(-4 * c, 4 * c, 801)
    q, q1, q2 = ridge_function(u, c)
    d1 = jax.vmap(jax.grad(lambda x: ridge_function(x, c)[0]))(u)
    d2 = jax.vmap(jax.grad(jax.grad(lambda x: ridge_function(x, c)[0])))(u)
    np.testing.assert_allclose(q1, d1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(q2, d2, rtol=0, atol=1e-12)
    inside = jnp.abs(u) <= c
    np.testing.assert_allclose(q[inside], (u**2 - u**4 / (6 * c * c))[inside], rtol=0, atol=1e-12)
    assert float(jnp.max(jnp.abs(q1))) <= 4 * c / 3 + 1e-12  # a bounded velocity
    eps = 1e-7
    for edge in (c, -c):  # the first and second derivatives meet at the joins
        below, above = (ridge_function(jnp.asarray(edge - s * eps), c) for s in (np.sign(edge), -np.sign(edge)))
        assert abs(float(below[1] - above[1])) < 1e-6 and abs(float(below[2] - above[2])) < 1e-6


def test_push_batch_by_sites_and_family():
    """Configurations per push call: 128 up to 512 sites, then 2**16 sites a call, 2**15 with ridge terms
    (``SmoothedRidges.push_sites``; a family without it leaves the default)."""
    from pikflow.flow import push_batch
    from pikflow.flow._lattice_flow import PUSH_BATCH

    for side, plain, ridged in ((16, PUSH_BATCH, PUSH_BATCH), (64, 16, 8), (128, 4, 2), (512, 1, 1)):
        lat = LatticeAction(pl.PHI4_DENSITY, [side, side]).lattice
        powers = pl.SmoothedPowers(lat, (0.5, 2.0), (4,), tame=5.0)
        assert push_batch(LatticeBasis([pl.FourierTwoPoint(lat), powers])) == plain
        assert push_batch(LatticeBasis([powers, SmoothedRidges(lat, (0.5, 2.0))])) == ridged
