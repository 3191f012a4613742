"""Cost of one SMC move (5 leapfrog steps) for 1000 particles: unit-mass HMC against Fourier-accelerated HMC
(``mcmc="fhmc"``, mass k^2 + 1), on 16x16 and 32x32 phi^4. The two are timed in turn, 7 times, and the ratio
is taken within each repeat (the machine may be shared). About a minute on 2 cores."""

import time

import jax
import numpy as np

import pikflow.lattice as pl
from pikflow.lattice import Lattice, LatticeAction, LatticePath
from pikflow.lattice._scan import path_problem
from pikflow.samplers._mcmc import make_move


def main():
    for L in (16, 32):
        path = LatticePath(LatticeAction(pl.PHI4_DENSITY, Lattice((L, L))), {"m2": (0.5, -2.0), "lam": (0.0, 1.0)})
        problem = path_problem(path, np.linspace(0, 1, 5))
        x = jax.random.normal(jax.random.PRNGKey(0), (1000, L, L))
        keys = jax.random.split(jax.random.PRNGKey(1), 1000)
        moves = {}
        for kind in ("hmc", "fhmc"):
            move = make_move(kind, problem.log_gamma, size=L * L, leapfrog_steps=5, lattice_shape=(L, L), mass2=1.0)
            moves[kind] = jax.jit(jax.vmap(lambda k, z, move=move: move(k, z, 0.6, 0.1, 1)))
            jax.block_until_ready(moves[kind](keys, x))  # compile
        seconds = {kind: [] for kind in moves}
        for _ in range(7):
            for kind, f in moves.items():
                t0 = time.perf_counter()
                jax.block_until_ready(f(keys, x))
                seconds[kind].append(time.perf_counter() - t0)
        ratios = np.array(seconds["fhmc"]) / np.array(seconds["hmc"])
        print(
            f"L={L}: ms per move of 1000 particles: hmc {1e3 * np.median(seconds['hmc']):.1f}, "
            f"fhmc {1e3 * np.median(seconds['fhmc']):.1f}; fhmc/hmc median {np.median(ratios):.2f} "
            f"(range {ratios.min():.2f}-{ratios.max():.2f})"
        )


if __name__ == "__main__":
    main()
