"""The ``pikflow`` command: run on a small config, results.json content, config errors."""

import json

import numpy as np
import pytest

import pikflow as pf
from pikflow.cli import main

SMALL = """
[action]
density = "m2/2*phi**2 + lam/4*phi**4"
[path]
m2 = [1.0, -2.0]
lam = [0.0, 0.5]
[flow]
steps = 10
[basis]
kind = "sine"
n = 20
max_frequency = 5.0
[sampling]
n = 20000
seed = 1
[observables]
absphi = "Abs(phi)"
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    (d / "c.toml").write_text(SMALL)
    assert main(["run", str(d / "c.toml"), "--out", str(d / "out"), "--quiet"]) == 0
    return d / "out"


def test_results_json(run_dir):
    r = json.loads((run_dir / "results.json").read_text())
    for key in (
        "ess",
        "imh_acceptance",
        "n_samples",
        "log_z",
        "observables",
        "path_observables",
        "layer_residuals",
        "solve_seconds",
        "sample_seconds",
    ):
        assert key in r, key
    assert r["n_samples"] == 20000
    assert len(r["layer_residuals"]) == 21
    assert set(r["log_z"]) == {"value", "error"}
    ref = pf.exact.QuadratureReference.phi4()
    est = r["observables"]["absphi"]
    assert abs(est["value"] - ref.expectation(1.0, np.abs)) < 4 * est["error"]
    mid = r["path_observables"]["0.5"]["absphi"]
    assert abs(mid["value"] - ref.expectation(0.5, np.abs)) < 4 * mid["error"]
    assert r["ess"] > 0.999
    assert r["exact"]["kernel_t1_max_rel_error"] < 1e-3
    assert r["target_ess"] > 0.99 and r["warnings"] == []  # the hole check, from exact samples of the target
    for name in ("kernel_t1.png", "histogram.png", "residuals.png"):
        assert (run_dir / name).stat().st_size > 1000
    flow = pf.load(run_dir / "flow")
    assert flow.steps == 10


@pytest.mark.parametrize(
    "text, message",
    [
        ("[action]\ndensity='phi**2'\n[path]\n[flow]\nstepz=3\n", "did you mean 'steps'"),
        ("[action]\ndensity='phi**2'\n[path]\n[sampler]\nn=3\n", "unknown section"),
        ("[action]\ndensity='m2*phi**2'\n[path]\nm2=[1.0, 2.0]\n[flow]\nsteps='many'\n", "positive integer or 'auto'"),
        ("[action]\ndensity='m2*phi**2'\n[path]\nm2=[1.0, 2.0]\n[flow]\nsteps=2.5\n", "must be an integer"),
        ("[path]\nm2=[1.0, 2.0]\n", r"\[action\] is missing"),
        ("[action]\ndensity='m2*phi**2 +'\n[path]\nm2=[1.0, 2.0]\n", "cannot parse"),
        ("[action]\ndensity='m2*phi**2'\n[path]\nm3=[1.0, 2.0]\n", "unknown coupling"),
        ("[action\ndensity='x'", "not valid TOML"),
        (
            "[action]\ndensity='m2*phi**2'\n[path]\nm2=[1.0, 2.0]\n[flow]\nfrequency_range='wide'\n",
            r"\[flow\] frequency_range must be 'fixed' or 'auto'",
        ),
        (
            "[action]\ndensity='m2*phi**2'\n[path]\nm2=[1.0, 2.0]\n[refine]\ncentres_at='worst'\n",
            r"\[refine\] centres_at must be 'residual' or 'missed'",
        ),
        (
            "[action]\ndensity='m2*phi**2'\n[path]\nm2=[1.0, 2.0]\n[basis]\nkind='polynomial'\nn=5\n",
            r"\[basis\] bad options for the polynomial basis .*it takes \['degree', 'parity'\]",
        ),
        ("[action]\ndensity='m2*phi**2'\n[path]\nm2=[1.0, 2.0]\n[basis]\nparity='odd'\n", r"\[basis\].*needs its kind"),
        (
            "[action]\ndensity='m2*phi**2'\n[path]\nm2=[1.0, 2.0]\n[basis]\nkind='custom'\nfunctions=[1, 2]\n",
            r"\[basis\] functions must be SymPy strings",
        ),
    ],
)
def test_config_errors(tmp_path, capsys, text, message):
    (tmp_path / "bad.toml").write_text(text)
    assert main(["run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "pikflow: error:" in err
    import re

    assert re.search(message, err), err


def test_missing_config_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bytes.toml").write_bytes(b'[action]\ndensity = "phi**2 \xff"\n')
    assert main(["run", str(tmp_path / "bytes.toml"), "--quiet"]) == 2
    assert "is not a UTF-8 text file (byte 0xff at position 27)" in capsys.readouterr().err
    assert main(["run", str(tmp_path), "--quiet"]) == 2
    assert "is a directory, not a configuration file" in capsys.readouterr().err
    (tmp_path / "wrong.toml").write_text("[action]\ndensity = 'phi**2'\n[sampling]\nmagnetisation = [4]\n")
    assert main(["run", str(tmp_path / "wrong.toml"), "--quiet"]) == 2
    assert "unknown key 'magnetisation' in [sampling] (it is a key of [lattice])" in capsys.readouterr().err


def test_examples_are_valid():
    from pikflow.cli._config import EXAMPLES, build, example_path, load_config

    for name in EXAMPLES:
        if "lattice" in name:  # lattice examples are checked in test_lattice_cli.py
            continue
        path, opts, sampling, observables = build(load_config(example_path(name)))
        assert sampling["n"] > 0 and observables


def test_frequency_range_and_centres_at_reach_solve_and_refine(monkeypatch):
    """[flow] frequency_range and [refine] centres_at / n_missed are the keywords of solve() and refine()."""
    from pikflow.cli._config import build, refine_options

    data = {
        "action": {"density": "m2/2*phi**2"},
        "path": {"m2": [1.0, 2.0]},
        "flow": {"frequency_range": "auto"},
        "refine": {"centres_at": "missed", "n_missed": 50},
    }
    built = build(data)
    opts = built[1]
    assert opts["frequency_range"] == "auto"
    ro = refine_options(data)
    assert ro["centres_at"] == "missed" and ro["n_missed"] == 50
    import sys

    from pikflow.cli._main import _refine

    refine_module = sys.modules["pikflow.refine"]  # the subpackage (pikflow.refine is also the function)

    seen = {}

    class Stop(Exception):
        pass

    def fake_refine(flow, **kw):  # records what the CLI passes, then stops before any work
        seen.update(kw)
        raise Stop

    monkeypatch.setattr(refine_module, "refine", fake_refine)
    with pytest.raises(Stop):
        _refine(object(), ro, seed=0, n_ess=10, progress=False)
    assert seen["centres_at"] == "missed" and seen["n_missed"] == 50
