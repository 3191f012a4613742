r"""Free energies: thermodynamic integration with HMC, the independent check of the flow's :math:`\log Z`.

Along a path of actions :math:`\hat S_t` the partition function
:math:`Z_t = \int e^{-\hat S_t(\phi)}\,d\phi` obeys

.. math::  \frac{d \log Z_t}{dt} = -\Bigl\langle \frac{d\hat S_t}{dt} \Bigr\rangle_t
           \qquad\Longrightarrow\qquad
           \log\frac{Z_1}{Z_0} = -\int_0^1 \Bigl\langle \frac{d\hat S_t}{dt} \Bigr\rangle_t\,dt ,

the same :math:`-\langle d\hat S_t/dt\rangle_t = d\log\mathcal N_t/dt` the kernel
equation eliminates (paper eqs. 14 and 20). The free-energy difference is
:math:`\Delta F = F_1 - F_0 = -\log(Z_1/Z_0)`. Thermodynamic integration (TI) measures
:math:`\langle d\hat S_t/dt\rangle_t` with separate HMC runs at the nodes of a
Gauss-Legendre rule (exact for polynomials of degree :math:`2n - 1` in ``t``; 8 nodes
reach :math:`3\cdot 10^{-8}` on the paper's 0-D path) and sums them with the rule's
weights; the runs are independent, so the error is
:math:`\sqrt{\sum_i w_i^2 \sigma_i^2}` with :math:`\sigma_i` from the Gamma method.

The flow gives the same number from its weights alone,
:math:`\log Z_1 = \log \langle w \rangle` (``Samples.log_z``): its base is normalised,
so it estimates the absolute :math:`\log Z_1`; :func:`gaussian_log_z` gives the exact
:math:`\log Z_0` of the Gaussian base.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from .._errors import PikflowError
from .._estimate import Estimate
from ..diagnostics import GammaResult, gamma_method
from ._hmc import HMC
from ._hmc_target import _is_lattice_path

__all__ = ["ThermodynamicIntegration", "gaussian_log_z", "thermodynamic_integration"]


def _as_path(target):
    from ..action import Path

    if hasattr(target, "path") and hasattr(target, "kernels"):  # a Flow
        target = target.path
    if not isinstance(target, Path) and not _is_lattice_path(target):
        raise PikflowError(
            f"thermodynamic integration needs a pikflow.Path, a lattice path or a Flow, got {type(target).__name__}"
        )
    return target


def _dsdt_function(path):
    r""":math:`d\hat S_t/dt` of one flat configuration ``(dim,)`` at ``t`` (the ``keep`` of the HMC runs)."""
    from ..lowering import lower

    if _is_lattice_path(path):
        shape = tuple(path.field_shape)
        return lambda x, t: path.dsdt(x.reshape(shape), t)
    return lower(path.dsdt, path.fields, what="dS/dt")


def gaussian_log_z(path) -> float:
    r"""Exact :math:`\log Z_0 = \log\int e^{-\hat S_0}` of a path whose start is Gaussian.

    With :math:`\hat S_0 = \tfrac12(\phi-\mu)^T K(\phi-\mu) + \hat S_0(\mu)`:
    :math:`\log Z_0 = \tfrac d2 \log 2\pi - \tfrac12\log\det K - \hat S_0(\mu)`.

    Parameters
    ----------
    path : pikflow.Path or pikflow.Flow

    Returns
    -------
    float

    Raises
    ------
    ActionError
        If :math:`\hat S_0` is not a normalisable Gaussian.
    """
    from ..lowering import lower

    path = _as_path(path)
    mean, precision = path.gaussian_base()
    s0 = float(lower(path.expr, path.fields, what="action")(jnp.asarray(mean, dtype=float), 0.0))
    _, logdet = np.linalg.slogdet(precision)
    return float(0.5 * len(mean) * np.log(2 * np.pi) - 0.5 * logdet - s0)


@dataclasses.dataclass(frozen=True)
class ThermodynamicIntegration:
    r"""Result of :func:`thermodynamic_integration`.

    Attributes
    ----------
    times, weights : numpy.ndarray
        Gauss-Legendre nodes and weights on ``[start, end]``.
    dsdt : tuple of GammaResult
        :math:`\langle d\hat S_t/dt\rangle_t` at every node (HMC, Gamma method).
    log_z_ratio : Estimate
        :math:`\log Z_{\mathrm{end}} - \log Z_{\mathrm{start}} = -\int \langle d\hat S_t/dt\rangle_t\,dt`.
    delta_f : Estimate
        :math:`\Delta F = F_{\mathrm{end}} - F_{\mathrm{start}} = -` ``log_z_ratio``.
    log_z : Estimate or None
        :math:`\log Z_{\mathrm{end}}` when ``start = 0`` and the base is Gaussian
        (exact :math:`\log Z_0` plus ``log_z_ratio``), else ``None``.
    seconds : float
        Wall time of all HMC runs (sampling and thermalisation, without compilation).
    """

    times: np.ndarray
    weights: np.ndarray
    dsdt: tuple[GammaResult, ...]
    log_z_ratio: Estimate
    delta_f: Estimate
    log_z: Estimate | None
    seconds: float

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {
            "times": self.times.tolist(),
            "weights": self.weights.tolist(),
            "dsdt": [dataclasses.asdict(g) for g in self.dsdt],
            "log_z_ratio": self.log_z_ratio.to_dict(),
            "delta_f": self.delta_f.to_dict(),
            "log_z": None if self.log_z is None else self.log_z.to_dict(),
            "seconds": self.seconds,
        }


def thermodynamic_integration(
    path,
    *,
    nodes: int = 8,
    start: float = 0.0,
    end: float = 1.0,
    n: int = 20_000,
    chains: int = 16,
    thermalisation: int = 500,
    step_size: float | str = 1 / 25,
    trajectory_length: float = 1.0,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    batched: bool = False,
    init=None,
) -> ThermodynamicIntegration:
    r"""Free-energy difference along a path by HMC thermodynamic integration (module docstring).

    .. math::  \log\frac{Z_{\mathrm{end}}}{Z_{\mathrm{start}}}
               = -\int_{\mathrm{start}}^{\mathrm{end}} \Bigl\langle \frac{d\hat S_t}{dt} \Bigr\rangle_t dt
               \approx -\sum_i w_i \langle d\hat S_t/dt \rangle_{t_i}

    (eq. 14's normalisation term :math:`d\log\mathcal N_t/dt`, integrated).

    Parameters
    ----------
    path
        A :class:`~pikflow.Path`, a :class:`~pikflow.action.LatticePath` or a
        :class:`~pikflow.Flow` (for its path). Lattice configurations are flattened for
        the HMC (:class:`~pikflow.baselines.HMC`); ``log_z`` is then ``None`` (the ratio
        alone: add the exact :math:`\log Z` of the Gaussian start).
    nodes
        Gauss-Legendre nodes (one HMC run each).
    start, end
        The interval of ``t``.
    n, chains, thermalisation, step_size, trajectory_length, seed, workers
        The HMC runs (see :meth:`pikflow.baselines.HMC.run`; ``step_size="auto"`` adapts the
        step during thermalisation); node ``i`` uses seed
        ``seed + i``.
    progress
        Show a progress bar per run.
    batched
        Run the chains of every node in one vectorised batch (:func:`~pikflow.baselines.hmc_points`),
        each node's step adapted from its own acceptance during thermalisation (from ``step_size``, or
        the automatic start with ``"auto"``) and then fixed; one seed for the batch, ``workers`` unused.
        The same estimator, cheaper on a CPU where the batch of one node is narrow.
    init
        Starting configurations per node, shape ``(nodes, chains, ...)``, or a function of the node's
        time ``t`` returning its ``(chains, ...)`` starts (default: the sampler's random start). In a
        broken :math:`Z_2` phase on a large lattice random starts leave domain walls that short runs do
        not anneal; start half the chains in each ordered state instead (``pikflow bench
        scan-lattice`` does).

    Returns
    -------
    ThermodynamicIntegration
    """
    path = _as_path(path)
    if isinstance(nodes, bool) or not isinstance(nodes, int | np.integer) or nodes < 1:
        raise PikflowError(f"nodes must be a positive integer, got {nodes!r}")
    if not (np.isfinite(start) and np.isfinite(end) and start < end):
        raise PikflowError(f"need finite start < end, got start={start!r}, end={end!r}")
    x, w = np.polynomial.legendre.leggauss(int(nodes))
    half = 0.5 * (end - start)
    times, weights = start + half * (x + 1.0), half * w
    if callable(init):
        init = np.stack([np.asarray(init(float(t)), dtype=float) for t in times])
    if init is not None:
        init = np.asarray(init, dtype=float)
        if init.shape[:2] != (int(nodes), int(chains)):
            raise PikflowError(
                f"init must hold the starts of every node's chains, shape ({nodes}, {chains}, ...), got {init.shape}"
            )
    sampler = HMC(path, step_size=step_size, trajectory_length=trajectory_length)
    dsdt = _dsdt_function(path)
    # only dS/dt is kept per trajectory (keep=...): the same chains without storing configurations
    if batched:
        from ._hmc_points import hmc_points

        run = hmc_points(
            path, times, n=n, chains=chains, thermalisation=thermalisation, n_leapfrog=sampler.n_leapfrog,
            step_size=sampler.step_size, seed=seed, keep=dsdt, progress=progress, init=init,
        )  # fmt: skip
        series = [run.positions[i, ..., 0] for i in range(len(times))]
        seconds = run.sample_seconds + run.thermalisation_seconds
    else:
        series, seconds = [], 0.0
        for i, ti in enumerate(times):
            kw = dict(n=n, chains=chains, thermalisation=thermalisation, workers=workers, progress=progress)
            run = sampler.run(float(ti), seed=seed + i, keep=dsdt, init=None if init is None else init[i], **kw)
            series.append(run.positions[..., 0])
            seconds += run.sample_seconds + run.thermalisation_seconds
    # (chains, n) per node: the chains are the Gamma method's replica (one chain: its series alone)
    results = [gamma_method(s[0] if len(s) == 1 else s) for s in series]
    means = np.array([g.mean for g in results])
    errors = np.array([g.error for g in results])
    ratio = Estimate(float(-np.dot(weights, means)), float(np.sqrt(np.dot(weights**2, errors**2))))
    log_z = None
    if start == 0.0 and not _is_lattice_path(path):
        try:
            log_z = Estimate(gaussian_log_z(path) + ratio.value, ratio.error)
        except PikflowError:
            log_z = None
    return ThermodynamicIntegration(
        times=times,
        weights=weights,
        dsdt=tuple(results),
        log_z_ratio=ratio,
        delta_f=Estimate(-ratio.value, ratio.error),
        log_z=log_z,
        seconds=seconds,
    )
