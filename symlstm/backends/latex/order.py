"""The order of terms and factors in the typeset equations.

SymPy keeps the terms of a sum and the factors of a product in its own canonical order, so
``c = f * c_prev + i * g`` comes back as ``c_prev*f + g*i``. The printer asks this module for
the reading order instead:

- **Forward lines** keep the spec's text: terms and factors in the order the author wrote them
  (``f ⊙ c_{t-1} + i ⊙ g``, ``o ⊙ tanh(c)``). Each equation's text is parsed again with ``ast``
  (as ``symlstm.lang.spec`` does, never evaluated); every sub-expression is built and lowered the
  way the derivation lowers it (products and sums become their symbols) and remembers where it
  starts in the text. Only what the lowering creates and the text does not show is ordered by
  the rules below.
- **Backward lines** follow one textbook order (Greff et al. 2017): in every product the incoming
  adjoint comes first, then the partial derivative of the forward expression that uses the
  quantity, its factors in the order of that expression, and last the derivative of the
  quantity's own activation written in its output (``σ' = s ⊙ (1 - s)``, ``tanh' = 1 - y²``):
  ``δī_t = δc_t ⊙ g_t ⊙ i_t ⊙ (1 - i_t)``. Sums read: constants, the gradient from above, the
  input and recurrent products (``W x + R h``), other terms, lone parameters, then what comes
  from step t+1; a difference is written ``a - b`` rather than ``-b + a``.
- Anything neither rule places (SymPy merged it) falls back to kinds: adjoints, functions,
  parameters, values at t-1, values at t, then sums and powers, ties in SymPy's order.
"""

from __future__ import annotations

import ast
import functools
import math
import warnings
from collections.abc import Callable, Iterable

import sympy

from symlstm.ir.derive import Derivation
from symlstm.ir.nodes import Kind
from symlstm.ir.sizes import expression_size
from symlstm.lang.errors import SpecError
from symlstm.lang.expressions import ExpressionBuilder
from symlstm.lang.nodes import MatVec, UnitMean, UnitSum, symbol

#: a place in the spec's text: (line, column) within one equation
Position = tuple[int, int]
_NOWHERE = (math.inf, math.inf)


