"""The sizes of a spec's vectors and matrices: declared in ``[sizes]``, defaulted, or inferred.

States and intermediates have the size ``[sizes]`` gives them; an undeclared intermediate takes
the size of its expression, and an undeclared state, or an intermediate whose expression does not
tell, the hidden size H. What is left is inferred from use, one equation at a time:

- an elementwise operation needs operands of one size, or of size 1 (which broadcasts);
- ``M @ v`` makes M a (size of its context) x (size of v) matrix;
- a parameter vector takes the size of the elementwise context where it first appears (a vector
  first used in a size-1 context is size 1: a learnable scalar);
- ``sum(e)`` and ``mean(e)`` have size 1.

The input x has the size D. Where it meets a vector of another size name elementwise (SRU's
``(1 - r) * x``), the two must be equal at run time: that is recorded as a requirement, which
the runtime checks against the sizes of the call. Any other mismatch is a ``SpecError`` naming
the equation and both sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy

from symlstm.lang.errors import SpecError
from symlstm.lang.nodes import INPUT, PREV_SUFFIX, MatVec, UnitMean, UnitSum
from symlstm.lang.sizes import HIDDEN_SIZE, INPUT_SIZE, Size, broadcast

REDUCTION_NODES = (UnitSum, UnitMean)


@dataclass(frozen=True)
class Requirement:
    """Two sizes that must be equal at run time, and the equation that needs it."""

    sizes: tuple[Size, Size]
    where: str


@dataclass
class SizeInference:
    #: every vector's size: x, the extra inputs, states, intermediates, parameter vectors
    sizes: dict[str, Size]
    #: matrix -> [rows or None, columns or None] while being inferred
    matrices: dict[str, list[Size | None]] = field(default_factory=dict)
    requirements: list[Requirement] = field(default_factory=list)

    # -- bottom up: the size an expression has, None while it depends on an unsized parameter ----
    def size_of(self, expr: sympy.Expr, where: str) -> Size | None:
        if isinstance(expr, sympy.Symbol):
            name = expr.name
            if name.endswith(PREV_SUFFIX) and name not in self.sizes:
                return self.sizes.get(name[: -len(PREV_SUFFIX)])
            return self.sizes.get(name)
        if expr.is_number:
            return 1
        if isinstance(expr, REDUCTION_NODES):
            self.size_of(expr.args[0], where)  # checks what is inside
            return 1
        if isinstance(expr, MatVec):
            columns = self.size_of(expr.operand, where)
            shape = self.matrices.setdefault(expr.matrix.name, [None, None])
            if columns is not None:
                self._set_columns(expr, columns, where)
            return shape[0]
        if isinstance(expr, sympy.Pow):
            return self.size_of(expr.base, where)
        if isinstance(expr, (sympy.Add, sympy.Mul, sympy.Function)):
            return self.combine([self.size_of(a, where) for a in expr.args], where)
        raise SpecError(f"{where}: cannot tell the size of {type(expr).__name__} {expr}")

    def combine(self, sizes: list[Size | None], where: str) -> Size | None:
        """The size of an elementwise operation on operands of these sizes."""
        known = [s for s in sizes if s is not None]
        return self._combine_known(known, where, unknown=len(known) < len(sizes))

    def _combine_known(self, sizes: list[Size], where: str, unknown: bool) -> Size | None:
        found = broadcast(sizes, where, lambda a, b: self._join_input(a, b, where))
        if found == 1 and unknown:
            return None  # an unsized parameter may be larger
        return found

    def _join_input(self, a: Size, b: Size, where: str) -> Size | None:
        """x's size D meeting another size name: they must be equal at run time (recorded)."""
        if INPUT_SIZE not in (a, b) or not isinstance(a, str) or not isinstance(b, str):
            return None
        other = b if a == INPUT_SIZE else a
        self.require(INPUT_SIZE, other, where)
        return other

    def require(self, a: Size, b: Size, where: str) -> None:
        if not any(set(r.sizes) == {a, b} for r in self.requirements):
            self.requirements.append(Requirement((a, b), where))

    def _set_columns(self, product: MatVec, columns: Size, where: str) -> None:
        matrix = product.matrix.name
        shape = self.matrices[matrix]
        if shape[1] is None:
            shape[1] = columns
        elif shape[1] != columns:
            raise SpecError(
                f"{where}: the matrix {matrix!r} multiplies {sympy.sstr(product.operand)} of size {columns} here "
                f"and a vector of size {shape[1]} elsewhere; use two matrices"
            )

    # -- top down: give unsized parameters and matrix rows the size of their context -------------
    def assign(self, expr: sympy.Expr, context: Size, where: str) -> None:
        if isinstance(expr, sympy.Symbol):
            self.sizes.setdefault(expr.name, context)
        elif isinstance(expr, REDUCTION_NODES):
            argument = expr.args[0]
            inner = self.size_of(argument, where)
            self.assign(argument, HIDDEN_SIZE if inner is None else inner, where)
            if self.size_of(argument, where) == 1:
                raise SpecError(f"{where}: {_reduction_name(expr)}() of a size-1 value is that value; reduce a vector")
        elif isinstance(expr, MatVec):
            operand = expr.operand
            columns = self.size_of(operand, where)
            if columns is None:
                raise SpecError(
                    f"{where}: cannot tell the size of the operand of {expr.matrix.name} @ (...); give one of "
                    "its vectors a size in [sizes]"
                )
            self.assign(operand, columns, where)
            shape = self.matrices.setdefault(expr.matrix.name, [None, None])
            self._set_columns(expr, columns, where)
            if shape[0] is None:
                shape[0] = context
        elif isinstance(expr, sympy.Pow):
            self.assign(expr.base, context, where)
        elif isinstance(expr, (sympy.Add, sympy.Mul, sympy.Function)):
            for a in expr.args:
                self.assign(a, context, where)

    def equation(self, target: str, expr: sympy.Expr, declared: Size | None, where: str) -> Size:
        """Infer what one equation leaves open; returns the target's size."""
        bottom = self.size_of(expr, where)
        size = declared if declared is not None else bottom if bottom is not None else HIDDEN_SIZE
        self.assign(expr, size, where)
        final = self.size_of(expr, where)
        assert final is not None
        if final not in (1, size):
            if INPUT_SIZE in (final, size) and isinstance(final, str) and isinstance(size, str):
                self.require(INPUT_SIZE, final if size == INPUT_SIZE else size, where)
            else:
                raise SpecError(f"{where}: {target!r} has size {size}, but its expression has size {final}")
        self.sizes[target] = size
        return size


def _reduction_name(expr: sympy.Expr) -> str:
    return "sum" if isinstance(expr, UnitSum) else "mean"


def infer_sizes(
    equations: list[tuple[str, sympy.Expr, str]],
    states: tuple[str, ...],
    declared: Mapping[str, Size],
    inputs: Mapping[str, Size],
) -> SizeInference:
    """Sizes of every vector and matrix of the equations ``(target, expr, where)``, in order."""
    sizes: dict[str, Size] = {INPUT: INPUT_SIZE, **inputs}
    for s in states:
        sizes[s + PREV_SUFFIX] = declared.get(s, HIDDEN_SIZE)
    targets = {target for target, _, _ in equations}
    sizes.update({name: size for name, size in declared.items() if name not in targets})
    inference = SizeInference(sizes)
    for target, expr, where in equations:
        default = declared.get(target, HIDDEN_SIZE if target in states else None)
        inference.equation(target, expr, default, where)
    for matrix, (rows, columns) in inference.matrices.items():
        assert rows is not None and columns is not None, matrix
    return inference
