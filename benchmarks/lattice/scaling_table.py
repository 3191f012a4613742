"""The single-level scaling table of the docs (issue #16): L, basis size, set-up, memory, ESS/N and pulls.

Reads the ``pikflow bench lattice`` JSON files named below (one per row) and prints a markdown table:
``python benchmarks/lattice/scaling_table.py``. The seconds are those of each run on 2 CPU cores, some of
them shared with other jobs (the docs say which).
"""

import json
import pathlib

HERE = pathlib.Path(__file__).parent
ROWS = [
    ("seed 002's point (−0.08, 0.16)", "seed_m2-0.08_lam0.16_L16.json"),
    ("seed 002's point (−0.08, 0.16)", "seed_m2-0.08_lam0.16_L32.json"),
    ("seed 002's point (−0.08, 0.16)", "seed_m2-0.08_lam0.16_L64_groups.json"),
    ("seed 002's point (−0.08, 0.16)", "seed_m2-0.08_lam0.16_L128.json"),
    ("broken, κ = 0.3 (−0.733, 0.111)", "broken_kappa0.3_L16.json"),
    ("broken, κ = 0.3 (−0.733, 0.111)", "broken_kappa0.3_ordered_L32_fix.json"),
    ("broken, κ = 0.3 (−0.733, 0.111)", "broken_kappa0.3_ordered_L64_fix.json"),
    ("broken, κ = 0.3 (−0.733, 0.111)", "broken_kappa0.3_ordered_L128_fix.json"),
]


def row(point: str, name: str) -> str:
    d = json.loads((HERE / name).read_text())
    p = d["pik"]
    L = "×".join(str(n) for n in d["lattice"])
    bins = d.get("fourier_bins")
    fourier = "per orbit" if not bins else f"{bins} groups"
    pulls = ", ".join(f"{v:+.1f}" for v in d["reweighted"]["pulls"].values())
    ms = 1000 * p["sample_seconds"] / p["n"]
    return (
        f"| {point} | {L} | {d['basis_size']} ({fourier}) | {p['base']} | {p['setup_seconds']:.0f} | "
        f"{d['peak_memory_mb'] / 1024:.1f} | {ms:.1f} | {p['ess']:.3f} ({p['target_ess']:.3f}) | {pulls} | `{name}` |"
    )


def main() -> None:
    print(
        "| point | L | basis (Fourier term) | base | set-up s | peak GB | ms / sample | ESS/N (from HMC) "
        "| reweighted pulls ⟨\\|m\\|⟩, χ, U | JSON |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for point, name in ROWS:
        print(row(point, name))


if __name__ == "__main__":
    main()
