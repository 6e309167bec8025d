"""Sphinx configuration of fastbp's documentation.

Build from the repository root, with the ``docs`` extra installed::

    python -m sphinx -W -b html docs docs/_build/html

The build needs no network: no intersphinx inventories are fetched (links to
scikit-learn and numpy are plain URLs, see ``_ext/fastbp_docs.py``). Nor does the
site: its equations are MathML, written at build time, not MathJax from a CDN.
"""

import os
import pathlib
import sys

# matplotlib draws to files during the build (the gallery), whatever the environment says.
os.environ["MPLBACKEND"] = "Agg"

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
try:  # the fastbp Python finds: from the repository root, the one these docs sit in
    import fastbp
except ImportError:  # built from elsewhere without an installed fastbp
    sys.path.insert(0, str(ROOT))
    import fastbp

from threadpoolctl import threadpool_limits  # noqa: E402

# One BLAS thread for the whole build (the gallery's examples run in this process).
# On a machine whose cores are busy with other work, OpenBLAS threads waiting for a
# core made the examples' small matrix products many times slower, not faster.
threadpool_limits(1, user_api="blas")

project = "fastbp"
author = "the fastbp developers"
copyright = "the fastbp developers"
version = release = fastbp.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "fastbp_docs",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_templates", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"

# --- API reference: one page per public name, written by autosummary --------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_member_order = "groupwise"
# numpydoc lists methods in a table at the top of each class page; the methods
# themselves are documented below it on the same page (no extra stub pages).
numpydoc_show_class_members = True
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# --- HTML ---------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"fastbp {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path = ["_static"]
html_css_files = ["fastbp.css"]  # report tables that fit, code that wraps
html_math_renderer = "mathml"  # fastbp_docs: equations as MathML, no script, offline
html_show_sourcelink = False

# --- The gallery: every examples/*.py, executed, figures and output captured -----------

sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"\.py$",  # execute every example, not only plot_*.py
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "fastbp_docs.ExampleOrder",  # quick start first
    # Backreferences: each API page lists the examples that use the object.
    "doc_module": ("fastbp",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"fastbp": None},
    "image_scrapers": ("matplotlib",),
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "min_reported_time": 5,
    "abort_on_example_error": True,
    # The execution-time pages load DataTables from a CDN: an offline reader would
    # get a broken page, and the times are in each example's own page anyway.
    "write_computation_times": False,
}
