r"""A tabulated monotone transport map for one-component flows: fast sampling, exact weights.

For one field component the flow (eq. 11) is a monotone map of the line, so every step
time :math:`t_k` has a map :math:`\phi_k = T_k(z)` from the base sample. pikflow
tabulates it once and samples with a table look-up instead of :math:`4\times` steps
kernel evaluations (RK4) per sample:

1. **Inverse-CDF coordinates.** A uniform :math:`u\in(0,1)` becomes
   :math:`w = \log u - \log(1-u)` (logistic density :math:`p_w(w) = u(1-u)`, two
   logarithms; no normal variates needed) and :math:`z = \Phi^{-1}(u)` is the standard
   normal base variable, so :math:`\phi_k = F_k(w) = T_k(\mu + \sigma z(w))`. With
   :math:`u = (k + \tfrac12)\,2^{-52}`, :math:`|w| < 36.8`: a finite table covers every
   sample and no extrapolation is ever needed.
2. **The table.** :math:`F_k` and its derivative are computed on a uniform grid in
   :math:`w` by pushing the nodes through the RK4 map of the flow (eq. 11) with the
   derivative of the RK4 step (the tangent, propagated with :math:`v'`; Clenshaw's
   recurrence for the default sine basis, eq. 25). Between nodes :math:`F_k` is the cubic
   Hermite interpolant of these values and derivatives, with the Fritsch-Carlson limiter
   (:math:`\alpha^2+\beta^2\le 9`) so that it is monotone on every cell.
3. **Exact weights.** The map actually applied *is* the piecewise cubic, so its own
   derivative gives the density of the samples exactly:
   :math:`\log q_k(\phi) = \log p_w(w) - \log F_k'(w)`. The importance weights
   :math:`w = e^{-\hat S_k(\phi) - \log q_k(\phi)}` are exact whatever the
   interpolation error, which only moves the ESS (by far less than :math:`10^{-9}` on
   the paper's path).
4. **Layout.** ``cells[j, k]`` holds the four coefficients of cell ``j`` at step time
   ``k``: the coefficients of a cell for *every* step time are contiguous, so one
   look-up per sample (one row of ``4 (steps + 1)`` numbers) serves all step times, and
   the cell index and the position in the cell are computed once per sample.

Where the RK4 map is not usable (far tails, beyond what the collocation points
covered, where it may fold or overflow), the table continues it linearly in :math:`z`
from the last good node (a monotone :math:`C^1` continuation). The probability mass of
the base where this happens is reported as ``1 - coverage``; the weights stay exact
there too.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri
from jaxtyping import Array, Float

from .._errors import SamplingError
from ..equations import AbstractKernel

#: :math:`|w| \le` this covers every :math:`u = (k + 1/2) 2^{-52}`, :math:`k < 2^{52}`.
W_MAX = 37.0


@dataclasses.dataclass(frozen=True)
class TableInfo:
    """What a tabulated map reports about itself.

    Attributes
    ----------
    n_nodes
        Grid nodes in :math:`w`.
    coverage
        Base probability of the range where the table follows the RK4 flow (the rest
        is the linear continuation; weights are exact in both).
    max_interpolation_error
        Largest :math:`|F_k - T_k|` at the midpoints of (about 256 equally spaced)
        cells inside the covered range, over all step times (the cubic against the RK4 map
        itself).
    limited_cells
        Cells where the Fritsch-Carlson limiter changed the derivatives.
    seconds
        Wall time to build the table (compilation included on first use).
    """

    n_nodes: int
    coverage: float
    max_interpolation_error: float
    limited_cells: int
    seconds: float


class TabulatedMap(eqx.Module):
    r"""Monotone piecewise-cubic maps :math:`w \mapsto \phi_k` for every step time (module docstring).

    ``cells[j, k]`` holds :math:`(c_0, c_1, c_2, c_3)` of cell ``j`` at step time ``k``:
    :math:`F_k = c_0 + c_1 s + c_2 s^2 + c_3 s^3`, :math:`s\in[0, 1]` across the cell. A
    cell's coefficients for every step time are contiguous, so one look-up per sample
    fetches all step times; the cell index and :math:`s` depend on :math:`w` only
    (:meth:`locate`).
    """

    cells: Float[Array, "cells times 4"]
    w_lo: float = eqx.field(static=True)
    inv_h: float = eqx.field(static=True)

    @property
    def n_cells(self) -> int:
        """Number of grid cells (nodes - 1)."""
        return self.cells.shape[0]

    @property
    def n_times(self) -> int:
        """Number of step times (steps + 1)."""
        return self.cells.shape[1]

    def locate(self, w):
        """Cell index ``j`` and position ``s`` in ``[0, 1]`` across the cell of every ``w`` (the same at every time)."""
        pos = (w - self.w_lo) * self.inv_h  # >= 0: |w| <= W_MAX, so truncation is floor
        j = jnp.clip(pos.astype(jnp.int32), 0, self.n_cells - 1)
        return j, pos - j

    def cubic(self, c, s):
        r""":math:`F(s)` and :math:`dF/dw` from looked-up cells ``c`` ``(..., 4)`` at positions ``s`` (broadcast)."""
        c0, c1, c2, c3 = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
        value = c0 + s * (c1 + s * (c2 + s * c3))
        slope = (c1 + s * (2.0 * c2 + 3.0 * s * c3)) * self.inv_h
        return value, slope

    def evaluate(self, w: Float[Array, " n"], k: int | None = None):
        r""":math:`(F_k(w), \log F_k'(w))` for step ``k`` (all steps stacked, ``(times, n)``, if ``k`` is None)."""
        j, s = self.locate(w)
        if k is not None:
            value, slope = self.cubic(self.cells[:, k].at[j].get(mode="promise_in_bounds"), s)
            return value, jnp.log(slope)
        value, slope = self.cubic(self.cells.at[j].get(mode="promise_in_bounds"), s[:, None])
        return value.T, jnp.log(slope).T

    @staticmethod
    def uniforms(key, n: int):
        """``u = (k + 1/2) 2^{-52}`` from 52 random bits, ``1 - u`` (exact) and ``w = log(u / (1 - u))``."""
        bits = jax.random.bits(key, (n,), dtype=jnp.uint64) >> jnp.uint64(12)
        u = (bits.astype(jnp.float64) + 0.5) * (2.0**-52)
        v = 1.0 - u
        return u, v, jnp.log(u / v)

    def sample(self, key, n: int, *, all_times: bool):
        r"""``n`` samples: configurations and :math:`\log q`, shape ``(times, n)`` or, for the last time only, ``(n,)``.

        ``u = (k + 1/2) 2^{-52}`` from 52 random bits, :math:`w = \log(u/(1-u))`,
        :math:`\log q = \log(u(1-u)/F'(w))`: two logarithms per sample and step time
        (:math:`1-u` is exact in floating point).
        """
        u, v, w = self.uniforms(key, n)
        pw = u * v
        j, s = self.locate(w)
        if all_times:
            value, slope = self.cubic(self.cells.at[j].get(mode="promise_in_bounds"), s[:, None])
            return value.T, jnp.log(pw[None] / slope.T)
        value, slope = self.cubic(self.cells[:, -1].at[j].get(mode="promise_in_bounds"), s)
        return value, jnp.log(pw / slope)


def _z_of_w(w):
    """Standard normal quantile of the logistic variable, accurate in both tails, and dz/dw."""
    a = -jnp.abs(w)
    u_small = jnp.exp(a - jnp.logaddexp(0.0, a))  # sigma(-|w|), no cancellation
    z_neg = ndtri(u_small)
    z = jnp.where(w < 0, z_neg, -z_neg)
    log_dz = -jnp.logaddexp(0.0, w) - jnp.logaddexp(0.0, -w) + 0.5 * jnp.log(2 * jnp.pi) + 0.5 * z * z
    return z, jnp.exp(log_dz)


def _velocity_fn(flow):
    r"""``ev(kernel, p) -> (v(p), v'(p))`` for a batch ``p`` ``(n,)`` of one-component configurations.

    For the default basis (:class:`~pikflow.bases.Sine` with equally spaced frequencies
    :math:`\omega_j = j\omega_1`, a :class:`~pikflow.flow.LinearKernel`) the sine and cosine
    sums of eq. 25 and their derivatives are evaluated by Clenshaw's recurrence
    (:math:`b_j = a_j + 2\cos\theta\, b_{j+1} - b_{j+2}`; one ``sin`` and one ``cos`` per
    point and a fused loop, no ``(n, n_basis)`` matrix). Any other kernel: forward-mode
    derivative of the kernel itself.
    """
    from ..bases import Sine
    from ..bases._basis import resolve_parity
    from ..equations import LinearKernel

    eq, kernels = flow.equation, flow.kernels
    basis = getattr(eq, "basis", None)
    fast = (
        isinstance(kernels, LinearKernel)
        and isinstance(basis, Sine)
        and kernels.values is eq.values
        and basis.fast_numeric(1, eq.symmetric) is not None
    )
    if not fast:

        def generic(kernel, p):
            f = lambda q: jax.vmap(kernel)(q[:, None])[:, 0]  # noqa: E731
            return jax.jvp(f, (p,), (jnp.ones_like(p),))

        return generic
    parity = resolve_parity(basis.parity, eq.symmetric)
    n = len(basis.frequencies)
    w1 = float(basis.frequencies[0])
    jw = w1 * jnp.arange(1, n + 1)

    def split(a):  # coefficients in the order of pikflow.bases._fast_sine: [1], [phi, sin...], [cos...]
        i = 0
        const = lin = a_sin = a_cos = None
        if parity in ("even", "all"):
            const, i = a[0], 1
        if parity in ("odd", "all"):
            lin, a_sin, i = a[i], a[i + 1 : i + 1 + n], i + 1 + n
        if parity in ("even", "all"):
            a_cos = a[i : i + n]
        return const, lin, a_sin, a_cos

    def clenshaw(two_c, series):
        """``b_1, b_2`` of Clenshaw's recurrence for every coefficient vector in ``series``."""
        b1 = [jnp.zeros_like(two_c) for _ in series]
        b2 = [jnp.zeros_like(two_c) for _ in series]
        for j in range(n - 1, -1, -1):
            for i, a in enumerate(series):
                b1[i], b2[i] = a[j] + two_c * b1[i] - b2[i], b1[i]
        return b1, b2

    def fast_eval(kernel, p):
        if kernel.scale is not None:  # v(phi) = u(phi / s), v' = u'(phi / s) / s
            v, dv = unscaled(kernel.coeffs, p / kernel.scale)
            return v, dv / kernel.scale
        return unscaled(kernel.coeffs, p)

    def unscaled(coeffs, p):
        const, lin, a_sin, a_cos = split(coeffs)
        theta = w1 * p
        sn, cs = jnp.sin(theta), jnp.cos(theta)
        v, dv = jnp.zeros_like(p), jnp.zeros_like(p)
        series = []
        if a_sin is not None:  # sum a_j sin(j theta) and its derivative sum j w1 a_j cos(j theta)
            series += [a_sin, jw * a_sin]
        if a_cos is not None:  # sum a_j cos(j theta) and its derivative -sum j w1 a_j sin(j theta)
            series += [a_cos, -jw * a_cos]
        b1, b2 = clenshaw(2.0 * cs, series)
        i = 0
        if a_sin is not None:
            v = v + lin * p + b1[0] * sn
            dv = dv + lin + b1[1] * cs - b2[1]
            i = 2
        if a_cos is not None:
            v = v + b1[i] * cs - b2[i]
            dv = dv + b1[i + 1] * sn
        if const is not None:
            v = v + const
        return v, dv

    return fast_eval


def _push_nodes(velocity, kernels: AbstractKernel, x, dx, steps: int):
    r"""Push nodes ``x`` with tangents ``dx`` through every RK4 step (eq. 11); returns ``(steps+1, n)`` arrays.

    The tangent of the RK4 map is propagated with :math:`v'` of each stage (the forward-mode
    derivative of the step, written out): the Hermite data :math:`F_k, F_k'` of the table.
    """
    dt = 1.0 / steps

    def body(carry, i):
        p, d = carry
        ka, km, kb = kernels.layer(2 * i), kernels.layer(2 * i + 1), kernels.layer(2 * i + 2)
        v1, g1 = velocity(ka, p)
        e1 = g1 * d
        v2, g2 = velocity(km, p + 0.5 * dt * v1)
        e2 = g2 * (d + 0.5 * dt * e1)
        v3, g3 = velocity(km, p + 0.5 * dt * v2)
        e3 = g3 * (d + 0.5 * dt * e2)
        v4, g4 = velocity(kb, p + dt * v3)
        e4 = g4 * (d + dt * e3)
        new = p + dt / 6.0 * (v1 + 2 * v2 + 2 * v3 + v4)
        dnew = d + dt / 6.0 * (e1 + 2 * e2 + 2 * e3 + e4)
        return (new, dnew), (new, dnew)

    _, (ps, ds) = jax.lax.scan(body, (x, dx), jnp.arange(steps))
    return jnp.concatenate([x[None], ps]), jnp.concatenate([dx[None], ds])


def tabulate(flow, n_nodes: int = 8192) -> tuple[TabulatedMap, TableInfo]:
    """Build the :class:`TabulatedMap` of a one-component ``flow`` (module docstring, steps 2-4)."""
    import time

    if flow.n_fields != 1:
        raise SamplingError(f"the tabulated map needs one field component, this flow has {flow.n_fields}")
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, (int, np.integer)) or n_nodes < 16:
        raise SamplingError(f"the table needs an integer number of nodes >= 16, got {n_nodes!r}")
    start = time.perf_counter()
    build = _builder(flow, int(n_nodes))
    mean, sd = flow.base.mean[0], flow.base.cholesky_cov[0, 0]
    cells, stats = build(flow.kernels, mean, sd)
    stats = jax.device_get(stats)
    table = TabulatedMap(cells, w_lo=-W_MAX, inv_h=float((n_nodes - 1) / (2 * W_MAX)))
    info = TableInfo(
        n_nodes=int(n_nodes),
        coverage=float(stats["coverage"]),
        max_interpolation_error=float(stats["max_error"]),
        limited_cells=int(stats["limited"]),
        seconds=time.perf_counter() - start,
    )
    if info.coverage < 0.5:
        raise SamplingError(
            f"the RK4 map of this flow is finite and monotone only on {info.coverage:.3g} of the base probability "
            "(it is non-finite or folds elsewhere): use more steps, or check the layer residuals"
        )
    return table, info


