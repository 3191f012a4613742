"""Reliability (issue #19): resource guards, bounded lattice actions, atomic output, faults in the numerics.

* resource guards refuse impossible runs within a second, naming the setting;
* a lattice action not bounded below is refused at once, like a 0-D one;
* output is atomic: a flow directory or ``results.json`` is either the previous complete one or
  absent; an unwritable ``--out`` or a full disk (``ENOSPC`` injected) gives a clear error and no
  results file; saved flows carry SHA-256 checksums that ``load`` verifies;
* faults injected into the numerics (non-finite layer coefficients, NaN samples, a frozen HMC
  chain) are detected, reported and counted, never averaged in;
* a corpus of named bad inputs through the CLI: each exits 2 with ``pikflow: error:``;
* ``pikflow run`` killed (SIGKILL) at several points leaves no corrupt output.
"""

import errno
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pikflow as pf
from pikflow.cli import main
from pikflow.cli._config import validate
from pikflow.cli._guards import check_resources
from pikflow.lattice import LatticeAction, LatticePath, check_bounded_below

PHI4 = "m2/2*phi**2 + lam/4*phi**4"
LATTICE_PHI4 = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"


def _run(argv, capsys):
    """``main(argv)`` in-process: (exit status, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _write(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


# ---------------------------------------------------------------- resource guards
ZERO_D = {"action": {"density": PHI4, "fields": ["phi"]}, "path": {"m2": [1.0, -1.0], "lam": [0.0, 1.0]}}
LATTICE = {"action": {"lattice": [8, 8], "density": LATTICE_PHI4}, "path": {"m2": [1.0, -1.0], "lam": [0.0, 1.0]}}


@pytest.mark.parametrize(
    "data, setting",
    [
        ({**LATTICE, "action": {**LATTICE["action"], "lattice": [100000, 100000]}}, "[action] lattice"),
        ({**ZERO_D, "sampling": {"n": 100_000_000_000_000}}, "[sampling] n = 100000000000000"),
        ({**ZERO_D, "flow": {"steps": 10_000_000_000}}, "[flow] steps = 10000000000"),
        ({**ZERO_D, "basis": {"kind": "sine", "n": 10**9}}, "[basis] n = 1000000000"),
        ({**ZERO_D, "sampling": {"table_nodes": 10**15}}, "[sampling] table_nodes"),
        ({**ZERO_D, "solver": {"kind": "adam", "epochs": 10**12}}, "[solver] epochs"),
        ({**LATTICE, "lattice": {"collocation": 10**12}}, "[lattice] collocation"),
        ({**LATTICE, "sampling": {"n": 10**13}}, "[sampling] n"),
    ],
)
def test_guards_refuse_what_cannot_fit_within_a_second(data, setting):
    t0 = time.perf_counter()
    with pytest.raises(pf.ConfigError) as err:
        validate(data)
    assert time.perf_counter() - t0 < 1.0
    assert setting in str(err.value) and "smaller" in str(err.value)


def test_guards_use_the_available_memory():
    """The limit is the memory given: 10^6 samples x 51 layers kept fit in 1 GiB, not in 100 MiB."""
    data = {**ZERO_D, "sampling": {"n": 1_000_000}}
    check_resources(data, memory=2**30)
    with pytest.raises(pf.ConfigError, match=r"keep_layers = false.*\[sampling\] n = 1000000 or \[flow\] steps"):
        check_resources(data, memory=100 * 2**20)
    check_resources({**data, "sampling": {"n": 1_000_000, "keep_layers": False}}, memory=100 * 2**20)
    for example in ("phi4-0d", "o2-0d", "asymmetric-0d", "phi4-lattice-8x8"):
        validate(pf.cli._config.load_config(pf.cli._config.example_path(example)))  # the examples pass


@pytest.mark.parametrize(
    "section, key, value, words",
    [
        ("flow", "steps", 0, ">= 1 (an integer)"),
        ("flow", "seed", -1, "[0, 2**32)"),
        ("sampling", "seed", 2**40, "[0, 2**32)"),
        ("collocation", "tail_gap", float("nan"), "finite positive"),
        ("solver", "learning_rate", float("inf"), "finite positive"),
        ("hmc", "step_size", 0.0, "finite positive"),
        ("solver", "ridge", -1e-3, "finite non-negative"),
    ],
)
def test_ranges(section, key, value, words):
    with pytest.raises(pf.ConfigError, match=rf"\[{section}\] {key} must be") as err:
        validate({**ZERO_D, section: {key: value}})
    assert words in str(err.value)


# ---------------------------------------------------------------- bounded lattice actions
@pytest.mark.parametrize(
    "shape, density, couplings, bounded",
    [
        ([8, 8], LATTICE_PHI4, {"m2": -1.0, "lam": 1.0}, True),
        ([8, 8], LATTICE_PHI4, {"m2": 1.0, "lam": -1.0}, False),  # negative quartic at t = 1
        ([7, 5], LATTICE_PHI4, {"m2": 1.0, "lam": -0.01}, False),  # odd sizes: constant and random probes
        ([4, 4, 4], LATTICE_PHI4 + " + g*phi**6", {"m2": 1.0, "lam": 1.0, "g": -0.1}, False),  # negative sextic
        ([4, 4, 4], LATTICE_PHI4 + " + g*phi**6", {"m2": 1.0, "lam": -1.0, "g": 0.1}, True),  # sextic wins
        ([6], LATTICE_PHI4, {"m2": 0.0, "lam": 0.0}, False),  # massless free field: the zero mode is flat
        ([6], "phi**2/2 - k*phi*shift(phi, 0)", {"k": 1.2}, False),  # hopping beats the mass (constant mode)
        ([6], "phi**2/2 + k*phi*shift(phi, 0)", {"k": 0.6}, False),  # unbounded only along the staggered mode
        ([6], "phi**2/2 + k*phi*shift(phi, 0)", {"k": 0.4}, True),
        # cosh - sinh = exp(-phi): bounded, though float64 cancels it to 0 at 100 and to inf - inf at 1000
        ([6], "1.5*phi**2 + k*(cosh(phi) - sinh(phi)) - phi*shift(phi, 0)", {"k": 1.0}, True),
        ([6], "1.5*phi**2 + k*(cosh(phi) - sinh(phi)) - phi*shift(phi, 0)", {"k": -1.0}, False),
        # the same with a coupling switched on along t (cancels only once expanded) and switched off again
        ([6], "1.5*phi**2 + k*(cosh(phi) - sinh(phi)) - phi*shift(phi, 0)", {"k": (0.0, 1.0)}, True),
        ([6], "1.5*phi**2 + k*(cosh(phi) - sinh(phi)) - phi*shift(phi, 0)", {"k": [[0, 0], [0.5, 1], [1, 0]]}, True),
        ([6], "phi**2 + k*log(phi)", {"k": 1.0}, False),  # not real at phi < 0
    ],
)
def test_lattice_bounded_below(shape, density, couplings, bounded):
    path = LatticePath(LatticeAction(density, shape), couplings)
    times = None if isinstance(couplings.get("k"), (tuple, list)) else [1.0]  # a path in t: all 21 times
    t0 = time.perf_counter()
    if bounded:
        check_bounded_below(path, times)
    else:
        with pytest.raises(pf.ActionError, match="not bounded below"):
            check_bounded_below(path, times)
    assert time.perf_counter() - t0 < 1.0


def test_lattice_misspelt_field_is_named():
    """A misspelt field in a shift (psi for phi) makes a second, unbounded field: the error says so."""
    path = LatticePath(LatticeAction(LATTICE_PHI4.replace("shift(phi", "shift(psi"), [4, 4]), {"m2": -1.0, "lam": 1.0})
    with pytest.raises(pf.ActionError, match=r"psi is a field of its own here, beside \['phi'\].*misspelt"):
        check_bounded_below(path, [1.0])


def test_lattice_negative_quartic_refused_by_run(tmp_path, capsys):
    cfg = _write(
        tmp_path,
        f"""
        [action]
        lattice = [8, 8]
        density = "{LATTICE_PHI4}"
        [path]
        m2 = [1.0, -1.0]
        lam = [0.0, -1.0]
        """,
    )
    t0 = time.perf_counter()
    rc, _, err = _run(["run", cfg, "--out", tmp_path / "out", "--quiet"], capsys)
    assert rc == 2 and "not bounded below" in err and "t = 1" in err
    assert time.perf_counter() - t0 < 5.0  # SymPy parse + check; it ran for minutes before
    assert not (tmp_path / "out" / "results.json").exists()


# ---------------------------------------------------------------- atomic output
TINY = """
[action]
density = "m2/2*phi**2 + lam/4*phi**4"
fields = ["phi"]
[path]
m2 = [1.0, -1.0]
lam = [0.0, 1.0]
[flow]
steps = 1
[basis]
kind = "sine"
n = 4
max_frequency = 3.0
[collocation]
n_samples = 60
n_tail = 30
[sampling]
n = 1000
"""


@pytest.fixture(scope="module")
def tiny_flow():
    path = pf.Path.linear(pf.Action(PHI4, fields=["phi"]), start={"m2": 1.0, "lam": 0.0}, end={"m2": -1.0, "lam": 1.0})
    colloc = pf.Collocation(n_samples=100, n_tail=50)
    return pf.solve(path, steps=2, basis=pf.Sine(n=5, max_frequency=3.0), collocation=colloc, progress=False)


def _visible(d: pathlib.Path) -> set[str]:
    return {p.name for p in d.iterdir() if not p.name.startswith(".")}


def test_flow_save_atomic_with_checksums(tiny_flow, tmp_path, monkeypatch):
    d = tiny_flow.save(tmp_path / "flow")
    assert _visible(d) == {"flow.json", "arrays.npz", "manifest.json"}
    manifest = json.loads((d / "manifest.json").read_text())
    assert set(manifest["files"]) == {"flow.json", "arrays.npz"}
    ref = pf.load(d)
    # a byte changed after saving: refused by the checksum, naming the file
    data = bytearray((d / "arrays.npz").read_bytes())
    data[len(data) // 2] ^= 0x10
    (d / "arrays.npz").write_bytes(bytes(data))
    with pytest.raises(pf.FlowFileError, match=r"arrays.npz does not match its checksum"):
        pf.load(d)
    tiny_flow.save(d)  # saving again replaces the directory
    pf.load(d)
    # a save that fails half-way (disk full while writing flow.json) leaves the previous flow untouched
    real = pathlib.Path.write_text

    def full(self, *a, **k):
        if self.name == "flow.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    with pytest.raises(pf.FlowFileError, match="disk is full"):
        tiny_flow.save(d)
    monkeypatch.undo()
    assert {p.name for p in tmp_path.iterdir()} == {"flow"}  # no temporary directory left
    again = pf.load(d)
    assert np.array_equal(np.asarray(again.kernels.coeffs), np.asarray(ref.kernels.coeffs))
    # a directory with other files in it is not replaced: the flow's files are renamed in, the others stay
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("mine")
    tiny_flow.save(shared)
    assert (shared / "notes.txt").read_text() == "mine" and pf.load(shared).steps == tiny_flow.steps


def test_run_output_removes_what_the_previous_run_wrote_and_this_one_does_not(tmp_path):
    """A run committed into the --out of another kind of run replaces its files: the old flow and plots that the
    new run does not write are removed, files the user put there are kept."""
    from pikflow.cli._output import RunOutput

    out = tmp_path / "out"
    first = RunOutput(out)
    (first.stage / "flow").mkdir()
    (first.stage / "flow" / "flow.json").write_text("{}")
    for name in ("histogram.png", "results.json"):
        (first.stage / name).write_text(name)
    first.commit()
    (out / "notes.txt").write_text("mine")
    second = RunOutput(out)
    for name in ("scan_binder.png", "results.json"):
        (second.stage / name).write_text("new " + name)
    second.commit()
    assert _visible(out) == {"notes.txt", "scan_binder.png", "results.json"}
    assert (out / "results.json").read_text() == "new results.json"


def test_a_second_run_into_the_same_out_is_refused_while_the_first_writes(tmp_path):
    """Two runs into one --out: the second is refused at once (it would remove the first one's staging directory
    as a leftover, and at its commit the files the first one wrote); the first commits untouched, and once it
    has, the lock is free again."""
    from pikflow.cli._output import RunOutput, discard_pending

    out = tmp_path / "out"
    first = RunOutput(out)
    (first.stage / "results.json").write_text("first")
    with pytest.raises(pf.OutputError, match="another pikflow run is writing into"):
        RunOutput(out)
    assert first.stage.is_dir()
    first.commit()
    assert (out / "results.json").read_text() == "first"
    third = RunOutput(out)  # free again; a run that never commits frees it when pikflow exits
    with pytest.raises(pf.OutputError):
        RunOutput(out)
    discard_pending()
    assert not third.stage.exists()
    RunOutput(out).discard()


def test_the_run_lock_is_freed_when_setting_up_fails_and_skipped_without_flock(tmp_path, monkeypatch):
    """A staging directory that cannot be made (disk full) frees the lock it took; a file system without flock
    (ENOLCK on some NFS mounts) runs without a lock instead of calling every run a second one."""
    import errno
    import fcntl
    import tempfile

    from pikflow.cli._output import RunOutput

    out = tmp_path / "out"

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(tempfile, "mkdtemp", full)
        with pytest.raises(pf.OutputError, match="disk is full"):
            RunOutput(out)
    RunOutput(out).discard()  # the lock was freed

    def no_locks(*a):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    first = RunOutput(out)
    RunOutput(out).discard()  # no lock to hold: not refused
    first.discard()


def test_run_output_unwritable_and_disk_full(tmp_path, capsys, monkeypatch):
    cfg = _write(tmp_path, TINY)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    rc, _, err = _run(["run", cfg, "--out", blocker / "out", "--quiet"], capsys)
    assert rc == 2 and "pikflow: error: cannot write the output directory" in err and "Traceback" not in err
    out = tmp_path / "out"
    rc, _, _ = _run(["run", cfg, "--out", out, "--quiet", "--n", "500"], capsys)
    assert rc == 0
    before = {name: (out / name).read_bytes() for name in _visible(out) if name != "flow"}
    real = pathlib.Path.write_text

    def full(self, *a, **k):
        if self.name == "results.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    rc, _, err = _run(["run", cfg, "--out", out, "--quiet", "--n", "600"], capsys)
    monkeypatch.undo()
    assert rc == 2 and "pikflow: error:" in err and "disk is full" in err and "Traceback" not in err
    # no staging directory left behind; the failed run's per-layer checkpoint stays, for the rerun to resume from
    hidden = {".pikflow-checkpoint", ".pikflow-output.json", ".pikflow-run.lock"}
    assert {p.name for p in out.iterdir()} - hidden == set(before) | {"flow"}
    assert all((out / name).read_bytes() == data for name, data in before.items())  # the previous output, intact
    assert json.loads((out / "results.json").read_text())["n_samples"] == 500
    pf.load(out / "flow")


# ---------------------------------------------------------------- faults in the numerics
def test_fault_nonfinite_layer_coefficients(monkeypatch):
    """A solver returning NaN coefficients at one layer: SolveError naming that layer (never a flow)."""
    from pikflow.solvers import DirectSolver

    real = DirectSolver.fit

    def nan_at_half(self, eq, pts, t, *a):
        kernel, r, info = real(self, eq, pts, t, *a)
        poison = jnp.where(t > 0.4, jnp.nan, 1.0)
        return jax.tree.map(lambda x: x * poison if eqx_inexact(x) else x, kernel), r, info

    monkeypatch.setattr(DirectSolver, "fit", nan_at_half)
    path = pf.Path.linear(pf.Action(PHI4, fields=["phi"]), start={"m2": 1.0, "lam": 0.0}, end={"m2": 0.5, "lam": 0.7})
    with pytest.raises(pf.SolveError, match=r"layer at t = 0.5 failed \(non-finite coefficients"):
        pf.solve(path, steps=2, basis=pf.Sine(n=5), collocation=pf.Collocation(n_samples=80, n_tail=40), progress=False)


def eqx_inexact(x):
    import equinox as eqx

    return eqx.is_inexact_array(x)


def test_fault_nonfinite_lattice_coefficients(monkeypatch):
    import jax.numpy as jnp
    import optimistix as optx

    import pikflow.flow._lattice_solve as lflow
    import pikflow.solvers as solvers

    def nan_solve(solver, A, b, *args):
        return solvers.LayerSolution(jnp.full(A.shape[1], jnp.nan), optx.RESULTS.successful, {"steps": 0})

    monkeypatch.setattr(solvers, "solve_system", nan_solve)
    path = LatticePath(LatticeAction(LATTICE_PHI4, [3]), {"m2": [1.0, 1.0], "lam": [0.0, 0.3]})
    with pytest.raises(pf.SolveError, match="non-finite coefficients"):
        lflow.solve_lattice(path, steps=1, n_collocation=40, progress=False)


def test_fault_nan_samples_counted_not_averaged(tiny_flow, monkeypatch):
    """NaN injected into 7 of 400 samples by the sampler: counted, warned, weight zero; the others unchanged."""
    clean = tiny_flow.sample(400, seed=3, method="rk4", progress=False)
    real = pf.Flow._push_fn
    bad = np.array([0, 5, 17, 99, 200, 301, 399])

    def poisoned(self, logdet):
        fn = real(self, logdet)

        def wrapped(*args):
            phis, lqs, lws = fn(*args)
            return phis.at[-1, bad].set(jnp.nan), lqs, lws

        return wrapped

    monkeypatch.setattr(pf.Flow, "_push_fn", poisoned)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = tiny_flow.sample(400, seed=3, method="rk4", progress=False)
    assert s.n_nonfinite == len(bad)
    assert any("7 of 400 samples are non-finite" in str(w.message) for w in caught)
    keep = np.setdiff1d(np.arange(400), bad)
    lw, x2 = np.asarray(clean.log_w)[-1, keep], np.asarray(clean.phi)[-1, keep, 0] ** 2
    w = np.exp(lw - lw.max())
    expected = np.sum(w * x2) / np.sum(w)  # the reweighted estimate over the finite samples only
    assert s.observable("phi**2").value == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(s.observable("phi**2").error) and np.isfinite(s.ess)


def test_fault_hmc_frozen_chain():
    """A leapfrog step so large that (almost) nothing is accepted: refused, not averaged."""
    from pikflow.baselines import hmc
    from pikflow.lattice import hmc as lattice_hmc

    path = pf.Path.linear(pf.Action(PHI4, fields=["phi"]), start={"m2": 1.0, "lam": 0.0}, end={"m2": 1.0, "lam": 50.0})
    with pytest.raises(pf.SamplingError, match=r"accepted \d+ of \d+ trajectories.*reduce step_size"):
        hmc(path, n=100, thermalisation=1, step_size=0.9, trajectory_length=4.5)
    lat = LatticePath(LatticeAction(LATTICE_PHI4, [4, 4]), {"m2": 1.0, "lam": 50.0})
    with pytest.raises(pf.SamplingError, match="hardly move"):
        lattice_hmc(lat, jax.random.PRNGKey(0), 64, n_chains=4, step=1.5, n_therm=5)


# ---------------------------------------------------------------- the bad-input corpus
def _zero_d(**sections):
    """A valid 0-D configuration with sections replaced (a value None drops the section)."""
    base = {
        "action": f'density = "{PHI4}"\nfields = ["phi"]',
        "path": "m2 = [1.0, -1.0]\nlam = [0.0, 1.0]",
        "flow": "steps = 2",
    }
    base.update(sections)
    return "\n".join(f"[{k}]\n{v}" for k, v in base.items() if v is not None) + "\n"


def _lattice(**sections):
    base = {
        "action": f'lattice = [8, 8]\ndensity = "{LATTICE_PHI4}"',
        "path": "m2 = [1.0, -1.0]\nlam = [0.0, 1.0]",
    }
    base.update(sections)
    return "\n".join(f"[{k}]\n{v}" for k, v in base.items() if v is not None) + "\n"


#: name -> (configuration text, extra CLI arguments, words the message must contain)
CORPUS = {
    "malformed-toml": ("[action\ndensity = ", [], "not valid TOML"),
    "empty-file": ("", [], "[action] is missing"),
    "binary-garbage": ("\x00\x01\x02[[[", [], "not valid TOML"),
    "unknown-section": (_zero_d(actoin="x = 1"), [], "unknown section [actoin]"),
    "unknown-key": (_zero_d(flow="stepz = 3"), [], "did you mean 'steps'"),
    "steps-string": (_zero_d(flow='steps = "10"'), [], "[flow] steps must be a positive integer or 'auto'"),
    "steps-zero": (_zero_d(flow="steps = 0"), [], "[flow] steps must be >= 1 (an integer)"),
    "steps-negative": (_zero_d(flow="steps = -3"), [], "[flow] steps must be >= 1 (an integer)"),
    "steps-huge": (_zero_d(flow="steps = 10000000000"), [], "[flow] steps = 10000000000"),
    "samples-huge": (_zero_d(sampling="n = 100000000000000"), [], "[sampling] n = 100000000000000"),
    "samples-zero": (_zero_d(sampling="n = 0"), [], "[sampling] n must be >= 1 (an integer)"),
    "samples-float": (_zero_d(sampling="n = 1.5"), [], "[sampling] n must be an integer"),
    "seed-negative": (_zero_d(flow="seed = -1"), [], "[flow] seed must be an integer in [0, 2**32)"),
    "seed-huge": (_zero_d(sampling="seed = 1099511627776"), [], "[sampling] seed must be an integer in [0, 2**32)"),
    "no-action": (_zero_d(action=None), [], "[action] is missing"),
    "no-path": (_zero_d(path=None), [], "[path] is missing"),
    "no-density": (_zero_d(action='fields = ["phi"]'), [], "needs density"),
    "density-empty": (_zero_d(action='density = ""\nfields = ["phi"]'), [], "empty"),
    "density-syntax": (_zero_d(action='density = "phi**"\nfields = ["phi"]'), [], "cannot parse"),
    "density-import": (_zero_d(action="density = \"__import__('os').system('true')\""), [], "error"),
    "density-dunder": (_zero_d(action='density = "phi.__class__"\nfields = ["phi"]'), [], "error"),
    "density-keyword": (_zero_d(action='density = "lambda*phi**2"'), [], "Python keyword 'lambda'"),
    "density-tower": (_zero_d(action='density = "9**9**9*phi**2"\nfields = ["phi"]'), [], "too large to evaluate"),
    "density-overflow": (_zero_d(action='density = "1e999*phi**2"\nfields = ["phi"]'), [], "too large to evaluate"),
    "density-exp-huge": (_zero_d(action='density = "exp(1e300)*phi**2"\nfields = ["phi"]'), [], "too large"),
    "density-expand": (_zero_d(action='density = "(phi+1)**9**9"\nfields = ["phi"]'), [], "power above 100"),
    "density-unknown-function": (_zero_d(action='density = "foo(phi)"\nfields = ["phi"]'), [], "foo"),
    "density-not-string": (_zero_d(action='density = 3\nfields = ["phi"]'), [], "density must be a string"),
    "unbounded-0d": (_zero_d(path="m2 = [1.0, 1.0]\nlam = [0.0, -1.0]"), [], "not normalisable"),
    "coupling-nan": (_zero_d(path="m2 = nan\nlam = [0.0, 1.0]"), [], "m2"),
    "coupling-inf": (_zero_d(path="m2 = [1.0, inf]\nlam = [0.0, 1.0]"), [], "m2"),
    "coupling-bool": (_zero_d(path="m2 = true\nlam = [0.0, 1.0]"), [], "m2"),
    "basis-kind": (_zero_d(basis='kind = "wavelet"'), [], "wavelet"),
    "basis-n-negative": (_zero_d(basis='kind = "sine"\nn = -5'), [], "[basis] n must be >= 1 (an integer)"),
    "basis-n-huge": (_zero_d(basis='kind = "sine"\nn = 1000000000'), [], "[basis] n = 1000000000"),
    "tail-gap-nan": (_zero_d(collocation="tail_gap = nan"), [], "[collocation] tail_gap must be a finite"),
    "solver-kind": (_zero_d(solver='kind = "magic"'), [], "magic"),
    "adam-epochs-huge": (_zero_d(solver='kind = "adam"\nepochs = 1000000000000'), [], "[solver] epochs"),
    "refine-tol-negative": (_zero_d(refine="tol = -1.0"), [], "[refine] tol must be a finite positive"),
    "table-nodes-one": (_zero_d(sampling="table_nodes = 1"), [], "[sampling] table_nodes must be >= 2 (an integer)"),
    "lattice-in-0d": (_zero_d(lattice='base = "free"'), [], "[lattice] is only for lattice runs"),
    "lattice-huge": (_lattice(action=f'lattice = [100000, 100000]\ndensity = "{LATTICE_PHI4}"'), [], "lattice"),
    "lattice-too-small": (_lattice(action=f'lattice = [2, 2]\ndensity = "{LATTICE_PHI4}"'), [], "at least 3"),
    "lattice-5d": (_lattice(action=f'lattice = [4, 4, 4, 4, 4]\ndensity = "{LATTICE_PHI4}"'), [], "1 to 4"),
    "lattice-string": (_lattice(action=f'lattice = "8x8"\ndensity = "{LATTICE_PHI4}"'), [], "lattice must be an array"),
    "lattice-unbounded": (_lattice(path="m2 = [1.0, -1.0]\nlam = [0.0, -1.0]"), [], "not bounded below"),
    "lattice-sextic": (
        _lattice(action=f'lattice = [4, 4]\ndensity = "{LATTICE_PHI4} + g*phi**6"', path="m2 = 1.0\nlam = 1.0\ng = -1"),
        [],
        "not bounded below",
    ),
    "lattice-basis-section": (_lattice(basis='kind = "sine"'), [], "[basis] is not used by lattice runs"),
    "lattice-base": (_lattice(lattice='base = "magic"'), [], "[lattice] base must be one of"),
    "lattice-collocation": (_lattice(lattice="collocation = 5"), [], "[lattice] collocation must be"),
    "lattice-tame-nan": (_lattice(lattice="tame = nan"), [], "[lattice] tame must be a finite positive"),
    "lattice-steps-key": (_lattice(flow="steps = 3"), [], "use [lattice] steps"),
    "cli-n-zero": (_zero_d(), ["--n", "0"], "--n must be >= 1"),
    "cli-n-huge": (_zero_d(), ["--n", "100000000000000"], "--n: the run cannot fit in memory"),
    "lattice-cli-n-zero": (_lattice(), ["--n", "0"], "--n must be >= 1"),
    "config-missing": (None, [], "does not exist"),
    "config-and-example": (_zero_d(), ["--example", "phi4-0d"], "not both"),
    "out-is-a-file": (_zero_d(), ["--out", "{tmp}/blocker/out"], "cannot write the output directory"),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_bad_input_corpus(name, tmp_path, capsys):
    text, extra, words = CORPUS[name]
    (tmp_path / "blocker").write_text("a file, not a directory")
    cfg = tmp_path / "c.toml"
    if text is not None:
        cfg.write_text(text)
    out = tmp_path / "out"
    argv = ["run", cfg, "--out", out, "--quiet", *[a.format(tmp=tmp_path) for a in extra]]
    t0 = time.perf_counter()
    rc, stdout, err = _run(argv, capsys)
    assert rc == 2, (stdout, err)
    assert err.startswith("pikflow: error: ") and words in err, err
    assert "Traceback" not in err + stdout
    assert not (out / "results.json").exists() and not list(tmp_path.rglob("results.json"))
    left = [] if not out.exists() else [p.name for p in out.iterdir() if p.name != ".pikflow-run.lock"]
    assert not left  # nothing left in --out, not even a staging directory (the empty lock file may stay)
    assert time.perf_counter() - t0 < 10.0


def test_corpus_size():
    assert len(CORPUS) >= 40


def test_corpus_through_a_subprocess(tmp_path):
    """Two corpus entries through the real ``pikflow`` process: exit status 2, one line on stderr."""
    for name in ("lattice-huge", "density-import"):
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(CORPUS[name][0])
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from pikflow.cli import main; sys.exit(main())", "run", str(cfg)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert proc.returncode == 2 and proc.stderr.startswith("pikflow: error:"), proc.stderr
        assert "Traceback" not in proc.stderr and not (tmp_path / "pikflow-out" / "results.json").exists()


# ---------------------------------------------------------------- kill tests
def _pikflow(cfg, out, **kw):
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(pf.__file__).parents[1])}
    # a persistent compilation cache of this test's own (the runs are one at a time): the first run compiles,
    # the others load its programs (a killed run may leave a half-written entry: JAX then compiles it again)
    env["JAX_COMPILATION_CACHE_DIR"] = str(pathlib.Path(cfg).parent / "jax-cache")
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    cmd = [sys.executable, "-c", "import sys; from pikflow.cli import main; sys.exit(main())"]
    return subprocess.Popen([*cmd, "run", str(cfg), "--out", str(out), "--quiet"], env=env, **kw)


def _check_output(out: pathlib.Path, complete: dict | None):
    """The visible output is the previous complete one, or has no results.json; flows always load."""
    res = out / "results.json"
    if res.exists():
        data = json.loads(res.read_text())  # complete JSON, never half-written
        assert complete is not None and data["n_samples"] == complete["n_samples"]
        assert {"histogram.png", "kernel_t1.png", "residuals.png", "flow"} <= _visible(out)
    if (out / "flow").exists():
        pf.load(out / "flow")  # checksums verified


@pytest.mark.slow
def test_kill_run_at_random_points(tmp_path):
    """SIGKILL ``pikflow run`` at three random points of its run; then a run completes and cleans up."""
    cfg = _write(tmp_path, TINY)
    out = tmp_path / "out"
    assert _pikflow(cfg, out, stdout=subprocess.DEVNULL).wait(timeout=300) == 0
    complete = json.loads((out / "results.json").read_text())
    t0 = time.perf_counter()  # the length of a run like the killed ones: with the compilation cache of the first
    assert _pikflow(cfg, out, stdout=subprocess.DEVNULL).wait(timeout=300) == 0
    full = time.perf_counter() - t0
    _check_output(out, complete)
    rng = random.Random(19)
    for frac in sorted(rng.uniform(0.2, 1.0) for _ in range(3)):  # import, solve, sampling/writing
        proc = _pikflow(cfg, out, stdout=subprocess.DEVNULL)
        try:
            proc.wait(timeout=frac * full)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        _check_output(out, complete)
    assert _pikflow(cfg, out, stdout=subprocess.DEVNULL).wait(timeout=300) == 0
    _check_output(out, complete)
    kept = (".pikflow-output.json", ".pikflow-run.lock")
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".") and p.name not in kept]
    assert not leftovers  # the staging directories of the killed runs removed
    shutil.rmtree(out)
