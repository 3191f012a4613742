"""Lattice parameter scans ([scan], pikflow.lattice.scan_lattice) against exact free-field answers.

A free field K_t(k) = m2(t) + khat^2 has log Z(t) = (V/2) log 2pi - (1/2) sum_k log K_t(k) exactly, and
its magnetisation m is Gaussian with variance 1/(V m2), so chi = V(<m^2> - <|m|>^2) = (1 - 2/pi)/m2.
Errors are the spread of 8 independent replicas; |deviation| < 4 sigma (a t-distribution with 7
degrees of freedom exceeds 4 with probability 0.5% per number; the seed is fixed, so the test is
deterministic).
"""

import json

import numpy as np
import pytest

import pikflow as pf
import pikflow.lattice as pl
from pikflow import ConfigError
from pikflow.cli import main
from pikflow.cli._config import load_config
from pikflow.lattice._scan import LatticeScan, binder_crossings, scan_times, uniform_scan_times

FREE_SCAN = """
[action]
density = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))"
lattice = [4, 4]
[path]
m2 = [[0, 1.0], [0.5, 0.7], [1, 0.4]]
[scan]
points = 5
particles = 2000
replicas = 8
estimate = "moves"
"""


def _khat2(L):
    k = 2 * np.pi * np.fft.fftfreq(L)
    return (4 * np.sin(k / 2) ** 2)[:, None] + (4 * np.sin(k / 2) ** 2)[None, :]


def _exact_log_z(L, m2):
    return 0.5 * L * L * np.log(2 * np.pi) - 0.5 * np.sum(np.log(m2 + _khat2(L)))


def _exact_dlogz_dt(L, m2, dm2_dt):
    """d log Z/dt = -<dS/dt> = -(dm2/dt)/2 sum_k 1/(m2 + khat^2)."""
    return -0.5 * dm2_dt * np.sum(1.0 / (m2 + _khat2(L)))


#: User observables of the free scan: G(0) and G(1) along axis 0 as site densities.
FREE_OBSERVABLES = """
[observables]
phi2 = "phi**2"
link = "phi*shift(phi, 0)"
"""