class SourceOrder:
    """Where each lowered sub-expression of a spec equation starts in its text.

    Built once per derivation (``SourceOrder.of``): a printer is made for every block, time
    shift and parameter row, and indexing the text is the expensive part."""

    #: the last few made, newest last (a few: a document prints one derivation at a time)
    _made: list[SourceOrder] = []

    @classmethod
    def of(cls, d: Derivation) -> SourceOrder:
        made = next((m for m in cls._made if m.d is d), None)
        if made is None:
            made = cls(d)
            cls._made = [*cls._made[-7:], made]
        return made

    def __init__(self, d: Derivation):
        self.d = d
        self._reduction_symbols = {expr: symbol(name) for name, expr in d.reductions.items()}
        self._positions: dict[str, dict[sympy.Expr, Position]] = {}
        known: set[str] = set()
        for eq in d.spec.equations:
            self._positions[eq.target] = self._index(eq.target, eq.text, set(known))
            known.add(eq.target)

    # -- building the index ------------------------------------------------------------------------
    def _index(self, target: str, text: str, known: set[str]) -> dict[sympy.Expr, Position]:
        with warnings.catch_warnings():  # the spec parsed this text already (and said what it had to)
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text.strip(), mode="eval")
        builder = ExpressionBuilder(target, text, known, self.d.spec.states, frozenset(self.d.spec.inputs))
        # SymPy writes ``a - b`` as ``a + (-b)`` and ``a / b`` as ``a * b**-1``: the right side of
        # ``-`` and ``/`` is indexed in that form too, so ``1 - f`` finds its own ``f``
        written_as = {
            id(node.right): (lambda v: -v) if isinstance(node.op, ast.Sub) else (lambda v: 1 / v)
            for node in ast.walk(tree)
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Sub, ast.Div))
        }
        found: dict[sympy.Expr, Position] = {}
        for node in ast.walk(tree.body):
            if not isinstance(node, ast.expr):
                continue
            try:
                value = self._lower(builder.build(node))
            except (SpecError, KeyError, ValueError, TypeError):
                continue  # a function's or a matrix's name alone, or what the lowering renames
            where = (node.lineno, node.col_offset)
            if id(node) in written_as:
                found.setdefault(written_as[id(node)](value), where)
            found.setdefault(value, where)
        return found

    def _lower(self, expr: sympy.Expr) -> sympy.Expr:
        """``expr`` as the derivation's lowering writes it: products, sums and means as symbols."""

        def lowered(node: sympy.Expr) -> sympy.Expr:
            if isinstance(node, MatVec):
                return self._product(node)
            total = self._reduction_symbols[UnitSum(node.args[0])]
            if isinstance(node, UnitMean):
                return total / self._count(node.args[0])
            return total

        return expr.replace(lambda e: isinstance(e, (MatVec, UnitSum, UnitMean)), lowered)

    def _product(self, node: MatVec) -> sympy.Symbol:
        matrix = node.matrix.name
        for p in self.d.products:
            if p.matrix != matrix:
                continue
            operand = self.d.quantities[p.operand]
            if node.operand == symbol(p.operand) or (
                operand.kind == Kind.OPERAND and self._forward_expr(p.operand) == node.operand
            ):
                return p.symbol
        raise KeyError(matrix)

    def _count(self, argument: sympy.Expr) -> sympy.Expr:
        size = expression_size(argument, lambda s: self.d.quantities[s].size, "", self.d.spec.requirements)
        if isinstance(size, int):
            return sympy.Integer(size)
        name = next((n for n, q in self.d.quantities.items() if q.kind == Kind.SIZE and q.base == size), None)
        if name is None:
            raise KeyError(size)
        return symbol(name)

    @functools.cached_property
    def _forward(self) -> dict[str, sympy.Expr]:
        return {a.name: a.expr for a in self.d.forward}

    def _forward_expr(self, name: str) -> sympy.Expr | None:
        return self._forward.get(name)

    # -- questions ---------------------------------------------------------------------------------
    def equation_of(self, name: str) -> str | None:
        """The spec equation a forward symbol's assignment comes from (a value, its pre-activation,
        or a composite operand of ``@``), if any."""
        q = self.d.quantities.get(name)
        if q is None:
            return None
        if q.kind in (Kind.VALUE, Kind.PREACT) and q.base in self._positions:
            return q.base
        if q.kind == Kind.OPERAND:
            expr = self._forward_expr(name)
            return next((t for t, found in self._positions.items() if expr in found), None)
        return None

    def position(self, equation: str | None, expr: sympy.Expr) -> Position | None:
        """Where ``expr`` (or its negative or reciprocal, as a ``-`` or ``/`` wrote it) starts in
        the text of ``equation``."""
        found = self._positions.get(equation or "", {})
        for candidate in (expr, -expr, 1 / expr):  # exactly as written first
            if candidate in found:
                return found[candidate]
        return None


def _fallback_factor_rank(d: Derivation, factor: sympy.Expr) -> int:
    """Adjoints, functions, parameters, values at t-1, values at t, then sums and powers."""
    if isinstance(factor, sympy.Symbol):
        kind = d.kind(factor.name)
        if kind.is_adjoint:
            return 0
        return {Kind.PARAM: 2, Kind.PREV: 3}.get(kind, 4)
    if isinstance(factor, sympy.Function):
        return 1
    return 5


def _is_adjoint(d: Derivation, expr: sympy.Expr) -> bool:
    return any(d.kind(s.name).is_adjoint for s in expr.free_symbols if s.name in d.quantities)


