r"""The samples of a lattice flow: configurations (or their streamed reductions) and log importance weights."""

from __future__ import annotations

import dataclasses
import math

import numpy as np


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
