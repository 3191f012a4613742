"""Every bad input gets a clear pikflow error whose message names the problem.

All errors are subclasses of :class:`pikflow.PikflowError` (itself a ``ValueError``);
each test checks the class and the key words of the message. The flows used here are
tiny (2 RK4 steps, 6 basis functions) and solved once per module.
"""

import copy
import json
import warnings

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import pikflow as pf
from pikflow.bases import basis_from_spec
from pikflow.diagnostics import ess_fraction, reweight

PHI4 = "m2/2*phi**2 + lam/4*phi**4"


def phi4_action():
    return pf.Action(PHI4, fields=["phi"])


def phi4_path(start=(1.0, 0.0), end=(-2.0, 0.5)):
    return pf.Path.linear(phi4_action(), start={"m2": start[0], "lam": start[1]}, end={"m2": end[0], "lam": end[1]})


SMALL = dict(
    steps=2,
    basis=pf.Sine(n=5, max_frequency=3.0),
    collocation=pf.Collocation(n_samples=200, n_tail=100),
    progress=False,
)


@pytest.fixture(scope="module")
def flow():
    return pf.solve(phi4_path(), **SMALL)


@pytest.fixture(scope="module")
def saved(flow, tmp_path_factory):
    return flow.save(tmp_path_factory.mktemp("flow"))


def test_error_hierarchy():
    for cls in (pf.ActionError, pf.BasisError, pf.SolveError, pf.SamplingError, pf.ConfigError, pf.FlowFileError):
        assert issubclass(cls, pf.PikflowError)
    assert issubclass(pf.PikflowError, ValueError)


# ---------------------------------------------------------------------------- expressions


@pytest.mark.parametrize(
    "text, match",
    [
        ("m2/2*phi**2 +", "cannot parse"),
        ("lambda*phi**4", "keyword 'lambda'"),
        ("f(phi) + phi**2", r"unknown function.*f\(phi\)"),
        ("phi > 1", "scalar SymPy expression"),
        ("   ", "empty"),
        ("phi**2 + (", r"unclosed '\(' at character 10"),
    ],
    ids=["malformed", "keyword", "unknown-function", "relational", "empty", "unbalanced"],
)
def test_bad_action_string(text, match):
    with pytest.raises(pf.ActionError, match=match):
        pf.Action(text, fields=["phi"])


def test_bad_action_objects():
    phi = sp.Symbol("phi")
    with pytest.raises(pf.ActionError, match="scalar SymPy expression"):
        pf.Action(sp.Gt(phi, 1), fields=[phi])
    with pytest.raises(pf.ActionError, match="scalar SymPy expression"):
        pf.Action(sp.Matrix([phi, phi**2]), fields=[phi])
    with pytest.raises(pf.ActionError, match="scalar SymPy expression, got NoneType"):
        pf.Action(None, fields=[phi])
    with pytest.raises(pf.ActionError, match="not a finite real expression"):
        pf.Action(sp.I * phi**2, fields=[phi])
    with pytest.raises(pf.ActionError, match=r"unknown function.*g\(phi\)"):
        pf.Action(sp.Function("g")(phi) + phi**2, fields=[phi])


def test_fields_not_said():
    with pytest.raises(pf.ActionError, match="say which symbols are fields"):
        pf.Action(PHI4)


def test_field_that_appears_nowhere():
    with pytest.raises(pf.ActionError, match=r"field\(s\) \['phi'\] appear nowhere"):
        pf.Action("m2*x**2", fields=["phi"])
    with pytest.raises(pf.ActionError, match="appear nowhere"):
        pf.Action("m2*x**2", fields=["phi"], couplings=["m2"])


def test_bad_field_and_coupling_names():
    with pytest.raises(pf.ActionError, match="repeated"):
        pf.Action(PHI4, fields=["phi", "phi"])
    with pytest.raises(pf.ActionError, match="valid Python identifier"):
        pf.Action(PHI4, fields=["2phi"])
    with pytest.raises(pf.ActionError, match="valid Python identifier"):
        pf.Action(PHI4, fields=["lambda"])
    with pytest.raises(pf.ActionError, match=r"unknown symbol\(s\) \['m2'\]"):
        pf.Action(PHI4, fields=["phi"], couplings=["lam"])
    with pytest.raises(pf.ActionError, match="is a field of the action, not a coupling"):
        phi4_action().coupling("phi")
    with pytest.raises(pf.ActionError, match="unknown coupling 'g'"):
        phi4_action().substitute({"g": 1.0})


# ---------------------------------------------------------------------------- paths


