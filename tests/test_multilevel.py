"""Multilevel sampling (block upsampling + zero-block-sum noise + SMC per level) against the exact free field.

Every level of a free field is Gaussian: log Z_fine = log Z_0 + log(Z_fine / Z_0) with
Z_0 = Z_coarse 2^{d V_c / 2} (2 pi sigma^2)^{(V_f - V_c) / 2} (the base's analytic normalisation), and
chi = (1 - 2/pi)/m2. Errors are the spread of 8 independent replicas; |deviation| < 4 sigma (t with 7
degrees of freedom: 0.5% per number; the seed is fixed).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pikflow as pf
import pikflow.lattice as pl
from pikflow.lattice._multilevel import block_mean, multilevel, noise_width, upsample

M2 = 0.5


def _target(L):
    return pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": M2, "lam": 0.0})


def _log_z(L):
    k = 2 * np.pi * np.fft.fftfreq(L)
    khat2 = (4 * np.sin(k / 2) ** 2)[:, None] + (4 * np.sin(k / 2) ** 2)[None, :]
    return 0.5 * L * L * np.log(2 * np.pi) - 0.5 * np.sum(np.log(M2 + khat2))


def test_upsample_and_block_mean_are_inverse():
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 6))
    np.testing.assert_allclose(block_mean(upsample(x, 2), 2), x, atol=1e-14)
    assert upsample(x, 2).shape == (3, 8, 12)
    z = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, 8))
    zeta = z - upsample(block_mean(z, 3), 3)
    np.testing.assert_allclose(block_mean(zeta, 3), 0.0, atol=1e-14)  # zero sum over every 2^3 block


def test_noise_width_matches_sampled_free_field():
    """sigma^2 of noise_width = the sampled block-fluctuation variance of the free field K = khat^2 + 1."""
    base = pl.GaussianLatticeBase(1.0 + pl.Lattice((8, 8)).khat2())
    x, _ = base.sample(jax.random.PRNGKey(2), 20000)
    zeta = x - upsample(block_mean(x, 2), 2)
    var = float(jnp.mean(zeta**2)) / (1 - 1 / 4)
    # 20000 x 48 noise dof: relative error of the variance ~ 1e-3 (correlated sites: allow 2%)
    assert abs(noise_width((8, 8)) ** 2 / var - 1) < 0.02


@pytest.mark.parametrize(
    "noise,mcmc", [("white", "hmc"), ("conditional", "hmc"), ("fourier", "hmc"), ("conditional", "fhmc")]
)
def test_free_field_hierarchy_is_exact(noise, mcmc):
    """Z_0 independent of the lift's own offset for white noise; for the conditional and the fourier lift (m_f^2
    and a tuned on the pool) its log_z0_offset, checked against dense matrices in test_levels.py. With
    Fourier-accelerated HMC moves (mass khat^2 + mu^2) too."""
    opts = {"noise": "white", "scale": 1.0, "steps": 10}
    if noise != "white":
        opts = {"noise": noise, "scale": "auto", "steps": 3}
    if mcmc == "fhmc":
        opts.update(mcmc="fhmc", fourier_mass=0.5)
    levels = multilevel(_target, [4, 8], particles=1000, replicas=8, coarsest="exact", progress=False, **opts)
    fine = levels[-1]
    assert fine.L == 8 and fine.ess > 0.5
    sigma = fine.sigma
    if noise == "white":
        log_z0 = _log_z(4) + 16 / 2 * np.log(4) + (64 - 16) / 2 * np.log(2 * np.pi * sigma**2)
    else:  # the tuned lift of a free field: m_f^2 near the target's, the base nearly exact
        # the fourier base's coarse marginal matches worse here (base ESS/N ~0.15: its coarse Nyquist modes carry
        # half the variance), but log Z and chi stay exact
        assert fine.lift["landscape"] and fine.base["ess"] > (0.5 if noise == "conditional" else 0.05), fine.base
        log_z0 = _log_z(4) + fine.lift["log_z0_offset"]
    est = log_z0 + fine.log_z.value
    assert abs(est - _log_z(8)) < 4 * fine.log_z.error, (est, _log_z(8), fine.log_z)
    chi = fine.observables["chi"]
    assert abs(chi.value - (1 - 2 / np.pi) / M2) < 4 * chi.error, chi


def test_sizes_must_double():
    with pytest.raises(pf.SamplingError, match="double"):
        multilevel(_target, [4, 12], progress=False)


ML_TOML = """
[action]
density = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))"
lattice = [8, 8]
[path]
m2 = [1.0, 0.5]
[multilevel]
coarsest = 4
particles = 200
steps = 2
noise = "conditional"
mass2 = 0.5
"""


def test_fourier_noise_in_toml(tmp_path):
    """[multilevel] noise = "fourier" is accepted and reaches multilevel()."""
    from pikflow.cli._config import load_config
    from pikflow.cli._multilevel import multilevel_settings

    (tmp_path / "f.toml").write_text(ML_TOML.replace('noise = "conditional"', 'noise = "fourier"'))
    assert multilevel_settings(load_config(tmp_path / "f.toml"))["noise"] == "fourier"
    (tmp_path / "h.toml").write_text(ML_TOML + 'mcmc = "fhmc"\nfourier_mass = 2.0\n')
    got = multilevel_settings(load_config(tmp_path / "h.toml"))
    assert got["mcmc"] == "fhmc" and got["fourier_mass"] == 2.0


def test_hmc_section_reaches_the_coarsest_level(tmp_path, monkeypatch):
    """[hmc] chains, step_size, start, leapfrog_steps, thermalisation and jitter of a [multilevel] run are the
    coarsest level's HMC (they were ignored before); [hmc] n, which the particles fix there, is refused."""
    import pikflow.lattice._multilevel as ml
    from pikflow import ConfigError
    from pikflow.cli._config import load_config
    from pikflow.cli._multilevel import multilevel_settings

    hmc = "[hmc]\nchains = 4\nstep_size = 0.2\nstart = 'ordered'\nleapfrog_steps = 7\n"
    hmc += "thermalisation = 30\njitter = 0.1\n"
    (tmp_path / "h.toml").write_text(ML_TOML + hmc)
    got = multilevel_settings(load_config(tmp_path / "h.toml"))
    assert got["hmc_chains"] == 4 and got["hmc_step"] == 0.2
    assert got["hmc_options"] == {"start": "ordered", "n_leapfrog": 7, "n_therm": 30, "jitter": 0.1}

    seen = {}

    class Stop(Exception):
        pass

    def fake_hmc(path, key, n, **kw):
        seen.update(kw, n=n)
        raise Stop

    monkeypatch.setattr(ml, "hmc", fake_hmc)
    with pytest.raises(Stop):
        multilevel(_target, [4, 8], particles=40, replicas=2, progress=False, **{k: v for k, v in got.items()
                   if k in ("hmc_chains", "hmc_step", "hmc_options")})  # fmt: skip
    assert seen["n_chains"] == 8 and seen["step"] == 0.2 and seen["start"] == "ordered" and seen["n_leapfrog"] == 7
    assert seen["n"] == 2 * 4 * 10  # replicas x chains x max(particles // chains, 10)

    (tmp_path / "n.toml").write_text(ML_TOML + "[hmc]\nn = 100\n")
    with pytest.raises(ConfigError, match="does not apply"):
        load_config(tmp_path / "n.toml")


