"""The lattice branch of ``pikflow run`` (issue #7 items 5-6) and saving/loading lattice flows."""

import json

import jax
import numpy as np
import pytest

import pikflow.lattice as pl
from pikflow._errors import ConfigError, FlowFileError, PikflowError
from pikflow.cli import main
from pikflow.cli._config import load_config
from pikflow.cli._lattice_config import build_lattice
from pikflow.diagnostics import gamma_method, khat_warning

DENSITY = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"

FREE = f"""
[action]
lattice = [4, 4]
density = "{DENSITY}"
[path]
m2 = [1.0, -1.0]
lam = [0.0, 1.0]
[lattice]
base = "free"
steps = 3
collocation = 200
polish = 3
[sampling]
n = 4000
seed = 1
"""

MATCHED = f"""
[action]
lattice = [4, 4]
density = "{DENSITY}"
[path]
m2 = -1.0
lam = 1.0
[lattice]
steps = 2
collocation = 200
hmc_samples = 400
scales = [0.1, 0.4]
[sampling]
n = 500
"""

REQUIRED = ("ess", "imh_acceptance", "n_nonfinite", "observables", "lattice", "couplings", "base", "hmc_seconds")


def _run(tmp_path, text, name):
    (tmp_path / f"{name}.toml").write_text(text)
    out = tmp_path / name
    assert main(["run", str(tmp_path / f"{name}.toml"), "--out", str(out), "--quiet"]) == 0
    return out, json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def free_run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("lattice"), FREE, "free")


def test_free_run_results(free_run):
    out, r = free_run
    for key in (*REQUIRED, "solve_seconds", "sample_seconds", "layer_residuals"):
        assert key in r, key
    assert r["lattice"] == [4, 4] and r["base"] == "free" and r["hmc_seconds"] is None
    # [lattice] polish = 3: pikflow.refine.polish's record; the flow sampled below is the one it returned
    p = r["polish"]
    assert p["iterations"] == 3 == len(p["history"]) and all(np.isfinite(h["loss"]) for h in p["history"])
    better = p["ess_after"] > p["ess_before"] or p["log_q_error_before"] >= 0.1
    assert p["kept"] == (p["log_q_error_after"] < 0.1 and better)
    assert r["couplings"] == {"m2": "1.0 - 2.0*t", "lam": "1.0*t"}
    assert len(r["layer_residuals"]) == 7 and all(np.isfinite(x["residual"]) for x in r["layer_residuals"])
    assert r["n_samples"] == 4000 and r["n_nonfinite"] == 0
    assert 0 < r["ess"] <= 1 and 0 < r["imh_acceptance"] <= 1
    assert khat_warning(r["pareto_khat"], r["n_samples"], r["largest_weight"]) == []  # no heavy tail of weights
    for name in ("abs_m", "chi", "binder"):
        est = r["observables"][name]
        assert set(est) == {"value", "error"} and np.isfinite(est["value"]) and est["error"] > 0
    for name in ("magnetisation.png", "residuals.png"):
        assert (out / name).stat().st_size > 1000
    assert pl.LatticeFlow.load(out / "flow").steps == 3


