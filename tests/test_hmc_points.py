"""HMC at many points in one batch (``pikflow.baselines.hmc_points``) against exact free-field answers."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

import pikflow as pf
import pikflow.lattice as pl
from pikflow.baselines import hmc_points
from pikflow.diagnostics import gamma_method

FREE = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))"


def _free_path(m2_from, m2_to, L=4):
    return pl.LatticePath(pl.LatticeAction(FREE, (L, L)), {"m2": [[0.0, m2_from], [1.0, m2_to]]})


def test_every_point_samples_its_own_free_field_with_its_own_step():
    """<M^2>/V = G(0) = 1/m^2 at each point (4 sigma of the Gamma error); the stiffer point gets the smaller step.

    m^2 = 0.5 and 12 in one batch: the largest mode frequency sqrt(8 + m^2) grows from 2.9 to 4.5, so
    the step adapted to an acceptance of 0.8 must come out smaller at m^2 = 12: a step shared by the
    points (or adapted on the pooled acceptance) would not.
    """
    path = _free_path(0.5, 12.0)
    run = hmc_points(path, [0.0, 1.0], n=1000, chains=8, seed=3, keep=lambda x, t: x.sum()[None])
    assert run.positions.shape == (2, 8, 1000, 1)
    for p, m2 in enumerate((0.5, 12.0)):
        est = gamma_method((run.positions[p, :, :, 0] ** 2 / 16).reshape(-1))
        assert abs(est.mean - 1 / m2) < 4 * est.error, (m2, est)
        assert 0.6 < run.acceptance[p] < 0.95
    assert run.step_size[1] < 0.85 * run.step_size[0], run.step_size
    assert run.seconds_per_point == pytest.approx(run.sample_seconds / 2)


def test_configurations_are_kept_without_keep_and_bad_input_is_refused():
    path = _free_path(1.0, 1.0)
    run = hmc_points(path, [0.5], n=10, chains=2, thermalisation=25)
    assert run.positions.shape == (1, 2, 10, 16) and np.all(np.isfinite(run.positions))
    for times in ([], [0.0, math.nan]):
        with pytest.raises(pf.PikflowError, match="times must be"):
            hmc_points(path, times, n=10, chains=2)
    with pytest.raises(pf.PikflowError, match="init must hold 1 x 2"):
        hmc_points(path, [0.5], n=10, chains=2, init=np.zeros((3, 16)))
    with pytest.raises(pf.PikflowError, match="chains must be"):
        hmc_points(path, [0.5], n=10, chains=0)


def test_bench_batched_hmc_agrees_with_the_exact_free_scan():
    """``bench scan-lattice``'s batched HMC against exact rows: |m|, chi = (1 - 2/pi)/m^2, U = 0 of a Gaussian m."""
    from pikflow import Estimate
    from pikflow.bench._scan_lattice import _hmc_batched, break_even

    path, volume = _free_path(1.0, 0.5), 16
    rows = []
    for t in (0.0, 0.5, 1.0):
        m2 = 1.0 - 0.5 * t
        exact = {"abs_m": math.sqrt(2 / (math.pi * m2 * volume)), "chi": (1 - 2 / math.pi) / m2, "binder": 0.0}
        rows.append({"t": t, "couplings": {"m2": m2}, **{k: Estimate(v, 1e-12) for k, v in exact.items()}})
    args = argparse.Namespace(chains=8, batched_chains=None, reference=4000, hmc_start="random", hmc_leapfrog=10)
    b = _hmc_batched(path, rows, args, seed=5)
    assert b["chains_per_point"] == 8 and b["trajectories_per_chain"] == 500 and b["n_pulls"] == 9
    assert b["points_per_batch"] == 32  # HMC's cheapest batch at 16 sites is 256 chains: every point in one
    assert b["max_abs_pull"] < 4.0, b["points"]
    assert all(v > 0 for v in b["hmc_seconds_at_equal_errors"].values())
    # the break-even budget: HMC's trajectories at equal errors per scan particle, over the scan's own spend in the
    # same unit, is the cost ratio (a scan of 2000 particles that took 3 s, replica correction 0.8)
    be = break_even(b, 3.0, 2000, 0.8)
    assert be["trajectory_seconds"] == pytest.approx(b["sample_seconds"] / (3 * 8 * 500))
    for k, v in b["hmc_seconds_at_equal_errors"].items():
        assert be["break_even_trajectories"][k] / be["scan_trajectories"] == pytest.approx(v / 3.0 * 0.8)
        assert be["break_even_trajectories"][k] == pytest.approx(0.8 * v / be["trajectory_seconds"] / 2000)
    # 128 chains a point: two points fill the 256-chain batch, so the three points run in two batches
    args.batched_chains, args.reference = 128, 800
    b = _hmc_batched(path, rows, args, seed=6)
    assert b["points_per_batch"] == 2 and len(b["step_size"]) == 3 and b["n_pulls"] == 9
    assert b["max_abs_pull"] < 4.0, b["points"]


