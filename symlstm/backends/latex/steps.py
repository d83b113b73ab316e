"""The derivation shown step by step (``symlstm latex NAME --steps``), for teaching.

For every adjoint of the backward pass three kinds of rows, in this order:

1. the chain rule over the uses of the quantity: ``δc_t = δh_t ⊙ ∂h_t/∂c_t + δc_{t+1} ⊙
   ∂c_{t+1}/∂c_t + ...`` (a use through a matrix product reads ``(∂ī_{t+1}/∂h_t)^⊤ δī_{t+1}``;
   the gradient from above, ``Δ_t``, is a use too);
2. each partial derivative written out (``∂h_t/∂c_t = o_t ⊙ (1 - tanh²(c_t))``, ``∂ī_{t+1}/∂h_t =
   R_i``), its factors in the order of the forward expression it comes from, as many to a row
   as fit;
3. the simplified line, as the backward block prints it.

The adjoint of an activation's output that the derivation folds into its pre-activation's
(``δi_t`` into ``δī_t``) gets rows 1 and 2 of its own just before, so every ``δ`` a step uses is
explained. An adjoint that a sum over units (``sum``, ``mean``) reaches is shown only simplified:
its uses are not one product each.
"""

from __future__ import annotations

import sympy

from symlstm.backends.latex.equations import Row, backward_rows, sum_lines
from symlstm.backends.latex.notation import Notation, load_notation
from symlstm.backends.latex.order import Order, SourceOrder
from symlstm.backends.latex.printer import VectorLatexPrinter
from symlstm.backends.latex.width import LINE_GLYPHS, glyphs
from symlstm.ir.derive import Derivation
from symlstm.ir.nodes import Kind
from symlstm.lang.nodes import PREV_SUFFIX, symbol
from symlstm.lang.primitives import Activation


class _Use:
    """One use of a quantity: the user (a forward symbol or a product), at step t or t+1."""

    def __init__(self, user: str, partial: sympy.Expr | None, later: bool, matrix: str | None = None):
        self.user = user
        self.partial = partial  # the elementwise partial derivative; None for a product M v
        self.later = later  # the use is at step t+1 (of last step's value)
        self.matrix = matrix