@pytest.mark.parametrize("pool", [False, True])
def test_free_field_scan_from_toml(tmp_path, pool):
    """The whole [scan] run against the exact free field, its means averaged over each step's moves and pooled
    from the steps around each point (the default), and without pooling (``pool = false``)."""
    cfg = tmp_path / "scan.toml"
    cfg.write_text(FREE_SCAN + ("" if pool else "pool = false\n") + FREE_OBSERVABLES)  # pooled by default
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    r = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = r["scan"]["4x4"]
    assert [round(row["t"], 12) for row in rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
    m2s = [row["couplings"]["m2"] for row in rows]
    np.testing.assert_allclose(m2s, [1.0, 0.85, 0.7, 0.55, 0.4])  # the knots, piecewise linear
    assert rows[0]["log_z"]["error"] == 0.0 and rows[0]["log_z"]["value"] == pytest.approx(_exact_log_z(4, 1.0))
    for row, m2 in zip(rows[1:], m2s[1:], strict=True):
        lz, chi = row["log_z"], row["chi"]
        assert abs(lz["value"] - _exact_log_z(4, m2)) < 4 * lz["error"], (m2, lz)
        assert abs(chi["value"] - (1 - 2 / np.pi) / m2) < 4 * chi["error"], (m2, chi)
    for row, m2 in zip(rows, m2s, strict=True):  # the derivative, -<dS/dt>, at every point
        d = row["dlogz_dt"]
        assert d["error"] > 0 and abs(d["value"] - _exact_dlogz_dt(4, m2, -0.6)) < 4 * d["error"], (m2, d)
    for row, m2 in zip(rows, m2s, strict=True):  # G(r) = (1/V) sum_k cos(k r)/(m2 + khat^2), r = 0, 1, 2
        k = 2 * np.pi * np.fft.fftfreq(4)
        exact = [np.sum(np.cos(k * r)[:, None] / (m2 + _khat2(4))) / 16 for r in range(3)]
        for g, e in zip(row["two_point"], exact, strict=True):
            assert g["error"] > 0 and abs(g["value"] - e) < 4 * g["error"], (m2, g, e)
    for row, m2 in zip(rows, m2s, strict=True):  # the user observables: <phi^2> = G(0), <phi_x phi_x+e0> = G(e0)
        k = 2 * np.pi * np.fft.fftfreq(4)
        exact = {"phi2": np.sum(1 / (m2 + _khat2(4))) / 16, "link": np.sum(np.cos(k)[:, None] / (m2 + _khat2(4))) / 16}
        for name, e in exact.items():
            o = row["observables"][name]
            assert o["error"] > 0 and abs(o["value"] - e) < 4 * o["error"], (m2, name, o, e)
    check = r["free_energy_check"]["4x4"]  # log Z gained over the scan = -integral of <dS/dt>
    assert (
        abs(check["log_z_gain"]["value"] - (_exact_log_z(4, 0.4) - _exact_log_z(4, 1.0)))
        < 4 * (check["log_z_gain"]["error"])
    )
    assert abs(check["pull"]) < 4, check
    assert r["crossings"] == [] and r["warnings"] == [] and r["scan_settings"]["estimate"] == "moves"
    assert r["scan_settings"]["pool"] is pool
    for name in r["plots"]:
        assert (tmp_path / "out" / name).stat().st_size > 1000


def _fake_scan(ts, curves, error=0.005):
    """A LatticeScan whose Binder cumulants are the given curves (errors ``error``) on a path m2 = -t."""
    pts = {
        size: [
            {"t": t, "couplings": {"m2": -t}, "binder": pf.Estimate(u, error), "chi": pf.Estimate(1, 0)}
            for t, u in zip(ts, us, strict=True)
        ]
        for size, us in curves.items()
    }
    return LatticeScan(pts, [], {}, {}, {})


def test_binder_crossing_interpolates_with_propagated_error():
    ts = np.linspace(0, 1, 11)
    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (4, 4)), {"m2": "-t", "lam": 1.0})
    # U_8 = 0.6 t, U_16 = 1.2 t - 0.318: D = 0.6 t - 0.318 crosses 0 at t = 0.53, 30% of the way from 0.5 to 0.6
    scan = _fake_scan(ts, {"8x8": 0.6 * ts, "16x16": 1.2 * ts - 0.318})
    (c,) = binder_crossings(scan, path)
    assert c["sizes"] == ["8x8", "16x16"]
    assert c["t"]["value"] == pytest.approx(0.53)
    # delta t_c = hypot((1 - f) dD_5, f dD_6) / |D'|, dD = hypot(0.005, 0.005), f = 0.3, D' = 0.6
    assert c["t"]["error"] == pytest.approx(np.hypot(0.7, 0.3) * np.hypot(0.005, 0.005) / 0.6, rel=1e-9)
    # the change of D across the interval, 0.06, in its error hypot(dD_5, dD_6) = 0.01: 6 sigma
    assert c["significance"] == pytest.approx(6.0)
    assert c["couplings"]["m2"]["value"] == pytest.approx(-0.53)
    assert c["couplings"]["lam"] == {"value": 1.0, "error": 0.0}
    assert binder_crossings(_fake_scan(ts, {"8x8": ts, "16x16": ts + 0.1}), path) == []
    # with errors 0.02 the same curves change sign by 1.5 combined sigma only: noise, not a crossing
    assert binder_crossings(_fake_scan(ts, {"8x8": 0.6 * ts, "16x16": 1.2 * ts - 0.318}, error=0.02), path) == []
    (c,) = binder_crossings(_fake_scan(ts, {"8x8": 0.6 * ts, "16x16": 1.2 * ts - 0.318}, error=0.02), path,
                            min_significance=1.0)  # fmt: skip
    assert c["significance"] == pytest.approx(1.5)


def test_scan_times_contain_the_points():
    times, idx = scan_times(5, (0.25, 0.75), 8, 3)
    np.testing.assert_allclose(times[idx], np.linspace(0.25, 0.75, 5))
    assert times[0] == 0 and times[-1] == 1 and np.all(np.diff(times) > 0)
    # one step count per gap: 1, 4, 4, 1 steps between the 5 points, the tail [0.75, 1] at the finest step
    times, idx = scan_times(5, (0.25, 0.75), [1, 4, 4, 1], 3)
    np.testing.assert_allclose(times[idx], np.linspace(0.25, 0.75, 5))
    assert list(np.diff(idx)) == [1, 4, 4, 1] and np.all(np.diff(times) > 0)
    np.testing.assert_allclose(np.diff(times[idx[-1] :]), 0.125 / 4)
    for bad in ([1, 2, 3], [1, 0, 1, 1]):
        with pytest.raises(pf.SamplingError, match="4 positive step counts"):
            scan_times(5, (0.25, 0.75), bad, 3)
    action = pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", (4, 4))
    path = pl.LatticePath(action, {"m2": (1.0, 0.5)})
    with pytest.raises(pf.SamplingError, match="steps are uniform"):
        pl.scan_lattice(path, points=3, steps=[1, 2], transport="pik", progress=False)
    # a free-field scan on such a grid: every point's log Z (exact from the determinant) within 4 replica errors
    scan = pl.scan_lattice(path, points=3, steps=[1, 3], particles=500, replicas=8, mcmc_steps=1, progress=False)
    assert scan.settings["n_steps"] == 4  # 1 + 3 steps over the default t_range (0, 1)
    for row in scan.points["4x4"]:
        m2 = row["couplings"]["m2"]
        assert abs(row["log_z"].value - _exact_log_z(4, m2)) < 4 * row["log_z"].error + 1e-9, (m2, row["log_z"])


