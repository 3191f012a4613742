r"""Wolff's Gamma method: errors of Markov-chain averages with automatic windowing.

Reference: U. Wolff, "Monte Carlo errors with less errors", Comput. Phys. Commun.
156 (2004) 143, hep-lat/0306017 (equation numbers below as cited by pyerrors).

For one observable measured along a chain :math:`a_1, \dots, a_N` with fluctuations
:math:`\delta_i = a_i - \bar a`, the autocorrelation function and its normalised form

.. math::  \Gamma(t) = \frac{1}{N - t}\sum_{i=1}^{N-t} \delta_i\,\delta_{i+t},
           \qquad \rho(t) = \Gamma(t)/\Gamma(0)

are computed with one real FFT (zero-padded, so the correlation is not circular). The
integrated autocorrelation time summed up to a window :math:`W`,

.. math::  \tau_{\mathrm{int}}(W) = \tfrac12 + \sum_{t=1}^{W} \rho(t),

is evaluated at the first :math:`W \ge 1` where

.. math::  g(W) = e^{-W/\tau_W} - \frac{\tau_W}{\sqrt{W N}} < 0, \qquad
           \tau_W = \frac{S}{\log\frac{2\tau_{\mathrm{int}}(W) + 1}
                                    {2\tau_{\mathrm{int}}(W) - 1}},

balancing the truncation bias :math:`\sim e^{-W/\tau}` against the statistical error
:math:`\sim \sqrt{W/N}` (:math:`S \approx 1.5`; larger :math:`S` for longer windows).
Then, with the bias correction of eq. (49) and the error estimate (42),

.. math::  \tau_{\mathrm{int}} = \tau_{\mathrm{int}}(W)\,
             \frac{1 + (2W+1)/N}{1 + 1/N}, \qquad
           \delta\tau_{\mathrm{int}} \approx 2\,\tau_{\mathrm{int}}(W)
             \sqrt{\frac{W + \frac12 - \tau_{\mathrm{int}}(W)}{N}},

.. math::  \sigma_{\bar a}
           = \sqrt{\frac{2\,\tau_{\mathrm{int}}\,\Gamma(0)\,(1 + 1/N)}{N}},
           \qquad N_{\mathrm{eff}} = \frac{N}{2\,\tau_{\mathrm{int}}} .

Several replica (independent chains of the same ensemble) are combined as in Wolff's
paper: the fluctuations of every replica are taken about the overall mean
:math:`\bar a` (the length-weighted average of the replica means), their lag products
summed and divided by the number of pairs at each lag, :math:`\sum_r \max(N_r - t, 0)`;
the window search uses the total :math:`N = \sum_r N_r`.

pyerrors takes each replica's fluctuations about its own mean instead. That drops the
scatter of the replica means from every :math:`\Gamma(t)`, on average
:math:`c = (R - 1)\,2\tau\,\Gamma(0)/N` for :math:`R` replica (:math:`2\tau\Gamma(0)/N_r`
for equal chains of :math:`N_r`), so :math:`\rho(t)` by :math:`c\,(1 - \rho(t))/\Gamma(0)`
and :math:`\tau_{\mathrm{int}}(W)` by about :math:`2\tau(W - \tau + \frac12)/N_r` (:math:`W`
the window): negligible for replica long against :math:`\tau`, but not for the many
short chains of a vectorised HMC. 256 AR(1) replica of 78 steps with
:math:`\tau_{\mathrm{int}} = 12` give 3.7 and an error half the true one about their
own means, 10.5 about the overall mean (its window capped at 38 lags, half a chain:
:class:`GammaWindowWarning`); ``tests/test_diagnostics.py`` checks 512 replica of 60
steps at :math:`\tau_{\mathrm{int}} = 4.5` against the exact value.

Implementation: one chain is analysed by ``pyerrors`` (``pyerrors.Obs.gamma_method``,
the lattice community's standard implementation of Wolff's method; no ``tau_exp``
tail) by default; several replica by the own vectorised numpy implementation of the
formulas above (one batched FFT for chains of equal length). On one chain both give
the same numbers to rounding (tested to :math:`10^{-6}` relative). ``backend="pyerrors"``
gives pyerrors' own replica convention (each replica about its own mean).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from .._errors import PikflowError

__all__ = ["GammaResult", "GammaWindowWarning", "gamma_method"]

_MIN_LENGTH = 5


@dataclasses.dataclass(frozen=True)
class GammaResult:
    r"""Result of :func:`gamma_method` for one observable.

    Attributes
    ----------
    mean : float
        The chain average :math:`\bar a` (over all replica).
    error : float
        Its standard error :math:`\sigma_{\bar a}`, autocorrelations included.
    tau_int : float
        Integrated autocorrelation time (bias corrected; 0.5 for uncorrelated data).
    tau_int_error : float
        Statistical error of ``tau_int`` (Madras-Sokal / Wolff eq. 42).
    window : int
        The summation window :math:`W` chosen by the automatic windowing.
    n_effective : float
        Number of effectively independent samples, :math:`N / (2\tau_{\mathrm{int}})`.
    truncated : bool
        The window reached its cap, half the longest chain, before the windowing
        criterion was met, and short of :math:`4\tau_{\mathrm{int}}` (the tail left out,
        about :math:`e^{-W/\tau}` of the sum, above 2 %): the chains are too short against
        :math:`\tau_{\mathrm{int}}`, which is then cut off (too small, and the error with
        it). A :class:`GammaWindowWarning` says so.

    """

    mean: float
    error: float
    tau_int: float
    tau_int_error: float
    window: int
    n_effective: float
    truncated: bool = False


class GammaWindowWarning(UserWarning):
    r"""The Gamma method's window reached half a chain: :math:`\tau_{\mathrm{int}}` and the error are too small."""