class Steps:
    def __init__(self, d: Derivation, n: Notation):
        self.d = d
        self.n = n
        self.source = SourceOrder.of(d)
        self.p = VectorLatexPrinter(d, notation=n)
        self.outputs = {a.expr: a.target for a in d.forward if isinstance(a.expr, Activation)}
        self.deltas = {d.adjoint_of(a.name): a.name for a in d.backward if d.kind(a.name) == Kind.DELTA}

    # -- the uses of a quantity --------------------------------------------------------------------
    def uses(self, name: str) -> list[_Use] | None:
        """Every use of ``name``, or None when one goes through a sum over units."""
        d = self.d
        names = [(name, False)]
        if d.kind(name) == Kind.VALUE and name in d.spec.states:
            names.append((name + PREV_SUFFIX, True))  # c_t is c_prev of step t+1
        out = []
        for used, later in names:
            for a in d.forward:
                if symbol(used) not in a.expr.free_symbols:
                    continue
                if d.kind(a.name) == Kind.REDUCTION:
                    return None
                out.append(_Use(a.name, sympy.diff(a.expr, symbol(used)).xreplace(self.outputs), later))
            for p in d.products_with_operand(used):
                delta = d.product_deltas[p.name]
                out.append(_Use(d.adjoint_of(delta.name), None, later, matrix=p.matrix))
        if d.quantities[name].size == 1:
            return None
        return out

    # -- typesetting -------------------------------------------------------------------------------
    def printer(self, later: bool) -> VectorLatexPrinter:
        return self.p.shifted(1) if later else self.p

    def adjoint(self, name: str, later: bool = False) -> str:
        """``δu`` at t (or t+1), whether or not the derivation keeps it as a symbol."""
        p = self.printer(later)
        if name in self.deltas:
            return p.symbol_latex(self.deltas[name])
        return self.n.delta(p.symbol_latex(name))

    def partial(self, use: _Use, name: str) -> str:
        return rf"\frac{{\partial {self.factor(use.user, use.later)}}}{{\partial {self.factor(name)}}}"

    def factor(self, name: str, later: bool = False) -> str:
        """A symbol after ``\\partial``: a product ``M v`` in parentheses."""
        text = self.printer(later).symbol_latex(name)
        return f"({text})" if self.d.kind(name) == Kind.PRODUCT else text

    def chain_term(self, use: _Use, name: str) -> str:
        if use.matrix is not None:
            return rf"+ \left({self.partial(use, name)}\right)^{{\top}} {self.adjoint(use.user, use.later)}"
        return f"+ {self.adjoint(use.user, use.later)} {self.n.hadamard} {self.partial(use, name)}"

    def partial_row(self, use: _Use, name: str) -> Row:
        if use.matrix is not None:
            return Row(self.partial(use, name), (self.n.parameter(use.matrix),))
        # terms as the backward lines order them (a difference, not a leading minus), factors
        # in the order of the forward expression they come from
        within = self.source.equation_of(use.user)
        p = self.printer(use.later).ordered_by(Order(self.d, self.source, within=within))
        assert use.partial is not None
        return Row(self.partial(use, name), sum_lines(p.term_strings(use.partial), hadamard=self.n.hadamard))

    def rows_for(self, name: str) -> dict[str, Row] | None:
        """The chain-rule row and the partials' rows of ``name``'s adjoint (None: not shown)."""
        uses = self.uses(name)
        if not uses:
            return None
        terms = [f"+ {self.n.output_grad(self.p.time())}"] if name == self.d.spec.output else []
        terms += [self.chain_term(use, name) for use in uses]
        rows = {f"{name}:uses": Row(self.adjoint(name), sum_lines(terms, hadamard=self.n.hadamard))}
        # the partials side by side, as many to a row as fit: ∂a/∂x = ..., ∂b/∂x = ...
        partials = [
            (f"{name}:d{use.user}" + (":next" if use.later else ""), self.partial_row(use, name)) for use in uses
        ]
        key, row = partials[0]
        for next_key, more in partials[1:]:
            joined = f"{row.lines[-1]},\\quad {more.lhs} = {more.lines[0]}"
            if len(row.lines) > 1 or len(more.lines) > 1 or glyphs(row.lhs + joined) > LINE_GLYPHS:
                rows[key] = row
                key, row = next_key, more
            else:
                row = Row(row.lhs, (joined,))
        rows[key] = row
        return rows


def steps_rows(d: Derivation, notation: Notation | str | None = None) -> dict[str, Row]:
    """The backward block with the derivation of every adjoint before its simplified row."""
    n = load_notation(notation)
    steps = Steps(d, n)
    simplified = backward_rows(d, n)
    out: dict[str, Row] = {}
    for a in d.backward:
        if a.name not in simplified:
            continue
        of = d.adjoint_of(a.name) if d.kind(a.name) == Kind.DELTA else None
        if of is not None and d.kind(of) == Kind.PREACT:
            folded = d.quantities[of].base  # the activation's output, e.g. i for i_bar
            if folded not in steps.deltas:
                out.update(steps.rows_for(folded) or {})
        if of is not None:
            out.update(steps.rows_for(of) or {})
        out[a.name] = simplified[a.name]
    return out


def steps_groups(rows: dict[str, Row]) -> list[list[Row]]:
    """``steps_rows``' rows cut after every simplified row: one group per adjoint the backward
    pass computes, its derivation first (a page may show each group under a heading of its own)."""
    groups: list[list[Row]] = [[]]
    for key, row in rows.items():
        groups[-1].append(row)
        if ":" not in key:  # a simplified row is keyed by its assignment's name, the others name:...
            groups.append([])
    return [group for group in groups if group]
