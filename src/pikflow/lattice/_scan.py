r"""Parameter scans on lattices: one sequential run along a physical path gives every point (paper sec. IV A 3).

A path :math:`\hat S_t` whose couplings run over physical values (for instance :math:`m^2`
from the symmetric to the broken phase at fixed :math:`\lambda`, reached from a Gaussian
through a preparatory segment, written with knots ``[[t, value], ...]``) is sampled once by
sequential Monte Carlo (:func:`pikflow.samplers.smc`): particles start from the exact
Gaussian at :math:`t = 0`, are reweighted by :math:`\hat S_{t_k} - \hat S_{t_{k+1}}` from step to
step, resampled when the ESS falls, and moved by MCMC kernels that leave
:math:`p_{t_{k+1}}` invariant. Every step time is a physical point with exact weights, so
the run reports, at ``points`` evenly spaced times of ``t_range``,

* :math:`\langle|m|\rangle`, :math:`\chi = V(\langle m^2\rangle - \langle|m|\rangle^2)` and the
  Binder cumulant :math:`U = 1 - \langle m^4\rangle/(3\langle m^2\rangle^2)`,
* :math:`\log Z_t` (the product of the mean incremental weights; exact at :math:`t = 0`),
* its derivative :math:`d\log Z_t/dt = -\langle d\hat S_t/dt\rangle_t` (``dlogz_dt``), measured
  on the same particles,
* the connected two-point function :math:`G(r) = \langle C(r)\rangle - \langle m\rangle^2`,
  :math:`r = 0..L/2`, with :math:`C(r)` as in :func:`~pikflow.flow.two_point_series`
  (``two_point``),

each with the spread of independent replicas as its error. :meth:`LatticeScan.free_energy_check`
compares the two: :math:`\log Z` gained over the scan range against the trapezoidal integral of
:math:`-\langle d\hat S_t/dt\rangle` over every step time, replica by replica. Scans at several lattice sizes
locate the Binder-cumulant crossings (:func:`binder_crossings`), the finite-size estimate of
the critical coupling.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import PikflowError, SamplingError
from .._estimate import Estimate
from ..action import LatticeAction, LatticePath, check_bounded_below, hopping_coupling
from ..flow import GaussianLatticeBase
from ..samplers import ESTIMATES, AnnealingProblem, pool_by_default, smc
from ._observables import site_density
from ._scan_result import SCAN_OBSERVABLES, LatticeScan, binder_crossings, couplings_at, size_label
from ._smc import magnetisation_moments, smc_observables


def resized(path: LatticePath, shape: Sequence[int]) -> LatticePath:
    """The same density and couplings (as functions of ``t``) on a lattice of another ``shape``."""
    action = LatticeAction(path.action.expr, list(shape))
    return LatticePath(action, {str(k): v for k, v in path.coupling_exprs.items()})


def scan_times(points: int, t_range: tuple[float, float], steps, prep_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Step times from 0 to 1 that contain the ``points`` evenly spaced scan times of ``t_range``.

    ``steps`` annealing steps cover ``t_range`` (rounded up to a multiple of ``points - 1``), or
    ``steps`` is a sequence of ``points - 1`` positive step counts, one per gap between consecutive
    points (finer steps where the particles need them, e.g. at a transition). ``prep_steps`` cover
    ``[0, t_lo]`` and, at the finest resolution of the scan, ``[t_hi, 1]``. Returns the step times and
    the indices of the scan points among them.
    """
    lo, hi = t_range
    if np.ndim(steps) == 0:
        per_gap = np.full(max(points - 1, 1), max(1, int(np.ceil(steps / max(points - 1, 1)))))
    else:
        per_gap = np.asarray(steps, dtype=int)
        if per_gap.shape != (points - 1,) or np.any(per_gap < 1):
            raise SamplingError(
                f"steps must be a number or {points - 1} positive step counts (one per gap between the "
                f"{points} points), got {list(np.ravel(steps))}"
            )
    edges = np.linspace(lo, hi, points)
    parts = [np.linspace(a, b, int(k) + 1)[:-1] for a, b, k in zip(edges[:-1], edges[1:], per_gap, strict=True)]
    inner = np.concatenate([*parts, [hi]])
    pre = np.linspace(0.0, lo, prep_steps + 1)[:-1] if lo > 0 else np.zeros(0)
    n_post = int(np.ceil((1.0 - hi) / np.min(np.diff(inner))))  # the finest resolution of the scan
    post = np.linspace(hi, 1.0, n_post + 1)[1:] if hi < 1 else np.zeros(0)
    times = np.concatenate([pre, inner, post])
    return times, len(pre) + np.concatenate([[0], np.cumsum(per_gap)])


