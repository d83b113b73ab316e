"""The size of an expression from the sizes of its symbols, checked as the derivation builds it.

Elementwise operations need operands of one size; a size-1 operand (a number, or a vector of one
unit) broadcasts. A matrix product has the size of its matrix's rows. A mismatch is a
``SpecError`` naming the equation and both sizes.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy

from symlstm.lang.sizes import Size
from symlstm.lang.spec import SpecError


def expression_size(expr: sympy.Expr, size_of: Callable[[str], Size], where: str) -> Size:
    if isinstance(expr, sympy.Symbol):
        return size_of(expr.name)
    if expr.is_number:
        return 1
    if isinstance(expr, (sympy.Add, sympy.Mul)):
        return broadcast([expression_size(a, size_of, where) for a in expr.args], where)
    if isinstance(expr, sympy.Pow):
        return expression_size(expr.base, size_of, where)
    if isinstance(expr, sympy.Function) and len(expr.args) == 1:  # elementwise functions
        return expression_size(expr.args[0], size_of, where)
    raise SpecError(f"{where}: cannot tell the size of {type(expr).__name__} {expr}")


def broadcast(sizes: list[Size], where: str) -> Size:
    """The common size of elementwise operands (size 1 broadcasts)."""
    found: Size = 1
    for size in sizes:
        if size == 1 or size == found:
            continue
        if found != 1:
            raise SpecError(
                f"{where}: an elementwise operation combines a vector of size {found} with one of "
                f"size {size}; operands must have the same size (or size 1)"
            )
        found = size
    return found


def check_assignable(size: Size, target_size: Size, what: str, where: str) -> None:
    """A value of ``size`` may be stored as ``what`` of ``target_size`` (a size-1 value broadcasts)."""
    if size not in (1, target_size):
        raise SpecError(f"{where}: {what} has size {target_size}, but its expression has size {size}")
