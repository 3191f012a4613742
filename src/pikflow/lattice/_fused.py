r"""One velocity evaluation of a :class:`LatticeBasis` with the Fourier transforms shared (issue #20).

The gradient form :math:`v_t = -\partial\Omega_t` (paper eq. 32) with :math:`\Omega_t = \sum_j a_j T_j`
and its divergence :math:`-\Delta\Omega_t` (the :math:`d\log q/dt` of eq. 11) need, per
configuration, the smoothed fields :math:`\psi_s = S_s\phi` of every smoothing scale, pointwise
functions of them, and :math:`\partial\Omega = \sum_s S_s[\text{inner}_s] + P\phi + \dots`. The
per-family methods of :mod:`._basis` transform :math:`\phi` once per family and once more for the
Laplacian; here:

* one real FFT (``rfftn``) of :math:`\phi`;
* the filters of all smoothed families (deduplicated: equal scales and precision are one
  filter) applied in one batched multiply, the :math:`\psi_s` back in one batched ``irfftn``;
* the powers and products formed pointwise, coefficients contracted, one elementwise pass per
  family (:mod:`._pointwise`); their gradient contributions :math:`\text{inner}_s` transformed
  in one batched ``rfftn``, filtered, summed over scales together with the Fourier two-point
  term (diagonal in the same transform) and brought back in one ``irfftn``;
* where every smoothed family asks for it (``smoothing="lattice"``: filters that are products over the
  axes), the lattice is small and the run has one device (:mod:`._separable`), the smoothing and its
  adjoint by one small matrix per axis instead of the batched transforms (the Fourier two-point term
  keeps its pair);
* the Laplacians analytic (:math:`\Delta T_{s,p} = h_s\sum_n f_p''(\psi_s)`), as in the families;
  their summed density is one more channel of that batched ``rfftn`` (its :math:`k = 0` mode is
  the site sum), so no pass over the fields is spent on the reduction.

The real part of :math:`\mathcal F^{-1}[f\,\mathcal F x]` equals :math:`\mathcal F^{-1}[\bar f\,\mathcal F x]`
with the Hermitian part :math:`\bar f(k) = (f(k) + f(-k))/2`, so the half-spectrum filters are
symmetrised: the same numbers as the families' complex transforms, to rounding (tested).

Constants as arguments: every per-basis number the evaluation needs (the deduplicated
filters, the taming widths, :math:`h_s`, :math:`h_{ab}`, the magnetisation widths and
:math:`\log\cosh` coupling) is a leaf of :attr:`FusedEvaluator.params`, passed to
:meth:`FusedEvaluator.evaluate` and :meth:`FusedEvaluator.columns` as a traced argument, and
everything baked into the compiled code is in :attr:`FusedEvaluator.key`. Two bases with equal
keys evaluate with one compiled function (:mod:`pikflow.flow._compiled`): the candidates of
:func:`fit_lattice` (taming widths, base precisions) share one compilation.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import BasisError
from ._basis import (
    FourierTwoPoint,
    LatticeBasis,
    Magnetisation,
    SmoothedPowers,
    SmoothedProducts,
    _tamed_square,
    site_sum,
    tamed_power_derivatives,
)
from ._basis_ridge import SmoothedRidges, ridge_columns
from ._pointwise import powers_part, products_part, ridges_part
from ._separable import axis_factors, hermitian_part, smooth, unsmooth


def half_spectrum(f: np.ndarray) -> np.ndarray:
    r"""The Hermitian part :math:`(f(k) + f(-k))/2` of a filter on the FFT grid, on the ``rfftn`` half (last axes)."""
    f = np.asarray(f)
    return hermitian_part(f)[..., : f.shape[-1] // 2 + 1]


def _half_batched(filters: np.ndarray, d: int) -> np.ndarray:
    return np.stack([half_spectrum(f) for f in np.asarray(filters).reshape((-1,) + filters.shape[-d:])])


def _progression(idx) -> tuple[int, int] | None:
    """``(start, step)`` when the scale indices ``idx`` are an increasing arithmetic progression."""
    idx = np.asarray(idx)
    step = int(idx[1] - idx[0]) if len(idx) > 1 else 1
    if step >= 1 and np.array_equal(idx, idx[0] + step * np.arange(len(idx))):
        return int(idx[0]), step
    return None


def _take(psi, idx):
    """``psi[idx]`` along the scale axis as a (strided) slice where possible: no gather in the compiled code."""
    prog = _progression(idx)
    if prog is None:
        return jnp.stack([psi[i] for i in idx])
    start, step = prog
    return psi[start : start + step * (len(idx) - 1) + 1 : step]


def _place(part, idx, n: int):
    """``part`` (a slice per scale of ``idx``) on all ``n`` scales, zero elsewhere (an interior pad if possible)."""
    prog = _progression(idx)
    if prog is None:
        return jnp.zeros((n,) + part.shape[1:], dtype=part.dtype).at[np.asarray(idx)].set(part)
    start, step = prog
    last = start + step * (len(idx) - 1)
    config = [(start, n - 1 - last, step - 1)] + [(0, 0, 0)] * (part.ndim - 1)
    return jax.lax.pad(part, jnp.zeros((), dtype=part.dtype), config)


class FusedEvaluator:
    r""":math:`(\partial\Omega, \Delta\Omega)` of a :class:`LatticeBasis` at one configuration, transforms shared.

    Families other than :class:`FourierTwoPoint`, :class:`Magnetisation`, :class:`SmoothedPowers`
    and :class:`SmoothedProducts` fall back to their own ``gradient`` / ``laplacian``.
    """

    def __init__(self, basis: LatticeBasis):
        self.basis = basis
        lat = basis.lattice
        self.shape = tuple(lat.shape)
        self.d = lat.d
        self.axes = tuple(range(1, self.d + 1))
        offsets = np.concatenate([[0], np.cumsum(basis.sizes)]).astype(int).tolist()
        self._offsets = offsets[:-1]
        self.fourier, self.smoothed, self.other = [], [], []
        filters: list[np.ndarray] = []

        def scale_index(f):
            for i, g in enumerate(filters):
                if g.shape == f.shape and np.array_equal(g, f):
                    return i
            filters.append(f)
            return len(filters) - 1

        for fam, lo, hi in zip(basis.families, offsets[:-1], offsets[1:], strict=True):
            if type(fam) is FourierTwoPoint:
                self.fourier.append((fam, lo, hi))
            elif type(fam) in (SmoothedPowers, SmoothedProducts, SmoothedRidges):
                idx = [scale_index(np.asarray(f)) for f in np.asarray(fam.filters)]
                self.smoothed.append((fam, lo, hi, np.asarray(idx)))
            else:
                self.other.append((fam, lo, hi))
        self.n_scales = len(filters)
        self.filters = _half_batched(np.stack(filters), self.d) if filters else None
        #: per axis the ``(scales, L, L)`` smoothing matrices, or None (Fourier transforms): only where every
        #: smoothed family asks for them (``smoothing="lattice"``), and on one device (on several, XLA's CPU
        #: runtime handed the transform pair of the two-point term a transposed layout next to the dots and
        #: refused it, or the processes hung: SMC on 2 processes of 2 devices)
        asked = self.smoothed and all(getattr(fam, "smoothing", "precision") == "lattice" for fam, *_ in self.smoothed)
        single = jax.device_count() == 1
        self.matrices = axis_factors(np.stack(filters), self.d) if asked and single else None
        # the orbit index on the half spectrum: orbits hold -k with k (reflections), so a[ids] is Hermitian
        self._orbit_half = []
        for fam, _, _ in self.fourier:
            ids = np.asarray(fam.ids)
            if not np.array_equal(half_spectrum(ids), ids[..., : ids.shape[-1] // 2 + 1]):
                raise BasisError("the Fourier two-point orbits must hold -k with k (they do for lattice_orbits)")
            self._orbit_half.append(ids[..., : ids.shape[-1] // 2 + 1])
        self._zero_mode = any(type(fam) is SmoothedRidges and fam.zero_mode for fam, *_ in self.smoothed)
        self.params, self.key = self._params_and_key()

    def _params_and_key(self):
        """The traced constants (a pytree of arrays) and the hashable structure baked into compiled code."""
        d = self.d
        smoothed, mags = [], []
        skey = []
        for fam, lo, hi, idx in self.smoothed:
            if type(fam) is SmoothedRidges:
                smoothed.append(
                    {"weights": jnp.asarray(fam.weights), "kappa": jnp.asarray(fam.kappa), "c": jnp.asarray(fam.width)}
                )
                skey.append(("SmoothedRidges", lo, hi, tuple(idx.tolist()), fam.n, fam.zero_mode))
                continue
            w = fam._w(d)
            hab = fam.hab if type(fam) is SmoothedProducts else None
            smoothed.append({"w": w, "h": jnp.asarray(fam.h), "hab": hab})
            pairs = tuple(map(tuple, fam.pairs)) if type(fam) is SmoothedProducts else None
            skey.append((type(fam).__name__, lo, hi, tuple(idx.tolist()), fam.powers, pairs, w is None))
        okey = []
        for fam, lo, hi in self.other:
            if type(fam) is Magnetisation:
                width = None if fam.width is None else jnp.asarray(fam.width)
                b = None if fam.log_cosh is None else jnp.asarray(fam.log_cosh)
                mags.append({"width": width, "log_cosh": b})
                okey.append(("mag", lo, hi, fam.powers, fam.width is None, fam.log_cosh is None, fam.components))
            elif type(fam).__name__ == "LocalHermite":  # lowered from its SymPy terms: they are the structure
                okey.append(("local", lo, hi, tuple(str(t) for t in fam.terms)))
            else:  # unknown family: its own compiled code (the cache holds the object, so the id stays unique)
                okey.append(("family", lo, hi, id(fam)))
        fkey = tuple(
            (lo, hi, ids.tobytes(), ids.shape, np.asarray(fam.sizes).tobytes())
            for (fam, lo, hi), ids in zip(self.fourier, self._orbit_half, strict=True)
        )
        params = {
            "filters": None if self.filters is None else jnp.asarray(self.filters),
            "matrices": None if self.matrices is None else [jnp.asarray(m) for m in self.matrices],
            "smoothed": smoothed,
            "mag": mags,
        }
        separable = self.matrices is not None
        key = ("fused", self.shape, self.basis.n, fkey, self.n_scales, tuple(skey), tuple(okey), separable)
        return params, key

    def _magnetisation(self, fam, p):
        """``fam`` with its width and log cosh coupling taken from the traced parameters ``p``."""
        clone = copy.copy(fam)
        clone.width, clone.log_cosh = p["width"], p["log_cosh"]
        return clone

    # ---- one configuration
    def __call__(self, a, field):
        r""":math:`(\sum_j a_j\partial T_j(\phi),\ \sum_j a_j\Delta T_j(\phi))` for one configuration ``field``."""
        return self.evaluate(self.params, a, field)

    def evaluate(self, params, a, field):
        """:meth:`__call__` with the constants ``params`` (:attr:`params` of an evaluator of equal :attr:`key`)."""
        filters = params["filters"]
        ft = jnp.fft.rfftn(field) if self.fourier or self.matrices is None else None
        spec = None
        lap = jnp.zeros((), dtype=field.dtype)
        for (fam, lo, hi), ids in zip(self.fourier, self._orbit_half, strict=True):
            c = a[lo:hi][ids]
            spec = c * ft if spec is None else spec + c * ft
            lap = lap + jnp.dot(a[lo:hi], fam.sizes)
        separable = self.smoothed and self.matrices is not None
        m = jnp.mean(field) if self._zero_mode else None
        uniform = 0.0
        if separable:
            inner, uniform = self._pointwise(params["smoothed"], a, smooth(params["matrices"], field), m)
            lap = lap + jnp.sum(inner[-1])
            smoothed_grad = unsmooth(params["matrices"], inner[:-1])
        elif self.smoothed:
            psi = jnp.fft.irfftn(filters * ft[None], s=self.shape, axes=self.axes)
            # an explicit (identity) gather as the transform's consumer: with the fields sharded over
            # devices, an elementwise consumer lets XLA's layout assignment give the inverse FFT a
            # transposed layout that its CPU runtime refuses (RET_CHECK in fft_thunk.cc, SMC on 4 devices)
            psi = psi[np.arange(self.n_scales)]
            inner, uniform = self._pointwise(params["smoothed"], a, psi, m)
            inner_ft = jnp.fft.rfftn(inner, axes=self.axes)
            lap = lap + jnp.real(inner_ft[(-1,) + (0,) * self.d])
            part = jnp.sum(filters * inner_ft[:-1], axis=0)
            spec = part if spec is None else spec + part
        grad = jnp.zeros_like(field) if spec is None else jnp.fft.irfftn(spec, s=self.shape)
        if separable:
            grad = grad + smoothed_grad
        if self._zero_mode:
            grad = grad + uniform  # the ridge terms' zero-mode part: the same at every site
        mags = iter(params["mag"])
        for fam, lo, hi in self.other:
            if type(fam) is Magnetisation:
                _, d1, d2 = self._magnetisation(fam, next(mags))._parts(field)
                grad = grad + jnp.dot(a[lo:hi], d1)
                lap = lap + jnp.dot(a[lo:hi], d2)
            else:
                grad = grad + fam.gradient(a[lo:hi], field)
                lap = lap + fam.laplacian(a[lo:hi], field)
        return grad, lap

    def smooth(self, field):
        """The smoothed fields ``(scales, *lattice)`` of one configuration by :attr:`matrices` (which must be set)."""
        return smooth(self.params["matrices"], field)

    def unsmooth(self, inner):
        """:math:`\\sum_s S_s^T\\,\\text{inner}_s` by :attr:`matrices`: the adjoint of :meth:`smooth`, summed."""
        return unsmooth(self.params["matrices"], inner)

    def _pointwise(self, params, a, psi, m=None):
        r"""The smoothed families' gradient contributions (before smoothing) and their part of :math:`\Delta\Omega`.

        ``psi``: the smoothed fields of every scale, ``(scales, *lattice)``; ``m`` the magnetisation (for
        ridge terms with the zero mode). Returns ``inner`` of that shape with the Laplacian density as one
        more channel (:mod:`._pointwise`: one elementwise pass per family, its density summed per scale
        over the sites), and the ridge terms' uniform zero-mode part of the gradient (0.0 without).
        """
        inner, total, uniform = None, 0.0, 0.0
        for (fam, lo, hi, idx), p in zip(self.smoothed, params, strict=True):
            x = _take(psi, idx)
            if type(fam) is SmoothedRidges:  # its density is one lattice already
                part, density, zero = ridges_part(x, m, a[lo:hi], p["weights"], p["kappa"], p["c"], fam.zero_mode)
                uniform = uniform + zero
            else:
                if type(fam) is SmoothedProducts:
                    part, density = products_part(x, a[lo:hi], p["w"], p["hab"], fam.pairs, self.d)
                else:
                    part, density = powers_part(x, a[lo:hi], p["w"], p["h"], fam.powers, self.d)
                density = sum(density[j] for j in range(len(idx)))
            total = total + density
            part = _place(part, idx, self.n_scales)
            inner = part if inner is None else inner + part
        return jnp.concatenate([inner, total[None]]), uniform

    # ---- the rows of eq. 34 (the solve's columns)
    def columns(self, field, dS, params=None):
        r""":math:`\Delta T_j - \partial\hat S\cdot\partial T_j` of every basis function (:meth:`LatticeBasis.columns`).

        :math:`\phi` and :math:`\partial\hat S` are transformed once each; the smoothed fields of both come
        back in one batched inverse transform. ``params``: the constants (default :attr:`params`).
        """
        params = self.params if params is None else params
        ft, fd = jnp.fft.rfftn(field), jnp.fft.rfftn(dS)
        out = {}
        for (fam, lo, _), ids in zip(self.fourier, self._orbit_half, strict=True):
            prod = jnp.real(jnp.conj(fd) * ft) * self._half_weights
            seg = jax.ops.segment_sum(prod.reshape(-1), ids.reshape(-1), num_segments=fam.n)
            out[lo] = fam.sizes - seg / fam.lattice.volume
        if self.smoothed:
            spec = params["filters"][None] * jnp.stack([ft, fd])[:, None]
            both = jnp.fft.irfftn(spec, s=self.shape, axes=tuple(a + 1 for a in self.axes))
            for (fam, lo, _, idx), p in zip(self.smoothed, params["smoothed"], strict=True):
                if type(fam) is SmoothedRidges:
                    psi, sdS = both[0][idx], both[1][idx]
                    out[lo] = ridge_columns(
                        psi, sdS, field, dS, p["weights"], p["kappa"], p["c"], fam.zero_mode, self.d
                    )
                else:
                    out[lo] = self._smoothed_columns(fam, p, both[0][idx], both[1][idx])
        mags = iter(params["mag"])
        for fam, lo, _ in self.other:
            if type(fam) is Magnetisation:
                fam = self._magnetisation(fam, next(mags))
            out[lo] = fam.columns(field, dS)
        pieces = zip(self._offsets, self.basis.sizes, strict=True)
        return jnp.concatenate([jnp.broadcast_to(out[k], (n,)) for k, n in pieces])

    @property
    def _half_weights(self):
        """Multiplicity of each ``rfftn`` momentum in the full spectrum (1 on the self-conjugate planes, else 2)."""
        n = self.shape[-1]
        w = np.full(n // 2 + 1, 2.0)
        w[0] = 1.0
        if n % 2 == 0:
            w[-1] = 1.0
        return w

    def _smoothed_columns(self, fam, p, psi, sdS):
        d = self.d
        if type(fam) is SmoothedProducts:
            q, q1, q2 = _tamed_square(psi, p["w"])
            h = p["hab"]
            return jnp.stack(
                [
                    site_sum(
                        h[x, x] * q2[x] * q[y]
                        + 2 * h[x, y] * q1[x] * q1[y]
                        + h[y, y] * q[x] * q2[y]
                        - (sdS[x] * q1[x] * q[y] + sdS[y] * q[x] * q1[y]),
                        d,
                    )
                    for x, y in fam.pairs
                ]
            )
        w, h = p["w"], p["h"]
        out = []
        for power in fam.powers:
            d1, d2 = tamed_power_derivatives(psi, power, w)
            out.append(h * site_sum(d2, d) - site_sum(sdS * d1, d))
        return fam._stack(out)
