r"""The basis presets of :func:`~pikflow.lattice.fit_lattice`: the default basis, its cheaper presets, the ladders.

The default basis (:func:`default_basis`) is the Fourier two-point term plus tamed
powers :math:`f_4, f_6` of fields smoothed with the base's own :math:`K_0` over a ladder
of scales (:class:`SmoothedPowers`; the Ornstein-Uhlenbeck semigroup of the base is what
inverts eq. 34 on quartic terms) and tamed cross-scale products
(:class:`SmoothedProducts`) over a shorter ladder. :func:`preset_basis` names cheaper
transports (for SMC) and the ``"lean"`` ladder.
"""

from __future__ import annotations

import numpy as np

from .._errors import PikflowError
from ..action import LatticePath
from ..flow import GaussianLatticeBase
from ._basis import LatticeBasis, Magnetisation, SmoothedProducts, kept_scales, lattice_basis
from ._basis_ridge import SmoothedRidges

#: Smoothing scales of the default powers, in units of :math:`1/(K_0^{\max}-K_0^{\min})` (:func:`default_scales`).
MATCHED_SCALE_LADDER = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
#: Scales of the default cross-scale products (:class:`SmoothedProducts`), same units.
PRODUCT_SCALE_LADDER = (0.5, 2.0, 8.0, 32.0)
#: Default taming width of the smoothed powers, in standard deviations of :math:`\psi_s` under the base.
DEFAULT_TAME = 10.0
#: The taming widths :func:`fit_lattice` tries with the default basis (the best ESS/N is kept). Width 5 was
#: kept at every goal point when (10, 5) were both tried, so (10, 5), the earlier default, is now opt-in
#: (``tames=[10, 5]``): one candidate per base kind, half the set-up.
TAME_LADDER = (5.0,)
#: Samples per candidate flow in :func:`fit_lattice`'s selection (and at most as many target configurations
#: in its hole check). 2000 (the earlier default) chose the same candidates at the goal points.
DEFAULT_SELECT = 500
#: Collocation configurations per layer of :func:`fit_lattice` when none are given: this many per basis
#: function (at least 500, at most 1000, see :func:`auto_collocation`).
COLLOCATION_PER_TERM = 7
#: Scales of the ``"short"`` preset's smoothed powers (:func:`preset_basis`), same units as the default ladder.
SHORT_SCALE_LADDER = (1.0, 4.0, 16.0)
#: Smoothing scales of the ``"lean"`` preset's powers (and products): the product ladder, so 4 filters, not 9.
LEAN_SCALE_LADDER = PRODUCT_SCALE_LADDER
#: The power ladder of each preset built by :func:`default_basis` (its taming widths tried by :func:`fit_lattice`).
POWER_LADDERS = {"separable": LEAN_SCALE_LADDER, "lean": LEAN_SCALE_LADDER, "default": MATCHED_SCALE_LADDER}
#: The presets with ridge terms (:class:`SmoothedRidges` on the products' scales): ``"<preset>+ridges"``.
RIDGE_PRESETS = tuple(f"{name}+ridges" for name in POWER_LADDERS)
POWER_LADDERS.update({f"{name}+ridges": ladder for name, ladder in list(POWER_LADDERS.items())})
#: The smoothing of each preset built by :func:`default_basis` that does not smooth with the base's :math:`K_0`.
PRESET_SMOOTHING = {"separable": "lattice", "separable+ridges": "lattice"}
#: Basis presets of :func:`fit_lattice` (``basis="two-point"`` ...), cheapest first (:func:`preset_basis`), then
#: the three with ridge terms.
BASIS_PRESETS = ("two-point", "magnetisation", "short", "separable", "lean", "default", *RIDGE_PRESETS)


