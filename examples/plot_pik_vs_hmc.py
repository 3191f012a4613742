r"""
PIK against HMC: independent samples per second
===============================================

The paper's 0-D path (eq. 22, :math:`\lambda/4` convention),
:math:`\hat S_1 = -\phi^2 + \phi^4/8`, sampled two ways:

* the PIK flow (eq. 11 integrated with RK4, exact weights; independent
  Metropolis-Hastings with the flow as proposal makes it exact),
* HMC with BlackJAX (leapfrog, trajectory length 1, step 1/25: the paper's setting),
  many chains vectorised and the paper's single chain.

Both chains get the same error analysis, Wolff's Gamma method (pyerrors): the
integrated autocorrelation time :math:`\tau_{\mathrm{int}}` gives
:math:`N/(2\tau_{\mathrm{int}})` effectively independent samples. ``pikflow bench``
does the same with timings after compilation, repeats and a JSON report; this example
keeps the sizes small.
"""

# %%
# The two samplers
# ----------------
import matplotlib.pyplot as plt
import numpy as np

import pikflow as pf
from pikflow.baselines import HMC, imh_estimate

path = pf.Path.from_expression("(1 - 3*t)/2*phi**2 + t/8*phi**4", ["phi"])
flow = pf.solve(path, progress=False)
flow.sample(50_000, seed=0, keep_layers=False, progress=False)  # compile
samples = flow.sample(50_000, seed=1, keep_layers=False, progress=False)
g_pik = imh_estimate(samples, "Abs(phi)")

sampler = HMC(path)
vec = sampler.run(1.0, n=500, chains=256, thermalisation=100, seed=2)
single = sampler.run(1.0, n=20_000, chains=1, thermalisation=100, seed=3)

rates = {
    "PIK": g_pik.n_effective / samples.sample_seconds,
    "HMC, 256 chains": vec.independent_per_second("Abs(phi)"),
    "HMC, 1 chain": single.independent_per_second("Abs(phi)"),
}
ref = pf.exact.reference_for(path)
for name, g in (("PIK", g_pik), ("HMC, 256 chains", vec.gamma("Abs(phi)")), ("HMC, 1 chain", single.gamma("Abs(phi)"))):
    print(f"{name:16s} <|phi|> = {g.mean:.4f} +- {g.error:.4f}   tau_int = {g.tau_int:.2f}   {rates[name]:.3g} /s")
print(f"exact            <|phi|> = {ref.expectation(1.0, np.abs):.4f}   ESS/N of the flow = {samples.ess:.6f}")

# %%
# Rates and distributions
# -----------------------
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
ax1.bar(list(rates), list(rates.values()), color=["k", "tab:orange", "tab:red"])
ax1.set_yscale("log")
ax1.set_ylabel("independent samples per second")
x = np.linspace(-4, 4, 401)
ax2.plot(x, ref.density(1.0, x), "k:", label="exact")
ax2.hist(samples.final[:, 0], bins=100, density=True, histtype="step", color="k", label="PIK")
ax2.hist(vec.positions.ravel(), bins=100, density=True, histtype="step", color="tab:orange", label="HMC")
ax2.set_xlabel(r"$\phi$")
ax2.legend()
fig.tight_layout()
