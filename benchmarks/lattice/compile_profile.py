"""Where a first ``fit_lattice`` spends its tracing and compiling: every XLA compilation it triggers, by program.

``python benchmarks/lattice/compile_profile.py [L] [OUT.json]``: the 16x16 (-2, 2) point of issue #20 by default,
the separable basis with 2 RK4 steps on the t^3 clock (the bench's setting), in a fresh process without the
persistent cache. JAX's ``jax_log_compiles`` messages ("Finished XLA compilation of jit(f) in s sec") are
collected and summed per program, with the number of compilations. Then the flow draws 10^4 samples twice, and the
second, compiled draw is timed: run it with ``XLA_FLAGS=--xla_backend_optimization_level=0`` to see what XLA's
unoptimised back end saves in compilation and costs in sampling.
"""

import collections
import json
import logging
import os
import re
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_log_compiles", True)

import pikflow.lattice as pl  # noqa: E402

records = []
FINISHED = re.compile(r"Finished (XLA compilation|tracing \+ transforming) of (.*?) in ([0-9.e-]+) sec")


class _Collect(logging.Handler):
    def emit(self, record):
        g = FINISHED.search(record.getMessage())
        if g:
            records.append(("compile" if g.group(1).startswith("XLA") else "trace", g.group(2)[:80], float(g.group(3))))


logger = logging.getLogger("jax")
logger.addHandler(_Collect())
logger.setLevel(logging.DEBUG)

L = int(sys.argv[1]) if len(sys.argv) > 1 else 16
path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": -2.0, "lam": 2.0})
t0 = time.perf_counter()
flow = pl.fit_lattice(path, basis="separable", steps=2, schedule=3, progress=False)
wall = time.perf_counter() - t0
draws = []
for _ in range(2):
    t1 = time.perf_counter()
    jax.block_until_ready(flow.sample(jax.random.PRNGKey(7), 10_000).log_w)
    draws.append(time.perf_counter() - t1)
seconds, counts = collections.defaultdict(float), collections.Counter()
for kind, fn, s in records:
    seconds[kind, fn] += s
    counts[kind, fn] += 1
total = {k: sum(s for (kk, _), s in seconds.items() if kk == k) for k in ("compile", "trace")}
print(f"fit_lattice {L}x{L}: {wall:.2f} s; XLA compilation {total['compile']:.2f} s, tracing {total['trace']:.2f} s")
print(f"10^4 samples: {draws[0]:.2f} s (first draw), {draws[1]:.2f} s (compiled)")
rows = sorted(((k, fn, s, counts[k, fn]) for (k, fn), s in seconds.items() if k == "compile"), key=lambda r: -r[2])
for _, fn, s, c in rows[:12]:
    print(f"  {s:6.2f} s  {c} x  {fn}")
if len(sys.argv) > 2:
    out = {"lattice": [L, L], "wall_seconds": wall, "totals": total, "xla_flags": os.environ.get("XLA_FLAGS", ""),
           "draw_seconds_first_and_compiled": draws,
           "compile": [{"program": fn, "seconds": s, "count": c} for _, fn, s, c in rows]}  # fmt: skip
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=1)
