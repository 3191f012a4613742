r"""The samples of a lattice flow: configurations (or their streamed reductions) and log importance weights.

The estimates from the weights alone (ESS/N, IMH acceptance, :math:`\log Z`, reweighted
observables, warnings, summary) are those of every space (:class:`pikflow.flow.AbstractSamples`);
here the lattice adds its storage (the configurations, or per sample the magnetisation and the
two-point series) and the names ``"abs_m"``, ``"m2"``, ``"chi"`` and ``"binder"``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import numpy as np

from .._errors import SamplingError
from .._estimate import Estimate
from ..diagnostics import reweight
from ._controls import control_matrix, controlled, jackknife_error
from ._interface import AbstractSamples, finite_values
from ._lattice_stream import _site_means, two_point_series

#: The observables :meth:`LatticeSamples.observable` knows by name.
OBSERVABLE_NAMES = ("abs_m", "m2", "chi", "binder")


@dataclasses.dataclass
class LatticeSamples(AbstractSamples):
    r"""Final configurations of a lattice flow and their log importance weights.

    ``log_w = -S_1(phi) - log q_1(phi)`` (unnormalised). Non-finite configurations or
    weights are kept (counted by :attr:`n_nonfinite`) and weigh zero in every estimate.
    Only ``t = 1`` is kept: ``ess_at``, ``log_z`` and ``observable`` take no other time.
    ``ess`` is a number that may also be called, ``ess()``, as before the interface was shared.
    """

    fields: np.ndarray | None
    log_w: np.ndarray
    #: without ``fields`` (``sample(..., keep_fields=False)``): per sample, whether the configuration is
    #: finite, its magnetisation and its two-point series (:func:`~pikflow.flow.two_point_series`)
    fields_finite: np.ndarray | None = None
    magnetisation_values: np.ndarray | None = None
    two_point_values: np.ndarray | None = None
    lattice_shape: tuple | None = None
    #: field components per site (``fields`` has shape ``(n, components, *lattice)`` when > 1)
    components: int = 1
    #: the seed of ``sample(n, seed=...)`` (None for ``sample(key, n)``); the IMH chain's key is ``seed + 7919``
    seed: int | None = None
    #: ESS/N seen from target samples (set by :meth:`LatticeFlow.target_ess`; None before)
    target_ess: float | None = None
    #: per sample, the base draw's :math:`(m_b, Q, Q_1, \dots)` (:meth:`GaussianLatticeBase.control_values`), and
    #: their laws (:meth:`GaussianLatticeBase.control_law`): the control variates of ``observable(controls=True)``
    base_controls: np.ndarray | None = None
    base_law: dict | None = None

    @property
    def finite(self) -> np.ndarray:
        """Per sample: configuration and weight both finite (the others weigh zero everywhere)."""
        if self.fields is None:
            return np.isfinite(self.log_w) & self.fields_finite
        axes = tuple(range(1, self.fields.ndim))
        return np.isfinite(self.log_w) & np.all(np.isfinite(self.fields), axis=axes)

    def _log_w_at(self, t: float) -> np.ndarray:
        if abs(float(t) - 1.0) > 1e-9:
            raise SamplingError(f"lattice samples keep only t = 1, got t = {t}")
        return np.where(self.finite, self.log_w, -np.inf)

    @property
    def volume(self) -> int:
        """Number of lattice sites :math:`V`."""
        if self.fields is None:
            return math.prod(self.lattice_shape)
        return math.prod(self.fields.shape[1 if self.components == 1 else 2 :])

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
        r"""Per sample :math:`C(r)` (:func:`~pikflow.flow.two_point_series`) and the mean field :math:`m`.

        Non-finite configurations give zeros (they weigh zero in every estimate).
        """
        ok = self.finite
        mask = ok if self.components == 1 else ok[:, None]
        if self.fields is None:
            m = self.magnetisations() / math.prod(self.lattice_shape)
            m = m[:, 0] if self.components == 1 else m
            return np.where(ok[:, None], self.two_point_values, 0.0), np.where(mask, m, 0.0)
        x = np.where(ok.reshape((-1,) + (1,) * (self.fields.ndim - 1)), self.fields, 0.0)
        return two_point_series(x, self.components), _site_means(x, self.components)

    def values(self, observable: str | Callable, t: float = 1.0) -> np.ndarray:
        r"""Per sample: ``"abs_m"`` :math:`|m|`, ``"m2"`` :math:`|m|^2`, or a callable on the configurations.

        A callable gets the configurations ``(N, *field_shape)`` (non-finite entries as 0; those
        samples weigh zero) and returns one number per sample. ``"chi"`` and ``"binder"`` are
        not per-sample values: ask :meth:`observable`.
        """
        self._log_w_at(t)
        if isinstance(observable, str):
            if observable not in ("abs_m", "m2"):
                raise SamplingError(
                    f"lattice observables by name: {', '.join(OBSERVABLE_NAMES)} (chi, binder: observable()); "
                    f"got {observable!r}; or give a callable on the configurations (N, *field_shape)"
                )
            a1 = np.abs(self.magnetisation()) / self.volume
            return a1 if observable == "abs_m" else a1**2
        if not callable(observable):
            raise SamplingError(f"an observable is a name or a callable, got {type(observable).__name__}")
        if self.fields is None:
            raise SamplingError(
                "these samples were streamed (sample(..., keep_fields=False)): only the names "
                f"{', '.join(OBSERVABLE_NAMES)} are available; sample with keep_fields=True for a callable"
            )
        with np.errstate(all="ignore"):
            return np.asarray(observable(np.nan_to_num(self.fields)), dtype=float)

    def observable(self, observable: str | Callable, t: float = 1.0, *, controls: bool = False) -> Estimate:
        r"""Reweighted :math:`\langle O\rangle` with its delta-method error (:meth:`AbstractSamples.observable`).

        Besides a callable and ``"abs_m"`` (:math:`\langle|m|\rangle`) and ``"m2"``
        (:math:`\langle|m|^2\rangle`), with :math:`m = \frac1V\sum_n\phi_n` (the vector's length
        for several components): ``"chi"`` :math:`= V(\langle|m|^2\rangle - \langle|m|\rangle^2)` and
        ``"binder"`` :math:`= 1 - \langle|m|^4\rangle/(3\langle|m|^2\rangle^2)`, whose errors are
        those of the linearised series :math:`\sum_a \partial f/\partial\bar A_a\,A_{a,i}` (the
        projection :func:`pikflow.lattice.chain_observables` uses along the IMH chain, which
        :func:`pikflow.lattice.flow_observables` gives with Gamma-method errors).

        ``controls=True``: the estimate corrected by control variates of the exact base draws (functions of
        their magnetisation, their Fourier energy and that of the lowest momentum shells, with exact means;
        :mod:`pikflow.flow._controls`), the same quantity with the error of what the controls leave (variances
        measured 3.4-4.5 times smaller at 16x16 (-2, 2); without the shells 2.8-3.7 there, 11-21 at 16x16 (-1, 1),
        3-4 at 64x64 (-1, 1)). Needs samples of a one-component :meth:`LatticeFlow.sample`.
        """
        lw = self._log_w_at(t)
        derived = isinstance(observable, str) and observable in ("chi", "binder")
        if not derived and not controls:
            return super().observable(observable, t)
        if derived:
            a1 = self.values("abs_m")
            x = np.stack([a1, a1**2, a1**4], axis=1)
        else:
            x = finite_values(lw, self.values(observable, t), observable)[:, None]
        if controls:
            if self.base_controls is None:
                raise SamplingError(
                    "these samples carry no base controls: draw them with LatticeFlow.sample (one-component fields)"
                )
            means, replicates = controlled(lw, x, self._control_matrix)  # the controls correct the means; f from them
        else:
            means = reweight(lw, x)[0]
        if not derived:
            return Estimate(float(means[0]), jackknife_error(replicates[:, 0]))
        V = self.volume
        if observable == "chi":
            f, grad = (lambda b: V * (b[..., 1] - b[..., 0] ** 2)), np.array([-2 * V * means[0], V, 0.0])
        else:
            f = lambda b: 1 - b[..., 2] / (3 * b[..., 1] ** 2)  # noqa: E731
            grad = np.array([0.0, 2 * means[2] / (3 * means[1] ** 3), -1 / (3 * means[1] ** 2)])
        if controls:
            return Estimate(float(f(means)), jackknife_error(f(replicates)))
        return Estimate(float(f(means)), float(reweight(lw, x @ grad)[1]))

    @property
    def has_controls(self) -> bool:
        """Whether ``observable(..., controls=True)`` can be used: base controls recorded (one-component
        :meth:`LatticeFlow.sample`) and at least twice as many samples as controls and intercept."""
        return self.base_controls is not None and self.n_samples >= 2 * (self._control_matrix.shape[1] + 1)

    @functools.cached_property
    def _control_matrix(self) -> np.ndarray:
        """The centred controls of the base draws (:func:`~pikflow.flow._controls.control_matrix`), built once."""
        return control_matrix(self.base_controls, self.volume, **self.base_law)

    def summary(self) -> dict:
        """The headline numbers (:meth:`AbstractSamples.summary`) and the runaway count."""
        return {**super().summary(), "n_runaway": self.n_runaway}
