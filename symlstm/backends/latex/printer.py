"""Stage 3a: ``Derivation`` -> LaTeX in vector notation, reading like Greff et al. 2017.

Vectors and matrices are bold, ``\\odot`` is the elementwise product, pre-activations carry a bar,
``\\delta a`` is dL/da and ``\\Delta_t`` is the gradient arriving from above. The backward lines are
the derivation's own assignments; the adjoint a state receives from step t+1 (the kernel's carry)
is written out as the t+1 terms it stands for, e.g. ``\\mathbf{R}_i^\\top \\delta\\bar{\\mathbf{i}}_{t+1}``.

The printer only formats: which term or factor comes first is ``symlstm.backends.latex.order``'s
rule (forward lines as the spec's text writes them, backward lines adjoint first), handed to it as
an ``Order`` per line.

How each symbol looks is data: a ``Notation`` preset (``symlstm.backends.latex.notation``; ``greff``, ``pytorch``,
``d2l`` or a user's TOML file) supplies the templates, and every function here takes one
(default: ``symlstm``). The printer's logic is the same for all presets.
"""

from __future__ import annotations

import sympy
from sympy.printing.printer import Printer

from symlstm.backends.latex.cellnotation import cell_notation
from symlstm.backends.latex.concat import Pair, pairs
from symlstm.backends.latex.notation import DEFAULT, GREEK, Notation, NotationError, load_notation  # noqa: F401 (GREEK re-exported)
from symlstm.backends.latex.order import Order, SourceOrder
from symlstm.ir.derive import Derivation
from symlstm.ir.nodes import TIMED_KINDS, Kind, Quantity
from symlstm.lang import primitives as fn


class LatexError(ValueError):
    """The derivation contains something the LaTeX printer cannot express."""


def bold(name: str, notation: Notation | str | None = None) -> str:
    """A parameter's name: ``W_i`` -> ``\\mathbf{W}_{i}`` in the default notation."""
    return load_notation(notation).parameter(name)


def with_time(name: str, time: str, bar: bool = False, notation: Notation | str | None = None) -> str:
    """A vector at a time: ``c``, ``t-1`` -> ``\\mathbf{c}_{t-1}`` in the default notation."""
    return load_notation(notation).vector(name, time, preact=bar)


