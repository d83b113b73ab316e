"""Concatenated weights: which matrix products of a cell read as one matrix times ``[h_{t-1}, x_t]``.

Olah's "Understanding LSTM Networks" writes a gate as ``f_t = σ(W_f · [h_{t-1}, x_t] + b_f)``:
one matrix acting on the concatenation of the previous output and the input, where symlstm's
spec writes two, ``W_f @ x + R_f @ h_prev``. The two forms are the same when ``W_f`` (of the
blog) is the block matrix ``[R_f, W_f]`` (of the spec). A notation that sets ``[style] concat``
asks this module which products pair up that way, and prints each pair as one product.

A pair is found in the IR, not in the names: a forward sum (a pre-activation, or any value that
is a sum) with exactly one product whose operand is the input ``x_t`` and exactly one whose
operand is the previous output ``h_{t-1}`` (the state named by the spec's ``output``), each a
term of the sum on its own, each matrix used in no other product, and both products receiving
the same adjoint (so the gradient of the block matrix is one outer product with the
concatenation). Anything else in the sum stays as it is (a peephole's ``p_f ⊙ c_{t-1}``, the
bias). A product that is not a term of the sum (the GRU's ``r ⊙ (R_n h_{t-1} + b_hn)``), a
composite operand (``R_n (f ⊙ h_{t-1})``), a sum with only ``W x`` or with two products of
``h_{t-1}``, and a projection ``W_hr m`` are printed in the separate form.

The concatenated matrix is named after the value the sum computes (``W_f`` for ``f``, through the
notation's ``subscripts``: ``W_C`` for the LSTM's block input ``g`` in ``colah``); the two spec
matrices become its blocks (``W_{f,h}`` and ``W_{f,x}``), which is how the backward lines, the
input gradient and the legend name them. A matrix that is alone in multiplying ``x_t`` (or
``h_{t-1}``) in its equation is named as a block too (the GRU's ``W_{n,x} x_t`` and ``W_{n,h}
h_{t-1}``), so that ``W_{k,x}`` always multiplies ``x_t``; other matrices keep their names.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import sympy

from symlstm.backends.latex.notation import Notation
from symlstm.ir.derive import Derivation
from symlstm.ir.nodes import Kind, Product


@dataclasses.dataclass(frozen=True)
class Pair:
    """Two products in one sum that read as one matrix times the concatenation."""

    #: the spec name of the value the sum computes (``f`` for ``f_bar``): names the matrix
    member: str
    recurrent: Product
    input: Product

    @property
    def key(self) -> str:
        """The key of the concatenated matrix's gradient row: ``W_f+R_f``."""
        return f"{self.input.matrix}+{self.recurrent.matrix}"

    @property
    def products(self) -> tuple[Product, Product]:
        return self.recurrent, self.input


def _member(d: Derivation, name: str) -> str:
    q = d.quantities[name]
    return q.base if q.kind in (Kind.PREACT, Kind.VALUE) else name


#: the last few derivations asked about, with their pairs (a printer is made for every line)
_FOUND: list[tuple[Derivation, tuple[Pair, ...]]] = []


def pairs(d: Derivation) -> tuple[Pair, ...]:
    """Every pair of products of ``d`` that reads as one matrix times ``[h_{t-1}, x_t]``, in the
    order of the forward assignments."""
    found = next((found for made, found in _FOUND if made is d), None)
    if found is None:
        found = _pairs(d)
        _FOUND[:] = [*_FOUND[-7:], (d, found)]
    return found


def _uses(d: Derivation) -> dict[str, int]:
    """Matrix -> the number of products it is in."""
    uses: dict[str, int] = {}
    for p in d.products:
        uses[p.matrix] = uses.get(p.matrix, 0) + 1
    return uses


