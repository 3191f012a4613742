"""The printed report of ``pikflow bench lattice`` (:mod:`._lattice`): the PIK / HMC table, ratios, pulls, costs."""

from __future__ import annotations


def print_lattice(res: dict) -> None:
    """Print the results of :func:`pikflow.bench._lattice.run`."""
    from ..cli import lattice_reliability_warnings as reliability_warnings
    from ..diagnostics import khat_threshold

    p, h = res["pik"], res["hmc"]
    lat = "x".join(map(str, res["lattice"]))
    c = res["couplings"]
    print(f"{res['density']} on {lat}, couplings {c}; basis {res['basis']} ({res['basis_size']} terms)")
    print(f"symmetry of the action (detected): {res['symmetry']}")
    print()
    print("| | PIK | HMC |")
    print("|---|---|---|")
    print(f"| base | {p['base']} (m0 = {p['m0'] or 0:.3g}, tame {p['tame']}) | |")
    print(f"| ESS/N | {p['ess']:.3f} | |")
    if p.get("pareto_khat") is not None:
        trusted = khat_threshold(p["n"])
        print(f"| Pareto k-hat of the weights' tail (trusted below {trusted:.2f}) | {p['pareto_khat']:.2f} | |")
        print(f"| largest weight / mean weight | {p['largest_weight']:.3g} | |")
    if p["target_ess"] is not None:
        print(f"| ESS/N from the base's HMC samples (hole check, at selection) | {p['target_ess']:.3f} | |")
    lf = h.get("leapfrog", 10)
    print(f"| acceptance | {p['imh_acceptance']:.3f} (IMH) | {h['acceptance']:.3f} ({lf} leapfrog steps) |")
    print(f"| tau_int(abs m) | {p['tau_int_abs_m']:.2f} | {h['tau_int_abs_m']:.2f} |")
    for k in p["observables"]:
        a, b = p["observables"][k], h["observables"][k]
        print(f"| {k} | {a['value']:.4f}({a['error']:.4f}) | {b['value']:.4f}({b['error']:.4f}) |")
    if p.get("polish"):
        q = p["polish"]
        print(
            f"| polished ({q['iterations']} Adam steps, {q['seconds']:.0f} s): ESS/N, largest log q error | "
            f"{q['ess_before']:.3f} -> {q['ess_after']:.3f}, {q['log_q_error_after']:.2g} "
            f"({'kept' if q['kept'] else 'not kept'}) | |"
        )
    print(f"| setup seconds (base HMC + solve + polish) | {p['setup_seconds']:.1f} | |")
    print(f"| of which tracing and compiling | {p['setup_compile_seconds']:.1f} | |")
    print(f"| first calls' compilation (draw, estimates) | {p['first_call_extra_seconds']:.1f} | |")
    print(f"| sampling seconds | {p['sample_seconds']:.2f} ({p['n']} samples) | {h['sample_seconds']:.2f} ({h['n']}) |")
    print(f"| independent samples / s | {p['independent_per_second']:.3g} | {h['independent_per_second']:.3g} |")
    print()
    print(
        f"non-finite samples: {p['n_nonfinite']}, ran away (zero weight): {p['n_runaway']}; "
        f"collocation configurations dropped: {p['collocation_dropped']}"
    )
    if p["log_q_error_rms"] is not None:
        print(
            f"log q (continuous) - log q (exact), 16 samples: rms {p['log_q_error_rms']:.2g}, "
            f"max {p['log_q_error_max']:.2g}"
        )
    print(
        f"PIK / HMC (sampling): {res['ratio']:.3g}x; with setup: {res['ratio_with_setup']:.3g}x; "
        f"with both set-ups (HMC's compiling call): {res['ratio_with_both_setups']:.3g}x"
    )
    if "ratio_float32" in res:
        print(
            f"PIK / HMC with float32 sampling (the timed speed-up): {res['ratio_float32']:.3g}x; "
            f"with setup: {res['ratio_float32_with_setup']:.3g}x"
        )
    if "ratio_alternated" in res:
        f32 = res.get("ratio_float32_alternated")
        print(
            f"PIK / HMC (sampling) from the alternated costs: {res['ratio_alternated']:.3g}x"
            + (f", float32 {f32:.3g}x" if f32 is not None else "")
        )
    print("pulls (PIK - HMC) / combined error: " + ", ".join(f"{k} {v:+.2f}" for k, v in res["pulls"].items()))
    for key, label in (("reweighted", "reweighted (no IMH)"), ("controlled", "reweighted with base controls")):
        if key in res:
            rw = res[key]
            print(
                f"{label}: "
                + ", ".join(
                    f"{k} {v['value']:.4f}({v['error']:.4f}) pull {rw['pulls'][k]:+.2f}"
                    for k, v in rw["observables"].items()
                )
            )
    for name, r in res["equal_errors"].items():
        print(
            f"HMC / PIK cost at equal errors ({name}): "
            + ", ".join(f"{k} {v:.3g}x" if v is not None else f"{k} -" for k, v in r.items())
        )
    print(f"peak memory: {res['peak_memory_mb']:.0f} MB")
    if "cost" in res:
        from ._latcost import print_cost

        print_cost(res["cost"], res.get("evaluation_profile"), res.get("push_batch_ms_per_sample"))
    tail = p.get("pareto_khat"), p.get("largest_weight")
    for w in reliability_warnings(p["ess"], p["target_ess"], p["n"], p["log_q_error_max"], *tail):
        print(f"WARNING: {w}")
