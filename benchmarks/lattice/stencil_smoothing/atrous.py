"""À-trous smoothing filters for the smoothed families: real-space stencils instead of heat kernels (issue #20).

The lean basis smooths with :math:`e^{-s(K-K_{\\min})}` on 4 scales, which costs 11 Fourier transforms an
evaluation. The chain of separable 3-tap filters

    F_0 = L_alpha,  F_1 = B_1 F_0,  F_2 = B_2 F_1,  F_3 = B_4 F_2,

with L_alpha taps (alpha/2, 1 - alpha, alpha/2) at offsets (-1, 0, 1) and B_h taps (1/4, 1/2, 1/4) at
(-h, 0, h) along every axis (symbols 1 - alpha(1 - cos k) and cos^2(hk/2)), has per-axis variances
alpha, alpha + 1/2, alpha + 5/2, alpha + 21/2: close to the lean ladder's 2s (0.125, 0.5, 2, 8 on the
matched base's span of about 8). In real space it costs one 3-tap pass per axis and level, forward and
(the filters are symmetric and nested) backward: ``L(g_0 + B_1(g_1 + B_2(g_2 + B_4 g_3))))``.
"""

import copy

import jax.numpy as jnp
import numpy as np

HOLES = (1, 2, 4)
ALPHA = 0.125


def symbols(shape, alpha=ALPHA, holes=HOLES) -> np.ndarray:
    """The chain's filters on the full FFT grid, ``(1 + len(holes), *shape)``."""
    d = len(shape)
    ks = [
        2 * np.pi * np.fft.fftfreq(n)[tuple(slice(None) if i == j else None for j in range(d))]
        for i, n in enumerate(shape)
    ]
    f = np.ones(shape)
    for k in ks:
        f = f * (1 - alpha * (1 - np.cos(k)))
    out = [f]
    for h in holes:
        for k in ks:
            f = f * 0.5 * (1 + np.cos(h * k))
        out.append(f)
    return np.stack([np.broadcast_to(x, shape) for x in out])


def retarget(fam, filters):
    """A copy of a SmoothedPowers / SmoothedProducts family with its filters (one per scale) replaced."""
    new = copy.copy(fam)
    filt = np.asarray(filters)[: len(fam.scales)]
    axes = tuple(range(1, filt.ndim))
    new.filters = jnp.asarray(filt)
    new.h = jnp.asarray(np.mean(filt**2, axis=axes))
    if fam.precision is not None:
        G = 1.0 / np.asarray(fam.precision)
    else:
        G = 1.0 / (fam.lattice.khat2() + 1.0)
    sigma = np.sqrt(np.mean(filt**2 * G, axis=axes))
    if fam.tame is not None:
        new.widths = tuple(float(fam.tame * x * np.sqrt(fam.components)) for x in sigma)
    if hasattr(fam, "hab"):
        f = filt.reshape(len(filt), -1)
        new.hab = jnp.asarray(f @ f.T / f.shape[1])
    new.scales = tuple(float(x) for x in np.arange(len(filt)))  # labels: chain levels
    return new


def separable_heat(fam):
    """The heat kernels of ``fam``'s own scales with the free lattice :math:`\\hat k^2` (separable across axes)."""
    K = np.asarray(fam.lattice.khat2())
    return np.stack([np.exp(-s * K) for s in fam.scales])


def separable_basis(preset="lean"):
    """A ``fit_lattice(basis=...)`` callable: ``preset`` with the heat kernels of the free lattice's khat^2."""
    import pikflow.lattice as pl

    def build(path, base):
        basis = pl.preset_basis(preset, path, base, tame=5.0)
        fams = []
        for fam in basis.families:
            if type(fam) in (pl.SmoothedPowers, pl.SmoothedProducts):
                labels = fam.scales
                fam = retarget(fam, separable_heat(fam))
                fam.scales = labels
            fams.append(fam)
        return pl.LatticeBasis(fams)

    return build


def atrous_basis(preset="lean", alpha=ALPHA, holes=HOLES):
    """A ``fit_lattice(basis=...)`` callable: ``preset`` with every smoothed family on the à-trous chain."""
    import pikflow.lattice as pl

    def build(path, base):
        basis = pl.preset_basis(preset, path, base, tame=5.0)
        F = symbols(tuple(path.lattice.shape), alpha, holes)
        fams = []
        for fam in basis.families:
            if type(fam) in (pl.SmoothedPowers, pl.SmoothedProducts):
                fam = retarget(fam, F)
            fams.append(fam)
        return pl.LatticeBasis(fams)

    return build


def roll_pass(x, taps, h, axis):
    """One 3-tap symmetric pass ``taps = (side, centre)`` at offsets ``(-h, 0, h)`` along ``axis`` (periodic)."""
    side, centre = taps
    return centre * x + side * (jnp.roll(x, h, axis) + jnp.roll(x, -h, axis))


def chain(field, axes, alpha=ALPHA, holes=HOLES):
    """``[F_0 phi, ..., F_n phi]`` by passes (``axes``: the lattice axes of ``field``)."""
    x = field
    for ax in axes:
        x = roll_pass(x, (alpha / 2, 1 - alpha), 1, ax)
    out = [x]
    for h in holes:
        for ax in axes:
            x = roll_pass(x, (0.25, 0.5), h, ax)
        out.append(x)
    return out


def adjoint(inner, axes, alpha=ALPHA, holes=HOLES):
    """``sum_s F_s inner_s`` (the filters symmetric and nested: Horner from the widest)."""
    g = inner[-1]
    for s in range(len(holes) - 1, -1, -1):
        for ax in axes:
            g = roll_pass(g, (0.25, 0.5), holes[s], ax)
        g = inner[s] + g
    for ax in axes:
        g = roll_pass(g, (alpha / 2, 1 - alpha), 1, ax)
    return g
