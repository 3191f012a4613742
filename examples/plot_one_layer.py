r"""
Solve one layer's kernel equation by hand
=========================================

:func:`pikflow.solve` solves every layer of a flow; each layer is an independent
linear problem, and this example solves one of them step by step with the Python API.

At one RG time :math:`t` the kernel obeys the Wegner equation (eq. 14); subtracting it
at a reference configuration :math:`\chi = 0` removes the unknown normalisation (eq. 20):

.. math::
    0 = \frac{d\hat S_t}{dt}(\phi) - \frac{d\hat S_t}{dt}(\chi)
        - \mathcal L_t v(\phi) + \mathcal L_t v(\chi),
    \qquad \mathcal L_t v = \partial\cdot v - v\cdot\partial\hat S_t .

With :math:`v = \sum_j k_j K_j` (eq. 18) and collocation points :math:`\phi_i` this is
the least-squares system :math:`A_t k = b_t` (eq. 19), built by
:meth:`~pikflow.equations.WegnerEquation.system` and solved by
:class:`~pikflow.solvers.DirectSolver`. The residual of the result (eq. 27),

.. math::
    r_\chi(\phi) = \frac{d\hat S_t}{dt}(\phi) - \frac{d\hat S_t}{dt}(\chi)
    - \mathcal L_t v(\phi) + \mathcal L_t v(\chi),

is computable anywhere (:meth:`~pikflow.equations.WegnerEquation.residual`): it tells
where the kernel is right without knowing the exact one. The exact 0-D kernel is used
here only to confirm it.
"""

# %%
# The equation, derived symbolically once
# ---------------------------------------
# The paper's path (eqs. 22-24) and its basis (eq. 25): :math:`K_1 = \phi`,
# :math:`K_j = \sin(\omega_j\phi)`. The path is :math:`Z_2` symmetric, so only odd
# functions are used.
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import sympy as sp

import pikflow as pf
from pikflow.flow import LinearKernel

phi, m2, lam = sp.symbols("phi m2 lam")
action = pf.Action(m2 / 2 * phi**2 + lam / 4 * phi**4, fields=[phi])
path = pf.Path.linear(action, start={m2: 1.0, lam: 0.0}, end={m2: -2.0, lam: 0.5})
eq = pf.WegnerEquation(path, pf.Sine(n=25, max_frequency=6.0), form="chi")
print(f"{eq.n_basis} basis functions; the first two and their columns L_t K_j:")
for k, col in zip(eq.functions[:2], eq.columns[:2], strict=True):
    print(f"  K = {k[0]}   ->   L_t K = {sp.simplify(col)}")
print(f"right-hand side dS_t/dt = {eq.rhs}")

# %%
# The collocation system at t = 1
# -------------------------------
# Collocation points must cover where the samples go, tails included. Here: 1500
# points, evenly spaced out to where :math:`\hat S_1 - \min\hat S_1 = 20`
# (:math:`|\phi| \lesssim 4.3`). In :func:`pikflow.solve` they are pushed samples plus
# tail points (:class:`~pikflow.solvers.Collocation`).
t = 1.0
points = np.linspace(-4.3, 4.3, 1500)[:, None]
A, b = eq.system(jnp.asarray(points), jnp.asarray(t))
print(
    f"A: {A.shape}, b: {b.shape}, condition number of A with unit-norm columns: "
    f"{np.linalg.cond(np.asarray(A) / np.linalg.norm(np.asarray(A), axis=0)):.1e}"
)

# %%
# Solve it and look at the residual
# ---------------------------------
# :class:`~pikflow.solvers.DirectSolver` scales the columns to unit norm and uses Lineax
# QR (robust at this conditioning; the normal equations are not).
coeffs = pf.DirectSolver().solve(A, b)
kernel = LinearKernel(coeffs, eq.values, eq.divergences)

x = np.linspace(-4.3, 4.3, 861)
residual = np.asarray(eq.residual(kernel, kernel.divergence, jnp.asarray(x[:, None]), jnp.asarray(t)))
exact = pf.exact.reference_for(path)
v = np.asarray(jax.vmap(kernel)(jnp.asarray(x[:, None])))[:, 0]  # the kernel maps one configuration
density = exact.density(t, x)
print(f"RMS residual weighted by p_1: {np.sqrt(np.sum(residual**2 * density) / np.sum(density)):.2e}")
print(f"max |v - v_exact| on [-3, 3]: {np.max(np.abs(v - exact.kernel(t, x))[np.abs(x) <= 3]):.2e}")

fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(6.5, 5.5), sharex=True)
ax0.plot(x, exact.kernel(t, x), color="tab:orange", lw=4, alpha=0.6, label="exact kernel")
ax0.plot(x, v, "k-", lw=1.2, label="one direct solve")
ax0.set_ylabel(r"$v_{t=1}(\phi)$")
ax0.legend()
ax0b = ax0.twinx()
ax0b.fill_between(x, density, color="tab:blue", alpha=0.15)
ax0b.set_yticks([])
ax1.semilogy(x, np.abs(residual) + 1e-18, "k-", lw=1)
ax1.set_xlabel(r"$\phi$")
ax1.set_ylabel(r"$|r_\chi(\phi)|$ (eq. 27 of arXiv:2510.26678)")
ax1.set_title("residual of the solved kernel (shaded above: the target density)", fontsize=10)
fig.tight_layout()

# %%
# How the residual depends on the basis
# -------------------------------------
# The residual is the honest error measure: it shrinks as the basis grows, until the
# solve reaches rounding. (Each size is a new equation, derived and lowered once.)
sizes = (3, 6, 10, 15, 25)
rms = []
for n in sizes:
    e = pf.WegnerEquation(path, pf.Sine(n=n, max_frequency=6.0 * n / 25))
    A_n, b_n = e.system(jnp.asarray(points), jnp.asarray(t))
    k_n = pf.DirectSolver().solve(A_n, b_n)
    kern = LinearKernel(k_n, e.values, e.divergences)
    r_n = np.asarray(e.residual(kern, kern.divergence, jnp.asarray(x[:, None]), jnp.asarray(t)))
    rms.append(np.sqrt(np.sum(r_n**2 * density) / np.sum(density)))
    print(f"n = {n:2d} frequencies (max {6.0 * n / 25:.2f}): weighted RMS residual {rms[-1]:.2e}")

fig, ax = plt.subplots(figsize=(5.5, 3.6))
ax.semilogy(sizes, rms, "ko-")
ax.set_xlabel(r"number of frequencies $n$ ($\omega_j = 0.24\,j$)")
ax.set_ylabel("RMS residual, weighted by $p_1$")
ax.set_title("one layer, t = 1")
fig.tight_layout()

# %%
# The constant form: :math:`d\log\mathcal N_t/dt` for free
# ---------------------------------------------------------
# With ``form="constant"`` the normalisation's change
# :math:`c_t = d\log\mathcal N_t/dt = -\langle d\hat S_t/dt\rangle_t` (eq. 17) is one more
# unknown of the same least-squares problem: a solve estimates an expectation value of
# the target without a single sample of it.
eq_c = pf.WegnerEquation(path, pf.Sine(n=25, max_frequency=6.0), form="constant")
A_c, b_c = eq_c.system(jnp.asarray(points), jnp.asarray(t))
c_t = float(pf.DirectSolver().solve(A_c, b_c)[-1])
mean_dsdt = exact.expectation(t, lambda p: exact.dsdt(t, p))
print(f"c_t from the solve: {c_t:.8f};   -<dS_t/dt>_t by quadrature: {-mean_dsdt:.8f}")
plt.show()
