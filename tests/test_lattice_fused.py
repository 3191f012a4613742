"""The fused lattice evaluation (issue #20) against the per-family formulas it replaces.

The reference is the per-family code (:meth:`LatticeBasis.gradient`, :meth:`LatticeBasis.laplacian`,
:meth:`LatticeBasis.columns`: one complex FFT per family and use) and a plain RK4 written out here
from those; the fused path (one real FFT of phi, batched filters, one inverse transform of the
summed gradient) must give the same numbers to float64 rounding on random fields.
"""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pikflow as pf  # noqa: F401  (float64)
from pikflow.flow._lattice_flow import _make_push
from pikflow.lattice import (
    PHI4_DENSITY,
    GaussianLatticeBase,
    LatticeAction,
    LatticeBasis,
    LatticePath,
    Magnetisation,
    SmoothedPowers,
    SmoothedProducts,
    default_basis,
    lattice_basis,
)
from pikflow.lattice._fused import half_spectrum
from pikflow.lattice._separable import hermitian_part

RTOL = 1e-10


def _bases(shape):
    """The default matched basis (tamed powers, products, mixture zero mode) and lattice_basis with local terms."""
    S = LatticeAction(PHI4_DENSITY, list(shape))
    rng = np.random.default_rng(1)
    # a matched-like precision that is not reflection symmetric: exercises the Hermitian half-spectrum filters
    K = np.asarray(S.lattice.khat2()) + 0.3 + 0.05 * rng.random(shape)
    # (a GaussianLatticeBase refuses K(k) != K(-k); the bases take the filters' precision from any object with
    # precision, m0 and zero_mode_coupling, so the asymmetric filters are still tested)
    g = SimpleNamespace(precision=jnp.asarray(K), m0=0.2, zero_mode_coupling=0.2 * float(K.flat[0]))
    path = LatticePath.matched(S, {"m2": -2.0, "lam": 2.0}, K, g.zero_mode_coupling)
    matched = default_basis(path, g, tame=5.0)
    assert any(isinstance(f, SmoothedProducts) for f in matched.families)
    assert any(isinstance(f, Magnetisation) for f in matched.families)
    plain = lattice_basis(S.lattice, scales=(0.5, 2.0), tame=None, local_range=1, local_degree=4, max_sites=1)
    ridged = default_basis(path, g, tame=5.0, ridges=True)  # + SmoothedRidges on the products' filters
    assert type(ridged.families[-2]).__name__ == "SmoothedRidges"
    return [matched, plain, _enriched(matched), ridged]


def _enriched(matched):
    """``matched`` plus families on the other branches of the pointwise part (:mod:`pikflow.lattice._pointwise`).

    Odd tamed powers (one ``rsqrt``), tamed families with powers <= 2 (plain), untamed powers and
    products, and scales that are neither all scales nor an arithmetic progression of them (the
    gather and scatter fallback instead of strided slices and an interior pad).
    """
    sp = next(f for f in matched.families if type(f) is SmoothedPowers)
    lat, K, sc = sp.lattice, sp.precision, sp.scales
    extra = [
        SmoothedPowers(lat, (0.3, 1.5), (3, 4, 5, 6), precision=K, tame=5.0),
        SmoothedPowers(lat, (sc[0], sc[2]), (2, 5), precision=K, tame=4.0),
        SmoothedPowers(lat, (0.7,), (2, 3), precision=K, tame=None),
        SmoothedProducts(lat, (sc[0], sc[1], sc[3]), precision=K, tame=None),
    ]
    return LatticeBasis([*matched.families, *extra])


def _rel(new, old):
    return float(jnp.max(jnp.abs(new - old)) / jnp.maximum(jnp.max(jnp.abs(old)), 1e-300))


def test_fused_gradient_laplacian_columns_match_families():
    shape = (5, 6)  # odd and even extents: the rfftn half with and without its Nyquist plane
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(6, *shape)))
    dS = jnp.asarray(rng.normal(size=(6, *shape)))
    for basis in _bases(shape):
        a = jnp.asarray(rng.normal(size=basis.n))
        g_old = jax.vmap(basis.gradient, (None, 0))(a, x)
        l_old = jax.vmap(basis.laplacian, (None, 0))(a, x)
        g_new, l_new = jax.vmap(basis.gradient_and_laplacian, (None, 0))(a, x)
        assert _rel(g_new, g_old) < RTOL, basis
        assert _rel(l_new, l_old) < RTOL, basis
        c_old = jax.vmap(basis.columns)(x, dS)
        c_new = jax.vmap(basis.fused_columns)(x, dS)
        assert _rel(c_new, c_old) < RTOL, basis


