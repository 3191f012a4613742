"""Symmetries of lattice actions are detected from the action (SymPy), never assumed.

References: the detected group is checked element by element against the summed action
evaluated numerically on transformed random fields (``S(g phi) == S(phi)``); orbits against
the exact anisotropic free precision; the anisotropic free kernel against ``free_kernel``;
the end-to-end flow against HMC.
"""

import jax
import numpy as np
import pytest

import pikflow as pf  # noqa: F401  (float64)
import pikflow.lattice as pl
from pikflow import PikflowError

ANISO = "(m2 + 2*d)/2*phi**2 - kx*phi*shift(phi, 0) - ky*phi*shift(phi, 1) + lam/4*phi**4"
CUBIC = pl.PHI4_DENSITY + " + g*phi**3"

#: (density, shape, generic coupling values, point-group elements expected, Z2 expected)
CASES = [
    (pl.PHI4_DENSITY, (6, 6), {"m2": -0.7, "lam": 1.3}, 8, True),
    (ANISO, (6, 6), {"m2": -0.7, "lam": 1.3, "kx": 1.0, "ky": 0.5}, 4, True),
    (CUBIC, (6, 6), {"m2": -0.7, "lam": 1.3, "g": 0.4}, 8, False),
    (pl.PHI4_DENSITY + " + g/6*phi**6", (6, 6), {"m2": -0.7, "lam": 1.3, "g": 0.4}, 8, True),
    # a diagonal hopping: the axis swap and the inversion, but no single reflection
    (pl.PHI4_DENSITY + " - c*phi*shift(shift(phi, 0), 1)", (6, 6), {"m2": 0.3, "lam": 1.3, "c": 0.2}, 4, True),
    # a directed cubic term: only the reflection of axis 1 (and the identity), no Z2
    ("phi**2 + a*phi**2*shift(phi, 0)", (6, 6), {"a": 0.3}, 2, False),
    # unequal sizes: no permutation of axes 0, 1 with axis 2
    (pl.PHI4_DENSITY, (4, 4, 6), {"m2": -0.7, "lam": 1.3}, 16, True),
    (pl.PHI4_DENSITY + " - k2*phi*shift(phi, 2)", (4, 4, 4), {"m2": 0.3, "lam": 1.3, "k2": 0.4}, 16, True),
]


def _transformed(field, g):
    """(g phi)_n = phi_{g n} on the periodic lattice."""
    shape = field.shape
    idx = np.indices(shape).reshape(len(shape), -1)
    moved = (np.asarray(g) @ idx) % np.asarray(shape)[:, None]
    return field[tuple(moved)].reshape(shape)


@pytest.mark.parametrize("density, shape, values, n_group, z2", CASES)
def test_detected_group_is_the_numerical_invariance_group(density, shape, values, n_group, z2):
    action = pl.LatticeAction(density, list(shape))
    sym = action.symmetry()  # symbolic couplings: must hold for every value
    assert len(sym.group) == n_group and sym.z2 == z2, str(sym)
    assert action.symmetry(values) == sym  # generic values: the same group
    path = pl.LatticePath(action, values)
    value = jax.jit(lambda x: path.value(x, 1.0))
    S = lambda x: float(value(x))
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape) + 0.3
    s0 = S(x)
    found = set()
    for g in action.lattice.point_group():
        # round-off of a sum of O(V) terms of size O(1): 1e-10 relative; a broken symmetry differs at O(1e-2)
        if abs(S(_transformed(x, g)) - s0) < 1e-10 * abs(s0):
            found.add(tuple(map(tuple, g)))
    assert found == set(sym.group)
    assert (abs(S(-x) - s0) < 1e-10 * abs(s0)) == sym.z2
    assert path.symmetry() == sym and path.is_z2_symmetric() == z2


