"""Plot ESS/N against the lattice size L from ``ess_vs_L.json`` (the docs' figure).

    python benchmarks/lattice/ess_vs_L.py [--out docs/guide/ess_vs_L.png]

Every series of the JSON is one curve: ``{"label", "point", "L": [...], "ess": [...],
"kind": "measured" | "quoted", "source"}``. Measured series come from the benchmark JSON files
named in their ``source``; quoted ones are read off the super-resolving flows paper (lower
bounds it states in its text, drawn as dashed lines).
"""

from __future__ import annotations

import argparse
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(HERE / "ess_vs_L.json"))
    parser.add_argument("--out", default=str(HERE.parents[1] / "docs" / "guide" / "ess_vs_L.png"))
    args = parser.parse_args()
    series = json.loads(pathlib.Path(args.data).read_text())["series"]
    fig, ax = plt.subplots(figsize=(7.5, 6.2))
    for s in series:
        quoted = s["kind"] == "quoted"
        ax.plot(
            s["L"],
            s["ess"],
            ls="--" if quoted else "-",
            marker=None if quoted else s.get("marker", "o"),
            color=s.get("color"),
            label=f"{s['label']}, {s['point']}",
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks([8, 16, 32, 64, 128], ["8", "16", "32", "64", "128"])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("L (lattice L x L)")
    ax.set_ylabel("ESS/N")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    fig.tight_layout()
    fig.savefig(args.out, dpi=130)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