@pytest.mark.parametrize("shape", [(6, 8), (6, 7), (3, 4, 5)])
def test_half_spectrum_is_the_hermitian_part(shape):
    # real(ifft(f * fft(x))) = irfft(half_spectrum(f) * rfft(x)) for any real filter f
    rng = np.random.default_rng(2)
    f, x = rng.random(shape), rng.normal(size=shape)
    ref = np.real(np.fft.ifftn(f * np.fft.fftn(x)))
    got = np.fft.irfftn(half_spectrum(f) * np.fft.rfftn(x), s=x.shape, axes=tuple(range(len(shape))))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)


def _plain_rk4(basis, coeffs, x, lq, steps):
    """RK4 of (x, log q) written out from the per-family gradient and Laplacian (one complex FFT per family)."""
    vel = jax.vmap(lambda a, y: -basis.gradient(a, y), (None, 0))
    lap = jax.vmap(basis.laplacian, (None, 0))
    dt = 1.0 / steps

    @jax.jit  # one step compiled (not the whole path): the reference stays the per-family formulas
    def step(a0, am, a1, x, lq):
        ys = [x]
        ks = [vel(a0, x)]
        ys.append(x + 0.5 * dt * ks[0])
        ks.append(vel(am, ys[1]))
        ys.append(x + 0.5 * dt * ks[1])
        ks.append(vel(am, ys[2]))
        ys.append(x + dt * ks[2])
        ks.append(vel(a1, ys[3]))
        dlq = lap(a0, ys[0]) + 2 * lap(am, ys[1]) + 2 * lap(am, ys[2]) + lap(a1, ys[3])
        return x + dt / 6 * (ks[0] + 2 * ks[1] + 2 * ks[2] + ks[3]), lq + dt / 6 * dlq

    for i in range(steps):
        x, lq = step(coeffs[2 * i], coeffs[2 * i + 1], coeffs[2 * i + 2], x, lq)
    return x, lq


def test_fused_push_matches_plain_rk4():
    """Samples and log q of the fused scan against RK4 written out from the per-family gradient and Laplacian."""
    shape, steps = (6, 6), 2
    rng = np.random.default_rng(3)
    for basis in (_bases(shape)[0], _bases(shape)[2], _bases(shape)[3]):
        coeffs = jnp.asarray(rng.normal(size=(2 * steps + 1, basis.n)) * 0.05)
        x0 = jnp.asarray(rng.normal(size=(5, *shape)))
        lq0 = jnp.asarray(rng.normal(size=5))
        x, lq = _plain_rk4(basis, coeffs, x0, lq0, steps)
        xf, lqf = jax.jit(_make_push(basis, steps))(coeffs, x0, lq0)
        assert _rel(xf, x) < RTOL
        assert _rel(lqf - lq0, lq - lq0) < RTOL


def test_flow_samples_and_weights_match_the_per_family_path():
    """A fixed-seed ``LatticeFlow.sample`` (the compiled push with the constants as arguments, in chunks) gives
    the samples and log-weights of RK4 from the per-family formulas on the same base draws, to float64
    rounding (issue #20: nothing changes but the cost). 10 RK4 steps of coefficients of the size a solve
    gives, so rounding differences of 1e-16 per evaluation pass through 40 evaluations."""
    from pikflow.flow._lattice_flow import LatticeFlow

    shape, steps, n = (8, 8), 10, 300  # 300 > PUSH_BATCH: several chunks
    S = LatticeAction(PHI4_DENSITY, list(shape))
    K = np.asarray(S.lattice.khat2()) + 0.3
    g = GaussianLatticeBase(K, m0=0.2)
    path = LatticePath.matched(S, {"m2": -2.0, "lam": 2.0}, K, g.zero_mode_coupling)
    basis = default_basis(path, g, tame=5.0)
    rng = np.random.default_rng(6)
    coeffs = rng.normal(size=(2 * steps + 1, basis.n)) * 0.1
    flow = LatticeFlow(path, basis, g, coeffs, steps, [])
    key = jax.random.PRNGKey(7)
    got = flow.sample(key, n)
    x0, lq0 = g.sample(jax.random.fold_in(key, 0), n)  # the draws of sample's first (only) batch
    x1, lq1 = _plain_rk4(basis, jnp.asarray(coeffs), x0, lq0, steps)
    log_w = -jax.vmap(lambda y: path.value(y, 1.0))(x1) - lq1
    assert np.all(np.isfinite(got.log_w))
    assert float(np.max(np.abs(x1 - x0))) > 0.1  # the flow moves the fields: not a trivial comparison
    assert _rel(jnp.asarray(got.fields), x1) < 1e-12
    assert _rel(jnp.asarray(got.log_w), log_w) < 1e-12


