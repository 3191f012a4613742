r"""Solving the elliptic :math:`\Omega_t` equation layer by layer (paper eq. 34): :func:`solve_lattice`.

The lattice counterpart of :func:`pikflow.solve` (0-D, :mod:`._build`): it returns a
:class:`LatticeFlow`. Each layer is assembled and solved by :func:`pikflow.solvers.layer_assembler`;
the basis is any :class:`~pikflow.bases.AbstractPotentialBasis`. What only the lattice space knows
is registered by it: the default basis (:func:`register_default_basis`) and the paths besides
:class:`~pikflow.action.LatticePath` this solve takes (:func:`register_solve_path`, the multilevel
``LevelPath``).
"""

from __future__ import annotations

import functools
import time as _time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import PikflowError, SolveError
from ..action import LatticePath, check_bounded_below
from ..bases import AbstractPotentialBasis
from ..progress import progress_bar
from ..solvers import layer_assembler, layer_solver
from ._compiled import assembler_fn, push_fn, velocity_fn
from ._lattice_base import GaussianLatticeBase
from ._lattice_flow import LatticeFlow, LatticeLayerReport, _in_chunks, push_batch

#: ``[basis(path)]``: the default potential basis of a path (:func:`register_default_basis`).
_DEFAULT_BASIS: list[Callable] = []
#: path class -> (its name in messages, the LatticePath whose growth is checked, the message without a base)
_PATHS: dict[type, tuple[str, Callable, str]] = {}


def register_default_basis(factory: Callable) -> None:
    """Make ``factory(path)`` the basis :func:`solve_lattice` uses when none is given (the lattice space's)."""
    _DEFAULT_BASIS[:] = [factory]


def default_basis(path) -> AbstractPotentialBasis:
    """The registered default basis of ``path`` (:func:`register_default_basis`)."""
    if not _DEFAULT_BASIS:
        raise PikflowError("no default lattice basis is registered: pass a basis (or import pikflow.lattice)")
    return _DEFAULT_BASIS[0](path)


def register_solve_path(cls: type, name: str, target: Callable, needs_base: str) -> None:
    """Make :func:`solve_lattice` take paths of ``cls`` besides :class:`~pikflow.action.LatticePath`.

    ``name`` names them in messages, ``target(path)`` is the :class:`~pikflow.action.LatticePath`
    checked with :func:`~pikflow.action.check_bounded_below`, and such a path has no default base:
    ``needs_base`` is the message when none is given.
    """
    _PATHS[cls] = (name, target, needs_base)


def solve_lattice(
    path: LatticePath,
    basis: AbstractPotentialBasis | None = None,
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

    Per layer the equation is collocated on configurations (base samples pushed forward with
    the layers already solved, so they follow :math:`p_t`), assembled with the basis's fused
    columns and solved by :func:`pikflow.solvers.solve_system` (:func:`pikflow.solvers.layer_assembler`),
    with per-layer checkpoints.

    Parameters
    ----------
    path
        The :class:`LatticePath`; its start must be Gaussian (or a matched base given).
    basis
        A potential basis (:class:`~pikflow.bases.AbstractPotentialBasis` on the path's lattice).
        Default: the one the lattice space registers (:func:`register_default_basis`),
        :func:`pikflow.lattice.lattice_basis` (Fourier two-point, magnetisation, smoothed
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
    other = next((v for k, v in _PATHS.items() if isinstance(path, k)), None)  # e.g. a multilevel LevelPath
    if not isinstance(path, LatticePath) and other is None:
        names = "".join(f" (or a {v[0]})" for v in _PATHS.values())
        raise PikflowError(f"solve_lattice needs a LatticePath{names}, got {type(path).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise PikflowError(f"steps must be a positive integer, got {steps!r}")
    check_bounded_below(path if other is None else other[1](path))
    if basis is None:
        basis = default_basis(path)
    if basis.lattice != path.lattice:
        raise PikflowError(f"the basis lives on {basis.lattice}, the path on {path.lattice}")
    if base is None and other is not None:
        raise PikflowError(other[2])
    if base is None:
        base = GaussianLatticeBase.from_path(path)
    solver = layer_solver(solver)
    if outlier is None:
        limit = jnp.inf
    elif not outlier > 1:
        raise PikflowError(f"outlier must be a factor > 1 (or None), got {outlier!r}")
    else:
        limit = float(outlier)
    dt = 1.0 / steps
    # compiled once per structure (_compiled.py): the path's and the basis's numbers are arguments
    assemble = assembler_fn(path, basis, solver, chunk, rcond, layer_assembler)
    vel = velocity_fn(basis)
    # the sampling push (one compiled program per structure, _compiled.py), one step at a time through the
    # layers solved so far, in the sampling's chunks (one input shape: no compilation of its own)
    push = push_fn(basis, steps, donate=True)
    stacked = np.zeros((2 * steps + 1, basis.n))
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
        stacked[2 * i : 2 * i + 3] = np.stack([a0[:-1], am[:-1], a1[:-1]])
        X, _ = _in_chunks(
            functools.partial(push, first=i, count=1), stacked, X, jnp.zeros(X.shape[0]), size=push_batch(basis)
        )
        if outlier is None and not bool(jnp.all(jnp.isfinite(X))):
            raise SolveError(f"collocation configurations blew up at t = {t + dt:.3g}: the basis is too unstable")
        save(2 * i + 2, X=np.asarray(X))
        a0 = a1
    bar.close()
    flow = LatticeFlow(path, basis, base, np.stack(coeffs), steps, reports)
    if ckpt is not None:
        flow.info["resumed_layers"] = ckpt.resumed
    return flow


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