def hermite_cells(y, d, h: float):
    r"""Monotone cubic Hermite cells ``(cells, times, 4)`` from node values and slopes ``(times, nodes)``.

    Node spacing ``h``; the Fritsch-Carlson limiter (:math:`\alpha^2+\beta^2\le 9`) scales the
    slopes of a cell where needed so that the cubic is monotone on it. Returns the cells and
    the mask of limited cells ``(times, cells)``.
    """
    delta = y[:, 1:] - y[:, :-1]
    m0, m1 = d[:, :-1] * h, d[:, 1:] * h
    r = jnp.sqrt((m0 / delta) ** 2 + (m1 / delta) ** 2)
    limit = r > 3.0
    tau = jnp.where(limit, 3.0 / r, 1.0)
    m0, m1 = m0 * tau, m1 * tau
    cells = jnp.stack([y[:, :-1], m0, 3 * delta - 2 * m0 - m1, m0 + m1 - 2 * delta], axis=-1)
    return jnp.moveaxis(cells, 0, 1), limit


#: the interpolation error is measured at the midpoints of about this many cells, equally spaced
CHECKED_CELLS = 256


def _builder(flow, n_nodes: int):
    """The compiled table builder of this equation, step count, node count and kernel type (cached)."""
    velocity = _velocity_fn(flow)
    key = ("table", flow.steps, n_nodes, velocity.__name__, type(flow.kernels).__name__)
    equation, steps = flow.equation, flow.steps
    if key in equation.cache:
        return equation.cache[key]
    h = 2 * W_MAX / (n_nodes - 1)
    w = jnp.linspace(-W_MAX, W_MAX, n_nodes)
    stride = max(1, (n_nodes - 1) // CHECKED_CELLS)
    check = np.arange(stride // 2, n_nodes - 1, stride)  # the cells whose midpoints are checked
    w_mid = w[check] + 0.5 * h
    centre = n_nodes // 2

    @jax.jit
    def build(kernels, mean, sd):
        z, dz = _z_of_w(jnp.concatenate([w, w_mid]))
        ys, ds = _push_nodes(velocity, kernels, mean + sd * z, sd * dz, steps)  # dphi/dw at the nodes
        y, d = ys[:, :n_nodes], ds[:, :n_nodes]
        y_mid = ys[:, n_nodes:]
        z_n = z[:n_nodes]
        # usable nodes: finite, increasing, at every step time; the covered range is the
        # contiguous run of usable nodes and cells around the centre
        ok_node = jnp.all(jnp.isfinite(y) & jnp.isfinite(d) & (d > 0), axis=0)
        ok_cell = jnp.all(jnp.diff(y, axis=1) > 0, axis=0)
        ok = ok_node & jnp.concatenate([ok_cell, ok_cell[-1:]]) & jnp.concatenate([ok_cell[:1], ok_cell])
        idx = jnp.arange(n_nodes)
        lo = jnp.max(jnp.where(~ok & (idx < centre), idx, -1)) + 1
        hi = jnp.min(jnp.where(~ok & (idx > centre), idx, n_nodes)) - 1
        # linear continuation in z beyond [lo, hi], per step time
        dphi_dz = d / dz[:n_nodes]
        y_lo, y_hi = y[:, lo][:, None], y[:, hi][:, None]
        g_lo, g_hi = dphi_dz[:, lo][:, None], dphi_dz[:, hi][:, None]
        below, above = idx < lo, idx > hi
        y = jnp.where(below, y_lo + g_lo * (z_n - z_n[lo]), jnp.where(above, y_hi + g_hi * (z_n - z_n[hi]), y))
        d = jnp.where(below, g_lo * dz[:n_nodes], jnp.where(above, g_hi * dz[:n_nodes], d))
        cells, limit = hermite_cells(y, d, h)
        # interpolation error at the checked midpoints, inside the covered range
        cm = cells[check]  # (checked, times, 4)
        f_mid = cm[..., 0] + 0.5 * (cm[..., 1] + 0.5 * (cm[..., 2] + 0.5 * cm[..., 3]))
        inside = (idx[:-1] >= lo) & (idx[:-1] < hi)
        err = jnp.max(jnp.where(inside[check][:, None], jnp.abs(f_mid - y_mid.T), 0.0))
        u_lo = jax.scipy.stats.norm.cdf(z_n[lo])
        u_hi = jax.scipy.stats.norm.cdf(-z_n[hi])
        stats = dict(coverage=1.0 - u_lo - u_hi, max_error=err, limited=jnp.sum(limit & inside[None]))
        return cells, stats

    equation.cache[key] = build
    return build
