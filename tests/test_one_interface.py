"""One Flow / Samples interface and one refine entry for every field space (issue #13, item 6).

Parametrised over the zoo's spaces with exact answers (tests/helpers.py): ``free-0d``
(S = 3/2 φ² at t = 1) and ``free-4x4`` (a free lattice field, m² = 0.5 at t = 1). The shared
interface must give the numbers the per-space code gives, and agree with the exact values:

* log Z: 0-D ½ log(2π/3); lattice (V/2) log 2π − ½ Σ_k log K(k), K(k) = m² + Σ_μ 4 sin²(k_μ/2);
* 0-D ⟨φ²⟩ = 1/3; lattice m = (1/V) Σ φ ~ N(0, σ²), σ² = 1/(V m²) = 1/8, so ⟨m²⟩ = 1/8,
  ⟨|m|⟩ = σ √(2/π), χ = V σ² (1 − 2/π), Binder 1 − ⟨m⁴⟩/(3⟨m²⟩²) = 0.

Tolerance: 4 delta-method standard errors (a false alarm with probability 6e-5 per number). The
lattice samples use ``logdet="exact"`` here: the continuous log-density is biased by its
O(Δt⁴) error (measured 4e-7 in log Z at 4 steps: 4.3σ to 6.8σ of these tiny errors over
5 seeds, against -1.1σ to 1.0σ with the exact log-density), which weights cannot
correct (documented in ``LatticeFlow.sample``).
"""

import jax
import numpy as np
import pytest
from helpers import ZOO

import pikflow as pf
import pikflow.lattice as pl
from pikflow.diagnostics import ess_fraction, imh_chain, reweight

SPACES = ["free-0d", "free-4x4"]


@pytest.fixture(scope="module")
def flows():
    cache = {}

    def get(name):
        if name not in cache:
            case = ZOO[name]
            cache[name] = (case, case.solve(case.build()))
        return cache[name]

    return get


def _draw(case, flow, n, seed):
    extra = {"logdet": "exact"} if case.lattice else {}
    return flow.sample(n, seed=seed, progress=False, **extra)


def _exact_log_z(case) -> float:
    if not case.lattice:
        return 0.5 * np.log(2 * np.pi / 3)
    K = 0.5 + pl.Lattice((4, 4)).khat2()
    return 0.5 * K.size * np.log(2 * np.pi) - 0.5 * np.sum(np.log(K))


def _within(est: pf.Estimate, exact: float, what: str):
    assert est.error > 0 and abs(est.value - exact) < 4 * est.error, (what, est, exact)


@pytest.mark.parametrize("name", SPACES)
def test_common_interface_gives_the_per_space_numbers_and_the_exact_ones(name, flows):
    case, flow = flows(name)
    s = _draw(case, flow, 4000, seed=1)
    assert isinstance(flow, pf.AbstractFlow) and isinstance(s, pf.AbstractSamples)
    # the per-space log-weights at t = 1 (non-finite samples weigh zero)
    lw = np.where(s.finite, s.log_w, -np.inf) if case.lattice else s.log_w[-1]
    assert s.n_samples == 4000 and s.n_nonfinite == 0
    assert s.ess == s.ess() == s.ess_at(1.0) == ess_fraction(lw)  # both spellings, every space
    assert s.imh_acceptance == float(imh_chain(jax.random.PRNGKey(1 + 7919), lw).acceptance)
    if case.lattice:  # the lattice IMH of flow_observables, with the same key, accepts the same moves
        _, acc = pl.flow_observables(s, 16, jax.random.PRNGKey(1 + 7919))
        assert acc == s.imh_acceptance
    _within(s.log_z(), _exact_log_z(case), "log Z")
    if case.lattice:
        m = lambda x: x.reshape(len(x), -1).mean(axis=1)  # noqa: E731
        est = s.observable(lambda x: m(x) ** 2)
        assert est == pf.Estimate(*map(float, reweight(lw, m(s.fields) ** 2)))
        _within(est, 1 / 8, "<m^2>")
        old = pl.reweighted_observables(s, 16)["abs_m"]  # the lattice code: another summation order (1 ulp)
        np.testing.assert_allclose(tuple(s.observable("abs_m")), tuple(old), rtol=1e-12)
        sigma2 = 1 / 8
        _within(s.observable("abs_m"), np.sqrt(2 * sigma2 / np.pi), "<|m|>")
        _within(s.observable("chi"), 16 * sigma2 * (1 - 2 / np.pi), "chi")
        _within(s.observable("binder"), 0.0, "binder")
        with pytest.raises(pf.SamplingError, match="only t = 1"):
            s.ess_at(0.5)
    else:
        est = s.observable("phi**2")
        assert est == s.observable(lambda x: x[:, 0] ** 2)
        assert est == pf.Estimate(*map(float, reweight(lw, s.final[:, 0] ** 2)))
        _within(est, 1 / 3, "<phi^2>")
    summary = s.summary()
    for key in ("n_samples", "n_nonfinite", "ess", "imh_acceptance", "log_z", "target_ess", "warnings"):
        assert key in summary, key
    assert summary["ess"] == s.ess and summary["warnings"] == s.warnings == []
    fs = flow.summary()
    assert fs["kind"] == type(flow).__name__ and fs["n_layers"] == len(flow.times) == 2 * flow.steps + 1
    assert fs["field_shape"] == list(flow.field_shape) and fs["max_residual"] < 1e-8  # free flows are exact


