"""What a cell costs, read off its derivation: gates, peepholes, parameters, FLOPs, stored bytes.

Counts are per time step and per sequence (one batch element), as polynomials in the input size D
and the hidden size H:

- **parameters**: ``DH`` per input matrix, ``H²`` per recurrent matrix, ``H`` per vector;
- **FLOPs**: a matrix-vector product ``M v`` with ``M`` of shape (r, c) costs ``2rc`` (a
  multiply and an add per entry); every elementwise operation of the assignments (``+``, ``-``,
  ``⊙``, a square, an activation function, ...) costs 1 per unit. The backward pass computes
  ``Mᵀ δ`` (``2rc``) and accumulates ``δ vᵀ`` (``2rc``) for every product, plus its elementwise
  assignments, the adjoints sent to step t-1 and the accumulation of each parameter vector's
  gradient;
- **stored for the backward**: the arrays the forward kernel keeps (``codegen.Layout``): each
  state's sequence, the stored activations and in-step products, and the input projection when
  the backward reads it; ``k`` vectors of H values per step, ``4kH`` bytes in float32, ``8kH`` in
  float64 (``tests/test_docs.py`` checks this against ``ForwardCache.nbytes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from symlstm.ir.derive import Derivation
from symlstm.ir.nodes import Kind
from symlstm.ir.plan import StoragePlan
from symlstm.lang import primitives as fn
from symlstm.lang.sizes import INPUT_SIZE
from symlstm.lang.spec import PREV_SUFFIX, MatVec


@dataclass(frozen=True)
class Poly:
    """``dh·DH + hh·H² + h·H``."""

    dh: int = 0
    hh: int = 0
    h: int = 0

    def __add__(self, other: Poly) -> Poly:
        return Poly(self.dh + other.dh, self.hh + other.hh, self.h + other.h)

    def __mul__(self, k: int) -> Poly:
        return Poly(self.dh * k, self.hh * k, self.h * k)

    def __call__(self, D: int, H: int) -> int:
        return self.dh * D * H + self.hh * H * H + self.h * H

    def __str__(self) -> str:
        terms = [(self.dh, "DH"), (self.hh, "H²"), (self.h, "H")]
        text = " + ".join(f"{k if k != 1 else ''}{unit}" for k, unit in terms if k)
        return text or "0"


def elementwise_ops(expr: sympy.Expr) -> int:
    """Elementwise operations to evaluate ``expr`` once per unit (negation is free: it folds into
    the subtraction or product it belongs to)."""
    if expr.is_Atom:
        return 0
    if isinstance(expr, sympy.Add):
        return len(expr.args) - 1 + sum(elementwise_ops(a) for a in expr.args)
    if isinstance(expr, sympy.Mul):
        factors = [a for a in expr.args if a != -1]
        return max(len(factors) - 1, 0) + sum(elementwise_ops(a) for a in factors)
    if isinstance(expr, sympy.Pow):
        exponent = expr.exp
        if exponent.is_Integer and exponent > 0:
            return int(exponent) - 1 + elementwise_ops(expr.base)
        return 1 + elementwise_ops(expr.base)
    if isinstance(expr, sympy.Function):
        return 1 + sum(elementwise_ops(a) for a in expr.args)
    raise TypeError(f"cannot count the operations of {type(expr).__name__}")


@dataclass(frozen=True)
class CellSummary:
    name: str
    title: str
    states: tuple[str, ...]
    gates: tuple[str, ...]
    peepholes: tuple[str, ...]
    params: Poly
    gemm_flops: Poly
    forward_flops: Poly
    backward_flops: Poly
    stored_vectors: int

    def stored_bytes(self, H: int, itemsize: int = 4) -> int:
        return self.stored_vectors * H * itemsize


def summarize(d: Derivation) -> CellSummary:
    spec = d.spec
    nx = sum(1 for rows, columns in spec.matrices.values() if columns == INPUT_SIZE)
    params = Poly(nx, len(spec.matrices) - nx, len(spec.vectors))
    gemm = Poly()
    for p in d.products:
        gemm = gemm + (Poly(dh=2) if d.kind(p.operand) == Kind.INPUT else Poly(hh=2))
    forward_ew = sum(elementwise_ops(a.expr) for a in d.forward)
    backward_ew = (
        sum(elementwise_ops(a.expr) for a in d.backward)
        + sum(elementwise_ops(e) for e in d.prev_adjoints.values())
        + sum(elementwise_ops(e) + 1 for e in d.param_grads.values())
    )
    gates = tuple(eq.target for eq in spec.equations if _is_gate(eq.expr))
    state_symbols = set(spec.states) | {s + PREV_SUFFIX for s in spec.states}
    peepholes = []
    for eq in spec.equations:
        for node in sympy.preorder_traversal(eq.expr):
            if isinstance(node, sympy.Mul) and not node.has(MatVec):
                names = {s.name for s in node.free_symbols}
                for v in spec.vectors:
                    if v in names and names - {v} and names - {v} <= state_symbols and v not in peepholes:
                        peepholes.append(v)
    return CellSummary(
        name=spec.name,
        title=spec.title,
        states=spec.states,
        gates=gates,
        peepholes=tuple(peepholes),
        params=params,
        gemm_flops=gemm,
        forward_flops=gemm + Poly(h=forward_ew),
        backward_flops=gemm * 2 + Poly(h=backward_ew),
        stored_vectors=stored_vectors(d),
    )


def stored_vectors(d: Derivation) -> int:
    """Vectors per step the forward keeps for the backward (see ``symlstm.ir.plan``)."""
    return StoragePlan(d).stored_vectors()


def _is_gate(expr) -> bool:
    primitive = fn.primitive_of(expr)
    return primitive is not None and primitive.gate
