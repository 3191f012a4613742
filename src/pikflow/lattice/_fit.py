r"""The default lattice pipeline: base, path, basis and solve in one call (issue #7, lever 6).

:func:`fit_lattice` takes a :class:`LatticePath` whose end (``t = 1``) is the target and
returns a solved :class:`LatticeFlow`:

* ``base="matched"`` (default; the user guide): a short reference HMC run at the target
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

import pathlib
import time as _time
from collections.abc import Callable

import jax
import numpy as np
import sympy as sp

from .._errors import PikflowError, SolveError
from ..action import LatticePath, check_bounded_below
from ..action._path import t as T
from ..flow import GaussianLatticeBase, LatticeFlow, solve_lattice
from ..refine import score_flow
from ._basis import LatticeBasis, Magnetisation
from ._fit_basis import (
    BASIS_PRESETS,
    DEFAULT_SELECT,
    MATCHED_SCALE_LADDER,
    POWER_LADDERS,
    PRESET_SMOOTHING,
    RIDGE_PRESETS,
    TAME_LADDER,
    auto_collocation,
    default_basis,
    preset_basis,
)


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


#: The ``base`` values :func:`fit_lattice` accepts (besides a :class:`GaussianLatticeBase`).
BASE_KINDS = ("matched", "gaussian", "mixture", "free")
#: Target configurations (at most) pulled back through each candidate flow for :meth:`LatticeFlow.target_ess`.
HOLE_CHECK_SAMPLES = 2000


def _candidate_label(i: int, n: int, kind: str, tame: float | None) -> str:
    """``candidate 2/4: mixture, width 5``: names a candidate flow in the progress bars."""
    return f"candidate {i}/{n}: {kind}" + ("" if tame is None else f", width {tame:g}")


#: With ``fourier_bins="auto"``, the Fourier orbits are merged when there are more non-zero ones than this
#: (2-D: 153 at 32x32 stay one coefficient each; 561 at 64x64 and 2145 at 128x128 are merged; 3-D: 165 at 16^3
#: stay, 969 at 32^3 are merged). At 64x64 one coefficient per orbit is more than 1000 collocation
#: configurations determine well: ESS/N 0.43 at (-1, 1) against 0.69 with 64 groups, both on a smooth base.
AUTO_BIN_ABOVE = 300
#: The groups of merged orbits with ``fourier_bins="auto"`` (measured at 32x32 and 64x64: see fit_lattice).
AUTO_FOURIER_BINS = 64
#: The smoothing degree of the matched base with ``smooth_base="auto"`` when the orbits are merged.
AUTO_SMOOTH_DEGREE = 3
#: With ``base="matched"``, the Binder cumulant :math:`U` of the reference configurations' magnetisation decides
#: which candidates are solved: above ``BINDER_BOUNDS[1]`` (two separated peaks, the broken phase) the mixture
#: alone, below ``BINDER_BOUNDS[0]`` (one peak) the Gaussian alone, in between both. Measured: in the broken
#: phase (U = 0.667, 16x16 to 128x128) the Gaussian candidate ran away on 257-499 of 500 samples (ESS/N <= 0.006);
#: near seed 002's critical point (|U| < 0.1, 16x16 to 128x128) the two scored within 0.001 of each other; at
#: 4x4-16x16 (-1, 1) and (-2, 2) (U 0.19-0.44) both are tried.
BINDER_BOUNDS = (0.1, 0.6)
#: ``schedule="auto"``: the matched path's clock :math:`\tau = t^p` with this :math:`p` (a base given as
#: ``base="free"`` keeps its own clock). The flow from the matched base moves fastest at the start; measured at
#: 16x16 (-2, 2) with the lean basis, the continuous log-density's error against the applied RK4 map (rms) is
#: 0.0086 at 10 uniform steps and 0.011 at 3 steps with p = 2 (0.36 at 3 uniform steps).
AUTO_TIME_POWER = 2.0


def _time_power(schedule, base) -> float:
    r"""The power :math:`p` of the clock :math:`\tau = t^p` for :func:`fit_lattice`'s ``schedule``."""
    if isinstance(schedule, str) and schedule in ("auto", "uniform"):
        free = isinstance(base, str) and base == "free"
        return 1.0 if schedule == "uniform" or free else AUTO_TIME_POWER
    if isinstance(schedule, bool) or not isinstance(schedule, (int, float, np.integer, np.floating)):
        raise PikflowError(f"schedule must be 'auto', 'uniform' or a power p >= 1 (tau = t**p), got {schedule!r}")
    if not (np.isfinite(schedule) and 1.0 <= schedule <= 4.0):
        raise PikflowError(f"schedule must be a power p with 1 <= p <= 4 (tau = t**p), got {schedule!r}")
    return float(schedule)