def test_a_zero_first_layer_is_not_evaluated_and_changes_nothing(monkeypatch):
    """On a clock t = tau**p, p > 1, layer 0 is zero (dt/dtau = 0 at tau = 0): the push skips that stage (7 of 8
    evaluations for 2 steps; layer 0 made NaN leaves it finite) and gives the samples and log q of evaluating
    every stage, bit for bit; sampling, a solve's first step, a window from step 1 and the reverse push share
    one compiled program (the loop over the stages with the skip traced)."""
    from pikflow.flow._compiled import _CACHE, clear_cache, push_fn, window_push
    from pikflow.flow._lattice_flow import LatticeFlow

    shape, steps, n = (8, 8), 2, 300
    S = LatticeAction(PHI4_DENSITY, list(shape))
    K = np.asarray(S.lattice.khat2()) + 0.3
    g = GaussianLatticeBase(K, m0=0.2)
    path = LatticePath.matched(S, {"m2": -2.0, "lam": 2.0}, K, g.zero_mode_coupling)
    basis = default_basis(path, g, tame=5.0)
    coeffs = np.random.default_rng(8).normal(size=(2 * steps + 1, basis.n)) * 0.1
    coeffs[0] = 0.0
    clear_cache()
    seen = []  # the size of the coefficients of every layer the compiled pushes evaluate
    evaluate = basis.fused.evaluate

    def recording(p, a, x):
        jax.debug.callback(lambda size: seen.append(float(size)), jnp.sum(jnp.abs(a)))
        return evaluate(p, a, x)

    monkeypatch.setattr(basis.fused, "evaluate", recording)
    flow = LatticeFlow(path, basis, g, coeffs, steps, [])
    key = jax.random.PRNGKey(9)
    got = flow.sample(key, n)
    jax.effects_barrier()
    assert seen and min(seen) > 0.0  # sampling never evaluated the zero layer
    assert [k for k in _CACHE if k[0] == "push"] == [("push", basis.fused.key, "float64")]
    assert flow.evaluations_per_sample == 7
    x0, lq0 = g.sample(jax.random.fold_in(key, 0), n)
    every = jax.jit(window_push(basis.fused.evaluate))  # every stage evaluated, the layer of zeros too
    x1, lq1 = every(basis.fused.params, jnp.asarray(coeffs), x0, lq0, 0, steps, -1.0, 1.0 / steps)
    jax.effects_barrier()
    assert min(seen) == 0.0  # this one did (so the record can see it)
    assert np.array_equal(got.fields, np.asarray(x1))
    poisoned = np.array(coeffs)
    poisoned[0] = np.nan  # evaluated, layer 0 would make every sample NaN
    xs, lqs = every(basis.fused.params, jnp.asarray(poisoned), x0, lq0, 0, steps, -1.0, 1.0 / steps, 1)
    assert np.array_equal(np.asarray(xs), np.asarray(x1)) and np.array_equal(np.asarray(lqs), np.asarray(lq1))
    assert np.array_equal(got.log_w, np.asarray(-jax.vmap(lambda y: path.value(y, 1.0))(x1) - lq1))
    xp, lqp = _plain_rk4(basis, jnp.asarray(coeffs), x0, lq0, steps)  # and the per-family RK4
    assert _rel(jnp.asarray(got.fields), xp) < 1e-12 and float(np.max(np.abs(np.asarray(x1) - x0))) > 0.1
    # a window from step 1 (layer 2 is not zero) and the reverse push (layer 0 comes last) use the shared program
    push = push_fn(basis, steps)
    xa, lqa = push(coeffs, x0[:5], lq0[:5], 0, 1)
    xb, lqb = push(coeffs, xa, lqa, 1, 1)
    assert _rel(xb, x1[:5]) < 1e-12 and _rel(lqb - lq0[:5], lq1[:5] - lq0[:5]) < 1e-12  # the same map, step by step
    push_fn(basis, steps, reverse=True)(coeffs, xb, lqb)
    assert [k for k in _CACHE if k[0] == "push"] == [("push", basis.fused.key, "float64")]
    clear_cache()  # the compiled pushes hold the recording evaluation


