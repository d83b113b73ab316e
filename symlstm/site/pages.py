"""What every page of the site shares: one cell's material, the build's plan, common texts.

``CellDoc`` is a cell's derivation, summary and equations (as ``symlstm latex`` prints them, and
the backward pass step by step for the derivation pages); ``Plan`` what a build produces, so pages
link only to files that exist.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from symlstm.backends.latex.document import Layout, layout_gradient_rows
from symlstm.backends.latex.equations import Row, backward_rows, forward_rows
from symlstm.backends.latex.notation import Notation, load_notation
from symlstm.backends.latex.steps import steps_rows
from symlstm.ir.derive import Derivation, derive
from symlstm.ir.summary import CellSummary, summarize
from symlstm.lang.spec import CellSpec

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
    notation: Notation
    #: block -> its equations as rows, as ``symlstm latex`` prints them (compact gradients)
    rows: dict[str, list[Row]]

    @property
    def name(self) -> str:
        return self.spec.name

    @functools.cached_property
    def steps(self) -> dict[str, Row]:
        """The backward pass derived step by step (``symlstm latex --steps``), keyed as
        ``steps_rows``; made when a derivation page asks for it."""
        return steps_rows(self.d, self.notation)

    @property
    def blocks(self) -> dict[str, list[str]]:
        """block -> the rows as ``align`` lines (LaTeX, PNG via pdflatex)."""
        return {block: [row.latex() for row in rows] for block, rows in self.rows.items()}


def derivation_title(doc: CellDoc) -> str:
    """The title of a cell's derivation page (HTML, Markdown)."""
    return f"{doc.spec.title}: the backward pass derived"


def cell_doc(spec: CellSpec, n: Notation) -> CellDoc:
    d = derive(spec)
    rows = {
        "forward": list(forward_rows(d, n).values()),
        "backward": list(backward_rows(d, n).values()),
        "gradients": list(layout_gradient_rows(d, n, Layout()).values()),
    }
    return CellDoc(spec, d, summarize(d), n, rows)


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
    r"""Spec names as the summary table's math: ``p_i`` -> ``p_{i}``, ``i_pre`` -> ``i_{\mathrm{pre}}``
    (the parts after the first underscore as the printer writes them: never a raw ``_``)."""
    n = load_notation(None)
    out = []
    for name in names:
        base, _, sub = name.partition("_")
        out.append(f"{base}_{{{n.parts(sub)}}}" if sub else base)
    return ", ".join(out)


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
