r"""Lawson's integrating-factor RK4 on the RK4 layers: the linear part of the velocity integrated exactly (issue #20).

One RK4 step misses the log-density (the lattice guide, "Fewer steps on a slower start"), so a sample needs 2 steps,
7 evaluations. If that error came from a stiff linear part of the velocity, :math:`v_t = -\Lambda_t\phi + N_t(\phi)`
with :math:`\Lambda_t` diagonal in Fourier space (:math:`\lambda_k(t)`), the integrating factor would remove it:
Lawson's RK4 applies :math:`\Phi(b, a) = \exp(-\int_a^b\Lambda)` exactly and RK4 only to :math:`N`,

.. math::  k_1 = N_0(x),\ k_2 = N_{1/2}(\Phi_{1/2,0}(x + \tfrac h2 k_1)),\
           k_3 = N_{1/2}(\Phi_{1/2,0}x + \tfrac h2 k_2),\ k_4 = N_1(\Phi_{1,0}x + h\Phi_{1,1/2}k_3),\quad
           x' = \Phi_{1,0}(x + \tfrac h6 k_1) + \tfrac h3\Phi_{1,1/2}(k_2 + k_3) + \tfrac h6 k_4,

with :math:`\lambda_k(t)` the quadratic through the step's three layers (integrated exactly), and the continuous
log-density :math:`\int\sum_k\lambda_k\,dt` (exact) plus RK4's weights on :math:`\Delta\Omega - \sum_k\lambda_k`.
Two splits, both diagonal in Fourier space: ``fourier``, :math:`\Lambda` the Fourier two-point family's part, and
``linearised``, the whole velocity's Jacobian at :math:`\phi = 0` (every family is even in :math:`\phi`, so it is
translation invariant). Same evaluations as RK4 (plus transform pairs).

``python benchmarks/lattice/integrators/lawson.py [OUT.json]``: 16x16 (-2, 2), the separable basis on the t^3
clock (the bench's setting), one ``fit_lattice`` per number of steps (1 and 2), then for RK4 and both Lawson
splits: ESS/N of 4000 samples (continuous log q), and continuous minus exact log q (the log-determinant of the map
applied, by forward-mode autodiff) on 16 of them. First it checks Lawson on the Fourier part alone (the other
coefficients zeroed): the map is then linear and Lawson's log q exact to rounding. Last, the range of the real
parts of the eigenvalues of the velocity's Jacobian (the 2-step flow's last layer; whole, Fourier part, the rest)
at :math:`\phi = 0` and on 4 samples: where the stiffness sits.
"""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

import pikflow.lattice as pl

L, N_ESS, N_EXACT = 16, 4000, 16


def fourier_multiply(lam, x):
    return jnp.fft.ifftn(lam * jnp.fft.fftn(x)).real


def lawson_step(rest, E, l0, l1, l2, i, x, h):
    r"""One Lawson RK4 step from layer ``2i``: ``rest(j, y) -> (N, rate)``, ``E(e, y)`` applies a factor ``e``.

    With :math:`\Phi(b, a) = \exp(-\int_a^b\lambda)` (:math:`\lambda` the quadratic through ``l0, l1, l2``),
    RK4 on :math:`y = \Phi(t_0, t)x` gives the stages :math:`\Phi(t_{1/2}, t_0)(x + \frac h2 k_1)`,
    :math:`\Phi(t_{1/2}, t_0)x + \frac h2 k_2`, :math:`\Phi(t_1, t_0)x + h\Phi(t_1, t_{1/2})k_3` and
    :math:`x' = \Phi(t_1, t_0)(x + \frac h6 k_1) + \frac h3\Phi(t_1, t_{1/2})(k_2 + k_3) + \frac h6 k_4`.
    """
    first_int = h / 24 * (5 * l0 + 8 * l1 - l2)  # the quadratic's integral over the first half step
    whole_int = h / 6 * (l0 + 4 * l1 + l2)
    first, second, whole = jnp.exp(-first_int), jnp.exp(-(whole_int - first_int)), jnp.exp(-whole_int)
    k1, r1 = rest(2 * i, x)
    k2, r2 = rest(2 * i + 1, E(first, x + h / 2 * k1))
    k3, r3 = rest(2 * i + 1, E(first, x) + h / 2 * k2)
    k4, r4 = rest(2 * i + 2, E(whole, x) + h * E(second, k3))
    new = E(whole, x) + h / 6 * (E(whole, k1) + 2 * E(second, k2 + k3) + k4)
    return new, h / 6 * (r1 + 2 * r2 + 2 * r3 + r4) + jnp.sum(whole_int)


