r"""Solving the elliptic :math:`\Omega_t` equation layer by layer and sampling the lattice flow.

Per layer (paper eq. 34 with the constant of the user guide)

.. math::  \sum_j a_j\,[\Delta - \partial\hat S_t\cdot\partial] T_j(\phi_c) - c_t
           = -\frac{d\hat S_t}{dt}(\phi_c)

is collocated on configurations :math:`\phi_c` (base samples pushed forward with the
layers already solved, so they follow :math:`p_t`) and solved by Lineax least squares
for :math:`(a, c_t)`. The flow :math:`\dot\phi = v_t = -\partial\Omega_t` (eqs. 11, 32)
is integrated with RK4; the layers sit at the RK4 stages (``2 steps + 1`` of them, as in
:mod:`pikflow.flow`). The log-density follows :math:`d\log q_t/dt = -\partial\cdot v_t
= \Delta\Omega_t` (continuous form, integrated with the same RK4 stages: exact up to
the :math:`O(\Delta t^4)` time-discretisation error; weights cannot correct an error in
:math:`\log q` itself, so :meth:`LatticeFlow.log_density_error` measures it and
``sample(..., logdet="exact")`` removes it).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time as _time

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np

from .._devices import device_count, replicate, replicated, sharded, split_rows
from .._errors import PikflowError, SamplingError, SolveError
from ..progress import progress_bar
from ._action import LatticePath
from ._basis import LatticeBasis, lattice_basis
from ._bounded import check_bounded_below
from ._free import GaussianLatticeBase
from ._stream import check_sample_memory, reductions


@dataclasses.dataclass(frozen=True)
class LatticeLayerReport:
    """One layer's solve: time, relative residual, :math:`c_t`, wall time, dropped configurations, solver iterations."""

    t: float
    residual: float
    constant: float
    seconds: float
    dropped: int = 0
    iterations: int = 0


def least_squares(A, b, rcond: float = 1e-12):
    r"""Least squares :math:`\min\|A x - b\|` with unit-norm columns and Lineax SVD (truncated at ``rcond``).

    The default direct solve of a lattice layer (:func:`pikflow.solvers.solve_system` with
    ``DirectSolver(lx.SVD())``).
    """
    from ..solvers import DirectSolver, solve_system

    return solve_system(DirectSolver(lx.SVD()), A, b, rcond=rcond).value


