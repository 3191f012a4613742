r"""Exact 0-D references by one-dimensional quadrature (numpy/scipy only).

For a path of actions :math:`S_t(\phi)` of one real variable the density
:math:`p_t \propto e^{-S_t}` is transported by the velocity ("kernel") that solves the
Wegner / continuity equation (paper eq. 14, the user guide)

.. math::  \partial_\phi v_t - v_t\,\partial_\phi S_t
           = \partial_t S_t - \langle \partial_t S_t \rangle_t .

Multiplying by :math:`e^{-S_t}` and integrating with :math:`p_t v_t \to 0` at
:math:`\phi \to -\infty` gives

.. math::  v_t(\phi) = e^{S_t(\phi)} \int_{-\infty}^{\phi} e^{-S_t(\psi)}
           \bigl(\partial_t S_t(\psi) - \langle \partial_t S_t \rangle_t\bigr)\,d\psi
           = -e^{S_t(\phi)} \int_{\phi}^{\infty} (\dots)\,d\psi ,

the two forms being equal because the integrand integrates to zero over the real line.
This module is an independent reference implementation: no jax, no symbolic algebra.
"""

import numpy as np

__all__ = ["QuadratureReference"]

_ORDER = 6  # Gauss-Legendre nodes per panel
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_ORDER)
_CACHE_SIZE = 16


