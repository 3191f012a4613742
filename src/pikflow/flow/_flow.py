r"""A solved flow: the time grid, one kernel per layer, sampling, save and load."""

from __future__ import annotations

import dataclasses
import pathlib
import time as _time
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._devices import constrain_rows, gather_rows, replicate
from .._errors import FlowFileError, SamplingError
from .._memory import available_memory
from .._version import __version__
from ..equations import AbstractKernel, kernel_skeleton
from ._base import GaussianBase
from ._format import read_flow_directory, register_flow_format, write_flow_directory
from ._integrate import LOGDETS, push
from ._interface import AbstractFlow

#: sampling methods of :meth:`Flow.sample`.
METHODS = ("table", "rk4")


@dataclasses.dataclass(frozen=True)
class LayerReport:
    r"""What the solve of one layer reports: every kernel comes with its residual (eq. 27).

    ``residual_rms`` is over the pushed samples (where the layer's probability is),
    ``residual_max`` and ``worst_phi`` over all collocation points (tails included),
    ``rhs_rms`` the size of :math:`d\hat S_t/dt - d\hat S_t/dt(\chi)` for scale.
    """

    t: float
    residual_rms: float
    residual_max: float
    worst_phi: tuple[float, ...]
    rhs_rms: float
    radius: float
    n_points: int
    constant: float | None = None

    @classmethod
    def from_stats(cls, t, stats, n_points) -> LayerReport:
        """The report of the layer at ``t`` from the statistics its jitted solve returns."""
        c = float(stats["constant"])
        return cls(
            t=float(t),
            residual_rms=float(stats["residual_rms"]),
            residual_max=float(stats["residual_max"]),
            worst_phi=tuple(float(x) for x in np.atleast_1d(stats["worst_phi"])),
            rhs_rms=float(stats["rhs_rms"]),
            radius=float(stats["radius"]),
            n_points=int(n_points),
            constant=None if np.isnan(c) else c,
        )