def _resolve_binning(path, base, basis, fourier_bins, smooth_base) -> tuple:
    """``"auto"`` of :func:`fit_lattice`'s ``fourier_bins`` and ``smooth_base``: merge the orbits of a large
    single-component lattice, and then smooth a matched base where the action allows (every axis reflection)."""
    sym = path.symmetry() if isinstance(path, LatticePath) else None
    if isinstance(fourier_bins, str) and fourier_bins == "auto":
        many = sym is not None and path.action.n == 1 and len(sym.orbits()[1]) - 1 > AUTO_BIN_ABOVE
        own = basis is not None and not isinstance(basis, str)
        fourier_bins = AUTO_FOURIER_BINS if many and not own else None
    if isinstance(smooth_base, str) and smooth_base == "auto":
        matched = isinstance(base, str) and base in ("matched", "gaussian", "mixture")
        reflective = sym is not None and all(sym.reflections)
        smooth_base = AUTO_SMOOTH_DEGREE if fourier_bins is not None and matched and reflective else None
    return fourier_bins, smooth_base


def _check_fit_arguments(path, base, select, basis, fourier_bins=None, smooth_base=None):
    """Check :func:`fit_lattice`'s path, base and selection size; resolve a basis preset name (basis, preset)."""
    if not isinstance(path, LatticePath):
        raise PikflowError(f"fit_lattice needs a LatticePath, got {type(path).__name__}")
    if isinstance(base, str) and base not in BASE_KINDS:
        raise PikflowError(f"base must be one of {list(BASE_KINDS)} or a GaussianLatticeBase, got {base!r}")
    if isinstance(select, bool) or not isinstance(select, (int, np.integer)) or select < 1:
        raise PikflowError(f"select must be a positive integer (samples per candidate flow), got {select!r}")
    if not isinstance(base, (str, GaussianLatticeBase)):
        raise PikflowError(f"base must be one of {list(BASE_KINDS)} or a GaussianLatticeBase, got {base!r}")
    preset = None
    if isinstance(basis, str):
        if basis not in BASIS_PRESETS:
            raise PikflowError(
                f"basis must be one of {list(BASIS_PRESETS)}, a LatticeBasis or a callable, got {basis!r}"
            )
        preset = basis
        basis = (
            None if preset in POWER_LADDERS else (lambda p, b: preset_basis(preset, p, b, fourier_bins=fourier_bins))
        )
    if fourier_bins is not None:
        if isinstance(fourier_bins, bool) or not isinstance(fourier_bins, (int, np.integer)) or fourier_bins < 1:
            raise PikflowError(f"fourier_bins must be a whole number >= 1 or None, got {fourier_bins!r}")
        if basis is not None and preset is None:
            raise PikflowError(
                "fourier_bins merges the Fourier orbits of a preset basis: leave basis= unset or a preset"
            )
    if smooth_base is not None:
        if isinstance(smooth_base, bool) or not isinstance(smooth_base, (int, np.integer)) or not 1 <= smooth_base <= 8:
            raise PikflowError(
                f"smooth_base must be a whole number from 1 to 8 (a degree) or None, got {smooth_base!r}"
            )
        if not (isinstance(base, str) and base in ("matched", "gaussian", "mixture")):
            raise PikflowError(
                "smooth_base smooths the matched base's propagator: use base='matched', 'gaussian' or 'mixture'"
            )
    return basis, preset


