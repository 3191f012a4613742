r"""Conversions between pikflow's :math:`(m^2, \lambda)` (paper eq. 31) and two literature conventions.

pikflow (eq. 31):
:math:`\hat S = \sum_n[\tfrac12(m^2+2d)\phi_n^2 - \sum_\mu\phi_n\phi_{n+\mu} + \tfrac\lambda4\phi_n^4]`.

Normalising-flow papers:
:math:`S = \sum_n[\sum_\mu(\chi_{n+\mu}-\chi_n)^2 + m^2\chi_n^2 + \lambda\chi_n^4]`, the same
theory with the same :math:`(m^2, \lambda)` after :math:`\phi = \sqrt2\,\chi`.

Hopping form:
:math:`S = \sum_n[-2\kappa\sum_\mu\varphi_n\varphi_{n+\mu}
+ (1-2\lambda_\kappa)\varphi_n^2 + \lambda_\kappa\varphi_n^4]`
with :math:`\phi = \sqrt{2\kappa}\,\varphi`, :math:`m^2 = (1-2\lambda_\kappa)/\kappa - 2d`,
:math:`\lambda = \lambda_\kappa/\kappa^2` (the user guide).
"""

from __future__ import annotations

import math

from .._errors import ActionError

#: The pikflow density of eq. 31.
PHI4_DENSITY = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"
#: The normalising-flow convention, in the field chi (written phi in the density).
NF_DENSITY = "sum_mu((shift(phi, mu) - phi)**2) + m2*phi**2 + lam*phi**4"
#: The hopping form, in the field varphi (written phi in the density).
HOPPING_DENSITY = "-2*kappa*sum_mu(phi*shift(phi, mu)) + (1 - 2*lam_k)*phi**2 + lam_k*phi**4"


def _dim(d) -> int:
    if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 4:
        raise ActionError(f"the dimension d must be an integer 1..4, got {d!r}")
    return d


def from_hopping(kappa: float, lam_kappa: float, d: int) -> tuple[float, float]:
    r"""(:math:`\kappa`, :math:`\lambda_\kappa`) of the hopping form to pikflow's (:math:`m^2`, :math:`\lambda`).

    >>> from_hopping(0.25, 0.5, 2)
    (-4.0, 8.0)
    """
    d = _dim(d)
    if not kappa > 0:
        raise ActionError(f"the hopping parameter kappa must be positive, got {kappa!r}")
    return (1 - 2 * lam_kappa) / kappa - 2 * d, lam_kappa / kappa**2


def to_hopping(m2: float, lam: float, d: int) -> tuple[float, float]:
    r"""pikflow's (:math:`m^2`, :math:`\lambda`) to the hopping form's (:math:`\kappa`, :math:`\lambda_\kappa`).

    Solves :math:`2\lambda\kappa^2 + (m^2+2d)\kappa - 1 = 0` for the positive root.
    """
    d = _dim(d)
    a, b = 2.0 * lam, m2 + 2 * d
    if a == 0:
        if b <= 0:
            raise ActionError(f"(m2, lam) = ({m2}, {lam}) has no hopping form (m2 + 2d <= 0 at lam = 0)")
        kappa = 1.0 / b
    else:
        disc = b * b + 4 * a
        if disc < 0:
            raise ActionError(f"(m2, lam) = ({m2}, {lam}) has no real hopping form")
        kappa = (-b + math.sqrt(disc)) / (2 * a)
    if not kappa > 0:
        raise ActionError(f"(m2, lam) = ({m2}, {lam}) gives a non-positive kappa")
    return kappa, lam * kappa**2


def hopping_field_scale(kappa: float) -> float:
    r""":math:`\phi = \sqrt{2\kappa}\,\varphi`: the factor from the hopping field to pikflow's."""
    return math.sqrt(2 * kappa)


def from_nf(m2: float, lam: float) -> tuple[float, float]:
    r"""Normalising-flow convention to pikflow: the same (:math:`m^2`, :math:`\lambda`); :math:`\phi = \sqrt2\chi`."""
    return float(m2), float(lam)


def to_nf(m2: float, lam: float) -> tuple[float, float]:
    r"""pikflow to the normalising-flow convention (the same numbers; :math:`\chi = \phi/\sqrt2`)."""
    return float(m2), float(lam)


#: :math:`\phi = \sqrt2\,\chi`: the factor from the normalising-flow field to pikflow's.
NF_FIELD_SCALE = math.sqrt(2.0)
