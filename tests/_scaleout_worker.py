"""Worker of tests/test_scaleout.py: draws from saved flows on the devices (and processes) it is given.

``python _scaleout_worker.py FLOWS OUT [COORDINATOR NUM_PROCESSES PROCESS_ID]``: the device count
comes from ``XLA_FLAGS=--xla_force_host_platform_device_count=N``; process 0 writes ``OUT`` (npz).
"""

import sys

from pikflow._devices import initialize, is_main_process, run_info

if len(sys.argv) > 3:  # before any computation: jax.distributed.initialize
    initialize(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import pikflow as pf  # noqa: E402
from pikflow.lattice import LatticeAction, LatticePath, load_lattice_flow, scan_lattice  # noqa: E402

flows, out = sys.argv[1], sys.argv[2]
flow = pf.Flow.load(f"{flows}/zero_d")
res = {}
s = flow.sample(1003, seed=3, method="table", batch_size=500, table_nodes=512, progress=False)
res["table_phi"], res["table_log_w"] = s.phi, s.log_w
s = flow.sample(1003, seed=3, method="rk4", batch_size=500, progress=False)
res["rk4_phi"], res["rk4_log_w"] = s.phi, s.log_w
pe = flow.path_estimates({"phi2": "phi**2"}, 1000, seed=2, method="rk4", batch_size=500, progress=False)
res["path_phi2"] = np.array([[e.value, e.error] for e in pe.estimates["phi2"]])
res["path_ess"] = pe.ess
lat = load_lattice_flow(f"{flows}/lattice")
s = lat.sample(jax.random.PRNGKey(5), 301, batch=200)
res["lattice_phi"], res["lattice_log_w"] = s.fields, s.log_w
# the layer-parallel solve: one block of layers per device (per process: its local devices)
par = pf.solve(flow.path, steps=4, basis=pf.Polynomial(3), mode="parallel", progress=False)
res["parallel_coeffs"] = np.asarray(par.kernels.coeffs)
for name, f in (("smc_zero_d", flow), ("smc_lattice", lat)):  # particles split over the devices
    r = pf.smc(f, 256, seed=4, replicas=2, mcmc_steps=1, progress=False)
    res[f"{name}_x"], res[f"{name}_log_w"] = r.particles, r.log_w
    res[f"{name}_log_z"] = r.log_z  # (steps + 1, replicas)
# a lattice scan whose moves, base and observables take Fourier transforms of the particles (each device
# transforms its own; left to XLA's partitioner they were gathered and the CPU runtime refused the layout)
action = LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4", (4, 4))
scan = scan_lattice(
    LatticePath(action, {"m2": (1.0, -0.5), "lam": (0.0, 0.5)}), points=3, particles=64, replicas=2,
    mcmc="fhmc", fourier_mass="adaptive", mcmc_steps=1, steps=4, seed=6, progress=False,
)  # fmt: skip
res["scan"] = np.array([scan.series("4x4", name) for name in ("abs_m", "chi", "binder", "log_z")])
info = run_info()
if is_main_process():
    np.savez(out, devices=info["devices"]["count"], processes=info["processes"], **res)
