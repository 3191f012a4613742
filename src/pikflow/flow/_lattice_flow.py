r"""The flow of a potential basis (lattice flows): its layers' coefficients, the RK4 push and sampling.

The layers are solved by :func:`pikflow.flow.solve_lattice`. The flow uses only the interface of
:class:`~pikflow.bases.AbstractPotentialBasis` (``gradient_and_laplacian``, ``fused``) and of the
path (``value``, ``field_shape``, ``lattice``, ``traced_parameters``); the lattice space
registers how its flows are saved (:func:`register_flow_format`) and what SMC makes of them.

Per layer (paper eq. 34 with the constant of the user guide)

.. math::  \sum_j a_j\,[\Delta - \partial\hat S_t\cdot\partial] T_j(\phi_c) - c_t
           = -\frac{d\hat S_t}{dt}(\phi_c)

is collocated on configurations :math:`\phi_c` (base samples pushed forward with the
layers already solved, so they follow :math:`p_t`) and solved by Lineax least squares
for :math:`(a, c_t)`. The flow :math:`\dot\phi = v_t = -\partial\Omega_t` (eqs. 11, 32)
is integrated with RK4; the layers sit at the RK4 stages (``2 steps + 1`` of them, as in
:mod:`pikflow.flow`). The log-density follows :math:`d\log q_t/dt = -\partial\cdot v_t
= \Delta\Omega_t` (continuous form, integrated with the same RK4 stages: exact up to
the :math:`O(\Delta t^4)` time-discretisation error; weights cannot correct an error in
:math:`\log q` itself, so :meth:`LatticeFlow.log_density_error` measures it and
``sample(..., logdet="exact")`` removes it).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from .._devices import device_count, replicate, replicated, sharded, split_rows
from .._errors import SamplingError
from ..bases import AbstractPotentialBasis
from ..progress import progress_bar
from ._compiled import PRECISIONS, push_fn, rk4_push, target_fn
from ._format import flow_io
from ._integrate import exact_log_det, zero_layer
from ._interface import AbstractFlow
from ._lattice_samples import LatticeSamples
from ._lattice_stream import check_sample_memory, reductions


@dataclasses.dataclass(frozen=True)
class LatticeLayerReport:
    """One layer's solve: time, relative residual, :math:`c_t`, wall time, dropped configurations, solver iterations."""

    t: float
    residual: float
    constant: float
    seconds: float
    dropped: int = 0
    iterations: int = 0