def test_unbounded_paths_are_refused_by_the_samplers_themselves():
    """A scan or a multilevel run of an action unbounded below (lam < 0) fails before any sampling, from Python
    as from the CLI."""
    phi4 = lambda L, lam: pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": -1.0, "lam": lam})  # noqa: E731
    knots = pl.LatticePath(
        pl.LatticeAction(pl.PHI4_DENSITY, [4, 4]), {"m2": [[0, 1.0], [1, -1.0]], "lam": [[0, 0.0], [1, -1.0]]}
    )
    with pytest.raises(pf.ActionError, match="not bounded below"):
        pl.scan_lattice(knots, points=3, particles=10, progress=False)
    with pytest.raises(pf.ActionError, match="not bounded below"):
        pl.multilevel(lambda L: phi4(L, -1.0), [4, 8], particles=10, progress=False)


@pytest.mark.parametrize(
    "knots,match",
    [([[0, 1.0], [0.5, 2.0]], "from 0 to 1"), ([[0, 1.0], [0.6, 2.0], [0.4, 1], [1, 0]], "increasing"),
     ([[0, 1.0], [1, "x"]], "pairs")],
)  # fmt: skip
def test_bad_knots_are_refused(knots, match):
    action = pf.Action("m2/2*phi**2", fields=["phi"])
    with pytest.raises(pf.ActionError, match=match):
        pf.Path(action, {"m2": knots})


@pytest.mark.parametrize(
    "extra,match",
    [("[lattice]\nsteps = 3\n", r"\[lattice\] is not used by a \[scan\] run"),
     ("[smc]\nparticles = 10\n", r"\[smc\] is not used by a \[scan\] run"),
     ("[multilevel]\ncoarsest = 4\n", "not both"),
     ("[sampling]\nn = 100\n", r"\[sampling\] n is not used by a \[scan\] run"),
     ("flow_collocation = 300\n", r"flow_collocation set the flow of transport = 'pik'"),
     ("fourier_mass = 2.0\n", r"fourier_mass is the mass of mcmc = 'fhmc' moves")],
)  # fmt: skip
def test_sections_a_scan_does_not_read_are_refused(extra, match, tmp_path):
    (tmp_path / "c.toml").write_text(FREE_SCAN + extra)
    with pytest.raises(ConfigError, match=match):
        load_config(tmp_path / "c.toml")
    if "[sampling]" in extra:  # --n likewise
        (tmp_path / "ok.toml").write_text(FREE_SCAN)
        assert main(["run", str(tmp_path / "ok.toml"), "--out", str(tmp_path / "o"), "--n", "10", "--quiet"]) == 2


@pytest.mark.parametrize(
    "section,match",
    [({"sizes": [8, 4]}, "increase"), ({"t_range": [0.5, 0.2]}, "t_range"), ({"points": 1}, "points"),
     ({"mcmc": "gibbs"}, "mcmc"), ({"sizes": [2]}, "sizes"), ({"mcmc_every": 0}, "mcmc_every"),
     ({"leapfrog_steps": 0}, "leapfrog_steps"), ({"points": 4, "steps": [1, 2]}, "3 step counts"),
     ({"points": 3, "steps": [1, 0]}, "2 step counts"), ({"seed": 2**40}, "seed must be an integer in"),
     ({"estimate": "during"}, r"estimate must be one of \['after', 'before', 'moves'\]"),
     ({"pool": True, "estimate": "before"}, "pool combines the configurations after the moves"),
     ({"pool": 1}, "pool must be"),
     ({"points": 10000, "steps": 1000000, "particles": 1000, "replicas": 100, "mcmc_steps": 1000}, "would not end")],
)  # fmt: skip
def test_bad_scan_sections_are_refused(section, match, tmp_path):
    body = FREE_SCAN.split("[scan]")[0] + "[scan]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in section.items())
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body)
    with pytest.raises(ConfigError, match=match):
        load_config(cfg)