def _candidate_bases(
    path, base, basis, info, hmc_samples, hmc_chains, hmc_step, hmc_options, seed, select, progress, smooth=None
):
    """The candidate bases ``(kind, base, flow path)`` and the reference HMC configurations of the hole check.

    ``"free"``: the path's own Gaussian start. Otherwise the target's couplings and symmetry, an
    HMC run at the target (unless a base is given) and the matched Gaussian and, where the
    Binder cumulant allows, the zero-mode mixture (:func:`matched_base`).
    """
    reference = None
    if isinstance(base, str) and base == "free":
        bases = [("free", GaussianLatticeBase.from_path(path), path)]
        info["symmetry"] = str(path.symmetry())
    else:
        values = target_values(path)
        info["target"] = values
        symmetry = LatticePath(path.action, values).symmetry()
        info["symmetry"] = str(symmetry)
        if isinstance(base, str) and base == "mixture" and path.action.n > 1:
            raise PikflowError(
                f"base='mixture' is for single-component fields; this action has {path.action.n} components "
                "(the magnetisation of an O(n) model is a shell, not two peaks): use base='gaussian' or 'matched'"
            )
        if isinstance(base, str) and base == "mixture" and not symmetry.z2:
            raise PikflowError(
                "base='mixture' needs an action symmetric under phi -> -phi (the mixture's two peaks are "
                "mirror images), and this one is not: use base='gaussian' or 'matched'"
            )
        if isinstance(base, GaussianLatticeBase):
            kinds = [("given", base)]
        else:
            from ._observables import hmc, matched_base

            t0 = _time.perf_counter()
            fields, acc = hmc(
                LatticePath(path.action, values),
                jax.random.PRNGKey(seed),
                hmc_samples,
                n_chains=hmc_chains,
                step=hmc_step,
                progress=progress,
                **(hmc_options or {}),
                desc="HMC at the target (fits the matched base)",
            )
            info.update(hmc_seconds=_time.perf_counter() - t0, hmc_acceptance=acc)
            reference = np.asarray(fields).reshape(-1, *path.field_shape)
            kinds = []
            single = path.action.n == 1
            mixable = not isinstance(basis, LatticeBasis) and symmetry.z2 and single
            binder = _binder(reference) if single else None
            info["binder"] = binder
            peaks = base == "matched" and mixable  # mixable: one component, so the Binder cumulant is known
            skip_gaussian = peaks and binder > BINDER_BOUNDS[1]
            if (base in ("matched", "gaussian") or isinstance(basis, LatticeBasis)) and not skip_gaussian:
                kinds.append(("gaussian", matched_base(reference, symmetry=symmetry, smooth=smooth)))
            if base in ("matched", "mixture") and mixable and not (peaks and binder < BINDER_BOUNDS[0]):
                mix = matched_base(reference, mixture=True, symmetry=symmetry, smooth=smooth)
                if mix.m0 > 0 or base == "mixture":  # U > 0.6 (the Gaussian skipped) gives m0 > 0
                    kinds.append(("mixture", mix))
            reference = reference[:: max(1, len(reference) // min(HOLE_CHECK_SAMPLES, select))]
        bases = [
            (
                kind,
                g,
                LatticePath.matched(
                    path.action, values, np.asarray(g.precision), g.zero_mode_coupling, g.linear_coupling
                ),
            )
            for kind, g in kinds
        ]
    return bases, reference


def _binder(fields) -> float:
    r"""The Binder cumulant :math:`U = 1 - \langle m^4\rangle / (3\langle m^2\rangle^2)` of the magnetisation."""
    m = np.asarray(fields).reshape(len(fields), -1).mean(axis=1)
    m2 = float(np.mean(m**2))
    return float(1 - np.mean(m**4) / (3 * m2**2)) if m2 > 0 else 0.0


def _taming_widths(tames, basis) -> tuple:
    """The taming widths to try: ``tames`` (checked) or :data:`TAME_LADDER` with the default basis, else ``(None,)``."""
    if tames is not None:
        if basis is not None:
            raise PikflowError("tames= sets the taming widths of the default basis: leave basis= unset")
        try:
            tames = tuple(float(w) for w in tames)
        except (TypeError, ValueError):
            raise PikflowError(f"tames must be a list of positive taming widths, e.g. [5.0], got {tames!r}") from None
        if not tames or not all(np.isfinite(w) and w > 0 for w in tames):
            raise PikflowError(f"tames must be a list of positive taming widths, e.g. [5.0], got {tames!r}")
    tames = (TAME_LADDER if tames is None else tames) if basis is None else (None,)
    return tames


def _solve_candidates(
    bases, tames, basis, reference, steps, n_collocation, seed, select, solver, checkpoint, progress, presets
):
    """Solve every (base, width) candidate and score it (:func:`score_flow`); the attempts and the scored candidates.

    ``presets``: the keywords of :func:`default_basis` (``ladder``, ``fourier_bins``, ``smoothing``) when
    ``basis`` is None (default, ``"lean"`` or ``"separable"``).
    """
    attempts, cands = [], []
    n_cand = len(bases) * len(tames)
    # with a mixture candidate, a Gaussian one gets the mixture's log cosh(bM) term at b = 0 (a zero column,
    # coefficient 0): the same structure, so all candidates share one compilation of every function
    slot = any(g.m0 > 0 for _, g, _ in bases) and not isinstance(basis, LatticeBasis)
    for kind, gauss, flow_path in bases:
        for k, tame in enumerate(tames):
            label = _candidate_label(len(attempts) + 1, n_cand, kind, tame)
            if basis is None:
                fbasis = default_basis(flow_path, gauss, tame=tame, **presets)
            elif isinstance(basis, LatticeBasis):
                fbasis = basis
            else:
                fbasis = basis(flow_path, gauss)
            if slot and gauss.m0 == 0:
                fbasis = LatticeBasis([*fbasis.families, Magnetisation(flow_path.lattice, (), log_cosh=0.0)])
            record = {"base": kind, "tame": tame}
            if n_collocation is None:  # one number for every candidate (their shapes, so their compilations, agree)
                n_collocation = auto_collocation(fbasis.n)
            try:
                cand = solve_lattice(
                    flow_path,
                    fbasis,
                    base=gauss,
                    steps=steps,
                    n_collocation=n_collocation,
                    seed=seed,
                    solver=solver,
                    checkpoint=None if checkpoint is None else pathlib.Path(checkpoint) / f"candidate-{kind}-{tame}",
                    progress=progress,
                    desc=f"{label}: solving layers",
                )
            except SolveError as err:
                attempts.append({**record, "ok": False, "error": str(err)})
                continue
            if len(bases) * len(tames) == 1 and reference is None:
                cands.append((1.0, 0.0, record, cand))
                attempts.append({**record, "ok": True})
                continue
            # a candidate whose flow-side ESS is below the best clean score so far can never be kept: skip its
            # hole check (the selection below is unchanged)
            best_clean = max((c[0] for c in cands if c[1] <= 1e-3), default=None)
            key = jax.random.PRNGKey(seed + 7919 + k)
            scored = score_flow(
                cand, key, select, reference, beat=best_clean, progress=progress, desc=f"{label}: selection"
            )
            score = scored.pop("score")
            record.update(ok=True, **scored)
            attempts.append(record)
            cands.append((score, record["runaway"] / select, record, cand))
    return attempts, cands, n_collocation


def fit_lattice(
    path: LatticePath,
    *,
    base: str | GaussianLatticeBase = "matched",
    basis: str | LatticeBasis | Callable[[LatticePath, GaussianLatticeBase], LatticeBasis] | None = None,
    steps: int = 10,
    n_collocation: int | None = None,
    hmc_samples: int = 4000,
    hmc_chains: int = 8,
    hmc_step: float | str = "auto",
    hmc_options: dict | None = None,
    seed: int = 0,
    select: int = DEFAULT_SELECT,
    tames=None,
    solver=None,
    checkpoint=None,
    progress: bool = True,
    fourier_bins: int | str | None = "auto",
    smooth_base: int | str | None = "auto",
    schedule: float | str = "auto",
) -> LatticeFlow:
    r"""Build the base, the path and the basis, and solve eq. 34 at every RK4 stage.

    Parameters
    ----------
    path
        A :class:`LatticePath`; its value at ``t = 1`` is the target.
    base
        ``"matched"`` (default): a short HMC run at the target fits a Gaussian base to its
        two-point function (the user guide) and, where the magnetisation's Binder cumulant is
        positive, also the two-Gaussian mixture along the zero mode
        (:func:`matched_base` with ``mixture=True``); both are solved and the better kept, except where the
        Binder cumulant :math:`U` of the HMC configurations (``info["binder"]``) leaves no doubt
        (:data:`BINDER_BOUNDS`): above 0.6 (the broken phase) only the mixture, below 0.1 only the Gaussian.
        ``"gaussian"`` or ``"mixture"``: only that one. ``"free"``: the path's own Gaussian
        start. A :class:`GaussianLatticeBase`: the matched path with that base.
    basis
        The basis for :math:`\Omega_t`. Default (or ``"default"``): :func:`default_basis` for every
        taming width of :data:`TAME_LADDER`. ``"lean"``: the same with 4 smoothing filters instead of 9
        (:func:`preset_basis`; every width tried too); ``"separable"``: the lean families smoothed with the
        free lattice's :math:`\hat k^2` (cheaper on small lattices). A preset name of :data:`BASIS_PRESETS`
        (``"two-point"``, ``"magnetisation"``, ``"short"``): :func:`preset_basis`, cheaper transports for SMC.
        ``"separable+ridges"``, ``"lean+ridges"``, ``"default+ridges"``: those with the ridge terms
        (:class:`SmoothedRidges`), which near a critical point halve the residual of eq. 34 at the end of the
        path (about twice the ESS/N at 32x32, (-2, 2), six times at 64x64) for 1.6-1.7 times the cost of an evaluation.
        A callable ``basis(flow_path, base)`` builds it once the base
        (and so :math:`K_0`) is known; a fixed :class:`LatticeBasis` is used with the matched
        Gaussian only (it cannot carry a mixture's zero-mode term).
    steps, n_collocation
        RK4 steps and collocation configurations of :func:`solve_lattice`. 10 steps were measured as
        good as 25 (ESS/N 0.84 against 0.81 at 16x16, (-1, 1)); fewer steps raise the error of the
        continuous log-density against the applied map (:meth:`LatticeFlow.log_density_error`; at 16x16
        (-2, 2) rms 0.072 at 5 uniform steps, 0.011 at 3 steps on the default clock ``schedule``).
        ``n_collocation=None`` (default): :func:`auto_collocation` of the first candidate's basis size
        (500 up to 16x16, 1000 from 32x32); fewer than about 7 per basis function lose ESS (0.66
        against 0.84 with 250 at 16x16).
    hmc_samples, hmc_chains, hmc_step
        The reference HMC run that fits the matched base. ``hmc_step="auto"`` (default) adapts the
        leapfrog step during thermalisation (:func:`hmc`). A fixed step loses acceptance as the volume
        grows: the former default 0.15 gave an acceptance of 0.11 at 64x64 :math:`(-1, 1)`, chains that had not
        left their start, a base fitted to them and a flow with ESS/N 0.001 (0.80 with the adapted step).
    hmc_options
        Further keyword arguments of :func:`hmc` (``n_leapfrog``, ``n_therm``, ``jitter``).
    seed
        Seeds the HMC run, the collocation configurations and the selection samples.
    select
        Samples per candidate flow when choosing between candidates (bases, widths); default
        :data:`DEFAULT_SELECT` (500).
    tames
        The taming widths tried with the default basis (default :data:`TAME_LADDER`, width 5 alone).
        The defaults are the fast set-up (at most 30 s at 16x16 from a fresh process, compilation
        included), measured as good at the lattice goal points as the earlier, thorough one,
        ``n_collocation=1000, select=2000, tames=[10, 5]`` (ESS/N 0.996, 0.972 and 0.676 at 8x8 (-1, 1),
        16x16 (-1, 1) and 16x16 (-2, 2), against 0.996, 0.974 and 0.685; the same candidate kept),
        which costs 2.5 times as long; pass those values to get it.
    solver
        How each layer is solved (see :func:`solve_lattice`); default the direct SVD solve.
    checkpoint
        A directory for per-layer checkpoints (see :func:`solve_lattice`): each candidate
        solve keeps its own in ``candidate-<base>-<width>``, so a killed fit resumes bit for bit.
    progress
        Progress bars.
    fourier_bins
        Merge the Fourier two-point term's momentum orbits into this many groups in :math:`\hat k^2`
        (:class:`FourierTwoPoint` ``bins``, geometric edges: ``spacing="log"``; the default basis or a
        preset): for lattices whose orbits outnumber what the collocation set can determine (2145 at
        128x128). ``None``: one per orbit.
        ``"auto"`` (default): :data:`AUTO_FOURIER_BINS` groups where a single-component action has more than
        :data:`AUTO_BIN_ABOVE` non-zero orbits (from 64x64 in 2-D, 24^3 in 3-D) and the basis is the default or
        a preset, else one per orbit (every lattice up to 32x32: unchanged). At 64x64 with 64 groups on the
        smooth base: ESS/N 0.999 near the critical region (0.992 per orbit) and 0.69 at (-1, 1) (0.61).
    smooth_base
        Fit the matched base's :math:`1/G(k)` at :math:`k \ne 0` by a polynomial of this degree in the
        :math:`\hat k_\mu^2` (:func:`smooth_propagator`) instead of estimating it per orbit: merged orbits
        cannot carry each orbit's statistical error to the target (at 32x32 near the critical region,
        32 groups gave ESS/N 0.48 on the per-orbit base and 0.995 on a degree-3 smooth one).
        ``"auto"`` (default): degree :data:`AUTO_SMOOTH_DEGREE` where the orbits are merged, the base is
        matched and the action symmetric under every axis reflection; else ``None`` (per orbit).
    schedule
        Where the RK4 steps sit: the flow's path is reparametrised by :math:`\tau = t^p`
        (:meth:`LatticePath.reparametrised`), :math:`\hat S_t = (1 - t^p)\hat S_0 + t^p\hat S_1` for a
        matched base, so that with :math:`p > 1` the start, where the flow moves fastest, gets more of them.
        A number :math:`1 \le p \le 4`; ``"uniform"``: :math:`p = 1`; ``"auto"`` (default):
        :data:`AUTO_TIME_POWER` for a matched base, 1 for ``base="free"`` (whose path's times are its own).
        ``flow.info["time_power"]`` holds :math:`p`; ``flow.path`` is the reparametrised path.

    Notes
    -----
    Every candidate (base, width) is solved; ``select`` fresh samples give its ESS/N and
    runaways, and with a matched base :meth:`LatticeFlow.target_ess` of up to
    :data:`HOLE_CHECK_SAMPLES` (at most ``select``) reference HMC configurations gives the ESS/N seen from the
    target's side, which drops where :math:`q` has a hole (a region of the target the flow
    does not reach: biased estimates that neither ESS nor IMH acceptance reveal). The score is
    the smaller of the two; the best-scoring candidate with at most 0.1% runaways is kept
    (a runaway leaves a hole too), else the best score. ``flow.info["attempts"]`` lists them,
    each with the error of its ESS/N (:func:`~pikflow.diagnostics.ess_fraction_error`).

    All candidates share one compilation of every function: the taming widths and the base's
    numbers are arguments of the compiled code, and when a mixture candidate is solved, a Gaussian
    one carries the mixture's :math:`\log\cosh(bM)` term at :math:`b = 0`, an identically zero
    column (coefficient 0; it shows as ``log cosh(0 M)`` in the flow's basis).

    Returns
    -------
    LatticeFlow
        With ``flow.info``: ``base`` (the kind: ``gaussian``, ``mixture``, ``free`` or
        ``given``), ``m0``, ``target`` (the couplings at t = 1), ``hmc_seconds`` and
        ``hmc_acceptance`` for a matched base, ``tame``, ``attempts``, ``ess_select``,
        ``target_ess`` and ``solve_seconds``.
    """
    _time_power(schedule, base)  # checked before the HMC run
    fourier_bins, smooth_base = _resolve_binning(path, base, basis, fourier_bins, smooth_base)
    basis, preset = _check_fit_arguments(path, base, select, basis, fourier_bins, smooth_base)
    check_bounded_below(path, None if isinstance(base, str) and base == "free" else [1.0])
    info: dict = {"basis_preset": preset if preset is not None else ("default" if basis is None else None)}
    info.update(fourier_bins=fourier_bins, smooth_base=smooth_base)
    bases, reference = _candidate_bases(
        path, base, basis, info, hmc_samples, hmc_chains, hmc_step, hmc_options, seed, select, progress, smooth_base
    )
    power = _time_power(schedule, base)
    info["time_power"] = power
    bases = [(kind, g, flow_path.reparametrised(power)) for kind, g, flow_path in bases]
    tames = _taming_widths(tames, basis)
    t0 = _time.perf_counter()
    presets = {
        "ladder": POWER_LADDERS.get(preset, MATCHED_SCALE_LADDER),
        "fourier_bins": fourier_bins,
        "smoothing": PRESET_SMOOTHING.get(preset, "precision"),
        "ridges": preset in RIDGE_PRESETS,
    }
    attempts, cands, n_collocation = _solve_candidates(
        bases, tames, basis, reference, steps, n_collocation, seed, select, solver, checkpoint, progress, presets
    )
    if not cands:
        raise SolveError(
            f"every candidate flow ran away ({[(a['base'], a['tame']) for a in attempts]}): {attempts[-1]['error']}; "
            "pass steps=, n_collocation= or a basis of your own"
        )
    clean = [c for c in cands if c[1] <= 1e-3]
    _, _, record, flow = max(clean or cands, key=lambda c: c[0])
    info.update(
        base=record["base"],
        m0=float(flow.base.m0),
        tame=record["tame"],
        attempts=attempts,
        n_collocation=n_collocation,
        ess_select=record.get("ess"),
        target_ess=record.get("target_ess"),
        solve_seconds=_time.perf_counter() - t0,
    )
    flow.info = info
    flow.reference = reference  # the target configurations of the hole check (not saved)
    return flow
