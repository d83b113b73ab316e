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
``index.html``            the comparison table: states, gates, peepholes, parameters, FLOPs and
                          bytes stored per step for the backward; ``greff.html`` side by side
``diagrams/NAME.*``       the cell drawn from its spec (Graphviz dot -> SVG and PNG)
========================  ====================================================================

Every file is a function of its inputs; ``DIR/.symlstm-docs.json`` records a key (a hash of those
inputs) per file, so a rebuild with nothing changed only re-derives the cells and compares keys:
no pdflatex, no Graphviz, no matplotlib. External programs run in parallel threads.
"""
from __future__ import annotations

import hashlib
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from symlstm.cells import builtin_names, resolve_spec

from symlstm.files import write_atomic
from symlstm.ir.derive import Derivation, derive
from symlstm.backends.latex.printer import (PREAMBLE, _tex_text, backward_lines, forward_lines, gradient_lines, latex_document,
                    latex_sections)
from symlstm.backends.latex.notation import Notation, load_notation
from symlstm.lang.spec import CellSpec
from symlstm.ir.summary import CellSummary, summarize
from symlstm.version import __version__

#: bump when the builder's output changes in a way its inputs do not show
FORMAT = "1"
MANIFEST = ".symlstm-docs.json"
TEX_HINT = ("install TeX Live for PDF formula sheets and LaTeX-quality PNGs "
            "(Debian/Ubuntu: apt-get install texlive-latex-base texlive-latex-recommended poppler-utils; "
            "macOS: MacTeX; Windows: MiKTeX)")
DOT_HINT = "install Graphviz for the cell diagrams (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)"
BLOCKS = ("forward", "backward", "gradients")
BLOCK_TITLES = {"forward": "Forward pass", "backward": "Backward pass through time", "gradients": "Gradients"}
BACKWARD_NOTE = ("From t = T down to 1; quantities at T+1 are zero, except the gradients of the "
                 "final state.")


class DocsError(RuntimeError):
    """A documentation build step failed; the message names the file and the tool's output."""


# -- what is installed ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Tools:
    pdflatex: bool
    pdftoppm: bool
    dot: bool

    @classmethod
    def detect(cls, tex: bool = True, diagrams: bool = True) -> "Tools":
        return cls(pdflatex=tex and shutil.which("pdflatex") is not None,
                   pdftoppm=tex and shutil.which("pdftoppm") is not None,
                   dot=diagrams and shutil.which("dot") is not None)

    @property
    def latex_png(self) -> bool:
        return self.pdflatex and self.pdftoppm


# -- one cell's material -------------------------------------------------------------------------

@dataclass
class CellDoc:
    spec: CellSpec
    d: Derivation
    summary: CellSummary
    blocks: dict[str, list[str]]

    @property
    def name(self) -> str:
        return self.spec.name


def cell_doc(spec: CellSpec, n: Notation) -> CellDoc:
    d = derive(spec)
    blocks = {"forward": forward_lines(d, n), "backward": backward_lines(d, n),
              "gradients": gradient_lines(d, n)}
    return CellDoc(spec, d, summarize(d), blocks)


def split_rows(line: str) -> list[tuple[str | None, str]]:
    """``lhs &= rhs \\\\ &\\qquad more`` -> [(lhs, rhs), (None, more)] (the printer's line breaks)."""
    first, *rest = line.split(r" \\ &\qquad")
    lhs, _, rhs = first.partition("&=")
    return [(lhs.strip(), rhs.strip())] + [(None, r.strip()) for r in rest]


def flat(line: str) -> str:
    """One equation without alignment marks, for inline use."""
    return line.replace(r" \\ &\qquad", "").replace("&=", "=")


def poly_latex(poly) -> str:
    return str(poly).replace("H²", "H^{2}")


def names_latex(names: Iterable[str]) -> str:
    out = []
    for name in names:
        base, _, sub = name.partition("_")
        out.append(f"{base}_{{{sub}}}" if sub else base)
    return ", ".join(out)


# -- Greff et al. 2017 side by side -------------------------------------------------------------------