def test_scan_steps_per_gap_from_toml(tmp_path):
    from pikflow.cli._scan import scan_settings

    cfg = tmp_path / "gaps.toml"
    cfg.write_text(FREE_SCAN + "steps = [2, 1, 1, 3]\n")
    assert scan_settings(load_config(cfg))["steps"] == [2, 1, 1, 3]


def test_scan_transport_settings(tmp_path):
    from pikflow.cli._scan import scan_settings

    cfg = tmp_path / "pik.toml"
    cfg.write_text(FREE_SCAN + 'transport = "pik"\nflow_basis = {scales = [], local_range = false}\n')
    s = scan_settings(load_config(cfg))
    assert s["transport"] == "pik" and s["flow_basis"] == {"scales": [], "local_range": None}
    assert s["mcmc_every"] == 1 and s["leapfrog_steps"] == 10
    cfg.write_text(FREE_SCAN + "mcmc_every = 3\nleapfrog_steps = 5\n")
    s = scan_settings(load_config(cfg))
    assert s["mcmc_every"] == 3 and s["leapfrog_steps"] == 5
    cfg.write_text(FREE_SCAN + 'mcmc = "fhmc"\nfourier_mass = "adaptive"\n')
    assert scan_settings(load_config(cfg))["fourier_mass"] == "adaptive"
    bad = (
        ('transport = "langevin"', "transport must be"),
        ('transport = "pik"\nflow_basis = {bogus = 1}', "unknown keys"),
        ('transport = "pik"\nflow_basis = {scales = "x"}', "does not make a basis"),
        ("flow_basis = {scales = [0.5]}", "set the flow of transport = 'pik'"),
    )
    for line, match in bad:
        cfg.write_text(FREE_SCAN + line + "\n")
        with pytest.raises(ConfigError, match=match):
            load_config(cfg)
    # from Python: the same bad value is a BasisError (a PikflowError) raised before anything is solved
    action = pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", (4, 4))
    path = pl.LatticePath(action, {"m2": (1.0, 0.5)})
    for options, match in (({"scales": "x"}, "scales must be a list of numbers"), ({"tame": -1}, "tame must be")):
        with pytest.raises(pf.BasisError, match=match):
            pl.scan_lattice(path, points=2, transport="pik", flow_basis=options, progress=False)


def test_scan_needs_a_lattice(tmp_path):
    cfg = tmp_path / "zero_d.toml"
    cfg.write_text("[action]\ndensity = 'm2/2*phi**2'\n[path]\nm2 = [1.0, 2.0]\n[scan]\npoints = 3\n")
    with pytest.raises(ConfigError, match="lattice runs"):
        load_config(cfg)


def test_bench_hmc_starts_ordered_at_the_classical_minimum():
    """``bench scan-lattice --hmc-start ordered``: chains start at +-sqrt(-m2/lam) of the path at t (0.1 if m2 >= 0)."""
    import argparse

    from pikflow.bench._scan_lattice import ordered_start, scan_path

    args = argparse.Namespace(m2=[-0.5, -2.0], m2_gauss=0.5, prep=0.25, lam=1.0)
    path = scan_path(4, args)
    for t, v in ((0.1, 0.1), (0.25, np.sqrt(0.5)), (0.625, np.sqrt(1.25)), (1.0, np.sqrt(2.0))):
        x = ordered_start(path, t, 4)
        assert x.shape == (4, 4, 4)
        np.testing.assert_allclose(x[:, 1, 2], [v, -v, v, -v], rtol=1e-12)


def test_uniform_scan_times_hold_the_points_or_say_what_to_change():
    times, index = uniform_scan_times(4, (0.25, 1.0), 6)  # 2 steps per point gap: dt = 0.75 / 6 = 1/8
    np.testing.assert_allclose(times, np.arange(9) / 8)
    np.testing.assert_allclose(times[index], [0.25, 0.5, 0.75, 1.0])
    with pytest.raises(pf.SamplingError, match="uniform grid of step times"):
        uniform_scan_times(2, (0.123, 1.0), 1)


