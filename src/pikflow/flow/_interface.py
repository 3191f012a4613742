r"""One interface for the flows and samples of every field space (0-D and lattices).

A solved flow of any space is an :class:`AbstractFlow`: the time grid of its layers, the
push of base samples through them (eqs. 10-11) with the log-density, ``sample(n,
seed=...)``, the density of the sampler at any configuration (:meth:`AbstractFlow.log_density`),
``save``/``load`` and a summary. Its samples are an :class:`AbstractSamples`: everything that
needs only the final unnormalised log-weights :math:`\log w = -\hat S_1(\phi) - \log q_1(\phi)`
(sec. III) lives here, once, for every space:

* ESS/N :math:`= (\sum w)^2 / (N \sum w^2)`;
* the independent Metropolis-Hastings chain with the flow as proposal and its acceptance;
* :math:`\log Z_1 = \log\langle w\rangle_q` with its delta-method error;
* reweighted observables :math:`\langle O\rangle = \sum w O / \sum w` with delta-method errors;
* the reliability warnings and a JSON-ready summary.

The spaces differ only in how configurations are stored and which step times are kept:
:class:`pikflow.Samples` (0-D: every step time, configurations ``(N, n_fields)``) and
:class:`pikflow.flow.LatticeSamples` (the final configurations ``(N, *field_shape)``, or their
streamed reductions). A subclass provides the final log-weights (:meth:`AbstractSamples._log_w_at`)
and the per-sample values of an observable (:meth:`AbstractSamples.values`).

Why abstract bases rather than one concrete class: the two storage layouts (all step times of a
few components against the final time of a whole lattice, or no configurations at all when
streamed) have nothing in common but the log-weights, and the estimates depend on nothing else.

Saved flows of every space are read back by :meth:`AbstractFlow.load` (``pikflow.load``): each
space registers the reader of its ``flow.json`` ``space`` with :func:`register_flow_format`
(:mod:`pikflow.flow._format`, the one versioned save format), so that this stage imports no space.
"""

from __future__ import annotations

import abc
import functools
import os
import pathlib

import jax
import numpy as np

from .._errors import FlowFileError, SamplingError
from .._estimate import Estimate
from ..diagnostics import (
    ess_fraction,
    imh_chain,
    log_mean_weight,
    reliability_warnings,
    reweight,
    weight_tail,
)
from ._format import reader_for


class CallableFloat(float):
    """A float that also answers a call with itself: ``samples.ess`` and ``samples.ess()`` are the same number.

    0-D samples always spelled ESS/N as a property (``samples.ess``), lattice samples as a method
    (``samples.ess()``); both spellings keep working on every space.
    """

    def __call__(self) -> float:
        return float(self)


def finite_values(log_w, values, observable="the observable") -> np.ndarray:
    """``values`` (one per sample), or a :class:`SamplingError` where one is not finite on a sample of finite weight.

    Samples whose configuration ran away carry no weight and are left out of every estimate; an observable that is
    NaN or infinite on a sample that counts (``log(phi)`` at ``phi < 0``) would silently leave that sample out and
    bias the mean.
    """
    values = np.asarray(values, dtype=float)
    lw = np.asarray(log_w, dtype=float)
    bad = np.isfinite(lw) & ~np.all(np.isfinite(values.reshape(len(values), -1)), axis=1)
    if bad.any():
        name = getattr(observable, "__name__", None) if callable(observable) else str(observable)
        raise SamplingError(
            f"observable {name} is not finite on {int(bad.sum())} of {len(values)} samples that carry weight "
            f"(the first at sample {int(np.argmax(bad))}); its mean would silently leave them out. Give an "
            "observable defined on every configuration (e.g. log(Abs(phi)) or sqrt(phi**2) instead of log(phi) or "
            "sqrt(phi))"
        )
    return values


