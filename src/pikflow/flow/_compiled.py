r"""Compiled lattice functions shared by every basis and path of the same structure (issue #20).

The per-candidate numbers of a flow (the basis's filters, taming widths and :math:`h`
factors, the base precision :math:`K_0` and zero-mode coupling of a matched path) are
traced *arguments* of the compiled functions here, never constants baked into them. The
functions are cached at module level by the *structure* that is baked in (lattice shape,
families and their powers, deduplicated scales, the path's symbolic density, RK4 steps), so
the 2-4 candidates of :func:`fit_lattice` and repeated :func:`solve_lattice` calls compile once:

* :func:`push_fn`: the fused RK4 push of eqs. 11 and 32 (velocity and :math:`\Delta\Omega`), forward,
  reverse or one step of the solve, one program for all three;
* :func:`velocity_fn`: :math:`v = -\partial\Omega` of a batch;
* :func:`assembler_fn`: one layer's collocated eq. 34 and its least squares;
* :func:`target_fn`: :math:`\hat S_t` of a batch at a fixed time.

Each returns a callable without the constants (they are bound with :func:`functools.partial`);
the numbers are those of the per-object compiled code, to float64 rounding (tested).
"""

from __future__ import annotations

import collections
import functools

import jax
import jax.numpy as jnp

from ._integrate import rk4_window, zero_layer

#: Compiled functions kept (least recently used dropped first). An entry holds its template objects.
CACHE_SIZE = 64
_CACHE: collections.OrderedDict = collections.OrderedDict()
#: Cache misses (a new structure: one more compilation per input shape), for tests and benchmarks.
misses = collections.Counter()


def _cached(key, build):
    fn = _CACHE.get(key)
    if fn is None:
        misses[key[0]] += 1
        fn = build()
        _CACHE[key] = fn
        if len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return fn


def clear_cache() -> None:
    """Forget every compiled function (the next call of each structure compiles again)."""
    _CACHE.clear()
    misses.clear()


#: The precisions of the velocity evaluation (:meth:`LatticeFlow.sample`'s ``precision``).
PRECISIONS = ("float64", "float32")


def _as(dtype, tree):
    """Every floating leaf of ``tree`` cast to ``dtype`` (integer leaves, e.g. orbit indices, unchanged)."""
    return jax.tree_util.tree_map(lambda v: v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v, tree)


def rk4_push(evaluate, steps: int, reverse: bool = False, dt: float | None = None, precision: str = "float64"):
    r"""``push(params, coeffs, x, lq)``: RK4 over the stage layers, adding :math:`\int\Delta\Omega\,dt` to ``lq``.

    ``evaluate(params, a, field)`` gives :math:`(\partial\Omega, \Delta\Omega)` of one configuration;
    ``reverse``: from :math:`t = 1` back to 0; ``dt`` the step (default ``1 / steps``). All steps in
    one loop (:func:`window_push` over the whole path), one fused evaluation per RK4 stage.
    ``precision="float32"``: each evaluation (its input, coefficients and constants) in float32, its
    results cast back; the RK4 state and :math:`\log q` are accumulated in the dtype of ``x`` and ``lq`` (float64).
    """
    window = window_push(evaluate, precision)
    sign, dt = (1.0 if reverse else -1.0), (1.0 / steps if dt is None else dt)

    def push(params, coeffs, x, lq):
        return window(params, coeffs[::-1] if reverse else coeffs, x, lq, 0, steps, sign, dt)

    return push