def test_unknown_coupling_in_path():
    with pytest.raises(pf.ActionError, match=r"unknown coupling 'g'.*couplings \['lam', 'm2'\]"):
        pf.Path.linear(phi4_action(), start={"m2": 1, "lam": 0, "g": 1}, end={"m2": -2, "lam": 0.5, "g": 2})


def test_missing_coupling_in_path():
    with pytest.raises(
        pf.ActionError,
        match=r"symbol\(s\) \['lam'\] in the action are neither fields \['phi'\] nor couplings with a value",
    ):
        pf.Path.linear(phi4_action(), start={"m2": 1.0}, end={"m2": -2.0})
    with pytest.raises(pf.ActionError, match="nor couplings with a value on the path"):
        pf.Path(phi4_action(), {"m2": 1.0})


def test_coupling_at_one_end_only():
    with pytest.raises(pf.ActionError, match=r"\['lam'\] are given at one end of the path only"):
        pf.Path.linear(phi4_action(), start={"m2": 1.0, "lam": 0.0}, end={"m2": -2.0})
    with pytest.raises(pf.ActionError, match="one end of the path only"):
        pf.Path.linear(phi4_action(), start={"m2": 1.0}, end={"m2": -2.0, "lam": 0.5})


def test_bad_coupling_values():
    action = phi4_action()
    with pytest.raises(pf.ActionError, match=r"give \[start, end\]"):
        pf.Path(action, {"m2": (1.0, 2.0, 3.0), "lam": 0.0})
    with pytest.raises(pf.ActionError, match="start and end must be numbers"):
        pf.Path(action, {"m2": ("a", 2.0), "lam": 0.0})
    with pytest.raises(pf.ActionError, match="must be finite"):
        pf.Path(action, {"m2": (1.0, np.inf), "lam": 0.0})
    with pytest.raises(pf.ActionError, match="must be finite"):
        pf.Path(action, {"m2": np.nan, "lam": 0.0})
    with pytest.raises(pf.ActionError, match=r"may depend on t only, not on \['g'\]"):
        pf.Path(action, {"m2": "1 - g*t", "lam": 0.0})
    with pytest.raises(pf.ActionError, match="is a field of the action"):
        pf.Path(action, {"m2": 1.0, "lam": 0.0, "phi": 2.0})
    with pytest.raises(pf.ActionError, match="cannot parse the coupling 'm2'"):
        pf.Path(action, {"m2": "1 - ", "lam": 0.0})
    with pytest.raises(pf.ActionError, match="Path needs an Action"):
        pf.Path(PHI4, {"m2": 1.0})


def test_field_named_t():
    action = pf.Action("m2/2*t**2", fields=["t"])
    with pytest.raises(pf.ActionError, match="RG time"):
        pf.Path.linear(action, start={"m2": 1.0}, end={"m2": 2.0})


def test_field_named_t_from_expression():
    with pytest.raises(pf.ActionError, match="RG time"):
        pf.Path.from_expression("t**2/2 + x*t", ["t"])


def test_path_spec_missing_entry():
    spec = phi4_path().spec()
    del spec["fields"]
    with pytest.raises(pf.ActionError, match="lacks the entry 'fields'"):
        pf.Path.from_spec(spec)


# ---------------------------------------------------------------------------- solve: path checks


def test_target_not_bounded_below():
    path = phi4_path(end=(-2.0, -0.5))
    with pytest.raises(pf.ActionError, match="not normalisable"):
        pf.solve(path, **SMALL)
    with pytest.raises(pf.ActionError, match=r"not bounded below.*phi -> \+inf"):
        path.check_normalisable()
    for density in ("phi**2/2 + log(phi)", "phi**2/2 - log(phi)"):  # -log(phi) is +inf at 0: every direction fails
        undefined = pf.Path(pf.Action(density, fields=["phi"]), {})
        with pytest.raises(pf.ActionError, match=r"real for every field value \(e.g. log\(1 \+ phi\*\*2\)"):
            undefined.check_normalisable()


def test_two_field_target_not_bounded_below():
    action = pf.Action("(phi1**2 + phi2**2)/2 + lam*(phi1**4 - phi2**4)", fields=["phi1", "phi2"])
    path = pf.Path.linear(action, start={"lam": 0.0}, end={"lam": 1.0})
    with pytest.raises(
        pf.ActionError, match=r"does not grow for phi2 -> \+inf \(the other fields at 0\).*not normalisable"
    ):
        path.check_normalisable()


