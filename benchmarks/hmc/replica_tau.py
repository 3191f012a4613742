"""HMC's tau_int of |m| from many short chains: each chain about its own mean (pyerrors) or about the overall mean.

The benchmarks run HMC's reference as a vectorised batch of chains (256 at 16x16) and take the chains as the
Gamma method's replica. pyerrors takes each replica's fluctuations about its own mean; for replica not long
against tau_int that loses the scatter of the replica means and biases tau_int (and the error) low.
``pikflow.diagnostics.gamma_method`` now takes several replica about their overall mean, as in Wolff's paper.
This measures both on HMC at 16x16 (m2, lam) = (-2, 2) in the benchmarks' layouts, against one long run of
16 chains, and on stationary AR(1) chains with the exact tau_int = 12; and the chains joined into one series.

Usage: ``python replica_tau.py OUT.json``.
"""

import json
import sys
import time

import numpy as np


def _both(series):
    from pikflow.diagnostics import gamma_method

    own, overall = gamma_method(series, backend="pyerrors"), gamma_method(series)
    joined = gamma_method(np.asarray(series).reshape(-1))  # the chains joined into one series
    return {
        "tau_joined": joined.tau_int,
        "error_joined": joined.error,
        "tau_own_means": own.tau_int,
        "error_own_means": own.error,
        "tau_overall_mean": overall.tau_int,
        "tau_overall_mean_error": overall.tau_int_error,
        "error_overall_mean": overall.error,
        "window": overall.window,
    }


def _ar1(rng, a, chains, n):
    """Stationary AR(1) chains, Var x = 1, tau_int = (1 + a) / (2 (1 - a))."""
    x = rng.normal(size=chains)
    out = np.empty((chains, n))
    for i in range(n):
        x = a * x + np.sqrt(1 - a * a) * rng.normal(size=chains)
        out[:, i] = x
    return out


def main(argv):
    import jax

    jax.config.update("jax_enable_x64", True)
    import pikflow.lattice as pl

    L, volume = 16, 256
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": -2.0, "lam": 2.0})
    res = {"lattice": [L, L], "couplings": {"m2": -2.0, "lam": 2.0}, "hmc": [], "ar1": []}
    for chains, per, seed in [(256, 78, 4), (256, 600, 5), (16, 20000, 6)]:
        t0 = time.perf_counter()
        M, acc = pl.hmc(
            target, jax.random.PRNGKey(seed), per * chains, n_chains=chains, step="auto", keep="magnetisation"
        )
        row = {"chains": chains, "per_chain": per, "acceptance": float(acc), "seconds": time.perf_counter() - t0}
        row.update(_both(np.abs(np.asarray(M)) / volume))
        res["hmc"].append(row)
        print(json.dumps(row), flush=True)
    a = 0.92
    rng = np.random.default_rng(0)
    for chains, per in [(256, 78), (256, 600), (16, 20000)]:
        x = _ar1(rng, a, chains, per)
        row = {"chains": chains, "per_chain": per, "tau_exact": (1 + a) / (2 * (1 - a))}
        row["error_exact"] = float(np.sqrt(2 * row["tau_exact"] / x.size))
        row.update(_both(x))
        res["ar1"].append(row)
        print(json.dumps(row), flush=True)
    with open(argv[0], "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
