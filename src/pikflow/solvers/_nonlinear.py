r"""Nonlinear least squares for frequencies and coefficients (Optimistix), by variable projection.

The kernel of eq. 25 is linear in its coefficients :math:`k` and nonlinear in its
frequencies :math:`\omega`. For fixed :math:`\omega` the best coefficients solve the linear
collocation system :math:`A_t(\omega) k = b_t` (eq. 19-20) in the least-squares sense;
variable projection minimises the *projected* residual

.. math::
    \rho(\omega) = b_t - A_t(\omega)\, k^*(\omega), \qquad
    k^*(\omega) = \arg\min_k \|A_t(\omega) k - b_t\|_2 ,

over :math:`\omega` alone, with a Gauss-Newton / Levenberg-Marquardt method. The inner
solve is a ridge-stabilised QR solve, the outer one an Optimistix solver.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from .._errors import SolveError
from ._direct import AbstractKernelSolver
from ._models import SineKernel

METHODS = ("levenberg-marquardt", "gauss-newton")


def projected_system(equation, model: SineKernel, points, t):
    r"""The system :math:`(A_t(\omega), b_t)` (eqs. 19-20, :math:`\chi` subtracted) of the model's linear basis."""

    def column(p):
        vals, divs = model.features(p)
        return divs - vals @ equation.gradient_fn(p, t)

    chi = jnp.asarray(equation.chi)
    A = jax.vmap(column)(points) - column(chi)[None, :]
    b = jax.vmap(equation.rhs_fn, in_axes=(0, None))(points, t) - equation.rhs_fn(chi, t)
    return A, b


def ridge_least_squares(A, b, ridge: float):
    r"""Coefficients of :math:`\min_k \|A k - b\|^2 + \epsilon \|D k\|^2` (``D`` the column norms), by QR.

    The ridge :math:`\epsilon` keeps the problem full rank, so the projection and its
    derivative in :math:`\omega` stay finite when frequencies collide or reach zero. The
    Householder QR (``jnp.linalg.qr``, what ``lineax.QR`` runs) is differentiated by JAX's
    own rules, so the Jacobian in :math:`\omega` costs one forward pass per frequency.
    """
    n = A.shape[1]
    scale = jnp.sqrt(jnp.sum(A**2, axis=0) + 1e-300)
    Aa = jnp.concatenate([A / scale, jnp.sqrt(ridge) * jnp.eye(n)])
    q, r = jnp.linalg.qr(Aa)
    return jax.scipy.linalg.solve_triangular(r, q[: A.shape[0]].T @ b) / scale


class LevenbergMarquardtSolver(AbstractKernelSolver):
    r"""Fit the frequencies and coefficients of eq. 25 by variable projection with Optimistix.

    Each layer minimises :math:`\|\rho(\omega)\|^2` (see the module docstring) with
    ``optx.LevenbergMarquardt`` (or ``optx.GaussNewton``); the coefficients come from a
    QR solve inside the residual function (:func:`ridge_least_squares`). Layers after the first start from the
    previous layer's frequencies (sequential mode) or all from equally spaced ones
    (layer-parallel mode).

    Parameters
    ----------
    n_frequencies, max_frequency
        Number of frequencies and the largest initial one (:math:`\omega_j = j\,\omega_{\max}/n`).
    method
        ``"levenberg-marquardt"`` (default) or ``"gauss-newton"``.
    rtol, atol, max_steps
        Optimistix stopping tolerances and iteration cap per layer.
    ridge
        Relative ridge of the inner linear solve (see :func:`ridge_least_squares`).
    """

    kind: ClassVar[str] = "levenberg-marquardt"
    #: the layer-parallel mode maps over layers: a ``jax.vmap`` of the Optimistix solve stalls the XLA CPU runtime
    vmappable: ClassVar[bool] = False
    n_frequencies: int = 10
    max_frequency: float = 6.0
    method: str = "levenberg-marquardt"
    rtol: float = 1e-6
    atol: float = 1e-9
    max_steps: int = 100
    ridge: float = 1e-14

    def __check_init__(self):
        if self.method not in METHODS:
            raise SolveError(f"nonlinear least-squares method must be one of {METHODS}, got {self.method!r}")
        for name in ("n_frequencies", "max_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise SolveError(f"levenberg-marquardt {name} must be a positive integer, got {v!r}")
        for name in ("max_frequency", "rtol", "atol", "ridge"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise SolveError(f"levenberg-marquardt {name} must be a positive number, got {v!r}")

    def initial(self, equation, key=None):
        return SineKernel.init(
            equation.path.n_fields, self.n_frequencies, max_frequency=self.max_frequency, odd=bool(equation.symmetric)
        )

    def fit(self, equation, points, t, init, first, key):
        def project(w):
            model = SineKernel(init.linear, init.sin_coeffs, w, init.cos_coeffs, init.constant, odd=init.odd)
            A, b = projected_system(equation, model, points, t)
            c = ridge_least_squares(A, b, self.ridge)
            return model, c, b - A @ c

        def residuals(w, args):
            return project(w)[2]

        solver_cls = optx.LevenbergMarquardt if self.method == "levenberg-marquardt" else optx.GaussNewton
        sol = optx.least_squares(
            residuals,
            solver_cls(rtol=self.rtol, atol=self.atol),
            init.frequencies,
            max_steps=self.max_steps,
            throw=False,
        )
        model, c, r = project(sol.value)
        return model.with_coefficients(c), r, dict(loss=jnp.mean(r**2), epochs=sol.stats["num_steps"])

    def spec(self):
        keep = ("n_frequencies", "max_frequency", "method", "rtol", "atol", "max_steps", "ridge")
        return {"kind": self.kind, **{k: getattr(self, k) for k in keep}}


__all__ = ["METHODS", "LevenbergMarquardtSolver", "projected_system", "ridge_least_squares"]
