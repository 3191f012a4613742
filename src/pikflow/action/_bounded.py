r"""Is a lattice action bounded below? The lattice counterpart of :meth:`pikflow.Path.check_normalisable`.

:math:`e^{-\hat S_t}` is only normalisable if :math:`\hat S_t(\phi) = \sum_n \rho_t(n)` (eq. 31)
grows to :math:`+\infty` in every direction of configuration space. A negative quartic or
sextic coupling at :math:`t = 1` would otherwise make the solve and the sampler run for
minutes before the weights blow up. The check is numerical and cheap (milliseconds): the
action is evaluated on configurations that are periodic with a small period :math:`p_\mu \le 8`
dividing :math:`L_\mu` (so they are exact configurations of the full lattice, whose action is
:math:`V/\prod_\mu p_\mu` times the action of the tile): the constant configurations
:math:`\pm 1`, the staggered one where the tile allows it, and 16 random ones, each at radii
10, 100 and 1000. The action must increase along each and exceed its value at the origin
by more than 50, the same criterion as the 0-D check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._errors import ActionError
from ._density import site_key, site_symbols
from ._far import far_values
from ._lattice_path import LatticePath
from ._path import t as T

#: Largest number of sites of the probe tile (periods at most 8 in 1-2 dimensions, 4 in 3-4).
MAX_TILE = 256


def _period(size: int, dim: int) -> int:
    """The largest divisor of ``size`` that keeps the tile within :data:`MAX_TILE` sites."""
    top = 8 if dim <= 2 else 4
    return max(p for p in range(1, top + 1) if size % p == 0)


def _probes(tile: tuple[int, ...], seed: int, fields: tuple[str, ...] = ("phi",)) -> tuple[np.ndarray, list[str]]:
    """Unit-RMS probe configurations on the tile (``(n, *tile)`` for ``n > 1`` fields), and their names."""
    n = len(fields)
    ones = np.ones(tile)
    stag = np.indices(tile).sum(axis=0) % 2 * 2.0 - 1.0
    if n == 1:
        configs, names = [ones, -ones], ["constant phi -> +inf", "constant phi -> -inf"]
        if all(p % 2 == 0 for p in tile):
            configs.append(stag)
            names.append("staggered phi (+1, -1, ...) -> inf")
    else:
        configs, names = [np.stack([ones] * n), -np.stack([ones] * n)], ["all fields constant -> +inf", "-inf"]
        for a, f in enumerate(fields):
            for sign in (1, -1):
                c = np.zeros((n, *tile))
                c[a] = sign
                configs.append(c)
                names.append(f"constant {f} -> {'+' if sign > 0 else '-'}inf, the others 0")
            if all(p % 2 == 0 for p in tile):
                c = np.zeros((n, *tile))
                c[a] = stag
                configs.append(c)
                names.append(f"staggered {f} -> inf, the others 0")
    rng = np.random.default_rng(seed)
    for _ in range(16):
        r = rng.normal(size=tile if n == 1 else (n, *tile))
        configs.append(r / np.sqrt(np.mean(r**2)))
        names.append("a random configuration scaled to inf")
    return np.stack(configs), names


def check_bounded_below(path: LatticePath, times: Sequence[float] | None = None, *, seed: int = 0) -> None:
    r"""Raise :class:`ActionError` unless the local density's action grows far out at every time.

    Parameters
    ----------
    path
        The :class:`LatticePath` (its spectral Gaussian part, positive, is not needed).
    times
        Times to check; default 21 points on ``[0, 1]`` (a matched path: ``t = 1`` only).
    seed
        Seed of the random probe configurations.
    """
    if times is None:  # a matched path (1-t) S_0 + t S_1 with a positive Gaussian S_0 is bounded iff S_1 is
        times = [1.0] if path.spectral_precision is not None else np.linspace(0.0, 1.0, 21)
    times = np.asarray(times, dtype=float)
    dim = path.d
    tile = tuple(_period(L, dim) for L in path.lattice.shape)
    fields = tuple(path.action.field_names)
    probes, names = _probes(tile, seed, fields)
    sites = site_symbols(path.density, dim)
    extra = path.density.free_symbols - set(sites) - {T}
    if extra:
        raise ActionError(f"the density {path.density} has symbols {sorted(map(str, extra))} without a value")
    syms = list(sites)
    axes = tuple(range(-dim, 0))
    radii = np.array([0.0, 10.0, 100.0, 1000.0])
    pts = radii.reshape((-1,) + (1,) * (probes.ndim)) * probes[None]  # (radius, probe, [n,] *tile)
    # the field at n + o for every site symbol (periodic on the tile, hence on the lattice)
    if len(fields) == 1:
        shifted = [np.roll(pts, [-x for x in sites[s]], axis=axes) for s in syms]
    else:
        comp = [fields.index(site_key(s, dim)[0]) for s in syms]
        shifted = [np.roll(pts[:, :, a], [-x for x in sites[s]], axis=axes) for s, a in zip(syms, comp, strict=True)]
        pts = pts[:, :, 0]
    for time in times:
        with np.errstate(all="ignore"):
            # cosh - sinh cancelled symbolically, float64 NaN evaluated again exactly (pikflow.action._far)
            # at this t, so that a coupling that vanishes here drops out symbolically (no 0 * inf far out)
            dens = np.broadcast_to(far_values(path.at(float(time)), syms, shifted), pts.shape)
            vals = dens.sum(axis=axes)  # (radius, probe)
            vals = np.where(np.isnan(vals), -np.inf, vals)
            # inf - inf (an infinite coupling) is nan: not growing, which is the answer wanted, without a warning
            grows = (np.diff(vals[1:], axis=0) > 0).all(axis=0) & (vals[-1] - vals[0] > 50.0)
        if not grows.all():
            where = names[int(np.argmin(grows))]
            alone = [f for f in fields if f"constant {f} " in where or f"staggered {f} " in where]
            hint = (
                f" ({alone[0]} is a field of its own here, beside {[f for f in fields if f != alone[0]]}: if it is a "
                "misspelt field name, correct the density)"
                if len(fields) > 1 and alone
                else ""
            )
            raise ActionError(
                f"the lattice action at t = {time:.3g}, with density {path.at(float(time))}, is not bounded below "
                f"(it does not grow for {where}){hint}: exp(-S_t) is not normalisable. Make the highest power of "
                "the field positive (e.g. lam > 0) at every t"
            )
