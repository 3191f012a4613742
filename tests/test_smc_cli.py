"""``[sampling] method = "smc"`` through ``pikflow run``: 0-D against quadrature, a lattice run, config errors."""

import json

import numpy as np
import pytest

from pikflow.cli import main

# a polynomial basis: the run checks SMC through the CLI, and SMC corrects the transport (the default sine
# basis is tested in tests/test_smc.py); its solve and SMC compile in ~15 s instead of ~60 s
ZERO_D = """
[action]
density = "m2/2*phi**2 + lam/4*phi**4"
[path]
m2 = [1.0, -2.0]
lam = [0.0, 0.5]
[basis]
kind = "polynomial"
[flow]
steps = 10
[sampling]
method = "smc"
[smc]
particles = 400
replicas = 8
[observables]
phi2 = "phi**2"
"""

LATTICE = """
[action]
lattice = [4, 4]
density = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"
[path]
m2 = [1.0, -1.0]
lam = [0.0, 1.0]
[lattice]
base = "free"
steps = 4
collocation = 200
[sampling]
method = "smc"
[smc]
particles = 300
replicas = 4
precision = "float32"
estimate = "before"
"""


def _run(tmp_path, text, name):
    (tmp_path / f"{name}.toml").write_text(text)
    out = tmp_path / name
    assert main(["run", str(tmp_path / f"{name}.toml"), "--out", str(out), "--quiet"]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_zero_d_smc_run_agrees_with_quadrature(tmp_path):
    out, r = _run(tmp_path, ZERO_D, "zero")
    assert r["sampler"] == "smc"
    ex = r["exact"]
    # replica errors with 8 replicas: t_7 pulls, 4 sigma is a 0.5% two-sided tail
    assert ex["phi2"]["deviation_sigma"] < 4
    assert abs(r["log_z"]["value"] - ex["log_z"]) < 4 * r["log_z"]["error"] + 1e-6  # far-tail offset, see test_smc
    assert set(r["smc"]["steps"]) >= {"ess_min", "resamplings", "acceptance", "unique_ancestors_min", "log_z"}
    assert len(r["path_observables"]) == 11 and "phi2" in r["path_observables"]["0.5"]
    assert (out / "smc.png").is_file() and (out / "flow" / "flow.json").is_file()


def test_zero_d_smc_refuses_an_observable_undefined_on_particles(tmp_path, capsys):
    """``log(phi)`` is NaN on the particles at phi < 0: the run stops with a clear error, not NaN estimates."""
    cfg = ZERO_D.replace('phi2 = "phi**2"', 'lg = "log(phi)"').replace("steps = 10", "steps = 2")
    (tmp_path / "c.toml").write_text(cfg)
    assert main(["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "the SMC estimates of ['lg'] are not finite" in capsys.readouterr().err


def test_lattice_smc_run_reports_observables_per_step(tmp_path):
    _, r = _run(tmp_path, LATTICE, "lat")
    assert r["sampler"] == "smc" and r["kind"] == "lattice"
    for name in ("abs_m", "chi", "binder"):
        v = r["observables"][name]
        assert np.isfinite(v["value"]) and v["error"] > 0
    assert len(r["path_observables"]) == 5
    assert r["ess"] > 0.5 and r["smc"]["settings"]["estimate"] == "before"  # [smc] estimate reached the sampler
    assert isinstance(r["warnings"], list)


@pytest.mark.parametrize(
    "extra, message",
    [
        ('[sampling]\nmethod = "rk4"\n[smc]\nparticles = 10\n', "add method"),
        ('[sampling]\nmethod = "smc"\n[smc]\nparticles = 1\n', "particles must be"),
        ('[sampling]\nmethod = "smc"\n[smc]\nparticle = 10\n', "did you mean 'particles'"),
        ('[sampling]\nmethod = "smc"\n[smc]\nfourier_mass = -1.0\n', "fourier_mass must be a positive mu^2"),
        ('[sampling]\nmethod = "smc"\n[smc]\nfourier_mass = "measured"\n', "or 'adaptive'"),
        ('[sampling]\nmethod = "smc"\n[smc]\nfourier_mass = "adaptive"\n', "is the mass of mcmc = 'fhmc' moves"),
        ('[sampling]\nmethod = "smc"\n[smc]\nmcmc = "foo"\n', "[smc] mcmc must be one of"),
        ('[sampling]\nmethod = "smc"\n[smc]\ntransport = "flow"\n', "[smc] transport must be one of"),
        ('[sampling]\nmethod = "smc"\n[smc]\nlogdet = "approx"\n', "[smc] logdet must be"),
        ('[sampling]\nmethod = "smc"\n[smc]\nstep_size = -1\n', "[smc] step_size must be"),
        ('[sampling]\nmethod = "smc"\n[smc]\nresample = 2\n', "[smc] resample must be"),
        ('[sampling]\nmethod = "smc"\n[smc]\nseed = -5\n', "[smc] seed must be"),
        ('[sampling]\nmethod = "smc"\n[smc]\nmcmc = "fhmc"\n', "is for lattice runs"),
        ('[sampling]\nmethod = "smc"\n[smc]\nprecision = "half"\n', "precision must be 'float64' or 'float32'"),
        ('[sampling]\nmethod = "smc"\n[smc]\nestimate = "during"\n', "estimate must be one of"),
    ],
)
def test_smc_config_errors(tmp_path, capsys, extra, message):
    base = ZERO_D.split("[sampling]")[0]
    (tmp_path / "bad.toml").write_text(base + extra)
    assert main(["run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.json").exists()


O2_FREE = """
[action]
lattice = [4, 4]
density = "(m2 + 2*d)/2*(phi1**2 + phi2**2) - sum_mu(phi1*shift(phi1, mu) + phi2*shift(phi2, mu))"
fields = ["phi1", "phi2"]
[path]
m2 = [1.0, 0.5]
[lattice]
base = "free"
steps = 4
collocation = 200
[sampling]
method = "smc"
[smc]
particles = 1000
replicas = 8
"""


def test_o2_lattice_smc_run_agrees_with_the_exact_free_field(tmp_path):
    """Two components: the vector magnetisation m_a ~ N(0, 1/(V m2)) per component, so
    <|m|> = sqrt(pi/(2 V m2)), chi = V(<|m|^2> - <|m|>^2) = (2 - pi/2)/m2 at m2 = 0.5 and
    binder = 1 - <|m|^4>/(3 <|m|^2>^2) = 1 - 8/12 = 1/3;
    within 4 replica errors (t_7 pulls: a 0.5% two-sided tail)."""
    _, r = _run(tmp_path, O2_FREE, "o2")
    assert r["sampler"] == "smc" and r["kind"] == "lattice"
    exact = {"abs_m": np.sqrt(np.pi / (2 * 16 * 0.5)), "chi": (2 - np.pi / 2) / 0.5, "binder": 1 / 3}
    for name, value in exact.items():
        v = r["observables"][name]
        assert v["error"] > 0 and abs(v["value"] - value) < 4 * v["error"], (name, v, value)
