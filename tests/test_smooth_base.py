"""The smooth matched base (``smooth_base``) and merged Fourier orbits (``fourier_bins``) in fit_lattice.

Merged orbits cannot carry each orbit's statistical error from the base to the target, so a large
lattice needs a matched base whose G(k) is a smooth fit, not a per-orbit estimate. Checked: the fit
is exact on a polynomial 1/G and recovers the exact free propagator from free-field samples far
better than the per-orbit estimate; the options reach the flow (fit_lattice, TOML, results.json);
a binned flow on a smooth base stays exact (log Z of a free field) and agrees with HMC; bad
input is refused with a message that says what to change.
"""

import jax
import numpy as np
import pytest

import pikflow as pf
import pikflow.lattice as pl
from pikflow.cli import main
from pikflow.cli._config import ConfigError, load_config

FREE = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))"


def test_smooth_fit_is_exact_on_a_polynomial_and_keeps_the_zero_mode():
    lat = pl.Lattice((8, 12))
    s = [4 * np.sin(k / 2) ** 2 for k in np.meshgrid(*[2 * np.pi * np.arange(n) / n for n in lat.shape], indexing="ij")]
    inv = 0.3 + 1.1 * s[0] + 0.9 * s[1] - 0.05 * s[0] * s[1] + 0.02 * s[0] ** 2
    G = 1.0 / inv
    G[0, 0] = 17.0  # the zero mode is the data's own (mixture, connected variance)
    out, info = pl.smooth_propagator(G, lat, 2)
    np.testing.assert_allclose(out, G, rtol=1e-10)
    assert info["rms_deviation"] < 1e-10 and info["degree"] == 2 and len(info["coefficients"]) == 6
    low, _ = pl.smooth_propagator(G, lat, 1)  # one degree short: not exact, zero mode still kept
    assert low[0, 0] == 17.0 and np.abs(low / G - 1).max() > 1e-4


def test_smooth_base_recovers_the_exact_free_propagator():
    """Exact free-field draws at 16x16: the per-orbit estimate scatters by ~ 1/sqrt(n |orbit|) (a few
    percent at n = 400); a degree-1 fit (3 coefficients from V n numbers) is exact up to ~ 1/sqrt(V n)."""
    S = pl.LatticeAction(FREE, [16, 16])
    K = np.asarray(S.lattice.khat2()) + 0.5
    x, _ = pl.GaussianLatticeBase(K).sample(jax.random.PRNGKey(0), 400)
    raw = np.asarray(pl.matched_base(x).precision)
    smooth = np.asarray(pl.matched_base(x, smooth=1).precision)
    nz = np.arange(K.size)[1:]
    err_raw = np.abs(raw.flat[nz] / K.flat[nz] - 1)
    err_smooth = np.abs(smooth.flat[nz] / K.flat[nz] - 1)
    assert err_smooth.max() < 0.02  # ~ 0.3% standard error; 0.02 is far in the tail
    assert np.sqrt(np.mean(err_smooth**2)) < np.sqrt(np.mean(err_raw**2)) / 4
    assert smooth.flat[0] == raw.flat[0]  # the zero mode is not smoothed


def test_bad_smoothing_and_binning_input_is_refused():
    lat = pl.Lattice((6, 6))
    G = np.ones((6, 6))
    for bad in (0, 9, 2.5, True):
        with pytest.raises(pf.PikflowError, match="degree"):
            pl.smooth_propagator(G, lat, bad)
    with pytest.raises(pf.PikflowError, match="positive"):
        pl.smooth_propagator(-G, lat, 2)
    # an action without an axis reflection: its G(k) is not a function of the khat_mu^2
    tilted = pl.LatticeAction("(m2 + 2*d)/2*phi**2 - phi*shift(phi, 0) - phi*shift(shift(phi, 0), 1)", [6, 6])
    sym = tilted.symmetry()
    assert not all(sym.reflections)
    with pytest.raises(pf.PikflowError, match="reflection"):
        pl.smooth_propagator(G, lat, 2, sym)
    with pytest.raises(pf.PikflowError, match="one field component"):
        pl.matched_base(np.ones((4, 2, 6, 6)), components=2, smooth=2)
    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [4, 4]), {"m2": -1.0, "lam": 1.0})
    with pytest.raises(pf.PikflowError, match="smooth_base must be"):
        pl.fit_lattice(path, smooth_base=0, progress=False)
    with pytest.raises(pf.PikflowError, match="matched base"):
        pl.fit_lattice(path, base="free", smooth_base=2, progress=False)
    with pytest.raises(pf.PikflowError, match="fourier_bins must be"):
        pl.fit_lattice(path, fourier_bins=0, progress=False)
    fixed = pl.lattice_basis(path.lattice, local_range=None)
    with pytest.raises(pf.PikflowError, match="preset basis"):
        pl.fit_lattice(path, fourier_bins=3, basis=fixed, progress=False)


