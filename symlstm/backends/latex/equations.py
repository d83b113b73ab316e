"""A cell's equations as the LaTeX backend writes them: one ``Row`` per equation.

A row is the left side and the right side's physical lines (a long sum breaks after every
``PER_LINE`` terms onto aligned continuation lines). ``forward_lines``, ``backward_lines`` and
``gradient_lines`` are the rows as ``align`` strings, ``lhs &= rhs \\\\ &\\qquad more``;
renderers that lay out rows themselves (HTML tables of MathML, matplotlib's mathtext) take the
rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import sympy

from symlstm.backends.latex.cellnotation import cell_notation
from symlstm.backends.latex.concat import Pair, pairs
from symlstm.backends.latex.fold import folded_forward
from symlstm.backends.latex.notation import Notation, load_notation
from symlstm.backends.latex.order import Order, SourceOrder
from symlstm.backends.latex.printer import LatexError, VectorLatexPrinter, join_terms
from symlstm.backends.latex.width import LINE_GLYPHS, glyphs, top_level_splits
from symlstm.ir.derive import Derivation
from symlstm.ir.nodes import Kind


def check_unambiguous(d: Derivation, notation: Notation | str | None = None) -> Notation:
    """Raise ``LatexError`` if the preset typesets two different names of the cell the same way
    (e.g. ``greff`` renames ``g`` to ``z``: a cell with both ``g`` and ``z`` cannot use it).
    Returns the notation for this cell (``cellnotation.cell_notation``: concatenated matrices
    named, the legend's sentences on them and on folded pre-activations)."""
    n = cell_notation(d, load_notation(notation))
    seen: dict[str, str] = {}
    names = [(d.input.name, n.vector(d.input.name, "t"))]
    names += [(s, n.vector(s, "t")) for s in d.spec.states]
    names += [(a.name, n.vector(a.name, "t")) for a in d.forward if d.kind(a.name) == Kind.VALUE]
    names += [(name, n.vector(name, "t")) for name in d.spec.inputs]
    names += [(p, n.parameter(p)) for p in d.spec.param_names]
    names += [(pair.key, n.concatenated(pair.member)) for pair in pairs(d) if n.blocks]
    for size in sorted({q.base for q in d.quantities.values() if q.kind == Kind.SIZE}):
        if n.size(size) in ("T", "t"):  # the sums over time run to T, at step t
            raise LatexError(
                f"the cell {d.spec.name!r} has a size named {size!r}, which its formulas would write as "
                f"{n.size(size)}, the letter of the time steps; rename the size in the spec's [sizes]"
            )
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
    with its sign, ``+ ...`` or ``- ...``, or, within a long product, ``\\odot ...``)."""

    lhs: str
    lines: tuple[str, ...]

    def latex(self) -> str:
        """The equation as the printer writes it: one ``align`` row."""
        return f"{self.lhs} &= " + BREAK.join(self.lines)


def sum_lines(
    terms: list[str], per_line: int = PER_LINE, width: float = LINE_GLYPHS, hadamard: str = r"\odot"
) -> tuple[str, ...]:
    """Signed terms (``+ a``, ``- b``) as the lines of a right side: at most ``per_line`` terms
    and, where the terms allow, ``width`` glyphs each (``symlstm.backends.latex.width``); a term
    wider than that alone is broken before one of its ``hadamard`` (elementwise product) signs."""
    chunks: list[list[str]] = [[]]
    for term in terms:
        if chunks[-1] and (len(chunks[-1]) == per_line or glyphs(" ".join([*chunks[-1], term])) > width):
            chunks.append([])
        chunks[-1].append(term)
    lines = [join_terms(chunks[0]), *(" ".join(chunk) for chunk in chunks[1:])]
    return tuple(piece for line in lines for piece in _break_product(line, width, hadamard))


def _break_product(line: str, width: float, hadamard: str) -> list[str]:
    """A line wider than ``width`` as several, each continued before a top-level ``hadamard``."""
    if glyphs(line) <= width:
        return [line]
    out = [""]
    for factor in top_level_splits(line, hadamard):
        # a factor too wide for any line stays where it is, to be broken inside (_break_group)
        if out[-1] and glyphs(out[-1] + factor) > width and glyphs(factor) <= width:
            out.append("")
        out[-1] += factor
    return [line for piece in out for line in _break_group(piece.strip(), width)]


def _break_group(piece: str, width: float) -> list[str]:
    """A piece still wider than ``width`` broken inside its first parenthesised sum, before a
    ``+`` or ``-`` of it: ``\\left( a + b \\right.`` then ``\\left. + c \\right)``."""
    before, *groups = top_level_splits(piece, r"\left(")  # the first group outside braces
    opening = 0 if piece.startswith(r"\left(") else len(before)
    if glyphs(piece) <= width or not (groups or opening == 0):
        return [piece]
    start = opening + len(r"\left(")
    inner, *after = top_level_splits(piece[start:], r"\right)")
    if not after or not after[0].startswith(r"\right)"):
        return [piece]
    terms = top_level_splits(inner, " + ")
    terms = [t for term in terms for t in top_level_splits(term, " - ")]
    if len(terms) < 2:
        return [piece]
    lines = [piece[:start]]
    for term in terms:
        if lines[-1] and lines[-1] != r"\left." and glyphs(lines[-1] + term) > width:
            lines[-1] += r" \right."
            lines.append(r"\left.")
        lines[-1] += term
    lines[-1] += "".join(after)
    return [line.strip() for line in lines]


def _sum_row(p: VectorLatexPrinter, lhs: str, expr: sympy.Expr) -> Row:
    return Row(lhs, sum_lines(p.term_strings(expr), hadamard=p.n.hadamard))


def _assignment_rows(
    d: Derivation, assignments, notation: Notation | str | None, order: Callable[..., Order]
) -> dict[str, Row]:
    """One row per assignment; ``order(d, source, name)`` gives each line its order of terms."""
    source = SourceOrder.of(d)
    p = VectorLatexPrinter(d, notation=notation)
    # a reduction (1^T v) and a composite operand of @ (R_n (f_t ⊙ h_{t-1})) are written out where
    # they are used, not as equations of their own
    shown = [a for a in assignments if d.kind(a.name) not in (Kind.REDUCTION, Kind.OPERAND)]
    return {a.name: _sum_row(p.ordered_by(order(d, source, a.name)), p.symbol_latex(a.name), a.expr) for a in shown}


def forward_rows(d: Derivation, notation: Notation | str | None = None) -> dict[str, Row]:
    """The forward assignments, by the name they assign, in the order of the spec's text; where
    the notation folds pre-activations, each that ``fold.folds`` allows is written inside its
    activation's row (``f_t = σ(...)``) and has no row of its own."""
    n = cell_notation(d, load_notation(notation))
    assignments = folded_forward(d) if n.fold_preactivations else d.forward
    return _assignment_rows(d, assignments, n, Order.for_forward)


