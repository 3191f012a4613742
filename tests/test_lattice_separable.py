"""Smoothing by one matrix per axis (``smoothing="lattice"``, the ``"separable"`` preset; issue #20).

The references are the per-family formulas (one complex FFT per family and use) and the Fourier
filtering itself: the matrices must give the same numbers to float64 rounding, and they must be used
exactly where the filters are products over the axes and the lattice is small.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pikflow as pf  # (float64)
import pikflow.lattice as pl
from pikflow.lattice import PHI4_DENSITY, GaussianLatticeBase, LatticeAction, LatticePath
from pikflow.lattice._basis import family_from_spec
from pikflow.lattice._fused import FusedEvaluator
from pikflow.lattice._separable import SEPARABLE_MAX_SIDE, axis_factors, hermitian_part, smooth, unsmooth

RTOL = 1e-10


def _rel(new, old):
    return float(jnp.max(jnp.abs(new - old)) / jnp.maximum(jnp.max(jnp.abs(old)), 1e-300))


def _path_and_base(shape, seed=1):
    S = LatticeAction(PHI4_DENSITY, list(shape))
    rng = np.random.default_rng(seed)
    K = np.asarray(S.lattice.khat2()) + 0.3 + 0.05 * rng.random(shape)  # not a product over the axes
    K = hermitian_part(K)  # K(k) = K(-k), as the base requires
    g = GaussianLatticeBase(K, m0=0.2)
    return LatticePath.matched(S, {"m2": -2.0, "lam": 2.0}, K, g.zero_mode_coupling), g


@pytest.mark.parametrize("shape", [(5, 6), (3, 4, 5)])
def test_matrices_reproduce_the_fourier_filters(shape):
    rng = np.random.default_rng(0)
    ks = np.meshgrid(*[2 * np.pi * np.fft.fftfreq(n) for n in shape], indexing="ij")
    axes = tuple(range(1, len(shape) + 1))
    # products over the axes of even factors (so their Hermitian part, what the real transforms apply, is one too)
    filters = np.stack(
        [np.prod([np.exp(-s * (1 - np.cos(k))) * (1 + 0.1 * np.cos(2 * k)) for k in ks], 0) for s in (0.2, 1)]
    )
    mats = axis_factors(filters, len(shape))
    assert mats is not None and [m.shape for m in mats] == [(2, n, n) for n in shape]
    mats = [jnp.asarray(m) for m in mats]
    x, inner = rng.normal(size=shape), rng.normal(size=(2, *shape))
    ref = np.real(np.fft.ifftn(filters * np.fft.fftn(x)[None], axes=axes))
    np.testing.assert_allclose(smooth(mats, jnp.asarray(x)), ref, rtol=0, atol=1e-13)
    back = np.sum(np.real(np.fft.ifftn(filters * np.fft.fftn(inner, axes=axes), axes=axes)), axis=0)
    np.testing.assert_allclose(unsmooth(mats, jnp.asarray(inner)), back, rtol=0, atol=1e-13)
    # odd factors: the Hermitian part is no product over the axes
    odd = np.prod([np.exp(0.3 * np.sin(k)) for k in ks], 0)[None]
    assert axis_factors(odd, len(shape)) is None
    # not a product over the axes, or too long an axis: None (the transforms)
    assert axis_factors(filters + 0.01 * rng.random(filters.shape), len(shape)) is None
    assert axis_factors(np.ones((1, SEPARABLE_MAX_SIDE + 1, 4)), 2) is None
    assert axis_factors(np.ones((1, SEPARABLE_MAX_SIDE, 4)), 2) is not None


@pytest.mark.parametrize("shape", [(5, 6), (4, 3, 5)])
def test_separable_evaluation_matches_the_families(shape):
    path, g = _path_and_base(shape)
    separable = pl.default_basis(path, g, tame=5.0, smoothing="lattice")
    precision = pl.default_basis(path, g, tame=5.0)
    assert FusedEvaluator(separable).matrices is not None
    assert FusedEvaluator(precision).matrices is None  # smoothing="precision" (K_0): the transforms
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(4, *shape)))
    a = jnp.asarray(rng.normal(size=separable.n))
    g_old = jax.vmap(separable.gradient, (None, 0))(a, x)
    l_old = jax.vmap(separable.laplacian, (None, 0))(a, x)
    g_new, l_new = jax.vmap(separable.gradient_and_laplacian, (None, 0))(a, x)
    assert _rel(g_new, g_old) < RTOL and _rel(l_new, l_old) < RTOL
    # the widths still come from the base's precision; only the filters change
    for old, new in zip(precision.families, separable.families, strict=True):
        if isinstance(new, pl.SmoothedPowers):
            assert new.smoothing == "lattice" and new.scales == old.scales
            np.testing.assert_allclose(np.asarray(new.filters)[0], np.exp(-new.scales[0] * path.lattice.khat2()))


def test_smoothing_survives_the_spec_and_bad_values_fail():
    path, g = _path_and_base((4, 4))
    basis = pl.preset_basis("separable", path, g)
    smoothed = [f for f in basis.families if isinstance(f, pl.SmoothedPowers)]
    assert len(smoothed) == 2
    for fam in smoothed:
        back = family_from_spec(fam.spec(), path.lattice)
        assert back.smoothing == "lattice"
        np.testing.assert_array_equal(np.asarray(back.filters), np.asarray(fam.filters))
    assert "smoothing" not in pl.preset_basis("lean", path, g).families[2].spec()
    with pytest.raises(pf.PikflowError, match="smoothing must be one of"):
        pl.SmoothedPowers(path.lattice, (0.5,), (4,), smoothing="separable")


def test_separable_preset_flow_is_exact_on_a_free_field():
    """fit_lattice(basis="separable") between two free masses: the two-point term carries the exact kernel."""
    S = LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", [6, 6])
    path = LatticePath(S, {"m2": (1.0, 0.2)})
    flow = pl.fit_lattice(path, base="free", basis="separable", steps=4, n_collocation=300, progress=False)
    assert flow.info["basis_preset"] == "separable"
    assert flow.basis.fused.matrices is not None
    samples = flow.sample(2000, seed=1, progress=False)
    assert samples.ess > 0.999
    # the free field's <phi^2> per site, exact from its propagator
    G = 1.0 / (np.asarray(S.lattice.khat2()) + 0.2)
    phi2 = np.mean(np.asarray(samples.fields) ** 2, axis=tuple(range(1, 3)))
    w = np.exp(samples.log_w - np.max(samples.log_w))
    est = float(np.sum(w * phi2) / np.sum(w))
    err = float(np.std(phi2) / np.sqrt(2000))
    assert abs(est - G.mean()) < 4 * err
    # the bench's profile of one evaluation names the matrices, not transforms, for this basis
    from pikflow.bench._latcost import evaluation_profile
    from pikflow.flow import push_batch

    profile = evaluation_profile(flow, repeats=1, configurations=4 * push_batch(flow.basis))
    assert profile["batch"] == push_batch(flow.basis) and profile["calls"] == 4  # the push's batch by default
    parts = profile["us_per_configuration"]
    assert any("by matrices" in k for k in parts) and not any("batched irfftn" in k for k in parts)
    assert all(v >= 0 for v in parts.values()) and parts["whole evaluation"] > 0


def test_enrichments_of_a_separable_basis_stay_separable():
    """The refinement's candidate families smooth like the basis, so an enriched separable basis keeps its matrices."""
    from pikflow.lattice._enrichments import basis_enrichments

    path, g = _path_and_base((6, 6))
    for preset, separable in (("separable", True), ("lean", False)):
        basis = pl.preset_basis(preset, path, g)
        extra = basis_enrichments(basis, path, g)
        assert extra and all(f.smoothing == ("lattice" if separable else "precision") for f in extra)
        enriched = pl.LatticeBasis([*basis.families, *extra])
        assert (enriched.fused.matrices is not None) is separable