class VectorLatexPrinter(Printer):
    """Strict: a node type without a ``_print_<Class>`` method raises, naming it."""

    printmethod = "_symlstm_latex"

    def __init__(
        self,
        derivation: Derivation,
        step: str | int = "t",
        shift: int = 0,
        notation: Notation | str | None = None,
        order: Order | None = None,
    ):
        super().__init__()
        self.d = derivation
        self.step = step
        self.shift = shift
        self.n = cell_notation(derivation, load_notation(notation))
        self._order = order
        #: product name -> the pair it belongs to, where the notation concatenates
        self.pairs: dict[str, Pair] = {
            product.name: pair for pair in (pairs(derivation) if self.n.blocks else ()) for product in pair.products
        }

    @property
    def order(self) -> Order:
        """How this line's sums and products are ordered (``symlstm.backends.latex.order``);
        by default the backward lines' rule."""
        if self._order is None:
            self._order = Order(self.d, SourceOrder.of(self.d))
        return self._order

    def shifted(self, by: int) -> VectorLatexPrinter:
        return VectorLatexPrinter(self.d, self.step, self.shift + by, self.n, self._order)

    def ordered_by(self, order: Order) -> VectorLatexPrinter:
        """The same printer, ordering terms and factors by ``order`` (one line's context)."""
        return VectorLatexPrinter(self.d, self.step, self.shift, self.n, order)

    def time(self, offset: int = 0) -> str:
        k = self.shift + offset
        if isinstance(self.step, int):
            return str(self.step + k)
        return self.step if k == 0 else f"{self.step}{k:+d}"

    def emptyPrinter(self, expr):
        raise LatexError(f"the LaTeX printer does not support {type(expr).__name__}: {expr}")

    # -- symbols --------------------------------------------------------------------------------
    def quantity(self, name: str) -> Quantity:
        try:
            return self.d.quantities[name]
        except KeyError:
            raise LatexError(f"no meaning is recorded for the symbol {name!r}") from None

    def symbol_latex(self, name: str) -> str:
        q = self.quantity(name)
        if q.kind in (Kind.VALUE, Kind.INPUT, Kind.DATA):
            return self.n.vector(q.base, self.time())
        if q.kind == Kind.REDUCTION:  # written out where it is used: 1^T (its argument)
            return self.unit_sum(self.d.reductions[name].args[0])
        if q.kind == Kind.OPERAND:  # written out where it is used: (f_t ⊙ h_{t-1})
            return rf"\left({self.operand_expression(name)}\right)"
        if q.kind == Kind.SIZE:
            return self.n.size(q.base)
        if q.kind == Kind.PREACT:
            return self.n.vector(q.base, self.time(), preact=True)
        if q.kind == Kind.PREV:
            return self.n.vector(q.base, self.time(-1))
        if q.kind == Kind.PARAM:
            return self.n.parameter(q.base)
        if q.kind == Kind.PRODUCT:
            return self.n.product(self.n.parameter(q.base), self.operand_latex(self.d.operand_of(name)))
        if q.kind == Kind.DELTA:  # a composite operand is parenthesised already: δ(f_t ⊙ h_{t-1})
            inner = self.symbol_latex(self.d.adjoint_of(name))
            if self.quantity(self.d.adjoint_of(name)).kind in (Kind.PRODUCT, Kind.REDUCTION):
                inner = f"({inner})"
            return self.n.delta(inner)
        if q.kind == Kind.OUTPUT_GRAD:
            return self.n.output_grad(self.time())
        raise LatexError(f"the symbol {name!r} ({q.kind.value}) is printed through its expansion")

    def unit_sum(self, argument: sympy.Expr) -> str:
        """The sum of a vector's units, ``1^T v``."""
        text = self._print(argument)
        if isinstance(argument, (sympy.Add, sympy.Mul)):
            text = rf"\left({text}\right)"
        if self.n.row_vectors:  # rows are batch examples: the units are summed by a column of ones
            return rf"{text} \mathbf{{1}}"
        ones = self.n.transpose(r"\mathbf{1}")
        return f"{ones} {text}"

    def operand_latex(self, operand: str) -> str:
        return self.symbol_latex(operand)

    def operand_expression(self, name: str) -> str:
        """A composite operand of ``@`` (``Kind.OPERAND``) as the spec writes it, its terms and
        factors in the order of the spec's text."""
        expr = next(a.expr for a in self.d.forward if a.name == name)
        return self.ordered_by(Order.for_forward(self.d, SourceOrder.of(self.d), name))._print(expr)

    def _print_Symbol(self, expr):
        return self.symbol_latex(expr.name)

    # -- expansions of the kernel's bookkeeping symbols ------------------------------------------
    def expanded_terms(self, term: sympy.Expr) -> list[sympy.Expr] | None:
        """A carry or GEMM-adjoint symbol stands for a sum; return its terms with their printer."""
        if not isinstance(term, sympy.Symbol):
            return None
        q = self.d.quantities.get(term.name)
        if q is None or q.kind not in (Kind.CARRY, Kind.GEMM_T):
            return None
        if q.kind == Kind.CARRY:
            printer = self.shifted(1)
            expr = self.d.prev_adjoints[q.base]
            return [(t, printer) for t in printer.order.terms(expr) if t != 0]
        return [
            (self.d.product_deltas[p.name], self, p) for p in self.d.products_with_operand(self.d.operand_of(term.name))
        ]

    def concatenated_product(self, pair: Pair) -> str:
        """``W_f [h_{t-1}, x_t]``: the two products of a pair as one."""
        both = self.n.concatenation(self.symbol_latex(pair.recurrent.operand), self.symbol_latex(pair.input.operand))
        return self.n.product(self.n.concatenated(pair.member), both)

    def term_strings(self, expr: sympy.Expr) -> list[str]:
        out = []
        terms = self.order.terms(expr)
        written: set[Pair] = set()
        for term in terms:
            pair = self.pairs.get(term.name) if isinstance(term, sympy.Symbol) else None
            if pair is not None and all(p.symbol in terms for p in pair.products):
                if pair not in written:  # where the first of the two stands
                    out.append("+ " + self.concatenated_product(pair))
                    written.add(pair)
                continue
            expansion = self.expanded_terms(term)
            if expansion is None:
                out.append(self.signed(term))
                continue
            for item in expansion:
                if len(item) == 3:  # (delta, printer, product): M^T delta
                    delta, printer, product = item
                    out.append(
                        "+ " + self.n.product(self.n.parameter(product.matrix), printer._print(delta), transposed=True)
                    )
                else:
                    sub, printer = item
                    out.extend(printer.term_strings(sub) if printer.expanded_terms(sub) else [printer.signed(sub)])
        return out

    def signed(self, term: sympy.Expr) -> str:
        if term.could_extract_minus_sign():
            return "- " + self.paren_mul(-term)
        return "+ " + self._print(term)

    def paren_mul(self, expr, product: bool = False) -> str:
        """``expr`` as a factor: a sum in parentheses (and, if ``product``, a product M v)."""
        text = self._print(expr)
        wrap = isinstance(expr, sympy.Add) or (
            product and isinstance(expr, sympy.Symbol) and self.quantity(expr.name).kind == Kind.PRODUCT
        )
        return f"\\left({text}\\right)" if wrap else text

    # -- operators ------------------------------------------------------------------------------
    def _print_Add(self, expr):
        return join_terms(self.term_strings(expr))

    def _print_Mul(self, expr):
        if expr.could_extract_minus_sign():
            return "-" + self.paren_mul(-expr)
        coeff, factors = expr.as_coeff_mul()
        num, den = [], []
        for f in factors:
            if f.is_Pow and f.exp.is_number and f.exp < 0:
                den.append(f.base ** (-f.exp))
            else:
                num.append(f)
        num = self.order.factors(num)
        # a number of units (mean's H) scales like a coefficient: no elementwise product sign
        scalars = [f for f in num if isinstance(f, sympy.Symbol) and self.quantity(f.name).kind == Kind.SIZE]
        factors = [f for f in num if f not in scalars]
        # after a ⊙, a product M v is parenthesised: a ⊙ M v would read as (a ⊙ M) v
        parts = [self.paren_mul(f, product=k > 0) for k, f in enumerate(factors)]
        text = f" {self.n.hadamard} ".join(parts) if parts else "1"
        if scalars:
            text = " ".join([*(self._print(f) for f in scalars), *([text] if parts else [])])
        if coeff != 1:
            text = f"{self._print(coeff)} {text}" if parts or scalars else self._print(coeff)
        if den:
            text = rf"\frac{{{text}}}{{{self._print(sympy.Mul(*den))}}}"
        return text

    def _print_Pow(self, expr):
        if expr.exp.is_number and expr.exp < 0:
            return rf"\frac{{1}}{{{self._print(expr.base ** (-expr.exp))}}}"
        exponent = self._print(expr.exp)
        if fn.primitive_of(expr.base) is not None:
            return self.function_call(expr.base, power=exponent)
        base = self._print(expr.base)
        if isinstance(expr.base, sympy.Symbol) and self.quantity(expr.base.name).kind == Kind.OPERAND:
            return f"{base}^{{{exponent}}}"  # parenthesised already
        if not isinstance(expr.base, sympy.Symbol) or self.quantity(expr.base.name).kind in (
            Kind.PRODUCT,
            Kind.REDUCTION,
        ):
            return rf"\left({base}\right)^{{{exponent}}}"
        return self.n.power(base, exponent, timed=self.quantity(expr.base.name).kind in TIMED_KINDS)

    def _print_Integer(self, expr):
        return str(expr.p)

    def _print_Float(self, expr):
        """``0.5`` as is, ``1e-05`` as ``10^{-5}`` and ``2.5e-07`` as ``2.5 \\cdot 10^{-7}``."""
        text = repr(float(expr))
        mantissa, e, exponent = text.partition("e")
        if not e:
            return text
        power = f"10^{{{int(exponent)}}}"
        return power if mantissa in ("1", "1.0") else rf"{mantissa} \cdot {power}"

    def _print_Rational(self, expr):
        sign = "-" if expr.p < 0 else ""
        return rf"{sign}\tfrac{{{abs(expr.p)}}}{{{expr.q}}}"

    def _print_Abs(self, expr):
        return rf"\left\lvert {self._print(expr.args[0])} \right\rvert"

    def function_call(self, expr: sympy.Function, power: str | None = None) -> str:
        """A primitive applied to its arguments (derivative helpers too), as the notation typesets it."""
        primitive = fn.primitive_of(expr)
        if primitive is None:
            raise LatexError(f"the LaTeX printer does not support the function {type(expr).__name__}")
        try:
            return self.n.function_call(primitive.name, [self._print(a) for a in expr.args], power)
        except NotationError as err:
            raise LatexError(str(err)) from None

    def _print_Function(self, expr):
        return self.function_call(expr)


def join_terms(terms: list[str]) -> str:
    """Join signed terms (``+ a``, ``- b``) into one sum (``equations.sum_lines`` breaks long ones)."""
    out = ""
    for k, term in enumerate(terms):
        sign, body = term[0], term[2:]
        if k == 0:
            out = body if sign == "+" else f"-{body}"
            continue
        out += f" {sign} {body}"
    return out
