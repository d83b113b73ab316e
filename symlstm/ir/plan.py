"""The storage plan: what a forward step keeps for the backward, which GEMMs are concatenated, and
which values cross from one elementwise loop to a later one.

It is decided from the derivation alone, so every backend that runs kernels reads the same plan,
and summaries (stored bytes per step) do not depend on a backend. Names of buffers are a
backend's business; the plan speaks in IR symbols.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from symlstm.ir.derive import Derivation
from symlstm.ir.nodes import Assignment, Kind, Product
from symlstm.lang.sizes import Size


@dataclass(frozen=True)
class AdjointBuffer:
    """The adjoints of the products of one or more operand groups, over all steps. Groups share
    one buffer when their products have the same adjoints (``W_i x`` and ``R_i h_prev`` both have
    ``δī``), so the backward writes each adjoint once."""

    operands: tuple[str, ...]
    adjoints: tuple[sympy.Symbol, ...]


@dataclass
class StoragePlan:
    d: Derivation
    #: operand -> its products, one concatenated GEMM each; the input's group first
    groups: dict[str, tuple[Product, ...]] = field(init=False)
    #: forward values (not states) kept for the backward, in forward order
    stored: tuple[str, ...] = field(init=False)
    #: products computed inside the steps whose values the backward reads
    kept_products: tuple[str, ...] = field(init=False)
    #: True when the backward reads a product of the input projection
    keep_input_projection: bool = field(init=False)
    buffers: tuple[AdjointBuffer, ...] = field(init=False)
    #: value -> the product it only renames (read from the product's row, never stored)
    aliases: dict[str, str] = field(init=False)
    #: forward values computed in one loop and read in a later one, with no other home
    forward_crossing: tuple[str, ...] = field(init=False)
    #: backward adjoints computed in one loop and read in another
    backward_crossing: tuple[str, ...] = field(init=False)
    #: forward-only (inference): values that need a row of their own for one step, as nothing is
    #: stored: those read in a later loop or multiplied by a step GEMM
    inference_crossing: tuple[str, ...] = field(init=False)
    #: step operand -> the state whose whole new value is its group's one product (LSTMP's
    #: ``h = W_hr @ m``): the step GEMM can write that state's row itself
    gemm_states: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        d = self.d
        self.groups = d.operand_groups()
        # a value that is only another name of a product (lnlstm's wi = W_i @ x) is read from the
        # product's row wherever it is used, and never stored on its own
        self.aliases = {
            a.name: a.expr.name
            for a in d.forward
            if isinstance(a.expr, sympy.Symbol)
            and d.kind(a.expr.name) == Kind.PRODUCT
            and a.name not in d.spec.states
            and a.name not in self.groups
        }
        needed: set[str] = set()
        tails = [*d.prev_adjoints.values(), *d.param_grads.values(), d.input_adjoint]
        for e in [a.expr for a in d.backward] + tails:
            needed |= {self.aliases.get(s.name, s.name) for s in e.free_symbols}
        self.stored = tuple(
            a.name
            for a in d.forward
            if a.name not in d.spec.states
            and a.name not in self.aliases
            and (a.name in self.groups or (a.name in needed and d.kind(a.name).is_forward_value))
        )
        self.kept_products = tuple(p.name for p in d.products if p.stage >= 0 and p.name in needed)
        self.keep_input_projection = any(p.stage < 0 and p.name in needed for p in d.products)
        buffers: dict[tuple[sympy.Symbol, ...], list[str]] = {}
        for operand, products in self.groups.items():
            buffers.setdefault(tuple(d.product_deltas[p.name] for p in products), []).append(operand)
        self.buffers = tuple(AdjointBuffer(tuple(ops), key) for key, ops in buffers.items())
        self.forward_crossing = self._forward_crossing(homes=self.stored)
        self.backward_crossing = self._backward_crossing()
        operands = [op for op in self.step_groups if d.kind(op).is_forward_value and op not in d.spec.states]
        self.inference_crossing = tuple(dict.fromkeys([*self._forward_crossing(homes=()), *operands]))
        states = {
            a.expr.name: a.name for a in d.forward if a.name in d.spec.states and isinstance(a.expr, sympy.Symbol)
        }
        self.gemm_states = {
            op: states[ps[0].name] for op, ps in self.step_groups.items() if len(ps) == 1 and ps[0].name in states
        }

    # -- queries ------------------------------------------------------------------------------------
    @property
    def input_group(self) -> tuple[Product, ...]:
        return self.groups[self.d.input.name]

    @property
    def step_groups(self) -> dict[str, tuple[Product, ...]]:
        """The operand groups multiplied at every step: all but the input's."""
        return {op: ps for op, ps in self.groups.items() if op != self.d.input.name}

    def buffer_of(self, operand: str) -> AdjointBuffer:
        return next(b for b in self.buffers if operand in b.operands)

    def owns_buffer(self, operand: str) -> bool:
        """False when the group writes its adjoints through an earlier group's buffer."""
        return self.buffer_of(operand).operands[0] == operand

    def group_index(self, product: str) -> tuple[str, int]:
        for operand, products in self.groups.items():
            for k, p in enumerate(products):
                if p.name == product:
                    return operand, k
        raise KeyError(product)

    def group_stage(self, operand: str) -> int:
        return self.groups[operand][0].stage

    def gemm_is_carry_only(self, operand: str) -> bool:
        """True when last step's state enters the step only through this GEMM: the GEMM's result
        is then the whole carry, written straight into it."""
        if self.d.kind(operand) != Kind.PREV:
            return False
        state = self.d.quantities[operand].base
        return self.d.prev_adjoints[state] == self.d.gemm_t.get(operand)

    def stored_vectors(self) -> int:
        """Vectors per step the forward keeps for the backward."""
        return len(self.stored_sizes())

    def stored_sizes(self) -> list[Size]:
        """The size of each vector per step the forward keeps for the backward."""
        d = self.d
        names = [*d.spec.states, *self.stored, *self.kept_products]
        names += [p.name for p in self.input_group] if self.keep_input_projection else []
        return [d.size(name) for name in names]

    def by_level(self, assignments: tuple[Assignment, ...]) -> dict[int, list[Assignment]]:
        levels: dict[int, list[Assignment]] = {}
        for a in assignments:
            levels.setdefault(self.d.levels[a.name], []).append(a)
        return levels

    # -- what crosses loops -------------------------------------------------------------------------
    def _forward_crossing(self, homes: tuple[str, ...]) -> tuple[str, ...]:
        """Values computed in one loop and read in a later one, other than the states and
        ``homes`` (values stored anyway)."""
        d = self.d
        by_level = self.by_level(d.forward)
        out: list[str] = []
        for level, body in sorted(by_level.items()):
            for later_level, later in sorted(by_level.items()):
                if later_level <= level:
                    continue
                used = set().union(*(a.expr.free_symbols for a in later))
                for a in body:
                    if (
                        a.target in used
                        and a.name not in d.spec.states
                        and a.name not in homes
                        and a.name not in self.aliases
                        and a.name not in out
                    ):
                        out.append(a.name)
        return tuple(out)

    def _backward_crossing(self) -> tuple[str, ...]:
        d = self.d
        level_of = {a.name: d.levels[a.name] for a in d.backward}
        tail = [*d.prev_adjoints.values(), *d.param_grads.values(), d.input_adjoint]
        out: list[str] = []
        for level, body in self.by_level(d.backward).items():
            exprs = [a.expr for a in body] + (tail if level == 0 else [])
            for s in sorted(set().union(*(e.free_symbols for e in exprs)), key=lambda s: s.name):
                if s.name in level_of and level_of[s.name] != level and s.name not in out:
                    out.append(s.name)
        return tuple(out)