def test_bench_scan_pilot_gives_each_point_its_trajectory_length():
    """``bench scan-lattice --hmc-leapfrog auto``: each point runs its pilot's cheapest length, and agrees with exact.

    Free 4x4 field at m^2 = 0.02 and 12: at the soft point trajectories of 10 steps (about 2 time units) barely
    move the zero mode, whose period is 2 pi / sqrt(0.02) = 44, so 40 steps decorrelate |m| per gradient several
    times faster (measured: 3x the independent samples per second); at the stiff point 10 steps already
    decorrelate it, and 40 land near a resonance of its modes (tau_int 16 against 4). A length for the whole scan
    would be wrong at one of them. (With all four lengths both points may keep 20 or 30: the pilot is only asked to
    follow its rule there, and the reference to be right.)
    """
    from pikflow import Estimate
    from pikflow.bench._hmc_length import best_leapfrog_points, next_length
    from pikflow.bench._scan_lattice import _hmc_batched, break_even, with_pilot

    path, volume = _free_path(0.02, 12.0), 16
    best, rows, seconds = best_leapfrog_points(path, [0.0, 1.0], chains=8, lengths=(10, 40), gradients=4000, seed=1)
    assert best[0] >= 40 and best[1] == 10, rows
    assert [r["leapfrog"] for r in rows][:2] == [10, 40] and seconds > 0
    # past the longest length only the soft point, whose best it was, runs on (60, 90, 140 steps while each is faster)
    for k, row in enumerate(rows[2:], start=2):
        assert row["leapfrog"] == next_length(rows[k - 1]["leapfrog"]) and row["points"] == [0], rows
        assert row["independent_per_second"][1] is None and row["tau_int"][1] is None
    rates = [r["independent_per_second"][0] for r in rows]
    assert best[0] == rows[int(np.argmax(rates))]["leapfrog"]
    assert len(rows) == 5 or rates[-1] < max(rates[:-1])  # it stopped at a slower length or at 140 (next: 210)
    exact_rows = []
    for t, m2 in ((0.0, 0.02), (1.0, 12.0)):
        exact = {"abs_m": math.sqrt(2 / (math.pi * m2 * volume)), "chi": (1 - 2 / math.pi) / m2, "binder": 0.0}
        exact_rows.append({"t": t, "couplings": {"m2": m2}, **{k: Estimate(v, 1e-12) for k, v in exact.items()}})
    args = argparse.Namespace(chains=8, batched_chains=None, reference=800, hmc_start="random", hmc_leapfrog="auto")
    b = _hmc_batched(path, exact_rows, args, seed=1)
    # the default pilot (10, 20, 30, 40 steps): each point runs its fastest length, the rate set by the slowest of
    # the linearised series of <|m|>, chi and U
    pilot = b["pilot"]["rows"]
    rates = np.nan_to_num(np.array([r["independent_per_second"] for r in pilot], dtype=float), nan=-np.inf)
    assert b["leapfrog"] == [pilot[i]["leapfrog"] for i in rates.argmax(0)] and b["pilot"]["seconds"] > 0
    assert all(set(t) == {"abs_m", "chi", "binder"} for t in pilot[0]["tau_int"])
    # the pilot's timings decide, so the points may share a length: each batch is filled to 256 chains either way
    soft, stiff = b["leapfrog"]
    if soft != stiff:  # one point a length, each with the whole cheapest batch
        assert b["chains"] == [256, 256] and b["batches"] == sorted([[soft, 1, 256], [stiff, 1, 256]])
    else:
        assert b["chains"] == [128, 128] and b["batches"] == [[soft, 2, 128]]
    assert b["trajectories"] == sum(b["chains"]) * 100 and b["max_abs_pull"] < 4.0, b["points"]
    # 5000 gradients / 30 steps, in whole blocks of 25 trajectories (what hmc_points runs and times)
    assert b["hmc_leapfrog"] == "auto" and b["pilot"]["rows"][2]["trajectories_per_chain"] == 175
    assert sum(p["hmc_seconds"]["abs_m"] > 0 for p in b["points"]) == 2
    be = break_even(b, 3.0, 2000, 0.8)
    assert be["trajectory_seconds"] == pytest.approx(b["sample_seconds"] / b["trajectories"])
    # with the pilot counted: the replica correction scales HMC's equal-error seconds, not the pilot's fixed time
    w = with_pilot(b, 3.0, 0.8)
    for k, v in b["hmc_seconds_at_equal_errors"].items():
        assert w[k] == pytest.approx((0.8 * v + b["pilot"]["seconds"]) / 3.0)


