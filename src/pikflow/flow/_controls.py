r"""Control variates from the exact base of a lattice flow: smaller errors of the reweighted estimates.

A flow sample is :math:`x = T(z)` of an exact base draw :math:`z \sim q_0`, so every function :math:`h(z)`
whose mean under :math:`q_0` is known exactly is a control variate for the self-normalised estimate
:math:`\bar O = \sum_i w_iO_i/\sum_i w_i` (Owen, *Monte Carlo theory, methods and examples*, ch. 8–9). The
estimate's first-order error is the mean of the linearised series

.. math::  u_i = \frac{w_i\,(O_i - \bar O)}{\bar w}, \qquad \bar O - \langle O\rangle_p \approx \frac1N\sum_i u_i ,

(for :math:`\chi` and the Binder cumulant :math:`O_i` is their linearised series, as in
:meth:`~pikflow.flow.LatticeSamples.observable`). With the centred controls :math:`H_i = h(z_i) - E_{q_0}h` and
:math:`\hat\beta` the least-squares regression of :math:`u` on :math:`H` (with an intercept :math:`\hat\beta_0`),

.. math::  \bar O_{\rm cv} = \bar O - \hat\beta\cdot\bar H,

consistent like :math:`\bar O`, with the variance of the part of :math:`u` the controls do not explain. Its
error is the delete-a-group jackknife's (:func:`controlled`, :func:`jackknife_error`): the estimate, regression
included, repeated with each of 20 blocks of draws left out, so the error of the fitted :math:`\hat\beta` counts.

The controls (:func:`control_matrix`) are functions of independent parts of the base draw
(:meth:`~pikflow.flow.GaussianLatticeBase.control_values`): its magnetisation :math:`m_b`, of law
:math:`N(c, \sigma^2)` with :math:`\sigma^2 = 1/(VK(0))` and :math:`c` the base mean (or :math:`\pm m_0` with
probability 1/2 each for the mixture base), :math:`Q = \frac1{2V}\sum_{k\ne0}K(k)|\tilde\phi_k|^2`, of law
:math:`\frac12\chi^2_{V-1}`, and the same energy :math:`Q_s` of each of the lowest momentum shells :math:`s` (the
momenta that the lattice's reflections and axis permutations map onto each other, e.g. the four
:math:`(\pm1, 0), (0, \pm1)` in units of :math:`2\pi/L`), of law :math:`\frac12\chi^2_{n_s}` with :math:`n_s` the
shell's size: the powers :math:`m_b^{2,4,6,8}`, :math:`|m_b|^{1,3,5}`, :math:`Q`, :math:`Q^2` and their products
:math:`Qm_b^2, Q^2m_b^2, Qm_b^4, Q|m_b|`, and per shell :math:`Q_s` and :math:`Q_sm_b^2`, each centred by its exact
mean (:math:`m_b` is independent of the rest, so every mean factorises). The shells carry what the flow does with
the long wavelengths next to the zero mode. More functions of them (:math:`Q_s^2`, :math:`Q_s|m_b|`) gained
nothing measurable, and :math:`Q_sm_b^4`, heavy-tailed, made the controlled :math:`\chi` at 6x6 noisier than
without it, with errors that understated its spread by half.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .._errors import SamplingError

#: Powers of the base magnetisation (signed, even) and of its absolute value used as controls.
EVEN_POWERS = (2, 4, 6, 8)
ABSOLUTE_POWERS = (1, 3, 5)


def zero_mode_moment(centres, sigma: float, p: int, absolute: bool = False) -> float:
    r""":math:`E[X^p]` (or :math:`E|X|^p`) of :math:`X \sim N(c, \sigma^2)`, averaged over the ``centres`` :math:`c`.

    Signed moments are the binomial sums of the normal's central moments :math:`\sigma^q (q-1)!!`;
    absolute ones are integrated over :math:`c \pm 40\sigma`, split at 0 where 0 lies inside
    (:func:`scipy.integrate.quad`, relative error below :math:`10^{-10}`; an infinite range would miss a
    narrow peak far from 0, as the zero mode of a large lattice in the broken phase is). Remembered per
    law: every set of samples of one flow shares its base's (the quadratures took about 0.3 s a set).
    """
    return _moment(tuple(float(c) for c in np.ravel(centres)), float(sigma), int(p), bool(absolute))


@functools.lru_cache(maxsize=256)
def _moment(centres: tuple, sigma: float, p: int, absolute: bool) -> float:
    """:func:`zero_mode_moment` of hashable arguments."""
    from scipy import integrate

    out, norm = 0.0, 1.0 / (sigma * math.sqrt(2.0 * math.pi))
    for c in centres:
        if not absolute:
            out += sum(
                math.comb(p, q) * c ** (p - q) * sigma**q * math.prod(range(q - 1, 0, -2)) for q in range(0, p + 1, 2)
            )
            continue
        lo, hi = c - 40.0 * sigma, c + 40.0 * sigma
        edges = (lo, 0.0, hi) if lo < 0.0 < hi else (lo, hi)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            inner = [c] if a < c < b else None  # where the peak is
            f = lambda x, c=c: abs(x) ** p * norm * math.exp(-0.5 * ((x - c) / sigma) ** 2)  # noqa: E731
            out += integrate.quad(f, a, b, epsabs=0, epsrel=1e-12, points=inner)[0]
    return out / len(centres)


def control_matrix(values, volume: int, centres, sigma: float, shells=()) -> np.ndarray:
    r"""The centred controls :math:`H` (``(N, 13 + 2 S)``) of base draws with ``values`` ``(N, 2 + S)`` =
    :math:`(m_b, Q, Q_1, \dots, Q_S)`.

    ``centres``, ``sigma``: the law of :math:`m_b`; ``shells``: the sizes :math:`n_s` of the momentum shells
    (:meth:`GaussianLatticeBase.control_law` gives all three). :math:`2Q \sim \chi^2_{V-1}` and
    :math:`2Q_s \sim \chi^2_{n_s}`, each independent of :math:`m_b` (the means of the products factorise).
    """
    values = np.asarray(values, dtype=float)
    shells = tuple(int(n) for n in shells)
    if values.ndim != 2 or values.shape[1] != 2 + len(shells):
        raise SamplingError(f"base controls of shape {values.shape} for {len(shells)} momentum shells")
    m, Q = values[:, 0], values[:, 1]
    half = (volume - 1) / 2
    EQ, EQ2 = half, half**2 + half
    even = {p: zero_mode_moment(centres, sigma, p) for p in EVEN_POWERS}
    absolute = {p: zero_mode_moment(centres, sigma, p, absolute=True) for p in ABSOLUTE_POWERS}
    cols = [m**p - even[p] for p in EVEN_POWERS]
    cols += [np.abs(m) ** p - absolute[p] for p in ABSOLUTE_POWERS]
    cols += [Q - EQ, Q**2 - EQ2, Q * m**2 - EQ * even[2], Q**2 * m**2 - EQ2 * even[2], Q * m**4 - EQ * even[4]]
    cols += [Q * np.abs(m) - EQ * absolute[1]]
    for j, size in enumerate(shells):
        q = values[:, 2 + j]
        cols += [q - size / 2, q * m**2 - size / 2 * even[2]]
    return np.stack(cols, axis=1)


#: Groups of the delete-a-group jackknife that gives the controlled estimates their errors (:func:`controlled`).
JACKKNIFE_GROUPS = 20


def _corrected_means(lw, x, H) -> np.ndarray:
    """The controlled means of one set of draws (the regression of :func:`controlled`)."""
    ok = np.isfinite(lw) & np.all(np.isfinite(x), axis=1)
    if not ok.any():
        raise SamplingError("no sample has a finite weight and value: nothing to estimate")
    w = np.where(ok, np.exp(lw - np.max(np.where(ok, lw, -np.inf))), 0.0)
    w = w / w.mean()
    x = np.where(ok[:, None], x, 0.0)
    mean = (w @ x) / np.sum(w)
    u = w[:, None] * (x - mean)
    scale = H.std(axis=0)
    scale[scale == 0] = 1.0
    X = np.concatenate([np.ones((len(lw), 1)), H / scale], axis=1)  # with an intercept: the draws' mean of H is not 0
    beta, *_ = np.linalg.lstsq(X, u, rcond=None)  # minimum norm: collinear controls (a small lattice) count once
    return mean - (H / scale).mean(axis=0) @ beta[1:]


def controlled(log_w, values, controls, groups: int = JACKKNIFE_GROUPS) -> tuple[np.ndarray, np.ndarray]:
    r"""Self-normalised means of ``values`` (``(N, k)``) corrected by the centred ``controls`` :math:`H` (``(N, p)``).

    Returns the corrected means :math:`\bar O_{\rm cv}` (``(k,)``) and their delete-a-group jackknife replicates
    (``(G, k)``): the same estimate with each of ``groups`` contiguous blocks of draws left out, regression
    included. A function :math:`f` of the means has the error :func:`jackknife_error` of :math:`f` of the
    replicates, which counts the error of the fitted :math:`\hat\beta` too: the regression's residuals
    (even leverage-corrected, "HC3") understated the spread of 60 repeated estimates at 6x6 (-1, 1) by 13-24 %
    with 2000 draws each, the jackknife's root mean square pull was 0.97-1.08 (the lattice user guide).
    Samples with a non-finite weight or value weigh zero; every base draw's controls count, as every draw was made.
    """
    lw = np.asarray(log_w, dtype=float)
    x = np.asarray(values, dtype=float).reshape(len(lw), -1)
    H = np.asarray(controls, dtype=float)
    n, p = H.shape
    if lw.shape != (n,) or x.shape[0] != n:
        raise SamplingError(f"controls for {n} draws, but {lw.shape[0]} weights and {x.shape[0]} values")
    if n < 2 * (p + 1):
        raise SamplingError(f"{n} samples cannot fit {p} controls: draw at least {2 * (p + 1)} (better thousands)")
    means = _corrected_means(lw, x, H)
    blocks = np.array_split(np.arange(n), min(int(groups), n))
    keep = np.ones(n, bool)
    replicates = []
    for block in blocks:
        keep[block] = False
        try:
            replicates.append(_corrected_means(lw[keep], x[keep], H[keep]))
        except SamplingError:  # every sample that counts is in this block: no error can be given
            replicates.append(np.full(x.shape[1], np.nan))
        keep[block] = True
    return means, np.array(replicates)


def jackknife_error(replicates) -> float:
    r"""The delete-a-group jackknife error :math:`\bigl(\frac{G-1}{G}\sum_g(\theta_g - \bar\theta)^2\bigr)^{1/2}`
    of an estimate from its ``G`` replicates :math:`\theta_g` (:func:`controlled`)."""
    th = np.asarray(replicates, dtype=float)
    g = len(th)
    return math.sqrt((g - 1) / g * np.sum((th - th.mean()) ** 2))


__all__ = ["JACKKNIFE_GROUPS", "control_matrix", "controlled", "jackknife_error", "zero_mode_moment"]