class LatticeFlow(AbstractFlow):
    r"""A solved lattice flow: the path, the basis, the base and one coefficient vector per layer.

    The interface of every space's flow (:class:`pikflow.flow.AbstractFlow`): ``sample(n,
    seed=...)``, :attr:`times`, :meth:`log_density`, :meth:`save`, :meth:`load`, ``summary()``.

    Attributes
    ----------
    coeffs : numpy.ndarray, shape ``(2 steps + 1, n_basis)``
        :math:`a_j` of :math:`\Omega_t = \sum_j a_j T_j` at every stage time.
    reports : list of LatticeLayerReport
        Per-layer residual :math:`\|A a - b\| / \|b - \bar b\|` and :math:`c_t`.
    """

    def __init__(self, path, basis, base, coeffs, steps, reports):
        self.path, self.basis, self.base = path, basis, base
        self.coeffs = np.asarray(coeffs)
        self.steps = int(steps)
        self.reports = list(reports)
        self.info: dict = {}
        #: target configurations for the hole check (:func:`fit_lattice` sets them; not saved)
        self.reference = None
        self._exact_fn = None
        self._reverse = None
        # one program per structure (lattice, families; _compiled.py) for these pushes and the solve's steps:
        # the constants are arguments
        self._push = push_fn(basis, steps)
        # sampling owns its base draws: their buffers are donated to the fused loop (no copies per batch)
        self._push_donated = push_fn(basis, steps, donate=True)
        self._target = target_fn(path, 1.0)

    @property
    def times(self) -> np.ndarray:
        """The stage times of the layers."""
        return np.linspace(0.0, 1.0, 2 * self.steps + 1)

    @property
    def evaluations_per_sample(self) -> int:
        """Velocity evaluations of one sample: 4 per RK4 step, less a zero first layer's (a clock t**p, p > 1),
        which the push does not evaluate."""
        return 4 * self.steps - int(zero_layer(self.coeffs, 0))

    @property
    def field_shape(self) -> tuple[int, ...]:
        """Shape of one configuration: the lattice, or ``(components, *lattice)``."""
        return tuple(self.path.field_shape)

    def layer_residuals(self) -> np.ndarray:
        """Every layer's relative residual of eq. 34 (:meth:`residuals`)."""
        return self.residuals()

    def summary(self) -> dict:
        """The flow's headline numbers (:meth:`AbstractFlow.summary`) and the solve's wall time."""
        return {**super().summary(), "solve_seconds": float(sum(r.seconds for r in self.reports))}

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.path.lattice.shape))
        return f"LatticeFlow({shape}, components={self.path.action.n}, steps={self.steps}, n_basis={self.basis.n})"

    def velocity(self, layer: int, fields):
        r""":math:`v = -\partial\Omega` of layer ``layer`` at a batch of configurations."""
        a = jnp.asarray(self.coeffs[layer])
        return -jax.vmap(self.basis.gradient_and_laplacian, (None, 0))(a, fields)[0]

    def push(self, fields, log_q):
        """Push a batch of base samples through every step: final configurations and log-densities."""
        return self._push(jnp.asarray(self.coeffs), fields, log_q)

    def sample(
        self,
        *args,
        n: int | None = None,
        seed: int | None = None,
        batch: int = 1000,
        logdet: str = "continuous",
        progress: bool = False,
        keep_fields: bool = True,
        precision: str = "float64",
        batch_size: int | None = None,
    ) -> LatticeSamples:
        r"""``n`` samples of the flow with log importance weights :math:`\log w = -\hat S_1 - \log q_1`.

        Called as ``sample(n, seed=0)``, the signature of :meth:`pikflow.Flow.sample` (the key is
        ``jax.random.PRNGKey(seed)``), or as ``sample(key, n)`` with a JAX key.

        Parameters
        ----------
        n, seed
            Number of samples and seed (default 0); or a PRNG key and ``n`` as two positional arguments.
        batch, batch_size
            Samples per compiled call (``logdet="exact"``: at most :math:`2^{16}/V`); ``batch_size``
            is the name every space's ``sample`` takes (:class:`pikflow.flow.AbstractFlow`), give one of them.
        logdet
            ``"continuous"`` (default): :math:`\log q_1` from :math:`d\log q/dt = \Delta\Omega_t`
            integrated on the RK4 stages (cheap; it differs from the density of the applied
            RK4 map by :math:`O(\Delta t^4)`, typically :math:`10^{-4}`, but more for samples
            where the velocity is stiff: check with :meth:`log_density_error`).
            ``"exact"``: :math:`\log q_1 = \log q_0 - \log|\det\partial x_1/\partial x_0|`
            of the applied map by forward-mode autodiff (exact weights; :math:`V` times the cost).
        progress
            Show a progress bar.
        keep_fields
            Keep every configuration (``n`` x volume float64). ``False``: each batch is reduced
            as it is drawn to what the lattice estimates need (per sample the magnetisation,
            the two-point series :math:`C(r)` and whether the configuration is finite), so
            memory is one batch plus :math:`O(n L)`, whatever the volume.
        precision
            ``"float64"`` (default) or ``"float32"``: the velocity :math:`-\partial\Omega_t` and the
            divergence :math:`\Delta\Omega_t` evaluated in float32 (the pointwise powers and the
            transforms), the RK4 state, :math:`\log q` and the weights accumulated in float64
            (``logdet="continuous"`` only). What is exact: the configurations are those of the map
            actually applied (RK4 with float32 velocities), and :math:`-\hat S_1` is evaluated on them
            in float64. What is not: :math:`\log q_1` is the continuous integral of the float32
            :math:`\Delta\Omega_t`, an approximation of the applied map's log-density, exactly as in
            float64 (:math:`O(\Delta t^4)`, plus float32 rounding of each evaluation); the weights
            correct the flow's sampling error, not that approximation. Compare ``samples.ess()`` and
            the estimates with a float64 run before relying on it.
        """
        key, n, seed = _key_and_count(args, n, seed)
        if batch_size is not None:
            if batch != 1000:
                raise SamplingError("give batch or batch_size (the same setting), not both")
            batch = batch_size
        if not isinstance(logdet, str) or logdet not in ("continuous", "exact"):
            raise SamplingError(f"logdet must be 'continuous' or 'exact', got {logdet!r}")
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch <= 0:
            raise SamplingError(f"batch must be a positive integer, got {batch!r}")
        if not isinstance(precision, str) or precision not in PRECISIONS:
            raise SamplingError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        if precision != "float64" and (logdet != "continuous" or device_count() > 1):
            raise SamplingError(
                "precision='float32' is for logdet='continuous' on one device: the exact log-determinant and the "
                "sharded push evaluate in float64"
            )
        push = self._push_donated if precision == "float64" else self._push_low(precision)
        field_shape = tuple(self.path.field_shape)  # the lattice, or (components, *lattice)
        components = self.path.action.n
        if logdet == "exact":
            batch = max(1, min(batch, 2**16 // math.prod(field_shape)))
        check_sample_memory(self.path.lattice.shape, n, min(batch, n), keep_fields, components=components)
        fields = np.empty((n, *field_shape)) if keep_fields else None  # filled batch by batch
        logw, reduced, controls = [], [], []
        bar = progress_bar(total=n, desc="sampling", disable=not progress)
        for i, start in enumerate(range(0, n, batch)):
            m = min(batch, n - start)
            x0, lq0 = self.base.sample(jax.random.fold_in(key, i), m)
            if components == 1:  # the base draws' control variates (LatticeSamples.observable(..., controls=True))
                controls.append(np.asarray(self.base.control_values(x0)))
            if logdet == "exact":
                x1, ld = self._exact(jnp.asarray(self.coeffs), x0)
                lq1 = lq0 - ld
            elif device_count() > 1:  # chunks of PUSH_BATCH per device, split over the sample mesh
                x1, lq1 = _in_chunks(*self._sharded_push(), x0, lq0, size=PUSH_BATCH * device_count(), pad=True)
            else:
                x1, lq1 = _in_chunks(push, jnp.asarray(self.coeffs), x0, lq0, size=push_batch(self.basis))
            logw.append(np.asarray(-self._target(x1) - lq1))
            if keep_fields:
                fields[start : start + m] = np.asarray(x1)
            else:  # reduced now: the batch's configurations are freed before the next one is drawn
                reduced.append(reductions(np.asarray(x1), components))
            del x0, lq0, x1, lq1
            bar.update(m)
        bar.close()
        base = {"base_controls": np.concatenate(controls), "base_law": self.base.control_law()} if controls else {}
        if keep_fields:
            return LatticeSamples(fields, np.concatenate(logw), components=components, seed=seed, **base)
        finite, mag, two = (np.concatenate(r) for r in zip(*reduced, strict=True))
        return LatticeSamples(
            None,
            np.concatenate(logw),
            fields_finite=finite,
            magnetisation_values=mag,
            two_point_values=two,
            lattice_shape=tuple(self.path.lattice.shape),
            components=components,
            seed=seed,
            **base,
        )

    def _push_low(self, precision: str):
        """The donated push with the evaluation in ``precision`` (compiled once per structure)."""
        return push_fn(self.basis, self.steps, donate=True, precision=precision)

    def _sharded_push(self):
        """The push compiled for the sample mesh (samples split, coefficients and outputs replicated)."""
        if getattr(self, "_sharded", None) is None or self._sharded[0] != device_count():
            fn = jax.jit(
                _make_push(self.basis, self.steps),
                in_shardings=(replicated(), sharded(), sharded()),
                out_shardings=(replicated(), replicated()),
            )
            self._sharded = (device_count(), fn, replicate(jnp.asarray(self.coeffs)))
        return self._sharded[1:]

    @property
    def _exact(self):
        if self._exact_fn is None:
            push = _make_push(self.basis, self.steps)

            def one(coeffs, x):
                f = lambda y: push(coeffs, y[None], jnp.zeros(1))[0][0]  # noqa: E731
                return f(x), exact_log_det(f, x)

            self._exact_fn = jax.jit(jax.vmap(one, (None, 0)))
        return self._exact_fn

    def log_density_error(self, key, n: int = 16) -> np.ndarray:
        r"""Continuous minus exact :math:`\log q_1` on ``n`` fresh samples (see :meth:`sample`'s ``logdet``).

        Importance weights and the IMH step correct the flow's *sampling* error, not an error
        in :math:`\log q` itself: a difference :math:`\epsilon(\phi)` biases estimates by
        about :math:`\langle\epsilon\rangle`-weighted amounts. Use this check; where it is not
        negligible against the statistical errors, sample with ``logdet="exact"`` or more steps.
        """
        x0, lq0 = self.base.sample(key, n)
        _, cont = self.push(x0, lq0)
        _, ld = self._exact(jnp.asarray(self.coeffs), x0)
        return np.asarray(cont - (lq0 - ld))

    def log_density(self, fields, *, batch: int = 1000) -> np.ndarray:
        r""":math:`\log q_1` of the flow at given configurations (e.g. reference HMC samples), by the reverse flow.

        Integrates :math:`\dot\phi = v_t` backwards from :math:`t = 1` to :math:`0` with the
        same RK4 stages and accumulates :math:`\log q_1(\phi_1) = \log q_0(\phi_0) +
        \int_0^1\Delta\Omega_t(\phi_t)\,dt` (the continuous form of :meth:`sample`, accurate to
        :math:`O(\Delta t^4)`). With samples of the target this measures what forward samples
        cannot see: regions where :math:`q` is far below :math:`p` (holes), see :meth:`target_ess`.
        """
        x = jnp.asarray(fields, dtype=float)
        if x.shape[1:] != self.path.field_shape:
            raise SamplingError(f"configurations must have shape (n, {', '.join(map(str, self.path.field_shape))})")
        if self._reverse is None:
            self._reverse = push_fn(self.basis, self.steps, reverse=True)
        out = []
        for start in range(0, x.shape[0], batch):
            chunk = x[start : start + batch]
            lq0 = jnp.zeros(chunk.shape[0])
            x0, integral = _in_chunks(self._reverse, jnp.asarray(self.coeffs), chunk, lq0, size=push_batch(self.basis))
            out.append(np.asarray(self.base.log_prob(x0) + integral))
        return np.concatenate(out)

    def target_ess(self, target_fields, samples: LatticeSamples) -> float:
        r"""ESS/N estimated from samples of the target: :math:`\bar w_q / \bar w_p`, sensitive to holes in :math:`q`.

        For importance weights :math:`w = e^{-\hat S_1}/q`, :math:`E_q[w^2]/E_q[w]^2 = E_p[w]/Z` with
        :math:`Z = E_q[w]`, so ESS/N :math:`= E_q[w]/E_p[w]`. The usual estimate from flow samples
        (:meth:`LatticeSamples.ess`) never sees a region the flow misses; this one, from target
        samples ``target_fields`` (e.g. a reference HMC run) pulled back with :meth:`log_density`,
        does: a value far below ``samples.ess()`` means :math:`q` has a hole and estimates are biased.
        The rule of every space (:func:`pikflow.diagnostics.target_ess`): a target sample where
        :math:`q = 0` (weight :math:`+\infty`) gives 0, one the flow cannot pull back (``nan``) is left out.
        The value is also stored in ``samples.target_ess`` (its hole warning joins ``samples.warnings``).
        """
        from ..diagnostics import target_ess

        x = jnp.asarray(target_fields, dtype=float)
        log_wp = np.asarray(-self._target(x)) - self.log_density(x)
        samples.target_ess = target_ess(np.where(samples.finite, samples.log_w, -np.inf), log_wp)
        return samples.target_ess

    def residuals(self) -> np.ndarray:
        """The relative residual of every layer."""
        return np.array([r.residual for r in self.reports])

    def save(self, directory):
        """Write the flow into ``directory`` (``flow.json`` + ``arrays.npz``, see :func:`save_lattice_flow`)."""
        return flow_io(type(self))[0](self, directory)

    @classmethod
    def load(cls, directory) -> LatticeFlow:
        """Read a flow written by :meth:`save` (see :func:`load_lattice_flow`); same samples for the same key."""
        return flow_io(cls)[1](directory)


#: Above this largest :math:`|\log q_{\rm continuous} - \log q_{\rm exact}|` (:meth:`LatticeFlow.log_density_error`)
#: the weights are no longer those of the map applied: 10 RK4 steps on a uniform clock gave 0.047 at 16x16
#: (-2, 2), 5 steps 0.31, 3 steps 0.79. Lattice runs and the benchmarks warn above it.
UNRELIABLE_LOG_Q = 0.1

#: Configurations per compiled push call. The intermediates of one evaluation (every smoothing scale of
#: every configuration) must stay in cache: measured at 16x16 (2 shared cores) 4.2 / 4.4 / 10.8 / 22.2 ms
#: a sample for batches of 125 / 250 / 500 / 1000 (``pikflow bench lattice`` prints this scan).
PUSH_BATCH = 128
#: Lattice sites per push call (at most :data:`PUSH_BATCH` configurations): one evaluation's intermediates must
#: stay in cache. Measured, one fused evaluation of the lean basis (one process, microseconds per configuration):
#: 64x64 99-120 in batches of 16, 383-410 in 64-128; 128x128 474 in 4, 1640 in 32; 32x32 33-37 in 16-128.
#: A basis family whose terms take more cache says so by its own ``push_sites`` (the ridge terms,
#: :class:`pikflow.lattice.SmoothedRidges`: 2**15).
PUSH_SITES = 2**16


def push_batch(basis) -> int:
    """Configurations per compiled push call for ``basis``: :data:`PUSH_BATCH`, fewer on large lattices
    (:data:`PUSH_SITES` sites a call, or the smallest ``push_sites`` of the basis's families; at least one
    configuration)."""
    sites = min([PUSH_SITES] + [f.push_sites for f in getattr(basis, "families", ()) if hasattr(f, "push_sites")])
    return int(max(1, min(PUSH_BATCH, sites // int(basis.lattice.volume))))


def _key_and_count(args: tuple, n, seed):
    """``(key, n, seed)`` from ``sample(n, seed=...)``, ``sample(n=..., seed=...)``, or ``sample(key, n)`` (no seed)."""
    is_count = lambda x: isinstance(x, (int, np.integer)) and not isinstance(x, bool)  # noqa: E731
    if len(args) == 2 and n is None or len(args) == 1 and n is not None and not is_count(args[0]):
        key, n = args if n is None else (args[0], n)
        if seed is not None:
            raise SamplingError("give a PRNG key or a seed, not both: sample(n, seed=...) or sample(key, n)")
    elif len(args) == 1 and n is None or not args and n is not None:
        n = args[0] if args else n
        seed = 0 if seed is None else seed
        if not is_count(seed) or not 0 <= seed < 2**32:
            raise SamplingError(f"seed must be an integer in [0, 2**32), got {seed!r}")
        key = jax.random.PRNGKey(int(seed))
    else:
        raise SamplingError("call sample(n, seed=...) (or sample(key, n) with a JAX PRNG key)")
    if not is_count(n) or n <= 0:
        raise SamplingError(f"the number of samples must be a positive integer, got {n!r}")
    return key, int(n), None if seed is None else int(seed)


def _in_chunks(push, coeffs, x, lq, size: int = PUSH_BATCH, pad: bool = False):
    """``push(coeffs, x, lq)`` on chunks of ``size`` configurations (the last one padded with zeros: one shape).

    ``pad``: pad a single short chunk too, and split every chunk over the sample mesh
    (:func:`pikflow._devices.split_rows`).
    """
    n = x.shape[0]
    if n <= size and not pad:
        return push(coeffs, x, lq)
    outs = []
    for start in range(0, n, size):
        xc, lc = x[start : start + size], lq[start : start + size]
        m = xc.shape[0]
        if m < size:
            xc = jnp.concatenate([xc, jnp.zeros((size - m, *xc.shape[1:]), xc.dtype)])
            lc = jnp.concatenate([lc, jnp.zeros(size - m, lc.dtype)])
        if pad:
            xc, lc = split_rows(xc), split_rows(lc)
        xo, lo = push(coeffs, xc, lc)
        outs.append((xo[:m], lo[:m]))
    return jnp.concatenate([o[0] for o in outs]), jnp.concatenate([o[1] for o in outs])


def _make_push(basis: AbstractPotentialBasis, steps: int, reverse: bool = False, dt: float | None = None):
    """RK4 over the stage layers, adding the integral of ΔΩ to ``lq``; ``reverse``: from t = 1 back to 0.

    ``dt`` is the step (default ``1 / steps``: the whole path; the solve pushes one step of ``1 / steps``).

    Every RK4 stage is one fused evaluation (:meth:`~pikflow.bases.AbstractPotentialBasis.gradient_and_laplacian`: the
    velocity and the divergence from the same transforms), all steps in one ``lax.scan``. The
    basis's constants are baked into this closure; :func:`push_fn` passes them as
    arguments instead (one compilation for every basis of the same structure).
    """
    push = rk4_push(lambda p, a, x: basis.gradient_and_laplacian(a, x), steps, reverse, dt)
    return lambda coeffs, x, lq: push(None, coeffs, x, lq)