#: (symlstm line key, Greff et al.'s published equation in their notation). Keys: a backward
#: assignment, ``x`` (the input gradient) or a parameter (its gradient line).
GREFF_ROWS = [
    ("d_h", r"\delta\mathbf{y}^t = \Delta^t + \mathbf{R}_z^{\top}\delta\bar{\mathbf{z}}^{t+1} + \mathbf{R}_i^{\top}\delta\bar{\mathbf{i}}^{t+1} + \mathbf{R}_f^{\top}\delta\bar{\mathbf{f}}^{t+1} \\ &\qquad + \mathbf{R}_o^{\top}\delta\bar{\mathbf{o}}^{t+1}"),
    ("d_o_bar", r"\delta\bar{\mathbf{o}}^t = \delta\mathbf{y}^t \odot h(\mathbf{c}^t) \odot \sigma'(\bar{\mathbf{o}}^t)"),
    ("d_c", r"\delta\mathbf{c}^t = \delta\mathbf{y}^t \odot \mathbf{o}^t \odot h'(\mathbf{c}^t) + \mathbf{p}_o \odot \delta\bar{\mathbf{o}}^t + \mathbf{p}_i \odot \delta\bar{\mathbf{i}}^{t+1} \\ &\qquad + \mathbf{p}_f \odot \delta\bar{\mathbf{f}}^{t+1} + \delta\mathbf{c}^{t+1} \odot \mathbf{f}^{t+1}"),
    ("d_f_bar", r"\delta\bar{\mathbf{f}}^t = \delta\mathbf{c}^t \odot \mathbf{c}^{t-1} \odot \sigma'(\bar{\mathbf{f}}^t)"),
    ("d_i_bar", r"\delta\bar{\mathbf{i}}^t = \delta\mathbf{c}^t \odot \mathbf{z}^t \odot \sigma'(\bar{\mathbf{i}}^t)"),
    ("d_g_bar", r"\delta\bar{\mathbf{z}}^t = \delta\mathbf{c}^t \odot \mathbf{i}^t \odot g'(\bar{\mathbf{z}}^t)"),
    ("x", r"\delta\mathbf{x}^t = \mathbf{W}_z^{\top}\delta\bar{\mathbf{z}}^t + \mathbf{W}_i^{\top}\delta\bar{\mathbf{i}}^t + \mathbf{W}_f^{\top}\delta\bar{\mathbf{f}}^t + \mathbf{W}_o^{\top}\delta\bar{\mathbf{o}}^t"),
    ("W_i", r"\delta\mathbf{W}_{\ast} = \sum_t \langle \delta\ast^t, \mathbf{x}^t \rangle"),
    ("R_i", r"\delta\mathbf{R}_{\ast} = \sum_t \langle \delta\ast^{t+1}, \mathbf{y}^t \rangle"),
    ("b_i", r"\delta\mathbf{b}_{\ast} = \sum_t \delta\ast^t"),
    ("p_i", r"\delta\mathbf{p}_i = \sum_t \mathbf{c}^t \odot \delta\bar{\mathbf{i}}^{t+1}"),
    ("p_f", r"\delta\mathbf{p}_f = \sum_t \mathbf{c}^t \odot \delta\bar{\mathbf{f}}^{t+1}"),
    ("p_o", r"\delta\mathbf{p}_o = \sum_t \mathbf{c}^t \odot \delta\bar{\mathbf{o}}^t"),
]
#: LaTeX text with $...$ math (turned into HTML and Markdown by ``tex_text_to``)
GREFF_NOTE = (
    "Greff, Srivastava, Koutn\\'{\\i}k, Steunebrink and Schmidhuber, ``LSTM: A Search Space Odyssey'' "
    "(IEEE TNNLS 2017), section 2, give the vanilla LSTM's backpropagation through time. Each of "
    "their equations is shown as published, then as symlstm derives it from the peephole cell's spec, "
    "printed in the greff notation preset. The paper writes $\\sigma'$, $g'$, $h'$ for the activation derivatives; "
    "symlstm writes them with the stored activations: $\\sigma'(\\bar{\\mathbf{o}}) = \\mathbf{o} "
    "\\odot (1 - \\mathbf{o})$, $g'(\\bar{\\mathbf{z}}) = 1 - \\mathbf{z}^{2}$ and $h'(\\mathbf{c}) "
    "= 1 - \\tanh^{2}(\\mathbf{c})$ ($g = h = \\tanh$). $\\ast$ stands for any of "
    "$\\bar{\\mathbf{z}}, \\bar{\\mathbf{i}}, \\bar{\\mathbf{f}}, \\bar{\\mathbf{o}}$; symlstm's "
    "line is shown for $\\bar{\\mathbf{i}}$. The paper's sums with $t+1$ run over $t = 0, \\dots, T-1$, "
    "symlstm's over $t = 1, \\dots, T$ with $t-1$: the same sums. The test tests/test\\_greff.py checks "
    "every equation term by term against an independent SymPy transcription of the paper."
)
_TEXT_MACROS = [("\\'{\\i}", "í"), ("``", "“"), ("''", "”"), ("\\_", "_"), ("\\&", "&"), ("~", " ")]


def tex_text_to(text: str, target: str) -> str:
    """LaTeX text with ``$...$`` math as ``html`` (MathML) or ``md`` (``$...$`` kept)."""
    parts = text.split("$")
    out = []
    for k, part in enumerate(parts):
        if k % 2:
            out.append(mathml_inline(part) if target == "html" else f"${md_tex(part)}$")
            continue
        for macro, char in _TEXT_MACROS:
            part = part.replace(macro, char)
        out.append(html.escape(part) if target == "html" else part)
    return "".join(out)


def greff_pairs() -> list[tuple[str, str]]:
    """(Greff et al.'s equation, symlstm's line in the greff preset) for the peephole cell."""
    from symlstm.cells import builtin_spec

    d = derive(builtin_spec("peephole"))
    n = load_notation("greff")
    lines = dict(zip([a.name for a in d.backward], backward_lines(d, n)))
    grads = gradient_lines(d, n)
    keys = list(d.spec.matrices) + list(d.param_grads) + ["x"] + [s + "0" for s in d.prev_adjoints]
    lines.update(zip(keys, grads))
    return [(paper, lines[key]) for key, paper in GREFF_ROWS]


# -- LaTeX ---------------------------------------------------------------------------------------------

SHEET_PREAMBLE = PREAMBLE + "\\usepackage{booktabs}\n"


def comparison_tabular(summaries: list[CellSummary]) -> str:
    rows = []
    for s in summaries:
        cells = [f"\\texttt{{{_tex_text(s.name)}}}", f"${names_latex(s.states)}$",
                 f"${names_latex(s.gates)}$" if s.gates else "--",
                 f"${names_latex(s.peepholes)}$" if s.peepholes else "--",
                 f"${poly_latex(s.params)}$", f"${poly_latex(s.forward_flops)}$",
                 f"${poly_latex(s.backward_flops)}$", f"${s.stored_vectors}H$"]
        rows.append(" & ".join(cells) + r" \\")
    return ("{\\footnotesize\\setlength{\\tabcolsep}{4pt}\n\\begin{tabular}{llllllll}\n\\toprule\n"
            "cell & states & gates & peepholes & parameters & FLOPs forward & FLOPs backward & stored \\\\\n"
            "\\midrule\n" + "\n".join(rows) + "\n\\bottomrule\n\\end{tabular}}\n")


