r"""Solving every layer of a flow, sequentially or all at once (paper sec. III B, eqs. 18-20).

Each layer ``t`` is an independent problem (eq. 14); only its collocation points may
depend on other layers.

``mode="sequential"`` (default)
    The points are samples of the base pushed forward through the layers already solved,
    so they follow :math:`p_t`. For the stages inside an RK4 step the points are advanced
    with the layers already solved (Euler to the half step, explicit midpoint to the full
    step), then the samples are pushed with the full RK4 step. Trained solvers warm-start
    each layer from the previous one.
``mode="parallel"``
    The points are drawn from :math:`p_t` itself (a quantile grid of :math:`e^{-\hat S_t}`
    for one component, short MALA chains otherwise, :mod:`pikflow.solvers._parallel`), so
    no layer waits for another: all are solved in one ``jax.vmap`` over layers, split
    into equal blocks of layers, one per device, when several devices are present.

The solver (:class:`~pikflow.solvers.DirectSolver`, :class:`~pikflow.solvers.AdamSolver`,
:class:`~pikflow.solvers.LevenbergMarquardtSolver`) decides how one layer is fitted.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time as _time

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np

from .._errors import PikflowError, SolveError
from ..action import Path
from ..bases import AbstractBasis, default_basis
from ..equations import WegnerEquation
from ..solvers import AbstractKernelSolver, Collocation, DirectSolver
from ..solvers._collocation import tail_points, tail_radius
from ..solvers._models import stack_kernels
from ..solvers._parallel import mala_points, quantile_points
from ._auto_steps import solve_auto_steps
from ._base import GaussianBase
from ._flow import Flow, LayerReport
from ._frequency import layer_scale
from ._integrate import rk4_step
from ._schedule import choose_power

MODES = ("sequential", "parallel")
#: ``solve(frequency_range=...)``: stretch the basis to the width of p_t, or keep it as given.
FREQUENCY_RANGES = ("auto", "fixed")
#: Most RK4 steps of a flow (its 2 steps + 1 kernels are kept in memory).
MAX_STEPS = 1_000_000


def solve(
    path: Path,
    *,
    steps: int | str = "auto",
    basis: AbstractBasis | None = None,
    solver: AbstractKernelSolver | None = None,
    collocation: Collocation | None = None,
    form: str = "chi",
    seed: int = 0,
    progress: bool = True,
    mode: str = "sequential",
    schedule: str | float = "auto",
    checkpoint=None,
    frequency_range: str = "fixed",
) -> Flow:
    r"""Solve the kernel equation (eq. 14, with eq. 20) at every layer of ``path`` and return the :class:`Flow`.

    Parameters
    ----------
    path
        The path of actions; its start must be Gaussian (sampled exactly) and every
        :math:`\hat S_t` normalisable (both checked).
    steps
        RK4 steps; the kernels live at the ``2 * steps + 1`` stage times. ``"auto"`` (default):
        25, or 100 or 200 when the RK4 map of the shorter flow folds on more than 1% of the
        base (deep or tilted wells; :mod:`pikflow.flow._auto_steps`).
    basis
        Basis of the kernel for the :class:`~pikflow.solvers.DirectSolver` (eq. 18);
        default :func:`pikflow.bases.default_basis`. Solvers with their own kernel model
        ignore it.
    solver
        How each layer is fitted: :class:`~pikflow.solvers.DirectSolver` (default,
        ``lx.QR()`` for one component, ``lx.SVD()`` otherwise),
        :class:`~pikflow.solvers.AdamSolver` (the paper's training, Appendix A) or
        :class:`~pikflow.solvers.LevenbergMarquardtSolver` (variable projection).
    collocation
        How collocation points are chosen (:class:`~pikflow.solvers.Collocation`); default
        the solver's (:class:`~pikflow.solvers.AdamSolver`: 1024 pushed samples and no tail
        points, as in Appendix A; otherwise ``Collocation()``).
    form
        ``"chi"`` (eq. 20, :math:`\chi = 0`) or ``"constant"`` (free :math:`c_t`; direct solver only).
    seed
        Seed of the collocation samples (and of minibatches): the same seed gives the same flow.
    progress
        Show a progress bar over layers (with the residual, or the loss for trained solvers).
    mode
        ``"sequential"`` (points pushed through the earlier layers) or ``"parallel"``
        (points from :math:`p_t` itself, every layer at once; see the module docstring).
    schedule
        Where the layers sit along the path (:mod:`pikflow.flow._schedule`): ``"auto"``
        (default) reparametrises the path by :math:`\tau = t^p` when that lowers the
        largest speed :math:`\sqrt{\mathrm{Var}_t(d\hat S_t/dt)}` by 3x or more (one
        component; deep wells from a Gaussian, where equal steps leave a hole), else keeps
        it; ``"uniform"`` never does; a number is the power :math:`p`. The flow's
        :attr:`~pikflow.Flow.path` is then the reparametrised path (same base and target;
        its time ``t`` is :math:`\tau^{1/p}` of the given path).
    checkpoint
        A directory for per-layer checkpoints (sequential mode; :mod:`pikflow._checkpoint`):
        each finished layer's kernel, report and (at the end of a step) the pushed collocation
        samples are written there atomically; a rerun of the same solve skips the finished
        layers and gives the same flow bit for bit (``flow.resumed_layers`` counts them). A
        checkpoint of another solve is ignored with a ``CheckpointWarning`` and overwritten.
    frequency_range
        ``"fixed"`` (default): the basis as given at every layer. ``"auto"``: with the
        direct solver and one field component the basis is stretched per layer to the
        width of :math:`p_t`, :math:`K_j(\phi/s_t)` (every frequency divided by
        :math:`s_t`, :mod:`pikflow.flow._frequency`; :math:`s_0 = 1`); otherwise as
        ``"fixed"``. Opt-in: on the deep wells of ``pikflow bench wells`` it lowered ESS/N
        (barrier 6: 0.18 to 0.04, barrier 8: 0.28 to 0.0007; docs/guide/sampling.md).
    """
    if not isinstance(path, Path):
        raise PikflowError(f"solve needs a pikflow.Path, got {type(path).__name__}")
    if path.lattice is not None:
        raise PikflowError(
            "solve takes a 0-D path; a lattice path is solved by pikflow.lattice.fit_lattice (or solve_lattice)"
        )
    if isinstance(steps, str) and steps == "auto":
        return solve_auto_steps(
            solve, path, progress, basis=basis, solver=solver, collocation=collocation, form=form, seed=seed,
            mode=mode, schedule=schedule, checkpoint=checkpoint, frequency_range=frequency_range,
        )  # fmt: skip
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise PikflowError(f"steps must be a positive integer or 'auto', got {steps!r}")
    if steps > MAX_STEPS:
        raise SolveError(f"steps = {steps} is more than {MAX_STEPS}: a flow that long cannot be stored; use fewer")
    if not isinstance(mode, str) or mode not in MODES:
        raise SolveError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(form, str):
        raise SolveError(f"form must be 'chi' or 'constant', got {form!r}")
    if basis is not None and not isinstance(basis, AbstractBasis):
        raise SolveError(f"basis must be a pikflow basis (Sine, Polynomial, ...), got {type(basis).__name__}")
    if collocation is not None and not isinstance(collocation, Collocation):
        raise SolveError(f"collocation must be a pikflow.Collocation, got {type(collocation).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise SolveError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    if not isinstance(frequency_range, str) or frequency_range not in FREQUENCY_RANGES:
        raise SolveError(f"frequency_range must be one of {FREQUENCY_RANGES}, got {frequency_range!r}")
    if basis is None:
        basis = default_basis(path.n_fields, rotation_invariant=path.is_rotation_invariant())
    if solver is None:  # symmetric multi-component actions leave null spaces (rotations): min-norm SVD
        solver = DirectSolver(lx.QR() if path.n_fields == 1 else lx.SVD())
    if not isinstance(solver, AbstractKernelSolver):
        raise SolveError(
            f"solver must be a pikflow solver (DirectSolver, AdamSolver, LevenbergMarquardtSolver), "
            f"got {type(solver).__name__}"
        )
    if form not in type(solver).forms:
        raise SolveError(f"the {solver.kind} solver supports form {type(solver).forms}, got {form!r}: use form='chi'")
    colloc = solver.default_collocation() if collocation is None else collocation
    scaled = frequency_range == "auto" and path.n_fields == 1 and isinstance(solver, DirectSolver)
    path.check_normalisable()
    power, schedule_info = choose_power(path, schedule)
    path = path.reparametrised(power)
    mean, precision = path.gaussian_base()
    base = GaussianBase(mean, precision)
    eq = WegnerEquation.cached(path, basis, form=form)
    n_points = colloc.n_samples + colloc.n_tail
    if isinstance(solver, DirectSolver):
        n_unknown = eq.n_basis + (form == "constant")
        if n_points < n_unknown:
            raise SolveError(
                f"{n_points} collocation points for {n_unknown} unknowns: raise collocation n_samples/n_tail"
            )
    if mode == "parallel" and path.n_fields > 1 and colloc.n_samples == 0:
        raise SolveError("layer-parallel mode draws its points by MALA: set collocation n_samples > 0")
    if checkpoint is not None and mode != "sequential":
        raise SolveError("checkpoints are for the sequential mode (the parallel mode solves every layer at once)")
    times = np.arange(2 * steps + 1) / (2 * steps)
    start = _time.perf_counter()
    resumed = 0
    if mode == "sequential":
        kernels, reports, info, resumed = _sequential(
            eq, solver, colloc, steps, base, times, seed, progress, checkpoint, scaled
        )
    else:
        kernels, reports, info = _parallel(eq, solver, colloc, steps, base, times, seed, progress, scaled)
    settings = dict(steps=steps, form=form, seed=seed, collocation=dataclasses.asdict(colloc), basis=basis.spec())
    settings.update(time_power=power, schedule=schedule_info)
    settings.update(frequency_range="auto" if scaled else "fixed")
    if not isinstance(solver, DirectSolver) or mode != "sequential":
        settings.update(solver=solver.spec(), mode=mode, layers=info)
    flow = Flow(
        path=path,
        equation=eq,
        base=base,
        kernels=kernels,
        steps=steps,
        reports=reports,
        settings=settings,
        solve_seconds=_time.perf_counter() - start,
    )
    flow.resumed_layers = resumed
    return flow


def _layer_body(eq: WegnerEquation, solver, colloc: Collocation, samples, t, key, init, first, scaled=False):
    """Fit one layer on ``samples`` plus tail points; the kernel and its residual statistics (eq. 27).

    ``scaled``: the basis is stretched to the width of :math:`p_t` (:func:`~pikflow.flow._frequency.layer_scale`).
    """
    n_fields = eq.path.n_fields
    radius = (
        jnp.asarray(colloc.radius, float)
        if colloc.radius is not None
        else tail_radius(eq.action_fn, t, n_fields, colloc.tail_gap)
    )
    if samples.shape[0]:  # a pushed sample far beyond the tails ran away (a stiff early step): replace it
        far = jnp.linalg.norm(samples, axis=1, keepdims=True) > 2.0 * radius
        grid = tail_points(jax.random.fold_in(key, 2), radius, samples.shape[0], n_fields)
        samples = jnp.where(far | ~jnp.isfinite(samples), grid, samples)
    pts = jnp.concatenate([samples, tail_points(key, radius, colloc.n_tail, n_fields)])
    if scaled:
        kernel, r, info = solver.fit(
            eq, pts, t, init, first, jax.random.fold_in(key, 1), scale=layer_scale(eq.action_fn, t)
        )
    else:
        kernel, r, info = solver.fit(eq, pts, t, init, first, jax.random.fold_in(key, 1))
    ns = samples.shape[0]
    r_s = r[:ns] if ns else r
    worst = jnp.argmax(jnp.abs(r))
    if "rhs_rms" in info:
        rhs_rms = info["rhs_rms"]
    else:
        chi = jnp.asarray(eq.chi)
        rhs = jax.vmap(eq.rhs_fn, in_axes=(0, None))(pts, t) - eq.rhs_fn(chi, t)
        rhs_rms = jnp.sqrt(jnp.mean(rhs**2))
    stats = dict(
        residual_rms=jnp.sqrt(jnp.mean(r_s**2)),
        residual_max=jnp.max(jnp.abs(r)),
        worst_phi=pts[worst],
        rhs_rms=rhs_rms,
        radius=radius,
        zero_columns=info.get("zero_columns", jnp.asarray(0)),
        constant=info.get("constant", jnp.asarray(jnp.nan)),
        loss=jnp.mean(r_s**2),
        iterations=info.get("epochs", jnp.asarray(0)),
        finite=jnp.all(
            jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(eqx.filter(kernel, eqx.is_array))])
        ),
    )
    return kernel, stats


def _compiled(eq: WegnerEquation, solver, colloc: Collocation, steps: int, scaled: bool = False):
    """The jitted per-layer functions of the sequential mode, cached on the equation."""
    key = ("sequential", solver, colloc, steps, scaled)
    if key in eq.cache:
        return eq.cache[key]
    dt = 1.0 / steps

    @eqx.filter_jit
    def layer(points, t, key, init, first):
        return _layer_body(eq, solver, colloc, points, t, key, init, first, scaled)

    @eqx.filter_jit
    def half_points(k0, points):  # Euler to t + dt/2
        return points + 0.5 * dt * jax.vmap(k0)(points)

    @eqx.filter_jit
    def full_points(k0, km, points):  # explicit midpoint to t + dt
        mid = points + 0.5 * dt * jax.vmap(k0)(points)
        return points + dt * jax.vmap(km)(mid)

    @eqx.filter_jit
    def advance(k0, km, k1, points):  # the full RK4 step with the three solved layers
        k = stack_kernels([k0, km, k1])
        return jax.vmap(lambda p: rk4_step(k, 0, p, dt))(points)

    eq.cache[key] = (layer, half_points, full_points, advance)
    return eq.cache[key]


def _check(eq, solver, t, stats):
    if stats["zero_columns"] > 0 or not stats["finite"]:
        raise SolveError(_failure_message(eq, solver, t, stats))


def _layer_info(stats) -> dict:
    return {"loss": float(stats["loss"]), "iterations": int(stats["iterations"])}


def _sequential(eq, solver, colloc, steps, base, times, seed, progress, checkpoint=None, scaled=False):
    from ..progress import progress_bar

    layer, half_points, full_points, advance = _compiled(eq, solver, colloc, steps, scaled)
    direct = isinstance(solver, DirectSolver)
    key = jax.random.PRNGKey(seed)
    key, sub = jax.random.split(key)
    points, _ = base.sample(sub, colloc.n_samples)
    init = solver.initial(eq, jax.random.fold_in(key, 7))
    if scaled:  # the structure of every solved layer (a checkpointed kernel is read into it)
        init = type(init)(init.coeffs, init.values, init.divergences, jnp.ones(()))
    ckpt = _open_checkpoint(checkpoint, eq, solver, colloc, steps, seed, points, scaled)
    n_first = getattr(solver, "first_layers", 1)
    kernels, reports, info = [], [], []
    n_points = colloc.n_samples + colloc.n_tail
    bar = progress_bar(total=len(times), desc=f"solving layers ({solver.kind})", disable=not progress)

    def run(points, i, saved=None):
        nonlocal key, init
        key, sub = jax.random.split(key)  # split on resumed layers too: later layers get the same keys
        if saved is not None:  # finished before: the very arrays an uninterrupted solve computed
            k = eqx.tree_deserialise_leaves(io.BytesIO(saved["kernel"].tobytes()), init)
            meta = json.loads(str(saved["meta"]))
            reports.append(LayerReport(**{**meta["report"], "worst_phi": tuple(meta["report"]["worst_phi"])}))
            info.append(meta["info"])
        else:
            k, stats = layer(points, jnp.asarray(times[i]), sub, init, i < n_first)
            stats = jax.device_get(stats)
            _check(eq, solver, times[i], stats)
            reports.append(LayerReport.from_stats(times[i], stats, n_points))
            info.append(_layer_info(stats))
        kernels.append(k)
        init = k
        bar.update(1)
        if direct:
            bar.set_postfix(residual=f"{reports[-1].residual_rms:.1e}")
        else:
            bar.set_postfix(loss=f"{info[-1]['loss']:.1e}", it=info[-1]["iterations"])
        return k

    def load(i):
        return None if ckpt is None else ckpt.load(i)

    def save(i, **extra):
        if ckpt is not None:
            buf = io.BytesIO()
            eqx.tree_serialise_leaves(buf, kernels[i])
            meta = json.dumps({"report": dataclasses.asdict(reports[i]), "info": info[i]})
            ckpt.save(i, kernel=np.frombuffer(buf.getvalue(), np.uint8), meta=np.asarray(meta), **extra)

    saved = load(0)
    k0 = run(points, 0, saved)
    if saved is None:
        save(0)
    for i in range(steps):
        mid, end = load(2 * i + 1), load(2 * i + 2)
        if mid is not None and end is not None and "points" in end:
            run(None, 2 * i + 1, mid)
            k0 = run(None, 2 * i + 2, end)
            points = jnp.asarray(end["points"])
            continue
        km = run(half_points(k0, points) if mid is None else None, 2 * i + 1, mid)
        if mid is None:
            save(2 * i + 1)
        k1 = run(full_points(k0, km, points), 2 * i + 2)
        points = advance(k0, km, k1, points)
        if not bool(jnp.all(jnp.isfinite(points))):
            raise SolveError(f"collocation samples became non-finite after the layer at t = {times[2 * i + 2]:.4g}")
        save(2 * i + 2, points=np.asarray(points))
        k0 = k1
    bar.close()
    return stack_kernels(kernels), reports, info, (0 if ckpt is None else ckpt.resumed)


def _open_checkpoint(checkpoint, eq, solver, colloc, steps, seed, points, scaled=False):
    """The checkpoint of this solve, fingerprinted by its settings and probe values of the equation."""
    if checkpoint is None:
        return None
    from .._checkpoint import open_checkpoint

    x = points[:8] if points.shape[0] else jnp.zeros((1, eq.path.n_fields))
    probes = [points, jax.vmap(eq.rhs_fn, (0, None))(x, 0.4), jax.vmap(eq.gradient_fn, (0, None))(x, 0.7)]
    if isinstance(solver, DirectSolver):
        probes += list(eq.system(x, jnp.asarray(0.5)))
    spec = dict(
        kind="0-D",
        path=eq.path.spec(),
        form=eq.form,
        solver=solver.spec(),
        basis=eq.basis.spec(),
        collocation=dataclasses.asdict(colloc),
        steps=steps,
        seed=seed,
    )
    if scaled:  # a key only when set, so checkpoints of fixed-basis solves stay valid
        spec["frequency_range"] = "auto"
    return open_checkpoint(checkpoint, spec, probes)


def _parallel(eq, solver, colloc, steps, base, times, seed, progress, scaled=False):
    from ..progress import progress_bar

    n_layers = len(times)
    n_dev = jax.local_device_count()  # this process's devices (every process of a multi-host run solves alone)
    padded = -(-n_layers // n_dev) * n_dev
    t_all = np.concatenate([times, np.full(padded - n_layers, times[-1])])
    key = jax.random.PRNGKey(seed)
    key, sub = jax.random.split(key)
    start_points, _ = base.sample(sub, max(colloc.n_samples, 1))
    keys = jax.random.split(key, padded)
    init = solver.initial(eq, jax.random.fold_in(key, 7))
    fn = _compiled_parallel(eq, solver, colloc, scaled)
    bar = progress_bar(total=n_layers, desc=f"solving layers in parallel ({solver.kind})", disable=not progress)
    # one equal block of layers per device, dispatched asynchronously: the layers never communicate,
    # so each device runs its own vmapped solve (no cross-device collectives in the iterative fits)
    devices = jax.local_devices()
    block = padded // n_dev
    outs = []
    for d, dev in enumerate(devices):
        sl = slice(d * block, (d + 1) * block)
        args = jax.device_put((jnp.asarray(t_all[sl]), keys[sl], start_points, init), dev)
        outs.append(fn(*args))
    outs = jax.device_get(outs)
    kernels = jax.tree.map(lambda *xs: np.concatenate(xs), *[o[0] for o in outs])
    kernels = jax.tree.map(jnp.asarray, kernels)
    stats = {k: np.concatenate([o[1][k] for o in outs]) for k in outs[0][1]}
    stats = jax.device_get(stats)
    kernels = jax.tree.map(lambda x: x[:n_layers], kernels)
    reports, info = [], []
    n_points = colloc.n_samples + colloc.n_tail
    for i, t in enumerate(times):
        s = {k: v[i] for k, v in stats.items()}
        _check(eq, solver, t, s)
        reports.append(LayerReport.from_stats(t, s, n_points))
        info.append(_layer_info(s))
    bar.update(n_layers)
    bar.set_postfix(max_residual=f"{max(r.residual_rms for r in reports):.1e}")
    bar.close()
    return kernels, reports, info


def _compiled_parallel(eq: WegnerEquation, solver, colloc: Collocation, scaled: bool = False):
    """One jitted function solving every layer (``jax.vmap`` over layer times), cached on the equation."""
    key = ("parallel", solver, colloc, scaled)
    if key in eq.cache:
        return eq.cache[key]
    n_fields, ns = eq.path.n_fields, colloc.n_samples

    @eqx.filter_jit
    def all_layers(times, keys, start_points, init):
        def one(t, key):
            k_pts, k_layer = jax.random.split(key)
            if ns == 0:
                samples = jnp.zeros((0, n_fields))
            elif n_fields == 1:
                samples = quantile_points(eq.action_fn, t, ns)
            else:
                samples = mala_points(
                    eq.action_fn, eq.gradient_fn, t, start_points, k_pts, colloc.mala_steps, eq.symmetric
                )
            return _layer_body(eq, solver, colloc, samples, t, k_layer, init, True, scaled)

        if type(solver).vmappable:
            return jax.vmap(one)(times, keys)
        return jax.lax.map(lambda a: one(*a), (times, keys))  # layers one after another, still independent

    eq.cache[key] = all_layers
    return all_layers


def _failure_message(eq: WegnerEquation, solver, t: float, stats) -> str:
    if stats["zero_columns"] > 0:
        return (
            f"the layer at t = {t:.4g} has {int(stats['zero_columns'])} basis function(s) whose Wegner image "
            "vanishes at every collocation point (e.g. K = exp(S) in one dimension): remove them from the basis"
        )
    if isinstance(solver, DirectSolver):
        return (
            f"the least-squares solve of the layer at t = {t:.4g} failed (non-finite coefficients; "
            f"{eq.n_basis} basis functions). The system is singular or too ill-conditioned: "
            "use fewer or distinct basis functions, more collocation points, or the default lx.QR() solver"
        )
    return (
        f"the {solver.kind} fit of the layer at t = {t:.4g} gave non-finite parameters: "
        "lower the learning rate / frequencies, or use fewer frequencies or more collocation points"
    )