def test_summary_prints_the_estimate_with_the_smaller_error_first(tmp_path, capsys):
    """The printed summary leads with the controlled estimate where its error is smaller, else with IMH's."""
    from pikflow.cli._lattice_report import _summary

    r = {"n_samples": 10, "n_nonfinite": 0, "n_runaway": 0, "sample_seconds": 1.0, "ess": 0.5, "imh_acceptance": 0.5,
         "max_layer_residual": 0.1, "warnings": [], "plots": [],
         "observables": {"abs_m": {"value": 0.25, "error": 0.02}, "chi": {"value": 3.0, "error": 0.1},
                         "binder": {"value": 0.5, "error": 0.01}},
         "controlled_observables": {"abs_m": {"value": 0.26, "error": 0.005},
                                    "chi": {"value": 3.1, "error": 0.2}}}  # fmt: skip
    _summary(r, tmp_path)
    lines = {ln.split("=")[0].strip(): ln for ln in capsys.readouterr().out.splitlines() if " = " in ln}
    assert lines["abs_m"].startswith("  abs_m = 0.26000 +- 0.005  (reweighted")
    assert "after IMH 0.25000" in lines["abs_m"]
    assert lines["chi"].startswith("  chi = 3.00000 +- 0.1  (after IMH") and "variates 3.10000 +- 0.2" in lines["chi"]
    assert lines["binder"].endswith("(after IMH, Gamma-method error)")
    # a NaN error never leads; a zero IMH error (a chain that never moved) does not beat a measured one
    r["controlled_observables"] = {"abs_m": {"value": 0.26, "error": float("nan")},
                                   "binder": {"value": 0.4, "error": 0.1}}  # fmt: skip
    r["observables"]["binder"]["error"] = 0.0
    _summary(r, tmp_path)
    lines = {ln.split("=")[0].strip(): ln for ln in capsys.readouterr().out.splitlines() if " = " in ln}
    assert lines["abs_m"].startswith("  abs_m = 0.25000 +- 0.02  (after IMH")
    assert lines["binder"].startswith("  binder = 0.40000 +- 0.1  (reweighted")


def test_free_run_agrees_with_hmc(free_run):
    # Reference: HMC at the target (m2, lam) = (-1, 1) on 4x4, 8 chains x 1000 trajectories. Both errors are
    # Gamma-method estimates with autocorrelations (the flow's from its IMH chain, ~0.005; HMC's from the 8
    # replica, ~0.01), so the difference is ~N(0, sigma_f^2 + sigma_h^2) if both samplers are right: 4 combined
    # sigma fails by chance with probability 6e-5, while a flow sampling the wrong distribution (e.g. the
    # base, <|m|> ~ 0.2) misses by > 20 sigma.
    _, r = free_run
    action = pl.LatticeAction(DENSITY, [4, 4])
    fields, acc = pl.hmc(pl.LatticePath(action, {"m2": -1.0, "lam": 1.0}), jax.random.PRNGKey(7), 8000)
    assert 0.7 < acc < 0.95  # the default step is adapted towards an acceptance of 0.8
    m = np.abs(fields.reshape(*fields.shape[:2], -1).mean(axis=-1))  # (chains, trajectories per chain)
    g = gamma_method(m)
    ref, ref_err = g.mean, g.error
    est = r["observables"]["abs_m"]
    assert abs(est["value"] - ref) < 4 * np.hypot(est["error"], ref_err), (est, ref, ref_err)
    cv = r["controlled_observables"]["abs_m"]  # the same samples with the base's control variates
    assert 0 < cv["error"] and abs(cv["value"] - ref) < 4 * np.hypot(cv["error"], ref_err), (cv, ref, ref_err)


def test_matched_run_with_basis_overrides(tmp_path):
    out, r = _run(tmp_path, MATCHED, "matched")
    for key in REQUIRED:
        assert key in r, key
    assert r["base"] in ("gaussian", "mixture") and r["hmc_seconds"] > 0 and r["hmc_samples"] == 400
    assert 0 < r["target_ess"] <= 1 and len(r["candidates"]) >= 1 and isinstance(r["warnings"], list)
    g = r["two_point"]  # the connected two-point function G(r), r = 0..2 on 4x4, decaying, with errors
    assert g["r"] == [0, 1, 2] and g["value"][0] > g["value"][2] and all(e > 0 for e in g["error"])
    assert r["target"] == {"m2": -1.0, "lam": 1.0}
    # the override: Fourier (6 orbits on 4x4) + 2 scales x powers (4, 6), tamed
    assert r["n_basis"] == 6 + 2 * 2 + (r["base"] == "mixture")  # + log cosh(bM) for a mixture base
    flow = pl.LatticeFlow.load(out / "flow")
    assert flow.path.spectral_precision is not None and flow.info["base"] == r["base"]
    assert flow.base.m0 == r["base_m0"] and flow.path.zero_mode == flow.base.zero_mode_coupling
    assert np.all(np.isfinite([v["value"] for v in r["observables"].values()]))


