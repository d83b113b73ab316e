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

import math
from dataclasses import dataclass

import sympy

from symlstm.ir.derive import Derivation
from symlstm.ir.plan import StoragePlan
from symlstm.ir.sizes import expression_size
from symlstm.lang import primitives as fn
from symlstm.lang.nodes import UnitSum
from symlstm.lang.sizes import HIDDEN_SIZE, INPUT_SIZE, Size
from symlstm.lang.spec import PREV_SUFFIX, MatVec

#: a product of size names, in canonical order (D, H, then the others by name); () is 1
Monomial = tuple[str, ...]


def _canonical(names) -> Monomial:
    order = {INPUT_SIZE: 0, HIDDEN_SIZE: 1}
    return tuple(sorted(names, key=lambda n: (order.get(n, 2), n)))


@dataclass(frozen=True)
class Poly:
    """A polynomial in the size names with integer coefficients: ``4DH + 4H² + 4H``."""

    terms: tuple[tuple[Monomial, int], ...] = ()

    @classmethod
    def of(cls, *sizes: Size, coefficient: int = 1) -> Poly:
        """``coefficient`` times the product of ``sizes`` (fixed sizes multiply the coefficient)."""
        names = [s for s in sizes if isinstance(s, str)]
        for s in sizes:
            if isinstance(s, int):
                coefficient *= s
        return cls(((_canonical(names), coefficient),)) if coefficient else cls()

    @property
    def coefficients(self) -> dict[Monomial, int]:
        return dict(self.terms)

    def __add__(self, other: Poly) -> Poly:
        total = self.coefficients
        for monomial, k in other.terms:
            total[monomial] = total.get(monomial, 0) + k
        ordered = sorted(total.items(), key=lambda item: (-len(item[0]), [_rank(n) for n in item[0]]))
        return Poly(tuple((m, k) for m, k in ordered if k))

    def __mul__(self, k: int) -> Poly:
        return Poly(tuple((m, c * k) for m, c in self.terms)) if k else Poly()

    def __call__(self, **sizes: int) -> int:
        return sum(k * math.prod(sizes[n] for n in m) for m, k in self.terms)

    def __str__(self) -> str:
        return " + ".join(_term(k, m) for m, k in self.terms) or "0"


def _rank(name: str) -> tuple[int, str]:
    return ({INPUT_SIZE: 0, HIDDEN_SIZE: 1}.get(name, 2), name)


def monomial_text(m: Monomial) -> str:
    """``("D", "H")`` -> ``DH``, ``("H", "H")`` -> ``H²``, ``()`` -> ``1``."""
    powers = {n: m.count(n) for n in dict.fromkeys(m)}
    return "".join(n + ("²" if k == 2 else "³" if k == 3 else f"^{k}" if k > 3 else "") for n, k in powers.items())


def _term(k: int, m: Monomial) -> str:
    text = monomial_text(m)
    return str(k) if not text else text if k == 1 else f"{k}{text}"


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
    #: units stored per step and batch row for the backward, e.g. ``6H``
    stored: Poly

    def stored_bytes(self, itemsize: int = 4, **sizes: int) -> int:
        return self.stored(**sizes) * itemsize


def summarize(d: Derivation) -> CellSummary:
    spec = d.spec
    params = Poly()
    for rows, columns in spec.matrices.values():
        params = params + Poly.of(rows, columns)
    for v in spec.vectors:
        params = params + Poly.of(spec.sizes[v])
    gemm = Poly()
    for p in d.products:
        gemm = gemm + Poly.of(*spec.matrices[p.matrix], coefficient=2)
    forward_ew = _elementwise(d, [(a.name, a.expr) for a in d.forward])
    backward_ew = _elementwise(d, [(a.name, a.expr) for a in d.backward])
    backward_ew += _elementwise(d, [(s, e) for s, e in d.prev_adjoints.items()])
    backward_ew += _elementwise(d, [(v, e + 1) for v, e in d.param_grads.items()])  # + 1: the accumulation
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
        forward_flops=gemm + forward_ew,
        backward_flops=gemm * 2 + backward_ew,
        stored=sum((Poly.of(size) for size in StoragePlan(d).stored_sizes()), Poly()),
    )


def _elementwise(d: Derivation, assignments) -> Poly:
    """Elementwise operations of (name, expression) pairs, each over the units of its name's size
    (a reduction counts one addition per unit of its argument)."""
    total = Poly()
    for name, expr in assignments:
        ops = elementwise_ops(expr.args[0] if isinstance(expr, UnitSum) else expr)
        size = d.size(name) if not isinstance(expr, UnitSum) else _argument_size(d, expr)
        total = total + Poly.of(size, coefficient=ops + (1 if isinstance(expr, UnitSum) else 0))
    return total


def _argument_size(d: Derivation, reduction: sympy.Expr) -> Size:
    return expression_size(reduction.args[0], d.size, "the summary", d.spec.requirements)


def _is_gate(expr) -> bool:
    primitive = fn.primitive_of(expr)
    return primitive is not None and primitive.gate