class Order:
    """Sorts the terms of sums and the factors of products for one printed line.

    ``equation`` names the spec equation a forward line comes from (its text gives the order);
    ``within`` the one a partial derivative's factors follow; ``activation_of`` is, on the
    line of a pre-activation's adjoint ``δā``, the output ``a`` whose activation derivative
    closes every product.
    """

    def __init__(
        self,
        d: Derivation,
        source: SourceOrder,
        equation: str | None = None,
        activation_of: str = "",
        within: str | None = None,
    ):
        self.d = d
        self.source = source
        self.equation = equation
        self.activation_of = activation_of
        #: for a backward-style line without adjoints (a partial derivative): the forward
        #: equation whose order its factors follow
        self.within = within

    @classmethod
    def for_forward(cls, d: Derivation, source: SourceOrder, name: str) -> Order:
        return cls(d, source, equation=source.equation_of(name))

    @classmethod
    def for_backward(cls, d: Derivation, source: SourceOrder, name: str) -> Order:
        of = d.quantities[name].of
        preact = of is not None and d.kind(of) == Kind.PREACT
        owner = d.quantities[of].base if preact and of is not None else ""
        return cls(d, source, activation_of=owner)

    # -- sums ----------------------------------------------------------------------------------------
    def terms(self, expr: sympy.Expr) -> list[sympy.Expr]:
        terms = list(expr.as_ordered_terms()) if isinstance(expr, sympy.Add) else [expr]
        if self.equation is not None:
            return _stable_sort(terms, lambda t: (self.source.position(self.equation, t) or _NOWHERE,))

        # a difference reads better than a leading minus: (h_{t-1} - n_t), not (-n_t + h_{t-1})
        def key(term: sympy.Expr) -> tuple[int, bool]:
            minus = term.could_extract_minus_sign()
            return self._term_rank(-term if minus else term), minus

        return sorted(terms, key=key)

    def _term_rank(self, term: sympy.Expr) -> int:
        d = self.d
        kinds = {d.kind(s.name) for s in term.free_symbols}
        if term.is_number:
            return 0
        if Kind.OUTPUT_GRAD in kinds:
            return 1
        if isinstance(term, sympy.Symbol) and d.kind(term.name) in (Kind.PRODUCT, Kind.GEMM_T):
            # a product M v, or the sum of products M^T delta a GEMM adjoint stands for
            return 2 if d.kind(d.operand_of(term.name)) == Kind.INPUT else 3
        if Kind.CARRY in kinds:
            return 6
        if isinstance(term, sympy.Symbol) and d.kind(term.name) != Kind.DELTA:
            return 5
        return 4

    # -- products ------------------------------------------------------------------------------------
    def factors(self, factors: Iterable[sympy.Expr]) -> list[sympy.Expr]:
        factors = list(factors)
        fallback = functools.partial(_fallback_factor_rank, self.d)
        if self.equation is not None:
            return _stable_sort(factors, lambda f: (self.source.position(self.equation, f) or _NOWHERE, fallback(f)))
        user = self._user(factors) or self.within
        output = symbol(self.activation_of) if self.activation_of else None

        def key(f: sympy.Expr):
            if _is_adjoint(self.d, f):
                return (0, _NOWHERE, 0)
            if output is not None and output in f.free_symbols:  # the activation's derivative
                return (2, _NOWHERE, fallback(f))
            return (1, self.source.position(user, f) or _NOWHERE, fallback(f))

        return _stable_sort(factors, key)

    def _user(self, factors: list[sympy.Expr]) -> str | None:
        """The equation that uses the quantity whose adjoint this product is a term of: the one
        the product's adjoint factor (``δc`` in ``δc ⊙ g``) belongs to."""
        for f in factors:
            if isinstance(f, sympy.Symbol) and self.d.kind(f.name) == Kind.DELTA:
                return self.source.equation_of(self.d.adjoint_of(f.name))
            if isinstance(f, sympy.Symbol) and self.d.kind(f.name) == Kind.CARRY:
                return self.d.quantities[f.name].base
        return None


def _stable_sort(items: list[sympy.Expr], key: Callable) -> list[sympy.Expr]:
    """Sorted by ``key``; ties keep SymPy's canonical order (``items`` come in it), so the output
    is deterministic."""
    return sorted(items, key=key)
