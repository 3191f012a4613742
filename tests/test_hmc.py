"""Tests for the HMC baseline, the Gamma method on pyerrors, thermodynamic integration and the benchmarks.

Every statistical check compares with an exact value (closed form or 1-D quadrature,
``pikflow.exact``) with a tolerance of a few of the estimator's own Gamma-method
errors; all random streams are seeded, so the tests are deterministic.
"""

import json

import numpy as np
import pytest
from scipy.signal import lfilter

import pikflow as pf
from pikflow.baselines import HMC, gaussian_log_z, hmc, imh_estimate, thermodynamic_integration
from pikflow.diagnostics import gamma_method

PAPER = pf.Path.from_expression("(1 - 3*t)/2*phi**2 + t/8*phi**4", ["phi"])  # eq. 22, lambda/4


@pytest.fixture(scope="module")
def ref():
    return pf.exact.reference_for(PAPER)


@pytest.fixture(scope="module")
def sampler():
    return HMC(PAPER)


def ar1(rng, a, n):
    """Stationary AR(1) chain x_{i+1} = a x_i + sqrt(1 - a^2) eps_i, Var x = 1."""
    eps = rng.normal(size=n)
    eps[0] /= np.sqrt(1 - a * a)
    return lfilter([np.sqrt(1 - a * a)], [1.0, -a], eps)


# ------------------------------------------------------------------ Gamma method


def test_gamma_ar1_tau_pyerrors_and_fast_path():
    a = 0.8
    tau_exact = (1 + a) / (2 * (1 - a))  # 4.5
    g = gamma_method(ar1(np.random.default_rng(21), a, 100_000), backend="pyerrors")
    # tau_int_error is Wolff's eq. (42), the standard error of tau_int: 3 of them.
    assert abs(g.tau_int - tau_exact) < 3 * g.tau_int_error
    assert g.n_effective == pytest.approx(100_000 / (2 * g.tau_int))
    # Many equal replica (vectorised chains): "auto" takes the batched numpy path, every
    # replica about the overall mean (Wolff). pyerrors takes each about its own mean,
    # which lowers tau_int by 2 tau (W - tau + 1/2) / N_r on average (W the window; the
    # module docstring); with 300 chains the scatter of the replica means that causes it
    # is known to about 8 % (chi-square, 299 degrees of freedom), so the difference lies
    # within half and 1.5 times that.
    rng = np.random.default_rng(22)
    a = 0.5
    tau_exact = (1 + a) / (2 * (1 - a))
    chains = np.stack([ar1(rng, a, 4000) for _ in range(300)])
    fast = gamma_method(chains)
    slow = gamma_method(chains, backend="pyerrors")
    assert fast == gamma_method(chains, backend="numpy")
    assert fast.mean == pytest.approx(slow.mean, rel=1e-12)
    assert fast.window == slow.window
    shift = 2 * tau_exact * (fast.window - tau_exact + 0.5) / 4000
    assert 0.5 * shift < fast.tau_int - slow.tau_int < 1.5 * shift
    assert abs(fast.tau_int - tau_exact) < 3 * fast.tau_int_error
    with pytest.raises(ValueError, match="backend"):
        gamma_method(chains, backend="fortran")


# ------------------------------------------------------------------ HMC


@pytest.mark.parametrize("t", [0.5, 1.0])
def test_hmc_vectorised_exact_moments(sampler, ref, t):
    res = sampler.run(t, n=1000, chains=64, thermalisation=100, seed=3, observables={"a": "Abs(phi)", "p2": "phi**2"})
    assert res.positions.shape == (64, 1000, 1)
    assert res.n_leapfrog == 25 and res.step_size == pytest.approx(0.04)
    # eps = 0.04: Delta H = O(eps^2) per trajectory, acceptance ~ 0.9997.
    assert res.acceptance > 0.99 and res.n_divergent == 0
    for name, fn in (("a", np.abs), ("p2", np.square)):
        g = res.estimates[name]
        exact = ref.expectation(t, fn)
        assert g.tau_int < 3  # T = 1 trajectories decorrelate within a few steps in 0-D
        assert abs(g.mean - exact) < 4 * g.error, (name, g, exact)