TABLE_NOTE = ("Per time step and per sequence. Parameters: $DH$ per input matrix, $H^2$ per recurrent "
              "matrix, $H$ per vector. FLOPs: $2rc$ for a product with an $r \\times c$ matrix (forward "
              "$\\mathbf{M}\\mathbf{v}$; backward $\\mathbf{M}^{\\top}\\boldsymbol{\\delta}$ and "
              "$\\boldsymbol{\\delta}\\mathbf{v}^{\\top}$), 1 per elementwise operation or activation. "
              "Stored: vectors of $H$ values the forward pass keeps for the backward pass "
              "($4H$ bytes each in float32, $8H$ in float64).")


def all_sheet(docs: list[CellDoc], n: Notation) -> str:
    parts = [f"% Generated by symlstm {__version__}: every cell, notation '{n.name}'. Do not edit.\n",
             SHEET_PREAMBLE, "\\begin{document}\n",
             "\\section*{symlstm formula sheet}\n",
             "Forward and backward-through-time equations of the recurrent cells below, derived "
             f"symbolically by symlstm {__version__} from their specs and printed in the notation "
             f"\\texttt{{{_tex_text(n.name)}}}. " + n.legend_text() + "\n\n",
             "\\subsection*{The cells compared}\n", comparison_tabular([c.summary for c in docs]),
             "\n\\medskip\\noindent " + TABLE_NOTE + "\n"]
    for doc in docs:
        parts.append("\\clearpage\n" + latex_sections(doc.d, n, legend=False))
    if any(doc.name == "peephole" and doc.spec.sha256 == _builtin_sha("peephole") for doc in docs):
        parts.append("\\clearpage\n" + greff_latex())
    parts.append("\\end{document}\n")
    return "".join(parts)


def greff_aligned(pairs: list[tuple[str, str]]) -> str:
    """The pairs as rows of one ``align*``/``aligned`` body: label, left side, ``=``, right side."""
    rows = []
    for paper, ours in pairs:
        lhs, _, rhs = paper.partition("=")
        (rhs, *paper_more) = rhs.split(r" \\ &\qquad")
        rows.append(f"&\\text{{Greff et al.:}}\\quad & {lhs.strip()} &= {rhs.strip()}"
                    + "".join(f" \\\\ &&& \\qquad {r.strip()}" for r in paper_more))
        (our_lhs, our_rhs), *more = split_rows(ours)
        rows.append(f"&\\text{{symlstm:}}\\quad & {our_lhs} &= {our_rhs}"
                    + "".join(f" \\\\ &&& \\qquad {r}" for _, r in more))
    return " \\\\[8pt]\n".join(f"{a} \\\\\n{b}" for a, b in zip(rows[::2], rows[1::2]))


def greff_latex() -> str:
    return ("\\section*{Greff et al.\\ 2017 and symlstm, side by side}\n" + GREFF_NOTE + "\n"
            "\\begin{align*}\n" + greff_aligned(greff_pairs()) + "\n\\end{align*}\n")


def _builtin_sha(name: str) -> str:
    from symlstm.cells import builtin_spec

    return builtin_spec(name).sha256


#: one page per display, each page sized to its equations (pdfTeX's page size registers), so
#: pdftoppm renders small pages; the PNGs are then cropped to the ink
PNG_PREAMBLE = r"""\documentclass[12pt]{article}
\usepackage{amsmath,amssymb}
\pagestyle{empty}
\setlength{\parindent}{0pt}
\hoffset=-1in \voffset=-1in \oddsidemargin=1cm \evensidemargin=1cm \topmargin=0pt
\headheight=0pt \headsep=0pt \textwidth=500cm \textheight=500cm
\newsavebox\eqbox
\newcommand\eqpage[1]{\sbox\eqbox{$\displaystyle #1$}%
  \pdfpagewidth=\dimexpr\wd\eqbox+2cm\relax
  \pdfpageheight=\dimexpr\ht\eqbox+\dp\eqbox+2cm\relax
  \vspace*{1cm}\leavevmode\usebox\eqbox\newpage}
"""


def png_document(doc: CellDoc) -> str:
    """One tight page per block (forward, backward, gradients), rendered and cropped to PNGs."""
    pages = ["\\eqpage{\\begin{aligned}\n" + " \\\\\n".join(doc.blocks[b]) + "\n\\end{aligned}}"
             for b in BLOCKS]
    return PNG_PREAMBLE + "\\begin{document}\n" + "\n".join(pages) + "\n\\end{document}\n"


def run_pdflatex(tex: str, name: str) -> bytes:
    """Compile ``tex``; returns the PDF's bytes (reproducible: SOURCE_DATE_EPOCH is fixed)."""
    with tempfile.TemporaryDirectory(prefix="symlstm-tex-") as tmp:
        (Path(tmp) / f"{name}.tex").write_text(tex, encoding="utf-8")
        env = {**os.environ, "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "0"),
               "FORCE_SOURCE_DATE": "1"}
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
                             cwd=tmp, capture_output=True, text=True, errors="replace", env=env, timeout=300)
        pdf = Path(tmp) / f"{name}.pdf"
        if run.returncode != 0 or not pdf.exists():
            raise DocsError(f"pdflatex failed on {name}.tex:\n{run.stdout[-3000:]}")
        return pdf.read_bytes()


