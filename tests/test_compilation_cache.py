"""The persistent compilation cache of `pikflow run` (pikflow.compilation_cache).

Checked in fresh processes, as a user meets it: the first run fills the directory, a second run finds its
programs there and writes the same results; ``--cache off`` (checked in-process) and an unusable directory leave no
cache and no error.
"""

import json
import os
import subprocess
import sys

import jax
import pytest

import pikflow as pf

CONFIG = """
[action]
lattice = [4, 4]
density = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"
[path]
m2 = -1.0
lam = 1.0
[lattice]
steps = 2
collocation = 100
select = 50
hmc_samples = 200
[sampling]
n = 200
"""


def _run(tmp_path, name, *extra, env=None):
    out = tmp_path / name
    cmd = [sys.executable, "-m", "pikflow", "run", str(tmp_path / "c.toml"), "--out", str(out), "--quiet", *extra]
    proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "results.json").read_text())


def test_a_second_run_finds_its_compilations(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    cache = tmp_path / "cache"
    first = _run(tmp_path, "a", "--cache", str(cache))
    assert first["time_power"] == 2.0  # fit_lattice's default clock, tau = t**2, reported
    entries = {p.name for p in cache.rglob("*") if p.is_file()}
    assert len(entries) >= 5, entries  # the HMC block, the solve's steps, the push, the selection ...
    second = _run(tmp_path, "b", env={"PIKFLOW_CACHE_DIR": str(cache)})
    assert {p.name for p in cache.rglob("*") if p.is_file()} >= entries
    assert second["ess"] == first["ess"] and second["observables"] == first["observables"]  # the same numbers


def test_cache_off_creates_nothing(tmp_path, monkeypatch):
    """``--cache off`` wins over ``PIKFLOW_CACHE_DIR`` and leaves no directory (checked in this process: a third
    subprocess run cost half a minute of the default test run for this one check); ``PIKFLOW_CACHE_DIR=off``
    alone gives no default directory either."""
    from pikflow._cache import default_cache_dir
    from pikflow.cli._main import _cache

    before = jax.config.jax_compilation_cache_dir
    off = tmp_path / "unused"
    monkeypatch.setenv("PIKFLOW_CACHE_DIR", str(off))
    try:
        _cache("off")
        _cache(" OFF ")
        assert not off.exists() and jax.config.jax_compilation_cache_dir == before
    finally:  # a broken _cache would have moved this worker's cache: put it back for the tests after this one
        jax.config.update("jax_compilation_cache_dir", before)
    monkeypatch.setenv("PIKFLOW_CACHE_DIR", "off")
    assert default_cache_dir() is None


def test_an_unusable_cache_directory_warns_and_runs_without(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="no compilation cache"):
        assert pf.compilation_cache(blocker / "cache") is None