class AbstractSamples(abc.ABC):
    r"""What every space's samples share: estimates from the final log-weights (see the module docstring).

    Subclasses: :class:`pikflow.Samples` (0-D) and :class:`pikflow.flow.LatticeSamples`.
    ``isinstance(s, pikflow.AbstractSamples)`` holds for both.
    """

    #: ESS/N seen from samples of the target (the hole check, :func:`pikflow.diagnostics.target_ess`); None before.
    target_ess: float | None = None

    @abc.abstractmethod
    def _log_w_at(self, t: float) -> np.ndarray:
        """Log-weights ``(N,)`` at step time ``t``, non-finite samples as ``-inf`` (SamplingError if not kept)."""

    @abc.abstractmethod
    def values(self, observable, t: float = 1.0) -> np.ndarray:
        """The observable evaluated on every sample at step time ``t``, shape ``(N,)`` or ``(N, k)``."""

    def _imh_key(self):
        """The key of the IMH chain: ``PRNGKey(seed + 7919)`` (seed 0 when the samples have none)."""
        seed = getattr(self, "seed", None)
        return jax.random.PRNGKey((0 if seed is None else int(seed)) + 7919)

    @property
    def _final_log_w(self) -> np.ndarray:
        return self._log_w_at(1.0)

    @property
    def n_samples(self) -> int:
        """Number of samples N (non-finite ones included)."""
        return int(self._final_log_w.shape[0])

    @property
    def n_nonfinite(self) -> int:
        """Samples whose configuration or log-weight is not finite: they weigh zero in every estimate."""
        return int(np.sum(~np.isfinite(self._final_log_w)))

    def ess_at(self, t: float = 1.0) -> float:
        """ESS/N of the samples at step time ``t`` (lattice samples keep only ``t = 1``)."""
        return float(ess_fraction(self._log_w_at(t)))

    @property
    def ess(self) -> CallableFloat:
        """ESS/N at ``t = 1`` (1 is perfect); ``ess()`` gives the same number (:class:`CallableFloat`)."""
        return CallableFloat(self.ess_at(1.0))

    @functools.cached_property
    def imh(self):
        """The independent Metropolis-Hastings chain at ``t = 1`` (see :func:`pikflow.diagnostics.imh_chain`)."""
        return imh_chain(self._imh_key(), self._final_log_w)

    @property
    def imh_acceptance(self) -> float:
        """Acceptance rate of the IMH chain with the flow as proposal."""
        return float(self.imh.acceptance)

    def log_z(self, t: float = 1.0) -> Estimate:
        r""":math:`\log Z_t = \log \int e^{-\hat S_t}` from the mean weight, with its delta-method error."""
        return Estimate(*map(float, log_mean_weight(self._log_w_at(t))))

    def observable(self, observable, t: float = 1.0) -> Estimate:
        r"""Reweighted :math:`\langle O\rangle_t = \sum w O/\sum w` with its delta-method error.

        ``observable``: a callable on the configurations (``(N, n_fields)`` in 0-D, ``(N,
        *field_shape)`` on a lattice) returning one value per sample; each space adds its own
        names (0-D: SymPy expressions in the fields; lattices: ``"abs_m"``, ``"chi"``, ``"binder"``).
        """
        values = np.asarray(self.values(observable, t), dtype=float)
        if values.ndim != 1 or values.shape[0] != self.n_samples:
            raise SamplingError(
                f"an observable must give one number per sample, shape ({self.n_samples},); got {values.shape}"
            )
        log_w = self._log_w_at(t)
        return Estimate(*map(float, reweight(log_w, finite_values(log_w, values, observable))))

    @property
    def warnings(self) -> list[str]:
        """What is not to be trusted (tiny ESS; after a hole check also holes and deviations), with fixes."""
        deviations = getattr(self, "deviations", None) or {}
        tail = weight_tail(self._log_w_at(1.0))
        return reliability_warnings(
            self.ess_at(1.0), self.n_samples, target_ess=self.target_ess, deviations=deviations,
            khat=tail["pareto_khat"], largest=tail["largest_weight"],
        )  # fmt: skip

    def summary(self) -> dict:
        """The headline numbers as a JSON-ready dict."""
        return {
            "n_samples": self.n_samples,
            "n_nonfinite": self.n_nonfinite,
            "ess": self.ess_at(1.0),
            "imh_acceptance": self.imh_acceptance,
            "log_z": self.log_z().to_dict(),
            "target_ess": self.target_ess,
            "warnings": self.warnings,
        }


