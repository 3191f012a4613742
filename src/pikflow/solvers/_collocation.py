r"""Collocation points for one layer: pushed samples plus points covering the tails.

The kernel must be accurate wherever samples can go, so each layer's collocation set
is the samples pushed through the earlier layers (they follow :math:`p_t`) plus a set
of points covering the tails out to where :math:`\hat S_t - \min \hat S_t` reaches
``tail_gap`` (a uniform grid for one component, uniform points in a ball otherwise).
A too narrow range makes the kernel extrapolate badly far out.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import SolveError


@dataclasses.dataclass(frozen=True)
class Collocation:
    """How each layer's collocation points are chosen.

    Parameters
    ----------
    n_samples
        Samples pushed through the earlier layers (they follow :math:`p_t`).
    n_tail
        Extra points covering the whole range out to ``tail_gap``.
    tail_gap
        The range ends where :math:`\\hat S_t - \\min\\hat S_t` = ``tail_gap``
        (20 covers :math:`10^8` samples with margin).
    radius
        A fixed range instead (``|phi| <= radius``), overriding ``tail_gap``.
    mala_steps
        Layer-parallel mode with several field components: length of the MALA chains
        that draw the ``n_samples`` points from :math:`p_t` (one component uses quantiles).
    """

    n_samples: int = 1000
    n_tail: int = 500
    tail_gap: float = 20.0
    radius: float | None = None
    mala_steps: int = 200

    def __post_init__(self):
        for name in ("n_samples", "n_tail", "mala_steps"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise SolveError(f"collocation {name} must be a non-negative integer, got {v!r}")
        if self.n_samples + self.n_tail < 2:
            raise SolveError("collocation needs at least two points (n_samples + n_tail)")
        for name in ("tail_gap", "radius"):
            v = getattr(self, name)
            if (v is not None or name == "tail_gap") and (
                isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or abs(v) > 1e300
            ):
                raise SolveError(f"collocation {name} must be a positive number, got {v!r}")
        if not (np.isfinite(float(self.tail_gap)) and self.tail_gap > 0):
            raise SolveError(f"collocation tail_gap must be positive, got {self.tail_gap!r}")
        if self.radius is not None and not (np.isfinite(float(self.radius)) and self.radius > 0):
            raise SolveError(f"collocation radius must be positive, got {self.radius!r}")


_R_MAX = 50.0
_N_RADIAL = 2001


def _directions(n_fields: int) -> np.ndarray:
    if n_fields == 1:
        return np.array([[1.0], [-1.0]])
    rng = np.random.default_rng(12345)
    d = rng.normal(size=(64, n_fields))
    return np.concatenate([np.eye(n_fields), -np.eye(n_fields), d / np.linalg.norm(d, axis=1, keepdims=True)])


def tail_radius(action_fn, t, n_fields: int, gap: float) -> jax.Array:
    r"""Largest :math:`|\phi|` (over directions) where :math:`\hat S_t(\phi) - \min \hat S_t \le` ``gap``."""
    dirs = jnp.asarray(_directions(n_fields))
    r = jnp.linspace(0.0, _R_MAX, _N_RADIAL)
    pts = r[None, :, None] * dirs[:, None, :]
    s = jax.vmap(jax.vmap(action_fn, in_axes=(0, None)), in_axes=(0, None))(pts, t)
    s = jnp.where(jnp.isfinite(s), s, jnp.inf)
    inside = s - jnp.min(s) <= gap
    r_in = jnp.max(jnp.where(inside, r[None, :], 0.0))
    return jnp.minimum(r_in + _R_MAX / (_N_RADIAL - 1), _R_MAX)


def tail_points(key, radius, n: int, n_fields: int) -> jax.Array:
    """``n`` points covering the ball of the given radius (a grid in one dimension)."""
    if n == 0:
        return jnp.zeros((0, n_fields))
    if n_fields == 1:
        return jnp.linspace(-1.0, 1.0, n)[:, None] * radius
    k1, k2 = jax.random.split(key)
    d = jax.random.normal(k1, (n, n_fields))
    d = d / jnp.linalg.norm(d, axis=1, keepdims=True)
    rad = radius * jax.random.uniform(k2, (n, 1)) ** (1.0 / n_fields)
    return d * rad