def test_anisotropic_symmetry_record_and_values():
    action = pl.LatticeAction(ANISO, [8, 8])
    sym = action.symmetry()
    assert sym.reflections == (True, True) and sym.permutations == ((0, 1),) and sym.z2
    # kx = ky: the axis swap returns; a path is symmetric only if it is at every t
    assert action.symmetry({"kx": 1, "ky": 1}).permutations == ((0, 1), (1, 0))
    equal = pl.LatticePath(action, {"m2": (1, -1), "lam": (0, 1), "kx": (1, 0.5), "ky": (1, 0.5)})
    apart = pl.LatticePath(action, {"m2": (1, -1), "lam": (0, 1), "kx": 1, "ky": (1, 0.5)})
    assert len(equal.symmetry().group) == 8 and len(apart.symmetry().group) == 4
    assert pl.Symmetry.from_spec(sym.to_spec(), action.lattice) == sym
    cubic = pl.LatticePath(pl.LatticeAction(CUBIC, [8, 8]), {"m2": -1, "lam": 1, "g": (0, 0.3)})
    assert not cubic.symmetry().z2 and len(cubic.symmetry().group) == 8


def test_orbits_follow_the_anisotropic_precision():
    """K(k) = m2 + 4 - 2 kx cos k0 - 2 ky cos k1 is constant on every detected orbit, and orbits are maximal."""
    lat = pl.Lattice((8, 8))
    sym = pl.LatticeAction(ANISO, lat.shape).symmetry()
    ids, sizes = sym.orbits()
    k0, k1 = np.meshgrid(*[2 * np.pi * np.fft.fftfreq(8)] * 2, indexing="ij")
    K = 0.5 + 4 - 2 * 1.0 * np.cos(k0) - 2 * 0.37 * np.cos(k1)  # ky = 0.37: no accidental degeneracy
    for i in range(len(sizes)):
        np.testing.assert_allclose(K[ids == i], K[ids == i][0], rtol=1e-12)
    # distinct orbits have distinct K here (the two reflections are all the symmetry): 5 x 5 folded momenta
    assert len(sizes) == 25 and len(np.unique(np.round(K, 10))) == 25
    assert len(lat.momentum_orbits()[1]) == 15  # the isotropic orbits merge k0 <-> k1


def test_anisotropic_free_kernel_is_exact_only_with_detected_orbits(getkey):
    """A free anisotropic path: the Fourier term on the detected orbits gives the exact kernel (SCIENCE.md 3)."""
    lat = pl.Lattice((8, 8))
    density = "(m2 + 2*d)/2*phi**2 - kx*phi*shift(phi, 0) - ky*phi*shift(phi, 1)"
    path = pl.LatticePath(pl.LatticeAction(density, lat), {"m2": (1.0, 0.3), "kx": 1.0, "ky": (1.0, 0.5)})
    fit = {"magnetisation": (), "scales": (), "local_range": None}
    flow = pl.solve_lattice(
        path, pl.lattice_basis(lat, symmetry=path.symmetry(), **fit), steps=2, n_collocation=100, progress=False
    )
    assert flow.residuals().max() < 1e-10
    x = jax.random.normal(getkey(), (2, *lat.shape))
    v, exact = flow.velocity(3, x), pl.free_kernel(path, flow.times[3], x)
    assert np.abs(v - exact).max() < 1e-8 * np.abs(exact).max()
    # the isotropic orbits cannot hold it (the wrong symmetry, as assumed before the detection)
    iso = pl.solve_lattice(path, pl.lattice_basis(lat, **fit), steps=2, n_collocation=100, progress=False)
    assert iso.residuals().max() > 1e-3


def test_no_mixture_without_z2(getkey):
    lat = pl.Lattice((4, 4))
    x = jax.random.normal(getkey(), (200, *lat.shape))
    sym = pl.LatticeAction(CUBIC, lat.shape).symmetry()
    with pytest.raises(PikflowError, match="phi -> -phi"):
        pl.matched_base(np.asarray(x), mixture=True, symmetry=sym)
    path = pl.LatticePath(pl.LatticeAction(CUBIC, lat.shape), {"m2": -1.0, "lam": 1.0, "g": 0.3})
    with pytest.raises(PikflowError, match="phi -> -phi"):
        pl.fit_lattice(path, base="mixture", progress=False)
    # the default basis of a cubic path has odd terms: the magnetisation M and smoothed powers 3, 5
    basis = pl.default_basis(path, pl.GaussianLatticeBase(1.0 + lat.khat2()))
    assert "V*m**1" in basis.names and any("3" in str(f.powers) for f in basis.families if hasattr(f, "powers"))