def test_hmc_single_chain_paper_setting(ref):
    res = hmc(PAPER, 1.0, n=8000, thermalisation=200, seed=4)
    assert res.n_chains == 1 and res.sample_seconds > 0
    g = res.gamma("Abs(phi)")
    assert abs(g.mean - ref.expectation(1.0, np.abs)) < 4 * g.error
    assert res.independent_per_second("Abs(phi)") == pytest.approx(g.n_effective / res.sample_seconds)


def test_hmc_two_workers_same_statistics(sampler, ref):
    res = sampler.run(1.0, n=500, chains=32, workers=2, thermalisation=100, seed=5)
    assert res.workers == 2
    est = res.observable("phi**2")
    assert abs(est.value - ref.expectation(1.0, np.square)) < 4 * est.error


def test_hmc_two_component_action():
    # O(2) phi^4 at fixed couplings: <r^2> by radial quadrature, r = |phi|.
    m2, lam = -1.0, 0.5
    action = pf.Action(f"{m2}/2*(a**2 + b**2) + {lam}/4*(a**2 + b**2)**2", fields=["a", "b"])
    r = np.linspace(0, 12, 200_001)
    w = r * np.exp(-(0.5 * m2 * r**2 + 0.25 * lam * r**4))
    exact = np.trapezoid(w * r**2, r) / np.trapezoid(w, r)
    res = hmc(action, n=1000, chains=32, thermalisation=100, seed=6)
    g = res.gamma("a**2 + b**2")
    assert res.positions.shape == (32, 1000, 2)
    assert abs(g.mean - exact) < 4 * g.error


def test_hmc_generic_callable_potential():
    # A flat 3-vector with a correlated Gaussian S = x.K.x/2: <x_0^2> = (K^-1)_00.
    K = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 1.5]])
    res = hmc(lambda x: 0.5 * x @ (K @ x), n=1000, chains=32, thermalisation=100, seed=7, dim=3)
    g = res.gamma(lambda x: x[:, 0] ** 2)
    assert abs(g.mean - np.linalg.inv(K)[0, 0]) < 4 * g.error


def test_hmc_bad_input():
    with pytest.raises(pf.PikflowError, match="dim"):
        hmc(lambda x: x @ x)
    with pytest.raises(pf.PikflowError, match="couplings"):
        hmc(pf.Action("m2/2*phi**2", fields=["phi"]))
    with pytest.raises(pf.PikflowError, match="multiple of workers"):
        hmc(PAPER, chains=3, workers=2, n=10)
    with pytest.raises(pf.PikflowError, match="step_size"):
        HMC(PAPER, step_size=0)
    with pytest.raises(pf.PikflowError, match="n must be"):
        hmc(PAPER, n=2)
    for bad in ("x", 1.5, [1, 2, 3]):
        with pytest.raises(pf.PikflowError, match="seed must be an integer or a JAX PRNG key"):
            hmc(PAPER, n=10, thermalisation=0, seed=bad)
    with pytest.raises(pf.PikflowError, match="'auto'"):
        HMC(PAPER, step_size="fast")


def test_hmc_refuses_positions_larger_than_memory(monkeypatch):
    # The positions array of n x chains x dim doubles is checked before the run: 100 x 4 x 1 x 8 bytes.
    import pikflow.baselines._hmc_target as hmc_module

    monkeypatch.setattr(hmc_module, "available_memory", lambda: 100 * 4 * 8 - 1)
    with pytest.raises(pf.SamplingError, match="lower n"):
        hmc(PAPER, n=100, chains=4, thermalisation=0)
    monkeypatch.setattr(hmc_module, "available_memory", lambda: 100 * 4 * 8)
    assert hmc(PAPER, n=100, chains=4, thermalisation=0).positions.shape[:2] == (4, 100)


# ------------------------------------------------------------------ free energy


def test_thermodynamic_integration_matches_quadrature(ref):
    assert gaussian_log_z(PAPER) == pytest.approx(ref.log_z(0.0), abs=1e-12)
    ti = thermodynamic_integration(PAPER, nodes=8, n=1000, chains=16, thermalisation=100, seed=8)
    # 8 Gauss-Legendre nodes integrate <dS/dt>_t to 3e-8 on this path, far below the
    # statistical error (~5e-3): the check is statistical, 4 sigma.
    exact = ref.log_z(1.0) - ref.log_z(0.0)
    assert abs(ti.log_z_ratio.value - exact) < 4 * ti.log_z_ratio.error
    assert ti.delta_f.value == -ti.log_z_ratio.value
    assert abs(ti.log_z.value - ref.log_z(1.0)) < 4 * ti.log_z.error
    assert len(ti.dsdt) == 8 and json.dumps(ti.to_dict())


