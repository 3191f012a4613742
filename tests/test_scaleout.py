"""Sampling sharded over devices and processes gives the samples of one device (pikflow._devices).

Each run is a subprocess (the device count is fixed when JAX starts): one process with 1 fake
CPU device (``--xla_force_host_platform_device_count``), and 2 processes of 2 devices each on
127.0.0.1 joined by ``jax.distributed.initialize``, so that the second run splits the work over
the devices of each process and over the processes at once. (A third run, 4 devices in one process,
was dropped to keep the default test run short: it checked nothing the 2x2 run does not.)
The configurations are compared bit for bit (the same program
on the same random numbers, per sample); the log-weights to 1e-12 relative (the per-device
blocks differ in size, so XLA may fuse the action's polynomial differently: measured
differences are a few ulp), the streamed sums over samples to 1e-12 (added in another order).
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import pikflow as pf
from pikflow.cli import main
from pikflow.lattice import LatticeAction, LatticePath, save_lattice_flow, solve_lattice

WORKER = Path(__file__).with_name("_scaleout_worker.py")
SRC = str(Path(pf.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def flows(tmp_path_factory):
    d = tmp_path_factory.mktemp("flows")
    action = pf.Action("m2/2*phi**2 + lam/4*phi**4", fields=["phi"])
    path = pf.Path.linear(action, start={"m2": 1.0, "lam": 0.0}, end={"m2": -1.0, "lam": 0.5})
    pf.solve(path, steps=4, basis=pf.Polynomial(3), progress=False).save(d / "zero_d")
    lp = LatticePath(
        LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4", (4, 4)),
        {"m2": (1.0, -0.5), "lam": (0.0, 0.5)},
    )
    save_lattice_flow(solve_lattice(lp, steps=2, n_collocation=100, progress=False), d / "lattice")
    return d


def _env(devices: int) -> dict:
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(flows, tmp_path_factory):
    """npz of every run, started together: '1' device, '2x2' (two processes of two devices each)."""
    d = tmp_path_factory.mktemp("runs")
    pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    procs = {
        1: [subprocess.Popen([sys.executable, WORKER, flows, d / "1.npz"], env=_env(1), **pipe)],
    }
    port = _free_port()
    procs["2x2"] = [
        subprocess.Popen(
            [sys.executable, WORKER, flows, d / "2x2.npz", f"127.0.0.1:{port}", "2", str(i)], env=_env(2), **pipe
        )
        for i in (0, 1)
    ]
    out = {}
    for name, ps in procs.items():
        for p in ps:
            log, _ = p.communicate(timeout=600)
            assert p.returncode == 0, f"run {name} failed:\n{log.decode()[-3000:]}"
        out[str(name)] = dict(np.load(d / f"{name}.npz"))
    return out


def test_same_samples_on_any_devices_and_processes(runs):
    """2 processes on 127.0.0.1 with 2 devices each give the 1-device numbers."""
    one, other = runs["1"], runs["2x2"]
    assert int(one["devices"]) == 1 and int(one["processes"]) == 1
    assert int(other["devices"]) == 4 and int(other["processes"]) == 2
    for kind in ("table", "rk4", "lattice"):
        np.testing.assert_array_equal(other[f"{kind}_phi"], one[f"{kind}_phi"], err_msg=kind)
        np.testing.assert_allclose(other[f"{kind}_log_w"], one[f"{kind}_log_w"], rtol=1e-12, atol=0, err_msg=kind)
    np.testing.assert_allclose(other["path_phi2"], one["path_phi2"], rtol=1e-12)
    np.testing.assert_allclose(other["path_ess"], one["path_ess"], rtol=1e-12)
    # layer-parallel solves: every layer is the same program on its own device (blocks of other sizes may
    # fuse differently: float64 rounding)
    np.testing.assert_allclose(other["parallel_coeffs"], one["parallel_coeffs"], rtol=1e-9, atol=1e-12)
    # SMC with the particles split over the devices: the same run within float64 rounding (sums over
    # particles are added in another order; the random numbers and the resampling are the same)
    for kind in ("smc_zero_d", "smc_lattice"):
        for what in ("x", "log_w", "log_z"):
            a, b = other[f"{kind}_{what}"], one[f"{kind}_{what}"]
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=f"{kind} {what}")
    # a lattice scan with Fourier-accelerated moves, its particles split over the devices: the same values and
    # errors at every point (it crashed in XLA's CPU Fourier transform on several devices)
    np.testing.assert_allclose(other["scan"], one["scan"], rtol=1e-9, atol=1e-12)


def test_reference_run_is_not_degenerate(runs):
    """The compared samples are real draws (finite, distinct, two methods differing): the equality is not vacuous."""
    one = runs["1"]
    assert one["rk4_phi"].shape == (5, 1003, 1) and one["lattice_phi"].shape == (301, 4, 4)
    assert one["parallel_coeffs"].shape[0] == 9 and np.all(np.isfinite(one["parallel_coeffs"]))
    assert np.ptp(one["parallel_coeffs"][:, 1:]) > 0  # real, distinct layers
    assert np.all(np.isfinite(one["rk4_log_w"])) and np.all(np.isfinite(one["lattice_log_w"]))
    assert len(np.unique(one["rk4_phi"][-1])) == 1003
    assert not np.array_equal(one["rk4_phi"][-1], one["table_phi"][-1])
    assert one["scan"].shape == (4, 2, 3) and np.all(np.isfinite(one["scan"])) and np.all(one["scan"][:3, 1] > 0)
    for kind in ("smc_zero_d", "smc_lattice"):  # real particles that moved and were weighted
        assert one[f"{kind}_x"].shape[:2] == (2, 256) and np.all(np.isfinite(one[f"{kind}_x"]))
        assert len(np.unique(one[f"{kind}_x"][0].reshape(256, -1)[:, 0])) > 10 and np.ptp(one[f"{kind}_log_z"][-1]) > 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--coordinator", "127.0.0.1:1234"], "go together"),
        (["--coordinator", "nohost", "--num-processes", "2", "--process-id", "0"], "HOST:PORT"),
        (["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"], "--process-id"),
    ],
)
def test_distributed_flags_are_checked(flags, message, capsys, tmp_path):
    assert main(["run", "--out", str(tmp_path), *flags]) == 2
    assert message in capsys.readouterr().err
    assert jax.process_count() == 1
