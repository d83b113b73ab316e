"""``symlstm docs --out DIR``: formula sheets, pictures and pages for every cell, from its derivation.

For every built-in cell (or the cells given), in one notation preset:

========================  ====================================================================
``tex/NAME.tex``          standalone LaTeX formula sheet (and ``tex/all.tex``: every cell, the
                          comparison table and Greff et al.'s equations beside symlstm's)
``pdf/NAME.pdf``          the sheets compiled with pdflatex, when it is installed
``png/NAME-*.png``        the forward, backward and gradient equations as pictures: pdflatex +
                          pdftoppm when available, matplotlib's mathtext otherwise (no TeX needed)
``md/NAME.md``            Markdown with ``$$`` math (GitHub, MkDocs); ``md/index.md`` the table
``NAME.html``             static pages, equations as MathML: any browser, offline, no JavaScript
``NAME-derivation.*``     the backward pass derived step by step (``symlstm latex --steps``), as
                          ``NAME-derivation.html``, ``md/``, ``tex/`` and ``pdf/``
``index.html``            the comparison table: states, gates, peepholes, parameters, FLOPs and
                          bytes stored per step for the backward; ``greff.html`` side by side
``diagrams/NAME.*``       the cell drawn from its spec (Graphviz dot -> SVG and PNG)
========================  ====================================================================

Every file is a function of its inputs; ``DIR/.symlstm-docs.json`` records a key (a hash of those
inputs) per file, so a rebuild with nothing changed only re-derives the cells and compares keys:
no pdflatex, no Graphviz, no matplotlib. External programs run in parallel threads.

This module decides which files a build makes and from what (``plan_steps``, ``build_docs``);
``symlstm.site.build`` runs the steps, and the other modules of ``symlstm.site`` make each kind
of file.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from symlstm.backends.latex.document import Layout, latex_document
from symlstm.backends.latex.equations import BLOCKS
from symlstm.backends.latex.notation import Notation, load_notation
from symlstm.cells import builtin_names, resolve_spec
from symlstm.site.build import DocsError, Report, Step, run_steps, step_key, text_step
from symlstm.site.diagram import diagram_dot, render
from symlstm.site.greff import compares_with_greff, greff_html, greff_md
from symlstm.site.html import cell_html, derivation_html, index_html
from symlstm.site.markdown import cell_md, derivation_md, index_md
from symlstm.site.mathtext import mathtext_pngs, matplotlib_version
from symlstm.site.pages import CellDoc, Plan, cell_doc, comparison_csv
from symlstm.site.sheet import all_sheet
from symlstm.site.tex import pdf_pages_to_png, png_document, run_pdflatex

__all__ = ["DocsError", "Report", "build_docs"]

TEX_HINT = (
    "install TeX Live for PDF formula sheets and LaTeX-quality PNGs "
    "(Debian/Ubuntu: apt-get install texlive-latex-base texlive-latex-recommended poppler-utils; "
    "macOS: MacTeX; Windows: MiKTeX)"
)
DOT_HINT = (
    "install Graphviz for the cell diagrams (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)"
)


@dataclass(frozen=True)
class Tools:
    pdflatex: bool
    pdftoppm: bool
    dot: bool

    @classmethod
    def detect(cls, tex: bool = True, diagrams: bool = True) -> Tools:
        return cls(
            pdflatex=tex and shutil.which("pdflatex") is not None,
            pdftoppm=tex and shutil.which("pdftoppm") is not None,
            dot=diagrams and shutil.which("dot") is not None,
        )

    @property
    def latex_png(self) -> bool:
        return self.pdflatex and self.pdftoppm


def plan_steps(docs: list[CellDoc], plan: Plan) -> list[Step]:
    n = plan.notation
    steps: list[Step] = []
    dpi = plan.dpi
    for doc in docs:
        name = doc.name
        for stem, layout in ((name, Layout()), (f"{name}-derivation", Layout(steps=True))):
            sheet = latex_document(doc.d, n, layout)
            steps.append(text_step(f"tex/{stem}.tex", sheet))
            if plan.pdf:
                steps.append(
                    Step(
                        (f"pdf/{stem}.pdf",),
                        step_key("pdf", sheet),
                        functools.partial(_pdf, sheet, stem),
                        external=True,
                    )
                )
        pngs = tuple(f"png/{name}-{b}.png" for b in BLOCKS)
        if plan.png_renderer == "latex":
            source = png_document([doc.blocks[b] for b in BLOCKS])

            def make(source=source, pngs=pngs, name=name):
                return dict(zip(pngs, pdf_pages_to_png(run_pdflatex(source, name), dpi)))

            steps.append(Step(pngs, step_key("png-latex", dpi, source), make, external=True))
        else:
            # mathtext's parser is not thread-safe: these run one by one in this thread (a process
            # pool would re-run an unguarded user script that calls build_docs in every worker)
            key = step_key("png-mathtext", dpi, matplotlib_version(), [doc.blocks[b] for b in BLOCKS])
            rows = [doc.rows[b] for b in BLOCKS]
            steps.append(Step(pngs, key, functools.partial(mathtext_pngs, rows, pngs, dpi)))
        dot_source = diagram_dot(doc.spec)
        steps.append(text_step(f"diagrams/{name}.dot", dot_source))
        if plan.diagrams:
            outs = (f"diagrams/{name}.svg", f"diagrams/{name}.png")
            steps.append(
                Step(
                    outs,
                    step_key("dot", dot_source),
                    functools.partial(_diagrams, dot_source, outs),
                    external=True,
                )
            )
        steps.append(text_step(f"md/{name}.md", cell_md(doc, plan)))
        steps.append(text_step(f"md/{name}-derivation.md", derivation_md(doc, plan)))
        steps.append(text_step(f"{name}.html", cell_html(doc, plan)))
        steps.append(text_step(f"{name}-derivation.html", derivation_html(doc, plan)))
    sheet = all_sheet(docs, n, plan.greff)
    steps.append(text_step("tex/all.tex", sheet))
    if plan.pdf:
        steps.append(
            Step(
                ("pdf/all.pdf",),
                step_key("pdf", sheet),
                lambda: {"pdf/all.pdf": run_pdflatex(sheet, "all")},
                external=True,
            )
        )
    steps.append(text_step("index.html", index_html(docs, plan)))
    steps.append(text_step("md/index.md", index_md(docs, plan)))
    steps.append(text_step("comparison.csv", comparison_csv(docs)))
    if plan.greff:
        steps.append(text_step("greff.html", greff_html(plan)))
        steps.append(text_step("md/greff.md", greff_md()))
    return steps


def _pdf(sheet: str, name: str) -> dict[str, bytes]:
    return {f"pdf/{name}.pdf": run_pdflatex(sheet, name)}


def _diagrams(dot_source: str, outs: tuple[str, str]) -> dict[str, bytes]:
    return {outs[0]: render(dot_source, "svg"), outs[1]: render(dot_source, "png")}


def build_docs(
    out: str | os.PathLike,
    cells: Iterable[str] | None = None,
    notation: str | Notation | None = None,
    png: str = "auto",
    pdf: bool = True,
    tex: bool = True,
    diagrams: bool = True,
    dpi: int = 150,
    force: bool = False,
    progress: bool = True,
    jobs: int | None = None,
) -> Report:
    """Build the documentation site into ``out``; see the module docstring for what it holds.

    ``cells``: built-in names or spec paths (default: every built-in cell). ``png``: ``auto``
    (pdflatex + pdftoppm when installed, else mathtext), ``latex`` or ``mathtext``. ``tex=False``
    behaves as if TeX were not installed. ``force`` rebuilds everything.
    """
    out = Path(out)
    try:
        import latex2mathml  # noqa: F401 - the HTML pages' MathML
    except ImportError:
        raise DocsError(
            "the HTML pages need latex2mathml: pip install latex2mathml (or pip install 'symlstm[docs]')"
        ) from None
    n = load_notation(notation)
    tools = Tools.detect(tex=tex, diagrams=diagrams)
    if png not in ("auto", "latex", "mathtext"):
        raise ValueError(f"png must be auto, latex or mathtext, not {png!r}")
    if png == "latex" and not tools.latex_png:
        raise DocsError(f"--png latex needs pdflatex and pdftoppm: {TEX_HINT}")
    renderer = "latex" if (png == "latex" or (png == "auto" and tools.latex_png)) else "mathtext"
    names = list(cells) if cells else builtin_names()
    specs = [resolve_spec(c) for c in names]
    seen: dict[str, str] = {}
    for spec, given in zip(specs, names):
        if seen.setdefault(spec.name, given) != given:
            raise ValueError(f"two cells are named {spec.name!r} ({seen[spec.name]} and {given}); rename one")
    docs = [cell_doc(spec, n) for spec in specs]
    plan = Plan(
        out=out,
        notation=n,
        png_renderer=renderer,
        pdf=pdf and tools.pdflatex,
        diagrams=tools.dot,
        dpi=dpi,
        greff=compares_with_greff(docs),
    )
    report = Report(out)
    if pdf and not tools.pdflatex:
        report.notes.append(
            f"pdflatex not found: the LaTeX formula sheets (tex/) were not compiled to PDF; {TEX_HINT}."
        )
    if renderer == "mathtext":
        report.notes.append(
            "PNG equations drawn with matplotlib's mathtext"
            + ("" if tools.latex_png else " (pdflatex and pdftoppm were not found)")
            + "."
        )
    if diagrams and not tools.dot:
        report.notes.append(f"Graphviz 'dot' not found: the diagrams are only written as .dot files; {DOT_HINT}.")
    plan.notes = [note for note in report.notes if "not found" in note]

    return run_steps(plan_steps(docs, plan), report, force=force, progress=progress, jobs=jobs)
