"""What ``pikflow bench scan-lattice`` prints: the scan against HMC, per size, and the Binder crossings."""

from __future__ import annotations

from ._common import OBSERVABLES


def print_scan(res) -> None:
    """The tables and lines ``bench scan-lattice`` prints from its results."""
    print()
    print(
        "| L | scan s (compiling) | final ESS/N | max pull vs HMC | HMC/scan at equal errors (abs_m, chi, binder): "
        "wall time | compiled |"
    )
    print("|---|---|---|---|---|---|")
    for label, v in res["sizes"].items():
        r, c = v["hmc_over_scan_at_equal_errors"], v["hmc_over_scan_compiled"]
        print(
            f"| {label} | {v['scan_seconds']:.1f} ({v['scan_compile_seconds']:.1f}) | {v['final_ess']:.3f} | "
            f"{v['max_abs_pull']:.2f} | " + ", ".join(f"{r[k]:.3g}" for k in OBSERVABLES) + " | "
            + ", ".join(f"{c[k]:.3g}" for k in OBSERVABLES) + " |"
        )  # fmt: skip
    fix = next(iter(res["sizes"].values()))["replica_cost_correction"]
    print(
        f"(cost ratios corrected for the scan's replica errors: x{fix['mean']:.3g}, the median point's "
        f"x{fix['median']:.3g}; E[sigma^2/s^2] = nu/(nu - 2) for nu = replicas - 1)"
    )
    for label, v in res["sizes"].items():
        if "hmc_batched" in v:
            b = v["hmc_batched"]
            r, c = b["hmc_over_scan_at_equal_errors"], b["hmc_over_scan_compiled"]
            lf, ch = b["leapfrog"], b["chains"]
            lf = f"{min(lf)}-{max(lf)} leapfrog steps by point" if b.get("pilot") else f"{lf[0]} leapfrog steps"
            if b.get("pilot"):
                w = b["hmc_over_scan_with_pilot"]
                lf += f", pilot {b['pilot']['seconds']:.3g} s: with it HMC/scan " + ", ".join(
                    f"{w[k]:.3g}" for k in OBSERVABLES
                )
            print(
                f"{label}: HMC batched over all {len(b['points'])} points ({min(ch)}-{max(ch)} chains each, {lf}, "
                f"{b['seconds_per_point']:.3g} s a point): HMC/scan at equal errors "
                + ", ".join(f"{r[k]:.3g}" for k in OBSERVABLES) + " (compiled: "
                + ", ".join(f"{c[k]:.3g}" for k in OBSERVABLES) + "), at the median point "
                + ", ".join(f"{b['hmc_over_scan_median_point'][k]:.3g}" for k in OBSERVABLES)
                + f"; max pull {b['max_abs_pull']:.2f}, "
                f"{b['pulls_over_2_sigma']} of {b['n_pulls']} pulls beyond 2 sigma"
            )  # fmt: skip
            print(
                f"{label}: per scan particle the scan spent {b['scan_trajectories']:.3g} HMC trajectories "
                f"({b['trajectory_seconds'] * 1e6:.3g} us each); HMC needs at equal errors (break-even) "
                + ", ".join(f"{b['break_even_trajectories'][k]:.3g}" for k in OBSERVABLES)
                + " over all the points"
            )  # fmt: skip
    for label, v in res["sizes"].items():
        c = v["free_energy_check"]
        line = f"{label}: log Z gain over the scan {c['log_z_gain']['value']:.4f} +- {c['log_z_gain']['error']:.2g}"
        line += f", -int <dS/dt> dt differs by {c['difference']['value']:.2g} ({c['pull']:+.1f} sigma)"
        if "free_energy" in v:
            f = v["free_energy"]
            line += f"; log Z_1 - log Z_0: scan {f['scan']['value']:.4f} +- {f['scan']['error']:.2g}, HMC TI "
            line += f"{f['hmc_ti']['value']:.4f} +- {f['hmc_ti']['error']:.2g} ({f['pull']:+.1f} sigma)"
        print(line)
    for c in res["crossings"]:
        m2 = c["couplings"]["m2"]
        print(f"Binder crossing {c['sizes'][0]} / {c['sizes'][1]}: m2_c = {m2['value']:.4f} +- {m2['error']:.2g}")