def _pairs(d: Derivation) -> tuple[Pair, ...]:
    uses = _uses(d)
    previous_output = d.prev_symbol(d.spec.output).name
    out = []
    for a in d.forward:
        if not isinstance(a.expr, sympy.Add):
            continue
        products = [
            p for p in d.products if p.symbol in a.expr.args and uses[p.matrix] == 1
        ]  # terms of the sum on their own, matrices used once
        inputs = [p for p in products if d.kind(p.operand) == Kind.INPUT]
        recurrent = [p for p in products if p.operand == previous_output]
        if len(inputs) != 1 or len(recurrent) != 1:
            continue
        if d.product_deltas[inputs[0].name] != d.product_deltas[recurrent[0].name]:
            continue
        out.append(Pair(_member(d, a.name), recurrent[0], inputs[0]))
    return tuple(out)


def blocks(d: Derivation) -> dict[str, tuple[str, str]]:
    """Matrix -> (the value naming it, the operand it multiplies) for every matrix written as a
    block: those of the pairs, and any other that is the only one multiplying ``x_t`` (or
    ``h_{t-1}``) in the assignment that uses it, and is used nowhere else (the GRU's ``W_{n,x}``
    and ``W_{n,h}``), so that ``W_{k,x}`` always multiplies ``x_t``."""
    out: dict[str, tuple[str, str]] = {}
    for pair in pairs(d):
        out[pair.input.matrix] = (pair.member, d.input.name)
        out[pair.recurrent.matrix] = (pair.member, d.spec.output)
    uses = _uses(d)
    roles = {d.input.name: d.input.name, d.prev_symbol(d.spec.output).name: d.spec.output}
    for a in d.forward:
        used = [p for p in d.products if p.symbol in a.expr.free_symbols and p.operand in roles]
        for p in used:
            alone = [q for q in used if q.operand == p.operand] == [p]
            if alone and uses[p.matrix] == 1 and p.matrix not in out:
                out[p.matrix] = (_member(d, a.name), roles[p.operand])
    return out


def with_blocks(d: Derivation, n: Notation) -> Notation:
    """``n`` for the cell ``d``: where ``n`` concatenates, the matrices that multiply ``x_t`` or
    ``h_{t-1}`` are named as blocks (``blocks``), and the legend says how the concatenated ones
    split. Unchanged for a notation that does not concatenate."""
    if not n.concatenates:
        return n
    named_blocks = blocks(d)
    if named_blocks == dict(n.blocks):
        return n
    named = dataclasses.replace(n, blocks=MappingProxyType(named_blocks))
    return dataclasses.replace(named, blocks_legend=_legend(d, named, pairs(d)) if named_blocks else "")


def _legend(d: Derivation, n: Notation, found: tuple[Pair, ...]) -> str:
    """What the blocks are, ``W_f = [W_{f,h}, W_{f,x}]`` for every pair, and what that means."""
    h, x = n.vector(d.spec.output, "t-1"), n.vector(d.input.name, "t")
    block_h, block_x = n.block("k", d.spec.output), n.block("k", d.input.name)
    k = n.vector("k", "t")
    text = f"${block_h}$ and ${block_x}$ are the weights that multiply ${h}$ and ${x}$ in the equation of ${k}$"
    if not found:
        return text + "."
    splits = [f"${n.concatenated(p.member)} = {_side_by_side(n, p)}$" for p in found]
    first = found[0]
    terms = [n.product(n.parameter(first.recurrent.matrix), h), n.product(n.parameter(first.input.matrix), x)]
    terms = terms if n.recurrent_first else terms[::-1]
    meaning = f"${n.product(n.concatenated(first.member), n.concatenation(h, x))} = {' + '.join(terms)}$"
    return (
        text
        + f"; a matrix acting on ${n.concatenation(h, x)}$ is made of two such blocks side by side, "
        + ", ".join(splits)
        + f", so that {meaning}."
    )


def _side_by_side(n: Notation, pair: Pair) -> str:
    """The concatenated matrix as its blocks, ``[W_{f,h}, W_{f,x}]``, in the concatenation's order."""
    blocks = [n.parameter(pair.recurrent.matrix), n.parameter(pair.input.matrix)]
    return "[" + ", ".join(blocks if n.recurrent_first else blocks[::-1]) + "]"