def test_base_not_gaussian():
    path = phi4_path(start=(1.0, 0.1))
    path.check_normalisable()  # fine: the problem is only the base
    with pytest.raises(pf.ActionError, match="not quadratic"):
        pf.solve(path, **SMALL)


def test_base_with_negative_mass():
    path = phi4_path(start=(-1.0, 0.0))
    with pytest.raises(pf.ActionError, match="non-positive mass"):
        path.gaussian_base()
    with pytest.raises(pf.ActionError, match="not normalisable"):
        pf.solve(path, **SMALL)
    # an indefinite two-component Gaussian: eigenvalues 3 and -1
    indefinite = pf.Path.from_expression("0.5*(phi1**2 + phi2**2) + 2*phi1*phi2", ["phi1", "phi2"])
    with pytest.raises(pf.ActionError, match="non-positive mass matrix"):
        indefinite.gaussian_base()


@pytest.mark.parametrize("steps", [0, -3, 2.0, 2.5, "4", True, None])
def test_bad_steps(steps):
    with pytest.raises(pf.PikflowError, match="steps must be a positive integer"):
        pf.solve(phi4_path(), **{**SMALL, "steps": steps})


def test_solve_needs_a_path():
    with pytest.raises(pf.PikflowError, match="solve needs a pikflow.Path"):
        pf.solve(phi4_action(), **SMALL)


def test_too_few_collocation_points():
    with pytest.raises(pf.SolveError, match="collocation points for 6 unknowns"):
        pf.solve(phi4_path(), **{**SMALL, "collocation": pf.Collocation(n_samples=3, n_tail=1)})


# ---------------------------------------------------------------------------- collocation, bases, equation


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_samples=-1), "n_samples must be a non-negative integer"),
        (dict(n_tail=-5), "n_tail must be a non-negative integer"),
        (dict(n_samples=10.5), "n_samples must be a non-negative integer"),
        (dict(n_samples=1, n_tail=0), "at least two points"),
        (dict(tail_gap=0.0), "tail_gap must be positive"),
        (dict(tail_gap=np.nan), "tail_gap must be positive"),
        (dict(radius=-1.0), "radius must be positive"),
    ],
)
def test_bad_collocation(kwargs, match):
    with pytest.raises(pf.SolveError, match=match):
        pf.Collocation(**kwargs)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: pf.Polynomial(0), "degree must be an integer >= 1"),
        (lambda: pf.Polynomial(2.5), "degree must be an integer >= 1"),
        (lambda: pf.Polynomial(3, parity="odd-ish"), "parity must be one of"),
        (lambda: pf.Sine([1.0, 2.0, 1.0]), "frequencies must be distinct"),
        (lambda: pf.Sine([1.0, -2.0]), "finite and positive"),
        (lambda: pf.Sine([1.0, np.inf]), "finite and positive"),
        (lambda: pf.Sine([]), "finite and positive"),
        (lambda: pf.Sine(n=0), "number of frequencies must be an integer >= 1"),
        (lambda: pf.Sine(n=3, parity="bad"), "parity must be one of"),
        (lambda: pf.Hermite(0), "degree must be an integer >= 1"),
        (lambda: pf.Hermite(4, scale=0.0), "scale must be positive"),
        (lambda: pf.Radial(0), "degree must be an integer >= 1"),
        (lambda: pf.Radial(3, scale=-1.0), "scale must be positive"),
        (lambda: pf.Custom([]), "at least one function"),
        (lambda: basis_from_spec({"kind": "wavelet"}), "unknown basis kind 'wavelet'"),
        (lambda: basis_from_spec({"degree": 3}), "needs its kind"),
        (lambda: basis_from_spec({"kind": "sine", "n": 3, "colour": "red"}), "bad options for the sine basis"),
    ],
)
def test_bad_basis(make, match):
    with pytest.raises(pf.BasisError, match=match):
        make()


def test_bad_custom_basis_function():
    with pytest.raises(pf.ActionError, match="cannot parse the basis function"):
        pf.Custom(["phi**"])
    with pytest.raises(pf.ActionError, match="unknown function"):
        pf.Custom(["f(phi)"])


def test_custom_basis_does_not_fit_the_fields():
    path = phi4_path()
    with pytest.raises(pf.BasisError, match=r"uses symbol\(s\) \['x'\] that are not fields"):
        pf.WegnerEquation(path, pf.Custom(["x**3"]))
    with pytest.raises(pf.BasisError, match="has 2 components, the field has 1"):
        pf.WegnerEquation(path, pf.Custom([["phi**3", "phi**2"]]))