def test_linearised_tau_of_independent_and_of_alternating_magnetisations():
    """``linearised_tau``: independent draws give tau_int 1/2 for all three series (within 0.1, 8 chains of 2000);
    |m| alternating about its mean with a slowly varying amplitude looks independent to the Gamma method (tau_int
    1/2), but its squared fluctuations, which carry chi and U, are correlated (tau_int about 5): a length chosen
    on |m| alone would misjudge chi."""
    from pikflow.bench._hmc_length import linearised_tau

    rng = np.random.default_rng(4)
    M = 16 * (1.0 + 0.1 * rng.standard_normal((8, 2000)))
    assert all(abs(t - 0.5) < 0.1 for t in linearised_tau(M, 16).values())
    sign = np.where(np.arange(2000) % 2 == 0, 1.0, -1.0)
    amp = np.repeat(np.abs(rng.standard_normal((8, 200))), 10, axis=1)  # slowly varying amplitude
    taus = linearised_tau(16 * (1.0 + 0.1 * sign * amp), 16)
    assert taus["abs_m"] < 0.6 and taus["chi"] > 2.0 and taus["binder"] > 2.0, taus


def test_batched_points_groups_lengths_and_fills_batches():
    """``batched_points``: the points of one length run together; with ``fill`` spread evenly over as few batches as
    hold them, each batch filled to HMC's cheapest width (256 chains at 16 sites); without it ``chains`` each in full
    batches and a rest. Every point's chains are its own: <M^2>/V = 1/m^2 of the free field at each."""
    from pikflow.bench._hmc_length import batched_points

    path = _free_path(1.0, 3.0)
    ts = [0.0, 0.5, 1.0]
    kw = dict(per=100, seed=2, therm=50)
    r = batched_points(path, ts, chains=8, leapfrog=[10, 20, 10], fill=True, **kw)
    assert r["batches"] == [[10, 2, 128], [20, 1, 256]] and r["chains"] == [128, 256, 128]
    assert r["leapfrog"] == [10, 20, 10]  # each point charged its batch's time over the batch's points
    assert r["seconds"][0] == r["seconds"][2]
    assert r["sample_seconds"] == pytest.approx(2 * r["seconds"][0] + r["seconds"][1])
    for M, t in zip(r["M"], ts, strict=True):
        est = gamma_method(M**2 / 16)
        assert abs(est.mean - 1 / (1.0 + 2.0 * t)) < 4 * est.error, (t, est)
    r = batched_points(path, ts, chains=128, leapfrog=10, fill=True, **kw)  # 2 points a batch: [2, 1] points
    assert r["batches"] == [[10, 2, 128], [10, 1, 256]]
    r = batched_points(path, ts, chains=128, leapfrog=10, **kw)  # the fixed-length layout: chains as asked
    assert r["batches"] == [[10, 2, 128], [10, 1, 128]] and r["chains"] == [128, 128, 128]


