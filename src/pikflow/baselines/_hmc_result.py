r"""The outcome of one HMC run (:class:`HMCResult`): configurations, acceptance, timings, Gamma-method errors."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from .._errors import PikflowError
from .._estimate import Estimate
from ..diagnostics import GammaResult, gamma_method

#: numbers per call when an observable is evaluated on a run's configurations (:meth:`HMCResult.values`)
OBSERVABLE_CHUNK = 2**24


@dataclasses.dataclass(frozen=True, eq=False)
class HMCResult:
    r"""The outcome of one HMC run at one time ``t`` (see :class:`HMC`).

    Attributes
    ----------
    positions : numpy.ndarray, shape (chains, n, dim)
        The configurations after every measured trajectory, chain by chain; with
        ``HMC.run(keep=...)`` only ``keep``'s numbers of each, shape (chains, n, k).
    t : float
        The time of the path, i.e. the action :math:`\hat S_t` sampled.
    step_size, n_leapfrog : float, int
        Leapfrog step :math:`\epsilon` and steps per trajectory :math:`L`.
    acceptance : float
        Fraction of accepted trajectories (measurement phase, all chains).
    acceptance_probability : float
        Mean Metropolis probability :math:`\langle \min(1, e^{-\Delta H}) \rangle`.
    n_divergent : int
        Trajectories with :math:`|\Delta H| > 1000` (BlackJAX's divergence flag).
    thermalisation : int
        Trajectories per chain discarded before measuring.
    sample_seconds, thermalisation_seconds, compile_seconds : float
        Wall time of the measured trajectories, of the thermalisation, and of the
        (ahead-of-time) compilation, each on its own.
    workers : int
        Host threads the chains were split over.
    estimates : dict[str, GammaResult]
        Gamma-method estimates of the observables given to :meth:`HMC.run`.
    kept : bool
        ``positions`` holds ``HMC.run(keep=...)``'s numbers, not configurations.
    """

    positions: np.ndarray
    t: float
    step_size: float
    n_leapfrog: int
    acceptance: float
    acceptance_probability: float
    n_divergent: int
    thermalisation: int
    sample_seconds: float
    thermalisation_seconds: float
    compile_seconds: float
    workers: int
    seed: int
    fields: tuple
    estimates: dict = dataclasses.field(default_factory=dict)
    kept: bool = False

    @property
    def n_chains(self) -> int:
        """Number of chains."""
        return self.positions.shape[0]

    @property
    def n(self) -> int:
        """Measured trajectories per chain."""
        return self.positions.shape[1]

    @property
    def n_total(self) -> int:
        """Measured configurations in all chains."""
        return self.n_chains * self.n

    @property
    def chains(self) -> np.ndarray:
        """Alias of :attr:`positions`, shape ``(chains, n, dim)``."""
        return self.positions

    def values(self, observable) -> np.ndarray:
        """The observable on every configuration, shape ``(chains, n)``.

        ``observable``: a SymPy expression or string in the field symbols
        (``"Abs(phi)"``), or a callable on an array ``(N, dim)`` returning ``(N,)``.
        """
        from ..lowering import lower_observable

        if self.kept:
            raise PikflowError(
                "this run kept only the numbers of HMC.run(keep=...), not the configurations: evaluate the "
                "observable from them, or run without keep"
            )
        fn = lower_observable(observable, self.fields)
        flat = self.positions.reshape(-1, self.positions.shape[-1])
        # in chunks of about OBSERVABLE_CHUNK numbers: a long lattice run at once needs several copies of
        # every configuration (320 000 32x32 configurations, 2.6 GB, exhausted 24 GB)
        rows = max(1, OBSERVABLE_CHUNK // max(1, flat.shape[1]))
        parts = []
        for i in range(0, flat.shape[0], rows):
            chunk = flat[i : i + rows]
            v = np.asarray(fn(jnp.asarray(chunk)), dtype=float)
            if v.shape != (chunk.shape[0],):
                raise PikflowError(f"the observable must give one number per configuration, got shape {v.shape}")
            parts.append(v)
        vals = np.concatenate(parts)
        return vals.reshape(self.positions.shape[:2])

    def gamma(self, observable, *, S: float = 1.5) -> GammaResult:
        r"""Mean, error and :math:`\tau_{\mathrm{int}}` of an observable (Gamma method, chains as replica)."""
        vals = self.values(observable)
        return gamma_method(vals[0] if self.n_chains == 1 else vals, S=S)

    def observable(self, observable, *, S: float = 1.5) -> Estimate:
        """The chain average of an observable with its Gamma-method error."""
        g = self.gamma(observable, S=S)
        return Estimate(g.mean, g.error)

    def independent_per_second(self, observable, *, with_thermalisation: bool = False) -> float:
        r"""Effectively independent samples per second, :math:`N/(2\tau_{\mathrm{int}})` over the sampling time."""
        g = self.gamma(observable)
        secs = self.sample_seconds + (self.thermalisation_seconds if with_thermalisation else 0.0)
        return g.n_effective / secs

    def summary(self) -> dict:
        """The headline numbers (and the stored estimates) as a JSON-ready dict."""
        return {
            "t": self.t,
            "chains": self.n_chains,
            "n_per_chain": self.n,
            "n_total": self.n_total,
            "step_size": self.step_size,
            "n_leapfrog": self.n_leapfrog,
            "thermalisation": self.thermalisation,
            "acceptance": self.acceptance,
            "acceptance_probability": self.acceptance_probability,
            "n_divergent": self.n_divergent,
            "sample_seconds": self.sample_seconds,
            "thermalisation_seconds": self.thermalisation_seconds,
            "compile_seconds": self.compile_seconds,
            "workers": self.workers,
            "estimates": {k: dataclasses.asdict(v) for k, v in self.estimates.items()},
        }

    def __repr__(self) -> str:
        return (
            f"HMCResult(t={self.t:g}, chains={self.n_chains}, n={self.n}, acceptance={self.acceptance:.4f}, "
            f"sample_seconds={self.sample_seconds:.3g})"
        )
