"""Multi-component (O(n)) lattice fields (issue #13): actions, symmetry, bases, exact free flow, HMC, CLI."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pikflow.lattice as pl
from pikflow._errors import ActionError, BasisError, PikflowError
from pikflow.cli import main


def on_density(names, extra=""):
    sq = " + ".join(f"{f}**2" for f in names)
    hop = " + ".join(f"{f}*shift({f}, mu)" for f in names)
    return f"(m2 + 2*d)/2*({sq}) - sum_mu({hop}) + lam/4*({sq})**2" + extra


O2 = on_density(["phi1", "phi2"])


def test_fields_are_the_shifted_symbols_or_named():
    S = pl.LatticeAction(O2, [4, 4])
    assert S.field_names == ("phi1", "phi2") and S.field_shape == (2, 4, 4)
    assert [str(c) for c in S.couplings] == ["lam", "m2"]
    named = pl.LatticeAction(O2, [4, 4], fields=["phi2", "phi1"])
    assert named.field_names == ("phi2", "phi1")
    one = pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", [4, 4])
    assert one.field_names == ("phi",) and one.field_shape == (4, 4)
    with pytest.raises(ActionError, match="does not appear"):
        pl.LatticeAction(O2, [4, 4], fields=["phi1", "chi"])
    with pytest.raises(ActionError, match="no value"):
        pl.LatticePath(S, {"m2": 1.0})


@pytest.mark.parametrize(
    "density, on, flips, perms, z2",
    [
        (O2, True, (True, True), 2, True),
        (on_density(["a", "b", "c"]), True, (True, True, True), 6, True),
        # different masses: no O(2), no permutation, each sign flip
        (on_density(["phi1", "phi2"], " + phi1**2"), False, (True, True), 1, True),
        # cubic anisotropy: the permutation and the flips survive, O(2) does not
        (on_density(["phi1", "phi2"], " + g*(phi1**4 + phi2**4)"), False, (True, True), 2, True),
        # phi1**2 phi2 is odd in phi2 only, and breaks the permutation
        (on_density(["phi1", "phi2"], " + g*phi1**2*phi2"), False, (True, False), 1, False),
    ],
)
def test_internal_symmetry_detection(density, on, flips, perms, z2):
    sym = pl.LatticeAction(density, [4, 4]).symmetry()
    assert sym.components == len(flips)
    assert sym.on is on and sym.component_z2 == flips and len(sym.component_perms) == perms and sym.z2 is z2
    assert len(sym.group) == 8  # the lattice symmetries are untouched
    assert ("O(" in str(sym)) and (sym.on == ("no O(" not in str(sym)))


def test_anisotropic_components_keep_their_axes():
    sym = pl.LatticeAction(
        "(m2 + 2*d)/2*(a**2 + b**2) - kx*(a*shift(a, 0) + b*shift(b, 0)) - ky*(a*shift(a, 1) + b*shift(b, 1))",
        [4, 4],
    ).symmetry()
    assert sym.on and sym.permutations == ((0, 1),) and sym.reflections == (True, True)


def test_gradient_and_laplacian_against_autodiff(getkey):
    # three components on a 4x3 lattice, with a term coupling phi1 to its neighbour phi2 along axis 0
    S = pl.LatticeAction(on_density(["phi1", "phi2", "phi3"], " + g*phi1*shift(phi2, 0)*phi3**2"), [4, 3])
    P = pl.LatticePath(S, {"m2": (1.0, -1.0), "lam": 0.7, "g": 0.3})
    x = jax.random.normal(getkey(), (3, 4, 3))
    t = 0.6
    value = lambda y: P.value(y, t)  # noqa: E731
    np.testing.assert_allclose(P.gradient(x, t), jax.grad(value)(x), rtol=1e-12, atol=1e-12)
    hess = jax.hessian(value)(x).reshape(36, 36)
    np.testing.assert_allclose(P.laplacian(x, t), jnp.trace(hess), rtol=1e-12)
    np.testing.assert_allclose(P.dsdt(x, t), jax.grad(lambda s: P.value(x, s))(t), rtol=1e-10)


def test_on_families_against_autodiff(getkey):
    S = pl.LatticeAction(O2, [3, 3])
    P = pl.LatticePath(S, {"m2": -1.0, "lam": 1.0})
    K = np.stack([1.0 + S.lattice.khat2()] * 2)
    basis = pl.lattice_basis(
        S.lattice,
        magnetisation=(4,),
        precision=K,
        scales=(0.5,),
        tame=5.0,
        local_range=None,
        symmetry=P.symmetry(),
    )
    assert [f.components for f in basis.families] == [2, 2, 2] and basis.n == 3 + 1 + 2
    x = jax.random.normal(getkey(), (2, 3, 3))
    dS = P.gradient(x, 1.0)
    a = jax.random.normal(getkey(), (basis.n,))
    omega = lambda y: jnp.dot(a, basis.values(y))  # noqa: E731
    grad, lap = basis.gradient_and_laplacian(a, x)
    np.testing.assert_allclose(grad, jax.grad(omega)(x), rtol=1e-10, atol=1e-12)
    # the Laplacian: the divergence of the (just checked) analytic gradient, by forward mode
    jac = jax.jacfwd(lambda y: basis.gradient(a, y))(x).reshape(18, 18)
    np.testing.assert_allclose(lap, jnp.trace(jac), rtol=1e-10)
    np.testing.assert_allclose(jnp.dot(a, basis.fused_columns(x, dS)), lap - jnp.sum(dS * grad), rtol=1e-10)
    # O(2) equivariance of the velocity: rotating the field rotates the gradient
    c, s = np.cos(0.7), np.sin(0.7)
    R = jnp.asarray([[c, -s], [s, c]])
    rot = lambda y: jnp.einsum("ab,b...->a...", R, y)  # noqa: E731
    np.testing.assert_allclose(basis.gradient(a, rot(x)), rot(basis.gradient(a, x)), atol=1e-12)
    with pytest.raises(BasisError, match="even powers"):
        pl.Magnetisation(S.lattice, (1,), components=2)


def test_o2_free_field_flow_is_exact(getkey):
    """A free O(2) path m2: 2 -> 0.5 on 4x4: the Fourier family holds the exact kernel -K^-1 dK/dt phi / 2."""
    S = pl.LatticeAction(on_density(["phi1", "phi2"]), [4, 4])
    P = pl.LatticePath(S, {"m2": (2.0, 0.5), "lam": 0.0})
    basis = pl.lattice_basis(S.lattice, magnetisation=(), scales=(), local_range=None, symmetry=P.symmetry())
    flow = pl.solve_lattice(P, basis, steps=4, n_collocation=100, progress=False)
    assert flow.residuals().max() < 1e-10
    x = flow.base.sample(getkey(), 8)[0]
    for layer, t in ((0, 0.0), (3, 0.375), (8, 1.0)):
        np.testing.assert_allclose(flow.velocity(layer, x), pl.free_kernel(P, t, x), atol=1e-8)
    # the pushed samples are the exact map phi(k) -> sqrt(K_0(k) / K_1(k)) phi(k), up to the RK4 error
    K0, K1 = 2.0 + S.lattice.khat2(), 0.5 + S.lattice.khat2()
    x1, _ = flow.push(x, jnp.zeros(8))
    exact = np.real(np.fft.ifftn(np.sqrt(K0 / K1) * np.fft.fftn(np.asarray(x), axes=(2, 3)), axes=(2, 3)))
    np.testing.assert_allclose(x1, exact, atol=2e-4 * np.abs(exact).max())
    samples = flow.sample(getkey(), 1000)
    assert samples.ess() > 0.9999


@pytest.fixture(scope="module")
def o2_reference():
    S = pl.LatticeAction(O2, [8, 8])
    P = pl.LatticePath(S, {"m2": -1.0, "lam": 1.0})
    fields, acc = pl.hmc(P, jax.random.PRNGKey(11), 8000, n_chains=8, step="auto")
    return P, fields, acc


def test_o2_8x8_flow_agrees_with_hmc(o2_reference):
    P, fields, acc = o2_reference
    assert fields.shape[2:] == (2, 8, 8) and acc > 0.5
    sym = P.symmetry()
    base = pl.matched_base(fields.reshape(-1, 2, 8, 8), symmetry=sym)
    assert base.components == 2 and np.allclose(base.precision[0], base.precision[1])  # O(2): shared G(k)
    flow = pl.fit_lattice(
        P,
        base=base,
        basis=lambda p, b: pl.default_basis(p, b, tame=10.0),
        steps=4,
        n_collocation=200,
        progress=False,
    )
    samples = flow.sample(jax.random.PRNGKey(3), 3000)
    assert samples.n_nonfinite == 0 and samples.ess() > 0.8
    obs, imh = pl.flow_observables(samples, 64, jax.random.PRNGKey(4))
    assert imh > 0.7
    # HMC: the 8 chains are independent; their spread gives the error of the mean (7 degrees of freedom)
    per = [pl.chain_observables(fields[c].reshape(-1, 2, 64).sum(axis=2), 64) for c in range(8)]
    for name in ("abs_m", "chi", "binder"):
        vals = np.array([p[name].value for p in per])
        ref, ref_err = vals.mean(), vals.std(ddof=1) / np.sqrt(8)
        sigma = np.hypot(obs[name].error, ref_err)
        # 4.5 combined sigma: a Gaussian tail of 7e-6 per observable, wide enough for the t-distributed (7 dof)
        # HMC error and the Gamma-method error estimates (each uncertain by ~20%)
        assert abs(obs[name].value - ref) < 4.5 * sigma, (name, obs[name], ref, ref_err)
    # the two-point function sums the components: G(0) = <phi . phi> - |<m>|^2 ~ 2 <phi1^2>
    g = pl.flow_two_point(samples, jax.random.PRNGKey(4), components=2)
    assert abs(g[0].value - np.mean(np.sum(fields**2, axis=2))) < 5 * g[0].error + 0.02


def test_hmc_keeps_the_vector_magnetisation(o2_reference):
    """pl.hmc(keep="magnetisation") on the O(2) field: the vector M_a per configuration of the same chains
    (equal to the stored fields' sums to rounding), not the sum over components; the benchmarks' HMC
    references use it and chain_series concatenates the chains in order."""
    from pikflow.bench._common import chain_series

    P, fields, acc = o2_reference
    M, acc_kept = pl.hmc(P, jax.random.PRNGKey(11), 8000, n_chains=8, step="auto", keep="magnetisation")
    assert M.shape == (8, 1000, 2) and acc_kept == acc
    np.testing.assert_allclose(M, fields.sum(axis=(3, 4)), rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(chain_series(M)[1007], M[1, 7], rtol=0)
    with pytest.raises(PikflowError, match="'fields' or 'magnetisation'"):
        pl.hmc(P, jax.random.PRNGKey(11), 16, n_chains=8, keep="M")


def test_toml_round_trip(tmp_path, capsys):
    text = f"""
[action]
lattice = [4, 4]
density = "{O2}"
fields = ["phi1", "phi2"]
[path]
m2 = -0.5
lam = 1.0
[lattice]
base = "gaussian"
steps = 1
collocation = 100
hmc_samples = 200
scales = [0.3, 1.0]
[sampling]
n = 300
"""
    (tmp_path / "o2.toml").write_text(text)
    out = tmp_path / "o2"
    assert main(["run", str(tmp_path / "o2.toml"), "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["fields"] == ["phi1", "phi2"] and "O(2)" in res["symmetry"]
    for name in ("abs_m", "chi", "binder"):
        assert np.isfinite(res["observables"][name]["value"]) and res["observables"][name]["error"] > 0
    assert 0 < res["observables"]["abs_m"]["value"] < 2 and res["ess"] > 0.2
    flow = pl.LatticeFlow.load(out / "flow")
    assert flow.path.action.field_names == ("phi1", "phi2") and flow.base.components == 2
    again = flow.sample(jax.random.PRNGKey(0), 50)
    assert res["basis"] == repr(flow.basis) and "SmoothedPowers[4]" in res["basis"]
    assert again.fields.shape == (50, 2, 4, 4) and np.all(np.isfinite(again.log_w))
    (tmp_path / "bad.toml").write_text(text.replace('fields = ["phi1", "phi2"]', 'fields = ["phi1", "psi"]'))
    assert main(["run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "the field 'psi' does not appear in the density" in capsys.readouterr().err


def test_o2_example_is_valid():
    from pikflow.cli._config import example_path, load_config
    from pikflow.cli._lattice_config import build_lattice

    path, settings = build_lattice(load_config(example_path("o2-lattice-8x8")))
    assert path.action.field_names == ("phi1", "phi2") and path.field_shape == (2, 8, 8)
    assert path.symmetry().on and settings["base"] == "matched"