def test_non_fused_family_falls_back():
    """A basis of a family the fused path does not know keeps working (its own gradient and Laplacian)."""
    S = LatticeAction(PHI4_DENSITY, [6, 6])
    basis = LatticeBasis([lattice_basis(S.lattice, local_range=1).families[-1]])
    rng = np.random.default_rng(4)
    a, x = jnp.asarray(rng.normal(size=basis.n)), jnp.asarray(rng.normal(size=(6, 6)))
    g, lap = basis.gradient_and_laplacian(a, x)
    assert _rel(g, basis.gradient(a, x)) < RTOL
    assert abs(float(lap - basis.laplacian(a, x))) <= RTOL * abs(float(basis.laplacian(a, x)))


def test_constants_as_arguments_compile_once_and_change_nothing():
    """Two candidates of one structure (other taming width, base precision and zero mode) share every compiled
    function, and give the same layers, samples and weights as a solve compiled for the second one alone."""
    from pikflow.flow._compiled import clear_cache, misses
    from pikflow.lattice import solve_lattice

    shape, steps = (6, 6), 2
    S = LatticeAction(PHI4_DENSITY, list(shape))
    rng = np.random.default_rng(5)
    K = np.asarray(S.lattice.khat2()) + 0.3 + 0.05 * rng.random(shape)
    K = hermitian_part(K)  # K(k) = K(-k), as a sampled base needs

    def candidate(K, m0, tame):
        g = GaussianLatticeBase(K, m0=m0)
        path = LatticePath.matched(S, {"m2": -2.0, "lam": 2.0}, K, g.zero_mode_coupling)
        return path, default_basis(path, g, tame=tame), g

    def solve(cand):
        path, basis, g = cand
        return solve_lattice(path, basis, base=g, steps=steps, n_collocation=200, seed=1, progress=False)

    first, second = candidate(K, 0.2, 10.0), candidate(1.3 * K, 0.4, 5.0)
    clear_cache()
    solve(first)
    compiled = dict(misses)
    assert set(compiled) == {"assemble", "velocity", "push", "target"}
    shared = solve(second)
    assert dict(misses) == compiled  # no new compilation for the second candidate
    clear_cache()
    alone = solve(second)  # compiled with the second candidate's own numbers as the template
    assert _rel(jnp.asarray(shared.coeffs), jnp.asarray(alone.coeffs)) < RTOL
    key = jax.random.PRNGKey(3)
    a, b = shared.sample(key, 40), alone.sample(key, 40)
    assert _rel(jnp.asarray(a.fields), jnp.asarray(b.fields)) < RTOL
    assert _rel(jnp.asarray(a.log_w), jnp.asarray(b.log_w)) < RTOL
    # and the push with the constants baked in (the code before the constants became arguments)
    x0, lq0 = second[2].sample(key, 7)
    xf, lqf = jax.jit(_make_push(second[1], steps))(jnp.asarray(shared.coeffs), x0, lq0)
    xs, lqs = shared.push(x0, lq0)
    assert _rel(xs, xf) < RTOL
    assert _rel(lqs - lq0, lqf - lq0) < RTOL
    # float32 evaluation, float64 accumulation: the same flow to float32 rounding (eps 1.2e-7, amplified by
    # 4 * steps evaluations and by the action's O(V) sum in log w, here |log w| ~ 10)
    low = shared.sample(key, 40, precision="float32")
    assert 1e-9 < _rel(jnp.asarray(low.fields), jnp.asarray(a.fields)) < 1e-5
    assert low.log_w.dtype == np.float64
    assert float(np.max(np.abs(low.log_w - a.log_w))) < 1e-3
    with pytest.raises(pf.PikflowError, match="precision"):
        shared.sample(key, 4, precision="float16")
    with pytest.raises(pf.PikflowError, match="float32"):
        shared.sample(key, 4, precision="float32", logdet="exact")


