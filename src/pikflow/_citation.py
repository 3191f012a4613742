"""The papers a pikflow run relies on.

Equation and figure numbers in pikflow's docstrings, plots and messages ("eq. 27",
"Fig. 4") refer to :data:`PAPER`, the PIK paper.
"""

#: The paper whose method pikflow implements; its equation and figure numbers are used throughout.
PAPER_TITLE = "Generative sampling with physics-informed kernels"
PAPER_AUTHORS = "F. Ihssen, R. Kapust, J. M. Pawlowski"
PAPER_ARXIV = "arXiv:2510.26678"
#: Short form for plot labels and messages.
PAPER = f"{PAPER_AUTHORS.split(',')[0].split()[-1]} et al., {PAPER_ARXIV}"

PAPERS = {
    "piks": (
        f"{PAPER_AUTHORS}, '{PAPER_TITLE}', {PAPER_ARXIV} "
        "(the method: independent kernels from the Wegner equation, residual-driven refinement; "
        "pikflow's equation and figure numbers refer to it)."
    ),
    "superres": (
        "M. Bauer, R. Kapust, J. M. Pawlowski, F. L. Temmen, 'Super-resolving normalising flows for lattice field "
        "theories' (2024) (the multilevel base: block upsampling plus zero-block-sum noise)."
    ),
    "wolff": "U. Wolff, 'Monte Carlo errors with less errors', Comput. Phys. Commun. 156 (2004) 143 (Gamma method).",
}


def citation(print_it: bool = True) -> str:
    """Print (and return) the references for the methods pikflow implements."""
    text = "\n".join(f"- {v}" for v in PAPERS.values())
    if print_it:
        print(text)
    return text
