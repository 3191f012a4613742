"""Plots written by ``pikflow run``: kernel at t = 1, histogram, residual per layer."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_all(flow, samples, out: pathlib.Path, reference=None) -> list[str]:
    """Write the plots into ``out`` and return their file names."""
    names = [_kernel(flow, out, reference), _histogram(flow, samples, out, reference), _residuals(flow, out)]
    plt.close("all")
    return names


def _kernel(flow, out, reference):
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    x = np.linspace(-3.0, 3.0, 401)
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
    ax.set_title("kernel at t = 1 (paper Fig. 4)")
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
    ax.set_title("samples at t = 1 (paper Fig. 5)")
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
    ax.set_ylabel("residual of eq. 27")
    ax.set_title("residual per layer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "residuals.png", dpi=120)
    return "residuals.png"