def test_flow_log_z_and_imh_errors_against_quadrature_and_ti(ref):
    flow = pf.solve(PAPER, steps=10, progress=False)
    s = flow.sample(20_000, seed=1, keep_layers=False, progress=False)
    lz = s.log_z(1.0)
    # the flow's log <w> (delta-method error) against quadrature: 4 sigma plus the
    # 1e-9 rounding floor of the quadrature itself.
    assert abs(lz.value - ref.log_z(1.0)) < 4 * lz.error + 1e-9
    # Same Gamma analysis as HMC along the IMH chain: exact within errors, and a
    # near-perfect flow gives tau_int ~ 1/2.
    g = imh_estimate(s, "Abs(phi)")
    assert abs(g.mean - ref.expectation(1.0, np.abs)) < 4 * g.error
    assert g.tau_int < 1.0
    # Delta F between base and target: flow weights against HMC thermodynamic integration.
    ti = thermodynamic_integration(PAPER, nodes=6, n=500, chains=16, thermalisation=100, seed=9)
    df_flow = -(lz.value - gaussian_log_z(PAPER))
    assert abs(df_flow - ti.delta_f.value) < 4 * np.hypot(lz.error, ti.delta_f.error) + 1e-6


# ------------------------------------------------------------------ benchmarks


SMALL = """
[action]
density = "m2/2*phi**2 + lam/4*phi**4"
[path]
m2 = [1.0, -2.0]
lam = [0.0, 0.5]
[flow]
steps = 5
[sampling]
n = 2000
[observables]
absphi = "Abs(phi)"
phi2 = "phi**2"
[hmc]
chains = 8
n = 50
n_single = 300
thermalisation = 20
"""


