"""The SymPy nodes of the spec language that are not elementwise functions: the matrix-vector
product and the reductions over units, and the one way to make a spec name's symbol."""

from __future__ import annotations

import sympy

#: the name of the input x_t
INPUT = "x"
#: ``<state>_prev`` is last step's value of a state
PREV_SUFFIX = "_prev"


def symbol(name: str) -> sympy.Symbol:
    """The SymPy symbol of a spec name (one place, so every stage agrees on assumptions)."""
    return sympy.Symbol(name, real=True)


class MatVec(sympy.Function):
    """``M @ v``: a matrix-vector product, computed by a GEMM."""

    nargs = 2

    @property
    def matrix(self) -> sympy.Symbol:
        return self.args[0]

    @property
    def operand(self) -> sympy.Expr:
        return self.args[1]


class UnitSum(sympy.Function):
    """``sum(e)``: the sum of a vector's units, one number per batch row (size 1), which
    broadcasts where it is used. Its partial derivative with respect to each unit of ``e`` is 1,
    so the chain rule through it is SymPy's own; the derivation also writes the adjoint of a
    size-1 quantity used by a vector as a ``UnitSum`` of that vector's terms."""

    nargs = 1

    @classmethod
    def eval(cls, arg):
        if arg == 0:
            return sympy.Integer(0)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.Integer(1)


class UnitMean(sympy.Function):
    """``mean(e)``: ``sum(e)`` divided by the size of ``e``. The derivation lowers it to
    ``UnitSum(e) / n`` once the size n is known; nothing after the lowering sees it."""

    nargs = 1

    def fdiff(self, argindex: int = 1):  # pragma: no cover - lowered before any derivative
        raise TypeError("mean() is lowered to sum() / size before it is differentiated")


#: spec name -> reduction node
REDUCTIONS: dict[str, type[sympy.Function]] = {"sum": UnitSum, "mean": UnitMean}
