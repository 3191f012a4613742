"""The papers a pikflow run relies on."""

PAPERS = {
    "piks": (
        "F. Ihssen, R. Kapust, J. M. Pawlowski, 'Generative sampling with physics-informed kernels' "
        "(the method: independent kernels from the Wegner equation, residual-driven refinement)."
    ),
    "wolff": "U. Wolff, 'Monte Carlo errors with less errors', Comput. Phys. Commun. 156 (2004) 143 (Gamma method).",
}


def citation(print_it: bool = True) -> str:
    """Print (and return) the references for the methods pikflow implements."""
    text = "\n".join(f"- {v}" for v in PAPERS.values())
    if print_it:
        print(text)
    return text