def test_anisotropic_fit_agrees_with_hmc(tmp_path):
    """fit_lattice on the anisotropic 4x4 action (kx, ky) = (1, 0.5) at (-1, 1): high ESS, observables = HMC."""
    action = pl.LatticeAction(ANISO, [4, 4])
    target = pl.LatticePath(action, {"m2": -1.0, "lam": 1.0, "kx": 1.0, "ky": 0.5})
    flow = pl.fit_lattice(
        target, base="gaussian", basis=pl.default_basis, steps=4, n_collocation=300, hmc_samples=1000, seed=3,
        select=1000, progress=False,
    )  # fmt: skip
    K0 = np.asarray(flow.base.precision)
    assert abs(K0[1, 0] - K0[0, 1]) > 0.1 * K0[1, 0]  # the base kept the axes apart
    samples = flow.sample(jax.random.PRNGKey(7), 2000)
    # measured 0.997 on 8x8 with the defaults (the old isotropic symmetrisation gave 1e-4 there)
    assert samples.ess() > 0.8 and samples.n_nonfinite == 0
    obs, acc = pl.flow_observables(samples, 16, jax.random.PRNGKey(8))
    fields, _ = pl.hmc(target, jax.random.PRNGKey(11), 4000, n_chains=8)
    ref = pl.chain_observables(fields.reshape(fields.shape[0], fields.shape[1], -1).sum(-1).reshape(-1), 16, chains=8)
    for key in ("abs_m", "chi"):
        # Gamma-method errors on both sides; 4 combined sigma: a chance failure ~1e-4 per observable
        pull = (obs[key].value - ref[key].value) / np.hypot(obs[key].error, ref[key].error)
        assert abs(pull) < 4, (key, obs[key], ref[key])
    flow.save(tmp_path / "flow")
    again = pl.LatticeFlow.load(tmp_path / "flow")
    assert again.basis.n == flow.basis.n
    np.testing.assert_array_equal(
        again.sample(jax.random.PRNGKey(1), 50).log_w, flow.sample(jax.random.PRNGKey(1), 50).log_w
    )


def test_base_with_a_mean_matches_its_path(getkey):
    """Without Z2 the matched base is N(mu, K^-1): log q0 + S_0 is constant, gradients = autodiff, mean recovered."""
    lat = pl.Lattice((4, 4))
    K = 0.7 + lat.khat2()
    x, _ = pl.GaussianLatticeBase(K, mean=-0.8).sample(getkey(), 20000)
    assert abs(float(np.mean(x)) + 0.8) < 0.02  # sd of the mean of m: sqrt(1/(V K(0)) / 20000) ~ 0.002
    cubic = pl.LatticeAction(CUBIC, lat.shape)
    sym = cubic.symmetry()
    base = pl.matched_base(np.asarray(x), symmetry=sym)
    # the connected G(0) = 1/K(0) and the mean come back (~1% statistical accuracy at 20000 samples)
    assert abs(base.mean + 0.8) < 0.02 and abs(float(base.precision[0, 0]) / 0.7 - 1) < 0.05
    path = pl.LatticePath.matched(cubic, {"m2": -1.0, "lam": 1.0, "g": 0.3}, base.precision, 0.0, base.linear_coupling)
    assert not path.symmetry().z2
    y = x[:5]
    const = np.asarray(base.log_prob(y)) + np.asarray(jax.vmap(lambda f: path.value(f, 0.0))(y))
    np.testing.assert_allclose(const, const[0], rtol=0, atol=1e-9)
    for t in (0.0, 0.4):
        auto = jax.grad(lambda f, t=t: path.value(f, t))(y[0])
        np.testing.assert_allclose(path.gradient(y[0], t), auto, rtol=1e-10, atol=1e-10)