def _as_replica(series) -> list[np.ndarray]:
    """Return the chains of ``series`` as a list of 1-D float arrays."""
    try:
        arr = np.asarray(series, dtype=float)
    except ValueError:
        # A sequence of chains of different lengths.
        if not isinstance(series, (list, tuple)):
            raise
        reps = [np.asarray(r, dtype=float) for r in series]
        if any(r.ndim != 1 for r in reps):
            raise PikflowError("series given as a sequence of replica must hold 1-D chains") from None
    else:
        if arr.ndim == 1:
            reps = [arr]
        elif arr.ndim == 2:
            reps = list(arr)
        else:
            raise PikflowError(f"series must be 1-D (one chain) or 2-D (n_chains, N), got shape {arr.shape}")
    if not reps or min(r.shape[0] for r in reps) < _MIN_LENGTH:
        raise PikflowError(
            f"every chain needs at least {_MIN_LENGTH} entries for the Gamma method, "
            f"got lengths {[r.shape[0] for r in reps]}"
        )
    n_bad = sum(int(np.count_nonzero(~np.isfinite(r))) for r in reps)
    if n_bad:
        n_tot = sum(r.shape[0] for r in reps)
        raise PikflowError(
            f"series has {n_bad} non-finite (nan or inf) entries out of {n_tot}; "
            "remove or fix them before estimating errors"
        )
    return reps


_BACKENDS = ("auto", "pyerrors", "numpy")


def gamma_method(series, *, S: float = 1.5, backend: str = "auto") -> GammaResult:
    r"""Mean, error and integrated autocorrelation time of a Markov chain (Wolff 2004).

    Wolff's Gamma method with automatic windowing (module docstring): the error of a
    chain average, autocorrelations included, and :math:`\tau_{\mathrm{int}}`, whence the
    number of effectively independent samples :math:`N/(2\tau_{\mathrm{int}})`.

    Parameters
    ----------
    series : array_like
        One observable along the chain: shape (N,) for one chain, (n_chains, N) for
        several replica of the same ensemble (or a list of 1-D chains of different
        lengths). Each chain needs at least 5 entries; all entries must be finite.
    S : float, keyword-only
        Windowing parameter (Wolff's :math:`S`, default 1.5). ``S = 0`` assumes no
        autocorrelation: ``tau_int = 0.5`` and the naive standard error.
    backend : {"auto", "pyerrors", "numpy"}, keyword-only
        ``"pyerrors"``: ``pyerrors.Obs.gamma_method`` (several replica each about its own
        mean: biased low for replica not long against :math:`\tau_{\mathrm{int}}`, module
        docstring). ``"numpy"``: the own vectorised implementation of Wolff's formulas,
        several replica about their overall mean. ``"auto"`` (default): pyerrors for one
        chain (when installed), numpy for several replica. On one chain the two give the
        same numbers to rounding.

    Returns
    -------
    GammaResult
        ``mean``, ``error``, ``tau_int``, ``tau_int_error``, ``window``,
        ``n_effective``. A series with zero variance gives ``error = 0``,
        ``tau_int = 0.5``, ``window = 0``.

    Raises
    ------
    PikflowError
        (a ``ValueError``) for non-finite entries, too-short chains, a bad shape, a
        negative ``S`` or an unknown ``backend``.

    """
    if not S >= 0:
        raise PikflowError(f"S must be >= 0, got {S!r}")
    if backend not in _BACKENDS:
        raise PikflowError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    reps = _as_replica(series)
    if backend == "auto":
        backend = "pyerrors" if len(reps) == 1 and _have_pyerrors() else "numpy"
    res = _gamma_pyerrors(reps, S) if backend == "pyerrors" else _gamma_numpy(reps, S)
    w_max = max(r.shape[0] for r in reps) // 2
    # the window stopped at its cap with the tail beyond it (about e^(-W/tau) of the sum) above 2 %
    if res.error > 0 and S > 0 and w_max > 2 and res.window >= w_max - 1 and res.window < 4 * res.tau_int:
        warnings.warn(
            f"the Gamma method's window reached {res.window} lags, half the longest chain ({2 * w_max}), before its "
            f"criterion was met: tau_int = {res.tau_int:.3g} is cut off there and the error is too small; run "
            "longer chains (several times tau_int each at least)",
            GammaWindowWarning,
            stacklevel=2,
        )
        res = dataclasses.replace(res, truncated=True)
    return res