class LatticeFlow:
    r"""A solved lattice flow: the path, the basis, the base and one coefficient vector per layer.

    Attributes
    ----------
    coeffs : numpy.ndarray, shape ``(2 steps + 1, n_basis)``
        :math:`a_j` of :math:`\Omega_t = \sum_j a_j T_j` at every stage time.
    reports : list of LatticeLayerReport
        Per-layer residual :math:`\|A a - b\| / \|b - \bar b\|` and :math:`c_t`.
    """

    def __init__(self, path, basis, base, coeffs, steps, reports):
        self.path, self.basis, self.base = path, basis, base
        self.coeffs = np.asarray(coeffs)
        self.steps = int(steps)
        self.reports = list(reports)
        self.info: dict = {}
        #: target configurations for the hole check (:func:`fit_lattice` sets them; not saved)
        self.reference = None
        self._exact_fn = None
        self._reverse = None
        self._push = jax.jit(_make_push(basis, steps))
        # sampling owns its base draws: their buffers are donated to the fused scan (no copies per batch)
        self._push_donated = jax.jit(_make_push(basis, steps), donate_argnums=(1, 2))
        self._target = jax.jit(jax.vmap(lambda x: path.value(x, 1.0)))

    @property
    def times(self) -> np.ndarray:
        """The stage times of the layers."""
        return np.linspace(0.0, 1.0, 2 * self.steps + 1)

    def velocity(self, layer: int, fields):
        r""":math:`v = -\partial\Omega` of layer ``layer`` at a batch of configurations."""
        a = jnp.asarray(self.coeffs[layer])
        return -jax.vmap(self.basis.gradient_and_laplacian, (None, 0))(a, fields)[0]

    def push(self, fields, log_q):
        """Push a batch of base samples through every step: final configurations and log-densities."""
        return self._push(jnp.asarray(self.coeffs), fields, log_q)

    def sample(
        self,
        key,
        n: int,
        *,
        batch: int = 1000,
        logdet: str = "continuous",
        progress: bool = False,
        keep_fields: bool = True,
    ) -> LatticeSamples:
        r"""``n`` samples of the flow with log importance weights :math:`\log w = -\hat S_1 - \log q_1`.

        Parameters
        ----------
        key, n
            PRNG key and number of samples.
        batch
            Samples per compiled call (``logdet="exact"``: at most :math:`2^{16}/V`).
        logdet
            ``"continuous"`` (default): :math:`\log q_1` from :math:`d\log q/dt = \Delta\Omega_t`
            integrated on the RK4 stages (cheap; it differs from the density of the applied
            RK4 map by :math:`O(\Delta t^4)`, typically :math:`10^{-4}`, but more for samples
            where the velocity is stiff: check with :meth:`log_density_error`).
            ``"exact"``: :math:`\log q_1 = \log q_0 - \log|\det\partial x_1/\partial x_0|`
            of the applied map by forward-mode autodiff (exact weights; :math:`V` times the cost).
        progress
            Show a progress bar.
        keep_fields
            Keep every configuration (``n`` x volume float64). ``False``: each batch is reduced
            as it is drawn to what the lattice estimates need (per sample the magnetisation,
            the two-point series :math:`C(r)` and whether the configuration is finite), so
            memory is one batch plus :math:`O(n L)`, whatever the volume.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise SamplingError(f"the number of samples must be a positive integer, got {n!r}")
        if not isinstance(logdet, str) or logdet not in ("continuous", "exact"):
            raise SamplingError(f"logdet must be 'continuous' or 'exact', got {logdet!r}")
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch <= 0:
            raise SamplingError(f"batch must be a positive integer, got {batch!r}")
        field_shape = tuple(self.path.field_shape)  # the lattice, or (components, *lattice)
        components = self.path.action.n
        if logdet == "exact":
            batch = max(1, min(batch, 2**16 // math.prod(field_shape)))
        check_sample_memory(self.path.lattice.shape, n, min(batch, n), keep_fields, components=components)
        fields = np.empty((n, *field_shape)) if keep_fields else None  # filled batch by batch
        logw, reduced = [], []
        bar = progress_bar(total=n, desc="sampling", disable=not progress)
        for i, start in enumerate(range(0, n, batch)):
            m = min(batch, n - start)
            x0, lq0 = self.base.sample(jax.random.fold_in(key, i), m)
            if logdet == "exact":
                x1, ld = self._exact(jnp.asarray(self.coeffs), x0)
                lq1 = lq0 - ld
            elif device_count() > 1:  # chunks of PUSH_BATCH per device, split over the sample mesh
                x1, lq1 = _in_chunks(*self._sharded_push(), x0, lq0, size=PUSH_BATCH * device_count(), pad=True)
            else:
                x1, lq1 = _in_chunks(self._push_donated, jnp.asarray(self.coeffs), x0, lq0)
            logw.append(np.asarray(-self._target(x1) - lq1))
            if keep_fields:
                fields[start : start + m] = np.asarray(x1)
            else:  # reduced now: the batch's configurations are freed before the next one is drawn
                reduced.append(reductions(np.asarray(x1), components))
            del x0, lq0, x1, lq1
            bar.update(m)
        bar.close()
        if keep_fields:
            return LatticeSamples(fields, np.concatenate(logw), components=components)
        finite, mag, two = (np.concatenate(r) for r in zip(*reduced, strict=True))
        return LatticeSamples(
            None,
            np.concatenate(logw),
            fields_finite=finite,
            magnetisation_values=mag,
            two_point_values=two,
            lattice_shape=tuple(self.path.lattice.shape),
            components=components,
        )

    def _sharded_push(self):
        """The push compiled for the sample mesh (samples split, coefficients and outputs replicated)."""
        if getattr(self, "_sharded", None) is None or self._sharded[0] != device_count():
            fn = jax.jit(
                _make_push(self.basis, self.steps),
                in_shardings=(replicated(), sharded(), sharded()),
                out_shardings=(replicated(), replicated()),
            )
            self._sharded = (device_count(), fn, replicate(jnp.asarray(self.coeffs)))
        return self._sharded[1:]

    @property
    def _exact(self):
        if self._exact_fn is None:
            push = _make_push(self.basis, self.steps)

            def one(coeffs, x):
                f = lambda y: push(coeffs, y[None], jnp.zeros(1))[0][0]  # noqa: E731
                jac = jax.jacfwd(f)(x).reshape(x.size, x.size)
                return f(x), jnp.linalg.slogdet(jac)[1]

            self._exact_fn = jax.jit(jax.vmap(one, (None, 0)))
        return self._exact_fn

    def log_density_error(self, key, n: int = 16) -> np.ndarray:
        r"""Continuous minus exact :math:`\log q_1` on ``n`` fresh samples (see :meth:`sample`'s ``logdet``).

        Importance weights and the IMH step correct the flow's *sampling* error, not an error
        in :math:`\log q` itself: a difference :math:`\epsilon(\phi)` biases estimates by
        about :math:`\langle\epsilon\rangle`-weighted amounts. Use this check; where it is not
        negligible against the statistical errors, sample with ``logdet="exact"`` or more steps.
        """
        x0, lq0 = self.base.sample(key, n)
        _, cont = self.push(x0, lq0)
        _, ld = self._exact(jnp.asarray(self.coeffs), x0)
        return np.asarray(cont - (lq0 - ld))

    def log_density(self, fields, *, batch: int = 1000) -> np.ndarray:
        r""":math:`\log q_1` of the flow at given configurations (e.g. reference HMC samples), by the reverse flow.

        Integrates :math:`\dot\phi = v_t` backwards from :math:`t = 1` to :math:`0` with the
        same RK4 stages and accumulates :math:`\log q_1(\phi_1) = \log q_0(\phi_0) +
        \int_0^1\Delta\Omega_t(\phi_t)\,dt` (the continuous form of :meth:`sample`, accurate to
        :math:`O(\Delta t^4)`). With samples of the target this measures what forward samples
        cannot see: regions where :math:`q` is far below :math:`p` (holes), see :meth:`target_ess`.
        """
        x = jnp.asarray(fields, dtype=float)
        if x.shape[1:] != self.path.field_shape:
            raise SamplingError(f"configurations must have shape (n, {', '.join(map(str, self.path.field_shape))})")
        if self._reverse is None:
            self._reverse = jax.jit(_make_push(self.basis, self.steps, reverse=True))
        out = []
        for start in range(0, x.shape[0], batch):
            chunk = x[start : start + batch]
            x0, integral = _in_chunks(self._reverse, jnp.asarray(self.coeffs), chunk, jnp.zeros(chunk.shape[0]))
            out.append(np.asarray(self.base.log_prob(x0) + integral))
        return np.concatenate(out)

    def target_ess(self, target_fields, samples: LatticeSamples) -> float:
        r"""ESS/N estimated from samples of the target: :math:`\bar w_q / \bar w_p`, sensitive to holes in :math:`q`.

        For importance weights :math:`w = e^{-\hat S_1}/q`, :math:`E_q[w^2]/E_q[w]^2 = E_p[w]/Z` with
        :math:`Z = E_q[w]`, so ESS/N :math:`= E_q[w]/E_p[w]`. The usual estimate from flow samples
        (:meth:`LatticeSamples.ess`) never sees a region the flow misses; this one, from target
        samples ``target_fields`` (e.g. a reference HMC run) pulled back with :meth:`log_density`,
        does: a value far below ``samples.ess()`` means :math:`q` has a hole and estimates are biased.
        """
        x = jnp.asarray(target_fields, dtype=float)
        log_wp = np.asarray(-self._target(x)) - self.log_density(x)
        log_wq = np.where(samples.finite, samples.log_w, -np.inf)
        finite = log_wp[np.isfinite(log_wp)]
        if finite.size == 0 or not np.any(np.isfinite(log_wq)):
            raise SamplingError("target_ess needs finite weights on both sides: the flow or its samples blew up")
        lp = np.logaddexp.reduce(finite) - np.log(finite.size)
        lq = np.logaddexp.reduce(log_wq) - np.log(len(log_wq))
        return float(min(1.0, np.exp(lq - lp)))

    def annealing_problem(self, *, logdet: str = "continuous"):
        """This flow as an :class:`~pikflow.samplers.AnnealingProblem` for SMC (see :func:`lattice_problem`)."""
        from ._smc import lattice_problem

        return lattice_problem(self, logdet=logdet)

    def residuals(self) -> np.ndarray:
        """The relative residual of every layer."""
        return np.array([r.residual for r in self.reports])

    def save(self, directory):
        """Write the flow into ``directory`` (``flow.json`` + ``arrays.npz``, see :func:`save_lattice_flow`)."""
        from ._io import save_lattice_flow

        return save_lattice_flow(self, directory)

    @classmethod
    def load(cls, directory) -> LatticeFlow:
        """Read a flow written by :meth:`save` (see :func:`load_lattice_flow`); same samples for the same key."""
        from ._io import load_lattice_flow

        return load_lattice_flow(directory)


#: Configurations per compiled push call. The intermediates of one evaluation (every smoothing scale of
#: every configuration) must stay in cache: measured at 16x16 (2 shared cores) 4.2 / 4.4 / 10.8 / 22.2 ms
#: a sample for batches of 125 / 250 / 500 / 1000 (``pikflow bench lattice`` prints this scan).
PUSH_BATCH = 128


def _in_chunks(push, coeffs, x, lq, size: int = PUSH_BATCH, pad: bool = False):
    """``push(coeffs, x, lq)`` on chunks of ``size`` configurations (the last one padded with zeros: one shape).

    ``pad``: pad a single short chunk too, and split every chunk over the sample mesh
    (:func:`pikflow._devices.split_rows`).
    """
    n = x.shape[0]
    if n <= size and not pad:
        return push(coeffs, x, lq)
    outs = []
    for start in range(0, n, size):
        xc, lc = x[start : start + size], lq[start : start + size]
        m = xc.shape[0]
        if m < size:
            xc = jnp.concatenate([xc, jnp.zeros((size - m, *xc.shape[1:]), xc.dtype)])
            lc = jnp.concatenate([lc, jnp.zeros(size - m, lc.dtype)])
        if pad:
            xc, lc = split_rows(xc), split_rows(lc)
        xo, lo = push(coeffs, xc, lc)
        outs.append((xo[:m], lo[:m]))
    return jnp.concatenate([o[0] for o in outs]), jnp.concatenate([o[1] for o in outs])


def _make_push(basis: LatticeBasis, steps: int, reverse: bool = False, dt: float | None = None):
    """RK4 over the stage layers, adding the integral of ΔΩ to ``lq``; ``reverse``: from t = 1 back to 0.

    ``dt`` is the step (default ``1 / steps``: the whole path; the solve pushes one step of ``1 / steps``).

    Every RK4 stage is one fused evaluation (:meth:`LatticeBasis.gradient_and_laplacian`: the
    velocity and the divergence from the same transforms), all steps in one ``lax.scan``.
    """
    dt = 1.0 / steps if dt is None else dt
    sign = 1.0 if reverse else -1.0
    both = jax.vmap(basis.gradient_and_laplacian, (None, 0))

    def stage(a, x):
        g, lap = both(a, x)
        return sign * g, lap

    def push(coeffs, x, lq):
        if reverse:
            coeffs = coeffs[::-1]

        def body(carry, i):
            x, lq = carry
            a0, am, a1 = coeffs[2 * i], coeffs[2 * i + 1], coeffs[2 * i + 2]
            k1, l1 = stage(a0, x)
            k2, l2 = stage(am, x + 0.5 * dt * k1)
            k3, l3 = stage(am, x + 0.5 * dt * k2)
            k4, l4 = stage(a1, x + dt * k3)
            dlq = l1 + 2 * l2 + 2 * l3 + l4
            return (x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), lq + dt / 6 * dlq), None

        (x, lq), _ = jax.lax.scan(body, (x, lq), jnp.arange(steps))
        return x, lq

    return push


def solve_lattice(
    path: LatticePath,
    basis: LatticeBasis | None = None,
    *,
    base: GaussianLatticeBase | None = None,
    steps: int = 25,
    n_collocation: int = 2000,
    seed: int = 0,
    rcond: float = 1e-12,
    chunk: int = 256,
    outlier: float | None = 8.0,
    solver=None,
    checkpoint=None,
    progress: bool = True,
    desc: str = "solving layers",
) -> LatticeFlow:
    r"""Solve eq. 34 for :math:`\Omega_t` at every RK4 stage of ``path`` and return the :class:`LatticeFlow`.

    Parameters
    ----------
    path
        The :class:`LatticePath`; its start must be Gaussian (or a matched base given).
    basis
        Default :func:`lattice_basis` (Fourier two-point, magnetisation, smoothed
        powers, local Hermite to range 1), symmetrised under the path's detected symmetry.
    base
        The exactly sampled base; default the Gaussian :math:`\hat S_0` of the path.
    steps
        RK4 steps (``2 steps + 1`` layers).
    n_collocation
        Collocation configurations (base samples pushed with the solved layers).
    seed
        Seed of the collocation configurations.
    rcond
        Relative singular-value cut of the least-squares solve (unit-norm columns).
    chunk
        Configurations per vmapped chunk when assembling (bounds memory).
    outlier
        Collocation configurations whose root-mean-square field exceeds ``outlier`` times
        the median one of the current set, whose right-hand side :math:`d\hat S_t/dt` lies more
        than ``outlier`` robust standard deviations (1.4826 MAD) from the median, or that are
        not finite, have run away from :math:`p_t`; they are left out of the layer's least
        squares (so a few runaways cannot dominate the fit) and counted in ``reports[i].dropped``.
        ``None``: keep all (a non-finite one then raises :class:`SolveError`).
    solver
        How each layer's least squares is solved (:func:`pikflow.solvers.solve_system`):
        ``None`` or a :class:`~pikflow.solvers.DirectSolver` (default ``lx.SVD`` cut at ``rcond``),
        a :class:`~pikflow.solvers.LevenbergMarquardtSolver` or an
        :class:`~pikflow.solvers.AdamSolver` (both warm-started from the previous layer).
    checkpoint
        A directory for per-layer checkpoints (:mod:`pikflow._checkpoint`): finished layers
        are written there as they are solved, and a rerun of the same solve (same path, basis,
        base, settings) skips them and gives the same flow bit for bit. A checkpoint of another
        solve is ignored with a ``CheckpointWarning`` and overwritten.
    progress
        Show a progress bar over layers.
    desc
        The progress bar's label (:func:`fit_lattice` names the candidate it solves).
    """
    if not isinstance(path, LatticePath):
        raise PikflowError(f"solve_lattice needs a LatticePath, got {type(path).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise PikflowError(f"steps must be a positive integer, got {steps!r}")
    check_bounded_below(path)
    if basis is None:
        basis = lattice_basis(path.lattice, symmetry=path.symmetry())
    if basis.lattice != path.lattice:
        raise PikflowError(f"the basis lives on {basis.lattice}, the path on {path.lattice}")
    if base is None:
        base = GaussianLatticeBase.from_path(path)
    solver = _lattice_solver(solver)
    if outlier is None:
        limit = jnp.inf
    elif not outlier > 1:
        raise PikflowError(f"outlier must be a factor > 1 (or None), got {outlier!r}")
    else:
        limit = float(outlier)
    dt = 1.0 / steps
    assemble = _assembler(path, basis, solver, chunk, rcond)
    vel = jax.jit(jax.vmap(lambda a, x: -basis.gradient_and_laplacian(a, x)[0], (None, 0)))
    push_one = jax.jit(_make_push(basis, 1, dt=dt))  # one RK4 step of size dt through (a0, am, a1)
    X, _ = base.sample(jax.random.PRNGKey(seed), n_collocation)
    ckpt = _open_checkpoint(checkpoint, path, basis, base, solver, X, (steps, n_collocation, seed, rcond, outlier))
    coeffs, reports = [], []
    # only Adam's schedule depends on the layer (a second compilation otherwise)
    n_first = getattr(solver, "first_layers", 1) if hasattr(solver, "warm_epochs") else 2 * steps + 1
    bar = progress_bar(total=2 * steps + 1, desc=desc, disable=not progress)

    def layer(i, Xc, t, init, saved=None):
        if saved is not None:  # finished before: the same arrays an uninterrupted solve computed
            sol, rep = saved["sol"], saved["report"]
            report = LatticeLayerReport(float(rep[0]), float(rep[1]), float(rep[2]), float(rep[3]), *map(int, rep[4:]))
        else:
            t0 = _time.perf_counter()
            init = jnp.zeros(basis.n + 1) if init is None else init
            sol, res, dropped, iters = assemble(Xc, t, limit, init, i < n_first)
            sol = np.asarray(sol)
            if int(dropped) > n_collocation // 2:
                raise SolveError(
                    f"{int(dropped)} of {n_collocation} collocation configurations ran away by t = {t:.3g}: the "
                    "flow is unstable; use more steps, a smaller tame width or a matched base"
                )
            if not np.all(np.isfinite(sol)):
                raise SolveError(
                    f"the solve at t = {t:.4g} gave non-finite coefficients: shrink the basis or raise rcond"
                )
            seconds = _time.perf_counter() - t0
            report = LatticeLayerReport(float(t), float(res), float(sol[-1]), seconds, int(dropped), int(iters))
        coeffs.append(sol[:-1])
        reports.append(report)
        bar.update(1)
        return jnp.asarray(sol)

    def load(i):
        return None if ckpt is None else ckpt.load(i)

    def save(i, **extra):
        if ckpt is not None:
            r = reports[i]
            rep = [r.t, r.residual, r.constant, r.seconds, r.dropped, r.iterations]
            ckpt.save(i, sol=np.append(coeffs[i], r.constant), report=np.asarray(rep, dtype=float), **extra)

    s0 = load(0)
    a0 = layer(0, X, 0.0, None, s0)
    if s0 is None:
        save(0)
    for i in range(steps):
        t = i * dt
        mid, end = load(2 * i + 1), load(2 * i + 2)
        if mid is not None and end is not None and "X" in end:
            layer(2 * i + 1, None, t + 0.5 * dt, None, mid)
            a0 = layer(2 * i + 2, None, t + dt, None, end)
            X = jnp.asarray(end["X"])
            continue
        Xh = X + 0.5 * dt * vel(a0[:-1], X)
        am = layer(2 * i + 1, Xh, t + 0.5 * dt, a0, mid)
        if mid is None:
            save(2 * i + 1)
        Xm = X + dt * vel(am[:-1], Xh)
        a1 = layer(2 * i + 2, Xm, t + dt, am)
        X, _ = push_one(jnp.stack([a0[:-1], am[:-1], a1[:-1]]), X, jnp.zeros(X.shape[0]))
        if outlier is None and not bool(jnp.all(jnp.isfinite(X))):
            raise SolveError(f"collocation configurations blew up at t = {t + dt:.3g}: the basis is too unstable")
        save(2 * i + 2, X=np.asarray(X))
        a0 = a1
    bar.close()
    flow = LatticeFlow(path, basis, base, np.stack(coeffs), steps, reports)
    if ckpt is not None:
        flow.info["resumed_layers"] = ckpt.resumed
    return flow


def _lattice_solver(solver):
    """The solver of a lattice layer: default ``DirectSolver(lx.SVD())`` (cut at ``rcond``); checked."""
    from ..solvers import AdamSolver, DirectSolver, LevenbergMarquardtSolver

    if solver is None:
        return DirectSolver(lx.SVD())
    if not isinstance(solver, (DirectSolver, AdamSolver, LevenbergMarquardtSolver)):
        raise PikflowError(
            "solver must be a DirectSolver, LevenbergMarquardtSolver or AdamSolver (or None), "
            f"got {type(solver).__name__}"
        )
    return solver


def _assembler(path: LatticePath, basis: LatticeBasis, solver, chunk: int, rcond: float):
    """The jitted layer solve: assemble eq. 34 on the kept configurations and solve it with ``solver``."""
    from ..solvers import solve_system

    def row(x, t):
        return basis.fused_columns(x, path.gradient(x, t)), -path.dsdt(x, t)

    nd = len(path.field_shape)  # the lattice axes, and the component axis of n > 1 fields
    axes = tuple(range(1, nd + 1))

    def kept(X, factor):
        # relative to the current ensemble (fields may legitimately grow along the path, e.g. towards a
        # small mass): a configuration whose rms field exceeds `factor` times the median one has run away
        finite = jnp.all(jnp.isfinite(X), axis=axes)
        rms = jnp.sqrt(jnp.mean(jnp.where(finite.reshape((-1,) + (1,) * nd), X, 0.0) ** 2, axis=axes))
        median = jnp.nanmedian(jnp.where(finite, rms, jnp.nan))
        return finite & (rms < factor * median)

    @functools.partial(jax.jit, static_argnums=4)
    def assemble(X, t, limit, init, first):
        ok = kept(X, limit)
        X = jnp.where(ok.reshape((-1,) + (1,) * nd), X, 0.0)
        cols, b = jax.lax.map(lambda x: row(x, t), X, batch_size=chunk)
        # a configuration far out in the tail can be finite with an ordinary rms field and still have a
        # right-hand side dS/dt so large that its row alone decides the least squares: drop rows whose
        # right-hand side lies more than `limit` robust standard deviations (1.4826 MAD) from the median
        bm = jnp.nanmedian(jnp.where(ok, b, jnp.nan))
        b_sd = 1.4826 * jnp.nanmedian(jnp.where(ok, jnp.abs(b - bm), jnp.nan))
        ok = ok & (jnp.abs(b - bm) <= limit * jnp.maximum(b_sd, 1e-300)) & jnp.all(jnp.isfinite(cols), axis=1)
        A = jnp.where(ok[:, None], jnp.concatenate([cols, -jnp.ones((X.shape[0], 1))], axis=1), 0.0)
        b = jnp.where(ok, b, 0.0)
        solution = solve_system(solver, A, b, init, first, rcond)
        sol = solution.value
        mean = jnp.sum(b) / jnp.maximum(jnp.sum(ok), 1)
        res = jnp.linalg.norm(A @ sol - b) / jnp.linalg.norm((b - mean) * ok)
        return sol, res, jnp.sum(~ok), solution.stats["steps"]

    return assemble


def _open_checkpoint(checkpoint, path, basis, base, solver, X, settings):
    """The checkpoint of this solve, fingerprinted by its settings and probe values of path, basis and base."""
    if checkpoint is None:
        return None
    from .._checkpoint import open_checkpoint

    x = X[:2]
    a = jnp.linspace(-1.0, 1.0, basis.n)
    probes = [X, path.gradient(x[0], 0.5), path.dsdt(x[0], 0.3), path.dsdt(x[1], 1.0), base.log_prob(x)]
    probes.append(jax.vmap(basis.gradient_and_laplacian, (None, 0))(a, x)[0])
    spec = {
        "kind": "lattice",
        "lattice": list(path.lattice.shape),
        "density": str(path.action.source),
        "basis": repr(basis),
        "solver": solver.spec(),
        "settings": [None if s is None else float(s) for s in settings],
    }
    return open_checkpoint(checkpoint, spec, probes)


@dataclasses.dataclass
class LatticeSamples:
    r"""Final configurations of a lattice flow and their log importance weights.

    ``log_w = -S_1(phi) - log q_1(phi)`` (unnormalised). Non-finite configurations or
    weights are kept (counted by :attr:`n_nonfinite`) and weigh zero in every estimate.
    """

    fields: np.ndarray | None
    log_w: np.ndarray
    #: without ``fields`` (``sample(..., keep_fields=False)``): per sample, whether the configuration is
    #: finite, its magnetisation and its two-point series (:func:`~pikflow.lattice.two_point_series`)
    fields_finite: np.ndarray | None = None
    magnetisation_values: np.ndarray | None = None
    two_point_values: np.ndarray | None = None
    lattice_shape: tuple | None = None
    #: field components per site (``fields`` has shape ``(n, components, *lattice)`` when > 1)
    components: int = 1

    @property
    def finite(self) -> np.ndarray:
        """Per sample: configuration and weight both finite (the others weigh zero everywhere)."""
        if self.fields is None:
            return np.isfinite(self.log_w) & self.fields_finite
        axes = tuple(range(1, self.fields.ndim))
        return np.isfinite(self.log_w) & np.all(np.isfinite(self.fields), axis=axes)

    @property
    def n_nonfinite(self) -> int:
        """Samples whose configuration or weight is not finite."""
        return int((~self.finite).sum())

    @property
    def n_runaway(self) -> int:
        r"""Samples that ran away: non-finite, or finite with a weight below :math:`e^{-700}` of the largest.

        Both weigh (numerically) zero in every estimate; they are counted, never dropped.
        """
        ok = self.finite
        if not ok.any():
            return len(self.log_w)
        top = self.log_w[ok].max()
        return int((~ok | (np.where(ok, self.log_w, top) < top - 700)).sum())

    def magnetisations(self) -> np.ndarray:
        r""":math:`M_a = \sum_n \phi_{a,n}` per sample, shape ``(n_samples, components)``."""
        if self.fields is None:
            return self.magnetisation_values.reshape(len(self.log_w), self.components)
        return self.fields.reshape(self.fields.shape[0], self.components, -1).sum(axis=2)

    def magnetisation(self) -> np.ndarray:
        r""":math:`M = \sum_n \phi_n` per sample (:math:`|M|` of the vector :math:`M_a` for several components)."""
        M = self.magnetisations()
        return M[:, 0] if self.components == 1 else np.sqrt(np.sum(M**2, axis=1))

    def two_point(self) -> tuple[np.ndarray, np.ndarray]:
        r"""Per sample :math:`C(r)` (:func:`~pikflow.lattice.two_point_series`) and the mean field :math:`m`.

        Non-finite configurations give zeros (they weigh zero in every estimate).
        """
        ok = self.finite
        mask = ok if self.components == 1 else ok[:, None]
        if self.fields is None:
            m = self.magnetisations() / math.prod(self.lattice_shape)
            m = m[:, 0] if self.components == 1 else m
            return np.where(ok[:, None], self.two_point_values, 0.0), np.where(mask, m, 0.0)
        from ._observables import _site_means, two_point_series

        x = np.where(ok.reshape((-1,) + (1,) * (self.fields.ndim - 1)), self.fields, 0.0)
        return two_point_series(x, self.components), _site_means(x, self.components)

    def ess(self) -> float:
        """ESS/N of the importance weights (non-finite ones count as zero)."""
        from ..diagnostics import ess_fraction

        return ess_fraction(np.where(self.finite, self.log_w, -np.inf))
