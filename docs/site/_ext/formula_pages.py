"""Sphinx extension of this site: ``symlstm docs`` for the built-in cells, into ``<out>/formulas/``.

The pages link to ``formulas/index.html`` (the comparison table), ``formulas/<cell>.html`` (a
cell's equations as MathML), ``formulas/<cell>-derivation.html`` (its backward pass step by step),
``formulas/pdf/<cell>.pdf`` and ``formulas/diagrams/<cell>.svg``.
``symlstm docs`` records a key per file, so a second ``sphinx-build`` into the same folder reuses
what did not change. A failed file is a Sphinx warning (an error under ``-W``); a missing tool
(pdflatex, Graphviz) is a note, as ``symlstm docs`` prints it.

``-D symlstm_formula_pages=0`` skips the step (the links then lead nowhere in that build).
"""

from __future__ import annotations

import time
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from symlstm.cells import builtin_names, builtin_spec
from symlstm.site.docs import build_docs

logger = logging.getLogger(__name__)
FOLDER = "formulas"


def build_formula_pages(app, exception) -> None:
    if exception is not None or app.builder.format != "html" or not app.config.symlstm_formula_pages:
        return
    out = Path(app.outdir) / FOLDER
    start = time.perf_counter()
    report = build_docs(out, progress=False)
    for note in report.notes:
        logger.info(f"symlstm docs: {note}")
    for error in report.errors:
        logger.warning(f"symlstm docs: {error}")
    logger.info(
        f"symlstm docs: {len(report.written)} file(s) written, {len(report.reused)} up to date in {out} "
        f"({time.perf_counter() - start:.1f} s)"
    )


class FormulaTable(SphinxDirective):
    """``.. symlstm-formula-table::``: one row per built-in cell, linking its page, PDF and diagram."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        rows = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 14 56 30",
            "",
            "   * - cell",
            "     - title",
            "     - files",
        ]
        for name in builtin_names():
            rows += [
                f"   * - `{name} <{FOLDER}/{name}.html>`__",
                f"     - {builtin_spec(name).title}",
                f"     - `derivation <{FOLDER}/{name}-derivation.html>`__, `PDF <{FOLDER}/pdf/{name}.pdf>`__, "
                f"`diagram <{FOLDER}/diagrams/{name}.svg>`__, "
                f"`LaTeX <{FOLDER}/tex/{name}.tex>`__, `Markdown <{FOLDER}/md/{name}.md>`__",
            ]
        container = nodes.container()
        self.state.nested_parse(StringList(rows, source="symlstm-formula-table"), self.content_offset, container)
        return container.children


def setup(app):
    app.add_directive("symlstm-formula-table", FormulaTable)
    app.add_config_value("symlstm_formula_pages", True, "html", types=(bool, int))
    app.connect("build-finished", build_formula_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