@pytest.mark.parametrize("name", SPACES)
def test_save_load_sample_identical_through_the_common_reader(name, flows, tmp_path):
    case, flow = flows(name)
    flow.save(tmp_path / "flow")
    loaded = pf.AbstractFlow.load(tmp_path / "flow")
    assert type(loaded) is type(flow) and type(pf.load(tmp_path / "flow")) is type(flow)
    a, b = flow.sample(300, seed=3, progress=False), loaded.sample(300, seed=3, progress=False)
    np.testing.assert_array_equal(a.log_w, b.log_w)
    np.testing.assert_array_equal(a.fields if case.lattice else a.phi, b.fields if case.lattice else b.phi)
    assert a.log_z() == b.log_z() and a.imh_acceptance == b.imh_acceptance
    other = pf.Flow if case.lattice else pl.LatticeFlow  # each class reads its own space, and says so
    with pytest.raises(pf.FlowFileError, match="pikflow.load"):
        other.load(tmp_path / "flow")


@pytest.mark.parametrize("name", SPACES)
def test_one_save_format_and_the_version_1_layouts_still_load(name, flows, tmp_path):
    """Both spaces write flow.json (format, version 2, space) + arrays.npz + manifest.json; version 1 still reads."""
    import json

    import equinox as eqx

    case, flow = flows(name)
    d = flow.save(tmp_path / "v2")
    assert {p.name for p in d.iterdir()} == {"flow.json", "arrays.npz", "manifest.json"}
    meta = json.loads((d / "flow.json").read_text())
    space = "lattice" if case.lattice else "zero-dim"
    assert (meta["format"], meta["version"], meta["space"]) == ("pikflow-flow", 2, space)
    # the version 1 layout of each space, as earlier pikflow versions wrote it (no manifest)
    old = tmp_path / "v1"
    old.mkdir()
    body = {k: v for k, v in meta.items() if k not in ("format", "version", "space")}
    if case.lattice:
        (old / "arrays.npz").write_bytes((d / "arrays.npz").read_bytes())
        body.update(format="pikflow-lattice-flow", version=1)
    else:
        eqx.tree_serialise_leaves(old / "kernels.eqx", flow.kernels)
        body.update(format=1)
    (old / "flow.json").write_text(json.dumps(body))
    a, b = pf.load(d).sample(200, seed=5, progress=False), pf.load(old).sample(200, seed=5, progress=False)
    np.testing.assert_array_equal(a.log_w, b.log_w)
    np.testing.assert_array_equal(flow.sample(200, seed=5, progress=False).log_w, a.log_w)


def test_lattice_samples_shared_keywords_and_streamed_names(flows):
    _, flow = flows("free-4x4")
    a, b = flow.sample(300, seed=4, batch=300), flow.sample(300, seed=4, batch_size=300)
    np.testing.assert_array_equal(a.log_w, b.log_w)
    streamed = flow.sample(300, seed=4, batch_size=300, keep_fields=False)
    for name in ("abs_m", "chi", "binder"):
        assert streamed.observable(name) == a.observable(name)
    with pytest.raises(pf.SamplingError, match="keep_fields=True"):
        streamed.observable(lambda x: x.sum(axis=(1, 2)))
    with pytest.raises(pf.SamplingError, match="abs_m"):
        a.observable("magnetisation")
    with pytest.raises(pf.SamplingError, match="not both"):
        flow.sample(10, batch=32, batch_size=64)


@pytest.fixture(scope="module")
def poor_flow():
    """A free 4x4 flow without the Fourier term: a quartic smoothed term cannot carry the quadratic kernel."""
    path = ZOO["free-4x4"].build()
    lat = path.lattice
    opts = dict(fourier=False, magnetisation=(), scales=(0.5,), powers=(4,), tame=5.0, local_range=None)
    poor = pl.lattice_basis(lat, **opts)
    return pl.solve_lattice(path, poor, steps=2, n_collocation=200, progress=False)


def test_refine_on_a_lattice_flow_runs_the_enrichment(poor_flow):
    flow = poor_flow
    assert flow.residuals().max() > 0.1
    opts = dict(tol=1e-8, n_collocation=200, select=500, seed=2)
    ladder = lambda: [pl.FourierTwoPoint(flow.path.lattice)]  # noqa: E731
    result = pf.refine(flow, enrichments=ladder(), **opts)
    direct, steps = pl.enrich_lattice(flow, enrichments=ladder(), **opts)
    assert isinstance(result, pl.Enrichment)
    np.testing.assert_array_equal(result.flow.coeffs, direct.coeffs)  # the same enrichment, bit for bit
    assert result.steps == steps and [s.kept for s in steps] == [True]
    assert result.converged and result.flow.residuals().max() < 1e-9  # the Fourier term makes it exact
    assert result.to_dict()["initial"] == flow.residuals().tolist()
    again, _ = result  # unpacks like enrich_lattice
    assert again is result.flow


def test_refine_refuses_what_the_space_does_not_take(poor_flow, flows):
    with pytest.raises(pf.PikflowError, match="LatticeFlow takes the keywords.*got centres"):
        pf.refine(poor_flow, centres=4)
    _, flow0 = flows("free-0d")
    with pytest.raises(pf.PikflowError, match="Flow takes the keywords.*got gain"):
        pf.refine(flow0, gain=0.1)
    with pytest.raises(pf.PikflowError, match="needs a solved flow"):
        pf.refine("flow.json")