def pdf_pages_to_png(pdf: bytes, dpi: int) -> list[bytes]:
    """Render every page with pdftoppm and crop it to its ink (with a small white margin)."""
    with tempfile.TemporaryDirectory(prefix="symlstm-png-") as tmp:
        path = Path(tmp) / "doc.pdf"
        path.write_bytes(pdf)
        run = subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", str(path), str(Path(tmp) / "page")],
                             capture_output=True, text=True, timeout=300)
        if run.returncode != 0:
            raise DocsError(f"pdftoppm failed: {run.stderr[-2000:]}")
        pages = sorted(Path(tmp).glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        return [crop_png(p.read_bytes(), margin=dpi // 10) for p in pages]


def crop_png(data: bytes, margin: int = 12) -> bytes:
    from PIL import Image, ImageOps

    image = Image.open(io.BytesIO(data))
    image = image.convert("L" if image.mode in ("L", "1", "LA") else "RGB")
    box = ImageOps.invert(image.convert("L")).getbbox()
    if box is not None:
        left, top, right, bottom = box
        image = image.crop((max(left - margin, 0), max(top - margin, 0),
                            min(right + margin, image.width), min(bottom + margin, image.height)))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


# -- matplotlib mathtext (no TeX) -------------------------------------------------------------------------

#: LaTeX the printer may write -> what mathtext understands
#: (mathtext's \left( \right) around a short argument draws undersized parentheses)
MATHTEXT_REWRITES = [(r"\tfrac", r"\frac"), (r"\left\lvert", "|"), (r"\right\rvert", "|"),
                     (r"\lvert", "|"), (r"\rvert", "|"), (r"\left(", "("), (r"\right)", ")"),
                     (r"\left[", "["), (r"\right]", "]")]


def to_mathtext(latex: str) -> str:
    for old, new in MATHTEXT_REWRITES:
        latex = latex.replace(old, new)
    return latex


def mathtext_png(lines: list[str], dpi: int = 150, fontsize: float = 15) -> bytes:
    """The aligned equations drawn with matplotlib's mathtext: lhs right-aligned, ``=``, rhs."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    import matplotlib

    rows = [row for line in lines for row in split_rows(line)]
    line_height = 2.0 * fontsize / 72  # inches
    height = line_height * (len(rows) + 0.6)
    with matplotlib.rc_context({"mathtext.fontset": "cm", "svg.hashsalt": "symlstm"}):
        fig = Figure(figsize=(30, height), dpi=dpi)
        canvas = FigureCanvasAgg(fig)
        renderer = canvas.get_renderer()
        lefts = []
        for k, (lhs, _) in enumerate(rows):
            if lhs is not None:
                text = fig.text(0, 0, f"${to_mathtext(lhs)}$", fontsize=fontsize, ha="right", va="baseline")
                lefts.append((k, text))
        widest = max((t.get_window_extent(renderer).width for _, t in lefts), default=0) / dpi  # inches
        x0 = (widest + 0.3) / 30
        for k, text in lefts:
            text.set_position((x0, 1 - (k + 1) * line_height / height))
        for k, (lhs, rhs) in enumerate(rows):
            y = 1 - (k + 1) * line_height / height
            body = f"$= {to_mathtext(rhs)}$" if lhs is not None else f"$\\qquad {to_mathtext(rhs)}$"
            fig.text(x0 + 0.15 / 30, y, body, fontsize=fontsize, ha="left", va="baseline")
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.12, facecolor="white",
                    metadata={"Software": None})
    return out.getvalue()


def mathtext_pngs(blocks: list[list[str]], paths: tuple[str, ...], dpi: int) -> dict[str, bytes]:
    return {path: mathtext_png(lines, dpi) for path, lines in zip(paths, blocks)}


# -- MathML ------------------------------------------------------------------------------------------------

_MATH_TAG = re.compile(r"^<math[^>]*>(.*)</math>$", re.S)
_BOLD_ITALIC_GREEK = {chr(0x3B1 + k): chr(0x1D736 + k) for k in range(25)}


def _mathml_inner(latex: str) -> str:
    from latex2mathml.converter import convert

    text = convert(latex)
    match = _MATH_TAG.match(text)
    if match is None:  # pragma: no cover - latex2mathml always wraps in <math>
        raise DocsError(f"unexpected MathML for {latex!r}")
    return _fix_mathml(match.group(1))


def _fix_mathml(text: str) -> str:
    """Make latex2mathml's output render the same in MathML Core browsers (Chromium, Firefox):
    accents sit on their base, and bold Greek / blackboard digits become their Unicode letters."""
    text = text.replace('<mo stretchy="true">&#x000AF;</mo></mover>', '<mo>&#x000AF;</mo></mover>')
    text = text.replace('<mover>', '<mover accent="true">')

    def greek(match):
        char = html.unescape(match.group(1))
        return f"<mi>{_BOLD_ITALIC_GREEK.get(char, char)}</mi>"
    text = re.sub(r'<mi mathvariant="bold-italic">([^<]*)</mi>', greek, text)
    text = re.sub(r"<mi>(&#x003(?:9[1-9A-F]|A[0-9]);)</mi>", r'<mi mathvariant="normal">\1</mi>', text)
    return text.replace('<mn mathvariant="double-struck">1</mn>', "<mn>&#x1D7D9;</mn>")


def mathml_inline(latex: str, display: bool = False) -> str:
    style = ' displaystyle="true"' if display else ""
    return f'<math display="inline"{style}>{_mathml_inner(latex)}</math>'


def mathml_block(lines: list[str]) -> str:
    """Aligned equations: right-aligned left sides, ``=``, left-aligned right sides.

    The alignment is an HTML table of MathML cells: browsers implementing MathML Core
    (Chromium, Firefox, Safari) ignore ``columnalign`` and ``text-align`` inside ``<mtable>``.
    """
    rows = []
    for line in lines:
        for lhs, rhs in split_rows(line):
            if lhs is not None:
                rows.append(f'<tr><td class="l">{mathml_inline(lhs, True)}</td>'
                            f'<td class="r">{mathml_inline("= " + rhs, True)}</td></tr>')
            else:
                # "{}" first: a leading + or - stays a binary operator, as in LaTeX's aligned
                rows.append(f'<tr><td></td><td class="r cont">{mathml_inline("{} " + rhs, True)}</td></tr>')
    return f'<div class="eqs"><table>{"".join(rows)}</table></div>'


def text_with_math(text: str) -> str:
    """A legend: LaTeX text with ``$...$`` math, as HTML."""
    return tex_text_to(text, "html")


# -- Markdown ----------------------------------------------------------------------------------------------

#: Markdown treats a backslash before ASCII punctuation as an escape, and GitHub applies that inside
#: ``$$`` blocks too (``\\\\`` arrives as ``\\``, ``\\,`` as ``,``). The Markdown pages therefore
#: use TeX without such pairs: ``\\cr`` ends a row, ``\\thinspace`` is the thin space. MathJax, KaTeX
#: and MkDocs' arithmatex read both spellings alike.
MD_REWRITES = [("\\\\[8pt]", "\\cr"), ("\\\\", "\\cr"), ("\\,", "\\thinspace ")]
_ESCAPABLE = re.compile(r"\\[!-/:-@\[-`{-~]")


def md_tex(latex: str) -> str:
    for old, new in MD_REWRITES:
        latex = latex.replace(old, new)
    bad = _ESCAPABLE.search(latex)
    if bad:
        raise DocsError(f"{bad.group()!r} in {latex!r} would be eaten by Markdown's escapes")
    return latex


def md_math(lines: list[str]) -> str:
    return "$$\n\\begin{aligned}\n" + md_tex(" \\\\\n".join(lines)) + "\n\\end{aligned}\n$$\n"


def md_inline(latex: str) -> str:
    return f"${md_tex(latex)}$"


# -- pages -------------------------------------------------------------------------------------------------

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; max-width: 1180px;
       margin: 1.5rem auto 3rem; padding: 0 1.2rem; color: #1f2937; line-height: 1.5; }
nav { font-size: .95rem; margin-bottom: 1rem; } nav a { margin-right: 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .3rem; } h2 { font-size: 1.25rem; margin-top: 2rem;
     border-bottom: 1px solid #e5e7eb; padding-bottom: .2rem; }
a { color: #1d4ed8; text-decoration: none; } a:hover { text-decoration: underline; }
math { font-size: 1.12em; }
math[display="block"] { display: block; overflow-x: auto; padding: .4rem 0; }
div.eqs { overflow-x: auto; margin: .6rem 0; }
div.eqs table { border-collapse: collapse; }
div.eqs td { padding: .18em 0; white-space: nowrap; vertical-align: baseline; }
div.eqs td.l { text-align: right; padding-right: .25em; } div.eqs td.r { text-align: left; }
div.eqs td.cont { padding-left: 2.2em; }
table.cmp { border-collapse: collapse; font-size: .92rem; margin: 1rem 0; }
table.cmp th, table.cmp td { border-bottom: 1px solid #e5e7eb; padding: .35rem .55rem; text-align: left;
                              vertical-align: top; }
table.cmp th { background: #f3f4f6; }
div.side td.who { color: #4b5563; font-size: .9rem; padding-right: 1.2rem; }
div.side tr.first td { padding-top: .9rem; border-top: 1px solid #e5e7eb; }
.meta { color: #4b5563; } .note { color: #4b5563; font-size: .92rem; }
img.diagram { max-width: 100%; height: auto; border: 1px solid #e5e7eb; border-radius: 6px; }
footer { margin-top: 3rem; color: #6b7280; font-size: .85rem; }
code { background: #f3f4f6; padding: 0 .25rem; border-radius: 3px; }
"""


@dataclass
class Plan:
    """What this build produces, decided before anything runs (pages link only to these)."""

    out: Path
    notation: Notation
    tools: Tools
    png_renderer: str  # "latex" or "mathtext"
    pdf: bool
    diagrams: bool
    dpi: int
    greff: bool
    notes: list[str] = field(default_factory=list)


def html_page(title: str, body: str, plan: Plan) -> str:
    nav = '<nav><a href="index.html">All cells</a>' + (
        '<a href="greff.html">Greff et al. side by side</a>' if plan.greff else "") + \
        ('<a href="pdf/all.pdf">Formula sheet (PDF)</a>' if plan.pdf else "") + "</nav>"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{nav}\n<main>\n"
            f"{body}\n</main>\n<footer>Generated by symlstm {__version__} in the notation "
            f"<code>{html.escape(plan.notation.name)}</code>. The equations are MathML: no JavaScript, "
            "no network.</footer>\n</body>\n</html>\n")


def summary_rows_html(s: CellSummary) -> list[tuple[str, str]]:
    return [
        ("states", mathml_inline(names_latex(s.states))),
        ("gates", mathml_inline(names_latex(s.gates)) if s.gates else "none"),
        ("peepholes", mathml_inline(names_latex(s.peepholes)) if s.peepholes else "none"),
        ("parameters", mathml_inline(poly_latex(s.params))),
        ("FLOPs per step, forward", mathml_inline(poly_latex(s.forward_flops))),
        ("FLOPs per step, backward", mathml_inline(poly_latex(s.backward_flops))),
        ("stored per step for the backward",
         mathml_inline(f"{s.stored_vectors}H") + f" values ({4 * s.stored_vectors}H bytes in float32)"),
    ]


def cell_html(doc: CellDoc, plan: Plan) -> str:
    spec, s = doc.spec, doc.summary
    refs = "; ".join(html.escape(r) for r in spec.references)
    body = [f"<h1>{html.escape(spec.title)}</h1>",
            f"<p class=\"meta\">Cell <code>{html.escape(spec.name)}</code>. State carried between steps: "
            + ", ".join(mathml_inline(plan.notation.vector(st, "t")) for st in spec.states)
            + (f". References: {refs}." if refs else ".") + "</p>",
            f"<p class=\"note\">{text_with_math(plan.notation.legend_text())}</p>"]
    if plan.diagrams:
        body.append(f'<p><img class="diagram" src="diagrams/{spec.name}.svg" alt="Diagram of the cell '
                    f'{html.escape(spec.name)}: inputs, gates, products and states"></p>')
    body.append('<table class="cmp">' + "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>"
                                              for k, v in summary_rows_html(s)) + "</table>")
    for block in BLOCKS:
        body.append(f"<h2>{BLOCK_TITLES[block]}</h2>")
        if block == "backward":
            body.append(f"<p class=\"note\">{html.escape(BACKWARD_NOTE)}</p>")
        body.append(mathml_block(doc.blocks[block]))
    files = [f'<a href="tex/{spec.name}.tex">LaTeX</a>', f'<a href="md/{spec.name}.md">Markdown</a>']
    if plan.pdf:
        files.insert(0, f'<a href="pdf/{spec.name}.pdf">PDF</a>')
    files += [f'<a href="png/{spec.name}-{b}.png">{b} (PNG)</a>' for b in BLOCKS]
    files.append(f'<a href="diagrams/{spec.name}.dot">diagram (dot)</a>')
    if plan.diagrams:
        files.append(f'<a href="diagrams/{spec.name}.png">diagram (PNG)</a>')
    body.append("<h2>Files</h2><p>" + " · ".join(files) + "</p>")
    return html_page(f"{spec.title} — symlstm", "\n".join(body), plan)


def comparison_html(docs: list[CellDoc]) -> str:
    head = ("<tr><th>cell</th><th>states</th><th>gates</th><th>peepholes</th><th>parameters</th>"
            "<th>FLOPs forward</th><th>FLOPs backward</th><th>stored for backward</th></tr>")
    rows = []
    for doc in docs:
        s = doc.summary
        cells = [f'<a href="{s.name}.html"><code>{html.escape(s.name)}</code></a>'
                 f'<br><span class="note">{html.escape(s.title)}</span>',
                 mathml_inline(names_latex(s.states)),
                 mathml_inline(names_latex(s.gates)) if s.gates else "–",
                 mathml_inline(names_latex(s.peepholes)) if s.peepholes else "–",
                 mathml_inline(poly_latex(s.params)), mathml_inline(poly_latex(s.forward_flops)),
                 mathml_inline(poly_latex(s.backward_flops)), mathml_inline(f"{s.stored_vectors}H")]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table class="cmp">{head}{"".join(rows)}</table>'


def index_html(docs: list[CellDoc], plan: Plan) -> str:
    body = ["<h1>symlstm: the cells' equations</h1>",
            "<p>Forward and backward-through-time equations of each recurrent cell, derived "
            "symbolically from its spec by the same derivation that generates its kernels, printed in "
            f"the notation <code>{html.escape(plan.notation.name)}</code> "
            f"({html.escape(plan.notation.description)}).</p>",
            "<h2>The cells compared</h2>", comparison_html(docs),
            f"<p class=\"note\">{text_with_math(TABLE_NOTE)}</p>"]
    if plan.greff:
        body.append('<p><a href="greff.html">The peephole cell\'s backward pass beside Greff et al. '
                    "2017's published equations</a>.</p>")
    if plan.pdf:
        body.append('<p><a href="pdf/all.pdf">All cells as one PDF formula sheet</a>.</p>')
    body += [f"<p class=\"note\">{html.escape(note)}</p>" for note in plan.notes]
    return html_page("symlstm cells", "\n".join(body), plan)


def greff_html(plan: Plan) -> str:
    rows = []
    for paper, ours in greff_pairs():
        for label, line in (("Greff et al. 2017", paper.replace("=", "&=", 1)), ("symlstm", ours)):
            for k, (lhs, rhs) in enumerate(split_rows(line)):
                head = f'<td class="who">{label}</td>' if k == 0 else "<td></td>"
                first = ' class="first"' if k == 0 and label != "symlstm" else ""
                if lhs is not None:
                    rows.append(f'<tr{first}>{head}<td class="l">{mathml_inline(lhs, True)}</td>'
                                f'<td class="r">{mathml_inline("= " + rhs, True)}</td></tr>')
                else:
                    rows.append(f'<tr>{head}<td></td><td class="r cont">'
                                f'{mathml_inline("{} " + rhs, True)}</td></tr>')
    body = ["<h1>Greff et al. 2017 and symlstm, side by side</h1>",
            f"<p class=\"note\">{text_with_math(GREFF_NOTE)}</p>",
            f'<div class="eqs side"><table>{"".join(rows)}</table></div>']
    return html_page("Greff et al. 2017 and symlstm", "\n".join(body), plan)


def cell_md(doc: CellDoc, plan: Plan) -> str:
    spec = doc.spec
    refs = "; ".join(spec.references)
    states = ", ".join(md_inline(plan.notation.vector(s, "t")) for s in spec.states)
    out = [f"# {spec.title}\n", f"Cell `{spec.name}`. State carried between steps: {states}"
           + (f". References: {refs}.\n" if refs else ".\n"),
           tex_text_to(plan.notation.legend_text(), "md") + "\n"]
    if plan.diagrams:
        out.append(f"![Diagram of the cell {spec.name}](../diagrams/{spec.name}.svg)\n")
    s = doc.summary
    out.append("| | |\n|---|---|\n" + "".join(
        f"| {k} | {v} |\n" for k, v in [
            ("states", md_inline(names_latex(s.states))),
            ("gates", md_inline(names_latex(s.gates)) if s.gates else "none"),
            ("peepholes", md_inline(names_latex(s.peepholes)) if s.peepholes else "none"),
            ("parameters", md_inline(poly_latex(s.params))),
            ("FLOPs per step, forward", md_inline(poly_latex(s.forward_flops))),
            ("FLOPs per step, backward", md_inline(poly_latex(s.backward_flops))),
            ("stored per step for the backward", md_inline(f"{s.stored_vectors}H") + " values")]))
    for block in BLOCKS:
        out.append(f"## {BLOCK_TITLES[block]}\n")
        if block == "backward":
            out.append(BACKWARD_NOTE + "\n")
        out.append(md_math(doc.blocks[block]))
    return "\n".join(out)


def index_md(docs: list[CellDoc], plan: Plan) -> str:
    out = ["# symlstm: the cells' equations\n",
           f"Notation `{plan.notation.name}`: {plan.notation.description}.\n",
           "| cell | states | gates | peepholes | parameters | FLOPs forward | FLOPs backward | stored |",
           "|---|---|---|---|---|---|---|---|"]
    for doc in docs:
        s = doc.summary
        out.append(f"| [`{s.name}`]({s.name}.md) | {md_inline(names_latex(s.states))} | "
                   f"{md_inline(names_latex(s.gates)) if s.gates else '–'} | "
                   f"{md_inline(names_latex(s.peepholes)) if s.peepholes else '–'} | "
                   f"{md_inline(poly_latex(s.params))} | {md_inline(poly_latex(s.forward_flops))} | "
                   f"{md_inline(poly_latex(s.backward_flops))} | {md_inline(f'{s.stored_vectors}H')} |")
    out.append("\n" + tex_text_to(TABLE_NOTE, "md") + "\n")
    if plan.greff:
        out.append("[The peephole cell's backward pass beside Greff et al. 2017](greff.md)\n")
    return "\n".join(out)


def greff_md() -> str:
    return ("# Greff et al. 2017 and symlstm, side by side\n\n" + tex_text_to(GREFF_NOTE, "md") + "\n\n"
            "$$\n\\begin{aligned}\n" + md_tex(greff_aligned(greff_pairs())) + "\n\\end{aligned}\n$$\n")


def comparison_csv(docs: list[CellDoc]) -> str:
    lines = ["cell,states,gates,peepholes,parameters,flops_forward,flops_backward,stored_vectors_per_step"]
    for doc in docs:
        s = doc.summary
        lines.append(",".join([s.name, " ".join(s.states), " ".join(s.gates), " ".join(s.peepholes),
                               str(s.params), str(s.forward_flops), str(s.backward_flops),
                               f"{s.stored_vectors}H"]))
    return "\n".join(lines) + "\n"


# -- the build ---------------------------------------------------------------------------------------------

@dataclass(eq=False)
class Step:
    outputs: tuple[str, ...]
    key: str
    make: Callable[[], dict[str, bytes]]
    external: bool = False  # runs a program: in a worker thread


@dataclass
class Report:
    out: Path
    written: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _key(*parts: object) -> str:
    digest = hashlib.sha256(f"symlstm-docs {FORMAT} {__version__}".encode())
    for part in parts:
        digest.update(b"\0" + (part if isinstance(part, bytes) else str(part).encode()))
    return digest.hexdigest()


def _text_step(path: str, text: str) -> Step:
    data = text.encode("utf-8")
    return Step((path,), _key("text", data), lambda: {path: data})


def plan_steps(docs: list[CellDoc], plan: Plan) -> list[Step]:
    n = plan.notation
    steps: list[Step] = []
    dpi = plan.dpi
    for doc in docs:
        name = doc.name
        sheet = latex_document(doc.d, n)
        steps.append(_text_step(f"tex/{name}.tex", sheet))
        if plan.pdf:
            steps.append(Step((f"pdf/{name}.pdf",), _key("pdf", sheet),
                              lambda sheet=sheet, name=name: {f"pdf/{name}.pdf": run_pdflatex(sheet, name)},
                              external=True))
        pngs = tuple(f"png/{name}-{b}.png" for b in BLOCKS)
        if plan.png_renderer == "latex":
            source = png_document(doc)

            def make(source=source, pngs=pngs, name=name):
                return dict(zip(pngs, pdf_pages_to_png(run_pdflatex(source, name), dpi)))
            steps.append(Step(pngs, _key("png-latex", dpi, source), make, external=True))
        else:
            # mathtext's parser is not thread-safe: these run one by one in this thread (a process
            # pool would re-run an unguarded user script that calls build_docs in every worker)
            blocks = [doc.blocks[b] for b in BLOCKS]
            steps.append(Step(pngs, _key("png-mathtext", dpi, _matplotlib_version(), blocks),
                              lambda blocks=blocks, pngs=pngs: mathtext_pngs(blocks, pngs, dpi)))
        dot_source = _diagram_source(doc.spec)
        steps.append(_text_step(f"diagrams/{name}.dot", dot_source))
        if plan.diagrams:
            from symlstm.site.diagram import render

            outs = (f"diagrams/{name}.svg", f"diagrams/{name}.png")
            steps.append(Step(outs, _key("dot", dot_source),
                              lambda src=dot_source, outs=outs: {outs[0]: render(src, "svg"),
                                                                 outs[1]: render(src, "png")},
                              external=True))
        steps.append(_text_step(f"md/{name}.md", cell_md(doc, plan)))
        steps.append(_text_step(f"{name}.html", cell_html(doc, plan)))
    sheet = all_sheet(docs, n)
    steps.append(_text_step("tex/all.tex", sheet))
    if plan.pdf:
        steps.append(Step(("pdf/all.pdf",), _key("pdf", sheet), lambda: {"pdf/all.pdf": run_pdflatex(sheet, "all")},
                          external=True))
    steps.append(_text_step("index.html", index_html(docs, plan)))
    steps.append(_text_step("md/index.md", index_md(docs, plan)))
    steps.append(_text_step("comparison.csv", comparison_csv(docs)))
    if plan.greff:
        steps.append(_text_step("greff.html", greff_html(plan)))
        steps.append(_text_step("md/greff.md", greff_md()))
    return steps


def _diagram_source(spec: CellSpec) -> str:
    from symlstm.site.diagram import diagram_dot

    return diagram_dot(spec)


def _matplotlib_version() -> str:
    from importlib.metadata import version

    return version("matplotlib")


def build_docs(out: str | os.PathLike, cells: Iterable[str] | None = None,
               notation: str | Notation | None = None, png: str = "auto", pdf: bool = True,
               tex: bool = True, diagrams: bool = True, dpi: int = 150, force: bool = False,
               progress: bool = True, jobs: int | None = None) -> Report:
    """Build the documentation site into ``out``; see the module docstring for what it holds.

    ``cells``: built-in names or spec paths (default: every built-in cell). ``png``: ``auto``
    (pdflatex + pdftoppm when installed, else mathtext), ``latex`` or ``mathtext``. ``tex=False``
    behaves as if TeX were not installed. ``force`` rebuilds everything.
    """
    out = Path(out)
    try:
        import latex2mathml  # noqa: F401 - the HTML pages' MathML
    except ImportError:
        raise DocsError("the HTML pages need latex2mathml: pip install latex2mathml "
                        "(or pip install 'symlstm[docs]')") from None
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
    plan = Plan(out=out, notation=n, tools=tools, png_renderer=renderer, pdf=pdf and tools.pdflatex,
                diagrams=tools.dot, dpi=dpi,
                greff=any(d.name == "peephole" and d.spec.sha256 == _builtin_sha("peephole") for d in docs))
    report = Report(out)
    if pdf and not tools.pdflatex:
        report.notes.append(f"pdflatex not found: the LaTeX formula sheets (tex/) were not compiled to "
                            f"PDF; {TEX_HINT}.")
    if renderer == "mathtext":
        report.notes.append("PNG equations drawn with matplotlib's mathtext"
                            + ("" if tools.latex_png else " (pdflatex and pdftoppm were not found)") + ".")
    if diagrams and not tools.dot:
        report.notes.append(f"Graphviz 'dot' not found: the diagrams are only written as .dot files; {DOT_HINT}.")
    plan.notes = [note for note in report.notes if "not found" in note]

    steps = plan_steps(docs, plan)
    manifest_path = out / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text()) if not force else {}
        files = manifest.get("files", {}) if manifest.get("format") == FORMAT else {}
    except (OSError, ValueError):
        files = {}

    def current(step: Step) -> bool:
        return all(files.get(p) == step.key and (out / p).exists() for p in step.outputs)

    todo = [s for s in steps if force or not current(s)]
    for s in steps:
        if s not in todo:
            report.reused += list(s.outputs)
    bar = _progress(len(steps), progress, initial=len(steps) - len(todo))

    def finish(step: Step, result: dict[str, bytes]) -> None:
        for path, data in result.items():
            write_atomic(out / path, data)
            files[path] = step.key
            report.written.append(path)
        bar.update(1)

    out.mkdir(parents=True, exist_ok=True)
    workers = jobs or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as threads:
        futures = [(s, threads.submit(s.make)) for s in todo if s.external]
        futures += [(s, _Done(s.make)) for s in todo if not s.external]
        for s, future in futures:
            try:
                finish(s, future.result())
            except Exception as err:  # noqa: BLE001 - report every failed file, keep the rest
                report.errors.append(f"{', '.join(s.outputs)}: {err}")
                bar.update(1)
    bar.close()
    write_atomic(manifest_path, (json.dumps({"format": FORMAT, "version": __version__, "files":
                                             dict(sorted(files.items()))}, indent=1) + "\n").encode())
    return report


class _Done:
    """A step run right here, with the interface of a future."""

    def __init__(self, make):
        try:
            self.value, self.error = make(), None
        except Exception as err:  # noqa: BLE001
            self.value, self.error = None, err

    def result(self):
        if self.error is not None:
            raise self.error
        return self.value


class _NoBar:
    def update(self, k: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool, initial: int):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="symlstm docs", unit="file", file=sys.stderr,
                dynamic_ncols=True, leave=True)