def backward_rows(d: Derivation, notation: Notation | str | None = None) -> dict[str, Row]:
    """The backward assignments, by the name they assign, adjoints first (``order``'s rule)."""
    return _assignment_rows(d, d.backward, notation, Order.for_backward)


def gradient_rows(d: Derivation, notation: Notation | str | None = None) -> dict[str, Row]:
    """Parameter, input and initial-state gradients (sums over time), keyed by the matrix or
    vector name (a concatenated matrix by its ``Pair.key``, ``W_f+R_f``), the input's name (``x``),
    and ``STATE0`` for an initial state; in ``gradient_lines``' order."""
    n = cell_notation(d, load_notation(notation))
    p = VectorLatexPrinter(d, notation=n)
    x = d.input.name
    rows = {key: parameter_gradient_row(d, key, n) for key in gradient_keys(d, n)}
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


def gradient_keys(d: Derivation, n: Notation) -> list[str]:
    """The parameters' gradient rows in order: matrices, a concatenated one where its first block
    stands (``concat``), then vectors."""
    by_matrix = {m: pair for pair in (pairs(d) if n.blocks else ()) for m in (pair.input.matrix, pair.recurrent.matrix)}
    keys = [by_matrix[m].key if m in by_matrix else m for m in d.spec.matrices]
    return list(dict.fromkeys([*keys, *d.param_grads]))


def _concatenated_gradient_row(d: Derivation, pair: Pair, n: Notation) -> Row:
    """``δW_f = Σ_t δf̄_t [h_{t-1}, x_t]^⊤``: both blocks' gradients at once."""
    p = VectorLatexPrinter(d, notation=n)
    both = n.concatenation(p.symbol_latex(pair.recurrent.operand), p.symbol_latex(pair.input.operand))
    term = n.outer(p.doprint(d.product_deltas[pair.input.name]), both)
    return Row(n.delta(n.concatenated(pair.member)), (f"{n.sum} {term}",))


def parameter_gradient_row(d: Derivation, name: str, notation: Notation | str | None = None) -> Row:
    """The gradient of one parameter: a sum over time of outer products (a matrix) or of its
    per-step terms (a vector); ``name`` may be a concatenated matrix's ``Pair.key``."""
    n = cell_notation(d, load_notation(notation))
    pair = next((pair for pair in pairs(d) if pair.key == name), None) if n.blocks else None
    if pair is not None:
        return _concatenated_gradient_row(d, pair, n)
    p = VectorLatexPrinter(d, notation=n)
    lhs = n.delta(n.parameter(name))
    if name in d.spec.matrices:
        # a composite operand is parenthesised already: no second pair for a time superscript
        terms = [
            n.outer(
                p.doprint(d.product_deltas[prod.name]),
                p.symbol_latex(prod.operand),
                timed=d.kind(prod.operand) != Kind.OPERAND,
            )
            for prod in d.products
            if prod.matrix == name
        ]
        return Row(lhs, (f"{n.sum} " + " + ".join(terms),))
    expr = d.param_grads[name]
    body = p.doprint(expr)
    if isinstance(expr, sympy.Add):
        body = rf"\left({body}\right)"
    return Row(lhs, (f"{n.sum} {body}",))


def equation_rows(d: Derivation, notation: Notation | str | None = None) -> dict[str, list[Row]]:
    """Every block's rows: ``forward``, ``backward`` and ``gradients`` (``BLOCKS``)."""
    n = cell_notation(d, load_notation(notation))
    return {
        "forward": list(forward_rows(d, n).values()),
        "backward": list(backward_rows(d, n).values()),
        "gradients": list(gradient_rows(d, n).values()),
    }


def forward_lines(d: Derivation, notation: Notation | str | None = None) -> list[str]:
    """The forward pass of one step, a line ``lhs &= rhs`` per quantity, in the spec's order (the
    lines of ``symlstm latex --forward-only``, without the environment)."""
    return [row.latex() for row in forward_rows(d, notation).values()]


def backward_lines(d: Derivation, notation: Notation | str | None = None) -> list[str]:
    """The backward pass through time of one step, a line ``lhs &= rhs`` per adjoint."""
    return [row.latex() for row in backward_rows(d, notation).values()]


def gradient_lines(d: Derivation, notation: Notation | str | None = None) -> list[str]:
    """Parameter, input and initial-state gradients: sums over time of per-step terms."""
    return [row.latex() for row in gradient_rows(d, notation).values()]