def test_bench_chains_auto_picks_the_batch_by_volume():
    """``--chains auto``: 256 chains up to 400 sites, 64 up to 1600, else 16; >= 600 trajectories a chain."""
    from pikflow.bench._common import chains_argument, hmc_chains

    assert hmc_chains("auto", 20_000, 256) == (256, 600)
    assert hmc_chains("auto", 160_000, 256) == (256, 625)
    assert hmc_chains("auto", 20_000, 1024) == (64, 600)
    assert hmc_chains("auto", 20_000, 4096) == (16, 1250)
    assert hmc_chains(16, 20_000, 256) == (16, 1250) and hmc_chains(8, 100, 64) == (8, 20)
    assert chains_argument("auto") == "auto" and chains_argument("32") == 32
    for bad in ("0", "-3", "many"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integer or 'auto'"):
            chains_argument(bad)


def test_bench_fourier_mass_argument():
    """``--fourier-mass``: a positive mu^2 or ``adaptive``; anything else is an argparse error."""
    from pikflow.bench._common import fourier_mass_argument

    assert fourier_mass_argument("adaptive") == "adaptive" and fourier_mass_argument("0.5") == 0.5
    for bad in ("0", "-1", "auto", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive mu.2 or 'adaptive'"):
            fourier_mass_argument(bad)


@pytest.mark.parametrize(
    "argv,message",
    [(["scan-lattice", "--points", "1"], "--points must be at least 2"),
     (["scan-lattice", "--prep", "0"], "--prep"),
     (["scan-lattice", "--particles", "0"], "--particles must be at least 2"),
     (["scan-lattice", "--dense", "-1", "-2", "0"], "FACTOR >= 1"),
     (["scan-lattice", "--fourier-mass", "adaptive"], "--fourier-mass is the mass of --mcmc fhmc"),
     (["scan-lattice", "--estimate", "before", "--pool"], "--pool combines the configurations after the moves"),
     (["multilevel", "--sizes", "4", "8", "--fourier-mass", "2"], "--fourier-mass is the mass of --mcmc fhmc"),
     (["lattice", "--hmc-step", "abc"], "--hmc-step must be a number"),
     (["lattice", "--set", "g"], "--set takes NAME=VALUE"),
     (["lattice", "--schedule", "abc"], "argument --schedule: 'auto', 'uniform' or a power"),
     (["lattice", "--basis", "foo"], "argument --basis: one of")],
)  # fmt: skip
def test_bench_argument_errors_name_their_flag(argv, message, capsys):
    """Bad benchmark flags stop at once with ``pikflow: error`` or argparse's error, naming the flag."""
    from pikflow.cli import main

    try:
        size = [] if argv[0] == "multilevel" else ["--L", "4"]
        rc = main(["bench", argv[0], *size, *argv[1:]])
    except SystemExit as exit_:  # argparse
        rc = exit_.code
    assert rc == 2 and message in capsys.readouterr().err


def test_every_benchmark_runs_its_own_runner(tmp_path):
    """Each registered benchmark's runner is its module's ``run*`` (not a helper defined between the decorator and
    it), and ``bench scan-lattice`` runs end to end on a tiny free-field-like scan, writing its JSON."""
    from pikflow.bench import BENCHMARKS, load_all
    from pikflow.cli import main

    load_all()
    assert {b.run.__name__.split("_")[0] for b in BENCHMARKS.values()} == {"run"}, BENCHMARKS
    out = tmp_path / "scan.json"
    argv = ["--L", "4", "--points", "3", "--particles", "32", "--replicas", "2", "--steps", "2", "--prep-steps", "1",
            "--mcmc-steps", "2", "--estimate", "moves", "--check", "1", "--reference", "64", "--chains", "4",
            "--hmc-therm", "10", "--batched-chains", "4", "--ti-nodes", "0", "--quiet", "--json", str(out)]  # fmt: skip
    assert main(["bench", "scan-lattice", *argv]) == 0
    res = json.loads(out.read_text())
    size = res["sizes"]["4x4"]
    assert res["settings"]["estimate"] == "moves" and len(size["checks"]) == 1
    assert size["hmc_batched"]["n_pulls"] == 9 and size["scan_seconds"] > 0
    assert len(size["hmc_batched"]["leapfrog"]) == 3 and size["hmc_batched"]["pilot"]["seconds"] > 0  # auto


@pytest.mark.parametrize("replicas", [8, 16])
def test_replica_cost_correction_makes_inverse_variance_ratios_unbiased(replicas):
    """sigma^2/s^2 of R normal replicas, 200 000 draws: its mean times ``mean`` and its median times ``median`` are 1.

    The mean of sigma^2/s^2 (a scaled inverse chi^2_nu) has the standard deviation
    sqrt(2/(nu - 4)) nu/(nu - 2) per draw (finite for nu > 4): 0.0026 over 200 000 draws at R = 8, 0.0011 at
    R = 16, so 0.02 is 7 or more of them; the sample median's error is smaller still.
    """
    from pikflow.bench._common import replica_cost_correction

    rng = np.random.default_rng(replicas)
    s2 = rng.standard_normal((200_000, replicas)).var(axis=1, ddof=1)
    fix = replica_cost_correction(replicas)
    assert abs(np.mean(1 / s2) * fix["mean"] - 1) < 0.02
    assert abs(np.median(1 / s2) * fix["median"] - 1) < 0.01
    assert math.isnan(replica_cost_correction(3)["mean"])


def test_zero_dim_points_against_quadrature():
    """A 0-D path (paper sec. IV A: S_t = (1 - 3t)/2 phi^2 + t/8 phi^4): <phi^2> at t = 0, 0.5, 1 in one batch against
    exact quadrature, within 4 Gamma-method errors; the double well at t = 1 is sampled from ordered starts +-2."""
    from pikflow.exact import reference_for

    path = pf.Path.from_expression("(1 - 3*t)/2*phi**2 + t/8*phi**4", ["phi"])
    ref = reference_for(path)
    times = [0.0, 0.5, 1.0]
    init = np.tile(np.where(np.arange(16) % 2 == 0, 2.0, -2.0)[None, :, None], (3, 1, 1))
    run = hmc_points(path, times, n=1500, chains=16, seed=2, init=init, n_leapfrog=25, step_size=0.04)
    for p, t in enumerate(times):
        est = gamma_method((run.positions[p, :, :, 0] ** 2).reshape(-1))
        exact = ref.expectation(t, lambda x: x**2)
        assert abs(est.mean - exact) < 4 * est.error, (t, est, exact)


def test_thermodynamic_integration_in_one_batch_matches_exact_answers():
    """``thermodynamic_integration(..., batched=True)``: the 0-D paper path against quadrature, a free lattice field
    against the determinant, 4 sigma (8 Gauss-Legendre nodes integrate to 3e-8 on the 0-D path)."""
    from pikflow.baselines import gaussian_log_z, thermodynamic_integration
    from pikflow.exact import reference_for

    path = pf.Path.from_expression("(1 - 3*t)/2*phi**2 + t/8*phi**4", ["phi"])
    ref = reference_for(path)
    ti = thermodynamic_integration(path, nodes=8, n=1000, chains=16, thermalisation=100, seed=8, batched=True)
    exact = ref.log_z(1.0) - ref.log_z(0.0)
    assert abs(ti.log_z_ratio.value - exact) < 4 * ti.log_z_ratio.error, (ti.log_z_ratio, exact)
    assert abs(ti.log_z.value - ref.log_z(1.0)) < 4 * ti.log_z.error and len(ti.dsdt) == 8
    assert gaussian_log_z(path) == pytest.approx(ref.log_z(0.0), abs=1e-12)

    lattice = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (4, 4)), {"m2": (1.0, 0.4), "lam": 0.0})
    ti = thermodynamic_integration(lattice, nodes=4, n=400, chains=8, thermalisation=100, seed=1, batched=True)
    k = 2 * np.pi * np.fft.fftfreq(4)
    khat2 = (4 * np.sin(k / 2) ** 2)[:, None] + (4 * np.sin(k / 2) ** 2)[None, :]
    exact = -0.5 * np.sum(np.log((0.4 + khat2) / (1.0 + khat2)))
    assert abs(ti.log_z_ratio.value - exact) < 4 * ti.log_z_ratio.error, (ti.log_z_ratio, exact)
    # starts per node (an array, or a function of the node's time): node by node and batched alike; the shape is
    # checked
    for batched, starts in ((False, np.zeros((4, 8, 4, 4))), (True, lambda t: np.zeros((8, 4, 4)))):
        ti = thermodynamic_integration(lattice, nodes=4, n=400, chains=8, seed=2, batched=batched, init=starts)
        assert abs(ti.log_z_ratio.value - exact) < 4 * ti.log_z_ratio.error, (batched, ti.log_z_ratio, exact)
    with pytest.raises(pf.PikflowError, match=r"shape \(4, 8, ...\)"):
        thermodynamic_integration(lattice, nodes=4, n=400, chains=8, init=np.zeros((3, 8, 4, 4)))
