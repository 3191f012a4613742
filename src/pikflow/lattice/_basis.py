r"""Translation-invariant bases for the potential :math:`\Omega_t` of the gradient form (paper eqs. 32-34).

The kernel is :math:`v_t = -\partial\Omega_t` with :math:`\Omega_t = \sum_j a_j T_j(\phi)`, and
eq. 34 with the unknown constant :math:`c_t` (the user guide) reads

.. math::  \sum_j a_j\, \bigl[\Delta T_j - \partial\hat S_t\cdot\partial T_j\bigr](\phi) - c_t
           = -\frac{d\hat S_t}{dt}(\phi).

Every family below gives, per configuration, the values :math:`T_j`, the operator
columns :math:`L T_j = \Delta T_j - \partial\hat S_t\cdot\partial T_j`, and for a
coefficient vector the gradient :math:`\sum_j a_j\partial T_j` and Laplacian
:math:`\sum_j a_j \Delta T_j` (analytic: stencils derived in SymPy, or spectral by FFT).
The number of coefficients does not grow with the volume, except for the Fourier
two-point term (one per momentum orbit).

Families
--------
:class:`FourierTwoPoint`
    :math:`T_o = \frac1{2V}\sum_{k\in o}|\tilde\phi_k|^2` per momentum orbit :math:`o`;
    exact for free fields (:math:`\Omega = \tfrac12\phi^T A\phi`).
:class:`Magnetisation`
    :math:`T_p = V\, m^p`, :math:`m = M/V`, for even powers ``p``.
:class:`SmoothedPowers`
    :math:`T_{s,p} = \sum_n \psi_s(n)^p`, :math:`\psi_s = e^{-s\hat k^2}\phi` (heat-kernel
    smoothing by FFT) over a ladder of scales (the user guide).
:class:`LocalHermite`
    :math:`\sum_n \prod_i He_{k_i}(\phi_{n+o_i})`, products of probabilists' Hermite
    polynomials (the Ornstein-Uhlenbeck eigenfunctions, paper sec. IV B 2) of sites
    within range ``R``, symmetrised under the point group and (optionally) Z2.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from .._errors import BasisError
from ..action._geometry import Lattice
from ..bases import AbstractPotentialBasis, register_basis
from ..flow import register_default_basis
from ._basis_local import LocalHermite, _patterns
from ._basis_ridge import SmoothedRidges
from ._basis_smoothed import DEFAULT_SCALES, SmoothedPowers, SmoothedProducts, _tamed_square
from ._basis_spectral import (
    FourierTwoPoint,
    LatticeFamily,
    Magnetisation,
    _rpow,
    site_sum,
    tamed_power,
    tamed_power_derivatives,
)

__all__ = [
    "DEFAULT_SCALES",
    "MAX_LOCAL_DEGREE",
    "FourierTwoPoint",
    "LatticeBasis",
    "LatticeFamily",
    "LocalHermite",
    "Magnetisation",
    "SmoothedPowers",
    "SmoothedProducts",
    "SmoothedRidges",
    "_patterns",
    "_rpow",
    "_tamed_square",
    "kept_scales",
    "lattice_basis",
    "site_sum",
    "tamed_power",
    "tamed_power_derivatives",
]


class LatticeBasis(AbstractPotentialBasis):
    r"""A basis for :math:`\Omega_t`: the concatenation of families (see :func:`lattice_basis`).

    A :class:`~pikflow.bases.AbstractPotentialBasis` itself: ``spec()`` lists the families' specs,
    and ``pikflow.bases.basis_from_spec(spec, lattice=...)`` rebuilds it.
    """

    kind = "lattice"

    def __init__(self, families: Sequence[LatticeFamily]):
        self.families = list(families)
        if not self.families:
            raise BasisError("a lattice basis needs at least one family")
        lat = {f.lattice for f in self.families}
        if len(lat) != 1:
            raise BasisError("all families of a lattice basis must live on the same lattice")
        self.lattice = self.families[0].lattice
        self.sizes = [f.n for f in self.families]
        self.n = sum(self.sizes)
        self.names = [name for f in self.families for name in f.names]
        self._splits = np.cumsum(self.sizes)[:-1].tolist()

    def spec(self) -> dict:
        return {"kind": self.kind, "families": [f.spec() for f in self.families]}

    def _parts(self, a):
        return jnp.split(a, self._splits)

    def values(self, field):
        """:math:`T_j(\\phi)` of one configuration, shape ``(n,)``."""
        return jnp.concatenate([f.values(field) for f in self.families])

    def laplacians(self, field):
        """:math:`\\Delta T_j(\\phi)`, shape ``(n,)``."""
        return jnp.concatenate([jnp.broadcast_to(f.laplacians(field), (f.n,)) for f in self.families])

    def columns(self, field, dS):
        r"""Rows of eq. 34: :math:`\Delta T_j - \partial\hat S\cdot\partial T_j`, shape ``(n,)``."""
        return jnp.concatenate([f.columns(field, dS) for f in self.families])

    def gradient(self, a, field):
        r""":math:`\partial\Omega = \sum_j a_j\partial T_j` (the velocity is its negative, eq. 32)."""
        return sum(f.gradient(p, field) for f, p in zip(self.families, self._parts(a), strict=True))

    def laplacian(self, a, field):
        r""":math:`\Delta\Omega = \sum_j a_j\Delta T_j = -\partial\cdot v`."""
        return sum(f.laplacian(p, field) for f, p in zip(self.families, self._parts(a), strict=True))

    def gradient_and_laplacian(self, a, field):
        r""":math:`(\partial\Omega, \Delta\Omega)` in one evaluation, Fourier transforms shared (:mod:`._fused`).

        The same numbers as :meth:`gradient` and :meth:`laplacian` to rounding, at a fraction of the cost.
        """
        return self.fused(a, field)

    def fused_columns(self, field, dS):
        """:meth:`columns` with the Fourier transforms shared (:mod:`._fused`): the same numbers to rounding."""
        return self.fused.columns(field, dS)

    def enrichments(self, path, base) -> list[LatticeFamily]:
        """The default enrichment ladder (:func:`~pikflow.lattice.default_enrichments`): tamed families only."""
        from ._enrichments import basis_enrichments

        return basis_enrichments(self, path, base)

    def extended(self, term: LatticeFamily) -> LatticeBasis:
        """This basis with the family ``term`` appended (the enrichment's candidate)."""
        return LatticeBasis([*self.families, term])

    @property
    def components(self) -> int:
        """The number of field components per site (1, or ``n`` of the multi-component families)."""
        return max(getattr(f, "components", 1) for f in self.families)

    @property
    def fused(self):
        """The :class:`~pikflow.lattice._fused.FusedEvaluator` of this basis (built on first use).

        With ``n > 1`` components: the default :class:`~pikflow.bases.PotentialEvaluator` (family by family).
        """
        if self.components > 1:
            return super().fused
        if getattr(self, "_fused", None) is None:
            from ._fused import FusedEvaluator

            self._fused = FusedEvaluator(self)
        return self._fused

    def __repr__(self) -> str:
        return "LatticeBasis(" + ", ".join(f"{type(f).__name__}[{f.n}]" for f in self.families) + ")"


def kept_scales(lattice: Lattice, precision, scales: Sequence[float]) -> list[float]:
    r"""The scales whose smoothing :math:`e^{-s(K-K_{\min})}` keeps some non-zero momentum above 5%.

    Larger scales make :math:`\psi_s` the magnetisation: collinear with the global terms and
    with each other (huge cancelling coefficients in the least squares).
    """
    K = lattice.khat2() if precision is None else np.asarray(precision, dtype=float)
    if K.ndim > lattice.d:  # n components: their common smoothing (SmoothedPowers)
        K = 1.0 / np.mean(1.0 / K, axis=0)
    Kr = K - K.min()
    kmin = Kr[Kr > 1e-12 * max(Kr.max(), 1e-300)].min() if np.any(Kr > 0) else 1.0
    return [float(s) for s in scales if np.exp(-s * kmin) >= 0.05]


#: The highest total degree of the local Hermite products (:func:`lattice_basis`'s ``local_degree``).
MAX_LOCAL_DEGREE = 12


def lattice_basis(
    lattice: Lattice,
    *,
    fourier: bool = True,
    magnetisation: Sequence[int] = (4, 6),
    scales: Sequence[float] = DEFAULT_SCALES,
    powers: Sequence[int] = (4, 6),
    precision=None,
    tame: float | None = None,
    local_range: int | None = 1,
    local_degree: int = 4,
    max_sites: int = 2,
    z2: bool | None = None,
    symmetry=None,
    components: int | None = None,
    fourier_bins: int | None = None,
    fourier_spacing: str = "log",
    smoothing: str = "precision",
) -> LatticeBasis:
    r"""A basis for :math:`\Omega_t` on a lattice (paper eqs. 32-34; the user guide).

    Parameters
    ----------
    lattice
        The lattice.
    fourier
        Include the Fourier two-point term (one coefficient per momentum orbit).
    magnetisation
        Powers of the global magnetisation terms :math:`V m^p` (empty: none).
    scales, powers
        The ladder of smoothing scales and the powers of :math:`\sum_n\psi_s^p` (empty: none).
        Scales that smooth every non-zero momentum below 5% are dropped (then
        :math:`\psi_s` is the magnetisation, collinear with the global terms).
    precision, tame
        The smoothing's :math:`K(k)` (default :math:`\hat k^2`; give the base's precision
        for a matched base) and the taming width in units of :math:`\sigma_s`, see
        :class:`SmoothedPowers`.
    local_range, local_degree, max_sites
        The local Hermite family (``None``: none). With the Fourier term present, local
        quadratic terms are left out (they are in its span).
    z2
        Keep only terms even under :math:`\phi\to-\phi` (for Z2-symmetric paths); default:
        ``symmetry.z2``, or ``True`` without a ``symmetry``.
    symmetry
        The action's :class:`Symmetry` (``path.symmetry()``): the Fourier orbits and the local
        terms are symmetrised only under its point group. ``None``: the lattice's whole point
        group (an isotropic action).
    components
        Field components per site (default ``symmetry.components``, or 1). With ``n > 1`` the
        families are built from :math:`O(n)` invariants (:class:`FourierTwoPoint` summed over
        components that share :math:`G(k)`, even powers of :math:`|m|` and of :math:`|\psi_s|`);
        the local Hermite family is single-component only.
    fourier_bins, fourier_spacing
        Merge the Fourier orbits into this many groups in :math:`\hat k^2` (``FourierTwoPoint(bins=...,
        spacing=...)``, one component; default spacing ``"log"``, geometric edges: at 64x64 near the
        critical region 32 groups gave ESS/N 0.996 with it and 0.978 with equal counts); ``None``: one
        coefficient per orbit.
    smoothing
        ``"precision"`` (default): the powers smooth with ``precision``; ``"lattice"``: with the free
        lattice :math:`\hat k^2`, separable across axes (:class:`SmoothedPowers`), ``precision`` still
        setting the taming widths.
    """
    magnetisation, powers = _whole_numbers("magnetisation", magnetisation or ()), _whole_numbers("powers", powers or ())
    scales = _numbers("scales", scales or ())
    if tame is not None:
        _numbers("tame", [tame], positive=True, what="a positive number (a width in sigma_s) or None", value=tame)
    for name, value, least in (("local_degree", local_degree, 1), ("max_sites", max_sites, 1)):
        _whole_numbers(name, [value], least=least, value=value, what=f"a whole number >= {least}")
    if local_degree > MAX_LOCAL_DEGREE:
        raise BasisError(
            f"local_degree must be at most {MAX_LOCAL_DEGREE}, got {local_degree!r}: Hermite products of higher degree "
            "overflow float64 on typical fields and their stencils take long to derive (4, the default, or 6 suffice)"
        )
    if local_range is not None:
        _whole_numbers("local_range", [local_range], least=0, value=local_range, what="a whole number >= 0 or None")
    if components is None:
        components = 1 if symmetry is None else symmetry.components
    if components > 1:
        if fourier_bins is not None:
            raise BasisError("fourier_bins is for one field component: set fourier_bins=None")
        if local_range is not None:
            raise BasisError("the local Hermite family is for single-component fields: set local_range=None")
        fams_c: list[LatticeFamily] = []
        if fourier:
            fams_c.append(FourierTwoPoint(lattice, symmetry, components=components))
        if magnetisation:
            fams_c.append(Magnetisation(lattice, magnetisation, components=components))
        kept = kept_scales(lattice, precision, scales) if scales and powers else []
        if kept:
            fams_c.append(
                SmoothedPowers(
                    lattice, kept, powers, precision=precision, tame=tame, components=components, smoothing=smoothing
                )
            )
        return LatticeBasis(fams_c)
    if z2 is None:
        z2 = True if symmetry is None else symmetry.z2
    fams: list[LatticeFamily] = []
    if fourier:
        fams.append(FourierTwoPoint(lattice, symmetry, bins=fourier_bins, spacing=fourier_spacing))
    if magnetisation:
        fams.append(Magnetisation(lattice, magnetisation))
    if scales and powers:
        # A scale that smooths every non-zero momentum below 5% makes psi_s ~ m: nearly collinear with the
        # magnetisation terms (and with other such scales), which gives huge cancelling coefficients.
        kept = kept_scales(lattice, precision, scales)
        if kept:
            fams.append(SmoothedPowers(lattice, kept, powers, precision=precision, tame=tame, smoothing=smoothing))
    if local_range is not None:
        fams.append(
            LocalHermite(
                lattice,
                local_range,
                local_degree,
                max_sites=max_sites,
                z2=z2,
                min_degree=3 if fourier else 1,
                symmetry=symmetry,
            )
        )
    return LatticeBasis(fams)


def _numbers(
    name: str, items, *, least: float = 0.0, positive: bool = False, what: str | None = None, value=None
) -> tuple:
    """``items`` as a tuple of numbers >= ``least`` (> 0 if ``positive``), or a BasisError saying what to give."""
    value = items if value is None else value
    try:
        out = tuple(items)
        ok = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in out)
    except TypeError:
        ok = False
    if not ok or any(not np.isfinite(v) or v < least or (positive and v <= 0) for v in out):
        what = what or f"a list of numbers >= {least:g}"
        raise BasisError(f"lattice_basis: {name} must be {what}, got {value!r}")
    return out