class QuadratureReference:
    r"""Exact 0-D references by quadrature for a path of actions S_t(phi), one real field.

    Integrals run over a finite range :math:`[a, b]` split into ``n_grid - 1`` equal
    panels, each with a 6-point Gauss-Legendre rule (spectrally accurate for analytic,
    super-exponentially decaying integrands). All exponents are shifted by
    :math:`\min S_t` so nothing overflows.

    Parameters
    ----------
    action, dsdt : callable
        ``action(t, phi)`` and ``dsdt(t, phi)``, numpy-vectorised in ``phi``, returning
        :math:`S_t(\phi)` and :math:`\partial_t S_t(\phi)`.
    lower, upper : float, optional
        Integration range. If ``None`` it is found per ``t`` by scanning outward from the
        minimum on a coarse grid until :math:`S_t - \min S_t >` ``tail_cut`` (= 80) at
        both ends; a ``ValueError`` is raised if this fails within :math:`|\phi| < 10^4`
        (the action is not normalisable).
    n_grid : int
        Number of panel boundaries of the fine grid.
    """

    tail_cut = 80.0
    max_range = 1.0e4

    def __init__(self, action, dsdt, *, lower=None, upper=None, n_grid=20001):
        if n_grid < 2:
            raise ValueError("n_grid must be at least 2")
        if lower is not None and upper is not None and not lower < upper:
            raise ValueError(f"need lower < upper, got {lower!r}, {upper!r}")
        self.action, self.dsdt = action, dsdt
        self.lower, self.upper, self.n_grid = lower, upper, int(n_grid)
        self._cache = {}

    @classmethod
    def phi4(cls, m2_start=1.0, m2_end=-2.0, lam_start=0.0, lam_end=0.5, **kw):
        r"""The paper's 0-D path (eq. 22), :math:`\lambda/4` convention.

        .. math::  S_t = \tfrac12 m^2(t)\,\phi^2 + \tfrac{\lambda(t)}{4}\,\phi^4,
                   \quad m^2(t) = m^2_0 + (m^2_1 - m^2_0)\,t,
                   \quad \lambda(t) = \lambda_0 + (\lambda_1 - \lambda_0)\,t .
        """
        dm2, dlam = m2_end - m2_start, lam_end - lam_start

        def action(t, phi):
            phi2 = np.square(phi)
            return 0.5 * (m2_start + dm2 * t) * phi2 + 0.25 * (lam_start + dlam * t) * phi2**2

        def dsdt(t, phi):
            phi2 = np.square(phi)
            return 0.5 * dm2 * phi2 + 0.25 * dlam * phi2**2

        return cls(action, dsdt, **kw)

    # ------------------------------------------------------------------ internals
    def _range(self, t):
        """Integration range at ``t``: the given bounds, or found by an outward scan."""
        if self.lower is not None and self.upper is not None:
            return float(self.lower), float(self.upper)
        halves = [2.0**k for k in range(14)] + [self.max_range]
        for half in halves:
            x = np.linspace(-half, half, 4001)
            s = np.asarray(self.action(t, x), dtype=float)
            if np.isnan(s).any():
                raise ValueError(f"action returned NaN at t={t} within |phi| <= {half}")
            ds = s - s.min()
            if ds[0] > self.tail_cut and ds[-1] > self.tail_cut:
                inside = np.flatnonzero(ds <= self.tail_cut)
                lo = x[max(inside[0] - 1, 0)] if self.lower is None else self.lower
                hi = x[min(inside[-1] + 1, x.size - 1)] if self.upper is None else self.upper
                return float(lo), float(hi)
        raise ValueError(
            f"action at t={t} does not grow by {self.tail_cut} above its minimum at both "
            f"ends within |phi| < {self.max_range:g}: exp(-S_t) is not normalisable"
        )

    def _layer(self, t):
        """Quadrature data at ``t`` (cached): panels, shifted weights, <dS/dt>."""
        t = float(t)
        if t in self._cache:
            return self._cache[t]
        a, b = self._range(t)
        edges = np.linspace(a, b, self.n_grid)
        half = 0.5 * np.diff(edges)[:, None]
        nodes = edges[:-1, None] + half * (1.0 + _GL_X)
        s = np.asarray(self.action(t, nodes), dtype=float)
        s_min = float(s.min())
        wexp = half * _GL_W * np.exp(-(s - s_min))  # weights times e^{-(S - S_min)}
        z = wexp.sum()
        ds = np.asarray(self.dsdt(t, nodes), dtype=float)
        mean_ds = float((wexp * ds).sum() / z)
        panels = (wexp * (ds - mean_ds)).sum(axis=1)
        mass = np.concatenate([[0.0], np.cumsum(np.abs(panels))])
        layer = {
            "edges": edges,
            "nodes": nodes,
            "wexp": wexp,
            "z": z,
            "s_min": s_min,
            "mean_ds": mean_ds,
            "left": np.concatenate([[0.0], np.cumsum(panels)]),  # int_a^{edge_k}
            "right": np.concatenate([np.cumsum(panels[::-1])[::-1], [0.0]]),  # int_{edge_k}^b
            "mass": mass,
        }
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[t] = layer
        return layer

    def _partial(self, t, lo, hi, lay):
        r"""Gauss-Legendre :math:`\int_{lo}^{hi} e^{-(S-S_\min)}(\partial_t S - \langle\cdot\rangle)`."""
        half = 0.5 * (hi - lo)[:, None]
        x = lo[:, None] + half * (1.0 + _GL_X)
        f = np.exp(-(self.action(t, x) - lay["s_min"])) * (self.dsdt(t, x) - lay["mean_ds"])
        return (half * _GL_W * f).sum(axis=1)

    # ------------------------------------------------------------------ public API
    def log_z(self, t):
        r""":math:`\log Z_t = \log \int e^{-S_t(\phi)}\,d\phi` (shifted exponent)."""
        lay = self._layer(t)
        return float(np.log(lay["z"]) - lay["s_min"])

    def expectation(self, t, fn):
        r""":math:`\langle f \rangle_t = Z_t^{-1} \int f(\phi)\,e^{-S_t(\phi)}\,d\phi`."""
        lay = self._layer(t)
        return float((lay["wexp"] * fn(lay["nodes"])).sum() / lay["z"])

    def sample(self, t, n, seed=0):
        r"""``n`` independent exact samples of :math:`p_t` by inverse CDF (numpy, seeded).

        The CDF is known at every panel edge from the quadrature; inside the panel that
        holds :math:`u` it is inverted by safeguarded Newton steps on the panel's own
        Gauss-Legendre integral of :math:`e^{-S_t}` (bisection fallback), to about
        :math:`10^{-12}` in :math:`\phi`. Used as the target's side of the hole check
        (``target_ess``): samples that no flow was involved in.
        """
        n = int(n)
        if n <= 0:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        lay = self._layer(t)
        edges, s_min = lay["edges"], lay["s_min"]
        cdf = np.concatenate([[0.0], np.cumsum(lay["wexp"].sum(axis=1))]) / lay["z"]
        u = np.random.default_rng(seed).uniform(size=n)
        k = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, edges.size - 2)
        lo, hi = edges[k].copy(), edges[k + 1].copy()
        target = (u - cdf[k]) * lay["z"]  # mass still to cover inside the panel (shifted units)

        def mass(x):  # int_{edges[k]}^{x} e^{-(S - S_min)}
            half = 0.5 * (x - edges[k])[:, None]
            y = edges[k][:, None] + half * (1.0 + _GL_X)
            return (half * _GL_W * np.exp(-(np.asarray(self.action(t, y), dtype=float) - s_min))).sum(axis=1)

        x = edges[k] + (hi - lo) * np.clip(target / np.maximum(cdf[k + 1] - cdf[k], 1e-300) / lay["z"], 0, 1)
        for _ in range(60):
            f = mass(x) - target
            lo = np.where(f < 0, x, lo)
            hi = np.where(f >= 0, x, hi)
            dens = np.exp(-(np.asarray(self.action(t, x), dtype=float) - s_min))
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = x - f / dens
            inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
            x = np.where(inside, newton, 0.5 * (lo + hi))
            if np.all(np.abs(f) <= 1e-13 * lay["z"]) or np.all(hi - lo <= 1e-13 * (1 + np.abs(x))):
                break
        return x

    def density(self, t, phi):
        r"""Normalised density :math:`p_t(\phi) = e^{-S_t(\phi)} / Z_t`."""
        phi = np.asarray(phi, dtype=float)
        return np.exp(-np.asarray(self.action(t, phi), dtype=float) - self.log_z(t))

    def kernel(self, t, phi):
        r"""Exact velocity :math:`v_t(\phi)` (integrated eq. 14, the user guide).

        .. math::  v_t(\phi) = e^{S_t(\phi)} \int_{-\infty}^{\phi} e^{-S_t(\psi)}
                   \bigl(\partial_t S_t(\psi) - \langle \partial_t S_t\rangle_t\bigr)\,d\psi .

        Per point the tail with the smaller absolute mass is integrated (the left form,
        or minus the right-tail form), so :math:`e^{S}` never multiplies a cancellation
        error. Full panels are summed cumulatively; the panel containing ``phi`` is
        integrated exactly up to ``phi`` by its own Gauss-Legendre rule. Points outside
        the integration range (where :math:`S_t - \min S_t > 80`) give NaN.
        """
        phi = np.asarray(phi, dtype=float)
        flat = phi.ravel()
        lay = self._layer(t)
        edges = lay["edges"]
        out = np.full(flat.shape, np.nan)
        ok = (flat >= edges[0]) & (flat <= edges[-1])
        x = flat[ok]
        k = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
        use_left = lay["mass"][k] <= 0.5 * lay["mass"][-1]
        left = lay["left"][k] + self._partial(t, edges[k], x, lay)
        right = lay["right"][k + 1] + self._partial(t, x, edges[k + 1], lay)
        tail = np.where(use_left, left, -right)
        s = np.asarray(self.action(t, x), dtype=float)
        out[ok] = np.exp(s - lay["s_min"]) * tail
        return out.reshape(phi.shape)
