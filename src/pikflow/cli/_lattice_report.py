"""The report of a lattice run: ``results.json`` helpers, the two plots, the reliability warnings, the summary."""

from __future__ import annotations

import math
import pathlib

from .._citation import PAPER
from ..flow import UNRELIABLE_LOG_Q


def dataclass_dict(report) -> dict:
    """A layer report as a JSON-ready dict."""
    import dataclasses

    return {k: float(v) for k, v in dataclasses.asdict(report).items()}


def _json_default(x):
    import numpy as np

    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def _imh_magnetisation(samples, key, imh_chain, components: int = 1):
    """The magnetisation (:math:`|M|` for ``n > 1`` components) along the IMH chain (as :func:`flow_observables`).

    Works on streamed samples too (``keep_fields=False``): only the per-sample magnetisations are used.
    """
    import numpy as np

    lw = np.asarray(samples.log_w, dtype=float)
    ok = samples.finite
    res = imh_chain(key, np.where(ok, lw, -np.inf))
    return np.asarray(res.chain(np.where(ok, samples.magnetisation(), 0.0)))


def _plots(flow, samples, chain_m, out: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = []
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    lw = np.asarray(samples.log_w, dtype=float)
    n = flow.path.action.n
    m = samples.magnetisation() / flow.path.lattice.volume
    ok = np.isfinite(lw) & np.isfinite(m)
    lo, hi = np.percentile(m[ok], [0.5, 99.5])  # blown-up samples (zero weight) must not set the range
    lo, hi = min(lo, float(np.min(chain_m))), max(hi, float(np.max(chain_m)))
    pad = 0.05 * (hi - lo + 1e-12)
    bins = np.linspace(lo - pad, hi + pad, 80)
    w = np.exp(lw[ok] - lw[ok].max())
    ax.hist(m[ok], bins=bins, density=True, histtype="step", color="gray", ls=":", label="flow samples (unweighted)")
    ax.hist(chain_m, bins=bins, density=True, histtype="step", color="k", lw=1.5, label="after the IMH step")
    ax.hist(m[ok], bins=bins, weights=w, density=True, histtype="step", color="tab:orange", label="reweighted")
    ax.set_xlabel(r"$m = \frac{1}{V}\sum_n\phi_n$" if n == 1 else r"$|m|$, $m_a = \frac{1}{V}\sum_n\phi_{a,n}$")
    ax.set_ylabel("density")
    ax.set_title("magnetisation per site at t = 1")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "magnetisation.png", dpi=120)
    names.append("magnetisation.png")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    t = [r.t for r in flow.reports]
    ax.semilogy(t, [max(r.residual, 1e-300) for r in flow.reports], "o-", ms=3, label="collocation configurations")
    ax.set_xlabel("t")
    ax.set_ylabel(r"$\|Aa-b\|/\|b-\bar b\|$")
    ax.set_title(f"relative residual per layer (eq. 34 of {PAPER})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "residuals.png", dpi=120)
    names.append("residuals.png")
    plt.close("all")
    return names


def _log_q_check(flow, settings) -> float | None:
    """Largest |continuous - exact log q| on 8 samples (V JVPs each; skipped above 256 sites)."""
    if flow.path.lattice.volume > 256:
        return None
    import jax
    import numpy as np

    key = jax.random.PRNGKey(int(settings["sampling_seed"]) + 99)
    return float(np.abs(flow.log_density_error(key, 8)).max())


#: Below this ESS/N (from either side) the IMH estimates and their errors are not to be trusted.
UNRELIABLE_ESS = 0.01


def reliability_warnings(
    ess: float,
    target_ess: float | None,
    n: int,
    log_q_error: float | None = None,
    khat: float | None = None,
    largest: float | None = None,
) -> list[str]:
    """Warnings for a flow too poor for its estimates to be trusted (printed and in ``results.json``).

    With ESS/N below :data:`UNRELIABLE_ESS`, or fewer than 100 effective samples, the IMH
    chain hardly moves and its Gamma-method errors understate the real error (measured at
    32x32 near criticality: ESS/N 0.000, observables off by 3-8 sigma of their own errors).
    ``target_ess`` (from the reference HMC configurations) flags holes the same way, and
    ``log_q_error`` (:func:`_log_q_check`) above :data:`~pikflow.flow.UNRELIABLE_LOG_Q` a continuous log-density
    too far from the applied map's. ``khat`` (:func:`pikflow.diagnostics.pareto_khat` of the weights) above
    :func:`~pikflow.diagnostics.khat_threshold` with the largest weight ``largest`` times the mean above
    :data:`~pikflow.diagnostics.LARGEST_WEIGHT`: the weights' tail too heavy for their errors.
    """
    from ..diagnostics import khat_warning

    out = []
    if ess < UNRELIABLE_ESS or ess * n < 100:
        out.append(
            f"ESS/N = {ess:.3g} ({ess * n:.0f} effective samples): the IMH chain hardly moves and its errors are "
            "not to be trusted; use more samples, or a better flow (steps, collocation, basis; in the broken phase "
            "[hmc] start = 'ordered', so that the base is fitted to HMC chains without domain walls)"
        )
    if target_ess is not None and target_ess < UNRELIABLE_ESS:
        out.append(
            f"the ESS/N seen from the reference HMC configurations is {target_ess:.3g}: the flow misses part of "
            "the target (a hole), so its estimates are biased"
        )
    if log_q_error is not None and log_q_error > UNRELIABLE_LOG_Q:
        out.append(
            f"the continuous log-density differs from the exact one of the RK4 map applied by up to {log_q_error:.2g}: "
            "the weights are not those of the samples drawn; use more [lattice] steps or a steeper schedule "
            "(tau = t**p, p up to 4)"
        )
    out += khat_warning(khat, n, largest)
    return out


def _summary(r: dict, out: pathlib.Path) -> None:
    print(
        f"  samples: {r['n_samples']} ({r['n_nonfinite']} non-finite, {r['n_runaway']} ran away with zero weight) "
        f"in {r['sample_seconds']:.2f} s "
        f"(compilation included)"
    )
    print(
        f"  ESS/N = {r['ess']:.4f}   IMH acceptance = {r['imh_acceptance']:.4f}   "
        f"max layer residual = {r['max_layer_residual']:.2e}"
    )
    controlled = r.get("controlled_observables", {})
    for name, v in r["observables"].items():  # the estimate with the smaller error first
        imh = f"{v['value']:.5f} +- {v['error']:.2g}"
        c = controlled.get(name)
        # a NaN error loses; a zero IMH error (a chain that never moved) is no better than a measured one
        better = c is not None and math.isfinite(c["error"])
        better = better and (not math.isfinite(v["error"]) or v["error"] == 0 or c["error"] <= v["error"])
        if better:
            print(f"  {name} = {c['value']:.5f} +- {c['error']:.2g}  (reweighted with the base's control variates; "
                  f"after IMH {imh})")  # fmt: skip
        elif c is not None:
            print(f"  {name} = {imh}  (after IMH, Gamma-method error; reweighted with the base's control variates "
                  f"{c['value']:.5f} +- {c['error']:.2g})")  # fmt: skip
        else:
            print(f"  {name} = {imh}  (after IMH, Gamma-method error)")
    for w in r["warnings"]:
        print(f"  WARNING: {w}")
    print(f"  wrote {out / 'results.json'}, plots {', '.join(r['plots'])}, flow in {out / 'flow'}")
