r"""Embedded Swendsen-Wang cluster moves (Brower & Tamayo, PRL 62, 1087 (1989)) for lattice SMC.

For an action :math:`\hat S = \sum_x v_t(\phi_x) - J\sum_{x,\mu}\phi_x\phi_{x+\mu}` with every site term
:math:`v_t` even and :math:`J > 0` (the lattice :math:`\phi^4` theory of eq. 31 with :math:`J = 1`), write
:math:`\phi_x = s_x|\phi_x|`. At fixed :math:`|\phi|` the signs are an Ising model with couplings
:math:`J|\phi_x||\phi_y|`, which Swendsen-Wang updates exactly: a bond joins neighbours of equal sign with
probability :math:`1 - e^{-2J\phi_x\phi_y}`, and every cluster of joined sites flips its sign with probability
1/2. The move leaves :math:`e^{-\hat S_t}` invariant at every :math:`t` and changes no weight; it flips
whole domains, which local moves near a critical point (and in the broken phase, across the barrier
between :math:`\pm m`) do only after many trajectories.

Every cluster is labelled by its smallest site index, by one of two equivalent labellings (the same labels,
so the same sweep for the same key):

- on the CPU, a union-find (Hoshen & Kopelman) compiled by Numba, over the whole batch in one call from
  the compiled move (:func:`jax.pure_callback`): about 10-20 ns a site;
- on an accelerator, label propagation in the compiled move: every site starts with its own index, takes
  the smallest label of its bonded neighbours and then the label of its label (pointer jumping), until
  nothing changes. Its rounds grow with the clusters' extent, and a batch waits for its slowest
  configuration.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from .. import _random

LABELLINGS = ("host", "device")


def swendsen_wang(key, x, coupling: float, labelling: str | None = None):
    """One Swendsen-Wang sweep of the signs of one configuration ``x`` (the lattice's shape), hopping
    ``coupling``; ``labelling``: ``"host"`` (Numba's union-find) or ``"device"`` (label propagation), by
    default ``"host"`` on the CPU backend and ``"device"`` elsewhere."""
    shape = x.shape
    volume = math.prod(shape)
    k_bond, k_flip = jax.random.split(key)
    bonds = []
    for mu in range(len(shape)):  # the bond between x and x + mu
        product = x * jnp.roll(x, -1, axis=mu)
        p = jnp.where(product > 0, -jnp.expm1(-2.0 * coupling * product), 0.0)
        bonds.append(_random.uniform(jax.random.fold_in(k_bond, mu), shape) < p)
    labels = cluster_labels(jnp.stack(bonds), labelling)
    flip = jax.random.bernoulli(k_flip, 0.5, (volume,))
    return jnp.where(flip[labels], -x, x)


def cluster_labels(bonds, labelling: str | None = None):
    """The smallest site index of each site's cluster (int32, the lattice's shape), for ``bonds`` of shape
    ``(d, *lattice)``: ``bonds[mu]`` joins ``x`` and ``x + mu`` (periodic)."""
    if labelling is None:
        labelling = "host" if jax.default_backend() == "cpu" else "device"
    if labelling not in LABELLINGS:
        raise ValueError(f"labelling must be one of {LABELLINGS}, got {labelling!r}")
    shape = tuple(bonds.shape[1:])
    if labelling == "device":
        return _propagated_labels(bonds)
    out = jax.ShapeDtypeStruct(shape, jnp.int32)
    return jax.pure_callback(lambda b: _host_labels(np.asarray(b), shape), out, bonds, vmap_method="broadcast_all")


def _host_labels(bonds: np.ndarray, shape: tuple) -> np.ndarray:
    """:func:`cluster_labels` of a batch ``(..., d, *shape)`` at once, by :func:`_union_find`."""
    d, volume = len(shape), math.prod(shape)
    batch = bonds.shape[: bonds.ndim - 1 - d]
    out = np.empty((math.prod(batch), volume), np.int32)
    _union_find()(np.ascontiguousarray(bonds.reshape(-1, d, volume)), _forward(shape), out)
    return out.reshape(*batch, *shape)


@functools.cache
def _forward(shape: tuple) -> np.ndarray:
    """The index of ``x + mu`` (periodic) for every site ``x`` and direction ``mu``, ``(d, V)``: once per shape."""
    sites = np.arange(math.prod(shape)).reshape(shape)
    return np.stack([np.roll(sites, -1, axis=mu).reshape(-1) for mu in range(len(shape))]).astype(np.int32)


@functools.cache
def _union_find():
    """The union-find kernel ``(bonds (B, d, V), forward (d, V), out (B, V))``, compiled by Numba on first use
    (and cached on disk): per configuration, each bond joins the roots of its two sites, with path halving."""
    import numba  # here: compiling is needed only for cluster moves

    def kernel(bonds, forward, out):
        batch, d, volume = bonds.shape
        parent = np.empty(volume, np.int32)
        for b in range(batch):
            for x in range(volume):
                parent[x] = x
            for mu in range(d):
                for x in range(volume):
                    if bonds[b, mu, x]:
                        rx, ry = x, forward[mu, x]
                        while parent[rx] != rx:  # the roots, halving the paths
                            parent[rx] = parent[parent[rx]]
                            rx = parent[rx]
                        while parent[ry] != ry:
                            parent[ry] = parent[parent[ry]]
                            ry = parent[ry]
                        if rx < ry:  # the larger root joins the smaller: a root is its cluster's smallest site
                            parent[ry] = rx
                        elif ry < rx:
                            parent[rx] = ry
            for x in range(volume):  # parent[x] <= x, so the parent's label is known
                out[b, x] = x if parent[x] == x else out[b, parent[x]]

    try:
        return numba.njit(cache=True, nogil=True)(kernel)
    except RuntimeError:  # no writable cache directory: compile in every process instead
        return numba.njit(nogil=True)(kernel)


def _propagated_labels(bonds):
    """:func:`cluster_labels` by label propagation with pointer jumping (a ``while_loop``)."""
    shape = tuple(bonds.shape[1:])
    volume = math.prod(shape)

    def spread(state):
        labels, _ = state
        new = labels
        for mu, bond in enumerate(bonds):
            new = jnp.minimum(new, jnp.where(bond, jnp.roll(labels, -1, axis=mu), volume))
            new = jnp.minimum(new, jnp.where(jnp.roll(bond, 1, axis=mu), jnp.roll(labels, 1, axis=mu), volume))
        flat = new.reshape(-1)
        new = flat[flat].reshape(shape)  # pointer jumping: the label of the label
        return new, jnp.any(new != labels)

    start = jnp.arange(volume, dtype=jnp.int32).reshape(shape)
    labels, _ = jax.lax.while_loop(lambda s: s[1], spread, (start, jnp.array(True)))
    return labels


__all__ = ["LABELLINGS", "cluster_labels", "swendsen_wang"]
