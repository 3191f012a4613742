"""SMC with PIK transport (pikflow.samplers): exact quadrature in 0-D, exact free fields, invariant moves,
replica errors that cover the truth.

Tolerances: every SMC estimate carries the replica standard error s/sqrt(R); with R replicas the
pull is Student t_{R-1} distributed, so checks use 4 sigma (two-sided tail 0.5% for t_7).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import pikflow as pf
import pikflow.lattice as pl
from pikflow.exact import reference_for
from pikflow.lattice import Lattice, LatticeAction, LatticePath, lattice_basis, solve_lattice
from pikflow.lattice._smc import magnetisation_moments, smc_observables
from pikflow.samplers import AnnealingProblem, flow_problem, smc
from pikflow.samplers._mcmc import make_move

phi, m2, lam = sp.symbols("phi m2 lam")


@pytest.fixture(scope="module")
def paper_flow():
    action = pf.Action(m2 / 2 * phi**2 + lam / 4 * phi**4, fields=[phi])
    path = pf.Path.linear(action, start={m2: 1.0, lam: 0.0}, end={m2: -2.0, lam: 0.5})
    return pf.solve(path, steps=25, progress=False), reference_for(path)


OBS = {"abs": lambda x: jnp.abs(x[0]), "sq": lambda x: x[0] ** 2}


def test_pik_smc_matches_quadrature_on_the_paper_path(paper_flow):
    flow, ref = paper_flow
    r = smc(flow, 1000, seed=0, replicas=8, observables=OBS, progress=False)
    assert r.final_ess > 0.999  # the exact-kernel increments are nearly constant
    for t in (0.52, 1.0):
        for name, fn in (("abs", np.abs), ("sq", np.square)):
            est = r.observable(name, t)
            assert abs(est.value - ref.expectation(t, fn)) < 4 * est.error, (name, t, est)
    lz = r.log_z_estimate()
    # the replica error is ~1e-9; the flow misses ~5e-9 of the mass in the far tails (measured with 32
    # replicas at every t), which no weight can restore: allow 1e-8 beyond 4 sigma
    assert abs(lz.value - ref.log_z(1.0)) < 4 * lz.error + 1e-8
    assert r.nonfinite.sum() == 0
    assert np.all(np.nanmean(r.acceptance[1:], axis=1) > 0.2)
    summary = r.summary()
    assert set(summary["steps"]) >= {"ess_min", "resamplings", "acceptance", "unique_ancestors_min", "log_z"}


def test_pik_smc_matches_quadrature_on_an_asymmetric_potential():
    """An asymmetric target, m2/2 phi^2 + lam/4 phi^4 + g phi^3 at (m2, lam, g) = (-1, 0.5, 0.3): a double well with
    unequal minima, <phi> != 0. PIK-SMC's <phi>, <phi^2> at t = 0.52 and 1 and log Z_1 against quadrature, within
    4 replica errors (t_7; a tail allowance of 1e-8 on log Z as on the paper's path)."""
    g = sp.Symbol("g")
    action = pf.Action(m2 / 2 * phi**2 + lam / 4 * phi**4 + g * phi**3, fields=[phi])
    path = pf.Path.linear(action, start={m2: 1.0, lam: 0.0, g: 0.0}, end={m2: -1.0, lam: 0.5, g: 0.3})
    flow, ref = pf.solve(path, steps=25, progress=False), reference_for(path)
    obs = {"phi": lambda x: x[0], "sq": lambda x: x[0] ** 2}
    r = smc(flow, 1000, seed=1, replicas=8, observables=obs, progress=False)
    assert abs(ref.expectation(1.0, lambda x: x)) > 0.3  # the potential's asymmetry shows in <phi>
    for t in (0.52, 1.0):
        for name, fn in (("phi", lambda x: x), ("sq", np.square)):
            est = r.observable(name, t)
            assert abs(est.value - ref.expectation(t, fn)) < 4 * est.error, (name, t, est, ref.expectation(t, fn))
    lz = r.log_z_estimate()
    assert abs(lz.value - ref.log_z(1.0)) < 4 * lz.error + 1e-8, (lz, ref.log_z(1.0))


def test_replica_errors_cover_the_truth(paper_flow):
    """Plain annealed SMC (no transport) over 20 seeds: |pull| < 2 for log Z and <phi^2>.

    With 8 replicas the pull is t_7: P(|t| < 2) = 0.914, so 40 pulls fail the bound 3.4 times on
    average; more than 10 failures has probability < 0.1%. Errors that were too large would show as
    a mean squared pull far below var(t_7) = 1.4.
    """
    flow, ref = paper_flow
    pulls = []
    for seed in range(20):
        r = smc(flow, 200, seed=seed, transport="none", replicas=8, observables=OBS, progress=False)
        lz, sq = r.log_z_estimate(), r.observable("sq")
        pulls += [(lz.value - ref.log_z(1.0)) / lz.error, (sq.value - ref.expectation(1.0, np.square)) / sq.error]
    pulls = np.array(pulls)
    assert np.sum(np.abs(pulls) > 2) <= 10, pulls
    assert 0.4 < np.mean(pulls**2) < 4.0, pulls


def test_genealogy_errors_cover_the_truth(paper_flow):
    """The genealogy (Chan-Lai / Lee-Whiteley) error of one run covers the quadrature value.

    Plain SMC resampling below ESS/N 0.9 (several times per run) over 20 seeds with 2 replicas: the
    pull of <phi^2> with the genealogy error is asymptotically normal, P(|z| > 2.5) = 1.2%, so more than 3 of 20 outside
    has probability < 0.2%; errors too small or too large show as a mean squared pull far from 1.
    The estimate itself is the recorded weighted mean (same particles and weights).
    """
    flow, ref = paper_flow
    truth = ref.expectation(1.0, np.square)
    pulls, ancestors = [], []
    for seed in range(20):
        r = smc(flow, 400, seed=seed, transport="none", replicas=2, resample=0.9, observables=OBS, progress=False)
        est = r.genealogy_estimate(OBS["sq"])
        assert est.value == pytest.approx(r.observable("sq").value, rel=1e-10)
        pulls.append((est.value - truth) / est.error)
        ancestors.append(len(np.unique(r.ancestors[0])))
    pulls = np.array(pulls)
    assert r.n_resampled > 0 and min(ancestors) < 400  # the genealogy is non-trivial
    assert np.sum(np.abs(pulls) > 2.5) <= 3, pulls
    assert 0.3 < np.mean(pulls**2) < 2.5, pulls


def test_moves_at_every_third_step_stay_exact(paper_flow):
    """``mcmc_every=3``: resampling and moves only at steps 3, 6, ... and the last; still exact.

    Plain SMC (no transport) against quadrature: log Z and <phi^2> within 4 replica errors (t_7).
    """
    flow, ref = paper_flow
    r = smc(flow, 1000, seed=3, transport="none", mcmc_every=3, resample=0.9, replicas=8, observables=OBS,
            progress=False)  # fmt: skip
    moved = np.isfinite(r.acceptance[1:]).all(axis=1)
    steps = np.arange(1, len(moved) + 1)
    np.testing.assert_array_equal(moved, (steps % 3 == 0) | (steps == len(moved)))
    assert not r.resampled[1:][~moved].any() and r.resampled[1:][moved].any()
    lz, sq = r.log_z_estimate(), r.observable("sq")
    assert abs(lz.value - ref.log_z(1.0)) < 4 * lz.error
    assert abs(sq.value - ref.expectation(1.0, np.square)) < 4 * sq.error
    with pytest.raises(pf.SamplingError, match="mcmc_every"):
        smc(flow, 100, mcmc_every=0, progress=False)


def test_estimates_before_resampling_are_exact(paper_flow):
    """``estimate="before"``: each step's means from the transported particles and their weights, before the
    resampling and the moves. With neither (resample 0, no moves) they are the same numbers as ``"after"``
    (same seed); with resampling at ESS/N 0.9 and moves, plain SMC still gives quadrature's log Z and
    <phi^2> within 4 replica errors (t_7), and the last step's mean differs from the after-estimate."""
    flow, ref = paper_flow
    kw = dict(seed=4, transport="none", replicas=2, observables=OBS, progress=False)
    quiet = [smc(flow, 200, resample=0.0, mcmc_steps=0, estimate=e, **kw) for e in ("after", "before")]
    np.testing.assert_array_equal(quiet[0].moments["sq"], quiet[1].moments["sq"])
    kw.update(seed=5, replicas=8, resample=0.9)
    after, before = (smc(flow, 1000, estimate=e, **kw) for e in ("after", "before"))
    assert before.n_resampled > 0 and before.settings["estimate"] == "before"
    np.testing.assert_array_equal(before.log_z, after.log_z)  # the same run: only the means move
    lz, sq = before.log_z_estimate(), before.observable("sq")
    assert abs(lz.value - ref.log_z(1.0)) < 4 * lz.error
    assert abs(sq.value - ref.expectation(1.0, np.square)) < 4 * sq.error
    assert sq.value != after.observable("sq").value
    with pytest.raises(pf.SamplingError, match="estimate must be"):
        smc(flow, 100, estimate="during", progress=False)


def test_estimates_averaged_over_the_moves_are_exact(paper_flow):
    """``estimate="moves"``: each step's means averaged over the configurations after each of its moves.

    With one move per step that average is the configuration after it, so the means are those of ``"after"``
    to the last bit (same seed); with four moves the run is the same (same log Z) and plain SMC still gives
    quadrature's <|phi|> and <phi^2> within 4 replica errors (t_7). The four moves' configurations are less
    correlated than one configuration with itself, so over 24 replicas (the same particles both ways) the
    spread of the per-replica <phi^2> is smaller than that of ``"after"``.
    """
    flow, ref = paper_flow
    kw = dict(seed=6, transport="none", replicas=2, resample=0.9, observables=OBS, progress=False)
    one = [smc(flow, 200, mcmc_steps=1, estimate=e, **kw) for e in ("after", "moves")]
    np.testing.assert_array_equal(one[0].moments["sq"], one[1].moments["sq"])
    kw.update(replicas=24, mcmc_steps=4)
    after, moves = (smc(flow, 300, estimate=e, **kw) for e in ("after", "moves"))
    assert moves.n_resampled > 0 and moves.settings["estimate"] == "moves"
    np.testing.assert_array_equal(moves.log_z, after.log_z)  # the same run: only the means move
    for name, fn in (("abs", np.abs), ("sq", np.square)):
        est = moves.observable(name)
        assert abs(est.value - ref.expectation(1.0, fn)) < 4 * est.error, (name, est)
    spread = [np.std(r.moments["sq"][-1], ddof=1) for r in (after, moves)]
    assert spread[1] < spread[0], spread


def test_observables_at_chosen_step_times_only(paper_flow):
    """``observe_at``: the same means as a full record at the chosen times (same seed), NaN elsewhere."""
    flow, _ = paper_flow
    full = smc(flow, 200, seed=2, transport="none", replicas=2, observables=OBS, progress=False)
    at = [full.times[3], 1.0]
    part = smc(flow, 200, seed=2, transport="none", replicas=2, observables=OBS, observe_at={"sq": at},
               progress=False)  # fmt: skip
    np.testing.assert_array_equal(part.moments["abs"], full.moments["abs"])  # not in observe_at: every step
    seen = np.isin(np.arange(len(full.times)), [3, len(full.times) - 1])
    np.testing.assert_allclose(part.moments["sq"][seen], full.moments["sq"][seen], rtol=1e-12)
    assert np.isnan(part.moments["sq"][~seen]).all()
    with pytest.raises(pf.SamplingError, match="not observables"):
        smc(flow, 50, observables=OBS, observe_at={"bogus": [1.0]}, progress=False)
    with pytest.raises(pf.SamplingError, match="not a step time"):
        smc(flow, 50, observables=OBS, observe_at={"sq": [0.123456]}, progress=False)


@pytest.mark.parametrize("kind", ["mala", "hmc"])
def test_mcmc_moves_leave_a_gaussian_invariant(kind, getkey):
    """Exact samples of N(0, C) stay N(0, C) after moves: mean and variances within 4 standard errors."""
    cov = np.diag([0.25, 1.0, 4.0])
    prec = jnp.asarray(np.linalg.inv(cov))
    move = make_move(kind, lambda x, t: -0.5 * x @ prec @ x, size=3, leapfrog_steps=5)
    n = 20_000
    x = jax.random.normal(getkey(), (n, 3)) * jnp.sqrt(jnp.diag(jnp.asarray(cov)))
    keys = jax.random.split(getkey(), n)
    y, acc, _ = jax.jit(jax.vmap(lambda k, z: move(k, z, 0.0, 0.3, 5)))(keys, x)
    y = np.asarray(y)
    assert 0.3 < float(np.mean(acc)) < 1.0  # the move really moves
    assert np.mean(np.all(y != np.asarray(x), axis=1)) > 0.3
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(y.mean(0)) < 4 * sd / np.sqrt(n))
    assert np.all(np.abs(y.var(0) / np.diag(cov) - 1) < 4 * np.sqrt(2 / n))