def _import_pyerrors():
    """``pyerrors``, imported quietly (its import warns about deprecated scipy modules), or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pyerrors
        except ImportError:  # pragma: no cover - pyerrors is a dependency
            return None
    return pyerrors


def _have_pyerrors() -> bool:
    return _import_pyerrors() is not None


def _constant(reps: list[np.ndarray]) -> bool:
    """Every replica constant (pyerrors' convention: each about its own mean then has no fluctuation)."""
    return all(np.all(r == r[0]) for r in reps)


def _gamma_pyerrors(reps: list[np.ndarray], S: float) -> GammaResult:
    """The Gamma method by ``pyerrors.Obs.gamma_method`` (no ``tau_exp`` tail)."""
    pe = _import_pyerrors()
    if pe is None:  # pragma: no cover - pyerrors is a dependency
        raise PikflowError("backend='pyerrors' needs pyerrors: pip install pyerrors (or use backend='numpy')")
    n = int(sum(r.shape[0] for r in reps))
    if _constant(reps):
        mean = float(sum(float(r.sum()) for r in reps) / n)
        return GammaResult(mean, 0.0, 0.5, 0.0, 0, float(n))
    names = ["ens"] if len(reps) == 1 else [f"ens|r{i}" for i in range(len(reps))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obs = pe.Obs(list(reps), names)
        obs.gamma_method(S=S, tau_exp=0)
    tau = float(obs.e_tauint["ens"])
    return GammaResult(
        mean=float(obs.value),
        error=float(obs.dvalue),
        tau_int=tau,
        tau_int_error=float(obs.e_dtauint["ens"]),
        window=int(obs.e_windowsize["ens"]),
        n_effective=float(n / (2 * tau)),
    )


def _gamma_numpy(reps: list[np.ndarray], S: float) -> GammaResult:
    """The own implementation (module docstring): every replica about the overall mean, as in Wolff's paper;
    replica of equal length share one batched FFT."""
    lengths = np.array([r.shape[0] for r in reps])
    n = int(lengths.sum())
    rep_means = np.array([r.mean() for r in reps])
    mean = float(np.dot(lengths, rep_means) / n)
    w_max = int(lengths.max()) // 2

    # Gamma(t), t < w_max: lag products of all replica by FFT, over the pair count.
    gamma = np.zeros(w_max)
    if np.all(lengths == lengths[0]):  # many equal chains: one batched FFT
        n_r = int(lengths[0])
        n_lag = min(n_r, w_max)
        pad = n_r + n_lag + (n_r + n_lag) % 2
        spec = np.fft.rfft(np.stack(reps) - mean, pad, axis=1)
        gamma[:n_lag] = np.fft.irfft(spec.real**2 + spec.imag**2, pad, axis=1)[:, :n_lag].sum(axis=0)
    else:
        for r in reps:
            n_r = r.shape[0]
            n_lag = min(n_r, w_max)
            pad = n_r + n_lag + (n_r + n_lag) % 2
            spec = np.fft.rfft(r - mean, pad)
            gamma[:n_lag] += np.fft.irfft(spec.real**2 + spec.imag**2, pad)[:n_lag]
    pairs = np.maximum(lengths[None, :] - np.arange(w_max)[:, None], 0).sum(axis=1)
    gamma /= np.maximum(pairs, 1)
    gamma0 = gamma[0]

    # constant as a whole (about the overall mean, chains each constant at different values still vary)
    if all(np.all(r == reps[0][0]) for r in reps) or abs(gamma0) < 10 * np.finfo(float).tiny:
        return GammaResult(mean, 0.0, 0.5, 0.0, 0, float(n))
    if S == 0:
        return GammaResult(mean, float(np.sqrt(gamma0 / (n - 1))), 0.5, 0.0, 0, float(n))

    rho = gamma / gamma0
    tau_w = np.cumsum(np.concatenate(([0.5], rho[1:])))
    tau_w[tau_w <= 0.5] = 0.5 + np.finfo(float).eps  # keep the logarithm finite
    # Automatic windowing: first W >= 1 with g(W) < 0, at most w_max - 1.
    win = np.arange(1, w_max)
    with np.errstate(divide="ignore", over="ignore"):
        tau = S / np.log((2 * tau_w[1:] + 1) / (2 * tau_w[1:] - 1))
        g = np.exp(-win / tau) - tau / np.sqrt(win * n)
    neg = np.flatnonzero(g < 0)
    window = int(win[neg[0]]) if neg.size else w_max - 1

    tau_raw = tau_w[window]
    tau_int = tau_raw * (1 + (2 * window + 1) / n) / (1 + 1 / n)  # eq. (49)
    tau_err = 2 * tau_raw * np.sqrt(abs(window + 0.5 - tau_raw) / n)  # eq. (42)
    error = np.sqrt(2 * tau_int * gamma0 * (1 + 1 / n) / n)  # C_F(W) with eq. (49)
    return GammaResult(
        mean=mean,
        error=float(error),
        tau_int=float(tau_int),
        tau_int_error=float(tau_err),
        window=window,
        n_effective=float(n / (2 * tau_int)),
    )
