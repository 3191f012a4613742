r"""The default lattice pipeline: base, path, basis and solve in one call (issue #7, lever 6).

:func:`fit_lattice` takes a :class:`LatticePath` whose end (``t = 1``) is the target and
returns a solved :class:`LatticeFlow`:

* ``base="matched"`` (default; SCIENCE.md 3b): a short reference HMC run at the target
  gives the two-point function :math:`G(k)`; the base is the Gaussian with precision
  :math:`K_0 = 1/G` (sampled exactly by FFT) and the path becomes
  :math:`\hat S_t = (1-t)\frac12\phi^TK_0\phi + t\hat S_1` (the path's start values are
  replaced by the base; only its end matters).
* ``base="free"``: the path as given, whose start must be Gaussian.
* a :class:`GaussianLatticeBase`: the matched path with that base.

The default basis (:func:`default_basis`) is the Fourier two-point term plus tamed
powers :math:`f_4, f_6` of fields smoothed with the base's own :math:`K_0` over a ladder
of scales (:class:`SmoothedPowers`; the Ornstein-Uhlenbeck semigroup of the base is what
inverts eq. 34 on quartic terms) and tamed cross-scale products
(:class:`SmoothedProducts`) over a shorter ladder.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable

import jax
import numpy as np
import sympy as sp

from .._errors import PikflowError, SolveError
from ._action import LatticePath, T
from ._basis import LatticeBasis, SmoothedProducts, kept_scales, lattice_basis
from ._flow import LatticeFlow, solve_lattice
from ._free import GaussianLatticeBase

#: Smoothing scales of the default powers, in units of :math:`1/(K_0^{\max}-K_0^{\min})` (:func:`default_scales`).
MATCHED_SCALE_LADDER = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
#: Scales of the default cross-scale products (:class:`SmoothedProducts`), same units.
PRODUCT_SCALE_LADDER = (0.5, 2.0, 8.0, 32.0)
#: Default taming width of the smoothed powers, in standard deviations of :math:`\psi_s` under the base.
DEFAULT_TAME = 10.0
#: The taming widths :func:`fit_lattice` tries with the default basis (the best ESS/N is kept).
TAME_LADDER = (10.0, 5.0)


def target_values(path: LatticePath) -> dict[str, float]:
    """The couplings of ``path`` at ``t = 1`` (the target), as numbers."""
    out = {}
    for sym, expr in path.coupling_exprs.items():
        val = sp.sympify(expr).xreplace({T: sp.Integer(1)})
        try:
            out[str(sym)] = float(val)
        except TypeError as err:
            raise PikflowError(f"coupling {sym} at t = 1 is {val}, not a number") from err
    return out


def default_scales(precision, ladder=MATCHED_SCALE_LADDER) -> tuple[float, ...]:
    r"""Scales :math:`s` of the smoothing :math:`e^{-s(K-K_{\min})}` adapted to the spectrum of ``precision``.

    A geometric ladder from where smoothing starts to act on the highest momenta to where
    only the lowest non-zero momenta survive: ``ladder`` times :math:`1/(K_{\max}-K_{\min})`.
    """
    K = np.asarray(precision, dtype=float)
    span = float(K.max() - K.min())
    if span <= 0:
        return ()
    return tuple(float(s / span) for s in ladder)


def default_basis(path: LatticePath, base: GaussianLatticeBase, *, tame: float | None = DEFAULT_TAME) -> LatticeBasis:
    """The default basis for a flow from ``base`` along ``path`` (see the module docstring)."""
    K0 = np.asarray(base.precision)
    basis = lattice_basis(
        path.lattice,
        magnetisation=(),
        scales=default_scales(K0),
        powers=(4, 6),
        precision=K0,
        tame=tame,
        local_range=None,
        z2=path.is_z2_symmetric(),
    )
    pairs = kept_scales(path.lattice, K0, default_scales(K0, PRODUCT_SCALE_LADDER))
    if len(pairs) < 2:
        return basis
    return LatticeBasis([*basis.families, SmoothedProducts(path.lattice, pairs, precision=K0, tame=tame)])


def fit_lattice(
    path: LatticePath,
    *,
    base: str | GaussianLatticeBase = "matched",
    basis: LatticeBasis | Callable[[LatticePath, GaussianLatticeBase], LatticeBasis] | None = None,
    steps: int = 10,
    n_collocation: int = 1000,
    hmc_samples: int = 4000,
    hmc_chains: int = 8,
    seed: int = 0,
    select: int = 1000,
    progress: bool = True,
) -> LatticeFlow:
    r"""Build the base, the path and the basis, and solve eq. 34 at every RK4 stage.

    Parameters
    ----------
    path
        A :class:`LatticePath`; its value at ``t = 1`` is the target.
    base
        ``"matched"`` (a Gaussian fitted to a short HMC run at the target, SCIENCE.md 3b),
        ``"free"`` (the path's own Gaussian start) or a :class:`GaussianLatticeBase`.
    basis
        The basis for :math:`\Omega_t`. Default: :func:`default_basis` solved for every
        taming width of :data:`TAME_LADDER` (widest first), keeping the first whose ``select``
        fresh samples have at most 0.1% runaways (a runaway leaves a hole in :math:`q` that
        no reweighting fills) and an ESS/N of at least half the best, else the largest
        ESS/N (``flow.info["attempts"]``: width, ESS/N, runaways, or the error of a flow
        that ran away). A callable ``basis(flow_path, base)`` builds the basis once the
        base (and so :math:`K_0`) is known.
    steps, n_collocation
        RK4 steps and collocation configurations of :func:`solve_lattice`. The defaults
        (10, 1000) were measured as good as (25, 2000) at a third of the cost (ESS/N 0.84
        against 0.81 at 16x16, (-1, 1)); fewer than ~500 configurations lose ESS (0.66 at 250).
    hmc_samples, hmc_chains
        The reference HMC run that fits the matched base.
    seed
        Seeds the HMC run, the collocation configurations and the selection samples.
    select
        Samples per candidate flow when choosing the taming width.
    progress
        Progress bars.

    Returns
    -------
    LatticeFlow
        With ``flow.info``: ``base`` (the kind), ``target`` (the couplings at t = 1),
        ``hmc_seconds`` and ``hmc_acceptance`` for a matched base, ``solve_seconds``.
    """
    if not isinstance(path, LatticePath):
        raise PikflowError(f"fit_lattice needs a LatticePath, got {type(path).__name__}")
    info: dict = {}
    if isinstance(base, str) and base == "free":
        gauss = GaussianLatticeBase.from_path(path)
        flow_path = path
        info["base"] = "free"
    else:
        values = target_values(path)
        info["target"] = values
        if isinstance(base, GaussianLatticeBase):
            gauss = base
            info["base"] = "given"
        elif isinstance(base, str) and base == "matched":
            from ._observables import hmc, matched_base

            target = LatticePath(path.action, values)
            t0 = _time.perf_counter()
            fields, acc = hmc(target, jax.random.PRNGKey(seed), hmc_samples, n_chains=hmc_chains)
            info.update(base="matched", hmc_seconds=_time.perf_counter() - t0, hmc_acceptance=acc)
            gauss = matched_base(fields.reshape(-1, *path.lattice.shape))
        else:
            raise PikflowError(f"base must be 'matched', 'free' or a GaussianLatticeBase, got {base!r}")
        flow_path = LatticePath.matched(path.action, values, np.asarray(gauss.precision))
    t0 = _time.perf_counter()
    if basis is not None:
        if callable(basis) and not isinstance(basis, LatticeBasis):
            basis = basis(flow_path, gauss)
        flow = solve_lattice(
            flow_path, basis, base=gauss, steps=steps, n_collocation=n_collocation, seed=seed, progress=progress
        )
    else:
        # The default basis is tamed; the best width depends on the coupling (wide where the target is close
        # to the matched Gaussian, narrow at strong coupling, where wide widths let tail samples run away and
        # leave a hole in q that no reweighting can fill). Solve for the widths of TAME_LADDER (widest first)
        # and keep the first whose `select` fresh samples have no more than 0.1% runaways and an ESS/N of at
        # least half the best seen; if none qualifies, the largest ESS/N. ESS/N from heavy-tailed weights is
        # noisy, so a narrower width must not win on ESS alone.
        attempts, cands = [], []
        for k, tame in enumerate(TAME_LADDER):
            try:
                cand = solve_lattice(
                    flow_path,
                    default_basis(flow_path, gauss, tame=tame),
                    base=gauss,
                    steps=steps,
                    n_collocation=n_collocation,
                    seed=seed,
                    progress=progress,
                )
            except SolveError as err:
                attempts.append({"tame": tame, "ok": False, "error": str(err)})
                continue
            trial = cand.sample(jax.random.PRNGKey(seed + 7919 + k), select)
            ess = float(trial.ess())
            attempts.append({"tame": tame, "ok": True, "ess": ess, "runaway": trial.n_runaway})
            cands.append((ess, trial.n_runaway / select, tame, cand))
        best = None
        if cands:
            top = max(c[0] for c in cands)
            clean = [c for c in cands if c[1] <= 1e-3 and c[0] >= 0.5 * top]
            best = clean[0] if clean else max(cands, key=lambda c: c[0])
        if best is None:
            raise SolveError(
                f"every default basis ran away (taming widths {list(TAME_LADDER)}): {attempts[-1]['error']}; "
                "pass steps=, n_collocation= or a basis of your own"
            )
        _, _, tame, flow = best
        info["tame"], info["attempts"] = tame, attempts
    info["solve_seconds"] = _time.perf_counter() - t0
    flow.info = info
    return flow