class AbstractFlow(abc.ABC):
    r"""What every space's solved flow shares (0-D :class:`pikflow.Flow`, :class:`pikflow.flow.LatticeFlow`).

    A flow holds one layer per RK4 stage time (:attr:`times`, ``2 steps + 1`` of them, eq. 11):
    samples of the exactly sampled base :math:`p_0 \propto e^{-\hat S_0}` (eq. 10) are pushed
    through them with their log-density. The shared sampling call is
    ``sample(n, seed=..., logdet=..., batch_size=..., progress=...)``:

    ``n``
        Number of samples (positional).
    ``seed``
        An integer in ``[0, 2**32)``; the same seed gives the same samples (also after
        ``save`` and ``load``).
    ``logdet``
        ``"exact"`` (the log-Jacobian of the applied RK4 map) or ``"continuous"``
        (:math:`d\log q/dt = -\partial\cdot v_t` on the RK4 stages); each space has its default.
    ``batch_size``
        Samples per compiled call (bounds memory).
    ``progress``
        Show a progress bar.

    Each space accepts more (0-D: ``method``, ``keep_layers``, ``table_nodes``; lattices:
    ``keep_fields``, ``precision``); see its ``sample``.
    """

    steps: int

    @property
    @abc.abstractmethod
    def times(self) -> np.ndarray:
        """The layer times (the RK4 stage times, ``2 steps + 1`` of them)."""

    @property
    @abc.abstractmethod
    def field_shape(self) -> tuple[int, ...]:
        """Shape of one configuration: ``(n_fields,)`` in 0-D, ``(*lattice)`` or ``(n, *lattice)`` on a lattice."""

    @abc.abstractmethod
    def sample(self, n: int, *, seed: int = 0, **options) -> AbstractSamples:
        """``n`` samples with their exact importance weights (see the class docstring for the shared keywords)."""

    @abc.abstractmethod
    def log_density(self, x) -> np.ndarray:
        r""":math:`\log q_1` of the sampler at configurations ``x`` ``(n, *field_shape)`` (the flow run backwards)."""

    @abc.abstractmethod
    def layer_residuals(self) -> np.ndarray:
        """The residual of every layer's equation as the solve measured it (each space's own measure)."""

    @abc.abstractmethod
    def save(self, directory: str | os.PathLike) -> pathlib.Path:
        """Write the flow into ``directory`` (atomically, with a checksummed ``manifest.json``)."""

    @classmethod
    def load(cls, directory: str | os.PathLike) -> AbstractFlow:
        """Read a flow of any space saved by ``save``: ``flow.json``'s ``space`` picks the reader.

        A subclass's own ``load`` reads only its space and says which reader to use otherwise.
        """
        if not isinstance(directory, (str, os.PathLike)):
            raise FlowFileError(f"load needs a directory path, got {type(directory).__name__}: {directory!r}")
        return reader_for(directory)(directory)

    @property
    def n_layers(self) -> int:
        """Number of layers (``2 steps + 1``)."""
        return len(self.times)

    def summary(self) -> dict:
        """The flow's headline numbers as a JSON-ready dict (kind, field shape, steps, layer residuals)."""
        res = np.asarray(self.layer_residuals(), dtype=float)
        return {
            "kind": type(self).__name__,
            "field_shape": list(self.field_shape),
            "steps": int(self.steps),
            "n_layers": self.n_layers,
            "layer_residuals": res.tolist(),
            "max_residual": float(res.max()) if res.size else None,
        }
