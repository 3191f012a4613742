r"""Lattice observables with errors, a reference HMC sampler and the matched Gaussian base.

Observables (the user guide), with :math:`M = \sum_n\phi_n`, :math:`m = M/V` (with ``n > 1``
components the vector :math:`m_a = \frac1V\sum_n\phi_{a,n}` and :math:`|m|` its length, so
:math:`m^2\to|m|^2`, :math:`M^4\to|M|^4` below):
``abs_m`` :math:`=\langle|m|\rangle`, ``chi`` :math:`= V(\langle m^2\rangle - \langle|m|\rangle^2)`,
``binder`` :math:`= 1 - \langle M^4\rangle/(3\langle M^2\rangle^2)`, and the connected two-point
function :math:`G(r)` (:func:`flow_two_point`, :func:`chain_two_point`). Errors of these
derived quantities come from the Gamma method applied to the linearised (projected)
fluctuations :math:`\sum_a \partial f/\partial\bar A_a\,(A_{a,i} - \bar A_a)` along a Markov
chain (Wolff 2004), here the IMH chain with the flow as proposal (exact sampler).
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from .. import _random
from .._errors import PikflowError, SamplingError
from .._estimate import Estimate
from ..action import LatticeAction, LatticePath
from ..baselines import MIN_ACCEPTANCE
from ..diagnostics import gamma_method, imh_chain, reweight
from ..flow import GaussianLatticeBase, two_point_series
from ..flow._lattice_stream import _site_means
from ._propagator import smooth_propagator


def chain_observables(magnetisation, volume: int, *, chains: int = 1) -> dict[str, Estimate]:
    r"""``abs_m``, ``chi``, ``binder`` with Gamma-method errors from a Markov chain of :math:`M`.

    ``magnetisation``: shape ``(n_chain,)``, or ``(n_chain, n)`` for the vector :math:`M_a` of
    ``n`` components (then :math:`|m|`, :math:`|m|^2`, :math:`|m|^4`). ``chains``: the series holds
    that many independent chains of equal length one after another (``M.reshape(-1)`` of a
    ``(chains, n)`` run); their errors then come from the chains as the Gamma method's replica, about
    the overall mean (:func:`pikflow.diagnostics.gamma_method`), not from one series with joins.
    """
    M = np.asarray(magnetisation, dtype=float)
    if M.ndim not in (1, 2) or M.shape[0] < 10:
        raise SamplingError(f"need a chain of at least 10 magnetisations (n,) or (n, components), got {M.shape}")
    if chains < 1 or M.shape[0] % chains or M.shape[0] // chains < 5:
        raise PikflowError(f"{M.shape[0]} magnetisations do not split into {chains} chains of at least 5 each")
    return {k: Estimate(value, _err(series, chains)) for k, (value, series) in observable_series(M, volume).items()}


def observable_series(magnetisation, volume: int) -> dict[str, tuple[float, np.ndarray]]:
    r"""``abs_m``, ``chi``, ``binder`` of a series of :math:`M`: each its value and its linearised series.

    With :math:`a_k` the series of :math:`|m|^k` and :math:`b_k` their means: :math:`|m|` itself,
    :math:`V(a_2 - 2b_1a_1)` for :math:`\chi = V(b_2 - b_1^2)` and :math:`2b_4a_2/(3b_2^3) - a_4/(3b_2^2)` for
    :math:`U = 1 - b_4/(3b_2^2)`: the series whose mean's error is the observable's (Wolff's derived quantities),
    and whose autocorrelations set it. ``magnetisation``: ``(n,)``, or ``(n, components)`` as in
    :func:`chain_observables`.
    """
    m = np.asarray(magnetisation, dtype=float) / volume
    if m.ndim == 2:
        a2 = np.sum(m**2, axis=1)
        a1, a4 = np.sqrt(a2), a2**2
    else:
        a1, a2, a4 = np.abs(m), m**2, m**4
    b1, b2, b4 = a1.mean(), a2.mean(), a4.mean()
    return {
        "abs_m": (b1, a1),
        "chi": (volume * (b2 - b1**2), volume * (a2 - 2 * b1 * a1)),
        "binder": (1 - b4 / (3 * b2**2), -a4 / (3 * b2**2) + 2 * b4 * a2 / (3 * b2**3)),
    }


def _err(series, chains: int = 1) -> float:
    """The Gamma-method error of the mean of ``series``, split into ``chains`` replica (one chain: 1)."""
    s = np.asarray(series)
    if not np.ptp(s) > 0:
        return 0.0
    s = s - s.mean()
    return gamma_method(s.reshape(chains, -1) if chains > 1 else s).error


def flow_observables(samples, volume: int, key) -> tuple[dict[str, Estimate], float]:
    r"""Observables after the IMH step on the flow's samples; returns them and the acceptance rate.

    Non-finite samples (configuration or weight) are never accepted (zero weight).
    """
    ok = samples.finite
    lw = np.where(ok, np.asarray(samples.log_w, dtype=float), -np.inf)
    res = imh_chain(key, lw)
    M = np.where(ok[:, None], samples.magnetisations(), 0.0)  # from the configurations, or streamed
    return chain_observables(res.chain(M if M.shape[1] > 1 else M[:, 0]), volume), res.acceptance


def magnetisations(fields, volume: int) -> np.ndarray:
    r""":math:`M_a = \sum_n\phi_{a,n}` per configuration, shape ``(n_samples, components)`` (``components``
    is ``fields[0].size // volume``: 1 for configurations of the lattice's shape)."""
    x = np.asarray(fields)
    return x.reshape(x.shape[0], -1, volume).sum(axis=2)


def chain_two_point(fields, components: int = 1) -> list[Estimate]:
    r"""The connected two-point function :math:`G(r) = \langle C(r)\rangle - \langle m\rangle^2` along a chain.

    :math:`C(r)` as in :func:`two_point_series`; Gamma-method errors of the linearised
    fluctuations :math:`C_i(r) - 2\bar m\,m_i`. ``fields``: the chain, shape ``(n, *lattice)``
    (``(n, components, *lattice)``: :math:`\bar m\cdot\bar m` with the vector magnetisation).
    """
    x = np.asarray(fields, dtype=float)
    if x.shape[0] < 10:
        raise SamplingError(f"need a chain of at least 10 configurations, got {x.shape[0]}")
    return _connected(two_point_series(x, components), _site_means(x, components))


def _connected(C, m) -> list[Estimate]:
    mbar = m.mean(axis=0)
    if m.ndim == 2:  # vector magnetisation: mbar . mbar and the linearised 2 mbar . m_i
        lin = m @ mbar
        return [Estimate(C[:, r].mean() - mbar @ mbar, _err(C[:, r] - 2 * lin)) for r in range(C.shape[1])]
    return [Estimate(C[:, r].mean() - mbar**2, _err(C[:, r] - 2 * mbar * m)) for r in range(C.shape[1])]


def flow_two_point(samples, key, components: int = 1) -> list[Estimate]:
    r"""The connected two-point function :math:`G(r)` after the IMH step (same chain as :func:`flow_observables`).

    Entry ``r`` is :math:`G(r)`, :math:`r = 0..L_{\min}/2`; for a free field
    :math:`G(r) = \frac1V\sum_k \cos(k_\mu r)/K(k)` (tested).
    """
    ok = samples.finite
    lw = np.where(ok, np.asarray(samples.log_w, dtype=float), -np.inf)
    res = imh_chain(key, lw)
    C, m = samples.two_point()  # from the configurations, or streamed (sample(..., keep_fields=False))
    return _connected(np.asarray(res.chain(C)), np.asarray(res.chain(m)))


#: What a lattice observable given as text is, for the error of one that does not parse.
SITE_DENSITY_HINT = (
    "a lattice observable is a site density without couplings, averaged over the sites, "
    "e.g. 'phi**2' or 'phi*shift(phi, 0)'"
)


def site_density(text: str, shape) -> tuple:
    r"""``(f, components)`` of a site density :math:`o_n` given as text: :math:`f(\phi) = \frac1V\sum_n o_n(\phi)`
    for one configuration on a lattice of ``shape``, and the field components it reads. Raises
    :class:`~pikflow.PikflowError` with :data:`SITE_DENSITY_HINT` when the text is not such a density."""
    try:
        density = LatticePath(LatticeAction(text, tuple(shape)), {})
    except PikflowError as err:
        raise PikflowError(f"{text!r}: {err} ({SITE_DENSITY_HINT})") from None
    volume = int(np.prod(shape))
    return (lambda x: density.value(x, 1.0) / volume), density.action.n


def reweighted_observables(samples, volume: int) -> dict[str, Estimate]:
    r""":math:`\langle|m|\rangle`, :math:`\langle m^2\rangle` reweighted (delta-method errors; prefer IMH)."""
    Mv = samples.magnetisations() / volume
    M = Mv[:, 0] if Mv.shape[1] == 1 else np.sqrt(np.sum(Mv**2, axis=1))  # |m| with n > 1 components
    lw = np.where(np.isfinite(samples.log_w) & np.isfinite(M), samples.log_w, -np.inf)
    v, e = reweight(lw, np.stack([np.abs(M), M**2], axis=1))
    return {"abs_m": Estimate(v[0], e[0]), "m2": Estimate(v[1], e[1])}


#: Acceptance of the reference HMC below which its chains count as frozen (refused): the baselines' one.
MIN_HMC_ACCEPTANCE = MIN_ACCEPTANCE


#: The leapfrog step an adaptive (``step="auto"``) lattice HMC starts from.
AUTO_START = 0.15


@functools.lru_cache(maxsize=8)
def _sampler(path: LatticePath, n_leapfrog: int, jitter: float = 0.0):
    """The BlackJAX HMC of ``path``, cached: its compiled functions serve every time, step and ``n_samples``."""
    from ..baselines import HMC

    return HMC(path, step_size=AUTO_START, n_leapfrog=n_leapfrog, jitter=jitter)


def hmc(
    path: LatticePath,
    key,
    n_samples: int,
    *,
    time: float = 1.0,
    n_chains: int = 8,
    step: float | str = "auto",
    n_leapfrog: int = 10,
    n_therm: int = 200,
    start=None,
    progress: bool = False,
    desc: str = "HMC",
    jitter: float = 0.0,
    keep: str = "fields",
):
    r"""Hybrid Monte Carlo for :math:`e^{-\hat S_t}` (reference sampler): :class:`pikflow.baselines.HMC` on a lattice.

    The one BlackJAX HMC of pikflow, with the path's gradient stencil in the leapfrog; ``t``
    and the step are traced, so repeated calls with the same ``path``, ``n_leapfrog`` and
    ``n_chains`` reuse one compilation (any ``time``, ``step`` or ``n_samples``).

    Parameters
    ----------
    step
        The leapfrog step, or ``"auto"``: start at 0.15 and, during thermalisation only (so
        the production chain is exact), rescale it after every block of 25 trajectories by
        :math:`e^{2(a - 0.8)}` towards an acceptance :math:`a` of 0.8. A fixed step loses
        acceptance as the volume grows (0.15 gave 0.03 on 64x64 at :math:`(-1, 1)`).
    n_therm
        Thermalisation trajectories per chain, rounded up to whole blocks of 25
        (``max(1, n_therm // 25)`` blocks with ``step="auto"``).
    start
        Starting configurations ``(n_chains, *field_shape)``; ``None`` or ``"hot"`` (default): 0.1 times
        normal draws; ``"ordered"``: :func:`ordered_start`, the uniform field that minimises the action
        (half the chains at :math:`+c`, half at :math:`-c` for a :math:`Z_2`-symmetric one). In the broken
        phase a hot start leaves domain walls that a short run does not anneal on a large lattice
        (32x32 at :math:`(\kappa, \lambda_\kappa) = (0.3, 0.01)`: a matched base from such chains gave
        ESS/N 0.000, from ordered chains 0.98).
    progress, desc
        A progress bar over trajectories (thermalisation and production), labelled ``desc``.
        The chain is the same with or without it.
    jitter
        Each chain's leapfrog step drawn per trajectory, uniform in :math:`[(1-j)\epsilon, (1+j)\epsilon]`
        (:class:`pikflow.baselines.HMC`), against trajectory lengths resonant with a mode; default 0.
    keep
        ``"fields"`` (default): every configuration; ``"magnetisation"``: only
        :math:`M_a = \sum_n\phi_{a,n}` of each (computed inside the compiled trajectories: the same
        chains, without storing :math:`V` numbers per trajectory; a reference run for the
        magnetisation's observables then costs only its trajectories).

    Returns
    -------
    fields : numpy.ndarray, shape ``(n_chains, n_samples // n_chains, *lattice)``
        Configurations after every trajectory (after ``n_therm`` thermalisation trajectories);
        ``(..., n, *lattice)`` for ``n > 1`` field components. With ``keep="magnetisation"``:
        :math:`M`, shape ``(n_chains, n_samples // n_chains)`` (``(..., n)`` for ``n > 1`` components).
    acceptance : float
        The Metropolis acceptance rate.

    Raises
    ------
    SamplingError
        When fewer than :data:`MIN_HMC_ACCEPTANCE` of the production trajectories are
        accepted (a frozen chain, whose configurations are not samples), or a
        configuration is not finite.
    """
    if isinstance(step, str) and step != "auto":
        raise PikflowError(f"step must be a positive number or 'auto', got {step!r}")
    if not isinstance(step, str) and not (isinstance(step, int | float | np.floating) and step > 0):
        raise PikflowError(f"step must be a positive number or 'auto', got {step!r}")
    if n_samples < n_chains:
        raise PikflowError(f"n_samples ({n_samples}) must be at least n_chains ({n_chains})")
    if keep not in ("fields", "magnetisation"):
        raise PikflowError(f"keep must be 'fields' or 'magnetisation', got {keep!r}")
    # cached per (path, n_leapfrog[, jitter]): the same key as a caller's _sampler(path, n) when jitter is 0
    sampler = _sampler(path, int(n_leapfrog), float(jitter)) if jitter else _sampler(path, int(n_leapfrog))
    shape = tuple(path.field_shape)
    k_run, k0 = jax.random.split(key)
    if isinstance(start, str) and start not in ("hot", "ordered"):
        raise PikflowError(f"start must be 'hot', 'ordered' or an array of configurations, got {start!r}")
    if start is None or (isinstance(start, str) and start == "hot"):
        x = 0.1 * _random.normal(k0, (n_chains, *shape))
    elif isinstance(start, str):
        x = ordered_start(path, n_chains, k0, time=time)
    else:
        x = start
    per = n_samples // n_chains
    res = sampler.run(
        float(time),
        n=per,
        chains=int(n_chains),
        thermalisation=int(n_therm),
        seed=k_run,
        init=x,
        chunk="block",
        progress=progress,
        desc=desc,
        step_size=step if isinstance(step, str) else float(step),
        keep=None if keep == "fields" else _magnetisation_of(path.action.n),
    )
    if keep == "magnetisation":
        M = res.positions.reshape(n_chains, per, path.action.n)
        return (M[..., 0] if path.action.n == 1 else M), res.acceptance
    return res.positions.reshape(n_chains, per, *shape), res.acceptance


@functools.cache
def _magnetisation_of(components: int):
    """``M_a`` of one flat configuration (components first), one function per component count (one compilation)."""
    return lambda x, t: x.reshape(components, -1).sum(-1)


def ordered_start(path: LatticePath, n_chains: int, key, *, time: float = 1.0, noise: float = 0.1):
    r"""Starting configurations at the uniform field that minimises :math:`\hat S_t` (an ordered, "cold" start).

    :math:`c^* = \arg\min_c \hat S_t(c\,e)` over uniform fields along the first component
    :math:`e` (a grid of 4001 points on :math:`[-20, 20]`, refined once around the best), plus
    ``noise`` times normal draws. With :math:`Z_2` symmetry the chains alternate between
    :math:`+|c^*|` and :math:`-|c^*|`. For :math:`\phi^4` (eq. 31) with :math:`m^2 < 0`,
    :math:`c^{*2} = -m^2/\lambda`; where the minimum is at 0 this is the hot start.
    """
    shape = tuple(path.field_shape)
    e = np.ones(shape)
    if path.action.n > 1:  # shape (n, *lattice): along the first component
        e[1:] = 0.0
    value = jax.jit(jax.vmap(lambda c: path.value(c * e, time)))
    coarse = np.linspace(-20.0, 20.0, 4001)
    best = float(coarse[int(np.nanargmin(np.asarray(value(coarse))))])
    h = coarse[1] - coarse[0]
    fine = np.linspace(best - h, best + h, 201)
    best = float(fine[int(np.nanargmin(np.asarray(value(fine))))])
    z2 = path.symmetry().z2
    sign = np.where(np.arange(n_chains) % 2 == 0, 1.0, -1.0) if z2 else np.ones(n_chains)
    c = abs(best) if z2 else best
    x0 = sign.reshape((-1,) + (1,) * len(shape)) * c * e[None]
    return x0 + noise * _random.normal(key, (n_chains, *shape))


def matched_base(
    fields,
    *,
    symmetrise: bool = True,
    floor: float = 1e-6,
    mixture: bool = False,
    symmetry=None,
    components=None,
    smooth: int | None = None,
) -> GaussianLatticeBase:
    r"""The Gaussian base whose propagator is the two-point function of ``fields`` (the user guide).

    :math:`G(k) = \langle|\tilde\phi_k|^2\rangle / V` estimated from configurations of shape
    ``(n, *lattice)`` (optionally with log weights via :func:`matched_base_weighted`),
    averaged over momentum orbits when ``symmetrise``: the orbits of ``symmetry`` (a
    :class:`Symmetry`, e.g. ``path.symmetry()``: only the reflections and axis permutations of
    the action; :func:`fit_lattice` passes it), or with ``symmetry=None`` of the lattice's
    whole point group (right only for an isotropic action). A ``symmetry`` without
    :math:`Z_2` gives the Gaussian around the mean :math:`\langle m\rangle` (``mean``) with the
    connected :math:`G(0) = V(\langle m^2\rangle - \langle m\rangle^2)`. The mixture assumes
    :math:`\phi\to-\phi` symmetry: a ``symmetry`` without :math:`Z_2` makes ``mixture`` an error.

    With ``mixture``, the zero mode is modelled by the two-Gaussian mixture
    :math:`\tfrac12N(m_0,\sigma^2) + \tfrac12N(-m_0,\sigma^2)` of the magnetisation
    :math:`m = M/V` matched to its second and fourth moments: :math:`m_0^4 = \tfrac32\langle m^2\rangle^2U`,
    :math:`\sigma^2 = \langle m^2\rangle - m_0^2`, with the Binder cumulant
    :math:`U = 1 - \langle m^4\rangle/(3\langle m^2\rangle^2)` (a Gaussian has :math:`U = 0`, two sharp
    peaks :math:`U = 2/3`); for :math:`U \le 0` it is the Gaussian. The non-zero momenta keep :math:`G(k)`.

    With ``components`` :math:`n > 1` (default ``symmetry.components``) ``fields`` has shape
    ``(N, n, *lattice)``; :math:`G_a(k)` per component, averaged over the components when they
    share it (:attr:`Symmetry.shared_components`: :math:`O(n)`); no mixture or mean.

    With ``smooth`` :math:`= D` (one component) the non-zero momenta take the degree-:math:`D` polynomial
    fit of :math:`1/G` in the :math:`\hat k_\mu^2` instead of the per-orbit estimates
    (:func:`smooth_propagator`): the base that merged Fourier orbits (``FourierTwoPoint(bins=...)``) need.
    """
    return matched_base_weighted(
        fields,
        None,
        symmetrise=symmetrise,
        floor=floor,
        mixture=mixture,
        symmetry=symmetry,
        components=components,
        smooth=smooth,
    )


def mixture_moments(m2: float, m4: float, abs_m: float | None = None) -> tuple[float, float]:
    r""":math:`(m_0, \sigma^2)` of the symmetric two-Gaussian mixture with the moments :math:`\langle m^{2,4}\rangle`.

    :math:`\langle m^4\rangle - 3\langle m^2\rangle^2 = -2m_0^4` for the mixture, so
    :math:`m_0 = [(3\langle m^2\rangle^2 - \langle m^4\rangle)/2]^{1/4}` (0 when that is negative)
    and :math:`\sigma^2 = \langle m^2\rangle - m_0^2`. With ``abs_m`` :math:`= \langle|m|\rangle`, the width
    is at least :math:`\mathrm{Var}|m| = \langle m^2\rangle - \langle|m|\rangle^2`, the width of separated
    peaks, which stays accurate where the fourth moment's noise could drive :math:`\sigma^2` to zero;
    :math:`m_0^2 = \langle m^2\rangle - \sigma^2` then keeps the second moment. The width is kept at least
    :math:`10^{-12}\langle m^2\rangle` (not a fixed fraction: the peaks of the broken phase narrow like
    :math:`1/\sqrt V`, :math:`\sigma^2/\langle m^2\rangle \approx 8\cdot 10^{-6}` at 128x128 for kappa = 0.3).
    """
    m04 = max(0.0, (3 * m2**2 - m4) / 2)
    var = m2 - m04**0.5
    if abs_m is not None and m04 > 0:
        var = max(var, m2 - abs_m**2)
    var = min(max(var, 1e-12 * m2), m2)
    return float(np.sqrt(m2 - var)), float(var)


def matched_base_weighted(
    fields,
    log_w=None,
    *,
    symmetrise: bool = True,
    floor: float = 1e-6,
    mixture: bool = False,
    symmetry=None,
    components=None,
    smooth: int | None = None,
) -> GaussianLatticeBase:
    r"""As :func:`matched_base`, with importance weights ``exp(log_w)`` (iterated reweighting from a flow)."""
    from ..action._geometry import Lattice

    if components is None:
        components = 1 if symmetry is None else symmetry.components
    if components > 1:
        if smooth is not None:
            raise PikflowError("smoothing the matched propagator is for one field component: set smooth=None")
        return _matched_components(fields, log_w, symmetrise, floor, mixture, symmetry, int(components))
    x = np.asarray(fields, dtype=float)
    shape = x.shape[1:]
    lat = Lattice(shape)
    x = x.reshape(-1, *shape)
    if symmetry is not None and tuple(symmetry.lattice.shape) != tuple(shape):
        raise PikflowError(f"the symmetry is of the lattice {list(symmetry.lattice.shape)}, the fields {list(shape)}")
    if mixture and symmetry is not None and not symmetry.z2:
        raise PikflowError(
            "the zero-mode mixture is symmetric under phi -> -phi, which this action is not: use the Gaussian base"
        )
    axes = tuple(range(1, x.ndim))
    power = np.abs(np.fft.fftn(x, axes=axes)) ** 2 / lat.volume
    if log_w is None:
        w = np.full(x.shape[0], 1.0 / x.shape[0])
    else:
        lw = np.asarray(log_w, dtype=float)
        lw = np.where(np.isfinite(lw), lw, -np.inf)
        w = np.exp(lw - lw.max())
        w = w / w.sum()
    G = np.tensordot(w, power, axes=1)
    if symmetrise:
        ids, sizes = lat.momentum_orbits() if symmetry is None else symmetry.orbits()
        G = (np.bincount(ids.reshape(-1), weights=G.reshape(-1)) / sizes)[ids]
    m0 = mean = 0.0
    m = x.reshape(x.shape[0], -1).mean(axis=1)
    if mixture:
        m0, var = mixture_moments(float(w @ m**2), float(w @ m**4), float(w @ np.abs(m)))
        G.flat[0] = lat.volume * var
    elif symmetry is not None and not symmetry.z2:
        # no phi -> -phi symmetry: <phi> may be non-zero; a Gaussian around it with the connected G(0)
        mean = float(w @ m)
        G.flat[0] = lat.volume * max(float(w @ m**2) - mean**2, 1e-3 * float(w @ m**2))
    if smooth is not None:
        G, _ = smooth_propagator(np.maximum(G, floor), lat, smooth, symmetry)
    return GaussianLatticeBase.from_propagator(np.maximum(G, floor), m0, mean)


def _weights(log_w, n: int) -> np.ndarray:
    if log_w is None:
        return np.full(n, 1.0 / n)
    lw = np.asarray(log_w, dtype=float)
    lw = np.where(np.isfinite(lw), lw, -np.inf)
    w = np.exp(lw - lw.max())
    return w / w.sum()


def _matched_components(fields, log_w, symmetrise, floor, mixture, symmetry, n: int) -> GaussianLatticeBase:
    """:func:`matched_base_weighted` for ``n > 1`` components: :math:`G_a(k)` per component, shared if symmetric."""
    from ..action._geometry import Lattice

    if mixture:
        raise PikflowError("the zero-mode mixture base is for single-component fields; use the Gaussian base")
    if symmetry is not None and not symmetry.z2:
        raise PikflowError(
            "a multi-component action without phi -> -phi symmetry (a non-zero <phi>) has no matched base yet: "
            "add the symmetric terms, or use base='free' with a Gaussian start"
        )
    x = np.asarray(fields, dtype=float)
    shape = tuple(symmetry.lattice.shape) if symmetry is not None else x.shape[2:]
    if x.ndim < 3 or x.shape[x.ndim - len(shape) - 1 :] != (n, *shape):
        raise PikflowError(f"{n}-component configurations must have shape (N, {n}, *lattice), got {x.shape}")
    x = x.reshape(-1, n, *shape)
    lat = Lattice(shape)
    axes = tuple(range(2, x.ndim))
    power = np.abs(np.fft.fftn(x, axes=axes)) ** 2 / lat.volume
    G = np.tensordot(_weights(log_w, x.shape[0]), power, axes=1)  # (n, *lattice)
    if symmetrise:
        ids, sizes = lat.momentum_orbits() if symmetry is None else symmetry.orbits()
        G = np.stack([(np.bincount(ids.reshape(-1), weights=g.reshape(-1)) / sizes)[ids] for g in G])
    if symmetry is None or symmetry.shared_components:
        G = np.broadcast_to(G.mean(axis=0), G.shape).copy()
    return GaussianLatticeBase.from_propagator(np.maximum(G, floor), components=n)
