"""How the flow and HMC use the 2 cores: one process on both, one pinned to one core, two pinned side by side.

XLA's CPU runtime splits large operations over the cores of a process. A flow's batched transforms gain
from that; HMC's small per-chain operations may lose to the threads' overhead. Both samplers are
embarrassingly parallel, so on a 2-core machine either can instead run as two independent processes,
one per core. This script times, for the lean flow (2 RK4 steps on t^3) and for HMC (16 chains, step
adapted, keeping the magnetisation) at one lattice point, the median of 3 repeats of a fixed amount of
work (``NS`` flow samples, ``NH`` trajectories per chain) in three layouts: ``taskset -c 0,1`` alone,
``taskset -c 0`` alone, and two processes on ``-c 0`` and ``-c 1`` started together (after both have
compiled). It prints the work per second of each layout (Linux only: ``taskset``).
Usage: ``python cores.py L m2 lam NS NH OUT.json``.
"""

import json
import pathlib
import subprocess
import sys
import tempfile
import time


def child(kind, L, m2, lam, ns, nh, flowdir, ready, go):
    import jax
    import numpy as np

    import pikflow.lattice as pl

    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})
    if kind == "flow":
        flow = pl.load_lattice_flow(flowdir)

        def work():
            np.asarray(flow.sample(ns, seed=3, keep_fields=False).log_w)
    else:

        def work():
            M, _ = pl.hmc(target, jax.random.PRNGKey(1), 16 * nh, n_chains=16, step="auto", keep="magnetisation")
            np.asarray(M)

    work()  # compile
    pathlib.Path(ready).touch()
    while not pathlib.Path(go).exists():
        time.sleep(0.05)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    print(json.dumps(sorted(times)), flush=True)


def run_layout(kind, cpus, args, tmp):
    procs, readies = [], []
    go = tmp / f"go-{kind}-{'-'.join(cpus)}"
    for i, c in enumerate(cpus):
        ready = tmp / f"ready-{kind}-{c}-{i}-{len(cpus)}"
        readies.append(ready)
        cmd = ["taskset", "-c", c, sys.executable, __file__, "child", kind, *args, str(ready), str(go)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    while not all(r.exists() for r in readies):
        time.sleep(0.05)
    go.touch()
    medians = [json.loads(p.communicate()[0].strip().splitlines()[-1])[1] for p in procs]
    return medians


def main(argv):
    import pikflow.lattice as pl

    L, m2, lam, ns, nh, out = int(argv[0]), float(argv[1]), float(argv[2]), int(argv[3]), int(argv[4]), argv[5]
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="cores-"))
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": m2, "lam": lam})
    flow = pl.fit_lattice(target, basis="lean", steps=2, schedule=3, seed=0, progress=False)
    flow.save(tmp / "flow")
    args = [str(L), str(m2), str(lam), str(ns), str(nh), str(tmp / "flow")]
    rec = {"L": L, "m2": m2, "lam": lam, "flow_samples": ns, "hmc_trajectories_per_chain": nh, "chains": 16}
    for kind in ("flow", "hmc"):
        both = run_layout(kind, ["0,1"], args, tmp)[0]
        one = run_layout(kind, ["0"], args, tmp)[0]
        pair = run_layout(kind, ["0", "1"], args, tmp)
        rec[kind] = {
            "seconds": {"one process, 2 cores": both, "one process, 1 core": one, "two processes, 1 core each": pair},
            "work_per_second": {
                "one process, 2 cores": 1 / both, "one process, 1 core": 1 / one,
                "two processes, 1 core each": sum(1 / s for s in pair),
            },
        }  # fmt: skip
        print(kind, json.dumps(rec[kind]), flush=True)
    best = {}
    for k in ("flow", "hmc"):
        rate = rec[k]["work_per_second"]
        best[k] = max(rate.values()) / rate["one process, 2 cores"]
    rec["gain_of_best_layout"] = best
    rec["pik_over_hmc_ratio_factor"] = best["flow"] / best["hmc"]
    print(json.dumps(rec, indent=1))
    with open(out, "w") as f:
        json.dump(rec, f, indent=1)


if __name__ == "__main__":
    if sys.argv[1] == "child":
        a = sys.argv[2:]
        child(a[0], int(a[1]), float(a[2]), float(a[3]), int(a[4]), int(a[5]), a[6], a[7], a[8])
    else:
        main(sys.argv[1:])
