r"""Samples from a flow with their exact importance weights, and what they estimate (sec. III, IV A).

At every step time :math:`t` the samples follow :math:`q_t \approx p_t`; the unnormalised
log-weight :math:`\log w = -\hat S_t(\phi) - \log q_t(\phi)` makes every estimate exact:

* ESS/N :math:`= (\sum w)^2 / (N \sum w^2)`,
* reweighted observables :math:`\langle O\rangle = \sum w O / \sum w` with delta-method errors,
* :math:`\log Z_t = \log \langle w\rangle` (free energy :math:`F = -\log Z`),
* an independent Metropolis-Hastings chain with the flow as proposal.

Samples that are not finite (configuration or log-density) get weight zero, are counted
in ``n_nonfinite`` and are never averaged in.

:meth:`Samples.check` adds the hole check (ESS/N seen from exact or HMC samples of the
target, :func:`pikflow.diagnostics.target_ess`) and the comparison with exact values, and
lists what is not to be trusted in :attr:`Samples.warnings`.

The estimates that need only the log-weights (ESS/N, IMH, :math:`\log Z`, reweighting, warnings,
summary) are those of every space, :class:`pikflow.flow.AbstractSamples`; this class adds the
step times, the SymPy observables and the 0-D hole check.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import SamplingError
from .._estimate import Estimate
from .._times import step_index
from ..diagnostics import reweight
from ..diagnostics import target_ess as _target_ess
from ..lowering import lower_observable
from ._interface import AbstractSamples


class Samples(AbstractSamples):
    r"""Configurations of every step, :math:`\log q`, log-weights and the estimates built on them.

    Attributes
    ----------
    times
        Step times :math:`0, 1/\text{steps}, \dots, 1` (with a reparametrised clock, the
        given path's times of the steps, :attr:`Flow.step_times`).
    phi
        Configurations, shape ``(len(times), N, n_fields)`` (only the last step if
        sampled with ``keep_layers=False``).
    log_q, log_w
        Log-density of the flow and unnormalised log-weight, shape ``(len(times), N)`` (``(1, N)``
        with ``keep_layers=False``).
    logdet
        Which log-density was used: ``"exact"`` (discrete RK4 map), ``"continuous"``, or
        ``"table"`` (the tabulated map, one-component or radial; exact for the map applied).
    """

    def __init__(
        self, *, times, phi, log_q, log_w, fields, logdet, seed, sample_seconds, layers_kept=True, sampler=None
    ):
        self.times, self.phi, self.log_q = np.asarray(times), phi, log_q
        finite = np.isfinite(log_w) & np.all(np.isfinite(phi), axis=-1) if layers_kept else np.isfinite(log_w)
        if not layers_kept:
            finite[-1] &= np.all(np.isfinite(phi[-1]), axis=-1)
        self.log_w = np.where(finite, log_w, -np.inf)
        self.fields, self.logdet, self.seed = tuple(fields), logdet, seed
        self.sample_seconds = float(sample_seconds)
        self.layers_kept = layers_kept
        #: how the samples were drawn (``method``, ``logdet``, ``table_nodes``): the hole check inverts the same map.
        self.sampler = dict(sampler or {})
        #: ESS/N seen from samples of the target (set by :meth:`check`; None before).
        self.target_ess: float | None = None
        #: signed deviations from exact values in units of the error (set by :meth:`check`, one component).
        self.deviations: dict[str, float] = {}
        if self.n_nonfinite == self.n_samples:
            raise SamplingError("every sample is non-finite: the flow diverged; check the layer residuals")
        if self.n_nonfinite:
            warnings.warn(
                f"{self.n_nonfinite} of {self.n_samples} samples are non-finite (configuration or log-density); "
                "they get weight zero and are reported as n_nonfinite",
                stacklevel=3,
            )

    @property
    def final(self) -> np.ndarray:
        """Configurations at ``t = 1``, shape ``(N, n_fields)``."""
        return self.phi[-1]

    def _index(self, t: float) -> int:
        i = step_index(self.times, t)
        if not self.layers_kept:
            if i != len(self.times) - 1:
                raise SamplingError("only t = 1 was kept: sample with keep_layers=True for observables along t")
            return -1
        return i

    def _log_w_at(self, t: float) -> np.ndarray:
        return self.log_w[self._index(t)]

    def values(self, observable, t: float = 1.0) -> np.ndarray:
        """The observable evaluated on every sample at step time ``t``."""
        i = self._index(t)
        fn = lower_observable(observable, self.fields)
        phi = self.phi[i]
        with np.errstate(all="ignore"):
            return np.asarray(fn(jnp.asarray(np.nan_to_num(phi))))

    def path_observable(self, observable) -> dict[float, Estimate]:
        r"""The reweighted observable at every step time (parameter-conditional, paper Fig. 8)."""
        return {float(t): self.observable(observable, t) for t in self.times}

    def check(self, flow, *, reference=None, n_reference: int | None = None, seed: int | None = None) -> list[str]:
        r"""The hole check and the comparison with exact values; returns (and stores) :attr:`warnings`.

        ``reference``: samples of the target ``(n, n_fields)``; default exact samples by
        inverse CDF from quadrature for one component (``n_reference`` = :math:`10^5`),
        HMC otherwise (:func:`pikflow.baselines.hmc`, ``n_reference`` = 20000 trajectories
        in 16 chains). They are pulled back through ``flow`` (the flow these samples came
        from) with :meth:`~pikflow.Flow.log_density`, giving :attr:`target_ess`
        (:func:`pikflow.diagnostics.target_ess`). For one component the exact
        :math:`\log Z`, :math:`\langle\phi\rangle` and :math:`\langle\phi^2\rangle`
        are compared too (:attr:`deviations`).
        """
        seed = self.seed if seed is None else int(seed)
        ref = None
        if flow.n_fields == 1:
            from ..exact import reference_for

            try:
                ref = reference_for(flow.path)
            except (ValueError, ArithmeticError):
                ref = None
        if reference is None:
            if ref is not None:
                reference = ref.sample(1.0, n_reference or 100_000, seed=seed + 1)[:, None]
            else:
                from ..baselines import hmc

                n_ref = n_reference or 20_000
                res = hmc(flow.path, 1.0, n=-(-n_ref // 16), chains=16, thermalisation=200, seed=seed + 1)
                reference = res.positions.reshape(-1, flow.n_fields)
        reference = np.asarray(reference, dtype=float).reshape(-1, flow.n_fields)
        opts = {k: v for k, v in self.sampler.items() if k in ("method", "logdet", "table_nodes")}
        log_q = flow.log_density(reference, **opts)
        action = jax.vmap(flow.equation.action_fn, in_axes=(0, None))
        log_w_ref = -np.asarray(action(jnp.asarray(reference), 1.0)) - log_q
        self.target_ess = _target_ess(self.log_w[-1], log_w_ref)
        if ref is not None:
            lz = self.log_z()
            self.deviations = {"log_z": (lz.value - ref.log_z(1.0)) / lz.error}
            for name, fn in (("phi", lambda x: x), ("phi**2", np.square)):
                est = Estimate(*map(float, reweight(self.log_w[-1], fn(self.final[:, 0]))))
                self.deviations[f"<{name}>"] = (est.value - ref.expectation(1.0, fn)) / est.error
        return self.warnings

    def summary(self) -> dict:
        """The headline numbers as a JSON-ready dict."""
        return {**super().summary(), "logdet": self.logdet, "sample_seconds": self.sample_seconds}

    def __repr__(self) -> str:
        return f"Samples(n={self.n_samples}, steps={len(self.times) - 1}, ess={self.ess:.6f}, logdet={self.logdet!r})"