def convergence_check() -> list[float]:
    r"""Lawson's step against a fine reference on :math:`\dot x = -\lambda(t)x + \sin x`, :math:`\lambda = 6t^2`
    (a linear part that changes over a step): the errors at 4, 8, 16 steps must fall like :math:`h^4`."""

    def solve(steps, method):
        h, x = 1.0 / steps, jnp.asarray(1.0)
        lam = lambda t: 6.0 * t**2  # noqa: E731
        for i in range(steps):
            t = np.array([i, i + 0.5, i + 1]) * h
            if method == "lawson":
                x, _ = lawson_step(lambda j, y: (jnp.sin(y), 0.0), lambda e, y: e * y, *lam(t), 0, x, h)
            else:
                f = lambda tt, y: -lam(tt) * y + jnp.sin(y)  # noqa: E731
                k1 = f(t[0], x)
                k2 = f(t[1], x + h / 2 * k1)
                k3 = f(t[1], x + h / 2 * k2)
                k4 = f(t[2], x + h * k3)
                x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return float(x)

    exact = solve(4096, "rk4")
    errors = [abs(solve(n, "lawson") - exact) for n in (4, 8, 16)]
    assert errors[1] / errors[2] > 10 and errors[0] / errors[1] > 10, errors  # fourth order: about 16
    return errors


def integrators(basis, C, lam, h):
    """``{name: step(i, x) -> (x', dlog q)}`` for one configuration ``x``."""

    def full(j, x):
        g, lap = basis.gradient_and_laplacian(C[j], x)
        return -g, lap

    def rest(j, x):  # v + Lambda x and its rate: Laplacian of Omega less the trace of Lambda
        g, lap = basis.gradient_and_laplacian(C[j], x)
        return -g + fourier_multiply(lam[j], x), lap - jnp.sum(lam[j])

    def rk4(i, x):
        k1, r1 = full(2 * i, x)
        k2, r2 = full(2 * i + 1, x + h / 2 * k1)
        k3, r3 = full(2 * i + 1, x + h / 2 * k2)
        k4, r4 = full(2 * i + 2, x + h * k3)
        return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), h / 6 * (r1 + 2 * r2 + 2 * r3 + r4)

    def lawson(i, x):
        return lawson_step(rest, fourier_multiply, lam[2 * i], lam[2 * i + 1], lam[2 * i + 2], i, x, h)

    return {"rk4": rk4, "lawson": lawson}


def eigenvalues(basis, coeffs, delta, linearise: bool):
    """lambda_k of each layer: the Fourier transform of the gradient's response to a delta (its Jacobian at 0)."""

    def response(c):
        if not linearise:  # the Fourier family alone is linear
            return basis.gradient_and_laplacian(c, delta)[0]
        return jax.jvp(lambda y: basis.gradient_and_laplacian(c, y)[0], (jnp.zeros_like(delta),), (delta,))[1]

    return jnp.stack([jnp.fft.fftn(response(c)).real for c in coeffs])