def test_solve_sampling_and_pull_back_share_one_push_program():
    """The solve's single RK4 steps, sampling and the reverse pull-back run one compiled push program (one
    structure, one chunk shape), and a caller's arrays survive the donating push (issue #20)."""
    from pikflow.flow._compiled import _CACHE, clear_cache
    from pikflow.flow._lattice_flow import PUSH_BATCH
    from pikflow.lattice import solve_lattice

    S = LatticeAction(PHI4_DENSITY, [6, 6])
    path = LatticePath(S, {"m2": (1.0, -1.0), "lam": (0.0, 1.0)})
    g = GaussianLatticeBase.from_path(path)
    clear_cache()
    n = 2 * PUSH_BATCH + 44  # chunked: every call sees PUSH_BATCH configurations
    flow = solve_lattice(path, default_basis(path, g), base=g, steps=2, n_collocation=n, seed=2, progress=False)
    samples = flow.sample(jax.random.PRNGKey(1), n)
    fields = jnp.asarray(samples.fields[: PUSH_BATCH + 3])
    log_q = flow.log_density(fields)
    pushes = [fn for key, fn in _CACHE.items() if key[0] == "push"]
    assert len(pushes) == 1 and pushes[0]._cache_size() == 1
    assert np.all(np.isfinite(log_q)) and not fields.is_deleted()
    x0, lq0 = flow.base.sample(jax.random.PRNGKey(3), 5)
    x1, lq1 = flow.push(x0, lq0)
    assert not x0.is_deleted() and not lq0.is_deleted()  # push() copies before the donating program
    again = flow.push(x0, lq0)
    assert np.array_equal(again[0], x1) and np.array_equal(again[1], lq1)


def test_gaussian_candidate_with_a_zero_log_cosh_slot_shares_the_mixture_structure():
    """fit_lattice gives a Gaussian candidate the mixture's log cosh(bM) term at b = 0: its column is zero, so the
    flow is the one without it (samples and weights to rounding, coefficient 0), and the mixture candidate then
    compiles nothing new (issue #20)."""
    from pikflow.flow._compiled import clear_cache, misses
    from pikflow.lattice import solve_lattice

    S = LatticeAction(PHI4_DENSITY, [6, 6])
    values = {"m2": -2.0, "lam": 2.0}
    K = np.asarray(S.lattice.khat2()) + 0.4
    gauss, mix = GaussianLatticeBase(K), GaussianLatticeBase(K, m0=0.5)

    def solve(g, slot=False):
        path = LatticePath.matched(S, values, K, g.zero_mode_coupling)
        basis = default_basis(path, g, tame=5.0)
        if slot:
            basis = LatticeBasis([*basis.families, Magnetisation(S.lattice, (), log_cosh=0.0)])
        return solve_lattice(path, basis, base=g, steps=2, n_collocation=200, seed=1, progress=False)

    plain = solve(gauss)
    clear_cache()
    slotted = solve(gauss, slot=True)
    compiled = dict(misses)
    solve(mix)
    assert dict(misses) == compiled  # the mixture candidate reuses the Gaussian one's programs
    assert np.max(np.abs(slotted.coeffs[:, -1])) < 1e-12 * np.max(np.abs(slotted.coeffs))
    assert _rel(jnp.asarray(slotted.coeffs[:, :-1]), jnp.asarray(plain.coeffs)) < RTOL
    key = jax.random.PRNGKey(2)
    a, b = slotted.sample(key, 40), plain.sample(key, 40)
    assert _rel(jnp.asarray(a.fields), jnp.asarray(b.fields)) < RTOL
    assert _rel(jnp.asarray(a.log_w), jnp.asarray(b.log_w)) < RTOL
    with pytest.raises(pf.PikflowError, match=">= 0"):
        Magnetisation(S.lattice, (), log_cosh=-1.0)