@pytest.fixture(scope="module")
def free_flow():
    """The free field on 4x4 from m^2 = 1 to 0.1, with the two-point basis that spans its exact kernel."""
    lat = Lattice((4, 4))
    path = LatticePath(LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", lat), {"m2": (1.0, 0.1)})
    basis = lattice_basis(lat, magnetisation=(), scales=(), local_range=None)
    return solve_lattice(path, basis, steps=8, n_collocation=300, progress=False)


def test_free_lattice_field_log_z_is_exact(free_flow):
    """Free field between two masses: the PIK transport is exact up to the RK4 step, weights exact for the map.

    log Z_1 = (V/2) log 2 pi - (1/2) sum_k log K_1(k); the magnetisation is Gaussian with variance 1/(V m^2).
    """
    r = smc(free_flow, 1000, seed=1, replicas=8, observables=magnetisation_moments(), logdet="exact", progress=False)
    k = np.meshgrid(*[2 * np.pi * np.arange(4) / 4] * 2, indexing="ij")
    K1 = 0.1 + sum(4 * np.sin(kk / 2) ** 2 for kk in k)
    exact = 0.5 * 16 * np.log(2 * np.pi) - 0.5 * np.log(K1).sum()
    assert r.final_ess > 0.9999
    lz = r.log_z_estimate()
    assert abs(lz.value - exact) < 4 * lz.error
    s2 = 1 / (16 * 0.1)
    obs = smc_observables(r, 16)
    assert abs(obs["abs_m"].value - np.sqrt(2 * s2 / np.pi)) < 4 * obs["abs_m"].error
    assert abs(obs["chi"].value - 16 * s2 * (1 - 2 / np.pi)) < 4 * obs["chi"].error


def test_ratios_of_means_are_pooled_over_replicas(free_flow):
    """The free field's magnetisation is Gaussian, so its Binder cumulant is exactly 0.

    With N independent samples per replica (the transport is exact: uniform weights, no moves), the
    per-replica Binder cumulant has mean 2/(N + 2) (the sample kurtosis of a centred Gaussian,
    E[sum x^4 / N / (sum x^2 / N)^2] = 3N/(N + 2)): 0.111 for N = 16, 4.6 replica errors off at R = 300.
    Pooled over the replicas (SMCResult.derived) the bias is 2/(RN + 2) = 4e-4, far below the error.
    For a linear function the jackknife error is the replica error s/sqrt(R) exactly.
    """
    n, reps = 16, 300
    r = smc(free_flow, n, seed=5, replicas=reps, mcmc_steps=0, observables=magnetisation_moments(), progress=False)
    assert r.ess.min() > 0.99 and r.n_resampled == 0
    u = smc_observables(r, 16)["binder"]
    assert abs(u.value) < 4 * u.error < 0.15, u
    per_replica = 1 - r.moments["m4"][-1] / (3 * r.moments["m2"][-1] ** 2)
    old = per_replica.mean()
    assert abs(old - 2 / (n + 2)) < 4 * per_replica.std(ddof=1) / np.sqrt(reps)
    assert old > 2 * u.error + u.value  # the per-replica average is the biased one
    lin, ref = r.derived(lambda m: 2 * m["m2"]), r.observable("m2")
    np.testing.assert_allclose([lin.value, lin.error], [2 * ref.value, 2 * ref.error], rtol=1e-12)


def test_particle_batches_change_the_speed_not_the_numbers():
    """smc(batch=...) evaluates the transport and the moves a few particles at a time (jax.lax.map, so that a
    batch stays in cache): the same run as all particles at once, to float64 rounding, also when the batch
    does not divide the particles (a remainder); bad batches fail clearly."""
    lat = Lattice((4, 4))
    density = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"
    path = LatticePath(LatticeAction(density, lat), {"m2": (1.0, -0.5), "lam": (0.0, 1.0)})
    flow = solve_lattice(path, lattice_basis(lat, scales=(1,)), steps=3, n_collocation=200, progress=False)
    kw = dict(seed=3, replicas=2, mcmc="hmc", mcmc_steps=1, resample=1.0, observables=magnetisation_moments())
    kw["progress"] = False
    whole = smc(flow, 120, batch=None, **kw)
    assert whole.settings["chunk"] is None
    for batch, chunk in (("auto", 64), (50, 25)):  # PARTICLE_BATCH // 2 replicas; both leave a remainder of 120
        r = smc(flow, 120, batch=batch, **kw)
        assert r.settings["chunk"] == chunk
        np.testing.assert_allclose(r.particles, whole.particles, rtol=0, atol=1e-12)
        np.testing.assert_allclose(r.log_z, whole.log_z, rtol=0, atol=1e-12)
    assert whole.n_resampled > 0 and np.nanmean(whole.acceptance[1:]) > 0.3  # the moves and resampling ran
    for bad in (0, "fast", 2.5):
        with pytest.raises(pf.SamplingError, match="batch"):
            smc(flow, 120, batch=bad, **kw)


def test_float32_transport_is_the_float64_map_to_float32_rounding():
    """lattice_problem(precision="float32") evaluates the velocities and Laplacians in float32 and keeps the
    RK4 state and the log-Jacobian's sum in float64: the same map and log-Jacobian to float32 rounding (a
    relative 1e-7 per evaluation, far below 1e-4), but not the same to float64 rounding (the cast happened)."""
    lat = Lattice((4, 4))
    density = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"
    path = LatticePath(LatticeAction(density, lat), {"m2": (1.0, -0.5), "lam": (0.0, 1.0)})
    flow = solve_lattice(path, lattice_basis(lat, scales=(1,)), steps=3, n_collocation=200, progress=False)
    p64, p32 = pl.lattice_problem(flow), pl.lattice_problem(flow, precision="float32")
    x = p64.base_sample(jax.random.PRNGKey(0), 64)[0]
    for k in range(3):
        y64, ld64 = jax.vmap(lambda z, k=k: p64.transport(k, z))(x)
        y32, ld32 = jax.vmap(lambda z, k=k: p32.transport(k, z))(x)
        assert y32.dtype == jnp.float64 and ld32.dtype == jnp.float64
        assert 0 < float(jnp.max(jnp.abs(y32 - y64))) < 1e-4 * float(jnp.max(jnp.abs(y64)))
        assert float(jnp.max(jnp.abs(ld32 - ld64))) < 1e-4 * max(1.0, float(jnp.max(jnp.abs(ld64))))
        x = y64
    # the sampler takes it too (compiled apart from the float64 run): the same run to float32 rounding
    kw = dict(seed=4, replicas=2, mcmc_steps=0, observables=magnetisation_moments(), progress=False)
    r64, r32 = smc(flow, 100, **kw), smc(flow, 100, precision="float32", **kw)
    assert r32.settings["precision"] == "float32"
    assert 0 < np.max(np.abs(r32.log_z - r64.log_z)) < 1e-4
    with pytest.raises(pf.SamplingError, match="precision"):
        pl.lattice_problem(flow, precision="float16")
    with pytest.raises(pf.SamplingError, match="float32"):
        pl.lattice_problem(flow, logdet="exact", precision="float32")


def test_smc_transport_does_not_evaluate_a_zero_first_layer(monkeypatch):
    """On a clock t**p (p > 1) layer 0 is zero: the SMC's transport skips that RK4 stage (its loop over the stages
    starts one later, decided from the coefficients of the traced step) and gives the map and log-Jacobian of the
    push that evaluates every stage, to float64 rounding."""
    from pikflow.flow._compiled import window_push
    from pikflow.flow._lattice_flow import LatticeFlow

    lat = Lattice((4, 4))
    density = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"
    path = LatticePath(LatticeAction(density, lat), {"m2": (1.0, -0.5), "lam": (0.0, 1.0)})
    flow = solve_lattice(path, lattice_basis(lat, scales=(1,)), steps=2, n_collocation=200, progress=False)
    coeffs = np.array(flow.coeffs)
    coeffs[0] = 0.0  # as on the clock t**p
    zflow = LatticeFlow(flow.path, flow.basis, flow.base, coeffs, 2, [])
    every = jax.jit(window_push(flow.basis.fused.evaluate))
    seen = []  # the size of the coefficients of every layer the transport evaluates
    evaluate = flow.basis.fused.evaluate

    def recording(p, a, x):
        jax.debug.callback(lambda size: seen.append(float(size)), jnp.sum(jnp.abs(a)))
        return evaluate(p, a, x)

    monkeypatch.setattr(flow.basis.fused, "evaluate", recording)
    prob = pl.lattice_problem(zflow)
    step = jax.jit(lambda k, x: jax.vmap(lambda z: prob.transport(k, z))(x))  # the step index traced, as in smc
    x = prob.base_sample(jax.random.PRNGKey(0), 16)[0]
    for k in range(2):
        y, ld = step(k, x)
        jax.effects_barrier()
        assert seen and min(seen) > 0.0  # the zero layer 0 (step 0's first stage) is never evaluated
        yw, lqw = every(flow.basis.fused.params, jnp.asarray(coeffs), x, jnp.zeros(16), k, 1, -1.0, 0.5)
        assert float(jnp.max(jnp.abs(y - yw))) < 1e-12 * float(jnp.max(jnp.abs(yw)))
        assert float(jnp.max(jnp.abs(ld + lqw))) < 1e-10 and float(jnp.max(jnp.abs(y - x))) > 1e-3
        x = y


@pytest.mark.parametrize("preset", ["two-point", "short"])
def test_cheap_transport_presets_keep_smc_exact_on_the_free_field(preset):
    """The cheap transport bases (fit_lattice(basis=preset)) on a free field between two masses.

    The two-point term alone spans the exact kernel, so every preset must find it (the extra zero-mode and
    smoothed terms solve to nothing): ESS/N 1 up to the RK4 step and log Z = the exact Gaussian one.
    """
    lat = Lattice((4, 4))
    path = LatticePath(LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", lat), {"m2": (1.0, 0.1)})
    flow = pl.fit_lattice(path, base="free", basis=preset, steps=6, n_collocation=300, progress=False)
    assert flow.info["basis_preset"] == preset
    r = smc(flow, 500, seed=2, replicas=8, observables=magnetisation_moments(), logdet="exact", progress=False)
    k = np.meshgrid(*[2 * np.pi * np.arange(4) / 4] * 2, indexing="ij")
    exact = 0.5 * 16 * np.log(2 * np.pi) - 0.5 * np.log(0.1 + sum(4 * np.sin(kk / 2) ** 2 for kk in k)).sum()
    assert r.ess.min() > 0.999
    lz = r.log_z_estimate()
    assert abs(lz.value - exact) < 4 * lz.error + 1e-6
    chi = smc_observables(r, 16)["chi"]
    assert abs(chi.value - 16 / (16 * 0.1) * (1 - 2 / np.pi)) < 4 * chi.error


def test_basis_presets_grow_in_order_and_bad_names_fail():
    lat = Lattice((4, 4))
    path = LatticePath(LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", lat), {"m2": (1.0, 0.1)})
    base = pl.GaussianLatticeBase.from_path(path)
    fams = [[type(f).__name__ for f in pl.preset_basis(p, path, base).families] for p in pl.BASIS_PRESETS]
    assert fams[:3] == [
        ["FourierTwoPoint"],
        ["FourierTwoPoint", "Magnetisation"],
        ["FourierTwoPoint", "Magnetisation", "SmoothedPowers"],
    ]
    sizes = dict(zip(pl.BASIS_PRESETS, (pl.preset_basis(p, path, base).n for p in pl.BASIS_PRESETS), strict=True))
    assert sizes["separable"] == sizes["lean"]  # the same families on other filters
    del sizes["separable"]
    for name in pl.RIDGE_PRESETS:  # the same preset with ridge terms (on the products' scales) appended
        plain = name.removesuffix("+ridges")
        assert sizes.pop(name) > sizes.get(plain, sizes["lean"])
        assert fams[pl.BASIS_PRESETS.index(name)] == fams[pl.BASIS_PRESETS.index(plain)] + ["SmoothedRidges"]
    assert list(sizes.values()) == sorted(set(sizes.values())) and fams[3][0] == "FourierTwoPoint"
    assert pl.preset_basis("magnetisation", path, base).names[-2:] == ["V*m**4", "V*m**6"]
    with pytest.raises(pf.PikflowError, match="basis must be one of"):
        pl.fit_lattice(path, base="free", basis="cheap", progress=False)


def test_lean_preset_is_the_default_basis_on_four_filters():
    """basis="lean": the default families with the powers on the products' scales, so 4 smoothing filters, not 9."""
    lat = Lattice((16, 16))
    path = LatticePath(LatticeAction(pl.PHI4_DENSITY, lat), {"m2": -1.0, "lam": 1.0})
    base = pl.GaussianLatticeBase(lat.khat2() + 0.5)
    lean, default = (pl.preset_basis(p, path, base) for p in ("lean", "default"))
    assert [type(f).__name__ for f in lean.families] == [type(f).__name__ for f in default.families]
    assert (lean.fused.n_scales, default.fused.n_scales) == (4, 9)
    assert lean.families[1].scales == lean.families[2].scales  # powers and products share their filters
    assert lean.n < default.n


def test_a_problem_compiles_once(paper_flow):
    """Repeated runs on one AnnealingProblem reuse its compiled functions (it hashes by identity)."""
    from pikflow.samplers._smc import _CACHES

    flow, _ = paper_flow
    p = flow_problem(flow)
    a = smc(p, 50, seed=1, transport="none", replicas=2, progress=False)
    b = smc(p, 50, seed=1, transport="none", replicas=2, progress=False)
    assert p in _CACHES and len(_CACHES[p]) == 1
    np.testing.assert_array_equal(a.log_w, b.log_w)
    assert a.settings["compile_seconds"] > 0 and b.settings["compile_seconds"] == 0
    assert b.seconds < a.seconds


def test_problem_and_argument_errors(paper_flow):
    flow, _ = paper_flow
    with pytest.raises(pf.SamplingError, match="transport"):
        smc(flow, 100, transport="teleport", progress=False)
    with pytest.raises(pf.SamplingError, match="replicas"):
        smc(flow, 100, replicas=1, progress=False)
    with pytest.raises(pf.SamplingError, match="mcmc"):
        smc(flow, 100, mcmc="gibbs", progress=False)
    with pytest.raises(pf.SamplingError, match="solved flow"):
        smc("not a flow", 100, progress=False)
    with pytest.raises(pf.SamplingError, match="float32 transport is for lattice flows"):
        smc(flow, 100, precision="float32", progress=False)
    p = flow_problem(flow)
    with pytest.raises(pf.SamplingError, match="from 0 to 1"):
        AnnealingProblem(times=[0.0, 0.5], event_shape=(1,), base_sample=p.base_sample, log_gamma=p.log_gamma)
    with pytest.raises(pf.SamplingError, match="needs a solved flow"):
        smc(AnnealingProblem(times=p.times, event_shape=(1,), base_sample=p.base_sample, log_gamma=p.log_gamma),
            10, progress=False)  # fmt: skip


def test_fourier_metric_is_the_circulant_mass():
    """fhmc's metric on a 4x3 lattice against the dense circulant M = F^-1 diag(k^2 + mu^2) F: kinetic energy
    1/2 p M^-1 p and momenta M^(1/2) xi for the same white noise xi (exact, to float64 rounding)."""
    from pikflow.samplers._mcmc import fourier_metric

    shape, mass2 = (4, 3), 0.7
    k = np.meshgrid(*[2 * np.pi * np.arange(n) / n for n in shape], indexing="ij")
    eig = (mass2 + sum(4 * np.sin(kk / 2) ** 2 for kk in k)).ravel()
    F = np.stack([np.fft.fftn(e.reshape(shape)).ravel() for e in np.eye(12)], axis=1)  # DFT matrix
    M = (np.linalg.inv(F) @ np.diag(eig) @ F).real
    sqrt_M = (np.linalg.inv(F) @ np.diag(np.sqrt(eig)) @ F).real
    metric = fourier_metric(shape, mass2)
    p = np.random.default_rng(0).normal(size=shape)
    np.testing.assert_allclose(metric.kinetic_energy(jnp.asarray(p)), 0.5 * p.ravel() @ np.linalg.solve(M, p.ravel()),
                               rtol=1e-12)  # fmt: skip
    key = jax.random.PRNGKey(3)
    xi = np.asarray(jax.random.normal(key, (2, *shape)))  # a leading component axis: independent copies
    mom = np.asarray(metric.sample_momentum(key, jnp.zeros((2, *shape))))
    np.testing.assert_allclose(mom.reshape(2, -1), xi.reshape(2, -1) @ sqrt_M.T, rtol=1e-10, atol=1e-12)
    with pytest.raises(pf.SamplingError, match="positive"):
        fourier_metric(shape, 0.0)


def test_measured_mass_is_the_free_propagator():
    """The adaptive Fourier mass from exact free-field draws (one and two components, 20 000 draws) is
    k^2 + m^2 mode by mode within 6 standard errors of a variance (sqrt(2/n)); with every draw shifted by
    +-2 (two wells), the zero mode's is the well's own (1 - 2/pi) (k^2 + m^2)(0), not the distance between them;
    weighted white noise gives the weighted field's mass; one particle copied 64 times gives the floor."""
    from pikflow.samplers._mcmc import measured_mass

    shape, m2, n = (6, 4), 0.5, 20000
    k = np.meshgrid(*[2 * np.pi * np.arange(L) / L for L in shape], indexing="ij")
    prec = m2 + sum(4 * np.sin(kk / 2) ** 2 for kk in k)
    rng = np.random.default_rng(5)
    for comps in ((), (2,)):
        white = rng.normal(size=(n, *comps, *shape))
        axes = tuple(range(-2, 0))
        x = np.fft.ifftn(np.fft.fftn(white, axes=axes) / np.sqrt(prec), axes=axes).real
        got = np.asarray(measured_mass(jnp.asarray(x), shape))
        np.testing.assert_allclose(got, prec[:, : shape[1] // 2 + 1], rtol=6 * np.sqrt(2 / n))
    wells = x[:, 0] + 2.0 * rng.choice([-1.0, 1.0], size=n)[:, None, None]
    got0 = float(measured_mass(jnp.asarray(wells), shape)[0, 0])
    assert abs(got0 / ((1 - 2 / np.pi) * m2) - 1) < 6 * np.sqrt(2 / n)
    collapsed = measured_mass(jnp.asarray(np.repeat(wells[:1], 64, axis=0)), shape)  # one particle resampled 64 times
    white = rng.normal(size=(n, *shape))  # weighted to the field of variance 0.8 per site: mass 1.25 at every k
    log_w = -0.5 * (1 / 0.8 - 1) * np.sum(white**2, axis=(1, 2))
    ess = np.exp(2 * np.logaddexp.reduce(log_w) - np.logaddexp.reduce(2 * log_w))
    weighted = measured_mass(jnp.asarray(white), shape, jnp.asarray(log_w))
    np.testing.assert_allclose(weighted, 1.25, rtol=6 * np.sqrt(2 / ess))
    np.testing.assert_allclose(collapsed, 1e3 * (prec - m2 + 1.0)[:, : shape[1] // 2 + 1], rtol=1e-12)


@pytest.mark.parametrize("mass", [0.5, "adaptive"])
def test_fourier_accelerated_moves_keep_plain_smc_exact_on_the_free_field(mass):
    """Plain annealed SMC (no transport) with fhmc moves between two free-field masses on 4x4, with a fixed and
    with the measured mass: log Z and chi against the exact Gaussian values; a 0-D problem refuses fhmc."""
    from pikflow.lattice._scan import path_problem

    lat = Lattice((4, 4))
    path = LatticePath(LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", lat), {"m2": (1.0, 0.1)})
    problem = path_problem(path, np.linspace(0.0, 1.0, 9))
    assert problem.lattice_shape == (4, 4)
    r = smc(problem, 400, seed=4, transport="none", mcmc="fhmc", mcmc_steps=2, leapfrog_steps=5, fourier_mass=mass,
            replicas=8, observables=magnetisation_moments(), progress=False)  # fmt: skip
    assert r.settings["fourier_mass"] == mass and 0.5 < np.nanmean(r.acceptance[1:]) < 1.0
    k = np.meshgrid(*[2 * np.pi * np.arange(4) / 4] * 2, indexing="ij")
    exact = 0.5 * 16 * np.log(2 * np.pi) - 0.5 * np.log(0.1 + sum(4 * np.sin(kk / 2) ** 2 for kk in k)).sum()
    lz = r.log_z_estimate()
    assert abs(lz.value - exact) < 4 * lz.error
    chi = smc_observables(r, 16)["chi"]
    assert abs(chi.value - 16 / (16 * 0.1) * (1 - 2 / np.pi)) < 4 * chi.error
    flow = pf.solve(pf.Path.linear(pf.Action("m2/2*phi**2", fields=["phi"]), start={"m2": 1.0}, end={"m2": 2.0}),
                    steps=2, basis=pf.Polynomial(2), progress=False)  # fmt: skip
    with pytest.raises(pf.SamplingError, match="lattice"):
        smc(flow, 50, mcmc="fhmc", progress=False)
    with pytest.raises(pf.SamplingError, match="mcmc='fhmc'"):
        smc(problem, 50, transport="none", mcmc="hmc", fourier_mass="adaptive", progress=False)
    assert smc(problem, 50, transport="none", mcmc="fhmc", fourier_mass=np.float32(0.5), mcmc_steps=1,
               progress=False).settings["fourier_mass"] == 0.5  # fmt: skip
    for bad in (-1.0, "auto", True, np.array([1.0, 2.0])):
        with pytest.raises(pf.SamplingError, match="fourier_mass must be a positive mu.2 or 'adaptive'"):
            smc(problem, 50, transport="none", mcmc="fhmc", fourier_mass=bad, progress=False)


def test_bench_smc_checks_log_z_against_thermodynamic_integration(tmp_path):
    """``pikflow bench smc`` on 4x4 (-1, 1): PIK-SMC's log Z against HMC thermodynamic integration (an
    independent reference, 4 Gauss-Legendre nodes) and its observables against HMC, within 4 combined
    errors (8 replicas: t_7 pulls); the float32 transport gives the same run to float32 rounding, and the
    transport's continuous log-Jacobian is within 0.05 of the exact one (3 steps on the t^2 clock)."""
    import json

    from pikflow.cli import main

    out = tmp_path / "smc.json"
    args = ["bench", "smc", "--L", "4", "--basis", "lean", "--steps", "3", "--particles", "300", "--replicas", "8"]
    args += ["--mcmc", "hmc", "--mcmc-steps", "1", "--reference", "4000", "--n", "500", "--ti-nodes", "4"]
    args += ["--ti-samples", "4000", "--float32", "--no-plain", "--quiet", "--json", str(out)]
    assert main(args) == 0
    res = json.loads(out.read_text())
    pik, low = res["samplers"]["pik_smc"], res["samplers"]["pik_smc[float32]"]
    assert abs(pik["log_z_pull_vs_ti"]) < 4
    assert res["samplers"]["hmc"]["chains"] == 256 and res["samplers"]["hmc"]["trajectories_per_chain"] == 600
    # --hmc-leapfrog auto (the default): the reference runs the pilot's fastest length
    h = res["samplers"]["hmc"]
    assert h["leapfrog"] == max(h["leapfrog_pilot"], key=lambda r: r["independent_per_second"])["leapfrog"]
    tried = [r["leapfrog"] for r in h["leapfrog_pilot"]]  # 60, 90, 140 too while the longest is the fastest
    assert tried[:4] == [10, 20, 30, 40] and tried[4:] == [60, 90, 140][: len(tried) - 4]
    assert h["leapfrog_pilot_seconds"] > 0
    assert all(abs(p) < 4 for p in pik["pull_vs_hmc"].values())
    assert abs(low["log_z"]["value"] - pik["log_z"]["value"]) < 1e-3
    assert pik["log_q_error_rms"] < 0.05 and pik["time_power"] == 2.0
    assert res["thermodynamic_integration"]["nodes"] == 4 and res["thermodynamic_integration"]["log_z"]["error"] > 0
    # the deterministic flow with IMH (--n 500): timed draw and estimates (each compiled before), HMC's pulls
    imh = res["samplers"]["flow_imh"]
    assert imh["seconds"] > 0 and 0 < imh["acceptance"] <= 1 and 0 < imh["ess"] <= 1


def test_replicas_left_out_are_warned_about():
    """A replica with a non-finite estimate is left out of the pooled one, with a ReplicaWarning; none when every
    replica is finite, or none is (an observable not recorded at that step)."""
    import warnings

    from pikflow.samplers import ReplicaWarning, replica_estimate

    with pytest.warns(ReplicaWarning, match="1 of 4 replicas"):
        est = replica_estimate([1.0, np.nan, 2.0, 3.0])
    assert est.value == 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert replica_estimate([1.0, 2.0]).value == 1.5 and np.isnan(replica_estimate([np.nan] * 3).value)