CASES = [
    ("lattice = [4, 4, 4, 4, 4]", r"\[action\] lattice: the lattice shape must be a list of 1 to 4 integer sizes"),
    ("lattice = [8, 2]", r"\[action\] lattice: the lattice sizes must be at least 3 sites"),
    ("lattice = [8, 8.0]", r"\[action\] lattice: the lattice shape must be a list of 1 to 4 integer sizes"),
    ("lattice = 8", r"\[action\] lattice must be an array"),
]


@pytest.mark.parametrize("shape, message", CASES)
def test_bad_shapes(tmp_path, shape, message):
    text = f'[action]\n{shape}\ndensity = "{DENSITY}"\n[path]\nm2 = -1.0\nlam = 1.0\n'
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "c.toml")


@pytest.mark.parametrize(
    "edit, message",
    [
        (("density", '"phi**2 + "'), r"\[action\] density: cannot parse"),
        (("density", '"phi**2 + foo(phi)"'), r"\[action\] density: .*unknown function 'foo'"),
        (("couplings", "m2 = -1.0\n"), r"\[path\]: coupling\(s\) \['lam'\] have no value"),
        (("couplings", "m2 = -1.0\nlam = 1.0\nkappa = 2.0\n"), r"\[path\]: the density has no coupling 'kappa'"),
        (("extra", "[lattice]\nbase = 'exact'\n"), r"\[lattice\] base must be one of"),
        (("extra", "[lattice]\nbase = 'free'\n"), r"\[lattice\] base = 'free' needs a Gaussian start"),
        (("extra", "[lattice]\nsteps = 0\n"), r"\[lattice\] steps must be >= 1"),
        (("extra", "[lattice]\npolish = -1\n"), r"\[lattice\] polish must be >= 0"),
        (("extra", "[lattice]\nlocal_range = 4\n"), r"\[lattice\] local_range = 4 is too long"),
        (("extra", "[lattice]\nlocal_degree = 30\n"), r"\[lattice\] local_degree must be at most 12"),
        (("extra", "[lattice]\npowers = [4, 1]\n"), r"\[lattice\] powers must be a list of integers >= 2"),
        (("extra", "[lattice]\nfourier = false\nscales = []\n"), r"leave no basis terms"),
        (("extra", "[lattice]\nbasis = 'cheap'\n"), r"\[lattice\] basis must be one of \['two-point'"),
        (("extra", "[lattice]\nbasis = 'short'\npowers = [4]\n"), r"is a preset; it cannot be combined"),
        (("extra", "[lattice]\nstep = 3\n"), r"unknown key 'step' in \[lattice\] \(did you mean 'steps'"),
        (("extra", "[flow]\nsteps = 3\n"), r"\[flow\] steps is not used by lattice runs \(use \[lattice\] steps\)"),
        (("extra", "[refine]\ncentres = 4\n"), r"\[refine\] \['centres'\] not used by lattice runs"),
        (("extra", "[basis]\nkind = 'sine'\n"), r"\[basis\] is not used by lattice runs"),
        (("extra", "[sampling]\nmethod = 'table'\n"), r"\[sampling\] method of a lattice run is 'auto'"),
    ],
)
def test_config_errors(tmp_path, edit, message):
    where, value = edit
    density = value if where == "density" else f'"{DENSITY}"'
    couplings = value if where == "couplings" else "m2 = [1.0, -1.0]\nlam = [0.5, 1.0]\n"
    extra = value if where == "extra" else ""
    (tmp_path / "c.toml").write_text(f"[action]\nlattice = [4, 4]\ndensity = {density}\n[path]\n{couplings}{extra}")
    with pytest.raises(ConfigError, match=message):
        build_lattice(load_config(tmp_path / "c.toml"))


