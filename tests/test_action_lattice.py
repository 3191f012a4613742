"""One Action and one Path for every field space (issue #13, item 1): a lattice action is an Action with a geometry."""

import numpy as np
import pytest
import sympy as sp

import pikflow as pf
import pikflow.lattice as pl

DENSITY = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"
O2 = "(m2 + 2*d)/2*(a**2 + b**2) - sum_mu(a*shift(a, mu) + b*shift(b, mu)) + lam/4*(a**2 + b**2)**2"


def test_action_with_a_lattice_is_the_lattice_action():
    S = pf.Action(DENSITY, lattice=[8, 8])
    L = pl.LatticeAction(DENSITY, [8, 8])
    assert type(S) is pl.LatticeAction and isinstance(S, pf.Action) and isinstance(L, pf.Action)
    assert S.expr == L.expr and S.couplings == L.couplings and S.fields == L.fields
    assert S.lattice == L.lattice == pl.Lattice((8, 8))
    phi = sp.Symbol("phi", real=True)
    assert S.fields == (phi,) and S.field_names == ("phi",) and S.n_fields == 1
    assert [str(c) for c in S.couplings] == ["lam", "m2"]
    # the 0-D action has no geometry, and keeps its own type
    zero = pf.Action("m2/2*phi**2", fields=["phi"])
    assert zero.lattice is None and not isinstance(zero, pl.LatticeAction)


def test_components_and_explicit_names_mean_the_same_in_both_spaces():
    named = pf.Action(O2, ["b", "a"], lattice=pl.Lattice((4, 4)))
    assert named.field_names == ("b", "a") and named.fields == sp.symbols("b a", real=True)
    assert named.field_shape == (2, 4, 4) and named.n_fields == named.n == 2
    # couplings= infers the fields as every other symbol, as in 0-D
    inferred = pf.Action(O2, couplings=["m2", "lam"], lattice=[4, 4])
    assert inferred.field_names == ("a", "b") and inferred.fields_inferred
    assert inferred.expr == pl.LatticeAction(O2, [4, 4]).expr
    with pytest.raises(pf.ActionError, match=r"unknown symbol\(s\) \['lam'\]"):
        pf.Action(O2, ["a", "b"], couplings=["m2"], lattice=[4, 4])
    with pytest.raises(pf.ActionError, match="lattice sizes must be at least 3"):
        pf.Action(DENSITY, lattice=[2, 8])
    # the density grammar goes through the one parser: its bracket check and keyword check
    with pytest.raises(pf.ActionError, match=r"lattice density .* unclosed '\('"):
        pf.Action("(m2 + 2*d/2*phi**2", lattice=[4, 4])
    with pytest.raises(pf.ActionError, match="keyword 'lambda'"):
        pf.Action("lambda*phi**4", lattice=[4, 4])


def test_symmetry_and_substitution_of_a_lattice_action():
    S = pf.Action("(m2 + 2*d)/2*phi**2 - kx*phi*shift(phi, 0) - ky*phi*shift(phi, 1) + g*phi**3", lattice=[6, 6])
    assert not S.is_z2_symmetric()  # phi**3: no Z2
    assert S.symmetry().permutations == ((0, 1),)  # kx, ky: the identity only, no axis swap
    fixed = S.substitute({"kx": 1, "ky": 1, "g": 0})
    assert isinstance(fixed, pl.LatticeAction) and [str(c) for c in fixed.couplings] == ["m2"]
    assert fixed.is_z2_symmetric() and fixed.symmetry().permutations == ((0, 1), (1, 0))
    with pytest.raises(pf.ActionError, match="stencil over sites"):
        S.gradient()


def test_path_dispatches_to_the_lattice_path():
    S = pf.Action(DENSITY, lattice=[4, 4])
    couplings = {"m2": (1.0, -1.0), "lam": (0.0, 1.0)}
    p, q = pf.Path(S, couplings), pl.LatticePath(S, couplings)
    assert type(p) is pl.LatticePath and isinstance(q, pf.Path)
    assert p.density == q.density and p.expr == p.density and p.lattice == S.lattice
    assert p.fields == S.fields and p.n_fields == 1
    assert sp.expand(p.at(0.5) - q.density.xreplace({pf.t: 0.5})) == 0
    lin = pf.Path.linear(S, {"m2": 1.0, "lam": 0.0}, {"m2": -1.0, "lam": 1.0})
    assert type(lin) is pl.LatticePath and lin.density == p.density
    assert pl.LatticePath.linear(S, {"m2": 1.0, "lam": 0.0}, {"m2": -1.0, "lam": 1.0}).density == p.density
    assert p.is_z2_symmetric() and pf.Path(pf.Action(O2, lattice=[4, 4]), {"m2": 1, "lam": 1}).is_rotation_invariant()
    back = pf.Path.from_spec(p.spec())
    assert type(back) is pl.LatticePath and back.density == p.density and back.lattice == p.lattice
    with pytest.raises(pf.ActionError, match="LatticePath needs a LatticeAction"):
        pl.LatticePath(pf.Action("m2*x**2", fields=["x"]), {"m2": 1.0})
    with pytest.raises(pf.ActionError, match="lam"):
        pf.Path(S, {"m2": 1.0})  # a coupling without a value: the lattice message
    with pytest.raises(pf.PikflowError, match="fit_lattice"):
        pf.solve(p, steps=2, progress=False)


def test_a_path_built_through_pf_path_solves_and_samples_the_same_numbers():
    r"""A 4x4 free field, m² from 1 to 0.5: the Fourier two-point basis holds the exact kernel.

    Built through ``pf.Path`` and through ``LatticePath``: the same flow (coefficients) and the same
    samples bit for bit; and :math:`\langle m^2\rangle = 1/(V m^2) = 1/8` exactly, here from 4000
    samples of ESS/N ~ 1: the error of the mean of :math:`m^2` (a scaled chi-square of one degree of
    freedom) is :math:`\sqrt2/8/\sqrt{4000} = 0.0028`; the test allows 4 of them.
    """
    density = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))"
    via_pf = pf.Path(pf.Action(density, lattice=[4, 4]), {"m2": (1.0, 0.5)})
    via_lattice = pl.LatticePath(pl.LatticeAction(density, (4, 4)), {"m2": (1.0, 0.5)})
    flows = []
    for path in (via_pf, via_lattice):
        basis = pl.lattice_basis(path.lattice, magnetisation=(), scales=(), local_range=None)
        flows.append(pl.solve_lattice(path, basis, steps=3, n_collocation=200, seed=1, progress=False))
    assert flows[0].residuals().max() < 1e-10  # exact up to round-off
    np.testing.assert_array_equal(flows[0].coeffs, flows[1].coeffs)
    draws = [flow.sample(4000, seed=7, progress=False) for flow in flows]
    np.testing.assert_array_equal(np.asarray(draws[0].fields), np.asarray(draws[1].fields))
    np.testing.assert_array_equal(np.asarray(draws[0].log_w), np.asarray(draws[1].log_w))
    assert draws[0].ess() > 0.999 and draws[0].n_nonfinite == 0
    m2 = (np.asarray(draws[0].magnetisation()) / 16) ** 2
    assert abs(m2.mean() - 1 / 8) < 4 * np.sqrt(2) / 8 / np.sqrt(4000)
