r"""Fast evaluation of the equally spaced sine basis (eq. 25) by the angle-addition recurrence."""

from __future__ import annotations

import jax.numpy as jnp


def _harmonics(x, n):
    s1, c1 = jnp.sin(x), jnp.cos(x)
    sins, coss = [s1], [c1]
    for _ in range(n - 1):
        s, c = sins[-1], coss[-1]
        sins.append(s * c1 + c * s1)
        coss.append(c * c1 - s * s1)
    return jnp.stack(sins), jnp.stack(coss)


def sine_functions(w1: float, n: int, parity: str):
    """``values(phi) -> (n_basis, 1)`` and ``divergences(phi) -> (n_basis,)`` in the order of :class:`Sine`."""
    j = jnp.arange(1, n + 1) * w1

    def parts(phi):
        x = phi[0]
        s, c = _harmonics(w1 * x, n)
        vals, divs = [], []
        if parity in ("even", "all"):
            vals.append(jnp.ones((1,), x.dtype))
            divs.append(jnp.zeros((1,), x.dtype))
        if parity in ("odd", "all"):
            vals += [x[None], s]
            divs += [jnp.ones((1,), x.dtype), j * c]
        if parity in ("even", "all"):
            vals.append(c)
            divs.append(-j * s)
        return jnp.concatenate(vals), jnp.concatenate(divs)

    def values(phi):
        return parts(phi)[0][:, None]

    def divergences(phi):
        return parts(phi)[1]

    return values, divergences
