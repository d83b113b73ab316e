"""Greff et al. 2017 beside symlstm: the paper's equations as data, and the comparison's LaTeX,
HTML (``greff.html``) and Markdown (``md/greff.md``)."""

from __future__ import annotations

from symlstm.backends.latex.equations import Row, backward_rows, gradient_rows
from symlstm.backends.latex.markdown import md_aligned, md_text
from symlstm.backends.latex.notation import load_notation
from symlstm.cells import builtin_spec
from symlstm.ir.derive import derive
from symlstm.site.html import html_page, text_with_math
from symlstm.site.mathml import row_cells
from symlstm.site.pages import CellDoc, Plan

#: (symlstm row key, Greff et al.'s published equation in their notation). Keys: a backward
#: assignment, ``x`` (the input gradient) or a parameter (its gradient row).
GREFF_ROWS = [
    (
        "d_h",
        Row(
            r"\delta\mathbf{y}^t",
            (
                r"\Delta^t + \mathbf{R}_z^{\top}\delta\bar{\mathbf{z}}^{t+1} "
                r"+ \mathbf{R}_i^{\top}\delta\bar{\mathbf{i}}^{t+1} "
                r"+ \mathbf{R}_f^{\top}\delta\bar{\mathbf{f}}^{t+1}",
                r"+ \mathbf{R}_o^{\top}\delta\bar{\mathbf{o}}^{t+1}",
            ),
        ),
    ),
    (
        "d_o_bar",
        Row(
            r"\delta\bar{\mathbf{o}}^t",
            (r"\delta\mathbf{y}^t \odot h(\mathbf{c}^t) \odot \sigma'(\bar{\mathbf{o}}^t)",),
        ),
    ),
    (
        "d_c",
        Row(
            r"\delta\mathbf{c}^t",
            (
                r"\delta\mathbf{y}^t \odot \mathbf{o}^t \odot h'(\mathbf{c}^t) "
                r"+ \mathbf{p}_o \odot \delta\bar{\mathbf{o}}^t "
                r"+ \mathbf{p}_i \odot \delta\bar{\mathbf{i}}^{t+1}",
                r"+ \mathbf{p}_f \odot \delta\bar{\mathbf{f}}^{t+1} + \delta\mathbf{c}^{t+1} \odot \mathbf{f}^{t+1}",
            ),
        ),
    ),
    (
        "d_f_bar",
        Row(
            r"\delta\bar{\mathbf{f}}^t",
            (r"\delta\mathbf{c}^t \odot \mathbf{c}^{t-1} \odot \sigma'(\bar{\mathbf{f}}^t)",),
        ),
    ),
    (
        "d_i_bar",
        Row(r"\delta\bar{\mathbf{i}}^t", (r"\delta\mathbf{c}^t \odot \mathbf{z}^t \odot \sigma'(\bar{\mathbf{i}}^t)",)),
    ),
    (
        "d_g_bar",
        Row(r"\delta\bar{\mathbf{z}}^t", (r"\delta\mathbf{c}^t \odot \mathbf{i}^t \odot g'(\bar{\mathbf{z}}^t)",)),
    ),
    (
        "x",
        Row(
            r"\delta\mathbf{x}^t",
            (
                r"\mathbf{W}_z^{\top}\delta\bar{\mathbf{z}}^t + \mathbf{W}_i^{\top}\delta\bar{\mathbf{i}}^t "
                r"+ \mathbf{W}_f^{\top}\delta\bar{\mathbf{f}}^t + \mathbf{W}_o^{\top}\delta\bar{\mathbf{o}}^t",
            ),
        ),
    ),
    ("W_i", Row(r"\delta\mathbf{W}_{\ast}", (r"\sum_t \langle \delta\ast^t, \mathbf{x}^t \rangle",))),
    ("R_i", Row(r"\delta\mathbf{R}_{\ast}", (r"\sum_t \langle \delta\ast^{t+1}, \mathbf{y}^t \rangle",))),
    ("b_i", Row(r"\delta\mathbf{b}_{\ast}", (r"\sum_t \delta\ast^t",))),
    ("p_i", Row(r"\delta\mathbf{p}_i", (r"\sum_t \mathbf{c}^t \odot \delta\bar{\mathbf{i}}^{t+1}",))),
    ("p_f", Row(r"\delta\mathbf{p}_f", (r"\sum_t \mathbf{c}^t \odot \delta\bar{\mathbf{f}}^{t+1}",))),
    ("p_o", Row(r"\delta\mathbf{p}_o", (r"\sum_t \mathbf{c}^t \odot \delta\bar{\mathbf{o}}^t",))),
]
#: LaTeX text with $...$ math (turned into HTML and Markdown by ``markup_text``)
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


def compares_with_greff(docs: list[CellDoc]) -> bool:
    """The comparison is part of the site when the built-in peephole cell is."""
    return any(doc.name == "peephole" and doc.spec.sha256 == builtin_spec("peephole").sha256 for doc in docs)


def greff_pairs() -> list[tuple[Row, Row]]:
    """(Greff et al.'s equation, symlstm's row in the greff preset) for the peephole cell."""
    d = derive(builtin_spec("peephole"))
    n = load_notation("greff")
    ours = {**backward_rows(d, n), **gradient_rows(d, n)}
    return [(paper, ours[key]) for key, paper in GREFF_ROWS]


def _aligned(label: str, row: Row) -> str:
    first, *more = row.lines
    return f"&\\text{{{label}:}}\\quad & {row.lhs} &= {first}" + "".join(f" \\\\ &&& \\qquad {line}" for line in more)


def greff_aligned(pairs: list[tuple[Row, Row]]) -> str:
    """The pairs as rows of one ``align*``/``aligned`` body: label, left side, ``=``, right side."""
    return " \\\\[8pt]\n".join(
        f"{_aligned('Greff et al.', paper)} \\\\\n{_aligned('symlstm', ours)}" for paper, ours in pairs
    )


def greff_latex() -> str:
    return (
        "\\section*{Greff et al.\\ 2017 and symlstm, side by side}\n" + GREFF_NOTE + "\n"
        "\\begin{align*}\n" + greff_aligned(greff_pairs()) + "\n\\end{align*}\n"
    )


def greff_html(plan: Plan) -> str:
    rows = []
    for paper, ours in greff_pairs():
        for label, row in (("Greff et al. 2017", paper), ("symlstm", ours)):
            for k, cells in enumerate(row_cells(row)):
                head = f'<td class="who">{label}</td>' if k == 0 else "<td></td>"
                first = ' class="first"' if k == 0 and label != "symlstm" else ""
                rows.append(f"<tr{first}>{head}{cells}</tr>")
    body = [
        "<h1>Greff et al. 2017 and symlstm, side by side</h1>",
        f'<p class="note">{text_with_math(GREFF_NOTE)}</p>',
        f'<div class="eqs side"><table>{"".join(rows)}</table></div>',
    ]
    return html_page("Greff et al. 2017 and symlstm", "\n".join(body), plan)


def greff_md() -> str:
    return (
        "# Greff et al. 2017 and symlstm, side by side\n\n"
        + md_text(GREFF_NOTE)
        + "\n\n"
        + md_aligned(greff_aligned(greff_pairs()))
    )
