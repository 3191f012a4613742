r"""Solving every layer of a flow, sequentially (paper sec. III B, eqs. 18-20).

Each layer ``t`` is an independent linear least-squares problem; only its collocation
points come from the earlier layers: samples of the base pushed forward, so they follow
:math:`p_t`. For the stages inside an RK4 step the points are advanced with the layers
already solved (Euler to the half step, explicit midpoint to the full step), then the
samples are pushed with the full RK4 step.
"""

from __future__ import annotations

import dataclasses
import time as _time

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np

from .._errors import PikflowError, SolveError
from ..action import Path
from ..bases import AbstractBasis, default_basis
from ..equations import WegnerEquation
from ..solvers import Collocation, DirectSolver
from ..solvers._collocation import tail_points, tail_radius
from ._base import GaussianBase
from ._flow import Flow, LayerReport
from ._integrate import rk4_step
from ._kernel import LinearKernel


def solve(
    path: Path,
    *,
    steps: int = 25,
    basis: AbstractBasis | None = None,
    solver: DirectSolver | None = None,
    collocation: Collocation | None = None,
    form: str = "chi",
    seed: int = 0,
    progress: bool = True,
) -> Flow:
    r"""Solve the kernel equation at every layer of ``path`` and return the :class:`Flow`.

    Parameters
    ----------
    path
        The path of actions; its start must be Gaussian (sampled exactly) and every
        :math:`\hat S_t` normalisable (both checked).
    steps
        RK4 steps; the kernels live at the ``2 * steps + 1`` stage times.
    basis
        Basis of the kernel; default :func:`pikflow.bases.default_basis`.
    solver
        A :class:`~pikflow.solvers.DirectSolver` (default ``lx.QR()``).
    collocation
        How collocation points are chosen (:class:`~pikflow.solvers.Collocation`).
    form
        ``"chi"`` (eq. 20, :math:`\chi = 0`) or ``"constant"`` (free :math:`c_t`).
    seed
        Seed of the collocation samples: the same seed gives the same flow.
    progress
        Show a progress bar over layers.
    """
    if not isinstance(path, Path):
        raise PikflowError(f"solve needs a pikflow.Path, got {type(path).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise PikflowError(f"steps must be a positive integer, got {steps!r}")
    if basis is None:
        basis = default_basis(path.n_fields, rotation_invariant=path.is_rotation_invariant())
    if solver is None:  # symmetric multi-component actions leave null spaces (rotations): min-norm SVD
        solver = DirectSolver(lx.QR() if path.n_fields == 1 else lx.SVD())
    colloc = Collocation() if collocation is None else collocation
    path.check_normalisable()
    mean, precision = path.gaussian_base()
    base = GaussianBase(mean, precision)
    eq = WegnerEquation.cached(path, basis, form=form)
    n_basis = eq.n_basis
    n_unknown = n_basis + (form == "constant")
    n_points = colloc.n_samples + colloc.n_tail
    if n_points < n_unknown:
        raise SolveError(f"{n_points} collocation points for {n_unknown} unknowns: raise collocation n_samples/n_tail")
    layer, half_points, full_points, advance = _compiled(eq, solver, colloc, steps)
    kernel_of = lambda c: LinearKernel(c, eq.values, eq.divergences)  # noqa: E731
    times = np.arange(2 * steps + 1) / (2 * steps)
    key = jax.random.PRNGKey(seed)
    key, sub = jax.random.split(key)
    points, _ = base.sample(sub, colloc.n_samples)
    coeffs, reports = [], []

    def run(points, i):
        nonlocal key
        key, sub = jax.random.split(key)
        c, stats = layer(points, jnp.asarray(times[i]), sub)
        stats = jax.device_get(stats)
        if not np.all(np.isfinite(np.asarray(c))) or stats["zero_columns"] > 0:
            raise SolveError(_failure_message(eq, times[i], c, stats))
        coeffs.append(c)
        reports.append(LayerReport.from_stats(times[i], stats, n_points))
        return c

    from ..progress import progress_bar

    start = _time.perf_counter()
    bar = progress_bar(total=len(times), desc="solving layers", disable=not progress)
    c0 = run(points, 0)
    bar.update(1)
    for i in range(steps):
        cm = run(half_points(c0, points), 2 * i + 1)
        c1 = run(full_points(c0, cm, points), 2 * i + 2)
        points = advance(c0, cm, c1, points)
        if not bool(jnp.all(jnp.isfinite(points))):
            raise SolveError(f"collocation samples became non-finite after the layer at t = {times[2 * i + 2]:.4g}")
        c0 = c1
        bar.update(2)
        bar.set_postfix(residual=f"{reports[-1].residual_rms:.1e}")
    bar.close()
    kernels = kernel_of(jnp.stack(coeffs))
    settings = dict(steps=steps, form=form, seed=seed, collocation=dataclasses.asdict(colloc), basis=basis.spec())
    return Flow(
        path=path,
        equation=eq,
        base=base,
        kernels=kernels,
        steps=steps,
        reports=reports,
        settings=settings,
        solve_seconds=_time.perf_counter() - start,
    )


def _compiled(eq: WegnerEquation, solver, colloc: Collocation, steps: int):
    """The jitted per-layer functions, cached on the equation (compiled once per settings)."""
    key = (solver, colloc, steps)
    if key in eq.cache:
        return eq.cache[key]
    dt = 1.0 / steps
    n_basis, n_fields, form = eq.n_basis, eq.path.n_fields, eq.form
    kernel_of = lambda c: LinearKernel(c, eq.values, eq.divergences)  # noqa: E731

    @jax.jit
    def layer(points, t, key):
        radius = (
            jnp.asarray(colloc.radius, float)
            if colloc.radius is not None
            else tail_radius(eq.action_fn, t, n_fields, colloc.tail_gap)
        )
        pts = jnp.concatenate([points, tail_points(key, radius, colloc.n_tail, n_fields)])
        A, b = eq.system(pts, t)
        x = solver.solve(A, b)
        r = b - A @ x
        ns = points.shape[0]
        rms_s = jnp.sqrt(jnp.mean(r[:ns] ** 2)) if ns else jnp.sqrt(jnp.mean(r**2))
        worst = jnp.argmax(jnp.abs(r))
        stats = dict(
            residual_rms=rms_s,
            residual_max=jnp.max(jnp.abs(r)),
            worst_phi=pts[worst],
            rhs_rms=jnp.sqrt(jnp.mean(b**2)),
            radius=radius,
            zero_columns=jnp.sum(jnp.linalg.norm(A, axis=0) == 0),
            constant=x[n_basis] if form == "constant" else jnp.nan,
        )
        return x[:n_basis], stats

    @jax.jit
    def half_points(c0, points):  # Euler to t + dt/2
        return points + 0.5 * dt * jax.vmap(kernel_of(c0))(points)

    @jax.jit
    def full_points(c0, cm, points):  # explicit midpoint to t + dt
        mid = points + 0.5 * dt * jax.vmap(kernel_of(c0))(points)
        return points + dt * jax.vmap(kernel_of(cm))(mid)

    @jax.jit
    def advance(c0, cm, c1, points):  # the full RK4 step with the three solved layers
        k = kernel_of(jnp.stack([c0, cm, c1]))
        return jax.vmap(lambda p: rk4_step(k, 0, p, dt))(points)

    eq.cache[key] = (layer, half_points, full_points, advance)
    return eq.cache[key]


def _failure_message(eq: WegnerEquation, t: float, coeffs, stats) -> str:
    if stats["zero_columns"] > 0:
        return (
            f"the layer at t = {t:.4g} has {int(stats['zero_columns'])} basis function(s) whose Wegner image "
            "vanishes at every collocation point (e.g. K = exp(S) in one dimension): remove them from the basis"
        )
    return (
        f"the least-squares solve of the layer at t = {t:.4g} failed (non-finite coefficients; "
        f"{eq.n_basis} basis functions). The system is singular or too ill-conditioned: "
        "use fewer or distinct basis functions, more collocation points, or the default lx.QR() solver"
    )
