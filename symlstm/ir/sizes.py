"""The size of an expression from the sizes of its symbols, checked as the derivation builds it.

Elementwise operations need operands of one size; a size-1 operand (a number, a reduction, or a
vector of one unit) broadcasts. Two sizes the spec requires to be equal at run time (``D`` and
``H`` where x is used elementwise) count as one. A mismatch is a ``SpecError`` naming the
equation and both sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import sympy

from symlstm.lang.infer_sizes import Requirement
from symlstm.lang.nodes import UnitMean, UnitSum
from symlstm.lang.sizes import INPUT_SIZE, Size, broadcast
from symlstm.lang.spec import SpecError


def expression_size(
    expr: sympy.Expr, size_of: Callable[[str], Size], where: str, requirements: Iterable[Requirement] = ()
) -> Size:
    equal = [set(r.sizes) for r in requirements]

    def join(a: Size, b: Size) -> Size | None:
        return (b if a == INPUT_SIZE else a) if {a, b} in equal else None  # the size that is not x's

    def size(e: sympy.Expr) -> Size:
        if isinstance(e, sympy.Symbol):
            return size_of(e.name)
        if e.is_number or isinstance(e, (UnitSum, UnitMean)):
            return 1
        if isinstance(e, sympy.Pow):
            return size(e.base)
        if isinstance(e, (sympy.Add, sympy.Mul, sympy.Function)):  # elementwise
            return broadcast([size(a) for a in e.args], where, join)
        raise SpecError(f"{where}: cannot tell the size of {type(e).__name__} {e}")

    return size(expr)


def check_assignable(
    size: Size, target_size: Size, what: str, where: str, requirements: Iterable[Requirement] = ()
) -> None:
    """A value of ``size`` may be stored as ``what`` of ``target_size`` (a size-1 value broadcasts)."""
    if size in (1, target_size) or any(set(r.sizes) == {size, target_size} for r in requirements):
        return
    raise SpecError(f"{where}: {what} has size {target_size}, but its expression has size {size}")