def test_pik_transport_scan_is_exact_on_a_free_field():
    """PIK transport along a free path: the flow is exact, so every incremental weight is a constant.

    log Z(t) then carries only the O(dt^4) error of the continuous log-density (below 1e-6 here),
    the ESS/N stays 1 to float rounding at every step, and the observables still scatter with
    the particles (checked at 4 sigma of the 4-replica spread, as in the TOML scan above).
    """
    path = pl.LatticePath(
        pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", (4, 4)),
        {"m2": [[0, 1.0], [0.5, 0.7], [1, 0.4]]},
    )
    scan = pl.scan_lattice(
        path, points=3, t_range=(0.5, 1.0), steps=4, particles=400, replicas=4, mcmc_steps=1, transport="pik",
        flow_basis={"scales": [], "magnetisation": [], "local_range": None}, flow_collocation=200, progress=False,
    )  # fmt: skip
    run = scan.runs["4x4"]
    assert scan.settings["transport"] == "pik" and scan.settings["n_steps"] == 8
    assert np.min(run.ess) > 1 - 1e-9 and run.n_resampled == 0
    for row in scan.points["4x4"]:
        m2 = row["couplings"]["m2"]
        assert abs(row["log_z"].value - _exact_log_z(4, m2)) < 1e-6, (m2, row["log_z"])
        assert abs(row["chi"].value - (1 - 2 / np.pi) / m2) < 4 * row["chi"].error, (m2, row["chi"])
    with pytest.raises(pf.SamplingError, match="transport is 'none' or 'pik'"):
        pl.scan_lattice(path, transport="langevin", progress=False)
    with pytest.raises(pf.SamplingError, match="estimate must be one of"):  # before any flow is solved
        pl.scan_lattice(path, transport="pik", estimate="during", progress=False)


def test_a_failed_free_energy_check_is_a_warning():
    """``pikflow run`` with ``[scan]`` warns when log Z gained and -int <dS/dt> dt disagree beyond the 99 % range of
    the replicas' t distribution (t_3: 5.84 sigma): a population that lags behind the path (the 32x32 cheap scan of
    the guide failed the check by 15.6 sigma). A free-field scan passes (the TOML test above); the same scan with
    its check moved out of range warns."""
    from pikflow.cli._scan import _warnings

    path = pl.LatticePath(
        pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", (4, 4)), {"m2": [[0, 1.0], [1, 0.5]]}
    )
    scan = pl.scan_lattice(path, points=3, steps=4, particles=200, replicas=4, mcmc_steps=1, progress=False)
    assert abs(scan.free_energy_check("4x4")["pull"]) < 5.84 and _warnings(scan) == []
    real = scan.free_energy_check
    scan.free_energy_check = lambda size: {**real(size), "pull": -6.0}
    (warning,) = _warnings(scan)
    assert warning.startswith("4x4: the log Z gained over the scan") and "-6.0 sigma" in warning and "5.8" in warning


def test_scan_user_observables_as_callables_and_bad_ones_refused(tmp_path, capsys):
    """A callable user observable, V m^2 (= 1/m2 on the free field, exactly), at every point of a scan on two sizes
    (within 4 replica errors, the module's rule); bad observables fail before any sampling with what to change."""
    import jax.numpy as jnp

    path = pl.LatticePath(pl.LatticeAction(FREE_SCAN.split('"')[1], (4, 4)), {"m2": [[0, 1.0], [1, 0.5]]})
    scan = pl.scan_lattice(path, sizes=[4, 6], points=3, particles=1000, replicas=8, mcmc="hmc", seed=3,
                           progress=False, observables={"vm2": lambda x: x.size * jnp.mean(x) ** 2})  # fmt: skip
    for size in ("4x4", "6x6"):
        values, errors = scan.series(size, "vm2")
        exact = 1 / np.array([row["couplings"]["m2"] for row in scan.points[size]])
        assert np.all(errors[1:] > 0) and np.all(np.abs(values - exact) < 4 * errors + 1e-12), (size, values, errors)
    assert scan.summary()["scan"]["6x6"][2]["observables"]["vm2"]["error"] > 0
    with pytest.raises(pf.SamplingError, match="no observable 'nope'"):
        scan.series("4x4", "nope")
    for bad, match in (
        ({"chi": "phi**2"}, "taken"), ({"C1": "phi**2"}, "taken"), ({"x": "phi**"}, "site density"),
        ({"x": "m2*phi**2"}, "site density"), ({"x": lambda x: x}, "one number"), ({"x": 3.0}, "a callable"),
        ({"x": lambda x: undefined_name}, "fails on one configuration"),  # noqa: F821
    ):  # fmt: skip
        with pytest.raises(pf.SamplingError, match=match):
            pl.scan_lattice(path, points=3, particles=10, replicas=2, progress=False, observables=bad)
    cfg = tmp_path / "bad_obs.toml"
    cfg.write_text(FREE_SCAN + '[observables]\nchi = "phi**2"\n')
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) != 0
    assert "error: [observables]: observable name 'chi' is taken" in capsys.readouterr().err
