r"""The tabulated radial map of :math:`O(N)` flows: table speed and exact weights for several components.

With an :math:`O(N)`-equivariant kernel :math:`v_t(\phi) = \phi\, g(|\phi|^2, t)` (the
:class:`~pikflow.bases.Radial` basis) the flow (eq. 11) moves only the radius
:math:`r = |\phi|`; the direction :math:`\hat n = \phi/r` is untouched. So the flow is a
one-dimensional monotone map :math:`r_0 \mapsto r_k = R_k(r_0)` at every step time
:math:`t_k`, tabulated as in :mod:`pikflow.flow._tabulated`:

1. **Inverse-CDF coordinates.** A uniform :math:`u = (k + \tfrac12)\,2^{-52}` gives
   :math:`w = \log u - \log(1-u)` (logistic density :math:`p_w = u(1-u)`), and
   :math:`r_0(w) = \sigma\,\chi_N^{-1}(u)`, the quantile of the radial law of the
   isotropic Gaussian base (:math:`r_0^2/\sigma^2 \sim \chi^2_N`; computed once per node
   with ``scipy.special.gammaincinv``, in both tails).
2. **The table.** The nodes are pushed through the RK4 map of the radial velocity
   :math:`f_t(r) = v_t(r\,e_1)\cdot e_1` with their tangents (forward-mode derivative of
   the kernel); between nodes :math:`R_k` is the monotone cubic Hermite interpolant
   (Fritsch-Carlson limiter).
3. **Exact weights.** A sample is :math:`\phi_k = R_k(w)\,\hat n` with :math:`\hat n`
   uniform on the sphere :math:`S^{N-1}`, independent of :math:`w`. The map applied is the
   piecewise cubic, so the density of the samples is, exactly,

   .. math:: \log q_k(\phi) = \log p_w(w) - \log R_k'(w) - (N-1)\log r_k - \log|S^{N-1}|,

   :math:`|S^{N-1}| = 2\pi^{N/2}/\Gamma(N/2)` (the :math:`r^{N-1}` Jacobian of polar
   coordinates; the angles are untouched). At :math:`t = 0` this is the Gaussian base
   density. Equivalently :math:`\log q_k = \log q_0(\phi_0) - \log(dr_k/dr_0) - (N-1)\log(r_k/r_0)`.
4. **Tails.** Where the RK4 map is not finite, positive and increasing, the table
   continues it: above the covered range linearly in :math:`r_0`, below it in proportion
   to :math:`r_0` (:math:`r = 0` is a fixed point of the flow). ``1 - coverage`` is the base
   probability of these ranges; the weights are exact there too.
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from scipy import special

from .._errors import SamplingError
from ..equations import AbstractKernel, LinearKernel
from ._tabulated import CHECKED_CELLS, W_MAX, TableInfo, TabulatedMap, _push_nodes, hermite_cells

#: relative tolerance of the checks that a flow is radial (isotropic base, kernel along phi)
RADIAL_RTOL = 1e-9


class RadialMap(eqx.Module):
    r"""The tabulated radius :math:`r_k = R_k(w)` of an :math:`O(N)` flow at every step time (module docstring).

    ``radius`` is a :class:`~pikflow.flow.TabulatedMap` of the radius in the logistic
    variable :math:`w`; ``n_fields`` is :math:`N`; ``log_sphere`` is
    :math:`\log|S^{N-1}|`.
    """

    radius: TabulatedMap
    n_fields: int = eqx.field(static=True)
    log_sphere: float = eqx.field(static=True)

    @property
    def n_times(self) -> int:
        """Number of step times (steps + 1)."""
        return self.radius.n_times

    def directions(self, key, n: int) -> Float[Array, "n fields"]:
        r"""``n`` directions uniform on :math:`S^{N-1}`: an angle for :math:`N=2`, Archimedes' map for
        :math:`N=3`, normalised normal vectors otherwise."""
        if self.n_fields == 2:
            theta = (2 * jnp.pi) * jax.random.uniform(key, (n,), dtype=jnp.float64)
            return jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=-1)
        if self.n_fields == 3:
            a = jax.random.uniform(key, (2, n), dtype=jnp.float64)
            z = 2.0 * a[0] - 1.0
            theta = (2 * jnp.pi) * a[1]
            rho = jnp.sqrt(jnp.maximum(1.0 - z * z, 0.0))
            return jnp.stack([rho * jnp.cos(theta), rho * jnp.sin(theta), z], axis=-1)
        g = jax.random.normal(key, (n, self.n_fields), dtype=jnp.float64)
        return g / jnp.linalg.norm(g, axis=-1, keepdims=True)

    def log_density(self, pw, r, slope):
        r""":math:`\log q = \log p_w - \log R' - (N-1)\log r - \log|S^{N-1}|` (module docstring, step 3).

        One logarithm for :math:`N \le 4` (:math:`r^{N-1}` cannot underflow there:
        :math:`r \gtrsim 10^{-16/N}\sigma`), two otherwise.
        """
        if self.n_fields <= 4:
            return jnp.log(pw / (slope * r ** (self.n_fields - 1))) - self.log_sphere
        return jnp.log(pw / slope) - (self.n_fields - 1) * jnp.log(r) - self.log_sphere

    def sample(self, key, n: int, *, all_times: bool):
        r"""``n`` samples: configurations ``(times, n, N)`` and :math:`\log q` ``(times, n)`` (the last time only:
        ``(n, N)`` and ``(n,)``)."""
        table = self.radius
        u, v, w = table.uniforms(key, n)
        pw = u * v
        direction = self.directions(jax.random.fold_in(key, 1), n)
        j, s = table.locate(w)
        if all_times:
            r, slope = table.cubic(table.cells.at[j].get(mode="promise_in_bounds"), s[:, None])
            r, slope = r.T, slope.T
            return r[..., None] * direction[None], self.log_density(pw[None], r, slope)
        r, slope = table.cubic(table.cells[:, -1].at[j].get(mode="promise_in_bounds"), s)
        return r[:, None] * direction, self.log_density(pw, r, slope)


def base_scale(flow) -> float | None:
    r"""The :math:`\sigma` of an isotropic, centred Gaussian base :math:`\mathcal N(0, \sigma^2 1)`, else None."""
    mean = np.asarray(flow.base.mean)
    chol = np.asarray(flow.base.cholesky_cov)
    sd = float(np.mean(np.diag(chol)))
    centred = np.all(np.abs(mean) <= RADIAL_RTOL * sd)
    isotropic = np.all(np.abs(chol - sd * np.eye(len(mean))) <= RADIAL_RTOL * sd)
    return sd if centred and isotropic else None


def is_radial(flow) -> bool:
    """Whether the radial table applies by construction: several components, an isotropic centred base and a
    linear kernel in the :class:`~pikflow.bases.Radial` basis (equivariant, :math:`v = \\phi g(|\\phi|^2)`)."""
    from ..bases import Radial

    return (
        flow.n_fields > 1
        and isinstance(flow.kernels, LinearKernel)
        and isinstance(getattr(flow.equation, "basis", None), Radial)
        and flow.kernels.values is flow.equation.values
        and base_scale(flow) is not None
    )


def _radial_velocity(flow):
    r"""``ev(kernel, r) -> (f(r), f'(r))`` with :math:`f(r) = v(r e_1)\cdot e_1`, for a batch of radii.

    For a linear kernel in the :class:`~pikflow.bases.Radial` basis,
    :math:`f(r) = r\,(k_0 + e^{-x/2}\sum_{j\ge1} k_j L_{j-1}(x))`, :math:`x = r^2/s^2`, with the
    Laguerre polynomials by their recurrence
    :math:`(j+1)L_{j+1} = (2j+1-x)L_j - jL_{j-1}` (a small graph: fast to compile and to
    run); any other kernel is evaluated on the ray :math:`r e_1` itself. The derivative is
    forward-mode in both cases.
    """
    n_fields = flow.n_fields
    e1 = jnp.zeros(n_fields).at[0].set(1.0)
    if is_radial(flow):
        inv_s2 = 1.0 / flow.equation.basis.scale**2

        def ray(kernel, r):
            c = kernel.coeffs
            x = r * r * inv_s2
            prev, cur = jnp.zeros_like(x), jnp.ones_like(x)
            acc = c[1] * cur
            for j in range(1, c.shape[-1] - 1):
                prev, cur = cur, ((2 * j - 1 - x) * cur - (j - 1) * prev) / j
                acc = acc + c[j + 1] * cur
            return r * (c[0] + jnp.exp(-0.5 * x) * acc)

    else:

        def ray(kernel, r):
            return jax.vmap(kernel)(r[:, None] * e1)[:, 0]

    def radial(kernel, r):
        return jax.jvp(lambda q: ray(kernel, q), (r,), (jnp.ones_like(r),))

    radial.__name__ = "laguerre" if is_radial(flow) else "generic"
    return radial


def check_equivariant(kernels: AbstractKernel, n_fields: int, scale: float, *, seed: int = 0) -> float:
    r"""Largest :math:`|v(\phi) - f(|\phi|)\,\phi/|\phi||` over random points and every layer, relative to :math:`|v|`.

    Zero (to rounding) exactly when each kernel is radial: along :math:`\phi` with a size
    that depends on :math:`|\phi|` only (:math:`f(r) = v(r e_1)\cdot e_1`).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, n_fields))
    x *= (scale * rng.uniform(0.05, 4.0, size=64) / np.linalg.norm(x, axis=1))[:, None]
    return float(_worst_radial_error(kernels, jnp.asarray(x)))


