"""``CellSpec`` -> ``Derivation``: one time step's forward and backward (BPTT) assignments.

The forward equations are first *lowered* into an assignment list: every matrix product becomes a
product symbol (computed by a GEMM), every ``target = act(non-trivial argument)`` gets a
pre-activation symbol of its own, and composite operands of ``@`` get a name of their own. The
backward pass is then reverse-mode differentiation *of that list*: walking it backwards, the
adjoint of each symbol is the sum over its uses of (adjoint of the user) x (partial derivative),
with activation derivatives rewritten in terms of the stored activation outputs. Nothing here
knows about LSTMs; any cell a spec can express is derived the same way.

Each symbol's meaning and size are in ``Derivation.quantities`` (the typed IR of
``symlstm.ir.nodes``); its name comes from the derivation's ``Namer``, which knows the spec's
names, so a generated symbol never collides with one.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sympy

from symlstm.ir.names import Namer
from symlstm.ir.nodes import Assignment, Kind, Product, Quantity
from symlstm.ir.sizes import check_assignable, expression_size
from symlstm.lang.nodes import UnitMean, UnitSum
from symlstm.lang.primitives import Activation
from symlstm.lang.sizes import Size
from symlstm.lang.spec import INPUT, PREV_SUFFIX, CellSpec, MatVec, SpecError, equation_label, symbol


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
    #: symbol name -> what it is (kind, spec name, size): the typed IR
    quantities: Mapping[str, Quantity]
    #: the names spoken for so far; backends ask ``names.child()`` for their own identifiers
    names: Namer
    #: the input x_t, the gradient from above, and per state its carry (adjoint from step t + 1)
    input: sympy.Symbol
    output_grad: sympy.Symbol
    carries: Mapping[str, sympy.Symbol]
    #: operand name -> the GEMM-adjoint symbol (sum of M^T delta over its products)
    gemm_t: Mapping[str, sympy.Symbol]
    #: dL/dx_t through the uses of x outside products (x elementwise), or 0
    input_adjoint: sympy.Expr = sympy.Integer(0)

    def kind(self, name: str) -> Kind:
        return self.quantities[name].kind

    def adjoint_of(self, name: str) -> str:
        """The symbol an adjoint (``Kind.DELTA``) is the adjoint of."""
        of = self.quantities[name].of
        if of is None:
            raise KeyError(f"{name!r} is not an adjoint")
        return of

    def operand_of(self, name: str) -> str:
        """The operand of a product or of a GEMM adjoint."""
        operand = self.quantities[name].operand
        if operand is None:
            raise KeyError(f"{name!r} is not a product or a GEMM adjoint")
        return operand

    def size(self, name: str) -> Size:
        return self.quantities[name].size

    def of_kind(self, *kinds: Kind) -> list[str]:
        """Names of the symbols of the given kinds, in the order they were made."""
        return [name for name, q in self.quantities.items() if q.kind in kinds]

    @functools.cached_property
    def reductions(self) -> dict[str, sympy.Expr]:
        """Reduction symbol -> its ``UnitSum(...)``, forward and backward."""
        return {a.name: a.expr for a in (*self.forward, *self.backward) if self.kind(a.name) == Kind.REDUCTION}

    def prev_symbol(self, state: str) -> sympy.Symbol:
        return symbol(state + PREV_SUFFIX)

    def state_of_operand(self, operand: str) -> str | None:
        """The state an operand carries (last step's value or this step's), if it is one."""
        q = self.quantities[operand]
        if q.kind == Kind.PREV or (q.kind == Kind.VALUE and q.base in self.spec.states):
            return q.base
        return None

    def products_with_operand(self, operand: str) -> tuple[Product, ...]:
        return tuple(p for p in self.products if p.operand == operand)

    def operand_groups(self) -> dict[str, tuple[Product, ...]]:
        """Operand -> its products, in first-use order (the input's first): each group is one
        concatenated GEMM."""
        groups: dict[str, list[Product]] = {self.input.name: []}
        for p in self.products:
            groups.setdefault(p.operand, []).append(p)
        return {k: tuple(v) for k, v in groups.items()}


class _Lowering:
    """Rewrites the spec's equations into an assignment list with products and pre-activations."""

    def __init__(self, spec: CellSpec, names: Namer):
        self.spec = spec
        self.names = names
        self.assignments: list[Assignment] = []
        self.products: dict[tuple[str, str], Product] = {}
        self.quantities: dict[str, Quantity] = {INPUT: Quantity(Kind.INPUT, INPUT, spec.sizes[INPUT])}
        self.levels: dict[str, int] = {}
        for s in spec.states:
            self.quantities[s + PREV_SUFFIX] = Quantity(Kind.PREV, s, spec.sizes[s])
        for v in spec.vectors:
            self.quantities[v] = Quantity(Kind.PARAM, v, spec.sizes[v])
        for name, size in spec.inputs.items():
            self.quantities[name] = Quantity(Kind.DATA, name, size)
        self.size_symbols: dict[Size, sympy.Symbol] = {}
        self.sums: dict[sympy.Expr, sympy.Symbol] = {}

    def level_of(self, expr: sympy.Expr) -> int:
        return max((self.levels.get(s.name, 0) for s in expr.free_symbols), default=0)

    def size_of(self, expr: sympy.Expr, where: str) -> Size:
        return expression_size(expr, lambda s: self.quantities[s].size, where, self.spec.requirements)

    def add(self, name: str, expr: sympy.Expr, quantity: Quantity, where: str) -> sympy.Symbol:
        size = self.size_of(expr, where)
        check_assignable(size, quantity.size, f"{quantity.kind.value} {name!r}", where, self.spec.requirements)
        self.quantities[name] = quantity
        self.levels[name] = self.level_of(expr)
        target = symbol(name)
        self.assignments.append(Assignment(target, expr))
        return target

    def product(self, node: MatVec, where: str) -> sympy.Symbol:
        matrix = node.matrix.name
        rows = self.spec.matrices[matrix][0]
        operand = node.operand
        if isinstance(operand, sympy.Symbol):
            operand_name = operand.name
        else:  # a composite operand gets a name of its own, so the GEMM reads one buffer
            operand_name = self.names.fresh(f"{matrix}_in")
            self.add(operand_name, operand, Quantity(Kind.OPERAND, matrix, self.spec.matrices[matrix][1]), where)
        columns = self.spec.matrices[matrix][1]
        if self.quantities[operand_name].size != columns:
            raise SpecError(
                f"{where}: {matrix} has {columns} columns but multiplies {operand_name!r} of size "
                f"{self.quantities[operand_name].size}"
            )
        key = (matrix, operand_name)
        if key not in self.products:
            kind = self.quantities[operand_name].kind
            stage = -1 if kind == Kind.INPUT else 0 if kind == Kind.PREV else self.levels[operand_name] + 1
            name = self.names.fresh(f"{matrix}_{operand_name}")
            self.quantities[name] = Quantity(Kind.PRODUCT, matrix, rows, operand=operand_name)
            self.levels[name] = max(stage, 0)
            self.products[key] = Product(symbol(name), matrix, operand_name, stage)
        return self.products[key].symbol

    def count(self, size: Size) -> sympy.Expr:
        """The number of units of ``size``, as mean() divides by it: a number, or the symbol of a
        size name (a ``Kind.SIZE`` quantity)."""
        if isinstance(size, int):
            return sympy.Integer(size)
        if size not in self.size_symbols:
            name = self.names.fresh(f"n_{size}")
            self.quantities[name] = Quantity(Kind.SIZE, size, 1)
            self.size_symbols[size] = symbol(name)
        return self.size_symbols[size]

    def reduction(self, node: sympy.Expr, target: str, where: str) -> sympy.Expr:
        """``sum(e)`` becomes a symbol of its own (the kernels compute it in a pass over the units
        of e); ``mean(e)`` that symbol over the size of e."""
        argument = node.args[0]
        if argument not in self.sums:  # one symbol per distinct sum, however often it is written
            self.sums[argument] = self.add(
                self.names.fresh(f"{target}_sum"), UnitSum(argument), Quantity(Kind.REDUCTION, target, 1), where
            )
        name = self.sums[argument]
        if isinstance(node, UnitMean):
            return name / self.count(self.size_of(argument, where))
        return name

    def lower(self) -> None:
        for eq in self.spec.equations:
            where = equation_label(eq.target, eq.text)
            size = self.spec.sizes[eq.target]

            def lowered(node: sympy.Expr, target: str = eq.target, where: str = where) -> sympy.Expr:
                if isinstance(node, MatVec):
                    return self.product(node, where)
                return self.reduction(node, target, where)

            # bottom up: the arguments of a node are lowered before the node itself
            expr = eq.expr.replace(lambda e: isinstance(e, (MatVec, UnitSum, UnitMean)), lowered)
            if isinstance(expr, Activation) and not isinstance(expr.args[0], sympy.Symbol):
                preact = self.add(
                    self.names.fresh(eq.target + "_bar"), expr.args[0], Quantity(Kind.PREACT, eq.target, size), where
                )
                expr = type(expr)(preact)
            self.add(eq.target, expr, Quantity(Kind.VALUE, eq.target, size), where)


def spec_namer(spec: CellSpec) -> Namer:
    """A namer that knows every name of the spec, and its words (``x``, ``<state>_prev``)."""
    names = Namer([INPUT, *spec.param_names, *(eq.target for eq in spec.equations)])
    for s in spec.states:
        names.claim(s + PREV_SUFFIX)
    return names


def derive(spec: CellSpec) -> Derivation:
    """Lower the spec's equations and derive one step of backpropagation through time."""
    names = spec_namer(spec)
    low = _Lowering(spec, names)
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

    def size_of(expr: sympy.Expr) -> Size:
        return expression_size(expr, lambda name: quantities[name].size, "the backward pass", spec.requirements)

    def adjoint_terms(s: sympy.Symbol) -> list[sympy.Expr]:
        """The terms of dL/ds: per use of s, the user's adjoint times the partial derivative. A
        size-1 quantity used by vectors gets the sum of their terms over the units."""
        terms: list[sympy.Expr] = []
        unit_terms: list[sympy.Expr] = []
        for user in users.get(s, ()):
            if user.target in deltas:
                partial = sympy.diff(user.expr, s).xreplace(outputs)
                if partial != 0:
                    term = deltas[user.target] * partial
                    scalar = quantities[s.name].size == 1 and size_of(term) != 1
                    (unit_terms if scalar else terms).append(term)
        if unit_terms:
            terms.append(UnitSum(sympy.Add(*unit_terms)))
        return terms

    def new_symbol(hint: str, quantity: Quantity, level: int) -> sympy.Symbol:
        name = names.fresh(hint)
        quantities[name] = quantity
        levels[name] = level
        return symbol(name)

    def new_delta(of: str, level: int) -> sympy.Symbol:
        return new_symbol(f"d_{of}", Quantity(Kind.DELTA, quantities[of].base, quantities[of].size, of=of), level)

    output = spec.output
    output_grad = new_symbol(f"d_{output}_above", Quantity(Kind.OUTPUT_GRAD, output, spec.sizes[output]), 0)
    operands = {p.operand for p in products}
    gemm_t: dict[str, sympy.Symbol] = {}

    def gemm_t_symbol(operand: str) -> sympy.Symbol:
        q = Quantity(Kind.GEMM_T, quantities[operand].base, quantities[operand].size, operand=operand)
        gemm_t[operand] = new_symbol(f"gemmT_{operand}", q, levels.get(operand, 0))
        return gemm_t[operand]

    backward: list[Assignment] = []
    product_deltas: dict[str, sympy.Symbol] = {}

    def emit_product_deltas(stage_filter: Callable[[int], bool]) -> None:
        for p in products:
            if stage_filter(p.stage) and p.name not in product_deltas:
                expr = sympy.Add(*adjoint_terms(p.symbol))
                if isinstance(expr, sympy.Symbol) and expr in deltas.values():
                    product_deltas[p.name] = expr  # e.g. d(W_i @ x) is just d_i_bar
                else:
                    d = new_delta(p.name, max(p.stage, 0))
                    backward.append(Assignment(d, expr))
                    product_deltas[p.name] = d

    carries: dict[str, sympy.Symbol] = {}
    level = max((levels[a.name] for a in forward), default=0)
    for a in reversed(forward):
        while levels[a.name] < level:  # leaving `level`: its products' adjoints are complete
            emit_product_deltas(functools.partial(operator.eq, level))
            level -= 1
        u = a.target
        terms = []
        if u.name == output:
            terms.append(output_grad)
        if u.name in spec.states:
            carry = new_symbol(f"carry_{u.name}", Quantity(Kind.CARRY, u.name, spec.sizes[u.name]), levels[u.name])
            carries[u.name] = carry
            terms.append(carry)
        terms += adjoint_terms(u)
        if u.name in operands:
            terms.append(gemm_t_symbol(u.name))
        if not terms:
            continue  # nothing downstream depends on u
        d = new_delta(u.name, levels[u.name])
        deltas[u] = d
        backward.append(Assignment(d, sympy.Add(*terms)))
    emit_product_deltas(lambda stage: stage <= 0)

    prev_adjoints = {}
    for s in spec.states:
        prev = s + PREV_SUFFIX
        terms = adjoint_terms(symbol(prev))
        if prev in operands:
            terms.append(gemm_t_symbol(prev))
        prev_adjoints[s] = sympy.Add(*terms)
    param_grads = {v: sympy.Add(*adjoint_terms(symbol(v))) for v in spec.vectors}
    input_adjoint = sympy.Add(*adjoint_terms(symbol(INPUT)))
    backward = _inline_activation_adjoints(backward, forward, spec, operands, quantities)
    # the expressions after the last loop, by whose adjoint they are: state_prev, vector, x
    tails = {s + PREV_SUFFIX: e for s, e in prev_adjoints.items()} | param_grads | {INPUT: input_adjoint}
    backward, tails = _lower_backward_reductions(backward, tails, names, quantities, levels)
    prev_adjoints = {s: tails[s + PREV_SUFFIX] for s in prev_adjoints}
    param_grads = {v: tails[v] for v in param_grads}
    input_adjoint = tails[INPUT]
    return Derivation(
        spec=spec,
        forward=tuple(forward),
        products=products,
        levels=levels,
        backward=tuple(backward),
        product_deltas=product_deltas,
        prev_adjoints=prev_adjoints,
        param_grads=param_grads,
        quantities=quantities,
        names=names,
        input=symbol(INPUT),
        output_grad=output_grad,
        carries=carries,
        gemm_t=gemm_t,
        input_adjoint=input_adjoint,
    )


def _inline_activation_adjoints(backward, forward, spec, operands, quantities) -> list[Assignment]:
    """Fold ``d_i = d_c*g`` into ``d_i_bar = d_i*i*(1 - i)``: the textbook one-line form.

    Only the adjoint of a plain activation output (not a state, not a GEMM operand) is folded:
    its single use is then the adjoint of its own pre-activation.
    """
    activation_outputs = {
        a.name
        for a in forward
        if isinstance(a.expr, Activation) and a.name not in spec.states and a.name not in operands
    }
    preacts_with_adjoint = {
        quantities[quantities[a.name].of].base
        for a in backward
        if quantities[quantities[a.name].of].kind == Kind.PREACT
    }
    folded: dict[sympy.Symbol, sympy.Expr] = {}
    kept = []
    for a in backward:
        expr = a.expr.xreplace(folded)
        owner = quantities[a.name].of
        if owner in activation_outputs and quantities[owner].kind == Kind.VALUE and owner in preacts_with_adjoint:
            folded[a.target] = expr
            continue
        kept.append(Assignment(a.target, expr))
    return kept


def _lower_backward_reductions(backward, tails, names, quantities, levels):
    """Give every ``UnitSum`` of the backward pass an assignment of its own, just before the
    assignment that reads it (in its loop), as the forward lowering does for sum() and mean().
    ``tails`` maps whose adjoint to an expression evaluated at the end of the loop of level 0
    (the carries, the parameter gradients, the input's adjoint); their sums are computed in that
    loop."""
    out: list[Assignment] = []

    def lowered(expr: sympy.Expr, of: str, level: int) -> sympy.Expr:
        def one(node: sympy.Expr) -> sympy.Symbol:
            name = names.fresh(f"sum_d_{of}")
            quantities[name] = Quantity(Kind.REDUCTION, quantities[of].base, 1, of=of)
            levels[name] = level
            out.append(Assignment(symbol(name), node))
            return symbol(name)

        return expr.replace(lambda e: isinstance(e, UnitSum), one)

    for a in backward:
        of = quantities[a.name].of
        assert of is not None
        expr = lowered(a.expr, of, levels[a.name])
        out.append(Assignment(a.target, expr))
    return out, {owner: lowered(expr, owner, 0) for owner, expr in tails.items()}