def test_bench_hmc_and_scan_json(tmp_path, capsys):
    from pikflow.cli import main

    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL)
    out = tmp_path / "bench.json"
    assert main(["bench", str(cfg), "--repeats", "1", "--quiet", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    for key in ("ratio", "ratio_with_solve", "ratio_single_chain"):
        assert np.isfinite(d[key]) and d[key] > 0
    assert d["pik"]["independent_per_second"] > 0 and d["hmc"]["independent_per_second"] > 0
    assert d["hmc_single"]["chains"] == 1 and d["hmc_single"]["n_total"] == 300  # from [hmc]
    assert d["hmc"]["chains"] == 8 and d["hmc"]["n_per_chain"] == 50
    assert d["ratio"] == pytest.approx(d["pik"]["independent_per_second"] / d["hmc"]["independent_per_second"])
    for sampler in ("pik", "hmc", "hmc_single"):
        assert set(d["observables"][sampler]) == {"absphi", "phi2"}
        assert {"value", "error"} <= set(d["observables"][sampler]["absphi"])
    assert d["observables"]["exact"]["absphi"] == pytest.approx(1.7361801851585457)
    assert "| **independent samples / s**" in capsys.readouterr().out

    out = tmp_path / "scan.json"
    scan = ["--steps", "5", "--n", "2000", "--chunk", "10", "--pilot-n", "10"]
    assert main(["bench", "scan", str(cfg), *scan, "--quiet", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["points"] == 6 and len(d["per_point"]) == 6
    assert d["ratio"] > 0 and d["pik"]["total_seconds"] > 0
    for p in d["per_point"]:
        assert abs(p["pik"]["value"] - p["exact"]) < 5 * p["pik"]["error"]


# ------------------------------------------------------------------ HMC on a lattice (the same BlackJAX sampler)


def test_lattice_hmc_reproduces_the_exact_free_field():
    r"""pikflow.lattice.hmc (BlackJAX, gradient stencil, adaptive step) against the exact free field on 4x4.

    With :math:`K(k) = m^2_t + \hat k^2`: :math:`\langle\phi_x^2\rangle = \frac1V\sum_k 1/K(k)` and
    :math:`V\langle m^2\rangle = 1/K(0) = 1/m^2_t` (the zero mode, the slowest one). ``t`` is traced:
    the second call, at another time, step and length, reuses the one compilation.
    """
    import jax

    import pikflow.lattice as pl
    from pikflow.lattice._observables import _sampler

    lat = pl.Lattice((4, 4))
    path = pl.LatticePath(pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", lat), {"m2": (1.0, 0.3)})
    # A fixed trajectory (10 steps) freezes a free mode whose leapfrog phase 10*arccos(1 - h^2 w^2/2) is a
    # multiple of pi (h = 0.3 at m2 = 0.3: the k^2 = 4 mode, 0.04 rad away; <phi^2> came out 8 sigma low).
    # h = 0.28 keeps every mode >= 0.39 rad away from one.
    runs = ((0.5, "auto", 8000), (1.0, 0.28, 6400))
    for i, (t, step, n) in enumerate(runs):
        fields, acc = pl.hmc(path, jax.random.PRNGKey(i), n, time=t, n_chains=8, step=step)
        assert fields.shape == (8, n // 8, 4, 4) and 0.5 < acc < 1
        x = fields.reshape(8, n // 8, lat.volume)
        m2 = 1.0 + t * (0.3 - 1.0)
        K = m2 + np.asarray(lat.khat2())
        for series, exact in (((x**2).mean(-1), np.mean(1 / K)), (lat.volume * x.mean(-1) ** 2, 1 / m2)):
            g = gamma_method(series)  # the 8 chains as replica
            # 4 Gamma-method errors: a chance failure ~6e-5 per check; the errors are a few percent
            assert abs(g.mean - exact) < 4 * g.error and g.error < 0.1 * exact, (t, g, exact)
    assert list(_sampler(path, 10)._compiled) == [(8, 25, None)]  # one compilation for both runs


def test_hmc_keeping_only_the_magnetisation_samples_the_exact_free_field():
    r"""``HMC.run(keep=...)`` stores only the kept numbers of the same chains: on the free 4x4 field the kept
    magnetisation equals the stored configurations' sums to rounding, and gives the exact
    :math:`V\langle m^2\rangle = 1/m^2` within 4 Gamma-method errors; configurations are not there to
    evaluate observables on (a clear error), and ``observables`` cannot go with ``keep``."""

    import pikflow.lattice as pl

    lat = pl.Lattice((4, 4))
    path = pl.LatticePath(pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", lat), {"m2": 0.5})
    sampler = pf.baselines.HMC(path, step_size=0.28, n_leapfrog=10)
    full = sampler.run(1.0, n=1000, chains=8, thermalisation=100, seed=5, init=np.zeros((8, 16)))
    kept = sampler.run(
        1.0, n=1000, chains=8, thermalisation=100, seed=5, init=np.zeros((8, 16)), keep=lambda x, t: x.sum()
    )
    assert kept.kept and kept.positions.shape == (8, 1000, 1) and kept.acceptance == full.acceptance
    np.testing.assert_allclose(kept.positions[..., 0], full.positions.sum(-1), rtol=1e-12, atol=1e-12)
    g = gamma_method(kept.positions[..., 0] ** 2 / lat.volume)
    assert abs(g.mean - 1 / 0.5) < 4 * g.error and g.error < 0.1 * 2.0, g
    with pytest.raises(pf.PikflowError, match="kept only"):
        kept.values("phi_0")
    with pytest.raises(pf.PikflowError, match="observables cannot be given"):
        sampler.run(1.0, n=10, chains=8, keep=lambda x, t: x.sum(), observables={"a": lambda x: x[:, 0]})


def test_zero_d_hmc_takes_an_adaptive_step_from_toml():
    """[hmc] step_size = 'auto' (and leapfrog_steps) in a 0-D configuration: the adapted chain samples
    the exact Gaussian <phi^2> = 1/3 within 4 Gamma-method errors; bad values are ConfigErrors."""
    from pikflow.cli import hmc_options

    opts = hmc_options({"hmc": {"step_size": "auto", "leapfrog_steps": 10, "chains": 16, "n": 500}})
    assert opts["step_size"] == "auto" and opts["n_leapfrog"] == 10
    for bad, words in (({"step_size": "fast"}, "positive number or 'auto'"), ({"leapfrog_steps": 8}, "goes with")):
        with pytest.raises(pf.ConfigError, match=words):
            hmc_options({"hmc": bad})
    path = pf.Path.from_expression("(1 + 2*t)/2*phi**2", ["phi"])
    sampler = pf.baselines.HMC(path, step_size=opts["step_size"], n_leapfrog=opts["n_leapfrog"])
    res = sampler.run(1.0, n=opts["n"], chains=opts["chains"], seed=3, observables={"phi2": "phi**2"})
    est = res.estimates["phi2"]
    assert abs(est.mean - 1 / 3) < 4 * est.error, est


def test_thermodynamic_integration_on_a_lattice_matches_the_exact_free_field(monkeypatch):
    """HMC thermodynamic integration along a free 4x4 lattice path (m2: 1 -> 0.4) gives the exact
    log Z_1 - log Z_0 = -(1/2) sum_k log((0.4 + khat^2)/(1 + khat^2)) within 4 errors. TI keeps only dS/dt
    per trajectory (HMC.run(keep=...)): the same chains with every configuration stored and dS/dt evaluated
    afterwards, in small chunks of configurations (a remainder too), give the same node mean."""
    import jax

    import pikflow.lattice as pl
    from pikflow.baselines import _hmc_result

    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (4, 4)), {"m2": (1.0, 0.4), "lam": 0.0})
    ti = thermodynamic_integration(path, nodes=4, n=400, chains=8, thermalisation=100, step_size="auto", seed=1)
    k = 2 * np.pi * np.fft.fftfreq(4)
    khat2 = (4 * np.sin(k / 2) ** 2)[:, None] + (4 * np.sin(k / 2) ** 2)[None, :]
    exact = -0.5 * np.sum(np.log((0.4 + khat2) / (1.0 + khat2)))
    assert ti.log_z is None and ti.log_z_ratio.error > 0
    assert abs(ti.log_z_ratio.value - exact) < 4 * ti.log_z_ratio.error, (ti.log_z_ratio, exact)
    monkeypatch.setattr(_hmc_result, "OBSERVABLE_CHUNK", 16 * 37)  # 37 configurations a call: 3200 = 86 * 37 + 18
    t0 = float(ti.times[0])
    run = HMC(path, step_size="auto").run(t0, n=400, chains=8, thermalisation=100, seed=1)  # node 0's seed
    g = run.gamma(lambda phi: jax.vmap(lambda x: path.dsdt(x.reshape(4, 4), t0))(phi))
    assert abs(g.mean - ti.dsdt[0].mean) < 1e-12 * max(1.0, abs(g.mean)) and abs(g.error / ti.dsdt[0].error - 1) < 1e-9


def test_step_jitter_breaks_a_resonant_trajectory_length():
    """A unit Gaussian with trajectory length 2*pi: every trajectory ends where it started (frozen chains).

    With the step jittered by +-50 % the lengths spread over [pi, 3 pi] and the chains mix: <x^2> = 1
    within 4 Gamma-method errors and tau_int is small. Without jitter the chains barely move, so
    their spread stays that of the starting points (standard normal draws of 4 chains).
    """
    kw = dict(step_size=2 * np.pi / 63, n_leapfrog=63, dim=1)
    frozen = HMC(lambda x: 0.5 * x @ x, **kw).run(n=400, chains=4, thermalisation=0, seed=3)
    drift = np.abs(frozen.positions[:, -1, 0] - frozen.positions[:, 0, 0])
    assert np.all(drift < 0.05), drift  # leapfrog with a small step: the orbit closes
    mixed = HMC(lambda x: 0.5 * x @ x, jitter=0.5, **kw).run(n=2000, chains=4, thermalisation=50, seed=3)
    est = mixed.gamma(lambda x: x[:, 0] ** 2)
    assert abs(est.mean - 1.0) < 4 * est.error, est
    assert est.tau_int < 3.0, est
    assert "jitter=0.5" in repr(HMC(lambda x: 0.5 * x @ x, jitter=0.5, **kw))
    with pytest.raises(pf.PikflowError, match="jitter"):
        HMC(lambda x: 0.5 * x @ x, jitter=1.5, **kw)
