"""The typed IR: what each symbol of a derivation is, and the assignments it is made of.

Every symbol of a ``Derivation`` has a ``Quantity``: its ``Kind`` (an enum, never read back from
the symbol's name), the spec name it belongs to, and its size. Printers and emitters ask these,
not the names; the names themselves come from ``symlstm.ir.names.Namer``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import sympy

from symlstm.lang.sizes import Size


class Kind(enum.Enum):
    """What a symbol of the derivation stands for."""

    INPUT = "input"  # x_t
    DATA = "data"  # an extra per-step input named in [inputs] (a mask, a time step): no gradient
    VALUE = "value"  # a vector the spec computes: a state or an intermediate, named ``base``
    OPERAND = "operand"  # a composite right operand of ``@``, given a name of its own
    PREACT = "preact"  # the argument of the activation that computes ``base``
    PREV = "prev"  # state ``base`` at step t - 1
    PARAM = "param"  # a parameter vector, ``base``
    PRODUCT = "product"  # ``base @ operand``, computed by a GEMM
    DELTA = "delta"  # the adjoint of the symbol named ``of``
    CARRY = "carry"  # the adjoint of state ``base`` arriving from step t + 1
    GEMM_T = "gemm_t"  # the sum of M^T delta over the products whose operand is ``operand``
    OUTPUT_GRAD = "output_grad"  # dL/d(output state) at step t, arriving from above
    REDUCTION = "reduction"  # the sum over units of one expression (size 1); in the backward, part of ``of``'s adjoint
    SIZE = "size"  # the number of units ``base`` (a size name such as H) as a number, for mean()

    @property
    def is_adjoint(self) -> bool:
        return self in (Kind.DELTA, Kind.CARRY, Kind.GEMM_T, Kind.OUTPUT_GRAD)

    @property
    def is_forward_value(self) -> bool:
        """Computed by the forward pass of a step (and so possibly stored for the backward)."""
        return self in (Kind.VALUE, Kind.OPERAND, Kind.PREACT, Kind.REDUCTION)


#: kinds whose symbols carry a time index when typeset
TIMED_KINDS = frozenset(
    {
        Kind.INPUT,
        Kind.DATA,
        Kind.VALUE,
        Kind.OPERAND,
        Kind.PREACT,
        Kind.PREV,
        Kind.DELTA,
        Kind.OUTPUT_GRAD,
        Kind.REDUCTION,
    }
)


@dataclass(frozen=True)
class Quantity:
    kind: Kind
    #: the spec name it belongs to (the matrix for a product; unused for an adjoint)
    base: str
    size: Size
    #: for a product or a GEMM adjoint: the name of the operand symbol
    operand: str | None = None
    #: for an adjoint (DELTA): the name of the symbol whose adjoint it is
    of: str | None = None


@dataclass(frozen=True)
class Assignment:
    target: sympy.Symbol
    expr: sympy.Expr

    @property
    def name(self) -> str:
        return self.target.name


@dataclass(frozen=True)
class Product:
    """``matrix @ operand``, computed by a GEMM; ``stage`` -1 means the input projection (all steps
    at once), 0 a product of last step's state, n > 0 one that needs the step's loop n - 1 first."""

    symbol: sympy.Symbol
    matrix: str
    operand: str
    stage: int

    @property
    def name(self) -> str:
        return self.symbol.name
