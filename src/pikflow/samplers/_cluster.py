r"""Embedded Swendsen-Wang cluster moves (Brower & Tamayo, PRL 62, 1087 (1989)) for lattice SMC.

For an action :math:`\hat S = \sum_x v_t(\phi_x) - J\sum_{x,\mu}\phi_x\phi_{x+\mu}` with every site term
:math:`v_t` even and :math:`J > 0` (the lattice :math:`\phi^4` theory of eq. 31 with :math:`J = 1`), write
:math:`\phi_x = s_x|\phi_x|`. At fixed :math:`|\phi|` the signs are an Ising model with couplings
:math:`J|\phi_x||\phi_y|`, which Swendsen-Wang updates exactly: a bond joins neighbours of equal sign with
probability :math:`1 - e^{-2J\phi_x\phi_y}`, and every cluster of joined sites flips its sign with probability
1/2. The move leaves :math:`e^{-\hat S_t}` invariant at every :math:`t` and changes no weight; it flips
whole domains, which local moves near a critical point (and in the broken phase, across the barrier
between :math:`\pm m`) do only after many trajectories.

The clusters are found by label propagation: every site starts with its own index, takes the smallest
label of its bonded neighbours and then the label of its label (pointer jumping), until nothing changes.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def swendsen_wang(key, x, coupling: float):
    """One Swendsen-Wang sweep of the signs of one configuration ``x`` (the lattice's shape), hopping ``coupling``."""
    shape = x.shape
    volume = math.prod(shape)
    k_bond, k_flip = jax.random.split(key)
    bonds = []
    for mu in range(len(shape)):  # the bond between x and x + mu
        product = x * jnp.roll(x, -1, axis=mu)
        p = jnp.where(product > 0, -jnp.expm1(-2.0 * coupling * product), 0.0)
        bonds.append(jax.random.uniform(jax.random.fold_in(k_bond, mu), shape) < p)

    def spread(state):
        labels, _ = state
        new = labels
        for mu, bond in enumerate(bonds):
            new = jnp.minimum(new, jnp.where(bond, jnp.roll(labels, -1, axis=mu), volume))
            new = jnp.minimum(new, jnp.where(jnp.roll(bond, 1, axis=mu), jnp.roll(labels, 1, axis=mu), volume))
        flat = new.reshape(-1)
        new = flat[flat].reshape(shape)  # pointer jumping: the label of the label
        return new, jnp.any(new != labels)

    start = jnp.arange(volume).reshape(shape)
    labels, _ = jax.lax.while_loop(lambda s: s[1], spread, (start, jnp.array(True)))
    flip = jax.random.bernoulli(k_flip, 0.5, (volume,))
    return jnp.where(flip[labels], -x, x)


__all__ = ["swendsen_wang"]