def test_binned_flow_on_a_smooth_base_is_exact_on_a_free_field():
    """8x8 free field (m^2 = 0.3): the matched path from the degree-1 smooth base to the target, with the
    Fourier orbits in 3 groups. The weights are exact for the applied map, so log Z is the determinant's."""
    S = pl.LatticeAction(FREE, [8, 8])
    path = pl.LatticePath(S, {"m2": 0.3})
    flow = pl.fit_lattice(path, steps=3, fourier_bins=3, smooth_base=1, hmc_samples=800, progress=False)
    assert flow.info["fourier_bins"] == 3 and flow.info["smooth_base"] == 1
    fam = [f for f in flow.basis.families if isinstance(f, pl.FourierTwoPoint)][0]
    assert fam.bins == 3 and fam.n == 4
    s = flow.sample(jax.random.PRNGKey(1), 4000)
    K = np.asarray(S.lattice.khat2()) + 0.3
    exact = 0.5 * K.size * np.log(2 * np.pi) - 0.5 * np.sum(np.log(K))
    lz = s.log_z()
    assert abs(lz.value - exact) < 4 * lz.error + 1e-9, (lz, exact)
    assert s.ess() > 0.9


def test_toml_keys_reach_the_flow_and_results(tmp_path):
    text = f"""
[action]
lattice = [4, 4]
density = "{pl.PHI4_DENSITY}"
[path]
m2 = -1.0
lam = 1.0
[lattice]
steps = 2
collocation = 100
hmc_samples = 200
select = 50
basis = "short"
fourier_bins = 3
smooth_base = 2
[sampling]
n = 200
"""
    (tmp_path / "run.toml").write_text(text)
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "run.toml"), "--out", str(out), "--quiet"]) == 0
    import json

    r = json.loads((out / "results.json").read_text())
    # 3 groups and k = 0
    assert r["fourier_bins"] == 3 and r["smooth_base"] == 2 and "FourierTwoPoint[4]" in r["basis"]
    for bad, match in (
        ("smooth_base = 9", "smooth_base is 'auto' or a degree from 0 to 8"),
        ("smooth_base = -1", "smooth_base is 'auto'"),
        ('fourier_bins = "many"', "fourier_bins is 'auto' or groups >= 0"),
        ('smooth_base = 2\nbase = "free"', "smooths the matched base"),
        ("fourier_bins = 3\npowers = [4]", "drop the basis keys"),
    ):
        (tmp_path / "bad.toml").write_text(text.replace("fourier_bins = 3\nsmooth_base = 2", bad))
        with pytest.raises(ConfigError, match=match):
            load_config(tmp_path / "bad.toml")


def test_auto_merges_the_orbits_of_large_lattices_only():
    """``"auto"``: lattices up to 32x32 keep one coefficient per orbit (their measured flows unchanged);
    64x64 (561 orbits) and 128x128 (2145) get 64 groups on a degree-3 smooth base; a free base is not
    smoothed, a basis of one's own or a multi-component action is not binned."""
    from pikflow.lattice._fit import AUTO_BIN_ABOVE, _resolve_binning

    def path(shape, density=pl.PHI4_DENSITY, **values):
        return pl.LatticePath(pl.LatticeAction(density, list(shape)), values or {"m2": -1.0, "lam": 1.0})

    assert len(path((32, 32)).symmetry().orbits()[1]) - 1 <= AUTO_BIN_ABOVE
    assert _resolve_binning(path((32, 32)), "matched", None, "auto", "auto") == (None, None)
    assert _resolve_binning(path((64, 64)), "matched", None, "auto", "auto") == (64, 3)
    assert _resolve_binning(path((128, 128)), "matched", None, "auto", "auto") == (64, 3)
    assert _resolve_binning(path((128, 128)), "matched", "lean", "auto", "auto") == (64, 3)
    assert _resolve_binning(path((128, 128)), "free", None, "auto", "auto") == (64, None)
    assert _resolve_binning(path((128, 128)), "matched", lambda p, b: None, "auto", "auto") == (None, None)
    assert _resolve_binning(path((128, 128)), "matched", None, 16, "auto") == (16, 3)
    assert _resolve_binning(path((128, 128)), "matched", None, None, "auto") == (None, None)
    o2 = "(m2 + 2*d)/2*(phi1**2 + phi2**2) - sum_mu(phi1*shift(phi1, mu) + phi2*shift(phi2, mu))"
    assert _resolve_binning(path((128, 128), o2, m2=1.0), "matched", None, "auto", "auto") == (None, None)