class Flow(AbstractFlow):
    r"""A solved PIK flow: kernels at the ``2 * steps + 1`` RK4 stage times of ``path``.

    Made by :func:`pikflow.solve`; sample with :meth:`sample`, store with :meth:`save`. The
    interface of every space's flow (:class:`pikflow.flow.AbstractFlow`).

    Attributes
    ----------
    path, equation, base, steps
        The path, its kernel equation (with the basis), the Gaussian base and the RK4 steps.
    kernels
        The stacked kernels (:class:`~pikflow.flow.LinearKernel`, leading layer axis).
    reports
        One :class:`LayerReport` per layer.
    """

    def __init__(
        self,
        *,
        path,
        equation,
        base: GaussianBase,
        kernels: AbstractKernel,
        steps: int,
        reports,
        settings,
        solve_seconds,
    ):
        self.path, self.equation, self.base, self.kernels = path, equation, base, kernels
        self.steps, self.reports, self.settings = steps, list(reports), dict(settings)
        self.solve_seconds = float(solve_seconds)
        self._table = None
        #: :class:`~pikflow.flow.TableInfo` of the last table used by :meth:`sample` (None before).
        self.table_info = None

    @property
    def times(self) -> np.ndarray:
        """The layer (kernel) times."""
        return np.arange(2 * self.steps + 1) / (2 * self.steps)

    @property
    def n_fields(self) -> int:
        """Number of real field components."""
        return self.path.n_fields

    @property
    def field_shape(self) -> tuple[int, ...]:
        """Shape of one configuration, ``(n_fields,)``."""
        return (self.n_fields,)

    def layer_residuals(self) -> np.ndarray:
        """Every layer's RMS residual of eq. 27 over its pushed samples (:attr:`LayerReport.residual_rms`)."""
        return np.array([r.residual_rms for r in self.reports], dtype=float)

    def layer_index(self, t: float) -> int:
        """Index of the layer at time ``t`` (must be one of :attr:`times`)."""
        i = int(round(float(t) * 2 * self.steps))
        if not (0 <= i <= 2 * self.steps) or abs(self.times[i] - t) > 1e-9:
            raise SamplingError(f"t = {t} is not a layer time of this flow: use a multiple of 1/{2 * self.steps}")
        return i

    def kernel(self, t: float) -> AbstractKernel:
        """The kernel of the layer at time ``t``."""
        return self.kernels.layer(self.layer_index(t))

    def velocity(self, phi, t: float) -> np.ndarray:
        """The velocity :math:`v_t` at configurations ``phi`` of shape ``(n, n_fields)`` (or ``(n,)`` for one field)."""
        pts = _as_points(phi, self.n_fields)
        out = np.asarray(jax.vmap(self.kernel(t))(jnp.asarray(pts)))
        return out[:, 0] if np.ndim(phi) == 1 and self.n_fields == 1 else out

    def residual(self, phi, t: float) -> np.ndarray:
        r"""The residual :math:`r_\chi(\phi)` of eq. 27 of the layer at ``t``, anywhere."""
        k = self.kernel(t)
        pts = jnp.asarray(_as_points(phi, self.n_fields))
        return np.asarray(self.equation.residual(k, k.divergence, pts, jnp.asarray(float(t))))

    def sample(
        self,
        n: int,
        *,
        seed: int = 0,
        method: str = "auto",
        logdet: str = "auto",
        keep_layers: bool = True,
        batch_size: int | None = None,
        table_nodes: int = 8192,
        progress: bool = True,
    ):
        r"""Draw ``n`` samples of the flow with their exact log-density (returns :class:`~pikflow.Samples`).

        Parameters
        ----------
        n
            Number of samples.
        seed
            Seed: the same seed gives the same samples (on the same platform), on any number
            of devices and processes (the batches are split over all of them along the sample
            axis, :mod:`pikflow._devices`; configurations bit for bit, log-weights within
            float64 rounding).
        method
            ``"table"``: the tabulated monotone map of a one-component flow
            (:mod:`pikflow.flow._tabulated`), or the tabulated radial map of an
            :math:`O(N)` flow with a radial kernel (:mod:`pikflow.flow._radial`); one table
            look-up per sample, exact weights for the map applied. ``"rk4"``: push base
            samples through the RK4 steps (eq. 11). ``"auto"`` (default): the table for one
            field component or a radial :math:`O(N)` flow (unless a ``logdet`` is asked
            for), RK4 otherwise.
        logdet
            For ``"rk4"``: ``"exact"`` (log-Jacobian of the discrete RK4 map, exact
            weights), ``"continuous"`` (:math:`d\log q/dt = -\partial\cdot v`), or
            ``"auto"`` (exact for up to 8 field components).
        keep_layers
            Keep the configurations of every step time (observables along t).
        batch_size
            Samples per compiled call (bounds memory); default: :math:`2^{20}` for the
            table (fewer when every step time is kept for several components, so that a
            batch holds at most :math:`2^{23}` numbers), and for RK4 (exact log-Jacobian)
            :math:`2^{16}` divided by the number of field components squared.
        table_nodes
            Grid nodes of the table (its interpolation error moves only the ESS, never
            the exactness of the weights).
        """
        from ..progress import progress_bar
        from ._samples import Samples

        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise SamplingError(f"n must be a positive integer, got {n!r}")
        method, logdet = self._resolve(method, logdet)
        sampler = {"method": method, "logdet": logdet, "table_nodes": table_nodes}
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
            raise SamplingError(f"seed must be an integer in [0, 2**32), got {seed!r}")
        if isinstance(table_nodes, bool) or not isinstance(table_nodes, (int, np.integer)) or table_nodes < 2:
            raise SamplingError(f"table_nodes must be an integer >= 2, got {table_nodes!r}")
        need = 8.0 * n * self.n_fields * ((self.steps + 1) if keep_layers else 3) + 8.0 * table_nodes * (self.steps + 1)
        if need > available_memory():
            raise SamplingError(
                f"{n} samples (x {self.steps + 1} layers kept: {keep_layers}) and {table_nodes} table nodes need "
                f"{need / 2**30:.3g} GiB, more than the memory available: draw fewer (in several calls)"
            )
        if batch_size is None:
            batch_size = self._default_batch(method, logdet, keep_layers)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise SamplingError(f"batch_size must be a positive integer, got {batch_size!r}")
        start = _time.perf_counter()
        if method == "table":
            table, self.table_info = self.table(table_nodes)
            fn = self._table_fn(keep_layers)
            args = (table,)
            key = jax.random.key(seed, impl="rbg")
            logdet = "table"
        else:
            fn = self._push_fn(logdet)
            args = (self.kernels,)
            key = jax.random.PRNGKey(seed)
        args, key = replicate((args, key))  # on every device (and process) of the sample mesh
        n_kept = self.steps + 1 if keep_layers else 1
        phi = np.empty((n_kept, n, self.n_fields))  # filled batch by batch: no copies of the whole output
        log_q, log_w = np.empty((n_kept, n)), np.empty((n_kept, n))
        n_batches = -(-n // batch_size)
        bar = progress_bar(total=n, desc="sampling", disable=not progress or n_batches < 2)
        for b in range(n_batches):
            m, lo = min(batch_size, n - b * batch_size), b * batch_size
            phi_b, lq_b, lw_b = fn(*args, jax.random.fold_in(key, b), m)
            phi[:, lo : lo + m] = np.asarray(phi_b)[-n_kept:]
            log_q[:, lo : lo + m] = np.asarray(lq_b)[-n_kept:]
            log_w[:, lo : lo + m] = np.asarray(lw_b)[-n_kept:]
            del phi_b, lq_b, lw_b
            bar.update(m)
        bar.close()
        seconds = _time.perf_counter() - start
        times = self.step_times
        return Samples(
            times=times,
            phi=phi,
            log_q=log_q,
            log_w=log_w,
            fields=self.path.fields,
            logdet=logdet,
            seed=seed,
            sample_seconds=seconds,
            layers_kept=keep_layers,
            sampler=sampler,
        )

    @property
    def step_times(self) -> np.ndarray:
        r"""The step times as times of the path given to :func:`~pikflow.solve`.

        With a reparametrised clock (``schedule``: :math:`\tau = s^p`) the flow's steps are
        equally spaced in :math:`s`; these are the given path's times :math:`s^p` of every
        step, so :meth:`Samples.observable` and the path estimates are indexed by the time
        the user wrote the path in.
        """
        s = np.arange(self.steps + 1) / self.steps
        return s ** float(self.settings.get("time_power", 1.0))

    def log_density(self, phi, *, method: str = "auto", logdet: str = "auto", table_nodes: int = 8192):
        r""":math:`\log q_1(\phi)` of the sampler at any configurations ``phi`` ``(n, n_fields)`` (flow run backwards).

        ``method``/``logdet``/``table_nodes`` as in :meth:`sample`: the density is exactly the
        one of the map that :meth:`sample` applies with the same options (the table is
        inverted by bisection, each RK4 step by Newton's method; see
        :mod:`pikflow.flow._reverse`). ``-inf`` where the sampler puts no probability, ``nan``
        where the RK4 map cannot be inverted (it folds). For a radial (O(N)) table the density is
        that of the RK4 map with the exact log-Jacobian, which the table interpolates to about
        :math:`10^{-12}`.
        """
        from ._reverse import rk4_log_density, table_log_density

        method, logdet = self._resolve(method, logdet)
        if method == "table" and self.n_fields > 1:  # the radial table: its RK4 map (they agree to ~1e-12)
            method, logdet = "rk4", "exact"
        pts = jnp.asarray(_as_points(phi, self.n_fields))
        if method == "table":
            table, _ = self.table(table_nodes)
            return np.asarray(jax.jit(table_log_density)(table, pts[:, 0]))
        key = ("reverse", logdet, self.steps)
        if key not in self.equation.cache:
            steps = self.steps
            self.equation.cache[key] = eqx.filter_jit(
                lambda kernels, base, x: rk4_log_density(kernels, base, x, steps=steps, logdet=logdet)
            )
        out = [
            np.asarray(self.equation.cache[key](self.kernels, self.base, pts[i : i + 65536]))
            for i in range(0, len(pts), 65536)
        ]
        return np.concatenate(out)

    def _resolve(self, method: str, logdet: str) -> tuple[str, str]:
        if not isinstance(method, str) or not isinstance(logdet, str):
            raise SamplingError(f"method and logdet must be strings, got {method!r} and {logdet!r}")
        if method == "auto":
            method = "table" if logdet == "auto" and (self.n_fields == 1 or self._radial()) else "rk4"
        if method not in METHODS:
            raise SamplingError(f"method must be 'auto' or one of {METHODS}, got {method!r}")
        if logdet == "auto":
            logdet = "exact" if self.n_fields <= 8 else "continuous"
        if logdet not in LOGDETS:
            raise SamplingError(f"logdet must be 'auto' or one of {LOGDETS}, got {logdet!r}")
        return method, logdet

    def path_estimates(self, observables, n: int, **kwargs):
        """Observables, ESS/N and log Z at every step time, streamed without storing samples.

        See :func:`pikflow.flow.path_estimates` (parameter-conditional sampling, Fig. 8).
        """
        from ._streaming import path_estimates

        return path_estimates(self, observables, n, **kwargs)

    def table(self, n_nodes: int = 8192):
        """The tabulated map and its :class:`~pikflow.flow.TableInfo` (cached).

        A :class:`~pikflow.flow.TabulatedMap` for one field component, a
        :class:`~pikflow.flow.RadialMap` for several (an :math:`O(N)` flow with a radial kernel).
        """
        from ._radial import tabulate_radial
        from ._tabulated import tabulate

        if self._table is None or self._table[0] is not self.kernels or self._table[2].n_nodes != n_nodes:
            build = tabulate if self.n_fields == 1 else tabulate_radial
            self._table = (self.kernels, *build(self, n_nodes))  # rebuilt when the kernels are replaced
        return self._table[1:]

    def _radial(self) -> bool:
        """Whether the radial table applies by construction (:func:`pikflow.flow._radial.is_radial`)."""
        from ._radial import is_radial

        return is_radial(self)

    def _default_batch(self, method: str, logdet: str, keep_layers: bool) -> int:
        """Samples per compiled call: bounded memory per call, whatever the number of components."""
        if method == "table":
            per_sample = (self.steps + 1 if keep_layers else 1) * (self.n_fields + 2)
            return max(1 << 12, min(1 << 20, (1 << 23) // per_sample)) if self.n_fields > 1 else 1 << 20
        return max(1 << 10, (1 << 16) // self.n_fields**2) if logdet == "exact" else 1 << 16

    def _table_fn(self, keep_layers: bool):
        key = ("table-sample", keep_layers, self.steps, self.n_fields)
        if key not in self.equation.cache:
            steps, action = self.steps, self.equation.action_fn
            times = jnp.arange(steps + 1) / steps if keep_layers else jnp.ones(1)

            radial = self.n_fields > 1  # the radial table gives the field axis itself

            @eqx.filter_jit
            def jitted(table, key, m):
                phi, lq = table.sample(key, m, all_times=keep_layers)
                phi, lq = constrain_rows((phi, lq), m, axis=int(keep_layers))  # split over the devices
                pts = phi if radial else phi[..., None]
                if keep_layers:
                    s = jax.vmap(lambda p, tt: jax.vmap(action, in_axes=(0, None))(p, tt))(pts, times)
                else:
                    s = jax.vmap(action, in_axes=(0, None))(pts, 1.0)
                return gather_rows((phi, lq, -s - lq), m, axis=int(keep_layers))

            def fn(table, key, m):  # numpy (times, m, fields), (times, m), (times, m): axes added outside jit
                phi, lq, lw = (np.asarray(a) for a in jitted(table, key, m))
                if not radial:
                    phi = phi[..., None]
                if keep_layers:
                    return phi, lq, lw
                return phi[None], lq[None], lw[None]

            fn.jitted = jitted  # configurations without the field axis, for fused consumers (path_estimates)
            self.equation.cache[key] = fn
        return self.equation.cache[key]

    def _push_fn(self, logdet: str):
        key = ("push", logdet, self.steps)
        if key not in self.equation.cache:
            steps, base, action = self.steps, self.base, self.equation.action_fn
            times = jnp.arange(steps + 1) / steps

            @eqx.filter_jit
            def fn(kernels, key, m):
                phi0, lq0 = constrain_rows(base.sample(key, m), m)  # drawn whole, then split over the devices
                phis, lqs = push(kernels, phi0, lq0, steps=steps, logdet=logdet)
                s = jax.vmap(lambda ps, tt: jax.vmap(action, in_axes=(0, None))(ps, tt))(phis, times)
                return gather_rows((phis, lqs, -s - lqs), m, axis=1)

            self.equation.cache[key] = fn
        return self.equation.cache[key]

    # ------------------------------------------------------------------ save / load
    def save(self, directory: str | pathlib.Path) -> pathlib.Path:
        """Write the flow in pikflow's one save format (:mod:`pikflow.flow._format`, version 2).

        ``flow.json`` holds the path, the basis and solver settings, the kernel spec and the
        per-layer reports; ``arrays.npz`` the kernel's arrays (``kernel/0``, ``kernel/1``,
        ... in the kernel's leaf order, every layer stacked); ``manifest.json`` their SHA-256,
        verified by :meth:`load`. The directory is written atomically (a temporary sibling
        renamed into place, see :mod:`pikflow._atomic`): a kill leaves the previous flow or
        none, never a mixture. An unwritable directory or a full disk raises
        :class:`FlowFileError`.
        """
        meta = {
            "path": self.path.spec(),
            "settings": self.settings,
            "n_basis": self.equation.n_basis,
            "kernel": self.kernels.to_spec(),
            "solve_seconds": self.solve_seconds,
            "reports": [dataclasses.asdict(r) for r in self.reports],
        }
        leaves = jax.tree.leaves(self.kernels)
        arrays = {f"kernel/{i}": np.asarray(x) for i, x in enumerate(leaves)}
        return write_flow_directory(directory, "zero-dim", meta, arrays)

    @classmethod
    def load(cls, directory: str | pathlib.Path) -> Flow:
        """Read a 0-D flow written by :meth:`save` (or version 1: ``kernels.eqx``); any space: :func:`pikflow.load`."""
        from ..action import Path
        from ..bases import basis_from_spec
        from ..equations import WegnerEquation

        how = "pikflow run CONFIG, or pikflow.solve and Flow.save"
        meta, arrays = read_flow_directory(directory, "zero-dim", "a 0-D pikflow.Flow", how)
        d = pathlib.Path(directory)
        try:
            path = Path.from_spec(meta["path"])
            settings = meta["settings"]
            eq = WegnerEquation(path, basis_from_spec(settings["basis"]), form=settings["form"])
            steps = int(settings["steps"])
            spec = meta.get("kernel", {"kind": "linear", "shape": [2 * steps + 1, eq.n_basis]})
            skeleton = kernel_skeleton(spec, eq)
            kernels = _read_kernels(d, skeleton, meta) if arrays is None else _kernels_from(arrays, skeleton)
            layers = {x.shape[0] for x in jax.tree.leaves(eqx.filter(kernels, eqx.is_array))}
            if layers != {2 * steps + 1}:
                raise ValueError(f"kernels for {sorted(layers)} layers, but steps = {steps} needs {2 * steps + 1}")
            reports = [LayerReport(**{**r, "worst_phi": tuple(r["worst_phi"])}) for r in meta["reports"]]
            mean, precision = path.gaussian_base()
            solve_seconds = float(meta.get("solve_seconds", float("nan")))
        except FlowFileError:
            raise
        except Exception as err:  # JSON, missing keys, shape mismatch, truncated file...
            raise FlowFileError(
                f"cannot read the flow in {d}: {type(err).__name__}: {err}. The files are damaged, incomplete or "
                f"from another pikflow version: solve the flow again ({how})"
            ) from None
        return cls(
            path=path,
            equation=eq,
            base=GaussianBase(mean, precision),
            kernels=kernels,
            steps=steps,
            reports=reports,
            settings=settings,
            solve_seconds=solve_seconds,
        )

    def __repr__(self) -> str:
        kind = self.settings["basis"]["kind"]
        power = self.settings.get("time_power", 1.0)
        clock = f", time_power={power:g}" if power != 1.0 else ""
        return f"Flow({self.path!r}, steps={self.steps}, basis={kind}, n_basis={self.equation.n_basis}{clock})"


register_flow_format("zero-dim", Flow.load)


def _as_points(phi, n_fields: int) -> np.ndarray:
    a = np.asarray(phi, dtype=float)
    if a.ndim == 1 and n_fields == 1:
        a = a[:, None]
    if a.ndim == 1 and a.shape[0] == n_fields:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != n_fields:
        raise SamplingError(f"configurations must have shape (n, {n_fields}), got {np.shape(phi)}")
    return a


def _kernels_from(arrays: Mapping[str, np.ndarray], skeleton):
    """The kernel of ``skeleton``'s structure with the leaves ``kernel/0, kernel/1, ...`` of ``arrays``."""
    leaves, treedef = jax.tree.flatten(skeleton)
    if len(arrays) != len(leaves) or any(f"kernel/{i}" not in arrays for i in range(len(leaves))):
        raise ValueError(f"arrays.npz holds {sorted(arrays)}, but the kernel has {len(leaves)} arrays")
    out = []
    for i, like in enumerate(leaves):
        x = arrays[f"kernel/{i}"]
        if np.shape(x) != np.shape(like):
            raise ValueError(f"kernel array {i} has shape {np.shape(x)}, the kernel needs {np.shape(like)}")
        out.append(type(like)(x.item()) if isinstance(like, (bool, int, float, complex)) else jnp.asarray(x))
    return jax.tree.unflatten(treedef, out)


def _read_kernels(d: pathlib.Path, skeleton, meta: Mapping):
    """Version 1: ``kernels.eqx`` deserialised into ``skeleton``, or a :class:`FlowFileError` saying what to do."""
    try:
        return eqx.tree_deserialise_leaves(d / "kernels.eqx", skeleton)
    except Exception as err:  # truncated (EOF), bit-flipped, or written for another kernel shape
        written = meta.get("pikflow_version", "an unknown version")
        raise FlowFileError(
            f"cannot read the flow in {d}: {d / 'kernels.eqx'} is corrupt or truncated, or comes from another "
            f"pikflow version (flow.json says it was written by pikflow {written}; this is {__version__}): its "
            f"arrays do not fit the kernels flow.json describes ({type(err).__name__}). Solve the flow again "
            "(pikflow run CONFIG, or pikflow.solve and Flow.save), or load it with the version that wrote it"
        ) from None