def auto_collocation(n_terms: int) -> int:
    r"""Collocation configurations per layer for a basis of ``n_terms`` functions: :data:`COLLOCATION_PER_TERM`
    per function, at least 500 and at most 1000.

    Each configuration is one row of eq. 34, so the rows must outnumber the coefficients by a margin:
    at 16x16 the default basis (69 functions) lost ESS/N with 250 configurations (3.6 per function:
    0.66 against 0.84) and kept it with 500 (7.2 per function). 500 suffices up to 16x16; from 32x32
    (177 functions) on it gives 1000, the earlier fixed default.
    """
    return int(min(1000, max(500, COLLOCATION_PER_TERM * int(n_terms))))


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


def default_basis(
    path: LatticePath,
    base: GaussianLatticeBase,
    *,
    tame: float | None = DEFAULT_TAME,
    ladder: tuple[float, ...] = MATCHED_SCALE_LADDER,
    fourier_bins: int | None = None,
    smoothing: str = "precision",
    ridges: bool = False,
) -> LatticeBasis:
    r"""The default basis for a flow from ``base`` along ``path`` (see the module docstring).

    ``ladder``: the smoothing scales of the powers (:func:`default_scales` units); the products
    stay on :data:`PRODUCT_SCALE_LADDER`. With ``ladder=LEAN_SCALE_LADDER`` (the ``"lean"`` preset)
    powers and products share 4 filters instead of 9: fewer Fourier transforms per evaluation.

    The Fourier orbits follow the path's detected :meth:`~LatticePath.symmetry` (an anisotropic
    action keeps the two axes apart). Without :math:`Z_2` symmetry the odd terms join: the
    magnetisation :math:`M` (a uniform shift of the field, for :math:`\langle\phi\rangle \ne 0`) and
    the smoothed odd powers 3 and 5. For a mixture base (``base.m0 > 0``) it also holds
    :math:`\log\cosh(bM)` (:class:`Magnetisation`). ``fourier_bins``: the Fourier orbits merged into that
    many groups in :math:`\hat k^2` (:func:`lattice_basis`; for large lattices, with a smooth base).
    ``smoothing``: ``"lattice"`` smooths powers and products with the free lattice's :math:`\hat k^2`
    (separable across axes; :class:`SmoothedPowers`) instead of the base's :math:`K_0`. ``ridges``: add
    :class:`SmoothedRidges` (tamed squares of sums and differences of the products' smoothed fields and the
    magnetisation; one component only) on the products' scales, so no filter of their own.
    """
    K0 = np.asarray(base.precision)
    sym = path.symmetry()
    if ridges and path.action.n > 1:
        raise PikflowError(
            f"ridge terms are for one-component fields, this action has {path.action.n}: use a preset without '+ridges'"
        )
    if path.action.n > 1:
        # O(n) invariants: the Fourier two-point term summed over components and even powers of the smoothed
        # local invariant |psi_s| (lattice_basis with components > 1)
        return lattice_basis(
            path.lattice,
            magnetisation=(),
            scales=default_scales(K0, ladder),
            powers=(4, 6),
            precision=K0,
            tame=tame,
            local_range=None,
            symmetry=sym,
            fourier_bins=fourier_bins,
            smoothing=smoothing,
        )
    basis = lattice_basis(
        path.lattice,
        magnetisation=() if sym.z2 else (1,),
        scales=default_scales(K0, ladder),
        powers=(4, 6) if sym.z2 else (3, 4, 5, 6),
        precision=K0,
        tame=tame,
        local_range=None,
        symmetry=sym,
        fourier_bins=fourier_bins,
        smoothing=smoothing,
    )
    fams = list(basis.families)
    pairs = kept_scales(path.lattice, K0, default_scales(K0, PRODUCT_SCALE_LADDER))
    if len(pairs) >= 2:
        fams.append(SmoothedProducts(path.lattice, pairs, precision=K0, tame=tame, smoothing=smoothing))
    if ridges and pairs:
        fams.append(SmoothedRidges(path.lattice, pairs, precision=K0, smoothing=smoothing))
    if base.m0 > 0:
        # the mixture base's action carries -log cosh(bM): give the zero mode the same function
        fams.append(Magnetisation(path.lattice, (), log_cosh=base.zero_mode_coupling))
    return LatticeBasis(fams)