def test_lattice_section_in_zero_d_config(tmp_path, capsys):
    (tmp_path / "c.toml").write_text("[action]\ndensity='m2/2*phi**2'\n[path]\nm2=1.0\n[lattice]\nsteps=3\n")
    with pytest.raises(ConfigError, match=r"\[lattice\] is only for lattice runs"):
        load_config(tmp_path / "c.toml")
    assert main(["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "[lattice] is only for lattice runs" in capsys.readouterr().err


def test_example_is_valid():
    data = load_config(pl.__file__.replace("lattice/__init__.py", "cli/examples/phi4-lattice-8x8.toml"))
    path, settings = build_lattice(data)
    assert path.lattice.shape == (8, 8) and settings["base"] == "matched"
    assert pl.target_values(path) == {"m2": -1.0, "lam": 1.0}


def test_save_load_round_trip(tmp_path):
    action = pl.LatticeAction(DENSITY + " + 0.1*c*phi**6", [4, 4])
    path = pl.LatticePath(action, {"m2": (1.0, -1.1), "lam": "0.3*t + t**2/3", "c": "0.7*t"})
    K = pl.GaussianLatticeBase.from_path(path).precision
    basis = pl.lattice_basis(
        action.lattice, magnetisation=(4,), scales=(0.5,), tame=5.0, precision=K, local_range=1, local_degree=4
    )
    flow = pl.solve_lattice(path, basis, steps=3, n_collocation=200, progress=False)
    flow.info = {"base": "free", "solve_seconds": np.float64(1.5)}
    flow.save(tmp_path / "f")
    back = pl.LatticeFlow.load(tmp_path / "f")
    assert back.path.density == path.density
    assert {str(k): v for k, v in back.path.coupling_exprs.items()} == {
        str(k): v for k, v in path.coupling_exprs.items()
    }
    assert back.info == {"base": "free", "solve_seconds": 1.5} and back.reports == flow.reports
    assert repr(back.basis) == repr(flow.basis) and np.array_equal(back.coeffs, flow.coeffs)
    key = jax.random.PRNGKey(3)
    a, b = flow.sample(key, 64), back.sample(key, 64)
    assert np.array_equal(a.fields, b.fields) and np.array_equal(a.log_w, b.log_w)  # bitwise
    # damaged files: FlowFileError saying what to do (the checksums first; then, without them, the parser)
    meta = json.loads((tmp_path / "f" / "flow.json").read_text())
    (tmp_path / "f" / "flow.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(FlowFileError, match="flow.json does not match its checksum"):
        pl.LatticeFlow.load(tmp_path / "f")
    (tmp_path / "f" / "manifest.json").unlink()
    with pytest.raises(FlowFileError, match="version 99 .*reads version 2 and the older layouts.*solve the flow again"):
        pl.LatticeFlow.load(tmp_path / "f")
    (tmp_path / "f" / "flow.json").write_text(json.dumps(meta))
    (tmp_path / "f" / "arrays.npz").write_bytes(b"not a zip file")
    with pytest.raises(FlowFileError, match="damaged or incomplete"):
        pl.LatticeFlow.load(tmp_path / "f")
    with pytest.raises(FlowFileError, match="flow.json is missing"):
        pl.LatticeFlow.load(tmp_path / "nothing")


def test_save_load_mixture_flow(tmp_path):
    """A matched path with the zero-mode mixture base (m0, b, the log cosh family) comes back bitwise."""
    action = pl.LatticeAction(DENSITY, [4, 4])
    lat = action.lattice
    base = pl.GaussianLatticeBase(0.8 + lat.khat2(), m0=0.5)
    path = pl.LatticePath.matched(action, {"m2": -1.0, "lam": 1.0}, base.precision, base.zero_mode_coupling)
    flow = pl.solve_lattice(path, pl.default_basis(path, base), base=base, steps=2, n_collocation=200, progress=False)
    assert isinstance(flow.basis.families[-1], pl.Magnetisation) and flow.basis.families[-1].log_cosh > 0
    flow.save(tmp_path / "m")
    back = pl.LatticeFlow.load(tmp_path / "m")
    assert back.base.m0 == 0.5 and back.path.zero_mode == path.zero_mode
    key = jax.random.PRNGKey(4)
    a, b = flow.sample(key, 64), back.sample(key, 64)
    assert np.array_equal(a.fields, b.fields) and np.array_equal(a.log_w, b.log_w)  # bitwise


def test_bench_lattice_json(tmp_path, monkeypatch):
    """`pikflow bench lattice` end to end on 4x4: PIK after IMH against its own HMC reference (pulls within 4 sigma)."""
    import pikflow.lattice as pl

    out = tmp_path / "lat.json"
    args = ["--L", "4", "--n", "2000", "--steps", "4", "--collocation", "300", "--hmc-samples", "800"]
    args += ["--reference", "4000", "--select", "500", "--base", "gaussian", "--hmc-step", "auto"]
    args += ["--cost-repeats", "1", "--float32"]
    lengths, hmc = [], pl.hmc

    def spy(*a, n_leapfrog=10, **kw):  # the trajectory length of every HMC run of the bench
        lengths.append(n_leapfrog)
        return hmc(*a, n_leapfrog=n_leapfrog, **kw)

    monkeypatch.setattr(pl, "hmc", spy)
    assert main(["bench", "lattice", *args, "--quiet", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    # --leapfrog auto (the default): a pilot at 10, 20, 30, 40 steps (a compiling and a timed call each; 60, 90, ...
    # too while the longest is the fastest), then the best length for the reference (its compiling and its timed
    # call) and the cost table's HMC; the fit's own HMC is not pl.hmc's public entry. The pilot's time counts in
    # HMC's first call.
    h = r["hmc"]
    tried = [row["leapfrog"] for row in h["leapfrog_pilot"]]
    assert tried[:4] == [10, 20, 30, 40] and lengths[: 2 * len(tried)] == [x for x in tried for _ in (0, 1)]
    assert len(lengths) == 2 * len(tried) + 4  # the reference's two calls, the cost table's two
    assert h["leapfrog_setting"] == "auto" and lengths[2 * len(tried) :] == [h["leapfrog"]] * 4
    best = max(h["leapfrog_pilot"], key=lambda row: row["independent_per_second"])["leapfrog"]
    assert h["leapfrog"] == best and r["cost"]["hmc_leapfrog"] == best
    assert 0 < h["leapfrog_pilot_seconds"] < h["first_call_seconds"]
    assert r["lattice"] == [4, 4] and r["pik"]["base"] == "gaussian" and 0.6 < r["hmc"]["acceptance"] < 0.95
    # --chains auto (the default): HMC's cheapest batch at 16 sites, 256 chains of >= 600 trajectories
    assert r["hmc"]["chains_setting"] == "auto" and r["hmc"]["chains"] == 256 and r["hmc"]["n"] == 256 * 600
    assert 0.5 < r["pik"]["ess"] <= 1 and 0 < r["pik"]["target_ess"] <= 1 and r["ratio"] > 0
    assert khat_warning(r["pik"]["pareto_khat"], r["pik"]["n"], r["pik"]["largest_weight"]) == []
    # the set-up's tracing and compiling (jax.monitoring) is a part of it
    assert 0 < r["pik"]["setup_compile_seconds"] < r["pik"]["setup_seconds"]
    # PIK's sampling seconds: the draw plus the IMH chain's estimates (both compiled before, as HMC's run)
    assert 0 < r["pik"]["draw_seconds"] <= r["pik"]["sample_seconds"]
    # both errors are Gamma-method errors; 4 combined sigma fails by chance ~1e-4 per observable
    assert all(abs(p) < 4 for p in r["pulls"].values()), r["pulls"]
    # the cost section: evaluations per sample = 4 RK4 stages per step less the zero layer 0 of the clock t**2,
    # ratio = sample / trajectory
    c = r["cost"]
    assert c["evaluations_per_sample"] == 15 and c["ms_per_sample"]["median"] > 0
    ratio = c["ms_per_sample"]["values"][0] / c["ms_per_hmc_trajectory"]["values"][0]
    assert abs(c["sample_over_trajectory"]["values"][0] / ratio - 1) < 1e-12
    assert r["evaluation_profile"]["us_per_configuration"]["whole evaluation"] > 0
    # float32 sampling: the float64 ratio times the flow's timed speed-up; the default clock tau = t**2 reported
    up = c["float32"]["speedup"]["median"]
    assert up > 0 and abs(r["ratio_float32"] / (r["ratio"] * up) - 1) < 1e-12
    assert r["ratio_float32_with_setup"] > 0 and r["pik"]["time_power"] == 2.0
    # from a cold start on both sides: HMC's compiling call is longer than its timed one, so the ratio rises
    assert r["hmc"]["first_call_seconds"] > r["hmc"]["sample_seconds"]
    assert r["ratio_with_both_setups"] > r["ratio_with_setup"] and r["ratio_float32_with_both_setups"] > 0
    # a cold start also pays the compiling first calls of the draw and the estimates, in both set-up ratios
    p, cold = r["pik"], r["pik"]["first_call_extra_seconds"]
    assert cold > 0
    ind = p["n"] / (2 * p["tau_int_abs_m"])
    want = ind / (p["sample_seconds"] + p["setup_seconds"] + cold) / r["hmc"]["independent_per_second"]
    assert abs(r["ratio_with_setup"] / want - 1) < 1e-12
    hmc_cold = r["hmc"]["n"] / (2 * r["hmc"]["tau_int_abs_m"]) / r["hmc"]["first_call_seconds"]
    want32 = ind / (p["sample_seconds"] / up + p["setup_seconds"] + cold) / hmc_cold
    assert abs(r["ratio_float32_with_both_setups"] / want32 - 1) < 1e-12
    # the ratio from the alternated costs: HMC's tau and trajectory (its 200 thermalisation trajectories per
    # chain charged to the 600 kept) over the IMH chain's tau and the flow sample
    tau_h, tau_p = r["hmc"]["tau_int_abs_m"], r["pik"]["tau_int_abs_m"]
    want = tau_h * (600 + 200) / 600 / (tau_p * c["sample_over_trajectory"]["median"])
    assert abs(r["ratio_alternated"] / want - 1) < 1e-12
    assert abs(r["ratio_float32_alternated"] / (want * up) - 1) < 1e-12
    # equal-error cost ratios, HMC over PIK: (err^2 s)_HMC / (err^2 s)_PIK, from the numbers of the same run
    h, rw = r["hmc"], r["reweighted"]["observables"]
    for k in ("abs_m", "chi"):
        want = h["observables"][k]["error"] ** 2 * h["sample_seconds"]
        imh = r["pik"]["observables"][k]["error"] ** 2 * r["pik"]["sample_seconds"]
        assert abs(r["equal_errors"]["imh"][k] / (want / imh) - 1) < 1e-12
        assert 0 < rw[k]["error"] and r["equal_errors"]["reweighted"][k] > 0
        # the reweighted estimate of the same samples agrees with HMC (4 combined sigma, as above)
        assert abs(r["reweighted"]["pulls"][k]) < 4, r["reweighted"]
        # so does the one with the base's control variates, whose seconds include the regression
        cv = r["controlled"]["observables"][k]
        assert 0 < cv["error"] and abs(r["controlled"]["pulls"][k]) < 4, r["controlled"]
        spent = want / (r["equal_errors"]["controlled"][k] * cv["error"] ** 2)
        assert spent > r["pik"]["draw_seconds"]


def test_bench_leapfrog_pilot_picks_the_fastest_length(capsys):
    """``--leapfrog auto``: the pilot's length is the one with the most independent samples of |m| per second."""
    import pikflow.lattice as pl
    from pikflow.bench._hmc_length import best_leapfrog, tuned_leapfrog

    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [4, 4]), {"m2": -1.0, "lam": 1.0})
    assert tuned_leapfrog(30, target, 32) == (30, None, 0.0)  # a number as given: no pilot
    best, rows, seconds = best_leapfrog(target, 32, lengths=(5, 10, 20), gradients=1000, seed=3, longest=50)
    lengths = [r["leapfrog"] for r in rows]
    assert lengths[:3] == [5, 10, 20] and set(lengths[3:]) <= {30, 50}
    rates = [r["independent_per_second"] for r in rows]
    assert all(r > 0 for r in rates) and best == rows[int(np.argmax(rates))]["leapfrog"]
    # a longer length is tried exactly while the longest so far was the best, up to ``longest``
    for k in range(3, len(rows) + 1):
        grew = k < len(rows)
        assert grew == (rates[k - 1] > max(rates[: k - 1]) and lengths[k - 1] < 50), (lengths, rates)
    assert seconds > sum(r["seconds"] for r in rows)  # the compiling calls are part of the pilot's time
    assert all(0.5 < r["acceptance"] < 1 for r in rows)
    with pytest.raises(SystemExit):
        main(["bench", "lattice", "--leapfrog", "0"])
    assert "--leapfrog: must be a positive integer or 'auto', got '0'" in capsys.readouterr().err


def test_reliability_warnings():
    """A flow with ESS/N below 1% (or < 100 effective samples) or a hole gets a warning; a good one none."""
    from pikflow.cli._lattice import reliability_warnings

    assert reliability_warnings(0.9, 0.9, 10_000) == []
    assert len(reliability_warnings(0.005, 0.9, 10_000)) == 1  # 50 effective samples
    assert "hole" in reliability_warnings(0.9, 1e-5, 10_000)[0]
    assert len(reliability_warnings(0.5, None, 100)) == 1  # 50 effective samples, no reference
    # a continuous log-density too far from the applied map's (5 uniform RK4 steps at 16x16 (-2, 2): 0.31)
    assert "more [lattice] steps" in reliability_warnings(0.9, 0.9, 10_000, 0.31)[0]
    assert reliability_warnings(0.9, 0.9, 10_000, 0.05) == reliability_warnings(0.9, 0.9, 10_000, None) == []


@pytest.mark.parametrize("preset", ["two-point", "lean+ridges"])
def test_basis_preset_reaches_the_fit(tmp_path, monkeypatch, preset):
    lattice = f'[lattice]\nbasis = "{preset}"\n'
    text = f'[action]\nlattice = [4, 4]\ndensity = "{DENSITY}"\n[path]\nm2 = -1.0\nlam = 1.0\n{lattice}'
    (tmp_path / "c.toml").write_text(text)
    path, settings = build_lattice(load_config(tmp_path / "c.toml"))
    seen = {}
    monkeypatch.setattr(pl, "fit_lattice", lambda path, **kw: seen.update(kw))
    from pikflow.cli._lattice import fit_from_settings

    fit_from_settings(path, settings, progress=False)
    assert seen["basis"] == preset and seen["steps"] == 10


def test_fast_setup_keys_reach_fit_lattice(tmp_path):
    """``[lattice] select`` and ``tames``: one taming width per base kind, scored on ``select`` samples."""
    text = MATCHED.replace("scales = [0.1, 0.4]\n", 'select = 100\ntames = [5.0]\nbase = "gaussian"\n')
    out, r = _run(tmp_path, text, "fast")
    assert r["candidates"] and {c["tame"] for c in r["candidates"]} == {5.0}
    assert len(r["candidates"]) == len({c["base"] for c in r["candidates"]})
    assert all(c["runaway"] <= 100 for c in r["candidates"] if c.get("ok"))
    for bad, match in (("tames = []", "tames must be a list"), ("tames = [5.0]\npowers = [4]", "drop the basis")):
        (tmp_path / "bad.toml").write_text(MATCHED.replace("scales = [0.1, 0.4]", bad))
        with pytest.raises(ConfigError, match=match):
            load_config(tmp_path / "bad.toml")
    path = pl.LatticePath(pl.LatticeAction(DENSITY, [4, 4]), {"m2": -1.0, "lam": 1.0})
    with pytest.raises(PikflowError, match="positive taming widths"):
        pl.fit_lattice(path, tames=[-1.0], progress=False)
    with pytest.raises(PikflowError, match="leave basis= unset"):
        pl.fit_lattice(path, tames=[5.0], basis="short", progress=False)


def test_default_setup_is_the_fast_one(tmp_path):
    """fit_lattice's defaults: width 5 alone, 500 selection samples, 7 collocation configurations per basis
    function (500 to 1000); a run without ``[lattice] collocation`` records the number it used."""
    assert pl.TAME_LADDER == (5.0,) and pl.DEFAULT_SELECT == 500
    assert [pl.auto_collocation(n) for n in (1, 69, 72, 100, 143, 177, 585)] == [500, 500, 504, 700, 1000, 1000, 1000]
    text = MATCHED.replace("collocation = 200\n", "").replace("scales = [0.1, 0.4]\n", "")
    out, r = _run(tmp_path, text, "auto")
    assert r["n_collocation"] == pl.auto_collocation(r["n_basis"]) == 500
    assert {c["tame"] for c in r["candidates"]} == {5.0} and len(r["candidates"]) <= 2