def uniform_scan_times(points: int, t_range: tuple[float, float], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform step times ``k / N`` whose grid holds the ``points`` scan times (the steps of a solved flow).

    A PIK flow's layers sit at the RK4 stages of equal steps (eq. 11), so with
    ``transport="pik"`` every step time, the preparatory segment's included, is a multiple of
    :math:`1/N`. ``N`` is the smallest grid with at least ``steps`` steps over ``t_range``
    that holds both of its ends; a :class:`SamplingError` says what to change if none of up to
    8 times more steps does.
    """
    lo, hi = t_range
    per0 = max(1, int(np.ceil(steps / max(points - 1, 1))))
    for per in range(per0, 8 * per0 + 1):
        n = per * (points - 1) / (hi - lo)
        start = lo * round(n)
        if abs(n - round(n)) < 1e-9 * n and abs(start - round(start)) < 1e-9 * max(n, 1.0):
            n = int(round(n))
            return np.arange(n + 1) / n, int(round(start)) + per * np.arange(points)
    raise SamplingError(
        f"with transport='pik' the scan points must lie on a uniform grid of step times (the flow's RK4 steps): "
        f"t_range {list(t_range)} with {points} points has none with {steps} to {8 * steps} steps; choose t_range "
        "ends that are simple fractions (e.g. 0.25, 0.5) or another number of points"
    )


def flow_problem(path: LatticePath, n_steps: int, *, basis_options=None, n_collocation: int = 500, seed: int = 0,
                 progress: bool = False):  # fmt: skip
    r"""The annealing problem of a PIK flow solved along ``path`` (eq. 34): SMC transport by its RK4 steps.

    ``basis_options`` are keywords of :func:`~pikflow.lattice.lattice_basis` (default: its
    default basis, symmetrised under the path's symmetry). Returns the problem and the flow.
    """
    from ..flow import solve_lattice
    from ._basis import path_basis
    from ._smc import lattice_problem

    basis = path_basis(path, **(basis_options or {}))
    flow = solve_lattice(path, steps=n_steps, basis=basis, n_collocation=n_collocation, seed=seed, progress=progress)
    return lattice_problem(flow), flow


def two_point_observables(shape: Sequence[int]) -> dict:
    r"""SMC observables ``m`` and ``C0..C{L/2}``: the mean field and :math:`C(r)` of one configuration.

    :math:`C(r) = \frac1{Vd}\sum_\mu\sum_x\phi(x)\phi(x + r\hat e_\mu)` from one FFT
    (:math:`\frac1V\mathcal F^{-1}|\tilde\phi|^2`; XLA shares it between the entries).
    """
    shape = tuple(int(s) for s in shape)
    volume, d, R = int(np.prod(shape)), len(shape), min(shape) // 2

    def corr(x, r):
        auto = jnp.real(jnp.fft.ifftn(jnp.abs(jnp.fft.fftn(x)) ** 2)) / volume
        return sum(auto[tuple(r if i == mu else 0 for i in range(d))] for mu in range(d)) / d

    out = {"m": lambda x: jnp.mean(x)}
    out.update({f"C{r}": (lambda x, r=r: corr(x, r)) for r in range(R + 1)})
    return out


#: Names a scan records itself (its observables and their moments): not available to user observables.
RESERVED_NAMES = frozenset(SCAN_OBSERVABLES) | {"m", "m2", "m4", "dsdt", "two_point", "couplings", "t"}


def scan_observables(observables: Mapping[str, str | Callable] | None, shape: Sequence[int]) -> dict:
    r"""User observables of a scan as SMC observables of one configuration on a lattice of ``shape``.

    A string is a site density without couplings, averaged over the sites,
    :math:`O = \frac1V\sum_n o_n` (e.g. ``"phi**2"``, ``"phi*shift(phi, 0)"``; built for each lattice
    size of the scan); a callable takes one configuration (an array of ``shape``) and returns a number.
    Each is estimated at every scan point with its replica error (``row["observables"]``).
    """
    shape, out = tuple(int(s) for s in shape), {}
    for name, obs in dict(observables or {}).items():
        if not isinstance(name, str) or not name.isidentifier() or name in RESERVED_NAMES or name.startswith("C"):
            raise SamplingError(
                f"observable name {name!r} is taken or not a name: the scan records {sorted(RESERVED_NAMES)} and "
                "C0, C1, ... itself; choose another identifier"
            )
        if isinstance(obs, str):
            try:
                fn, components = site_density(obs, shape)
            except PikflowError as err:
                raise SamplingError(f"observable {name} = {err}") from None
            if components != 1:
                raise SamplingError(f"observable {name} = {obs!r}: a scan's field has one component")
        elif callable(obs):
            fn = obs
        else:
            raise SamplingError(f"observable {name} must be a site density (a string) or a callable, got {obs!r}")
        try:
            value = jax.eval_shape(fn, jax.ShapeDtypeStruct(shape, jnp.float64))
        except Exception as err:  # noqa: BLE001  (any failure of user code on one configuration)
            raise SamplingError(
                f"observable {name} fails on one configuration of shape {shape} ({type(err).__name__}: {err})"
            ) from None
        if value.shape != ():
            raise SamplingError(f"observable {name} must return one number per configuration, got shape {value.shape}")
        out[name] = fn
    return out


def two_point_estimates(result, shape: Sequence[int], t: float) -> list[Estimate]:
    """The connected :math:`G(r)` at step time ``t`` of a run that recorded :func:`two_point_observables`."""
    R = min(int(s) for s in shape) // 2
    return [result.derived(lambda mo, r=r: mo[f"C{r}"] - mo["m"] ** 2, t) for r in range(R + 1)]


def path_problem(path: LatticePath, times: np.ndarray) -> AnnealingProblem:
    r"""The annealing problem of a path alone (no flow): the exact Gaussian at ``t = 0`` and :math:`-\hat S_t`."""
    base = GaussianLatticeBase.from_path(path)
    return AnnealingProblem(
        times=times,
        event_shape=tuple(path.lattice.shape),
        base_sample=base.sample,
        log_gamma=lambda x, t: -path.value(x, t),
        lattice_shape=tuple(path.lattice.shape),
        hopping=hopping_coupling(path),
    )


def scan_rows(result, path: LatticePath, shape: Sequence[int], times, user: Sequence[str] = ()) -> list[dict]:
    """The observables of one SMC run at the scan ``times`` (one row per point; see :class:`LatticeScan`);
    ``user``: the names of the user observables (``row["observables"]``)."""
    volume = int(np.prod(shape))
    rows = []
    for ti in map(float, times):
        ds = result.observable("dsdt", ti)
        row = {
            "t": ti,
            "couplings": couplings_at(path, ti),
            **smc_observables(result, volume, ti),
            "log_z": result.log_z_estimate(ti),
            "dlogz_dt": Estimate(-ds.value, ds.error),
            "two_point": two_point_estimates(result, shape, ti),
        }
        if user:
            row["observables"] = {name: result.observable(name, ti) for name in user}
        rows.append(row)
    return rows


def scan_lattice(
    path: LatticePath,
    *,
    sizes: Sequence[int] | None = None,
    points: int = 31,
    t_range: tuple[float, float] = (0.0, 1.0),
    steps: int | None = None,
    prep_steps: int | None = None,
    particles: int = 1000,
    replicas: int = 4,
    mcmc: str = "mala",
    mcmc_steps: int = 4,
    resample: float = 0.5,
    mcmc_every: int = 1,
    leapfrog_steps: int = 10,
    fourier_mass: float | str = 1.0,
    transport: str = "none",
    flow_basis: dict | None = None,
    flow_collocation: int = 500,
    observables: Mapping[str, str | Callable] | None = None,
    estimate: str = "moves",
    pool: bool | None = None,
    seed: int = 0,
    progress: bool = True,
) -> LatticeScan:
    r"""Sample ``path`` once per lattice size by SMC and report its observables at ``points`` times.

    Parameters
    ----------
    path
        A :class:`LatticePath` whose ``t = 0`` end is Gaussian (sampled exactly).
    sizes
        Linear sizes :math:`L` (a lattice :math:`L^d`); default the path's own lattice.
    points, t_range
        The scan points: ``points`` evenly spaced times in ``t_range``.
    steps, prep_steps
        Annealing steps over ``t_range`` (default :math:`4(\text{points} - 1)`), or one step count
        per gap between consecutive points (``points - 1`` of them: :func:`scan_times`; not with
        ``transport="pik"``), and over the preparatory segment ``[0, t_lo]`` (default half the
        steps over ``t_range``).
    particles, replicas, mcmc, mcmc_steps, resample, mcmc_every, leapfrog_steps, fourier_mass, seed
        As for :func:`pikflow.samplers.smc` (``mcmc="fhmc"``: Fourier-accelerated HMC, with
        ``fourier_mass="adaptive"`` its mass measured from the particles at every step); errors are
        the spread of the ``replicas``.
        ``mcmc_every > 1`` moves only at every ``mcmc_every``-th step: the steps between
        reweight the same particles to the next time, at the cost of an action evaluation.
    transport
        ``"none"`` (plain annealing: reweighting, resampling and MCMC moves) or ``"pik"``:
        a PIK flow is solved along the path once per size (:func:`flow_problem`) and every
        annealing step first transports the particles by its RK4 step, with the incremental
        weight of that map (eq. 34's residual is all that is left to reweight). The step
        times are then a uniform grid (:func:`uniform_scan_times`; ``prep_steps`` is not used).
    flow_basis, flow_collocation
        With ``transport="pik"``: keywords of :func:`~pikflow.lattice.lattice_basis` for the
        flow's basis (e.g. ``{"scales": [], "local_range": None}`` for a cheap one) and its
        collocation configurations per layer.
    observables
        User observables, ``name -> site density`` (a string: :math:`\frac1V\sum_n o_n`, e.g. ``"phi**2"``)
        ``| callable(configuration) -> number``, estimated at every point with replica errors
        (:func:`scan_observables`; ``row["observables"]``, :meth:`LatticeScan.series`).
    estimate
        As for :func:`pikflow.samplers.smc`: ``"moves"`` (default) each point's means averaged over the
        configurations after each of its step's moves (the moves' intermediate states recycled: at 16x16
        HMC at equal errors costs 1.1-2.2 times more over the whole scan, and 2.2 times at the median
        point, than against ``"after"``, for 5-7 % more time), ``"after"`` from the particles after the
        moves, ``"before"`` from the particles before the resampling and moves.
    pool
        ``True`` (the default ``None``: unless ``estimate="before"``): each point's means also take in the
        configurations of the steps around it (each step's towards its nearest point), reweighted to it
        (:func:`pikflow.samplers.smc`'s ``pool``; importance tempering): at 16x16 and 32x32 HMC at equal
        errors then costs 1.4-2.7 times more, for 10-30 % more time. Coarse scans (few steps between points,
        or a wide change in the field's variance between a point and its steps) can get larger errors from
        heavy-tailed ratios: compare with ``pool=False``.
    """
    lo, hi = (float(x) for x in t_range)
    if not 0.0 <= lo < hi <= 1.0:
        raise SamplingError(f"t_range must satisfy 0 <= lo < hi <= 1, got {t_range!r}")
    if int(points) < 2:
        raise SamplingError(f"a scan needs at least 2 points, got {points!r}")
    if transport not in ("none", "pik"):
        raise SamplingError(f"a lattice scan's transport is 'none' or 'pik', got {transport!r}")
    if estimate not in ESTIMATES:
        raise SamplingError(f"estimate must be one of {ESTIMATES}, got {estimate!r}")
    if pool is not None and not isinstance(pool, (bool, np.bool_)):
        raise SamplingError(f"pool must be True, False or None (on unless estimate='before'), got {pool!r}")
    pool = pool_by_default(estimate) if pool is None else bool(pool)
    if pool and estimate == "before":
        raise SamplingError("pool combines the configurations after the moves: give estimate='moves' or 'after', "
                            "or pool=False")  # fmt: skip
    check_bounded_below(path)  # at every t: an unbounded action has no distribution to scan
    points = int(points)
    steps = 4 * (points - 1) if steps is None else (int(steps) if np.ndim(steps) == 0 else [int(k) for k in steps])
    if transport == "pik" and np.ndim(steps):
        raise SamplingError("with transport='pik' the steps are uniform (the flow's RK4 steps): give one number")
    prep_steps = max(1, int(np.sum(steps)) // 2) if prep_steps is None else int(prep_steps)
    d = path.lattice.d
    shapes = [tuple(path.lattice.shape)] if sizes is None else [(int(L),) * d for L in sizes]
    if transport == "pik":
        times, index = uniform_scan_times(points, (lo, hi), steps)
    else:
        times, index = scan_times(points, (lo, hi), steps, prep_steps)
    user = {shape: scan_observables(observables, shape) for shape in shapes}  # bad ones fail before any sampling
    out, runs, seconds, solve_seconds = {}, {}, {}, {}
    for shape in shapes:
        p = path if shape == tuple(path.lattice.shape) else resized(path, shape)
        label = size_label(shape)
        start = _time.perf_counter()
        recorded = {**magnetisation_moments(), **two_point_observables(shape), **user[shape]}
        recorded["dsdt"] = lambda x, t, p=p: p.dsdt(x, t)
        if transport == "pik":
            problem, _ = flow_problem(p, len(times) - 1, basis_options=flow_basis, n_collocation=flow_collocation,
                                      seed=seed, progress=progress)  # fmt: skip
            solve_seconds[label] = _time.perf_counter() - start
        else:
            problem = path_problem(p, times)
        # the magnetisation and two-point means only at the scan points; dS/dt at every step (the free-energy check)
        at = {k: times[index] for k in recorded if k != "dsdt"}
        result = smc(
            problem, particles, seed=seed, transport=transport, mcmc=mcmc, mcmc_steps=mcmc_steps,
            resample=resample, mcmc_every=mcmc_every, leapfrog_steps=leapfrog_steps, replicas=replicas,
            observables=recorded, observe_at=at, progress=progress, fourier_mass=fourier_mass, estimate=estimate,
            pool=times[index] if pool else None,
        )  # fmt: skip
        seconds[label] = _time.perf_counter() - start
        runs[label] = result
        out[label] = scan_rows(result, p, shape, times[index], list(user[shape]))
    settings = dict(
        points=points, t_range=[lo, hi], steps=steps, prep_steps=prep_steps, particles=particles, replicas=replicas,
        mcmc=mcmc, mcmc_steps=mcmc_steps, resample=resample, mcmc_every=mcmc_every, leapfrog_steps=leapfrog_steps,
        fourier_mass=fourier_mass, seed=seed, sizes=[size_label(s) for s in shapes], transport=transport,
        estimate=estimate, pool=bool(pool),
        n_steps=len(times) - 1,
        observables={k: v if isinstance(v, str) else repr(v) for k, v in (observables or {}).items()},
    )  # fmt: skip
    if transport == "pik":
        settings.update(flow_basis=flow_basis or {}, flow_collocation=flow_collocation, solve_seconds=solve_seconds)
    scan = LatticeScan(out, [], runs, seconds, settings)
    scan.crossings = binder_crossings(scan, path)
    return scan


__all__ = [
    "SCAN_OBSERVABLES",
    "LatticeScan",
    "couplings_at",
    "size_label",
    "binder_crossings",
    "flow_problem",
    "path_problem",
    "resized",
    "scan_lattice",
    "scan_observables",
    "scan_times",
    "two_point_estimates",
    "two_point_observables",
    "uniform_scan_times",
]
