"""Per-layer checkpoints (a killed solve resumes bit for bit) and the solvers on lattice layers (issue #13).

* ``solve_system``: the direct, Levenberg-Marquardt and Adam solves of a linear layer against
  NumPy's least squares;
* a 0-D and a lattice solve interrupted after some layers (a fault injected into the
  checkpoint writer) and run again: the same coefficients, reports and samples, bit for bit;
  a checkpoint of another solve is ignored with a warning;
* ``pikflow run`` of a lattice killed (SIGKILL) halfway through its solve and run again: the
  saved flow equals that of an uninterrupted run bit for bit;
* the lattice levers of the CLI: ``[solver]``, ``[refine]``, ``[observables]`` (against the exact
  free-field values) and ``[hmc]``.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

import pikflow as pf
import pikflow._checkpoint as ckpt_mod
from pikflow.cli import main
from pikflow.lattice import LatticeAction, LatticePath, lattice_basis, solve_lattice
from pikflow.solvers import solve_system

DENSITY = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"


# ---------------------------------------------------------------- one linear layer, three solvers
def test_solve_system_against_numpy_lstsq():
    """Every solver returns a LayerSolution whose value minimises ||Ax - b|| (NumPy's lstsq as the reference)."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(80, 6)) * np.array([1.0, 10.0, 0.1, 3.0, 1.0, 100.0])  # column scales over 3 decades
    b = A @ rng.normal(size=6) + 0.3 * rng.normal(size=80)
    ref = np.linalg.lstsq(A, b, rcond=None)[0]
    best = np.mean((A @ ref - b) ** 2)
    direct = solve_system(pf.DirectSolver(), jnp.asarray(A), jnp.asarray(b))
    lm = solve_system(pf.LevenbergMarquardtSolver(), jnp.asarray(A), jnp.asarray(b))
    adam = solve_system(pf.AdamSolver(epochs=3000, learning_rate=0.02), jnp.asarray(A), jnp.asarray(b))
    for sol in (direct, lm):  # a linear problem: both exact up to rounding (condition number ~1e3)
        assert sol.result == optx.RESULTS.successful
        np.testing.assert_allclose(np.asarray(sol.value), ref, rtol=1e-8, atol=1e-10)
    assert int(lm.stats["steps"]) >= 1 and int(direct.stats["steps"]) == 0
    # Adam: first-order, stops at its epoch budget; its loss is within 1% of the least-squares optimum
    assert float(adam.stats["loss"]) <= 1.01 * best and int(adam.stats["steps"]) <= 3000
    np.testing.assert_allclose(float(direct.stats["loss"]), best, rtol=1e-10)


# ---------------------------------------------------------------- interrupted in-process solves
class _Killed(Exception):
    pass


def _interrupt_after(monkeypatch, n_layers: int):
    """Make the checkpoint writer fail after ``n_layers`` layers have been written (a crash mid-solve)."""
    real = ckpt_mod.LayerCheckpoint.save
    count = {"n": 0}

    def save(self, i, **arrays):
        if count["n"] == n_layers:
            raise _Killed(f"killed after {n_layers} layers")
        count["n"] += 1
        real(self, i, **arrays)

    monkeypatch.setattr(ckpt_mod.LayerCheckpoint, "save", save)
    return lambda: monkeypatch.setattr(ckpt_mod.LayerCheckpoint, "save", real)


def _leaves_equal(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    same = (np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True))
    return len(la) == len(lb) and all(same)


def test_zero_d_resume_is_bit_identical(tmp_path, monkeypatch):
    """0-D (Adam: warm starts cross the break): killed after 4 of 7 layers, resumed: same kernels, reports, samples."""
    path = pf.Path(pf.Action("m2/2*phi**2 + lam/4*phi**4", fields=["phi"]), {"m2": "1 - 3*t", "lam": [0, 0.5]})
    opts = dict(steps=3, solver=pf.AdamSolver(epochs=30, warm_epochs=30), progress=False)
    opts.update(collocation=pf.Collocation(n_samples=256, n_tail=0))
    ref = pf.solve(path, **opts)
    restore = _interrupt_after(monkeypatch, 4)
    with pytest.raises(_Killed):
        pf.solve(path, checkpoint=tmp_path / "ck", **opts)
    restore()
    flow = pf.solve(path, checkpoint=tmp_path / "ck", **opts)
    assert flow.resumed_layers == 4
    assert _leaves_equal(flow.kernels, ref.kernels)
    assert flow.reports == ref.reports and flow.settings == ref.settings
    a, b = flow.sample(2000, seed=5, progress=False), ref.sample(2000, seed=5, progress=False)
    assert np.array_equal(a.log_w, b.log_w) and np.array_equal(np.asarray(a.phi), np.asarray(b.phi))
    # a truncated layer file and one whose coefficients were altered are solved again, with a warning
    ck = tmp_path / "ck"
    (ck / "layer-00001.npz").write_bytes((ck / "layer-00001.npz").read_bytes()[:100])
    with np.load(ck / "layer-00002.npz") as z:
        arrays = {k: z[k] for k in z.files}
    key = next(k for k, v in arrays.items() if v.dtype.kind == "f" and v.size)
    arrays[key] = np.full_like(arrays[key], np.nan)
    np.savez(ck / "layer-00002.npz", **arrays)
    with pytest.warns(ckpt_mod.CheckpointWarning, match="damaged or was altered") as rec:
        again = pf.solve(path, checkpoint=ck, **opts)
    assert sum("damaged or was altered" in str(w.message) for w in rec) == 2
    assert again.resumed_layers == 5 and _leaves_equal(again.kernels, ref.kernels)
    (ck / "checkpoint.json").write_text("{not json")
    with pytest.warns(ckpt_mod.CheckpointWarning, match="is damaged"):
        pf.solve(path, checkpoint=ck, **opts)
    meta = json.loads((ck / "checkpoint.json").read_text())
    (ck / "checkpoint.json").write_text(json.dumps({**meta, "format": "pikflow-checkpoint-1"}))  # an older pikflow's
    with pytest.warns(ckpt_mod.CheckpointWarning, match="another checkpoint format"):
        pf.solve(path, checkpoint=ck, **opts)


def test_lattice_resume_is_bit_identical(tmp_path, monkeypatch):
    """Lattice, Levenberg-Marquardt (warm starts): killed after 3 of 5 layers (one full step: the pushed
    configurations restored), resumed bit for bit; LM reaches the direct solve's residual; a checkpoint of
    another solve is ignored with a warning."""
    path = LatticePath(LatticeAction(DENSITY, [6]), {"m2": [1.0, -0.5], "lam": [0.0, 0.5]})
    basis = lattice_basis(path.lattice, scales=(0.5,), powers=(4,), symmetry=path.symmetry())
    opts = dict(basis=basis, steps=2, n_collocation=150, progress=False)
    lm = pf.LevenbergMarquardtSolver()
    ref = solve_lattice(path, solver=lm, **opts)
    direct = solve_lattice(path, **opts)
    restore = _interrupt_after(monkeypatch, 3)
    with pytest.raises(_Killed):
        solve_lattice(path, solver=lm, checkpoint=tmp_path / "ck", **opts)
    restore()
    flow = solve_lattice(path, solver=lm, checkpoint=tmp_path / "ck", **opts)
    assert flow.info["resumed_layers"] == 3
    assert np.array_equal(flow.coeffs, ref.coeffs)
    key = [(r.t, r.residual, r.constant, r.dropped, r.iterations) for r in ref.reports]
    assert [(r.t, r.residual, r.constant, r.dropped, r.iterations) for r in flow.reports] == key
    a, b = flow.sample(jax.random.PRNGKey(3), 300), ref.sample(jax.random.PRNGKey(3), 300)
    assert np.array_equal(a.fields, b.fields) and np.array_equal(a.log_w, b.log_w)
    # the same least-squares problem: LM reaches the residual of the direct SVD solve
    np.testing.assert_allclose(flow.residuals(), direct.residuals(), rtol=1e-3)
    # the LM checkpoint is not the direct solve's: ignored with a warning, and the direct flow is unchanged
    with pytest.warns(ckpt_mod.CheckpointWarning, match="belongs to a different solve"):
        other = solve_lattice(path, checkpoint=tmp_path / "ck", **opts)
    assert other.info["resumed_layers"] == 0 and np.array_equal(other.coeffs, direct.coeffs)


# ---------------------------------------------------------------- the CLI: SIGKILL and the lattice levers
FREE = f"""
[action]
lattice = [8]
density = "{DENSITY}"
[path]
m2 = [2.0, 0.5]
lam = [0.0, 0.0]
[lattice]
base = "free"
steps = 3
collocation = 200
scales = [0.5]
powers = [4]
[sampling]
n = 3000
seed = 2
"""


def _exact_free(m2: float, L: int = 8):
    """Exact <phi^2> and <phi(n) phi(n + 1)> of the free field on a periodic chain of L sites (sum over momenta)."""
    k = 2 * np.pi * np.arange(L) / L
    prop = 1.0 / (m2 + 4 * np.sin(k / 2) ** 2)
    return prop.mean(), (np.cos(k) * prop).mean()


def test_cli_lattice_levers(tmp_path, capsys):
    """[solver] LM, [refine] and [observables] on a lattice run; the observables agree with the exact free field."""
    extra = (
        '[solver]\nkind = "levenberg-marquardt"\n[refine]\ntol = 1e-30\nmax_rounds = 1\n'
        '[observables]\nphi2 = "phi**2"\nlink = "phi*shift(phi, 0)"\n'
    )
    (tmp_path / "c.toml").write_text(FREE + extra)
    assert main(["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    r = json.loads((tmp_path / "o" / "results.json").read_text())
    assert r["solver"]["kind"] == "levenberg-marquardt" and r["refinement"]["max_rounds"] == 1
    assert len(r["refinement"]["steps"]) == 1 and r["ess"] > 0.9
    phi2, link = _exact_free(0.5)
    for name, exact in (("phi2", phi2), ("link", link)):
        est = r["observables"][name]
        assert abs(est["value"] - exact) < 4 * est["error"] + 1e-3, (name, est, exact)
    assert not (tmp_path / "o" / ".pikflow-checkpoint").exists()  # removed once the run is complete


@pytest.mark.parametrize(
    "extra, message",
    [
        ('[solver]\nkind = "adam"\nn_frequencies = 5\n', r"\['n_frequencies'\] do not apply to kind = 'adam' on a"),
        ('[solver]\nmode = "parallel"\n', r"mode must be one of \['sequential'\] on a lattice"),
        ("[refine]\ncentres = 4\n", r"\[refine\] \['centres'\] not used by lattice runs"),
        ("[hmc]\nn_single = 4\n", r"\[hmc\] \['n_single'\] not used by lattice runs"),
        ('[hmc]\nstep_size = "fast"\n', r"step_size must be a positive number or 'auto'"),
        ("[hmc]\nchains = 4\n[lattice]\nhmc_chains = 4\n", r"give \[hmc\] chains or \[lattice\] hmc_chains, not both"),
        ("[hmc]\njitter = 1.0\n", r"\[hmc\] jitter must be a fraction in \[0, 1\)"),
        ('[observables]\nx = "phi**2 + foo(phi)"\n', r"\[observables\] x = .*site density"),
        ('[observables]\nx = "g*phi**2"\n', r"\[observables\] x = "),
        ('[observables]\nx = "phi**2"\n', r"lattice SMC run reports abs_m, chi and binder only"),
    ],
)
def test_cli_lattice_lever_errors(tmp_path, capsys, extra, message):
    """Bad lattice levers are refused before the solve, naming the setting (exit 2, no traceback)."""
    text = FREE + extra
    if "SMC run" in message:
        text = FREE.replace("[sampling]", '[sampling]\nmethod = "smc"') + extra
    if "hmc_chains" in extra:  # [lattice] is already in FREE
        text = FREE.replace('base = "free"', 'base = "free"\nhmc_chains = 4') + "[hmc]\nchains = 4\n"
    (tmp_path / "c.toml").write_text(text)
    t0 = time.perf_counter()
    assert main(["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    import re

    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert time.perf_counter() - t0 < 10 and "Traceback" not in err


def test_lattice_hmc_settings():
    """[hmc] maps onto the reference HMC of the matched base: trajectories, chains, leapfrog steps, step."""
    from pikflow.cli._lattice_config import lattice_settings
    from pikflow.cli._levers import lattice_hmc

    h = {"chains": 4, "n": 50, "step_size": "auto", "leapfrog_steps": 6, "thermalisation": 20, "jitter": 0.25}
    kw = lattice_hmc({"hmc": h}, lattice_settings({}))
    assert kw == {
        "hmc_samples": 200,
        "hmc_chains": 4,
        "hmc_step": "auto",
        "hmc_options": {"n_leapfrog": 6, "n_therm": 20, "jitter": 0.25},
    }


def test_hmc_jitter_reaches_the_sampler_and_keeps_it_exact():
    """[hmc] jitter: the benchmarks' HMC and the lattice reference HMC draw the step per trajectory, still exact.

    A free chain of 8 sites at m² = 0.5 with the jittered step: ⟨φ²⟩ and ⟨φ(n)φ(n+1)⟩ against the
    exact sums over momenta, Gamma-method errors (8 chains as replicas), 4σ.
    """
    import jax

    import pikflow.lattice as pl
    from pikflow.cli._config import hmc_options
    from pikflow.diagnostics import gamma_method

    assert hmc_options({"hmc": {"jitter": 0.3}})["jitter"] == 0.3 and hmc_options({})["jitter"] == 0.0
    with pytest.raises(pf.ConfigError, match="jitter"):
        hmc_options({"hmc": {"jitter": -0.1}})
    path = pl.LatticePath(pl.LatticeAction(DENSITY, (8,)), {"m2": 0.5, "lam": 0.0})
    fields, acc = pl.hmc(path, jax.random.PRNGKey(3), 8 * 1500, n_chains=8, step=0.3, jitter=0.5)
    assert 0.5 < acc < 1.0
    phi2, link = _exact_free(0.5)
    for values, exact in ((np.mean(fields**2, axis=-1), phi2), (np.mean(fields * np.roll(fields, 1, -1), -1), link)):
        g = gamma_method(values)
        assert abs(g.mean - exact) < 4 * g.error, (g.mean, g.error, exact)


#: ``pikflow run`` that SIGKILLs itself right after its third checkpointed layer (a deterministic kill point)
_KILLED_RUN = """
import os, signal, sys
import pikflow._checkpoint as c
real, done = c.LayerCheckpoint.save, []
def save(self, i, **arrays):
    real(self, i, **arrays)
    done.append(i)
    if len(done) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
c.LayerCheckpoint.save = save
from pikflow.cli import main
sys.exit(main())
"""


@pytest.mark.slow
def test_cli_kill_and_resume_is_bit_identical(tmp_path):
    """``pikflow run`` (lattice) SIGKILLed after 3 of 7 layers; the rerun resumes: the same flow, bit for bit."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(FREE.replace("n = 3000", "n = 500"))
    ckpt = tmp_path / "ck"
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(pf.__file__).parents[1])}
    args = ["run", str(cfg), "--out", str(tmp_path / "o"), "--quiet", "--checkpoint", str(ckpt)]
    proc = subprocess.run([sys.executable, "-c", _KILLED_RUN, *args], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert len(list(ckpt.rglob("layer-*.npz"))) == 3  # in the subdirectory of the one candidate flow
    assert not (tmp_path / "o" / "results.json").exists()
    assert main(args) == 0
    assert main(["run", str(cfg), "--out", str(tmp_path / "ref"), "--quiet"]) == 0  # uninterrupted
    with np.load(tmp_path / "o" / "flow" / "arrays.npz") as a, np.load(tmp_path / "ref" / "flow" / "arrays.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            assert np.array_equal(a[k], b[k]), k
    r1, r2 = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("o", "ref"))
    assert r1["ess"] == r2["ess"] and r1["observables"] == r2["observables"]