def window_push(evaluate, precision: str = "float64"):
    r"""``push(params, coeffs, x, lq, first, count, sign, dt, skip=0)``: RK4 steps ``first .. first + count - 1``.

    :func:`rk4_push` with the window, the direction (``sign`` :math:`-1` forward, :math:`+1` with the
    layers reversed), the step and ``skip`` traced (:func:`~pikflow.flow.rk4_window`, a loop over the RK4
    stages with one evaluation in its body): one compilation per basis structure and batch shape serves
    sampling, the reverse pull-back and every step of the solve. ``skip = 1``: layer ``2 first`` is zero, so
    step ``first`` runs with 3 evaluations instead of 4.
    """
    both = jax.vmap(evaluate, (None, None, 0))
    low = jnp.float32 if precision == "float32" else None

    def push(params, coeffs, x, lq, first, count, sign, dt, skip=0):
        if low is not None:
            params = _as(low, params)

        def stage(k, y):  # layer k's (sign * dΩ, ΔΩ) of the batch y
            a = coeffs[k]
            if low is None:
                g, lap = both(params, a, y)
            else:
                g, lap = both(params, a.astype(low), y.astype(low))
                g, lap = g.astype(y.dtype), lap.astype(y.dtype)
            return sign * g, lap

        return rk4_window(stage, x, lq, first, count, dt, skip)

    return push


def push_fn(
    basis,
    steps: int,
    *,
    reverse: bool = False,
    donate: bool = False,
    precision: str = "float64",
):
    """The compiled push ``(coeffs, x, lq, first=0, count=steps) -> (x, lq)`` of ``basis``, shared by structure.

    ``coeffs`` holds every stage layer, shape ``(2 steps + 1, n_basis)``; ``first``, ``count``: the RK4
    steps applied (default the whole path). ``reverse``: from :math:`t = 1` back (the layers reversed).
    Forward, reverse and single steps share one compiled program per structure and ``precision`` (of
    the velocity evaluation, :func:`rk4_push`); it donates the buffers of ``x`` and ``lq``, and unless
    ``donate`` (the caller owns them) they are copied first.
    """
    ev = basis.fused

    def build():
        return jax.jit(window_push(ev.evaluate, precision), donate_argnums=(2, 3))

    compiled = _cached(("push", ev.key, precision), build)
    sign, dt = (1.0 if reverse else -1.0), 1.0 / int(steps)

    def push(coeffs, x, lq, first: int = 0, count: int = int(steps)):
        coeffs = jnp.asarray(coeffs)
        if reverse:
            coeffs = coeffs[::-1]
        if not donate:
            x, lq = jnp.array(x, copy=True), jnp.array(lq, copy=True)
        first, count = int(first), int(count)
        # a zero first layer (layer 0 of a clock t**p, p > 1, forward): its stage is not evaluated
        skip = int(count > 0 and zero_layer(coeffs, 2 * first))
        return compiled(ev.params, coeffs, x, lq, first, count, sign, dt, skip)

    return push


def velocity_fn(basis):
    r"""The compiled :math:`v = -\partial\Omega` ``(a, fields) -> velocities`` of ``basis``, shared by structure."""
    ev = basis.fused

    def build():
        return jax.jit(jax.vmap(lambda p, a, x: -ev.evaluate(p, a, x)[0], (None, None, 0)))

    return functools.partial(_cached(("velocity", ev.key), build), ev.params)


def target_fn(path, time: float = 1.0):
    r"""The compiled :math:`\hat S_t` of a batch at ``time`` (``fields -> values``), shared by structure."""
    params, pkey = path.traced_parameters()

    def build():
        return jax.jit(jax.vmap(lambda p, x: path.with_parameters(p).value(x, time), (None, 0)))

    return functools.partial(_cached(("target", pkey, float(time)), build), params)


def _solver_key(solver):
    try:
        hash(solver)
    except TypeError:
        return ("id", id(solver))  # the cache entry holds the solver, so its id stays unique
    return solver


def assembler_fn(path, basis, solver, chunk: int, rcond: float, make):
    """``make(path, evaluator, solver, chunk, rcond)`` compiled once per structure, constants bound.

    ``make`` builds the jitted ``assemble(params, X, t, limit, init, first)`` with ``params`` =
    ``(path parameters, basis parameters)`` (:meth:`LatticePath.with_parameters`, :attr:`FusedEvaluator.params`).
    """
    ev = basis.fused
    pparams, pkey = path.traced_parameters()
    key = ("assemble", pkey, ev.key, _solver_key(solver), int(chunk), float(rcond))

    def build():
        return make(path, ev, solver, int(chunk), float(rcond))

    return functools.partial(_cached(key, build), (pparams, ev.params))
