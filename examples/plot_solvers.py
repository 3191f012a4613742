r"""
Three solvers for the same kernel: direct, Adam-trained, Levenberg-Marquardt
=============================================================================

Every layer of a PIK flow solves the Wegner equation (paper eq. 14) with the reference
configuration :math:`\chi = 0` subtracted (eq. 20). For the paper's kernel (eq. 25),
:math:`v_t(\phi) = k_1\phi + \sum_j k_j \sin(\omega_j\phi)`, pikflow offers three solvers
behind the same :func:`pikflow.solve`:

* ``DirectSolver``: fixed frequencies, one linear least-squares solve per layer (eq. 19);
* ``AdamSolver``: the paper's training (Appendix A): Adam on the squared residual of
  eq. 20, learnable frequencies, warm starts from the previous layer;
* ``LevenbergMarquardtSolver``: frequencies and coefficients as one nonlinear least-squares
  problem (variable projection), with far fewer frequencies.

The script solves the 0-D :math:`\phi^4` path of the paper (eqs. 22-24) with a reduced
number of RK4 steps and epochs (to stay under a minute), and compares each kernel at
:math:`t = 1` with the exact quadrature kernel; then it solves the direct flow in the
layer-parallel mode (collocation points from :math:`p_t` itself, every layer at once).
"""

# %%
# The path and the exact kernel
# -----------------------------
import time

import matplotlib.pyplot as plt
import numpy as np

import pikflow as pf

path = pf.Path(pf.Action("m2/2*phi**2 + lam/4*phi**4", fields=["phi"]), {"m2": [1.0, -2.0], "lam": [0.0, 0.5]})
exact = pf.exact.reference_for(path)
x = np.linspace(-3, 3, 301)
v_exact = exact.kernel(1.0, x)

# %%
# Solve with each solver
# ----------------------
# Five RK4 steps (11 layers); Adam with 200 epochs per layer instead of 600.
solvers = {
    "direct (25 fixed frequencies)": pf.DirectSolver(),
    "adam (10 learnable frequencies, 200 epochs)": pf.AdamSolver(n_frequencies=10, epochs=200, warm_epochs=200),
    "levenberg-marquardt (8 frequencies)": pf.LevenbergMarquardtSolver(n_frequencies=8),
}
flows = {}
for name, solver in solvers.items():
    t0 = time.perf_counter()
    flows[name] = pf.solve(path, steps=5, solver=solver, progress=False)
    err = np.max(np.abs(flows[name].velocity(x, 1.0) - v_exact)) / np.max(np.abs(v_exact))
    loss = max(r.residual_rms**2 for r in flows[name].reports)
    print(f"{name:45s} kernel error {err:.1e}  max layer loss {loss:.1e}  ({time.perf_counter() - t0:.1f} s)")

# %%
# The kernels at t = 1 and their errors
# -------------------------------------
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
ax1.plot(x, v_exact, "k", lw=3, alpha=0.3, label="exact (quadrature)")
for name, flow in flows.items():
    v = flow.velocity(x, 1.0)
    ax1.plot(x, v, label=name.split(" (")[0])
    ax2.semilogy(x, np.abs(v - v_exact) + 1e-16, label=name.split(" (")[0])
ax1.set_xlabel(r"$\phi$")
ax1.set_ylabel(r"$v_{t=1}(\phi)$")
ax1.legend()
ax2.set_xlabel(r"$\phi$")
ax2.set_ylabel("|v - v_exact|")
fig.tight_layout()

# %%
# Layer-parallel mode
# -------------------
# The collocation points of layer t are the mid-quantiles of exp(-S_t) (one field
# component), so no layer waits for another; all are solved in one ``jax.vmap``.
for mode in ("sequential", "parallel"):
    pf.solve(path, steps=5, mode=mode, progress=False)  # compile
    t0 = time.perf_counter()
    flow = pf.solve(path, steps=5, mode=mode, progress=False)
    seconds = time.perf_counter() - t0
    s = flow.sample(50_000, seed=1, progress=False)
    print(f"{mode:10s} solve {seconds:.3f} s  ESS/N = {s.ess:.6f}  IMH acceptance = {s.imh_acceptance:.4f}")