def test_multilevel_from_toml(tmp_path):
    """A [multilevel] run writes levels with ESS, seconds and observables; chi of the free field within errors."""
    import json

    from pikflow.cli import main

    (tmp_path / "ml.toml").write_text(ML_TOML)
    assert main(["run", str(tmp_path / "ml.toml"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    r = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [lev["L"] for lev in r["levels"]] == [4, 8] and r["target"] == {"m2": 0.5}
    assert 0 < r["levels"][1]["base_ess"] <= 1 and r["levels"][1]["seconds"] > 0
    assert r["levels"][1]["lift"]["noise"] == "conditional" and r["levels"][1]["lift"]["mass2"] == 0.5
    # the level's proposal checked by default: IMH acceptance and the hole check against 1000 HMC configurations
    assert 0 < r["levels"][1]["imh_acceptance"] <= 1 and 0 < r["levels"][1]["target_ess"] <= 1, r["levels"][1]
    assert set(r["observables"]) == {"abs_m", "chi", "binder"}
    # the coarsest level is HMC on the 4x4 free field (Gamma-method errors): chi = (1 - 2/pi)/m2 exactly
    chi = r["levels"][0]["observables"]["chi"]
    assert abs(chi["value"] - (1 - 2 / np.pi) / M2) < 4 * chi["error"], chi


@pytest.mark.parametrize(
    "section,match",
    [
        ("coarsest = 3", "halved"),
        ("sigma = -1", "sigma"),
        ("sigma = inf", "positive finite number"),
        ("mcmc = 'gibbs'", "mcmc"),
        ("mcmc = 'fhmc'\nfourier_mass = -1", "fourier_mass"),
        ("replicas = 1", "replicas"),
        ("coarsest = 0", "at least 3"),
        ("coarsest = -4", "at least 3"),
        ("coarsest = 2", "at least 3"),
        ("seed = -1", "seed must be an integer in"),
        ("particles = 1000\nreplicas = 100\nsteps = 100000\nmcmc_steps = 1000", "would not end"),
        ("particles = 100000000", "particles"),
        ("noise = 'pink'", "noise"),
        ("mass2 = 0", "mass2"),
        ("mass2 = inf", "mass2"),
        ("scale = 1e400", "scale"),
        ("scale = 'big'", "scale"),
        ("transport = 'flow'", "transport"),
        ("collocation = 5", "collocation"),
        ("hole_check = -5", "hole_check"),
        ("hole_check = 'yes'", "hole_check"),
    ],
)
def test_bad_multilevel_sections(section, match, tmp_path):
    from pikflow import ConfigError
    from pikflow.cli._config import load_config

    (tmp_path / "bad.toml").write_text(ML_TOML.split("[multilevel]")[0] + "[multilevel]\n" + section + "\n")
    with pytest.raises(ConfigError, match=match):
        load_config(tmp_path / "bad.toml")


def test_sections_a_multilevel_run_does_not_read_are_refused(tmp_path):
    from pikflow import ConfigError
    from pikflow.cli._config import load_config

    for extra, match in (("[observables]\nphi2 = 'phi**2'\n", r"\[observables\] is not used by a \[multilevel\]"),
                         ("[smc]\nparticles = 10\n", r"\[smc\] is not used by a \[multilevel\]"),
                         ("[sampling]\nmethod = 'smc'\n", r"\[sampling\] method is not used")):  # fmt: skip
        (tmp_path / "bad.toml").write_text(ML_TOML + extra)
        with pytest.raises(ConfigError, match=match):
            load_config(tmp_path / "bad.toml")


def test_bench_multilevel_json(tmp_path):
    """`pikflow bench multilevel` end to end on a free field 4 -> 8: the hierarchy with its per-level checks, the
    single-level flow and HMC; the free 8x8 chi = (1 - 2/pi)/m2 exact within 4 sigma for both samplers."""
    import json

    from pikflow.cli import main

    out = tmp_path / "ml.json"
    args = ["--sizes", "4", "8", "--m2", str(M2), "--lam", "0", "--particles", "200", "--replicas", "4"]
    args += ["--steps", "3", "--hole-check", "200", "--single-n", "500", "--single-basis", "lean"]
    args += ["--single-steps", "2", "--reference", "4000"]
    assert main(["bench", "multilevel", *args, "--quiet", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    fine = r["levels"][-1]
    assert fine["L"] == 8 and 0 < fine["imh_acceptance"] <= 1 and 0 < fine["target_ess"] <= 1, fine
    single = r["single_level"]
    # the matched Gaussian base of a free field is the target: ESS/N 1 from both sides
    assert single["ess"] > 0.99 and single["target_ess"] > 0.99 and single["imh_acceptance"] > 0.95, single
    exact = (1 - 2 / np.pi) / M2
    for chi in (fine["observables"]["chi"], single["observables"]["chi"]):
        assert abs(chi["value"] - exact) < 4 * chi["error"], (chi, exact)
    assert all(v > 0 for v in single["hmc_over_single_level_at_equal_errors"].values())
    assert single["setup_seconds"] > 0 and r["peak_memory_mb"] > 0
    # with the set-up: also the compiling first calls of the draw and the estimates, as in `bench lattice`
    total = single["sample_seconds"] + single["setup_seconds"] + single["first_call_extra_seconds"]
    assert single["first_call_extra_seconds"] > 0
    at_equal = single["hmc_over_single_level_at_equal_errors"]
    for k, v in single["hmc_over_single_level_with_setup"].items():
        assert abs(v * total / (at_equal[k] * single["sample_seconds"]) - 1) < 1e-12
    # --hmc-leapfrog auto (the default): the finest level's reference runs the pilot's fastest length
    h = r["hmc"]
    assert h["leapfrog"] == max(h["leapfrog_pilot"], key=lambda row: row["independent_per_second"])["leapfrog"]
    tried = [row["leapfrog"] for row in h["leapfrog_pilot"]]  # 60, 90, 140 too while the longest is the fastest
    assert tried[:4] == [10, 20, 30, 40] and tried[4:] == [60, 90, 140][: len(tried) - 4]
    assert h["leapfrog_pilot_seconds"] > 0
