"""Tests of the symbolic layer: actions, paths, the Gaussian base, the Wegner columns and the bases.

Symbolic results are compared with hand-derived SymPy expressions (pikflow makes every
symbol ``real=True``, so expected expressions are rebuilt with real symbols by name);
the lowered JAX functions are compared with JAX autodiff at random configurations.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import pikflow as pf
from pikflow.bases import basis_from_spec

# Real symbols, as pikflow makes them; plain ones (no assumptions) for the user-side input.
phi, phi1, phi2, m2, lam, t = sp.symbols("phi phi1 phi2 m2 lam t", real=True)
PHI4 = "m2/2*phi**2 + lam/4*phi**4"
O2 = "(m2/2)*(phi1**2 + phi2**2) + (lam/4)*(phi1**2 + phi2**2)**2"


def real(expr):
    """``expr`` with every free symbol replaced by the real symbol of the same name."""
    return expr.xreplace({s: sp.Symbol(str(s), real=True) for s in expr.free_symbols})


def same(a, b) -> bool:
    """Whether two expressions agree, matching symbols by name (floats read as exact rationals)."""
    diff = real(sp.sympify(a)) - real(sp.sympify(b))
    return sp.simplify(sp.nsimplify(diff, rational=True)) == 0


def phi4_path(start=(1.0, 0.0), end=(-2.0, 0.5), extra=""):
    action = pf.Action(PHI4 + extra, fields=["phi"])
    return pf.Path.linear(action, start={"m2": start[0], "lam": start[1]}, end={"m2": end[0], "lam": end[1]})


def o2_path(anisotropic=False):
    expr = O2 if not anisotropic else "(m2/2)*(phi1**2 + phi2**2) + (lam/4)*(phi1**4 + phi2**4)"
    action = pf.Action(expr, fields=["phi1", "phi2"])
    return pf.Path.linear(action, start={"m2": 1.0, "lam": 0.0}, end={"m2": -1.0, "lam": 1.0})


# ---------------------------------------------------------------------------- Action


def test_action_from_sympy_and_string_agree():
    x, a, b = sp.symbols("phi m2 lam")  # plain symbols, as a user writes them
    from_sympy = pf.Action(a / 2 * x**2 + b / 4 * x**4, fields=[x])
    from_string = pf.Action(PHI4, fields=["phi"])
    assert from_sympy.expr == from_string.expr
    assert same(from_sympy.expr, m2 / 2 * phi**2 + lam / 4 * phi**4)
    assert from_sympy.fields == from_string.fields == (phi,)
    assert from_sympy.couplings == from_string.couplings == (lam, m2)
    assert all(s.is_real for s in from_sympy.expr.free_symbols)


@pytest.mark.parametrize("fields", [["phi"], [sp.Symbol("phi")], "phi", sp.Symbol("phi"), [phi]])
def test_action_fields_by_name_or_symbol(fields):
    action = pf.Action(PHI4, fields=fields)
    assert action.fields == (phi,)
    # the field is the very symbol of the expression (so derivatives see it)
    assert action.fields[0] in action.expr.free_symbols
    assert action.n_fields == 1
    assert same(action.gradient()[0], m2 * phi + lam * phi**3)


def test_action_couplings_inferred():
    by_fields = pf.Action(PHI4, fields=["phi"])
    assert [str(c) for c in by_fields.couplings] == ["lam", "m2"]
    by_couplings = pf.Action(PHI4, couplings=["m2", "lam"])
    assert by_couplings.fields == (phi,)
    assert [str(c) for c in by_couplings.couplings] == ["lam", "m2"]
    assert by_couplings.coupling("m2") == m2
    assert by_couplings.coupling(sp.Symbol("lam")) == lam


def test_action_substitute():
    action = pf.Action(PHI4, fields=["phi"]).substitute({"m2": 1, "lam": 2})
    assert action.couplings == ()
    assert same(action.expr, phi**2 / 2 + phi**4 / 2)


def test_o2_action_two_fields():
    action = pf.Action(O2, fields=["phi1", "phi2"])
    assert action.n_fields == 2
    assert action.fields == (phi1, phi2)
    assert [str(c) for c in action.couplings] == ["lam", "m2"]
    r2 = phi1**2 + phi2**2
    grad = action.gradient()
    assert same(grad[0], m2 * phi1 + lam * r2 * phi1)
    assert same(grad[1], m2 * phi2 + lam * r2 * phi2)
    assert action.is_z2_symmetric()


# ---------------------------------------------------------------------------- Path


def test_path_linear_expr_and_dsdt():
    path = phi4_path()
    m2_t, lam_t = 1 - 3 * t, t / 2
    assert same(path.expr, m2_t / 2 * phi**2 + lam_t / 4 * phi**4)
    assert same(path.dsdt, -sp.Rational(3, 2) * phi**2 + sp.Rational(1, 8) * phi**4)
    assert same(path.gradient[0], m2_t * phi + lam_t * phi**3)
    assert path.fields == (phi,)
    assert same(path.at(1.0), -(phi**2) + phi**4 / 8)
    assert same(path.at(0.0), phi**2 / 2)


def test_path_linear_accepts_symbols_as_keys():
    a, b = sp.symbols("m2 lam")
    action = pf.Action(PHI4, fields=["phi"])
    by_symbol = pf.Path.linear(action, start={a: 1.0, b: 0.0}, end={a: -2.0, b: 0.5})
    assert same(by_symbol.expr, phi4_path().expr)


def test_path_string_and_constant_couplings():
    action = pf.Action(PHI4, fields=["phi"])
    path = pf.Path(action, {"m2": "1 - 3*t**2", "lam": 0.5})
    assert same(path.expr, (1 - 3 * t**2) / 2 * phi**2 + phi**4 / 8)
    assert same(path.dsdt, -3 * t * phi**2)
    # a constant coupling given as (start, end) with start == end is constant too
    path2 = pf.Path(action, {"m2": sp.sympify("1 - 3*t**2"), "lam": (0.5, 0.5)})
    assert same(path2.expr, path.expr)


def test_path_from_expression_without_t():
    path = pf.Path.from_expression("phi**2/2 + phi**4/4", ["phi"])
    assert same(path.expr, phi**2 / 2 + phi**4 / 4)
    assert path.dsdt == 0


def test_path_from_expression_with_t():
    path = pf.Path.from_expression("(1 - t)*phi**2/2 + t*phi**4/4", ["phi"])
    assert same(path.expr, (1 - t) * phi**2 / 2 + t * phi**4 / 4)
    assert same(path.dsdt, -(phi**2) / 2 + phi**4 / 4)


@pytest.mark.parametrize(
    "make",
    [
        phi4_path,
        lambda: pf.Path(pf.Action(PHI4, fields=["phi"]), {"m2": "1 - 3*t**2", "lam": 0.5}),
        lambda: pf.Path.from_expression("phi**2/2 + phi**4/4", ["phi"]),
        lambda: pf.Path.from_expression("(1 - t)*phi**2/2 + t*phi**4/4", ["phi"]),
        o2_path,
    ],
    ids=["linear", "string-coupling", "from-expression", "from-expression-t", "O2"],
)
def test_path_spec_round_trip(make):
    import json

    path = make()
    spec = json.loads(json.dumps(path.spec()))  # must survive JSON
    again = pf.Path.from_spec(spec)
    assert same(again.expr, path.expr)
    assert again.fields == path.fields
    assert again.spec() == path.spec()


def test_z2_symmetry():
    assert phi4_path().is_z2_symmetric()
    assert pf.Action(PHI4, fields=["phi"]).is_z2_symmetric()
    assert not phi4_path(extra=" + phi**3").is_z2_symmetric()
    assert not pf.Action(PHI4 + " + phi**3", fields=["phi"]).is_z2_symmetric()
    assert o2_path().is_z2_symmetric()


def test_rotation_invariance():
    assert o2_path().is_rotation_invariant()
    assert not o2_path(anisotropic=True).is_rotation_invariant()
    assert not phi4_path().is_rotation_invariant()  # one component: no rotations


def test_gaussian_base_mean_and_precision():
    path = pf.Path.from_expression("0.5*(phi1**2 + 2*phi2**2 + phi1*phi2) + phi1", ["phi1", "phi2"])
    mean, precision = path.gaussian_base()
    # S_0 = 1/2 phi^T K phi + g^T phi  =>  K = Hessian, mean = -K^{-1} g
    K = np.array([[1.0, 0.5], [0.5, 2.0]])
    g = np.array([1.0, 0.0])
    np.testing.assert_allclose(precision, K, rtol=0, atol=1e-14)
    np.testing.assert_allclose(mean, -np.linalg.solve(K, g), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(mean, [-8 / 7, 2 / 7], rtol=1e-14)


def test_gaussian_base_of_phi4_path():
    mean, precision = phi4_path().gaussian_base()
    np.testing.assert_allclose(mean, [0.0], atol=1e-15)
    np.testing.assert_allclose(precision, [[1.0]])


# ---------------------------------------------------------------------------- Wegner equation


def free_path():
    """S_t = m2(t)/2 phi^2 with m2 from 1 to 2: exact kernel v = -(dm2/dt)/(2 m2) phi."""
    return pf.Path.linear(pf.Action("m2/2*phi**2", fields=["phi"]), start={"m2": 1.0}, end={"m2": 2.0})


@pytest.mark.parametrize("form", ["chi", "constant"])
def test_free_field_exact_kernel_solves_wegner(getkey, form):
    # Polynomial(1, odd) is exactly the single function K = phi
    eq = pf.WegnerEquation(free_path(), pf.Polynomial(1, parity="odd"), form=form)
    assert eq.n_basis == 1
    assert same(eq.functions[0][0], phi)
    assert same(eq.columns[0], 1 - (1 + t) * phi**2)
    assert same(eq.rhs, phi**2 / 2)
    points = 2.0 * jax.random.normal(getkey(), (64, 1))
    for time in (0.0, 0.3, 0.75, 1.0):
        A, b = eq.system(points, jnp.asarray(time))
        m2_t, dm2 = 1.0 + time, 1.0
        k = -dm2 / (2 * m2_t)
        if form == "chi":
            assert A.shape == (64, 1)
            np.testing.assert_allclose(A[:, 0] * k - b, 0.0, atol=1e-12)
        else:
            # c_t = d log N_t / dt = -<dS/dt>_t = -<phi^2/2> = -1/(2 m2)
            assert A.shape == (64, 2)
            c = -1.0 / (2 * m2_t)
            np.testing.assert_allclose(A[:, 0] * k + A[:, 1] * c - b, 0.0, atol=1e-12)


def test_custom_basis_phi_matches_polynomial():
    # a custom basis written as the bare field name: the same single function K = phi
    custom = pf.WegnerEquation(free_path(), pf.Custom(["phi"]))
    poly = pf.WegnerEquation(free_path(), pf.Polynomial(1, parity="odd"))
    assert custom.n_basis == poly.n_basis == 1
    assert same(custom.columns[0], poly.columns[0])


def test_custom_basis_expressions_and_vectors():
    eq = pf.WegnerEquation(free_path(), pf.Custom(["phi**3", sp.sin(sp.Symbol("phi"))]))
    assert [same(k[0], f) for k, f in zip(eq.functions, [phi**3, sp.sin(phi)], strict=True)] == [True, True]
    vec = pf.Custom([["phi1**3", "-phi2"], "phi1*phi2"])
    funcs = vec.vector_functions((phi1, phi2), True)
    assert len(funcs) == 3  # one vector function + a scalar one on each component
    assert same(funcs[0][0], phi1**3) and same(funcs[0][1], -phi2)
    assert same(funcs[1][0], phi1 * phi2) and funcs[1][1] == 0
    assert funcs[2][0] == 0 and same(funcs[2][1], phi1 * phi2)


@pytest.mark.parametrize("which", ["phi4", "O2"])
def test_lowered_gradient_matches_autodiff(getkey, which):
    path = phi4_path(extra=" + phi**3/7") if which == "phi4" else o2_path()
    eq = pf.WegnerEquation(path, pf.Polynomial(3))
    points = 1.5 * jax.random.normal(getkey(), (20, path.n_fields))
    times = jax.random.uniform(getkey(), (20,))
    got = jax.vmap(eq.gradient_fn)(points, times)
    want = jax.vmap(jax.grad(eq.action_fn))(points, times)
    assert got.shape == (20, path.n_fields)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # dS/dt, too
    got_t = jax.vmap(eq.rhs_fn)(points, times)
    want_t = jax.vmap(jax.grad(eq.action_fn, argnums=1))(points, times)
    np.testing.assert_allclose(got_t, want_t, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "path, basis",
    [
        (phi4_path(), pf.Hermite(6)),
        (phi4_path(), pf.Hermite(5, parity="all")),
        (phi4_path(), pf.Sine(n=5)),
        (phi4_path(extra=" + phi**3"), pf.Sine(n=4)),
        (o2_path(), pf.Radial(4)),
        (o2_path(), pf.Polynomial(3)),
    ],
    ids=["hermite-odd", "hermite-all", "sine-odd", "sine-all", "radial-O2", "polynomial-O2"],
)
def test_divergences_match_autodiff(getkey, path, basis):
    eq = pf.WegnerEquation(path, basis)
    n = path.n_fields
    points = 1.5 * jax.random.normal(getkey(), (16, n))
    values = jax.vmap(eq.values)(points)
    assert values.shape == (16, eq.n_basis, n)
    jac = jax.vmap(jax.jacfwd(eq.values))(points)  # (points, basis, a, b) = d values[j, a] / d phi_b
    want = jnp.trace(jac, axis1=-2, axis2=-1)
    got = jax.vmap(eq.divergences)(points)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    # the columns are div K_j - K_j . grad S_t
    time = jnp.asarray(0.4)
    grad = jax.vmap(eq.gradient_fn, in_axes=(0, None))(points, time)
    cols = jax.vmap(eq.column_fn, in_axes=(0, None))(points, time)
    np.testing.assert_allclose(cols, want - jnp.einsum("pja,pa->pj", values, grad), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------- bases


def scalar(funcs):
    """The scalar functions of a one-field list of vector basis functions."""
    assert all(len(k) == 1 for k in funcs)
    return [k[0] for k in funcs]


def assert_same_list(got, want):
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want, strict=True):
        assert same(g, w), (g, w)


@pytest.mark.parametrize(
    "parity, powers",
    [("odd", [1, 3, 5]), ("even", [0, 2, 4]), ("all", [0, 1, 2, 3, 4, 5])],
)
def test_polynomial_monomials(parity, powers):
    funcs = scalar(pf.Polynomial(5, parity=parity).vector_functions((phi,), True))
    assert_same_list(funcs, [phi**p for p in powers])


def test_polynomial_two_fields():
    funcs = pf.Polynomial(3, parity="odd").vector_functions((phi1, phi2), True)
    comps = {(real(k[0]), real(k[1])) for k in funcs}
    monomials = [phi1, phi2, phi1**3, phi1**2 * phi2, phi1 * phi2**2, phi2**3]
    assert comps == {(m, 0) for m in monomials} | {(0, m) for m in monomials}


def test_sine_functions():
    odd = scalar(pf.Sine(n=3, max_frequency=3, parity="odd").vector_functions((phi,), True))
    sines = [sp.sin(w * phi) for w in (1, 2, 3)]
    assert_same_list(odd, [phi, *sines])
    every = scalar(pf.Sine(n=3, max_frequency=3, parity="all").vector_functions((phi,), True))
    assert_same_list(every, [1, phi, *sines, *[sp.cos(w * phi) for w in (1, 2, 3)]])
    assert pf.Sine(n=3, max_frequency=3).frequencies == [1.0, 2.0, 3.0]
    assert pf.Sine([0.5, 2.5]).frequencies == [0.5, 2.5]


@pytest.mark.parametrize(
    "basis, n_odd, n_all",
    [
        (pf.Polynomial(5), 3, 6),
        (pf.Sine(n=3, max_frequency=3), 4, 8),  # (1,) phi, 3 sines (, 3 cosines)
        (pf.Hermite(4), 1 + 2, 1 + 5),  # phi plus the odd (even) Hermite functions H1, H3 (H0..H4)
    ],
    ids=["polynomial", "sine", "hermite"],
)
def test_auto_parity(basis, n_odd, n_all):
    symmetric = pf.WegnerEquation(phi4_path(), basis)
    asymmetric = pf.WegnerEquation(phi4_path(extra=" + phi**3/10"), basis)
    assert symmetric.symmetric and not asymmetric.symmetric
    assert symmetric.n_basis == n_odd
    assert asymmetric.n_basis == n_all
    for (k,) in symmetric.functions:  # every function is odd
        assert sp.simplify(k.xreplace({phi: -phi}) + k) == 0


def test_auto_parity_resolves_like_explicit():
    sym = pf.WegnerEquation(phi4_path(), pf.Polynomial(5))
    odd = pf.WegnerEquation(phi4_path(), pf.Polynomial(5, parity="odd"))
    assert_same_list(scalar(sym.functions), scalar(odd.functions))
    asym = pf.WegnerEquation(phi4_path(extra=" + phi**3"), pf.Polynomial(5))
    every = pf.WegnerEquation(phi4_path(extra=" + phi**3"), pf.Polynomial(5, parity="all"))
    assert_same_list(scalar(asym.functions), scalar(every.functions))


def test_radial_basis():
    funcs = pf.Radial(2, scale=1.0).vector_functions((phi1, phi2), True)
    u = phi1**2 + phi2**2
    gs = [1, sp.exp(-u / 2), (1 - u) * sp.exp(-u / 2)]
    assert len(funcs) == 3
    for k, g in zip(funcs, gs, strict=True):
        assert same(k[0], phi1 * g) and same(k[1], phi2 * g)


@pytest.mark.parametrize(
    "basis",
    [
        pf.Polynomial(5),
        pf.Polynomial(4, parity="even"),
        pf.Sine(n=3, max_frequency=3),
        pf.Sine([0.5, 1.7], parity="all"),
        pf.Hermite(4, scale=2.0),
        pf.Radial(3, scale=1.2),
        pf.Custom(["phi1**3", ["phi1*phi2", "-phi1"]]),
    ],
    ids=["polynomial", "polynomial-even", "sine", "sine-freqs", "hermite", "radial", "custom"],
)
def test_basis_spec_round_trip(basis):
    import json

    spec = json.loads(json.dumps(basis.spec()))
    again = basis_from_spec(spec)
    assert type(again) is type(basis)
    assert again.spec() == basis.spec()
    fields = (phi1, phi2)
    for symmetric in (True, False):
        want = basis.vector_functions(fields, symmetric)
        got = again.vector_functions(fields, symmetric)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert all(same(a, b) for a, b in zip(g, w, strict=True))
    assert repr(basis).startswith(type(basis).__name__)


def test_normalisable_check_handles_overflow_without_warnings():
    """exp(phi**2) overflows to +inf far out (inf - inf, 0 * inf at g = 0): still bounded, and no RuntimeWarning."""
    import warnings

    action = pf.Action(PHI4 + " + g*exp(phi**2)", fields=["phi"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pf.Path(action, {"m2": 1.0, "lam": 0.5, "g": [0.0, 1.0]}).check_normalisable()
    with pytest.raises(pf.ActionError, match="not bounded below"):
        pf.Path(action, {"m2": 1.0, "lam": 0.5, "g": -1.0}).check_normalisable()


def test_normalisable_check_sees_through_float_cancellation():
    """phi**2/2 + g (cosh(phi) - sinh(phi)) = phi**2/2 + g exp(-phi) is bounded for g >= 0: float64 gives 0 at
    phi = 100 (cancellation) and inf - inf at 1000, which read as not growing; with g < 0 it is unbounded, and
    log(phi) (not real at phi < 0) is still refused as not real."""
    action = pf.Action("phi**2/2 + g*(cosh(phi) - sinh(phi))", fields=["phi"])
    pf.Path(action, {"g": [0.0, 1.0]}).check_normalisable()
    with pytest.raises(pf.ActionError, match="not bounded below"):
        pf.Path(action, {"g": -1.0}).check_normalisable()
    with pytest.raises(pf.ActionError, match="real for every field value"):
        pf.Path(pf.Action("phi**2/2 + g*log(phi)", fields=["phi"]), {"g": 1.0}).check_normalisable()
    # e^{3 phi}(1 - tanh phi) ~ 2 e^{phi} beats phi**2: unbounded, though 1 - tanh(1000) rounds to 0 in any
    # fixed precision below 870 digits; the exact evaluation sees the cancellation and does not accept it
    with pytest.raises(pf.ActionError, match="not bounded below"):
        pf.Path(pf.Action("phi**2 - g*exp(3*phi)*(1 - tanh(phi))", fields=["phi"]), {"g": 1.0}).check_normalisable()


def test_special_functions_through_the_checks_lowering_and_quadrature():
    """erf and loggamma (SymPy prints them for SciPy and JAX, not for NumPy): phi**2/2 + a erf(phi) passes the
    normalisability check, lowers to JAX with SciPy's values, and its quadrature log Z agrees with SciPy's
    quad; - phi**4 + erf(phi) is refused as unbounded, and besselj (no JAX version) is refused by name."""
    from scipy import integrate, special

    from pikflow.exact import reference_for
    from pikflow.lowering import lower

    path = pf.Path(pf.Action("phi**2/2 + a*erf(phi)", fields=["phi"]), {"a": [0.0, 1.0]})
    path.check_normalisable()
    with pytest.raises(pf.ActionError, match="not bounded below"):
        pf.Path(pf.Action("-phi**4 + erf(phi)", fields=["phi"]), {}).check_normalisable()
    phi = sp.Symbol("phi")
    f = lower(phi**2 / 2 + sp.erf(phi) + sp.loggamma(1 + phi**2), [phi], time=False)
    x = np.array([-1.3, 0.2, 2.5])
    expected = x**2 / 2 + special.erf(x) + special.gammaln(1 + x**2)
    np.testing.assert_allclose([float(f(jnp.array([v]))) for v in x], expected, rtol=1e-13)
    z, _ = integrate.quad(lambda v: np.exp(-(v**2) / 2 - special.erf(v)), -np.inf, np.inf, epsabs=0, epsrel=1e-13)
    assert abs(reference_for(path).log_z(1.0) - np.log(z)) < 1e-9
    from pikflow.bench._hmc import exact_values_at  # the benchmarks' exact observables take erf too

    m, _ = integrate.quad(lambda v: special.erf(v) * np.exp(-(v**2) / 2 - special.erf(v)), -np.inf, np.inf)
    assert exact_values_at(path, "erf(phi)", [1.0])[0] == pytest.approx(m / z, abs=1e-9)
    with pytest.raises(pf.ActionError, match="cannot be evaluated by JAX.*besselj"):
        lower(phi**2 + sp.besselj(0, phi), [phi])
    with pytest.raises(pf.ActionError, match="cannot be evaluated by JAX.*fresnels"):  # no JAX printer at all
        lower(phi**2 + sp.fresnels(phi), [phi])
