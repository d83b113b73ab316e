"""Sphinx configuration of symlstm's documentation site.

Build it from the repository's root (``pip install ".[docs]"`` first)::

    sphinx-build -W --keep-going -b html docs/site build/site

The build also runs ``symlstm docs`` for the built-in cells into ``build/site/formulas/`` (the
formula pages, PDFs and diagrams the pages link to); ``-D symlstm_formula_pages=0`` leaves them
out for a quick look at the text.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

from symlstm.version import __version__  # noqa: E402 - after the path set-up above

project = "symlstm"
author = "the symlstm authors"
copyright = "2026, the symlstm authors"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "symlstm.site.sphinx",  # the ``.. symlstm:: CELL`` directive: a cell's equations as math
    "formula_pages",  # ``symlstm docs`` into the output's formulas/ folder; the cells table
    "cli_help",  # the command line's --help texts
]

root_doc = "index"
exclude_patterns = ["_build"]
nitpicky = False

# The API pages: members in source order, type hints in the description, not the signature.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True}

html_theme = "furo"
html_title = f"symlstm {version}"
html_static_path: list[str] = []
