r"""The exact free-field kernel of a quadratic lattice path (the user guide).

For a translation-invariant quadratic action :math:`\hat S_t = \tfrac12\phi^T K_t\phi` the
precision is diagonal in momentum space, :math:`K_t(k)`, and the kernel of eq. 14 is known
exactly; the Gaussian base itself is :class:`pikflow.flow.GaussianLatticeBase`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..action import LatticePath
from ..flow import GaussianLatticeBase
from ..lowering import log_cosh  # noqa: F401  (re-exported: pikflow.lattice.log_cosh)


def free_kernel(path: LatticePath, time: float, field):
    r"""The exact free-field kernel :math:`v = -\tfrac12 K_t^{-1}\dot K_t\,\phi` (the user guide).

    Valid for paths whose action is quadratic at every time (``K_t`` diagonal in momentum
    space, so :math:`K_t` and :math:`\dot K_t` commute); :math:`\dot K` by a central
    difference of step :math:`10^{-5}` of the exact, polynomial-in-t precision.
    """
    eps = 1e-5
    K = np.asarray(GaussianLatticeBase.from_path(path, time).precision)
    Kp = np.asarray(GaussianLatticeBase.from_path(path, time + eps).precision)
    Km = np.asarray(GaussianLatticeBase.from_path(path, time - eps).precision)
    ratio = jnp.asarray((Kp - Km) / (2 * eps) / K)
    axes = tuple(range(field.ndim - path.d, field.ndim))
    return -0.5 * jnp.real(jnp.fft.ifftn(ratio * jnp.fft.fftn(field, axes=axes), axes=axes))