def measure(flow, C, lam, step, steps, key):
    def one(x):
        dl = 0.0
        for i in range(steps):
            x, d = step(i, x)
            dl = dl + d
        return x, dl

    push = jax.jit(jax.vmap(one))

    def log_det(x):
        return jnp.linalg.slogdet(jax.jacfwd(lambda y: one(y.reshape(x.shape))[0].ravel())(x.ravel()))[1]

    log_det = jax.jit(jax.vmap(log_det))
    x0, lq0 = flow.base.sample(key, N_ESS)
    x1, dl = push(x0)
    lw = np.asarray(-flow._target(x1) - (lq0 + dl))
    lw = lw[np.isfinite(lw)]
    w = np.exp(lw - lw.max())
    err = np.asarray(dl[:N_EXACT] + log_det(x0[:N_EXACT]))  # continuous minus exact increment of log q
    return {
        "ess": float(w.sum() ** 2 / (len(w) * (w**2).sum())),
        "log_q_error_rms": float(np.sqrt(np.mean(err**2))),
        "log_q_error_std": float(err.std()),
        "log_q_error_mean": float(err.mean()),
    }


def jacobian_spectra(flow, mask, key) -> dict:
    """Real parts' range of the eigenvalues of dv/dphi of the last layer: whole, Fourier part, the rest; at phi = 0
    and on 4 samples of the flow."""
    basis, c = flow.basis, jnp.asarray(flow.coeffs[-1])
    x0, lq0 = flow.base.sample(key, 4)
    samples = flow.push(x0, lq0)[0]
    out = {}
    for part, coeffs in (("whole", c), ("fourier", c * mask), ("rest", c * (1 - mask))):
        for where, xs in (("zero", jnp.zeros((1, L, L))), ("samples", samples)):
            re = []
            for x in xs:
                jac = jax.jacfwd(lambda y, a=coeffs: -basis.gradient_and_laplacian(a, y.reshape(L, L))[0].ravel())
                re.append(np.linalg.eigvals(np.asarray(jac(x.ravel()))).real)
            out[f"{part}_at_{where}"] = [float(np.min(re)), float(np.max(re))]
    print(out, flush=True)
    return out


def main() -> None:
    path = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": -2.0, "lam": 2.0})
    delta = jnp.zeros((L, L)).at[0, 0].set(1.0)
    key = jax.random.PRNGKey(1)
    check = convergence_check()
    print("Lawson's errors at 4, 8, 16 steps on a scalar test:", check, flush=True)
    rows = []
    for steps in (1, 2):
        flow = pl.fit_lattice(path, basis="separable", steps=steps, schedule=3, progress=False, seed=0)
        basis, C, h = flow.basis, jnp.asarray(flow.coeffs), 1.0 / steps
        assert type(basis.families[0]).__name__ == "FourierTwoPoint"
        mask = jnp.zeros(basis.n).at[: basis.sizes[0]].set(1.0)

        fourier, linearised = eigenvalues(basis, C * mask, delta, False), eigenvalues(basis, C, delta, True)
        # the check: on the Fourier part alone the flow is linear and Lawson's log q is that of the map applied
        linear = measure(flow, C * mask, fourier, integrators(basis, C * mask, fourier, h)["lawson"], steps, key)
        assert abs(linear["log_q_error_rms"]) < 1e-9, linear
        for split, lam in (("none", fourier), ("fourier", fourier), ("linearised", linearised)):
            name = "rk4" if split == "none" else "lawson"
            row = {"steps": steps, "integrator": name, "split": split,
                   "max_abs_lambda_dt": float(jnp.abs(lam).max() * h),
                   **measure(flow, C, lam, integrators(basis, C, lam, h)[name], steps, key)}  # fmt: skip
            print(row, flush=True)
            rows.append(row)
    spectra = jacobian_spectra(flow, mask, jax.random.PRNGKey(3))  # the 2-step flow's last layer
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            json.dump(
                {"rows": rows, "last_layer_jacobian_real_parts": spectra, "scalar_check_errors": check}, f, indent=1
            )


if __name__ == "__main__":
    main()
