r"""Integrating the flow (eq. 11) with RK4, and the log-density along each path.

The layers sit at the RK4 stages: with ``steps`` steps of size :math:`\Delta t`, layer
``2i`` is at :math:`t_i`, layer ``2i+1`` at :math:`t_i + \Delta t/2` (used twice),
layer ``2i+2`` at :math:`t_{i+1}`: :math:`2\,\text{steps}+1` kernels (51 for 25 steps).

Two log-densities are offered:

``"exact"``
    :math:`\log q_{i+1}(\phi_{i+1}) = \log q_i(\phi_i) - \log|\det \partial\phi_{i+1}/\partial\phi_i|`,
    the exact change of variables for the discrete RK4 map actually applied (forward-mode
    autodiff, cheap for few field components). The importance weights are then exact
    for the samples produced, whatever the time-step error.
``"continuous"``
    :math:`d\log q_t/dt = -\partial\cdot v_t` integrated with the same RK4 stages; exact
    only up to the time-discretisation error.

A step whose Jacobian determinant is not positive (the map folded) gives ``log q = nan``
for that sample: it is counted as non-finite, never silently used.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..equations import AbstractKernel

LOGDETS = ("exact", "continuous")


def rk4(first, middle, last, x, dt):
    r"""One classical RK4 step of a state of any shape, and the matching increment of a rate.

    ``first``, ``middle``, ``last`` evaluate the layers at :math:`t`, :math:`t + \Delta t/2` (used
    twice) and :math:`t + \Delta t`; each maps a state ``y`` to ``(v(y), r(y))``: the velocity
    (eq. 11) and a scalar rate integrated alongside, e.g. :math:`\partial\cdot v` for the
    continuous log-density (eq. 32 in the :math:`\Omega` form: :math:`-\Delta\Omega`). Returns
    ``(x', dt/6 (r_1 + 2 r_2 + 2 r_3 + r_4))``. ``dt < 0`` steps backwards. The one integrator of
    every field space: a 0-D configuration ``(n_fields,)``, a lattice batch ``(n, *field_shape)``.
    """
    k1, r1 = first(x)
    k2, r2 = middle(x + 0.5 * dt * k1)
    k3, r3 = middle(x + 0.5 * dt * k2)
    k4, r4 = last(x + dt * k3)
    return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4), dt / 6.0 * (r1 + 2 * r2 + 2 * r3 + r4)


def rk4_scan(stage, x, log_q, *, steps: int, dt: float | None = None, keep: bool = False):
    r"""``steps`` RK4 steps of ``(x, log q)`` in one ``lax.scan``: step ``i`` uses layers ``2i, 2i+1, 2i+2``.

    ``stage(k, y)`` gives ``(v, r)`` of layer ``k`` (a traced index) at ``y``; ``log q`` gains
    :math:`\int r\,dt` (so ``r`` is :math:`d\log q/dt = -\partial\cdot v`). ``dt`` defaults to
    ``1 / steps``. ``keep``: also return every step's state and ``log q`` (leading axis ``steps``).
    """
    dt = 1.0 / steps if dt is None else dt

    def body(carry, i):
        new, lq = _stage_step(stage, i, carry, dt)
        return (new, lq), ((new, lq) if keep else None)

    (x, log_q), kept = jax.lax.scan(body, (x, log_q), jnp.arange(steps))
    return ((x, log_q), kept) if keep else (x, log_q)


#: RK4's four stages as rows of a loop (:func:`rk4_window`): the stage's state is the step's start plus
#: ``offset * dt`` times the previous stage's velocity, at layer ``2i + layer``, weighted ``weight / 6``.
RK4_OFFSETS = (0.0, 0.5, 0.5, 1.0)
RK4_LAYERS = (0, 1, 1, 2)
RK4_WEIGHTS = (1.0, 2.0, 2.0, 1.0)


def rk4_window(stage, x, log_q, first, count, dt, skip=0):
    r"""RK4 steps ``first, ..., first + count - 1`` of ``(x, log q)`` (step ``i`` uses layers ``2i, 2i+1, 2i+2``).

    As :func:`rk4_scan`, but ``first``, ``count``, ``dt`` and ``skip`` may be traced: one compiled loop serves
    the whole path (``first = 0``, ``count = steps``), the reverse path (the stage layers reversed) and
    the solve's single step through the layers solved so far. The loop runs over the *stages*
    (:data:`RK4_OFFSETS`, :data:`RK4_LAYERS`, :data:`RK4_WEIGHTS`), so the compiled program holds one velocity
    evaluation, not four: at 16x16 it compiled in 0.62 s against 0.84 s for the loop over the steps and 1.29 s
    with the zero layer's step peeled off, and ran as fast (``benchmarks/lattice/integrators/zero_layer.py``).
    The sums are formed in the order of :func:`rk4`, so the numbers are RK4's; XLA compiles the loop differently
    and may round a sum differently in the last bit.

    ``skip`` is 0 or 1 (a larger value would skip more stages). ``skip = 1``: the first stage of step ``first``
    is not evaluated and counts as zero, for a zero layer
    ``2 first`` (layer 0 of a clock :math:`t = \tau^p`, :math:`p > 1`, where :math:`dt/d\tau = 0`). A velocity
    linear in its coefficients vanishes with them, and so does its divergence, so the step is the one that
    evaluates it, with 3 evaluations instead of 4. The caller checks that the layer is zero.
    """
    c = jnp.asarray(RK4_OFFSETS, dtype=x.dtype)
    b = jnp.asarray(RK4_WEIGHTS, dtype=x.dtype)
    layer = jnp.asarray(RK4_LAYERS)

    def body(s, carry):
        x, lq, k, acc, lacc = carry
        i, j = s // 4, s % 4
        y = jnp.where(j == 0, x, x + (c[j] * dt) * k)
        k, r = stage(2 * i + layer[j], y)
        acc = jnp.where(j == 0, 0.0, acc) + b[j] * k  # k1 + 2 k2 + 2 k3 + k4, summed left to right
        lacc = jnp.where(j == 0, 0.0, lacc) + b[j] * r
        done = j == 3
        return jnp.where(done, x + dt / 6.0 * acc, x), jnp.where(done, lq + dt / 6.0 * lacc, lq), k, acc, lacc

    zeros, lzeros = jnp.zeros_like(x), jnp.zeros_like(log_q)
    start = 4 * first + skip
    out = jax.lax.fori_loop(start, 4 * (first + count), body, (x, log_q, zeros, zeros, lzeros))
    return out[0], out[1]


def _stage_step(stage, i, carry, dt):
    """RK4 step ``i`` of ``carry = (y, log q)`` through the stage layers ``2i, 2i+1, 2i+2``."""
    y, lq = carry
    new, dlq = rk4(lambda z: stage(2 * i, z), lambda z: stage(2 * i + 1, z), lambda z: stage(2 * i + 2, z), y, dt)
    return new, lq + dlq


def zero_layer(coeffs, k: int) -> bool:
    """Whether layer ``k`` of concrete ``coeffs`` is all zero (layer 0 of a clock t**p, p > 1): its stage vanishes."""
    return not np.any(np.asarray(coeffs[k]))


#: Jacobian columns of :func:`exact_log_det` pushed forward together: one forward-mode pass per block
#: keeps the tangents in flight to ``JACOBIAN_BLOCK`` per configuration (a full ``jacfwd`` of a 32x32
#: lattice map carries 1024 tangents through every intermediate of every batched configuration and
#: ran out of 24 GB in an SMC step).
JACOBIAN_BLOCK = 16


def exact_log_det(step, x):
    r""":math:`\log|\det\partial\,\text{step}(x)/\partial x|` of one configuration's map (any shape).

    The Jacobian is built from Jacobian-vector products, :data:`JACOBIAN_BLOCK` columns at a time
    (all at once for a configuration of at most that many numbers), so its memory grows with
    ``x.size**2`` for the matrix only, not with the map's intermediates times ``x.size``.
    ``nan`` where the determinant is not positive (the map folded there): such a sample is
    counted as non-finite, never given a wrong weight.
    """
    n = x.size
    if n <= JACOBIAN_BLOCK:
        jac = jax.jacfwd(step)(x).reshape(n, n)
    else:
        flat = lambda v: step(v.reshape(x.shape)).reshape(-1)  # noqa: E731
        push = lambda e: jax.jvp(flat, (x.reshape(-1),), (e,))[1]  # noqa: E731
        jac = jax.lax.map(push, jnp.eye(n, dtype=x.dtype), batch_size=JACOBIAN_BLOCK)  # the transpose
    sign, logabs = jnp.linalg.slogdet(jac)
    return jnp.where(sign > 0, logabs, jnp.nan)


def _velocity_only(kernel):
    return lambda y: (kernel(y), 0.0)


def _with_divergence(kernel):
    return lambda y: (kernel(y), kernel.divergence(y))


def rk4_step(kernels: AbstractKernel, i, phi, dt):
    """One RK4 step of a single configuration through layers ``2i, 2i+1, 2i+2`` (:func:`rk4`)."""
    layers = (kernels.layer(2 * i), kernels.layer(2 * i + 1), kernels.layer(2 * i + 2))
    return rk4(*map(_velocity_only, layers), phi, dt)[0]


def rk4_step_with_divergence(kernels: AbstractKernel, i, phi, dt):
    r"""RK4 step of :math:`(\phi, \log q)` with :math:`d\log q/dt = -\partial\cdot v`: returns (phi', -Δlog q)."""
    layers = (kernels.layer(2 * i), kernels.layer(2 * i + 1), kernels.layer(2 * i + 2))
    return rk4(*map(_with_divergence, layers), phi, dt)


def push(kernels: AbstractKernel, phi, log_q, *, steps: int, logdet: str):
    """Push a batch ``(n, n_fields)`` through every step; returns per-step ``phi`` and ``log q``.

    Outputs have a leading axis of length ``steps + 1`` (the base included).
    """
    dt = 1.0 / steps

    def one(i, p):
        if logdet == "exact":
            step = lambda x: rk4_step(kernels, i, x, dt)  # noqa: E731
            return step(p), exact_log_det(step, p)
        return rk4_step_with_divergence(kernels, i, p, dt)

    def body(carry, i):
        p, lq = carry
        new, dlog = jax.vmap(one, in_axes=(None, 0))(i, p)
        lq = lq - dlog
        return (new, lq), (new, lq)

    _, (phis, lqs) = jax.lax.scan(body, (phi, log_q), jnp.arange(steps))
    return jnp.concatenate([phi[None], phis]), jnp.concatenate([log_q[None], lqs])
