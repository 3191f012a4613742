r"""
Observables along the path from one flow, against HMC (paper Fig. 8)
====================================================================

One PIK flow for the paper's 0-D path (eq. 22, :math:`\lambda/4` convention)

.. math::  \hat S_t = \tfrac12 m^2(t)\,\phi^2 + \tfrac{\lambda(t)}{4}\,\phi^4,
           \qquad m^2: 1 \to -2, \quad \lambda: 0 \to \tfrac12 ,

gives every intermediate theory at once: the samples of step :math:`t` follow
:math:`p_t \propto e^{-\hat S_t}`, so the magnetisation (eq. 30)

.. math::  \langle |M(t)| \rangle = \int d\phi\; p_t(\phi)\, |\phi|

comes out at every step time from one sample, reweighted with the exact weights of
that step. HMC (BlackJAX leapfrog, trajectory length 1, step 1/25) needs a separate run
for every ``t``. Both are compared with the exact value by quadrature.
"""

# %%
# One flow, every step time
# -------------------------
import json

import matplotlib.pyplot as plt
import numpy as np

import pikflow as pf
from pikflow.baselines import HMC

path = pf.Path.from_expression("(1 - 3*t)/2*phi**2 + t/8*phi**4", ["phi"])
flow = pf.solve(path, progress=False)
samples = flow.sample(20_000, seed=0, keep_layers=True, progress=False)
along = samples.path_observable("Abs(phi)")  # {t: Estimate}
t_pik = np.array(sorted(along))
m_pik = np.array([along[t].value for t in t_pik])
e_pik = np.array([along[t].error for t in t_pik])

# %%
# One HMC run per parameter point
# -------------------------------
sampler = HMC(path)  # compiled once; t is an argument of the compiled function
t_hmc = np.linspace(0.0, 1.0, 11)
hmc_runs = [sampler.run(t, n=1000, chains=32, thermalisation=100, seed=i) for i, t in enumerate(t_hmc)]
g_hmc = [r.gamma("Abs(phi)") for r in hmc_runs]

ref = pf.exact.reference_for(path)
t_fine = np.linspace(0.0, 1.0, 101)
exact = [ref.expectation(t, np.abs) for t in t_fine]

# %%
# The plot
# --------
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(t_fine, exact, "k:", lw=1, label="exact (quadrature)")
ax.plot(t_pik, m_pik, "k-", lw=1.5, label=f"PIK, one flow ({samples.n_samples} samples)")
ax.fill_between(t_pik, m_pik - e_pik, m_pik + e_pik, color="k", alpha=0.2)
ax.errorbar(
    t_hmc, [g.mean for g in g_hmc], [g.error for g in g_hmc], fmt="o", color="tab:orange", label="HMC, one run per t"
)
ax.set_xlabel("t")
ax.set_ylabel(r"$\langle |\phi| \rangle_t$")
ax.legend()
fig.tight_layout()

# %%
# The numbers, as JSON
# --------------------
result = {
    "pik": {f"{t:.4f}": along[t].to_dict() for t in t_pik},
    "hmc": {
        f"{r.t:.4f}": {"value": g.mean, "error": g.error, "tau_int": g.tau_int}
        for r, g in zip(hmc_runs, g_hmc, strict=True)
    },
    "exact": {f"{t:.4f}": ref.expectation(t, np.abs) for t in t_hmc},
}
pulls = [(along[t].value - ref.expectation(t, np.abs)) / along[t].error for t in t_pik]
print(json.dumps(result)[:400], "...")
print(f"PIK vs exact at {len(t_pik)} step times: rms deviation {np.sqrt(np.mean(np.square(pulls))):.2f} sigma")