@eqx.filter_jit
def _worst_radial_error(kernels, x):
    r = jnp.linalg.norm(x, axis=1)
    e1 = jnp.zeros(x.shape[1]).at[0].set(1.0)

    def one(i):
        k = kernels.layer(i)
        v = jax.vmap(k)(x)
        f = jax.vmap(k)(r[:, None] * e1)[:, 0]
        err = jnp.linalg.norm(v - f[:, None] * x / r[:, None], axis=1)
        return jnp.max(err) / (jnp.max(jnp.linalg.norm(v, axis=1)) + 1e-300)

    n_layers = jax.tree.leaves(eqx.filter(kernels, eqx.is_array))[0].shape[0]
    return jnp.max(jax.lax.map(one, jnp.arange(n_layers)))


def chi_quantile(w: np.ndarray, n_fields: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Radius :math:`\rho(w)` of the standard :math:`\chi_N` law at :math:`u = \sigma(w)` and :math:`d\rho/dw`.

    :math:`\rho^2/2 \sim \Gamma(N/2)`: the lower tail with ``gammaincinv(N/2, u)``, the upper
    with ``gammainccinv(N/2, 1 - u)`` (no cancellation in either);
    :math:`d\rho/dw = u(1-u)/p_\chi(\rho)`.
    """
    a = 0.5 * n_fields
    w = np.asarray(w, dtype=float)
    lo = w <= 0
    x = np.where(lo, special.gammaincinv(a, special.expit(np.minimum(w, 0))), 0.0)
    x = np.where(lo, x, special.gammainccinv(a, special.expit(-np.maximum(w, 0))))
    rho = np.sqrt(2.0 * x)
    log_pw = -np.logaddexp(0.0, w) - np.logaddexp(0.0, -w)  # log u(1-u)
    log_p = (n_fields - 1) * np.log(rho) - 0.5 * rho * rho - (a - 1) * np.log(2.0) - special.gammaln(a)
    return rho, np.exp(log_pw - log_p)


def tabulate_radial(flow, n_nodes: int = 8192) -> tuple[RadialMap, TableInfo]:
    """Build the :class:`RadialMap` of an :math:`O(N)` ``flow`` (module docstring)."""
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, (int, np.integer)) or n_nodes < 16:
        raise SamplingError(f"the table needs an integer number of nodes >= 16, got {n_nodes!r}")
    n = flow.n_fields
    sd = base_scale(flow) if n > 1 else None
    if sd is None:
        raise SamplingError(
            "the radial table needs several field components and an isotropic Gaussian base N(0, s^2 1) "
            "(an O(N)-invariant start action): use method='rk4'"
        )
    start = time.perf_counter()
    err = check_equivariant(flow.kernels, n, sd)
    if not err < 1e-8:
        raise SamplingError(
            f"the kernels of this flow are not radial (v = phi g(|phi|^2) fails by {err:.2g} relative): "
            "the radial table needs an O(N)-equivariant kernel (the radial basis); use method='rk4'"
        )
    h = 2 * W_MAX / (n_nodes - 1)
    w = np.linspace(-W_MAX, W_MAX, n_nodes)
    stride = max(1, (n_nodes - 1) // CHECKED_CELLS)
    check = np.arange(stride // 2, n_nodes - 1, stride)
    rho, drho = chi_quantile(np.concatenate([w, w[check] + 0.5 * h]), n)
    build = _builder(flow, int(n_nodes), check)
    cells, stats = build(flow.kernels, jnp.asarray(sd * rho), jnp.asarray(sd * drho))
    stats = jax.device_get(stats)
    table = RadialMap(
        TabulatedMap(cells, w_lo=-W_MAX, inv_h=float((n_nodes - 1) / (2 * W_MAX))),
        n_fields=n,
        log_sphere=float(np.log(2.0) + 0.5 * n * np.log(np.pi) - special.gammaln(0.5 * n)),
    )
    lo, hi = int(stats["lo"]), int(stats["hi"])
    info = TableInfo(
        n_nodes=int(n_nodes),
        coverage=float(special.expit(w[hi]) - special.expit(w[lo])),
        max_interpolation_error=float(stats["max_error"]),
        limited_cells=int(stats["limited"]),
        seconds=time.perf_counter() - start,
    )
    if info.coverage < 0.5:
        raise SamplingError(
            f"the RK4 radial map of this flow is finite and monotone only on {info.coverage:.3g} of the base "
            "probability (it is non-finite or folds elsewhere): use more steps, or check the layer residuals"
        )
    return table, info


def _builder(flow, n_nodes: int, check: np.ndarray):
    """The compiled radial table builder of this equation, field count, step count and node count (cached)."""
    velocity = _radial_velocity(flow)
    key = ("radial-table", flow.n_fields, flow.steps, n_nodes, velocity.__name__, type(flow.kernels).__name__)
    equation, steps = flow.equation, flow.steps
    if key in equation.cache:
        return equation.cache[key]
    h = 2 * W_MAX / (n_nodes - 1)
    centre = n_nodes // 2

    @jax.jit
    def build(kernels, r0, dr0):
        ys, ds = _push_nodes(velocity, kernels, r0, dr0, steps)  # dr/dw at the nodes and midpoints
        y, d = ys[:, :n_nodes], ds[:, :n_nodes]
        y_mid = ys[:, n_nodes:]
        x = r0[:n_nodes]
        # usable nodes: finite, positive, increasing at every step time; the covered range is the
        # contiguous run of usable nodes and cells around the centre
        ok_node = jnp.all(jnp.isfinite(y) & jnp.isfinite(d) & (d > 0) & (y > 0), axis=0)
        ok_cell = jnp.all(jnp.diff(y, axis=1) > 0, axis=0)
        ok = ok_node & jnp.concatenate([ok_cell, ok_cell[-1:]]) & jnp.concatenate([ok_cell[:1], ok_cell])
        idx = jnp.arange(n_nodes)
        lo = jnp.max(jnp.where(~ok & (idx < centre), idx, -1)) + 1
        hi = jnp.min(jnp.where(~ok & (idx > centre), idx, n_nodes)) - 1
        # continuation: proportional to r0 below lo (r = 0 is fixed), linear in r0 above hi
        dx = dr0[:n_nodes]
        y_lo, y_hi = y[:, lo][:, None], y[:, hi][:, None]
        g_hi = (d[:, hi] / dx[hi])[:, None]
        below, above = idx < lo, idx > hi
        y = jnp.where(below, y_lo * x / x[lo], jnp.where(above, y_hi + g_hi * (x - x[hi]), y))
        d = jnp.where(below, y_lo * dx / x[lo], jnp.where(above, g_hi * dx, d))
        cells, limit = hermite_cells(y, d, h)
        cm = cells[check]
        f_mid = cm[..., 0] + 0.5 * (cm[..., 1] + 0.5 * (cm[..., 2] + 0.5 * cm[..., 3]))
        inside = (idx[:-1] >= lo) & (idx[:-1] < hi)
        err = jnp.max(jnp.where(inside[check][:, None], jnp.abs(f_mid - y_mid.T), 0.0))
        return cells, dict(lo=lo, hi=hi, max_error=err, limited=jnp.sum(limit & inside[None]))

    equation.cache[key] = build
    return build
