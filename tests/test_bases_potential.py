"""Lattice families are bases like the 0-D ones: one AbstractBasis, one spec, one basis_from_spec."""

import json

import numpy as np
import pytest

import pikflow as pf
import pikflow.lattice as pl
from pikflow import BasisError

LAT = pl.Lattice((6, 6))
O2 = (
    "(m2 + 2*d)/2*(phi1**2 + phi2**2) - sum_mu(phi1*shift(phi1, mu) + phi2*shift(phi2, mu))"
    " + lam/4*(phi1**2 + phi2**2)**2"
)


def _anisotropic_symmetry():
    density = "(m2 + 2*d)/2*phi**2 - kx*phi*shift(phi, 0) - ky*phi*shift(phi, 1) + lam/4*phi**4"
    action = pl.LatticeAction(density, LAT.shape)
    return pl.LatticePath(action, {"m2": (1.0, -1.0), "lam": (0.0, 1.0), "kx": 1.0, "ky": 0.5}).symmetry()


FAMILIES = {
    "fourier": lambda: pl.FourierTwoPoint(LAT),
    "fourier-anisotropic": lambda: pl.FourierTwoPoint(LAT, _anisotropic_symmetry()),
    "fourier-o2": lambda: pl.FourierTwoPoint(LAT, components=2, shared=True),
    "magnetisation": lambda: pl.Magnetisation(LAT, (2, 4), width=1.5, log_cosh=0.7),
    "smoothed": lambda: pl.SmoothedPowers(LAT, (0.0, 0.5), (4, 6), tame=3.0),
    "smoothed-precision": lambda: pl.SmoothedPowers(LAT, (0.0, 1.0), (4,), precision=LAT.khat2() + 0.3, tame=2.0),
    "smoothed-o2": lambda: pl.SmoothedPowers(LAT, (0.0, 1.0), (4,), components=2, tame=2.0),
    "products": lambda: pl.SmoothedProducts(LAT, (0.0, 0.5, 2.0), tame=3.0),
    "hermite": lambda: pl.LocalHermite(LAT, 1, 4),
    "basis": lambda: pl.LatticeBasis([pl.FourierTwoPoint(LAT), pl.Magnetisation(LAT, (4,), width=2.0)]),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_a_lattice_family_is_an_abstract_basis_and_its_json_spec_rebuilds_it(name):
    basis = FAMILIES[name]()
    assert isinstance(basis, pf.bases.AbstractBasis) and isinstance(basis, pf.bases.AbstractPotentialBasis)
    spec = json.loads(json.dumps(basis.spec()))  # JSON-serialisable, as every basis's spec
    again = pf.bases.basis_from_spec(spec, lattice=LAT)
    assert type(again) is type(basis) and again.spec() == spec and again.n == basis.n
    comps = getattr(basis, "components", 1)
    if isinstance(basis, pl.LatticeBasis):
        comps = basis.components
    shape = LAT.shape if comps == 1 else (comps, *LAT.shape)
    rng = np.random.default_rng(3)
    x, ds, a = rng.standard_normal(shape), rng.standard_normal(shape), rng.standard_normal(basis.n)
    # the same functions, bit for bit: values, rows of eq. 34, gradient and Laplacian of Omega
    for f, g in ((basis.values, again.values), (basis.laplacians, again.laplacians)):
        np.testing.assert_array_equal(f(x), g(x))
    np.testing.assert_array_equal(basis.columns(x, ds), again.columns(x, ds))
    np.testing.assert_array_equal(basis.gradient(a, x), again.gradient(a, x))
    np.testing.assert_array_equal(basis.laplacian(a, x), again.laplacian(a, x))


def test_the_rows_of_eq34_are_laplacian_minus_gradient_dot_action_gradient():
    """An independent check of the interface: ΔT_j − ∂S·∂T_j, with ∂T_j by autodiff of T_j."""
    import jax

    basis = FAMILIES["basis"]()
    rng = np.random.default_rng(5)
    x, ds = rng.standard_normal(LAT.shape), rng.standard_normal(LAT.shape)
    jac = jax.jit(jax.jacfwd(basis.values))(x).reshape(basis.n, -1)
    np.testing.assert_allclose(basis.columns(x, ds), basis.laplacians(x) - jac @ ds.ravel(), rtol=1e-10, atol=1e-10)


def test_potential_bases_need_their_lattice_and_have_no_sympy_functions():
    spec = FAMILIES["fourier"]().spec()
    with pytest.raises(BasisError, match="lattice="):
        pf.bases.basis_from_spec(spec)
    with pytest.raises(BasisError, match="no SymPy functions"):
        FAMILIES["fourier"]().vector_functions([], True)
    with pytest.raises(BasisError, match="unknown basis kind 'nope'.*smoothed_powers"):
        pf.bases.basis_from_spec({"kind": "nope"})
    with pytest.raises(BasisError, match="bad spec for the magnetisation"):
        pf.bases.basis_from_spec({"kind": "magnetisation"}, lattice=LAT)
    assert {"fourier", "lattice", "local_hermite", "magnetisation"} <= set(pf.bases.potential_kinds())
    assert isinstance(pf.bases.basis_from_spec({"kind": "sine", "n": 3}), pf.Sine)
