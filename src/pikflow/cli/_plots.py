"""Plots written by ``pikflow run``: kernel at t = 1, histogram, residual per layer.

Equation and figure numbers refer to the PIK paper, named on every plot that uses them
(:data:`pikflow._citation.PAPER`).
"""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .._citation import PAPER  # noqa: E402

#: Target probability left out on each side of the plotted / compared range.
TAIL = 1e-4


def target_range(samples=None, reference=None, tail: float = TAIL) -> tuple[float, float]:
    """The range of phi (first component) holding all but ``tail`` of the target on each side, padded by 10%.

    From the exact density when a quadrature ``reference`` is given, else from the
    importance-weighted samples at t = 1 (the weights make them the target's).
    """
    if reference is not None:
        lo, hi = reference._range(1.0)  # where S_1 - min S_1 <= 80
        x = np.linspace(lo, hi, 20001)
        cdf = np.cumsum(reference.density(1.0, x))
        cdf /= cdf[-1]
        a, b = x[np.searchsorted(cdf, tail)], x[min(np.searchsorted(cdf, 1 - tail), x.size - 1)]
    else:
        x = samples.final[:, 0]
        lw = samples.log_w[-1]
        ok = np.isfinite(x) & np.isfinite(lw)
        x, w = x[ok], np.exp(lw[ok] - lw[ok].max())
        order = np.argsort(x)
        cdf = np.cumsum(w[order]) / w.sum()
        a, b = x[order][np.searchsorted(cdf, tail)], x[order][min(np.searchsorted(cdf, 1 - tail), x.size - 1)]
    pad = 0.1 * (b - a)
    return float(a - pad), float(b + pad)


def plot_all(flow, samples, out: pathlib.Path, reference=None) -> list[str]:
    """Write the plots into ``out`` and return their file names."""
    names = [_kernel(flow, samples, out, reference), _histogram(flow, samples, out, reference), _residuals(flow, out)]
    plt.close("all")
    return names


def _kernel(flow, samples, out, reference):
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    x = np.linspace(*target_range(samples, reference), 401)
    if flow.n_fields == 1:
        ax.plot(x, flow.velocity(x, 1.0), "k-", lw=2, label="PIK kernel")
        if reference is not None:
            ax.plot(x, reference.kernel(1.0, x), color="tab:orange", ls="--", lw=1.5, label="exact (quadrature)")
        ax.set_xlabel(r"$\phi$")
    else:
        pts = np.zeros((x.size, flow.n_fields))
        pts[:, 0] = x
        ax.plot(x, flow.velocity(pts, 1.0)[:, 0], "k-", lw=2, label=r"$v_1$ along the $\phi_1$ axis")
        ax.set_xlabel(r"$\phi_1$")
    ax.set_ylabel(r"$\dot\phi_{t=1}$")
    ax.set_title(f"kernel at t = 1 over the target's range\n(cf. Fig. 4 of {PAPER})", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "kernel_t1.png", dpi=120)
    return "kernel_t1.png"


def _histogram(flow, samples, out, reference):
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    x = samples.final[:, 0]
    ok = np.isfinite(x) & np.isfinite(samples.log_w[-1])
    lo, hi = np.percentile(x[ok], [0.01, 99.99])
    bins = np.linspace(lo - 0.5, hi + 0.5, 120)
    ax.hist(x[ok], bins=bins, density=True, histtype="step", color="k", lw=1.5, label="PIK samples (unweighted)")
    if flow.n_fields == 1 and reference is not None:
        grid = np.linspace(bins[0], bins[-1], 600)
        ax.plot(grid, reference.density(1.0, grid), color="tab:orange", ls="--", label="exact density")
    else:
        w = np.exp(samples.log_w[-1][ok] - samples.log_w[-1][ok].max())
        ax.hist(x[ok], bins=bins, weights=w, density=True, histtype="step", color="tab:orange", label="reweighted")
    ax.set_xlabel(r"$\phi$" if flow.n_fields == 1 else r"$\phi_1$")
    ax.set_ylabel("density")
    ax.set_title(f"samples at t = 1\n(cf. Fig. 5 of {PAPER})", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "histogram.png", dpi=120)
    return "histogram.png"


def _residuals(flow, out):
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    t = [r.t for r in flow.reports]
    ax.semilogy(t, [r.residual_rms for r in flow.reports], "o-", ms=3, label="RMS over pushed samples")
    ax.semilogy(t, [r.residual_max for r in flow.reports], "s-", ms=3, label="max over all collocation points")
    ax.semilogy(t, [r.rhs_rms for r in flow.reports], ":", color="gray", label=r"RMS of $d\hat S_t/dt$ (scale)")
    ax.set_xlabel("t")
    ax.set_ylabel("residual of the kernel equation")
    ax.set_title(f"residual per layer (eq. 27 of {PAPER})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "residuals.png", dpi=120)
    return "residuals.png"
