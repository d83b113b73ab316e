"""A cell's equations as the LaTeX backend writes them: one ``Row`` per equation.

A row is the left side and the right side's physical lines (a long sum breaks after every
``PER_LINE`` terms onto aligned continuation lines). ``forward_lines``, ``backward_lines`` and
``gradient_lines`` are the rows as ``align`` strings, ``lhs &= rhs \\\\ &\\qquad more``;
renderers that lay out rows themselves (HTML tables of MathML, matplotlib's mathtext) take the
rows.
"""

from __future__ import annotations

from typing import NamedTuple

import sympy

from symlstm.backends.latex.notation import Notation, load_notation
from symlstm.backends.latex.printer import LatexError, VectorLatexPrinter, join_terms
from symlstm.ir.derive import Derivation
from symlstm.ir.nodes import Kind


def check_unambiguous(d: Derivation, notation: Notation | str | None = None) -> Notation:
    """Raise ``LatexError`` if the preset typesets two different names of the cell the same way
    (e.g. ``greff`` renames ``g`` to ``z``: a cell with both ``g`` and ``z`` cannot use it)."""
    n = load_notation(notation)
    seen: dict[str, str] = {}
    names = [(d.input.name, n.vector(d.input.name, "t"))]
    names += [(s, n.vector(s, "t")) for s in d.spec.states]
    names += [(a.name, n.vector(a.name, "t")) for a in d.forward if d.kind(a.name) in (Kind.VALUE, Kind.OPERAND)]
    names += [(name, n.vector(name, "t")) for name in d.spec.inputs]
    names += [(p, n.parameter(p)) for p in d.spec.param_names]
    for name, text in names:
        other = seen.setdefault(text, name)
        if other != name:
            raise LatexError(
                f"the notation {n.name!r} typesets both {other!r} and {name!r} of the cell "
                f"{d.spec.name!r} as {text}; use another notation or rename one in the spec"
            )
    return n


#: the three displays of a cell's equations, in reading order
BLOCKS = ("forward", "backward", "gradients")
#: terms per line of a long sum (the printer breaks its right sides after this many)
PER_LINE = 4
#: what the printer writes between the lines of one right side
BREAK = r" \\ &\qquad "


class Row(NamedTuple):
    """One equation: ``lhs = lines[0]``, then ``lines[1:]`` as continuation lines (each starting
    with its sign, ``+ ...`` or ``- ...``)."""

    lhs: str
    lines: tuple[str, ...]

    def latex(self) -> str:
        """The equation as the printer writes it: one ``align`` row."""
        return f"{self.lhs} &= " + BREAK.join(self.lines)


def sum_lines(terms: list[str], per_line: int = PER_LINE) -> tuple[str, ...]:
    """Signed terms (``+ a``, ``- b``) as the lines of a right side: ``per_line`` terms each."""
    chunks = [terms[k : k + per_line] for k in range(0, len(terms), per_line)] or [[]]
    return (join_terms(chunks[0]), *(" ".join(chunk) for chunk in chunks[1:]))


def _sum_row(p: VectorLatexPrinter, lhs: str, expr: sympy.Expr) -> Row:
    return Row(lhs, sum_lines(p.term_strings(expr)))


def _assignment_rows(d: Derivation, assignments, notation: Notation | str | None) -> dict[str, Row]:
    p = VectorLatexPrinter(d, notation=notation)
    # a reduction is written out where it is used (1^T v), not as an equation of its own
    shown = [a for a in assignments if d.kind(a.name) != Kind.REDUCTION]
    return {a.name: _sum_row(p, p.symbol_latex(a.name), a.expr) for a in shown}


def forward_rows(d: Derivation, notation: Notation | str | None = None) -> dict[str, Row]:
    """The forward assignments, by the name they assign."""
    return _assignment_rows(d, d.forward, notation)


def backward_rows(d: Derivation, notation: Notation | str | None = None) -> dict[str, Row]:
    """The backward assignments, by the name they assign."""
    return _assignment_rows(d, d.backward, notation)


def gradient_rows(d: Derivation, notation: Notation | str | None = None) -> dict[str, Row]:
    """Parameter, input and initial-state gradients (sums over time), keyed by the matrix or
    vector name, the input's name (``x``), and ``STATE0`` for an initial state; in
    ``gradient_lines``' order."""
    n = load_notation(notation)
    p = VectorLatexPrinter(d, notation=n)
    x = d.input.name
    rows = {}
    for matrix in d.spec.matrices:
        terms = [
            n.outer(p.doprint(d.product_deltas[prod.name]), p.symbol_latex(prod.operand))
            for prod in d.products
            if prod.matrix == matrix
        ]
        rows[matrix] = Row(n.delta(n.parameter(matrix)), (f"{n.sum} " + " + ".join(terms),))
    for vector, expr in d.param_grads.items():
        body = p.doprint(expr)
        if isinstance(expr, sympy.Add):
            body = rf"\left({body}\right)"
        rows[vector] = Row(n.delta(n.parameter(vector)), (f"{n.sum} {body}",))
    x_terms = [
        n.product(n.parameter(prod.matrix), p.doprint(d.product_deltas[prod.name]), transposed=True)
        for prod in d.products_with_operand(x)
    ]
    direct = [p.doprint(d.input_adjoint)] if d.input_adjoint != 0 else []  # x used elementwise
    rows[x] = Row(n.delta(n.vector(x, "t")), (" + ".join(x_terms + direct),))
    first = VectorLatexPrinter(d, step=1, notation=n)
    for state, expr in d.prev_adjoints.items():
        lhs = n.delta(n.vector(state, "0"))
        rows[state + "0"] = _sum_row(first, lhs, expr) if expr != 0 else Row(lhs, ("0",))
    return rows


def equation_rows(d: Derivation, notation: Notation | str | None = None) -> dict[str, list[Row]]:
    """Every block's rows: ``forward``, ``backward`` and ``gradients`` (``BLOCKS``)."""
    n = load_notation(notation)
    return {
        "forward": list(forward_rows(d, n).values()),
        "backward": list(backward_rows(d, n).values()),
        "gradients": list(gradient_rows(d, n).values()),
    }


def forward_lines(d: Derivation, notation: Notation | str | None = None) -> list[str]:
    return [row.latex() for row in forward_rows(d, notation).values()]


def backward_lines(d: Derivation, notation: Notation | str | None = None) -> list[str]:
    return [row.latex() for row in backward_rows(d, notation).values()]


def gradient_lines(d: Derivation, notation: Notation | str | None = None) -> list[str]:
    """Parameter, input and initial-state gradients: sums over time of per-step terms."""
    return [row.latex() for row in gradient_rows(d, notation).values()]
