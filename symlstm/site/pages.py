"""What every page of the site shares: one cell's material, the build's plan, common texts.

``CellDoc`` is a cell's derivation, summary and equations (the printer's lines and the same as
rows); ``Plan`` what a build produces, so pages link only to files that exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from symlstm.backends.latex.equations import Row, backward_lines, equation_rows, forward_lines, gradient_lines
from symlstm.backends.latex.notation import Notation
from symlstm.ir.derive import Derivation, derive
from symlstm.ir.summary import CellSummary, summarize
from symlstm.lang.spec import CellSpec

BLOCK_TITLES = {"forward": "Forward pass", "backward": "Backward pass through time", "gradients": "Gradients"}
BACKWARD_NOTE = "From t = T down to 1; quantities at T+1 are zero, except the gradients of the final state."
TABLE_NOTE = (
    "Per time step and per sequence. Parameters: $DH$ per input matrix, $H^2$ per recurrent "
    "matrix, $H$ per vector. FLOPs: $2rc$ for a product with an $r \\times c$ matrix (forward "
    "$\\mathbf{M}\\mathbf{v}$; backward $\\mathbf{M}^{\\top}\\boldsymbol{\\delta}$ and "
    "$\\boldsymbol{\\delta}\\mathbf{v}^{\\top}$), 1 per elementwise operation or activation. "
    "Stored: vectors of $H$ values the forward pass keeps for the backward pass "
    "($4H$ bytes each in float32, $8H$ in float64)."
)


@dataclass
class CellDoc:
    spec: CellSpec
    d: Derivation
    summary: CellSummary
    #: block -> the printer's ``align`` lines (LaTeX, Markdown, PNG via pdflatex)
    blocks: dict[str, list[str]]
    #: block -> the same equations as rows (HTML tables, mathtext)
    rows: dict[str, list[Row]]

    @property
    def name(self) -> str:
        return self.spec.name


def cell_doc(spec: CellSpec, n: Notation) -> CellDoc:
    d = derive(spec)
    blocks = {"forward": forward_lines(d, n), "backward": backward_lines(d, n), "gradients": gradient_lines(d, n)}
    return CellDoc(spec, d, summarize(d), blocks, equation_rows(d, n))


@dataclass
class Plan:
    """What this build produces, decided before anything runs (pages link only to these)."""

    out: Path
    notation: Notation
    png_renderer: str  # "latex" or "mathtext"
    pdf: bool
    diagrams: bool
    dpi: int
    greff: bool
    notes: list[str] = field(default_factory=list)


def poly_latex(poly) -> str:
    return str(poly).replace("²", "^{2}").replace("³", "^{3}")


def summary_math(s: CellSummary) -> list[tuple[str, str | None]]:
    """A cell's row of the comparison: (label, LaTeX), None where a list is empty; every page
    writes these in its own markup."""
    return [
        ("states", names_latex(s.states)),
        ("gates", names_latex(s.gates) if s.gates else None),
        ("peepholes", names_latex(s.peepholes) if s.peepholes else None),
        ("parameters", poly_latex(s.params)),
        ("FLOPs per step, forward", poly_latex(s.forward_flops)),
        ("FLOPs per step, backward", poly_latex(s.backward_flops)),
        ("stored per step for the backward", poly_latex(s.stored)),
    ]


def names_latex(names: Iterable[str]) -> str:
    out = []
    for name in names:
        base, _, sub = name.partition("_")
        out.append(f"{base}_{{{sub}}}" if sub else base)
    return ", ".join(out)


_TEXT_MACROS = [("\\'{\\i}", "í"), ("``", "“"), ("''", "”"), ("\\_", "_"), ("\\&", "&"), ("~", " ")]


def tex_text(text: str, math: Callable[[str], str], plain: Callable[[str], str] = str) -> str:
    """LaTeX text with ``$...$`` math for a page: ``math`` turns each formula into the page's
    markup, ``plain`` escapes the text between them (after the few text macros are replaced)."""
    out = []
    for k, part in enumerate(text.split("$")):
        if k % 2:
            out.append(math(part))
            continue
        for macro, char in _TEXT_MACROS:
            part = part.replace(macro, char)
        out.append(plain(part))
    return "".join(out)


def comparison_csv(docs: list[CellDoc]) -> str:
    lines = ["cell,states,gates,peepholes,parameters,flops_forward,flops_backward,stored_vectors_per_step"]
    for doc in docs:
        s = doc.summary
        lines.append(
            ",".join(
                [
                    s.name,
                    " ".join(s.states),
                    " ".join(s.gates),
                    " ".join(s.peepholes),
                    str(s.params),
                    str(s.forward_flops),
                    str(s.backward_flops),
                    str(s.stored),
                ]
            )
        )
    return "\n".join(lines) + "\n"
