r"""What an SMC run returns: estimates with replica errors at every step time, and its diagnostics.

Every estimate is the mean over ``replicas`` independent runs, with the standard error
:math:`s/\sqrt R` of their spread (:math:`s` with :math:`R - 1` degrees of freedom). With
few replicas the error is itself uncertain (a Student :math:`t_{R-1}` interval is wider
than the Gaussian one); the particles within one run are correlated by resampling and
never give an error. A function of several means (a susceptibility, a Binder cumulant) is
formed from the means pooled over the replicas, with the jackknife error over the replicas.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .._errors import SamplingError
from .._estimate import Estimate
from .._times import step_index


def replica_estimate(values) -> Estimate:
    """Mean and standard error over the replica axis (the last one) of per-replica estimates.

    Replicas whose estimate is not finite are left out, with a :class:`ReplicaWarning` (the pooled estimate of the
    others may be biased); NaN where fewer than 2 are left.
    """
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    _warn_left_out(v.size - finite.size, v.size)
    if finite.size < 2:
        return Estimate(float("nan"), float("nan"))
    return Estimate(float(finite.mean()), float(finite.std(ddof=1) / np.sqrt(finite.size)))


class ReplicaWarning(UserWarning):
    """Some replicas of an SMC run gave a non-finite estimate and were left out of the pooled one."""


def _warn_left_out(lost: int, total: int) -> None:
    if 0 < lost < total:
        warnings.warn(
            f"{lost} of {total} replicas gave a non-finite estimate and are left out: the pooled estimate of the "
            "others may be biased (a replica whose weights all vanished, or an observable not finite on particles)",
            ReplicaWarning,
            stacklevel=3,
        )


@dataclasses.dataclass
class SMCResult:
    r"""Per step time and replica: :math:`\log Z_t`, the observables' weighted means and the diagnostics.

    Attributes
    ----------
    times
        Step times, shape ``(K + 1,)``.
    log_z
        :math:`\log Z_t` per step time and replica, shape ``(K + 1, R)`` (with the base's
        normalisation: :math:`\log Z_0` is exact for an exact base).
    moments
        ``name -> (K + 1, R)`` weighted means of each observable.
    ess
        ESS/N after each step's reweighting, before any resampling, ``(K + 1, R)``.
    resampled, acceptance, step_size, unique_ancestors, nonfinite
        Per step and replica: whether it resampled, the MCMC acceptance, the step size
        used, the number of distinct time-0 ancestors, the particles whose transport gave a
        non-finite weight (they are given weight zero, never averaged in).
    particles, log_w
        The final particles ``(R, N, ...)`` and their log-weights ``(R, N)``.
    ancestors
        The time-0 ancestor ("Eve") index of every final particle, ``(R, N)``: the genealogy
        that :meth:`genealogy_estimate` needs.
    """

    times: np.ndarray
    log_z: np.ndarray
    moments: dict
    ess: np.ndarray
    resampled: np.ndarray
    acceptance: np.ndarray
    step_size: np.ndarray
    unique_ancestors: np.ndarray
    nonfinite: np.ndarray
    particles: np.ndarray
    log_w: np.ndarray
    seconds: float
    settings: dict
    ancestors: np.ndarray | None = None

    @classmethod
    def from_records(
        cls, *, times, names, logz0, moments0, ess0, records, particles, log_w, seconds, settings, ancestors=None
    ):
        """Assemble the per-step records of :func:`~pikflow.samplers.smc`."""
        stack = lambda key, first: np.concatenate([first[None], np.stack([r[key] for r in records])])  # noqa: E731
        r = logz0.shape[0]
        log_z = logz0[None] + np.concatenate([np.zeros((1, r)), np.cumsum([x["dlogz"] for x in records], axis=0)])
        mom = stack("moments", moments0)
        n = particles.shape[1]
        return cls(
            times=np.asarray(times),
            log_z=log_z,
            moments={name: mom[:, :, i] for i, name in enumerate(names)},
            ess=stack("ess", ess0),
            resampled=stack("resampled", np.zeros(r, bool)),
            acceptance=stack("acceptance", np.full(r, np.nan)),
            step_size=stack("step_size", np.full(r, np.nan)),
            unique_ancestors=stack("unique", np.full(r, n)),
            nonfinite=stack("nonfinite", np.zeros(r, int)),
            particles=particles,
            log_w=log_w,
            seconds=float(seconds),
            settings=dict(settings),
            ancestors=None if ancestors is None else np.asarray(ancestors),
        )

    @property
    def replicas(self) -> int:
        """Number of independent replicas."""
        return self.log_z.shape[1]

    def _index(self, t) -> int:
        if t is None:
            return len(self.times) - 1
        return step_index(self.times, t)

    def observable(self, name: str, t: float | None = None) -> Estimate:
        """The weighted mean of observable ``name`` at step time ``t`` (default 1) with its replica error."""
        if name not in self.moments:
            raise SamplingError(f"no observable {name!r} was recorded; recorded: {sorted(self.moments)}")
        return replica_estimate(self.moments[name][self._index(t)])

    def derived(self, fn: Callable[[Mapping[str, np.ndarray]], np.ndarray], t: float | None = None) -> Estimate:
        r"""A function of the recorded means (e.g. :math:`\chi = V(\langle m^2\rangle - \langle|m|\rangle^2)`).

        ``fn`` gets ``name -> means`` (arrays, evaluated elementwise) and returns the derived value.
        The estimate is ``fn`` of the means pooled over the replicas, with the jackknife error over
        the replicas: with :math:`\hat\theta_{(r)}` = ``fn`` of the means without replica :math:`r`,

        .. math:: \sigma^2 = \frac{R-1}{R}\sum_r\big(\hat\theta_{(r)} - \bar\theta_{(\cdot)}\big)^2 .

        For a linear ``fn`` this is the replica error :math:`s/\sqrt R` of :meth:`observable`. A ratio
        of means formed per replica and then averaged keeps the bias of one replica, of order
        :math:`1/(N\,\mathrm{ESS})` (the Binder cumulant of :math:`N` independent Gaussian
        magnetisations has mean :math:`2/(N+2)`, not 0); pooled, the bias is :math:`R` times smaller.
        Replicas whose ``fn`` is not finite are left out, with a :class:`ReplicaWarning`.
        """
        i = self._index(t)
        mom = {k: np.asarray(v[i], dtype=float) for k, v in self.moments.items()}
        keep = np.isfinite(np.asarray(fn(mom), dtype=float))
        r = int(keep.sum())
        _warn_left_out(keep.size - r, keep.size)
        if r < 2:
            return Estimate(float("nan"), float("nan"))
        mom = {k: v[keep] for k, v in mom.items()}
        value = float(fn({k: v.mean() for k, v in mom.items()}))
        loo = np.asarray(fn({k: (v.sum() - v) / (r - 1) for k, v in mom.items()}), dtype=float)
        return Estimate(value, float(np.sqrt((r - 1) / r * np.sum((loo - loo.mean()) ** 2))))

    def log_z_estimate(self, t: float | None = None) -> Estimate:
        r""":math:`\log Z_t` with its replica error."""
        return replica_estimate(self.log_z[self._index(t)])

    def genealogy_estimate(self, fn: Callable) -> Estimate:
        r"""The final weighted mean of ``fn`` with the genealogy-based error of one run (no replica spread).

        Per replica :math:`r`, with the normalised final weights :math:`W_j`, the values
        :math:`f_j = f(x_j)` and the time-0 ancestor :math:`E_j` of every particle, the estimate
        :math:`\hat\eta_r = \sum_j W_j f_j` has the variance estimate of Chan and Lai (2013), which
        Lee and Whiteley (2018, Biometrika 105, 609) show to be consistent and asymptotically equal
        to their own,

        .. math:: \hat V_r = \sum_i \Big(\sum_{j:\,E_j = i} W_j\,(f_j - \hat\eta_r)\Big)^2 .

        Without resampling every particle is its own ancestor and this is the importance-sampling
        variance :math:`\sum_j W_j^2 (f_j - \hat\eta)^2`. The replicas are combined as
        :math:`\bar\eta = \frac1R\sum_r\hat\eta_r`, :math:`\sigma^2 = \frac1{R^2}\sum_r\hat V_r`.
        When the genealogy has collapsed to a few ancestors the estimate is unreliable (it is
        zero for a single one): compare it with the replica error (:meth:`derived`), which stays
        the default error of every SMC estimate.

        ``fn`` maps one configuration to a number (JAX); it is evaluated on the final particles.
        """
        if self.ancestors is None:
            raise SamplingError("this result has no genealogy (ancestors); run pikflow.samplers.smc again")
        import jax

        etas, variances = [], []
        for r in range(self.replicas):
            values = np.asarray(jax.vmap(fn)(self.particles[r]), dtype=float)
            lw = np.where(np.isfinite(self.log_w[r]), self.log_w[r], -np.inf)
            w = np.exp(lw - lw.max())
            w = w / w.sum()
            values = np.where(w > 0, values, 0.0)
            eta = float(np.sum(w * values))
            family = np.bincount(self.ancestors[r], weights=w * (values - eta), minlength=len(w))
            etas.append(eta)
            variances.append(float(np.sum(family**2)))
        return Estimate(float(np.mean(etas)), float(np.sqrt(np.sum(variances)) / len(etas)))

    @property
    def final_ess(self) -> float:
        """ESS/N of the final weights, averaged over replicas."""
        w = np.exp(self.log_w - self.log_w.max(axis=1, keepdims=True))
        w = np.where(np.isfinite(w), w, 0.0)
        return float(np.mean(w.sum(1) ** 2 / (w.shape[1] * (w**2).sum(1))))

    @property
    def n_resampled(self) -> int:
        """Resampling events, summed over replicas."""
        return int(self.resampled.sum())

    def summary(self, names: Sequence[str] | None = None) -> dict:
        """A JSON-ready block: settings, timings, log Z, per-step diagnostics and the final observables."""
        names = list(self.moments) if names is None else list(names)
        return {
            "settings": self.settings,
            "seconds": self.seconds,
            "ess": self.final_ess,
            "log_z": self.log_z_estimate().to_dict(),
            "observables": {k: self.observable(k).to_dict() for k in names},
            "steps": {
                "t": self.times.tolist(),
                "ess_min": np.min(self.ess, axis=1).tolist(),
                "resamplings": self.resampled.sum(axis=1).astype(int).tolist(),
                "acceptance": [
                    float(np.mean(a[np.isfinite(a)])) if np.isfinite(a).any() else None for a in self.acceptance
                ],
                "unique_ancestors_min": np.min(self.unique_ancestors, axis=1).astype(int).tolist(),
                "nonfinite": self.nonfinite.sum(axis=1).astype(int).tolist(),
                "log_z": [self.log_z_estimate(t).to_dict() for t in self.times],
            },
        }


__all__ = ["ReplicaWarning", "SMCResult", "replica_estimate"]
