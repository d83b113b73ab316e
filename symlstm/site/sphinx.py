"""Sphinx extension: a cell's equations in your documentation, as Sphinx math.

In ``conf.py``::

    extensions = ["symlstm.site.sphinx"]
    symlstm_notation = "greff"        # optional: the default notation preset for every directive

In a page::

    .. symlstm:: peephole
       :backward:
       :notation: pytorch

The argument is a built-in cell or the path of a spec file (relative to the page, or to the
source folder when it starts with ``/``). Without options the directive inserts the forward
equations; ``:backward:`` adds the backward pass through time and the gradients, as ``symlstm
latex`` lays them out: compact gradients (one line per group of parameters sharing a pattern),
or one sum per parameter with ``:long:``; ``:steps:`` derives the backward pass step by step.
Each part is one ``math_block`` node, so every math renderer Sphinx has (MathJax, imgmath, LaTeX
output) shows it; the lines are the same the LaTeX printer writes for ``symlstm latex``.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

from symlstm.backends.latex.document import Layout, layout_backward_rows, layout_gradient_rows
from symlstm.backends.latex.equations import check_unambiguous, forward_lines
from symlstm.cells import builtin_names, resolve_spec
from symlstm.ir.derive import derive
from symlstm.version import __version__


class SymlstmDirective(SphinxDirective):
    required_arguments = 1
    has_content = False
    option_spec = {
        "backward": directives.flag,
        "long": directives.flag,
        "steps": directives.flag,
        "notation": directives.unchanged_required,
    }

    def _path(self, name: str) -> str:
        if name in builtin_names():
            return name
        _, absolute = self.env.relfn2path(name, self.env.docname)
        if not Path(absolute).exists():
            return name  # resolve_spec names the problem: unknown cell, or no spec file there
        self.env.note_dependency(absolute)
        return absolute

    def run(self) -> list[nodes.Node]:
        try:
            spec = resolve_spec(self._path(self.arguments[0]))
            notation = self.options.get("notation") or self.config.symlstm_notation
            if notation.endswith(".toml"):
                notation = self._path(notation)
            d = derive(spec)
            n = check_unambiguous(d, notation)
        except Exception as err:  # noqa: BLE001 - every problem becomes a Sphinx error at this line
            raise self.error(f"symlstm: {err}") from None
        parts = [("Forward pass", forward_lines(d, n))]
        if "backward" in self.options:
            layout = Layout(long="long" in self.options, steps="steps" in self.options)
            backward = [row.latex() for row in layout_backward_rows(d, n, layout).values()]
            gradients = [row.latex() for row in layout_gradient_rows(d, n, layout).values()]
            parts += [("Backward pass through time", backward), ("Gradients", gradients)]
        out: list[nodes.Node] = []
        for title, lines in parts:
            if len(parts) > 1:
                out.append(nodes.rubric(title, title))
            latex = " \\\\\n".join(lines)
            node = nodes.math_block(
                latex, latex, docname=self.env.docname, number=None, label=None, nowrap=False, classes=["symlstm"]
            )
            self.set_source_info(node)
            out.append(node)
        return out


def setup(app):
    app.add_config_value("symlstm_notation", "symlstm", "env")
    app.add_directive("symlstm", SymlstmDirective)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
