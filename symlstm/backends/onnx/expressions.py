"""One elementwise SymPy expression of the forward IR -> ONNX nodes.

Each node type of the IR has a method, as in a SymPy printer, and a node type without one raises
``OnnxExportError`` naming it. Vectors are (B, size) tensors, size-1 quantities (B, 1), parameter
vectors (size,) and numbers scalars: ONNX's broadcasting then does what the spec's does.
What a symbol reads is given by ``reads`` (a name in this graph or an outer one).
"""

from __future__ import annotations

from collections.abc import Callable

import sympy

from symlstm.backends.onnx.graph import GraphBuilder
from symlstm.backends.onnx.primitives import LOWERINGS
from symlstm.lang.nodes import UnitSum
from symlstm.lang.primitives import primitive_of


class OnnxExportError(Exception):
    """The derivation contains something the ONNX backend cannot express."""


class ExpressionLowering:
    def __init__(self, graph: GraphBuilder, reads: Callable[[str], str]):
        self.g = graph
        self.reads = reads

    def lower(self, expr: sympy.Expr, out: str | None = None) -> str:
        """The name of a tensor holding ``expr``; its last node is named ``out`` when given."""
        method = getattr(self, f"_lower_{type(expr).__name__}", None)
        if method is None:
            if isinstance(expr, sympy.Function):
                method = self._lower_Function
            elif expr.is_number:
                method = self._lower_number
            else:
                raise OnnxExportError(f"the ONNX backend cannot lower {type(expr).__name__}: {expr}")
        name = method(expr, out)
        if out is not None and name != out:  # a bare symbol or number: give it the name asked for
            name = self.g.op("Identity", name, out=out)
        return name

    def _lower_Symbol(self, expr: sympy.Symbol, out: str | None) -> str:
        return self.reads(expr.name)

    def _lower_number(self, expr: sympy.Expr, out: str | None) -> str:
        return self.g.constant(float(expr))

    def _lower_Add(self, expr: sympy.Add, out: str | None) -> str:
        terms = expr.as_ordered_terms()
        first, rest = terms[0], terms[1:]
        total = self.lower(first)
        for k, term in enumerate(rest):
            name = out if k == len(rest) - 1 else None
            if term.could_extract_minus_sign():
                total = self.g.op("Sub", total, self.lower(-term), out=name)
            else:
                total = self.g.op("Add", total, self.lower(term), out=name)
        return total

    def _lower_Mul(self, expr: sympy.Mul, out: str | None) -> str:
        if expr.could_extract_minus_sign():
            return self.g.op("Neg", self.lower(-expr), out=out)
        num, den = [], []
        for factor in expr.as_ordered_factors():
            if factor.is_Pow and factor.exp.is_number and factor.exp < 0:
                den.append(factor.base ** (-factor.exp))
            else:
                num.append(factor)
        if not den:
            return self._product(num, out)
        top = self._product(num, None) if num else self.g.constant(1.0)
        return self.g.op("Div", top, self._product(den, None), out=out)

    def _product(self, factors: list[sympy.Expr], out: str | None) -> str:
        total = self.lower(factors[0])
        for k, factor in enumerate(factors[1:]):
            total = self.g.op("Mul", total, self.lower(factor), out=out if k == len(factors) - 2 else None)
        return total

    def _lower_Pow(self, expr: sympy.Pow, out: str | None) -> str:
        base, exponent = expr.base, expr.exp
        if exponent.is_number and exponent < 0:
            return self.g.op("Div", self.g.constant(1.0), self.lower(base ** (-exponent)), out=out)
        if exponent == sympy.Rational(1, 2):
            return self.g.op("Sqrt", self.lower(base), out=out)
        if exponent == 2:  # the square of a variance: one Mul, as exact as the kernels' z**2
            value = self.lower(base)
            return self.g.op("Mul", value, value, out=out)
        return self.g.op("Pow", self.lower(base), self.lower(exponent), out=out)

    def _lower_UnitSum(self, expr: UnitSum, out: str | None) -> str:
        # over the units (the last axis), one number per batch row kept as (B, 1) to broadcast
        return self.g.op("ReduceSum", self.lower(expr.args[0]), self.g.int64s([-1]), out=out, keepdims=1)

    def _lower_Function(self, expr: sympy.Function, out: str | None) -> str:
        primitive = primitive_of(expr)
        if primitive is None or primitive.name not in LOWERINGS:
            raise OnnxExportError(
                f"the ONNX backend has no lowering for the function {type(expr).__name__}; "
                "add one to symlstm/backends/onnx/primitives.py"
            )
        return LOWERINGS[primitive.name](self.g, [self.lower(a) for a in expr.args], out)