def _whole_numbers(name: str, items, *, least: int = 1, value=None, what: str | None = None) -> tuple:
    """``items`` as a tuple of integers >= ``least``, or a :class:`BasisError` that says what to give."""
    value = items if value is None else value
    what = what or f"a list of whole numbers >= {least}"
    out = _numbers(name, items, least=least, value=value, what=what)
    if any(int(v) != v for v in out):
        raise BasisError(f"lattice_basis: {name} must be {what}, got {value!r}")
    return tuple(int(v) for v in out)


def _precision(spec):
    return None if spec.get("precision") is None else np.asarray(spec["precision"], dtype=float)


def _symmetry(spec, lattice):
    from ..action._symmetry import Symmetry

    return Symmetry.from_spec(spec["symmetry"], lattice) if "symmetry" in spec else None


#: kind -> builder from a family's spec (registered with pikflow.bases: ``basis_from_spec(spec, lattice=...)``)
_FAMILY_FACTORIES = {
    "fourier": lambda s, lat: FourierTwoPoint(
        lat,
        _symmetry(s, lat),
        components=int(s.get("components", 1)),
        shared=s.get("shared"),
        bins=s.get("bins"),
        spacing=s.get("spacing", "count"),
    ),
    "magnetisation": lambda s, lat: Magnetisation(
        lat, s["powers"], width=s.get("width"), log_cosh=s.get("log_cosh"), components=int(s.get("components", 1))
    ),
    "smoothed_powers": lambda s, lat: SmoothedPowers(
        lat,
        s["scales"],
        s["powers"],
        precision=_precision(s),
        tame=s["tame"],
        components=int(s.get("components", 1)),
        smoothing=s.get("smoothing", "precision"),
    ),
    "smoothed_products": lambda s, lat: SmoothedProducts(
        lat, s["scales"], precision=_precision(s), tame=s["tame"], smoothing=s.get("smoothing", "precision")
    ),
    "smoothed_ridges": lambda s, lat: SmoothedRidges(
        lat,
        s["scales"],
        precision=_precision(s),
        width=s["width"],
        zero_mode=bool(s["zero_mode"]),
        smoothing=s.get("smoothing", "precision"),
        directions=s["directions"],
    ),
    "local_hermite": lambda s, lat: LocalHermite(
        lat,
        int(s["range"]),
        int(s["degree"]),
        max_sites=int(s["max_sites"]),
        z2=bool(s["z2"]),
        min_degree=int(s["min_degree"]),
        symmetry=_symmetry(s, lat),
    ),
}


def family_from_spec(spec, lattice: Lattice) -> LatticeFamily:
    """A lattice family from its :meth:`~LatticeFamily.spec` on ``lattice``."""
    kind = spec.get("kind")
    if kind not in _FAMILY_FACTORIES:
        raise BasisError(f"unknown lattice basis family kind {kind!r}: choose one of {sorted(_FAMILY_FACTORIES)}")
    try:
        return _FAMILY_FACTORIES[kind](spec, lattice)
    except (KeyError, TypeError) as err:
        raise BasisError(f"bad spec for the {kind} family: {err!r}") from None


for _kind in _FAMILY_FACTORIES:
    register_basis(_kind, family_from_spec)
register_basis("lattice", lambda s, lat: LatticeBasis([family_from_spec(f, lat) for f in s["families"]]))


def path_basis(path, **options) -> LatticeBasis:
    """The default basis of :func:`~pikflow.flow.solve_lattice`: :func:`lattice_basis` under the path's symmetry.

    ``options`` are further keywords of :func:`lattice_basis` (the scans' ``flow_basis``).
    """
    return lattice_basis(path.lattice, symmetry=path.symmetry(), **options)


register_default_basis(path_basis)