def preset_basis(
    name: str,
    path: LatticePath,
    base: GaussianLatticeBase,
    *,
    tame: float | None = DEFAULT_TAME,
    fourier_bins: int | None = None,
) -> LatticeBasis:
    r"""A basis of graded cost for a flow from ``base`` along ``path``, by name (:data:`BASIS_PRESETS`).

    * ``"two-point"``: the Fourier two-point term alone, :math:`\Omega_t = \frac12\phi^TA_t\phi` (eq. 32 with
      a linear velocity diagonal in momentum space: one forward and one inverse FFT per evaluation);
      exact for a free field.
    * ``"magnetisation"``: plus :math:`V m^4, V m^6` (:class:`Magnetisation`; without :math:`Z_2` symmetry
      also :math:`V m, V m^3, V m^5`): a nonlinear velocity of the zero mode, whose double well near
      criticality is what plain annealing resolves worst. Same FFT cost.
    * ``"short"``: plus the smoothed powers :math:`f_4, f_6` (:class:`SmoothedPowers`) on the short ladder
      :data:`SHORT_SCALE_LADDER` (taming width ``tame``).
    * ``"separable"``: the ``"lean"`` families with filters of the free lattice, :math:`e^{-s\hat k^2}`
      (``smoothing="lattice"``), which are products over the axes: on lattices of at most
      :data:`~pikflow.lattice._separable.SEPARABLE_MAX_SIDE` sites a side an evaluation smooths with one small
      matrix per axis and scale instead of Fourier transforms (the Fourier two-point term keeps its pair).
    * ``"lean"``: :func:`default_basis` with the powers on the products' four scales
      (:data:`LEAN_SCALE_LADDER`): 4 smoothing filters instead of 9, so about half the transforms
      of an evaluation; the taming widths of :data:`TAME_LADDER` are tried as for the default.
    * ``"default"``: :func:`default_basis` (nine scales and the cross-scale products).
    * ``"separable+ridges"``, ``"lean+ridges"``, ``"default+ridges"``: those with the ridge terms
      (:class:`SmoothedRidges`, ``ridges=True`` of :func:`default_basis`): 20 more functions on the products'
      scales, no more transforms; near a critical point they halve the residual of eq. 34 at the end of the
      path (the lattice guide, "Ridge terms").

    With a mixture base (``base.m0 > 0``) every preset also holds its :math:`\log\cosh(bM)` term.
    With several components the magnetisation terms are even powers of :math:`|m|`. ``fourier_bins``: as
    in :func:`default_basis`.
    """
    if name not in BASIS_PRESETS:
        raise PikflowError(f"basis preset must be one of {list(BASIS_PRESETS)}, got {name!r}")
    if name in POWER_LADDERS:
        smoothing = PRESET_SMOOTHING.get(name, "precision")
        return default_basis(
            path,
            base,
            tame=tame,
            ladder=POWER_LADDERS[name],
            fourier_bins=fourier_bins,
            smoothing=smoothing,
            ridges=name in RIDGE_PRESETS,
        )
    K0 = np.asarray(base.precision)
    sym = path.symmetry()
    single = path.action.n == 1
    mag = () if name == "two-point" else ((4, 6) if sym.z2 or not single else (1, 3, 4, 5, 6))
    scales = default_scales(K0, SHORT_SCALE_LADDER) if name == "short" else ()
    basis = lattice_basis(
        path.lattice,
        magnetisation=mag,
        scales=scales,
        powers=((4, 6) if sym.z2 or not single else (3, 4, 5, 6)) if scales else (),
        precision=K0,
        tame=tame,
        local_range=None,
        symmetry=sym,
        fourier_bins=fourier_bins,
    )
    if base.m0 > 0:
        basis = LatticeBasis([*basis.families, Magnetisation(path.lattice, (), log_cosh=base.zero_mode_coupling)])
    return basis
