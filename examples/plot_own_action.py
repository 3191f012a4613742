r"""
Define your own action
======================

Any action you can write in SymPy becomes a sampler without code changes: pikflow
derives the Wegner equation (eq. 14, in the :math:`\chi`-difference form of eq. 20)
for your path symbolically, picks a basis that respects its symmetry, and solves one
least-squares problem per layer (eqs. 18, 19).

Here the action is a potential of our choice, written as a string in a few lines: an
asymmetric one, the tilted triple well

.. math::
    \hat S_t = \tfrac12 m^2(t)\,\phi^2 + \tfrac{g_3(t)}{3}\phi^3 + \tfrac{g_4(t)}{4}\phi^4
    + \tfrac{g_6(t)}{6}\phi^6, \qquad
    \hat S_1 = 2\phi^2 + 0.3\,\phi^3 - 1.2\,\phi^4 + \phi^6/6,

from the Gaussian :math:`\hat S_0 = \tfrac12\phi^2`. The cubic term breaks
:math:`\phi \to -\phi`, so the basis gets even functions too. The result is checked
against exact quadrature: ESS/N, the IMH acceptance, and :math:`\langle\phi\rangle`,
:math:`\langle\phi^2\rangle` within their error bars. Several field components work the
same way: see :ref:`the O(2) model <sphx_glr_auto_examples_plot_o2_model.py>`.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

import pikflow as pf

N = 20_000  # samples; the estimates below carry their errors

# %%
# A potential of your choice, in a few lines
# ------------------------------------------
# Write the action as a string and give each coupling ``[start, end]`` (linear in
# :math:`t`, eq. 22b), a number, or an expression in ``t``. Here the target is a tilted
# triple well, :math:`\hat S_1 = 2\phi^2 + 0.3\,\phi^3 - 1.2\,\phi^4 + \phi^6/6`, from
# the Gaussian :math:`\tfrac12\phi^2`. The cubic term breaks :math:`\phi \to -\phi`:
# with ``parity="auto"`` (the default) the sine basis then gets the constant and
# :math:`\cos(\omega_j\phi)` next to the sines (eq. 25), so the kernel is not forced
# to be odd.
mine = pf.Path(
    pf.Action("m2/2*phi**2 + g3/3*phi**3 + g4/4*phi**4 + g6/6*phi**6", fields=["phi"]),
    {"m2": [1.0, 4.0], "g3": [0.0, 0.9], "g4": [0.0, -4.8], "g6": [0.0, 1.0]},
)
print("Z2 symmetric:", mine.is_z2_symmetric())
flow_mine = pf.solve(mine, steps=25, progress=False)
print("basis functions:", flow_mine.equation.n_basis)
s_mine = flow_mine.sample(N, seed=2, progress=False)
exact_mine = pf.exact.reference_for(mine)
print(f"ESS/N = {s_mine.ess:.6f}, IMH acceptance = {s_mine.imh_acceptance:.4f}")
for name, fn in (("phi", lambda p: p), ("phi**2", np.square)):
    est, ref = s_mine.observable(name), exact_mine.expectation(1.0, fn)
    print(f"<{name}> = {est}   exact {ref:.6f}   ({est.deviation(ref):.1f} sigma)")

# %%
# The target against its exact density (quadrature) and the kernel at :math:`t = 1`
# against the exact one. The histogram is the flow's unweighted samples: the weights are
# not needed to see the agreement.
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.6))
grid = np.linspace(-3.2, 3.2, 641)
ax0.hist(
    s_mine.final[:, 0],
    bins=128,
    range=(-3.2, 3.2),
    density=True,
    histtype="step",
    color="k",
    lw=1.2,
    label="PIK samples",
)
ax0.plot(grid, exact_mine.density(1.0, grid), color="tab:orange", ls="--", lw=2, label="exact")
ax0.set_xlabel(r"$\phi$")
ax0.set_ylabel(r"$p_{t=1}(\phi)$")
ax0.set_title("tilted triple well at t = 1")
ax0.legend()
inner = grid[np.abs(grid) <= 2.6]  # where the samples are; far out the kernel grows like exp(S)
ax1.plot(inner, exact_mine.kernel(1.0, inner), color="tab:orange", lw=4, alpha=0.6, label="exact")
ax1.plot(inner, flow_mine.velocity(inner, 1.0), "k-", lw=1.2, label="PIK")
ax1.set_xlabel(r"$\phi$")
ax1.set_ylabel(r"$\dot\phi_{t=1}(\phi)$")
ax1.set_title("kernel at t = 1")
ax1.legend()
fig.tight_layout()

# %%
# The same in a TOML file for ``pikflow run my-model.toml``:
#
# .. code-block:: toml
#
#     [action]
#     density = "m2/2*phi**2 + g3/3*phi**3 + g4/4*phi**4 + g6/6*phi**6"
#
#     [path]
#     m2 = [1.0, 4.0]
#     g3 = [0.0, 0.9]
#     g4 = [0.0, -4.8]
#     g6 = [0.0, 1.0]
#
#     [observables]
#     phi = "phi"
#     phi2 = "phi**2"
#
# The built-in ``pikflow run --example asymmetric-0d`` is a double well with a cubic
# term, :math:`\hat S_1 = -\tfrac12\phi^2 + \tfrac16\phi^3 + \tfrac18\phi^4`. Any
# other potential is one string away, e.g. a path given as a whole,
# ``pf.Path.from_expression("phi**2/2 + t*(phi**4/8 - cos(2*phi))", fields=["phi"])``.
plt.show()