def test_bad_equation_settings():
    with pytest.raises(pf.BasisError, match="form must be one of"):
        pf.WegnerEquation(phi4_path(), pf.Polynomial(3), form="gradient")
    with pytest.raises(pf.BasisError, match="chi must have one entry per field component"):
        pf.WegnerEquation(phi4_path(), pf.Polynomial(3), chi=[0.0, 1.0])


def test_basis_function_with_vanishing_column():
    # K = exp(S) for S = phi^2/2: div K - K dS/dphi = 0, so its column vanishes identically
    path = pf.Path.from_expression("phi**2/2", ["phi"])
    with pytest.raises(pf.SolveError, match="1 basis function.*vanishes at every collocation point"):
        pf.solve(path, **{**SMALL, "basis": pf.Custom(["exp(phi**2/2)", "phi**3"])})


# ---------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("n", [0, -5, 10.0, True, "100"])
def test_bad_sample_count(flow, n):
    with pytest.raises(pf.SamplingError, match="n must be a positive integer"):
        flow.sample(n, progress=False)


def test_bad_logdet(flow):
    with pytest.raises(pf.SamplingError, match="logdet must be 'auto' or one of"):
        flow.sample(10, logdet="jacobian", progress=False)


def test_bad_times_and_shapes(flow):
    with pytest.raises(pf.SamplingError, match="not a layer time"):
        flow.kernel(0.3)
    with pytest.raises(pf.SamplingError, match="not a layer time"):
        flow.kernel(1.5)
    with pytest.raises(pf.SamplingError, match=r"must have shape \(n, 1\)"):
        flow.velocity(np.zeros((3, 2)), 0.5)
    samples = flow.sample(50, progress=False)
    with pytest.raises(pf.SamplingError, match="not a step time"):
        samples.ess_at(0.25)
    last_only = flow.sample(50, keep_layers=False, progress=False)
    with pytest.raises(pf.SamplingError, match="only t = 1 was kept"):
        last_only.observable("phi**2", t=0.5)
    with pytest.raises(pf.ActionError, match="cannot parse the observable"):
        samples.observable("phi**")
    # an observable undefined on samples that carry weight is refused, not averaged over the others
    with pytest.raises(pf.SamplingError, match=r"observable log\(phi\) is not finite on \d+ of 50 samples"):
        samples.observable("log(phi)")
    assert np.isfinite(samples.observable("log(Abs(phi))").value)


def poisoned(flow, region):
    """A copy of ``flow`` whose kernels give NaN velocities where ``region(phi)`` holds."""
    k = flow.kernels
    values = k.values
    bad = copy.copy(flow)
    bad.kernels = pf.flow.LinearKernel(
        k.coeffs, lambda p: jnp.where(region(p), jnp.nan, 1.0) * values(p), k.divergences
    )
    return bad


def test_table_of_a_poisoned_flow_reports_coverage(flow):
    """Where the RK4 map is not finite the table continues it (exact weights) and reports the lost coverage."""
    bad = poisoned(flow, lambda p: p[0] > 1.5)
    s = bad.sample(20_000, seed=3, keep_layers=False, progress=False)
    assert s.n_nonfinite == 0 and s.logdet == "table"
    assert 0.5 < bad.table_info.coverage < 0.99  # the base mass that ever enters phi > 1.5 is lost
    assert 0 < s.ess < 1


@pytest.mark.parametrize("keep_layers", [True, False])
def test_nonfinite_samples_are_counted(flow, keep_layers):
    clean = flow.sample(1000, seed=3, keep_layers=keep_layers, method="rk4", progress=False)
    assert clean.n_nonfinite == 0
    bad = poisoned(flow, lambda p: p[0] > 1.5)
    with pytest.warns(UserWarning, match=r"\d+ of 1000 samples are non-finite"):
        samples = bad.sample(1000, seed=3, keep_layers=keep_layers, method="rk4", progress=False)
    n_bad = samples.n_nonfinite
    assert 0 < n_bad < 1000
    assert samples.n_samples == 1000
    finite = np.isfinite(samples.log_w[-1])
    assert np.sum(~finite) == n_bad
    assert np.all(np.isneginf(samples.log_w[-1][~finite]))  # weight zero, never NaN
    assert np.all(np.isfinite(samples.final[finite]))
    # the finite samples are exactly the clean samples that never entered the region
    np.testing.assert_allclose(samples.log_w[-1][finite], clean.log_w[-1][finite], rtol=1e-12)
    # ESS/N: (sum w)^2 / (N sum w^2), the lost samples counting in N with w = 0
    ess = samples.ess
    assert np.isfinite(ess) and 0 < ess <= 1
    lw = samples.log_w[-1][finite]
    np.testing.assert_allclose(ess, ess_fraction(lw) * finite.sum() / 1000, rtol=1e-10)
    # observables: finite, and computed from the finite samples only
    est = samples.observable("phi**2")
    assert np.isfinite(est.value) and np.isfinite(est.error) and est.error > 0
    want = reweight(lw, samples.final[finite, 0] ** 2)
    np.testing.assert_allclose([est.value, est.error], want, rtol=1e-10)
    assert np.isfinite(samples.log_z().value)
    assert 0 <= samples.imh_acceptance <= 1
    summary = samples.summary()
    assert summary["n_nonfinite"] == n_bad
    json.dumps(summary)