def test_evaluation_profile_of_an_o2_flow():
    """The bench's profile works for O(n) fields too (their per-family evaluator has no filters or matrices)."""
    from pikflow.bench._latcost import evaluation_profile

    density = (
        "(m2 + 2*d)/2*(phi1**2 + phi2**2) - sum_mu(phi1*shift(phi1, mu) + phi2*shift(phi2, mu))"
        " + lam/4*(phi1**2 + phi2**2)**2"
    )
    path = LatticePath(LatticeAction(density, [4, 4]), {"m2": -1.0, "lam": 1.0})
    flow = pl.fit_lattice(path, steps=2, n_collocation=300, hmc_samples=500, select=200, progress=False)
    parts = evaluation_profile(flow, batch=16, repeats=1, configurations=16)["us_per_configuration"]
    assert parts["whole evaluation"] > 0 and not any("smoothing" in k for k in parts)


def test_several_devices_smooth_by_transforms(tmp_path):
    """On several devices the separable basis uses the transforms (XLA's CPU runtime refused the matrices there)."""
    import os
    import subprocess
    import sys

    code = (
        "import jax, numpy as np, pikflow.lattice as pl\n"
        "from pikflow.lattice._fused import FusedEvaluator\n"
        "S = pl.LatticeAction(pl.PHI4_DENSITY, [4, 4]); K = np.asarray(S.lattice.khat2()) + 0.5\n"
        "g = pl.GaussianLatticeBase(K); p = pl.LatticePath.matched(S, {'m2': -1.0, 'lam': 1.0}, K, 0.0)\n"
        "print(jax.device_count(), FusedEvaluator(pl.preset_basis('separable', p, g)).matrices is None)\n"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["2", "True"]
