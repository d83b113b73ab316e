"""Stage 2: ``CellSpec`` -> ``Derivation``: one time step's forward and backward (BPTT) assignments.

The forward equations are first *lowered* into an assignment list: every matrix product becomes a
product symbol (computed by a GEMM), every ``target = act(non-trivial argument)`` gets a named
pre-activation ``target_bar``, and composite operands of ``@`` get a name of their own. The
backward pass is then reverse-mode differentiation *of that list*: walking it backwards, the
adjoint of each symbol is the sum over its uses of (adjoint of the user) x (partial derivative),
with activation derivatives rewritten in terms of the stored activation outputs. Nothing here
knows about LSTMs; any cell a spec can express is derived the same way.

Symbol names are the Python names the generated kernels use (``i``, ``i_bar``, ``d_i_bar``,
``c_prev``, ``carry_c``...); ``Derivation.quantities`` says what each one means, for the printers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import sympy

from symlstm.lang.primitives import Activation
from symlstm.lang.spec import INPUT, PREV_SUFFIX, CellSpec, MatVec, SpecError, symbol

#: the adjoint arriving from the layer above: dL/dh_t for the output state
OUTPUT_GRAD = "dys"


@dataclass(frozen=True)
class Quantity:
    """What a symbol stands for.

    kind: ``value`` (a computed vector), ``preact`` (pre-activation of ``base``), ``prev``
    (``base`` at t-1), ``param`` (a parameter vector), ``product`` (``base @ operand``), ``delta``
    (adjoint of the symbol named ``base``), ``carry`` (the adjoint of state ``base`` arriving from
    step t+1), ``gemm_t`` (sum of M^T delta over the products whose operand is ``operand``),
    ``output_grad`` (dL/dh_t from above).
    """

    kind: str
    base: str
    operand: str | None = None


@dataclass(frozen=True)
class Assignment:
    target: sympy.Symbol
    expr: sympy.Expr

    @property
    def name(self) -> str:
        return self.target.name


@dataclass(frozen=True)
class Product:
    """``matrix @ operand``, computed by a GEMM; ``stage`` -1 means the input projection."""

    symbol: sympy.Symbol
    matrix: str
    operand: str
    stage: int

    @property
    def name(self) -> str:
        return self.symbol.name


@dataclass(frozen=True)
class Derivation:
    spec: CellSpec
    #: one forward step, lowered, sorted by level (loops separated by in-step GEMMs)
    forward: tuple[Assignment, ...]
    products: tuple[Product, ...]
    #: symbol name -> the loop (level) that computes it, for forward and backward assignments
    levels: Mapping[str, int]
    #: one backward step, in execution order
    backward: tuple[Assignment, ...]
    #: product name -> the symbol holding its adjoint
    product_deltas: Mapping[str, sympy.Symbol]
    #: state -> adjoint of ``state_prev`` within one step (becomes the carry of step t-1)
    prev_adjoints: Mapping[str, sympy.Expr]
    #: parameter vector -> its gradient's contribution from one (t, b); summed over both
    param_grads: Mapping[str, sympy.Expr]
    quantities: Mapping[str, Quantity]

    @property
    def num_levels(self) -> int:
        return 1 + max((self.levels[a.name] for a in self.forward), default=0)

    def products_with_operand(self, operand: str) -> tuple[Product, ...]:
        return tuple(p for p in self.products if p.operand == operand)

    def operand_groups(self) -> dict[str, tuple[Product, ...]]:
        """Operand -> its products, in first-use order: each group is one concatenated GEMM."""
        groups: dict[str, list[Product]] = {"x": []}
        for p in self.products:
            groups.setdefault(p.operand, []).append(p)
        return {k: tuple(v) for k, v in groups.items()}


def delta_name(name: str) -> str:
    return "d_" + name


def gemm_t_name(operand: str) -> str:
    return "gemmT__" + operand


def carry_name(state: str) -> str:
    return "carry_" + state


class _Lowering:
    """Rewrites the spec's equations into an assignment list with products and pre-activations."""

    def __init__(self, spec: CellSpec):
        self.spec = spec
        self.assignments: list[Assignment] = []
        self.products: dict[tuple[str, str], Product] = {}
        self.quantities: dict[str, Quantity] = {}
        self.levels: dict[str, int] = {}
        for s in spec.states:
            self.quantities[s + PREV_SUFFIX] = Quantity("prev", s)
        for v in spec.vectors:
            self.quantities[v] = Quantity("param", v)

    def level_of(self, expr: sympy.Expr) -> int:
        deps = [self.levels.get(s.name, 0) for s in expr.free_symbols]
        return max(deps, default=0)

    def add(self, name: str, expr: sympy.Expr, quantity: Quantity) -> sympy.Symbol:
        if name in self.quantities:
            raise SpecError(f"the generated name {name!r} clashes with a name in the spec; rename it")
        self.quantities[name] = quantity
        self.levels[name] = self.level_of(expr)
        target = symbol(name)
        self.assignments.append(Assignment(target, expr))
        return target

    def product(self, node: MatVec, target: str) -> sympy.Symbol:
        matrix = node.matrix.name
        operand = node.operand
        if isinstance(operand, sympy.Symbol):
            operand_name = operand.name
        else:  # a composite operand gets a name of its own, so the GEMM reads one buffer
            operand_name = f"{matrix}_in"
            count = 1
            while operand_name in self.quantities:
                count += 1
                operand_name = f"{matrix}_{count}_in"
            self.add(operand_name, operand, Quantity("value", operand_name))
        key = (matrix, operand_name)
        if key not in self.products:
            if operand_name == INPUT:
                stage = -1
            elif operand_name.endswith(PREV_SUFFIX):
                stage = 0
            else:
                stage = self.levels[operand_name] + 1
            name = f"{matrix}__{operand_name}"
            self.quantities[name] = Quantity("product", matrix, operand_name)
            self.levels[name] = max(stage, 0)
            self.products[key] = Product(symbol(name), matrix, operand_name, stage)
        return self.products[key].symbol

    def lower(self) -> None:
        for eq in self.spec.equations:
            expr = eq.expr.replace(lambda e: isinstance(e, MatVec), lambda e: self.product(e, eq.target))
            if isinstance(expr, Activation) and not isinstance(expr.args[0], sympy.Symbol):
                preact = self.add(eq.target + "_bar", expr.args[0], Quantity("preact", eq.target))
                expr = type(expr)(preact)
            self.add(eq.target, expr, Quantity("value", eq.target))


