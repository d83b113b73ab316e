"""Prints one elementwise SymPy expression as scalar Python for a Numba loop body.

It only formats: what each symbol reads (an array element, a local) and the name of each
constant are given to it. Strict: a node type without a ``_print_<Class>`` method raises,
naming it.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy
from sympy.printing.precedence import precedence
from sympy.printing.printer import Printer

from symlstm.backends.numba.kernel_math import PRIMITIVE_KERNELS
from symlstm.lang.primitives import primitive_of


class CodegenError(Exception):
    """The derivation contains something the kernel printer cannot express."""


class NumbaPrinter(Printer):
    printmethod = "_numba_kernel"

    def __init__(self, reads: dict[str, str], constant: ConstantNames):
        super().__init__()
        self.reads = reads  # symbol name -> the code that reads it (an array element or a local)
        self.constant = constant

    def emptyPrinter(self, expr):
        raise CodegenError(f"the kernel printer does not support {type(expr).__name__}: {expr}")

    def paren(self, expr, level: int) -> str:
        text = self._print(expr)
        return f"({text})" if precedence(expr) < level else text

    def _print_Symbol(self, expr):
        try:
            return self.reads[expr.name]
        except KeyError:
            raise CodegenError(f"the kernel reads the symbol {expr.name!r}, which it has no value for") from None

    def _print_Integer(self, expr):
        return self.constant(expr.p)

    def _print_int(self, expr):  # cse may hand back a plain 0
        return self.constant(expr)

    def _print_Float(self, expr):
        return self.constant(expr)

    def _print_Rational(self, expr):
        return self.constant(expr.p / expr.q)

    def _print_Add(self, expr):
        out = ""
        for k, term in enumerate(expr.as_ordered_terms()):
            if term.could_extract_minus_sign():
                out += (" - " if k else "-") + self.paren(-term, precedence(expr) + 1)
            else:
                out += (" + " if k else "") + self.paren(term, precedence(expr))
        return out

    def _print_Mul(self, expr):
        if expr.could_extract_minus_sign():
            return "-" + self.paren(-expr, precedence(expr) + 1)
        num, den = [], []
        for factor in expr.as_ordered_factors():
            if factor.is_Pow and factor.exp.is_number and factor.exp < 0:
                den.append(factor.base ** (-factor.exp))
            else:
                num.append(factor)
        level = precedence(expr)
        text = " * ".join(self.paren(f, level) for f in num) or self.constant(1)
        if den:
            text += " / " + self.paren(sympy.Mul(*den), level + 1)
        return text

    def _print_Pow(self, expr):
        if expr.exp.is_number and expr.exp < 0:
            return f"{self.constant(1)} / " + self.paren(expr.base ** (-expr.exp), precedence(expr) + 1)
        if expr.exp == sympy.Rational(1, 2):
            return f"np.sqrt({self._print(expr.base)})"
        exponent = expr.exp
        text = str(int(exponent)) if exponent.is_Integer else self.constant(exponent)
        return f"{self.paren(expr.base, precedence(expr) + 1)}**{text}"

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_Function(self, expr):
        primitive = primitive_of(expr)
        if primitive is None or primitive.name not in PRIMITIVE_KERNELS:
            raise CodegenError(
                f"the Numba backend has no kernel for the function {type(expr).__name__}; "
                "add one to symlstm/backends/numba/kernel_math.py"
            )
        return f"{primitive.name}({', '.join(self._print(a) for a in expr.args)})"


class ConstantNames:
    """Named constants of the kernel's dtype, made once at the top of a kernel: a float literal in
    the loop would promote float32 arithmetic to float64."""

    WELL_KNOWN = {0.0: "zero", 1.0: "one", 2.0: "two", 0.5: "half"}

    def __init__(self, fresh):
        self.fresh = fresh
        self.names: dict[float, str] = {}

    def __call__(self, value) -> str:
        value = float(value)
        if value not in self.names:
            self.names[value] = self.fresh(self.WELL_KNOWN.get(value, f"const_{len(self.names)}"))
        return self.names[value]

    def definitions(self, dtype: str, indent: int) -> list[str]:
        """The lines that make the constants used so far, in the kernel's dtype."""
        return [f"{'    ' * indent}{name} = {dtype}.type({value!r})" for value, name in self.names.items()]


def kernels_used(exprs: Iterable[sympy.Expr]) -> list[str]:
    """The kernel_math functions the expressions call, in PRIMITIVE_KERNELS order."""
    used = set()
    for e in exprs:
        for node in sympy.preorder_traversal(e):
            primitive = primitive_of(node)
            if primitive is not None:
                used.add(primitive.name)
    return [name for name in PRIMITIVE_KERNELS if name in used]
