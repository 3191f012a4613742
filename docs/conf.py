"""Sphinx configuration of the pikflow documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (warnings are
errors). The API pages, the TOML reference and the command-line help are generated at
build time by the local extension ``docs/_ext/pikflow_docs.py``, so new subpackages,
public names, configuration keys and benchmarks appear without editing the docs.
"""

from __future__ import annotations

import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent / "src"))  # the package itself, also when not pip-installed

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JAX_PLATFORMS", "cpu")  # the examples are small; no accelerator needed

import pikflow  # noqa: E402

project = "pikflow"
author = "the pikflow developers"
copyright = "the pikflow developers"  # noqa: A001
release = pikflow.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # bundles MathJax 3 into _static: the maths renders without a network
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "pikflow_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "generated",  # include files written by pikflow_docs (read with {include})
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "Thumbs.db",
    ".DS_Store",
]
templates_path: list[str] = []
nitpicky = False

# -- MyST -------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# -- math: MathJax 3 is copied into the built site's _static/mathjax by sphinx-mathjax-offline
# (which sets mathjax_path), not loaded from a CDN, so pages render on machines without internet.

# -- autodoc + napoleon (numpy docstrings) -----------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = True  # "Attributes" as fields: no duplicate descriptions with :members:
napoleon_use_rtype = False
napoleon_preprocess_types = False

# -- sphinx-gallery ------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": str(HERE / "auto_examples"),
    "filename_pattern": r"/plot_",  # execute every examples/plot_*.py
    "ignore_pattern": r"(__init__|/_[^/]*)\.py$",
    "within_subsection_order": "pikflow_docs.ExampleOrder",
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "min_reported_time": 1,
    "plot_gallery": "True",
    "capture_repr": (),
    "matplotlib_animations": False,
}

# -- HTML ---------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"pikflow {release}"
html_static_path: list[str] = []
html_theme_options = {
    "source_repository": "",
    "navigation_with_keys": True,
}
pygments_style = "sphinx"
pygments_dark_style = "monokai"