def derive(spec: CellSpec) -> Derivation:
    """Lower the spec's equations and derive one step of backpropagation through time."""
    low = _Lowering(spec)
    low.lower()
    order = {a.name: k for k, a in enumerate(low.assignments)}
    forward = sorted(low.assignments, key=lambda a: (low.levels[a.name], order[a.name]))
    products = tuple(low.products.values())
    quantities = dict(low.quantities)
    levels = dict(low.levels)

    # Activation outputs replace activation calls in derivatives: sigmoid(i_bar) -> i.
    outputs = {a.expr: a.target for a in forward if isinstance(a.expr, Activation)}
    users: dict[sympy.Symbol, list[Assignment]] = {}
    for a in forward:
        for s in sorted(a.expr.free_symbols, key=sympy.default_sort_key):
            users.setdefault(s, []).append(a)
    deltas: dict[sympy.Symbol, sympy.Symbol] = {}

    def adjoint_terms(s: sympy.Symbol) -> list[sympy.Expr]:
        terms = []
        for user in users.get(s, ()):
            if user.target in deltas:
                partial = sympy.diff(user.expr, s).xreplace(outputs)
                if partial != 0:
                    terms.append(deltas[user.target] * partial)
        return terms

    def new_symbol(name: str, quantity: Quantity, level: int) -> sympy.Symbol:
        quantities[name] = quantity
        levels[name] = level
        return symbol(name)

    output_grad = new_symbol(OUTPUT_GRAD, Quantity("output_grad", spec.output), 0)
    operands = {p.operand for p in products}
    backward: list[Assignment] = []
    product_deltas: dict[str, sympy.Symbol] = {}

    def emit_product_deltas(stage_filter) -> None:
        for p in products:
            if stage_filter(p.stage) and p.name not in product_deltas:
                terms = adjoint_terms(p.symbol)
                expr = sympy.Add(*terms)
                if isinstance(expr, sympy.Symbol) and expr in deltas.values():
                    product_deltas[p.name] = expr  # e.g. d(W_i @ x) is just d_i_bar
                else:
                    d = new_symbol(delta_name(p.name), Quantity("delta", p.name), max(p.stage, 0))
                    backward.append(Assignment(d, expr))
                    product_deltas[p.name] = d

    level = max((levels[a.name] for a in forward), default=0)
    for a in reversed(forward):
        while levels[a.name] < level:  # leaving `level`: its products' adjoints are complete
            emit_product_deltas(lambda stage, lv=level: stage == lv)
            level -= 1
        u = a.target
        terms = []
        if u.name == spec.output:
            terms.append(output_grad)
        if u.name in spec.states:
            terms.append(new_symbol(carry_name(u.name), Quantity("carry", u.name), levels[u.name]))
        terms += adjoint_terms(u)
        if u.name in operands:
            terms.append(new_symbol(gemm_t_name(u.name), Quantity("gemm_t", "", u.name), levels[u.name]))
        if not terms:
            continue  # nothing downstream depends on u
        d = new_symbol(delta_name(u.name), Quantity("delta", u.name), levels[u.name])
        deltas[u] = d
        backward.append(Assignment(d, sympy.Add(*terms)))
    emit_product_deltas(lambda stage: stage <= 0)

    prev_adjoints = {}
    for s in spec.states:
        prev = s + PREV_SUFFIX
        terms = adjoint_terms(symbol(prev))
        if prev in operands:
            terms.append(new_symbol(gemm_t_name(prev), Quantity("gemm_t", "", prev), 0))
        prev_adjoints[s] = sympy.Add(*terms)
    param_grads = {v: sympy.Add(*adjoint_terms(symbol(v))) for v in spec.vectors}
    backward = _inline_activation_adjoints(backward, forward, spec, operands)
    return Derivation(
        spec=spec, forward=tuple(forward), products=products, levels=levels,
        backward=tuple(backward), product_deltas=product_deltas, prev_adjoints=prev_adjoints,
        param_grads=param_grads, quantities=quantities,
    )


def _inline_activation_adjoints(backward, forward, spec, operands) -> list[Assignment]:
    """Fold ``d_i = d_c*g`` into ``d_i_bar = d_i*i*(1 - i)``: the textbook one-line form.

    Only the adjoint of a plain activation output (not a state, not a GEMM operand) is folded:
    its single use is then the adjoint of its own pre-activation.
    """
    activation_outputs = {a.name for a in forward
                          if isinstance(a.expr, Activation) and a.name not in spec.states
                          and a.name not in operands}
    computed = {a.name for a in backward}
    folded: dict[sympy.Symbol, sympy.Expr] = {}
    kept = []
    for a in backward:
        expr = a.expr.xreplace(folded)
        owner = a.name[len("d_"):]
        if owner in activation_outputs and delta_name(owner + "_bar") in computed:
            folded[a.target] = expr
            continue
        kept.append(Assignment(a.target, expr))
    return kept