def test_all_samples_nonfinite(flow):
    bad = copy.copy(flow)
    bad.kernels = eqx.tree_at(lambda k: k.coeffs, flow.kernels, replace_fn=lambda c: c.at[-1, 0].set(jnp.nan))
    with pytest.raises(pf.SamplingError, match="every sample is non-finite"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bad.sample(200, method="rk4", progress=False)
    with pytest.raises(pf.SamplingError, match="non-finite or folds"):  # the table refuses to build
        bad.sample(200, progress=False)


# ---------------------------------------------------------------------------- save / load


def test_load_round_trip(flow, saved):
    again = pf.Flow.load(saved)
    np.testing.assert_array_equal(np.asarray(again.kernels.coeffs), np.asarray(flow.kernels.coeffs))
    assert again.steps == flow.steps
    assert again.settings["basis"] == flow.settings["basis"]
    assert pf.load(saved).steps == flow.steps


def test_load_missing_directory(tmp_path):
    with pytest.raises(pf.FlowFileError, match="is not a saved flow: flow.json is missing"):
        pf.Flow.load(tmp_path / "nowhere")


def test_load_missing_kernels(saved, tmp_path):
    (tmp_path / "flow.json").write_text((saved / "flow.json").read_text())
    with pytest.raises(pf.FlowFileError, match="arrays.npz is missing"):
        pf.Flow.load(tmp_path)


def copy_flow(saved, target):
    for name in ("flow.json", "arrays.npz"):
        (target / name).write_bytes((saved / name).read_bytes())
    return target


@pytest.mark.parametrize("garbage", ["{not json", "", "\x00\x01binary"])
def test_load_corrupt_json(saved, tmp_path, garbage):
    copy_flow(saved, tmp_path)
    (tmp_path / "flow.json").write_text(garbage)
    with pytest.raises(pf.FlowFileError, match="cannot read the flow"):
        pf.Flow.load(tmp_path)


def test_load_json_not_an_object(saved, tmp_path):
    copy_flow(saved, tmp_path)
    (tmp_path / "flow.json").write_text("[1, 2, 3]")
    with pytest.raises(pf.FlowFileError, match="flow.json"):
        pf.Flow.load(tmp_path)


def test_load_wrong_format_or_missing_key(saved, tmp_path):
    copy_flow(saved, tmp_path)
    meta = json.loads((saved / "flow.json").read_text())
    (tmp_path / "flow.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(pf.FlowFileError, match="not a pikflow flow of this kind .format 99"):
        pf.Flow.load(tmp_path)
    (tmp_path / "flow.json").write_text(json.dumps({**meta, "version": 3, "pikflow_version": "9.0"}))
    with pytest.raises(pf.FlowFileError, match="flow format version 3 .written by pikflow 9.0.*reads version 2"):
        pf.Flow.load(tmp_path)
    del meta["settings"]
    (tmp_path / "flow.json").write_text(json.dumps(meta))
    with pytest.raises(pf.FlowFileError, match="cannot read the flow.*settings"):
        pf.Flow.load(tmp_path)


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_load_truncated_kernels(saved, tmp_path, keep):
    copy_flow(saved, tmp_path)
    raw = (saved / "arrays.npz").read_bytes()
    (tmp_path / "arrays.npz").write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(pf.FlowFileError, match="cannot read the flow"):
        pf.Flow.load(tmp_path)


def test_load_kernels_of_another_flow(saved, tmp_path):
    # kernels of the wrong shape (a flow with more steps) do not fit the skeleton
    copy_flow(saved, tmp_path)
    meta = json.loads((saved / "flow.json").read_text())
    meta["settings"]["steps"] = 3
    (tmp_path / "flow.json").write_text(json.dumps(meta))
    with pytest.raises(pf.FlowFileError, match="cannot read the flow"):
        pf.Flow.load(tmp_path)
