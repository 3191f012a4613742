r"""Every device, on one host or several: the sample axis of a run sharded with :mod:`jax.sharding`.

Samples (and SMC particles) are independent, so the sampling stages spread them over all
devices along one mesh axis, ``"samples"``: a :class:`jax.sharding.Mesh` of every device of
every process (:func:`jax.devices`), arrays of samples laid out with
``NamedSharding(mesh, PartitionSpec("samples"))`` and the kernels replicated
(``PartitionSpec()``). The compiled call is the same on every device; its outputs are
gathered (replicated) so that every process holds the whole batch.

Reproducibility: the random numbers of a batch are drawn from the batch's key at the size of
the batch, independent of the device count (JAX's partitionable Threefry generator gives the
same bits whatever the sharding), and only then padded to a multiple of the device count
and split. Every per-sample computation is the same program on the same numbers, so a fixed
seed gives the same samples bit for bit on 1, 2 or 4 devices (tested); sums over samples
(the streamed estimates) are added in another order and agree within float64 rounding.

Several hosts: :func:`initialize` runs :func:`jax.distributed.initialize` (every process a
JAX controller; on CPU with the Gloo collectives); then :func:`jax.devices` lists the devices
of every process and the mesh spans them all.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._errors import PikflowError

#: name of the mesh axis along which samples and particles are split
SAMPLES = "samples"


def device_count() -> int:
    """Number of devices of every process (the size of the sample mesh)."""
    return jax.device_count()


def device_info() -> dict:
    """``{"count", "platform", "kind", "processes"}`` of the devices a run uses (for ``results.json``)."""
    devices = jax.devices()
    return {
        "count": len(devices),
        "platform": devices[0].platform,
        "kind": devices[0].device_kind,
        "processes": jax.process_count(),
    }


def run_info() -> dict:
    """``{"devices": {"count", "platform", "kind"}, "processes": n}``: the block ``results.json`` records."""
    info = device_info()
    return {"devices": {k: info[k] for k in ("count", "platform", "kind")}, "processes": info["processes"]}


@functools.cache
def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.array(devices), (SAMPLES,))


def sample_mesh() -> Mesh:
    """The one-axis mesh ``("samples",)`` over every device of every process."""
    return _mesh(tuple(jax.devices()))


def sharded() -> NamedSharding:
    """Arrays split along their first (sample) axis over :func:`sample_mesh`."""
    return NamedSharding(sample_mesh(), PartitionSpec(SAMPLES))


def replicated() -> NamedSharding:
    """Arrays held whole on every device of :func:`sample_mesh`."""
    return NamedSharding(sample_mesh(), PartitionSpec())


#: samples per device are a multiple of this: the compiled loops then run no scalar remainder (whose
#: elementwise functions may round differently from the vectorised body) whatever the device count
ALIGN = 64


def padded(m: int) -> int:
    """``m`` rounded up to a multiple of :data:`ALIGN` times the device count."""
    d = ALIGN * device_count()
    return -(-m // d) * d


def replicate(tree):
    """Every array leaf of ``tree`` as a global array replicated on :func:`sample_mesh` (no-op on one device).

    Works on several processes too, as long as every process passes the same values (the
    kernels of a flow, a PRNG key).
    """
    if device_count() == 1:
        return tree
    rep = replicated()

    def put(x):
        if isinstance(x, jax.Array) and x.sharding == rep:
            return x
        if isinstance(x, (jax.Array, np.ndarray)) or np.isscalar(x):
            if jax.process_count() == 1:
                return jax.device_put(x, rep)
            if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                data = np.asarray(jax.random.key_data(x))
                impl = jax.random.key_impl(x)
                return jax.random.wrap_key_data(_global(data, rep), impl=impl)
            return _global(np.asarray(x), rep)
        return x

    return jax.tree.map(put, tree)


def _global(x: np.ndarray, sharding: NamedSharding):
    """A global array of the host value ``x`` (the same on every process) laid out by ``sharding``."""
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def split_rows(x):
    """A host or device array ``(m, ...)``, ``m`` a multiple of the device count, split along axis 0."""
    if device_count() == 1:
        return x
    if jax.process_count() == 1:
        return jax.device_put(x, sharded())
    return _global(np.asarray(x), sharded())


def constrain_rows(tree, m: int, axis: int = 0):
    """Inside ``jit``: pad every leaf's sample ``axis`` from ``m`` to :func:`padded` ``(m)`` and split it over the mesh.

    The padding repeats the first sample (finite, so no NaN is made); the caller drops it
    with :func:`gather_rows`. On one device the padding alone (the same per-device shapes).
    """
    pad = padded(m) - m
    spec = NamedSharding(sample_mesh(), PartitionSpec(*([None] * axis), SAMPLES)) if device_count() > 1 else None

    def one(x):
        if pad:
            first = jax.lax.slice_in_dim(x, 0, 1, axis=axis)
            x = jnp.concatenate([x, jnp.repeat(first, pad, axis=axis)], axis=axis)
        return x if spec is None else jax.lax.with_sharding_constraint(x, spec)

    return jax.tree.map(one, tree)


def gather_rows(tree, m: int, axis: int = 0):
    """Inside ``jit``: the first ``m`` entries along ``axis`` of every leaf, replicated on every device."""
    if device_count() == 1:
        return jax.tree.map(lambda x: jax.lax.slice_in_dim(x, 0, m, axis=axis), tree)
    rep = replicated()
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(jax.lax.slice_in_dim(x, 0, m, axis=axis), rep), tree)


def particle_axis_sharded(n: int) -> bool:
    """Whether SMC states of ``n`` particles per replica are split over the devices (``n`` a multiple of them)."""
    return device_count() > 1 and n % device_count() == 0


def constrain_particles(tree, n: int, axis: int = 1):
    """Inside ``jit``: split every leaf with a particle ``axis`` of length ``n`` over the mesh (SMC states).

    SMC states are ``(replicas, n, ...)``: the particles of a replica are split along the
    mesh axis ``"samples"`` and XLA (GSPMD) inserts the collectives that resampling and the
    weight sums need. Leaves without that axis (per-replica step sizes) are replicated. A no-op
    on one device or when ``n`` is not a multiple of the device count (then every device
    holds the whole state, as on one device).
    """
    if not particle_axis_sharded(n):
        return tree
    mesh = sample_mesh()

    def one(x):
        if x.ndim > axis and x.shape[axis] == n:
            spec = PartitionSpec(*([None] * axis), SAMPLES)
        else:
            spec = PartitionSpec()
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))

    return jax.tree.map(one, tree)


def replicate_particles(tree, n: int):
    """Inside ``jit``: every leaf held whole on every device (what each process reads), if the particles are split."""
    if not particle_axis_sharded(n):
        return tree
    rep = replicated()
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, rep), tree)


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None):
    """Join a multi-process run: :func:`jax.distributed.initialize`, every process a JAX controller.

    ``coordinator`` is ``HOST:PORT`` of process 0; without arguments JAX reads the standard
    environment (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``, or a
    SLURM / Open MPI allocation). On CPU the collectives go through Gloo. Returns the
    :func:`device_info`.
    """
    if num_processes is not None and (isinstance(num_processes, bool) or int(num_processes) < 1):
        raise PikflowError(f"--num-processes must be a positive integer, got {num_processes!r}")
    if process_id is not None and num_processes is not None and not 0 <= int(process_id) < int(num_processes):
        raise PikflowError(f"--process-id must be in [0, {num_processes}), got {process_id!r}")
    if coordinator is not None and (":" not in coordinator or not coordinator.rsplit(":", 1)[1].isdigit()):
        raise PikflowError(f"--coordinator must be HOST:PORT (e.g. 10.0.0.1:1234), got {coordinator!r}")
    platforms = os.environ.get("JAX_PLATFORMS", "") or jax.config.jax_platforms or ""
    if platforms in ("", "cpu") or "cpu" in platforms.split(","):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id)
    except (RuntimeError, ValueError) as err:
        raise PikflowError(
            f"cannot join the multi-process run ({type(err).__name__}: {err}); check --coordinator HOST:PORT "
            "(reachable from every process, the same everywhere), --num-processes and a distinct --process-id "
            "per process"
        ) from None
    return device_info()


def is_main_process() -> bool:
    """Whether this process writes the output (process 0)."""
    return jax.process_index() == 0
