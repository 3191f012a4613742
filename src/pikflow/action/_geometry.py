r"""Periodic hypercubic lattices: sites, momenta, momentum orbits and the point group.

The lattice Laplacian in momentum space is :math:`\hat k^2 = \sum_\mu 4\sin^2(k_\mu/2)`,
:math:`k_\mu = 2\pi n_\mu / L_\mu` (the free propagator of paper eq. 31 is
:math:`1/(m^2 + \hat k^2)`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from .._errors import ActionError

#: The smallest number of sites along a direction, for Python and the CLI alike. With two
#: sites the forward and backward neighbours coincide (``shift(phi, mu)`` equals
#: ``shift(phi, mu, -1)``), so a nearest-neighbour density counts each bond twice.
MIN_SIZE = 3


def reflected(f, axes=None) -> np.ndarray:
    r""":math:`f(-k)` of an array on the full FFT grid along ``axes`` (default every axis): flipped, then rolled by one,
    so that the zero momentum stays in place. A real field's Gaussian, or a filter that real transforms apply, has
    :math:`f(k) = f(-k)`."""
    f = np.asarray(f)
    axes = tuple(range(f.ndim)) if axes is None else tuple(axes)
    return np.roll(np.flip(f, axis=axes), 1, axis=axes)


def check_shape(shape) -> tuple[int, ...]:
    """The lattice shape as a tuple of ints, or an :class:`ActionError` saying what a valid shape is.

    The one rule for every entry point: 1 to 4 integer sizes, each at least :data:`MIN_SIZE`.
    """
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    bad = f"the lattice shape must be a list of 1 to 4 integer sizes (d = 1..4 directions) like [8, 8], got {shape!r}"
    if isinstance(shape, (str, bytes)):
        raise ActionError(bad)
    try:
        shape = tuple(shape)
    except TypeError:
        raise ActionError(bad) from None
    if not 1 <= len(shape) <= 4 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape):
        raise ActionError(bad)
    if any(s < MIN_SIZE for s in shape):
        raise ActionError(f"the lattice sizes must be at least {MIN_SIZE} sites per direction, got {list(shape)}")
    return tuple(int(s) for s in shape)


class Lattice:
    r"""A periodic lattice of shape ``(L_1, ..., L_d)``, :math:`d = 1, \dots, 4` (paper eq. 31).

    Parameters
    ----------
    shape
        The number of sites along each direction (each at least :data:`MIN_SIZE` = 3).

    Examples
    --------
    >>> lat = Lattice((8, 8))
    >>> lat.d, lat.volume
    (2, 64)
    """

    def __init__(self, shape: Sequence[int] | int):
        self.shape: tuple[int, ...] = check_shape(shape)

    @property
    def d(self) -> int:
        """Number of directions."""
        return len(self.shape)

    @property
    def volume(self) -> int:
        """Number of sites :math:`V`."""
        return int(np.prod(self.shape))

    @property
    def axes(self) -> tuple[int, ...]:
        """The lattice axes of an array of shape ``shape`` (or of a batch: the last ``d`` axes)."""
        return tuple(range(-self.d, 0))

    def khat2(self) -> np.ndarray:
        r""":math:`\hat k^2 = \sum_\mu 4 \sin^2(k_\mu/2)` on the FFT grid, shape ``shape``."""
        grids = np.meshgrid(*[2 * np.pi * np.fft.fftfreq(n) * 1.0 for n in self.shape], indexing="ij")
        return sum(4 * np.sin(k / 2) ** 2 for k in grids)

    def momentum_orbits(self, group: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        r"""Orbits of the momenta under a point group and :math:`k\to-k`.

        Parameters
        ----------
        group
            Signed permutation matrices :math:`g` acting as :math:`k\to gk` (a group, e.g.
            :attr:`Symmetry.group` of the action); default: the whole :meth:`point_group`
            (reflections and permutations of equal-size axes). :math:`k\to-k` is always added:
            :math:`|\tilde\phi_{-k}| = |\tilde\phi_k|` for real fields.

        Returns
        -------
        ids : numpy.ndarray of int, shape ``shape``
            The orbit index of every momentum (0 is :math:`k = 0`), numbered in order of first appearance.
        sizes : numpy.ndarray of int
            The number of momenta in each orbit.
        """
        mats = self.point_group() if group is None else [np.asarray(g, dtype=np.int64) for g in group]
        idx = np.indices(self.shape).reshape(self.d, -1)
        L = np.asarray(self.shape)[:, None]
        strides = np.asarray([int(np.prod(self.shape[i + 1 :])) for i in range(self.d)])
        key = np.full(idx.shape[1], np.iinfo(np.int64).max)
        for g in mats:
            for sign in (1, -1):
                key = np.minimum(key, strides @ ((sign * g @ idx) % L))
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        rank = np.empty(len(first), dtype=np.int64)
        rank[np.argsort(first)] = np.arange(len(first))
        ids = rank[inverse.reshape(-1)].reshape(self.shape)
        return ids, np.bincount(ids.reshape(-1))

    def point_group(self) -> list[np.ndarray]:
        """The lattice point group as ``d x d`` integer matrices: reflections and permutations of equal-size axes."""
        out = []
        for perm in itertools.permutations(range(self.d)):
            if any(self.shape[p] != self.shape[i] for i, p in enumerate(perm)):
                continue
            for signs in itertools.product((1, -1), repeat=self.d):
                m = np.zeros((self.d, self.d), dtype=np.int64)
                for i, p in enumerate(perm):
                    m[i, p] = signs[i]
                out.append(m)
        return out

    def __eq__(self, other) -> bool:
        return isinstance(other, Lattice) and other.shape == self.shape

    def __hash__(self) -> int:
        return hash(self.shape)

    def __repr__(self) -> str:
        return f"Lattice({list(self.shape)})"
