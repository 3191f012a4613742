r"""The potential :math:`\hat S_t(x)` that :class:`~pikflow.baselines.HMC` samples, from any pikflow target.

Every target becomes one JAX function ``S(x, t)`` of a flat configuration ``x`` (length
``dim``) with ``t`` traced, plus the shape one configuration has in its own field space:
``(n,)`` for a 0-D path of ``n`` fields, the lattice's shape (or ``(n, *lattice)`` for ``n``
components per site) for a lattice path (paper sec. IV B). The lattice potential keeps the
lowered gradient stencil of the path (:meth:`~pikflow.action.LatticePath.gradient`) as its
derivative, so the leapfrog kicks use the symbolic gradient, not a second autodiff pass.
Also the checks of the sampler's inputs (step, seed or key) and of the memory its kept numbers need.
"""

from __future__ import annotations

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._errors import PikflowError, SamplingError
from .._memory import available_memory


def _is_lattice_path(target) -> bool:
    """A lowered lattice path: a path with a geometry (duck-typed: the baselines stage comes before the lattice
    space)."""
    return getattr(target, "lattice", None) is not None and all(
        hasattr(target, a) for a in ("field_shape", "value", "gradient")
    )


def _lattice_potential(path):
    r""":math:`\hat S_t` of a flattened lattice configuration, whose VJP is the gradient stencil."""
    shape = tuple(int(s) for s in path.field_shape)

    @jax.custom_vjp
    def action(x, t):
        return path.value(x.reshape(shape), t)

    def forward(x, t):
        return action(x, t), (x, t)

    def backward(res, g):
        x, t = res
        return g * path.gradient(x.reshape(shape), t).reshape(x.shape), jnp.zeros_like(t)

    action.defvjp(forward, backward)
    return action, shape


def _site_symbols(path, shape) -> tuple:
    """``phi[i,j]`` (``phi1[i,j]``, ... with several components) in the flattened order of a configuration."""
    names = list(getattr(path.action, "field_names", ["phi"]))
    lattice = shape[1:] if len(names) > 1 else shape
    sites = [",".join(map(str, idx)) for idx in np.ndindex(*lattice)]
    return tuple(sp.Symbol(f"{name}[{site}]", real=True) for name in names for site in sites)


def target_potential(target, dim, fields):
    """``(action(x, t), dim, fields, path, shape)`` of a Path, Flow, WegnerEquation, Action, LatticePath, callable."""
    from ..action import Action, Path
    from ..lowering import lower

    if hasattr(target, "path") and hasattr(target, "kernels"):  # a Flow
        target = target.path
    if hasattr(target, "action_fn") and hasattr(target, "path"):  # a WegnerEquation
        path, fn = target.path, target.action_fn
        return fn, path.n_fields, tuple(path.fields), path, (path.n_fields,)
    if _is_lattice_path(target):  # before Path: a lattice path is a Path too
        fn, shape = _lattice_potential(target)
        size = math.prod(shape)
        return fn, size, (_site_symbols(target, shape) if fields is None else tuple(fields)), target, shape
    if isinstance(target, Path):
        fn = lower(target.expr, target.fields, what="action")
        return fn, target.n_fields, tuple(target.fields), target, (target.n_fields,)
    if isinstance(target, Action) and target.lattice is not None:
        raise PikflowError(
            "a lattice action needs its couplings on a path: give pikflow.Path(action, {...}) and the time t"
        )
    if isinstance(target, Action):
        if target.couplings:
            raise PikflowError(
                f"the action has couplings {[str(c) for c in target.couplings]} without values: "
                "give a Path (pikflow.Path(action, {...})) and the time t, or substitute the couplings"
            )
        fn = lower(target.expr, target.fields, time=False, what="action")
        return (lambda x, t: fn(x)), target.n_fields, tuple(target.fields), None, (target.n_fields,)
    if isinstance(target, sp.Basic | str):
        raise PikflowError("give the action as a pikflow.Path or pikflow.Action (the fields must be named)")
    if callable(target):
        if dim is None or isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim <= 0:
            raise PikflowError(
                "a callable action S(x) or S(x, t) acts on a flat array: give its length as dim=... (a positive int)"
            )
        try:
            n_args = len(inspect.signature(target).parameters)
        except (TypeError, ValueError):
            n_args = 2
        fn = target if n_args >= 2 else (lambda x, t: target(x))
        if fields is None:
            fields = tuple(sp.Symbol(f"x{i}", real=True) for i in range(dim))
        return fn, int(dim), tuple(fields), None, (int(dim),)
    raise PikflowError(
        "HMC needs a pikflow Path, LatticePath, Flow, WegnerEquation, Action, or a callable S(x[, t]); "
        f"got {type(target).__name__}"
    )


def is_auto(step) -> bool:
    """Whether ``step`` asks for the adaptive step (``"auto"``); any other string is an error."""
    if isinstance(step, str):
        if step != "auto":
            raise PikflowError(f"step_size must be a positive number or 'auto', got {step!r}")
        return True
    return False


def check_positive(name: str, val) -> None:
    """A :class:`PikflowError` naming ``name`` unless ``val`` is a finite positive number."""
    if isinstance(val, bool) or not isinstance(val, int | float | np.floating) or not (math.isfinite(val) and val > 0):
        raise PikflowError(f"{name} must be a positive number, got {val!r}")


def as_key(seed):
    """A raw ``uint32[2]`` PRNG key from an integer seed or a (raw or typed) JAX key."""
    if isinstance(seed, bool):
        raise PikflowError(f"seed must be an integer or a JAX PRNG key, got {seed!r}")
    if isinstance(seed, int | np.integer):
        return jax.random.PRNGKey(int(seed))
    try:
        key = jnp.asarray(seed)
    except TypeError:
        raise PikflowError(f"seed must be an integer or a JAX PRNG key, got {seed!r}") from None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    if key.shape != (2,) or key.dtype != jnp.uint32:
        raise PikflowError(f"seed must be an integer or a JAX PRNG key, got an array {key.dtype}{list(key.shape)}")
    return key


def kept_size(keep, dim: int) -> int:
    """Numbers ``keep`` returns for one configuration of ``dim`` numbers."""
    spec = jax.ShapeDtypeStruct((dim,), jnp.float64), jax.ShapeDtypeStruct((), jnp.float64)
    return math.prod(jax.eval_shape(lambda x, t: jnp.ravel(keep(x, t)), *spec).shape)


def check_positions_memory(n: int, chains: int, dim: int) -> None:
    """Raise :class:`SamplingError` when the ``n x chains x dim`` float64 positions exceed the available memory.

    The measured trajectories are kept in one host array; without this check a run too large is
    killed by the operating system part-way, with no message (``n`` is per chain).
    """
    need, limit = 8.0 * n * chains * dim, available_memory()
    if need > limit:
        raise SamplingError(
            f"{n} trajectories x {chains} chains x {dim} numbers need {need / 2**30:.3g} GiB for the positions, "
            f"more than the {limit / 2**30:.3g} GiB available: lower n (trajectories per chain) or chains, or run "
            f"several shorter runs and combine them"
        )
