"""Compact gradients: the parameter gradients that share a pattern, written once over an index.

The long form has one sum per parameter (``δW_i``, ``δR_i``, ``δW_f``, ...). Parameters named
``<base>_<member>`` (``W_i``, ``R_i``, ``b_i``) whose rows read the same once the member is
replaced by an index ``k`` are written as one line::

    δW_k = Σ_t δk̄_t x_t^⊤,  δR_k = Σ_t δk̄_t h_{t-1}^⊤,  δb_k = Σ_t δk̄_t   (k ∈ {i, f, g, o})

The rows are printed, not pattern-matched: each one is typeset again in a notation that writes
its member as ``k`` (``dataclasses.replace`` of the preset's rename tables), and rows whose
texts agree are grouped. Bases whose groups hold the same members share a line. A parameter whose
row matches no other (a peephole ``p_o`` that sees ``c_t`` where ``p_i`` and ``p_f`` see
``c_{t-1}``, the GRU's ``b_hn``) keeps its long row, so a cell without a shared pattern is
printed in the long form.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from symlstm.backends.latex.cellnotation import cell_notation
from symlstm.backends.latex.concat import pairs
from symlstm.backends.latex.equations import Row, gradient_keys, gradient_rows, parameter_gradient_row
from symlstm.backends.latex.notation import Notation, load_notation
from symlstm.ir.derive import Derivation

#: index letters, the first the cell does not use
INDEX_LETTERS = ("k", "j", "l", "q", "u", "v")


def index_letter(d: Derivation) -> str:
    """An index no name of the cell (nor a part of one: ``W_k``, ``k_prev``) spells."""
    used = {part for name in d.spec.param_names + tuple(d.spec.sizes) for part in name.split("_")}
    return next((k for k in INDEX_LETTERS if k not in used), INDEX_LETTERS[0] * 2)


def _index_notation(n: Notation, d: Derivation, member: str, index: str) -> Notation:
    """``n`` with ``member`` written as the index (capital where the preset writes vectors so)."""
    capital = n.head(d.spec.output)[0] == n.letter(d.spec.output.upper())
    head = n.letter(index.upper() if capital else index)
    return dataclasses.replace(
        n,
        symbols=MappingProxyType({**n.symbols, member: head}),
        subscripts=MappingProxyType({**n.subscripts, member: index}),
    )


def _members(d: Derivation, n: Notation) -> list[tuple[str, str, str]]:
    """(gradient row key, base, member) of every parameter's row: ``W_i`` -> (``W_i``, ``W``,
    ``i``); a concatenated matrix (``concat``) is its pair's, named after the value it computes:
    (``W_i+R_i``, ``W+R``, ``i``)."""
    out = []
    for key in gradient_keys(d, n):
        pair = next((pair for pair in pairs(d) if pair.key == key), None) if n.blocks else None
        if pair is None:
            base, _, member = key.partition("_")
        else:
            base, member = (
                "+".join(m.partition("_")[0] for m in (pair.input.matrix, pair.recurrent.matrix)),
                pair.member,
            )
        out.append((key, base, member))
    return out


def _rhs_as_text(row: Row) -> str | None:
    return row.lines[0] if len(row.lines) == 1 else None  # a continued row stays on its own


def compact_gradient_rows(d: Derivation, notation: Notation | str | None = None) -> dict[str, Row]:
    """``gradient_rows`` with the rows that share a pattern folded into one row per group.

    Keys: a folded row's is its bases and members (``W_R_b_ifgo``); the others keep theirs."""
    n = cell_notation(d, load_notation(notation))
    long = gradient_rows(d, n)
    index = index_letter(d)
    # (base, the row with its member written as the index) -> the members whose rows read so
    classes: dict[tuple[str, Row], list[str]] = {}
    of_param: dict[str, tuple[str, Row]] = {}
    for key, base, member in _members(d, n):
        # a member of several parts (b_gate_in) would make the index's list unreadable
        if not member or "_" in member or _rhs_as_text(long[key]) is None:
            continue
        pattern = (base, parameter_gradient_row(d, key, _index_notation(n, d, member, index)))
        classes.setdefault(pattern, []).append(member)
        of_param[key] = pattern
    shared = {pattern: tuple(members) for pattern, members in classes.items() if len(members) > 1}
    # bases whose groups hold the same members share one line, in the order of the long rows
    lines: dict[tuple[str, ...], list[tuple[str, Row]]] = {}
    for (base, row), members in shared.items():
        lines.setdefault(members, []).append((base, row))
    out: dict[str, Row] = {}
    for name, row in long.items():
        group = shared.get(of_param[name]) if name in of_param else None
        if group is None:
            out[name] = row
            continue
        bases = [base for base, _ in lines[group]]
        folded = "_".join(bases) + "_" + "".join(group)
        if folded not in out:
            out[folded] = _folded_row(n, lines[group], group, index)
    return out


def _folded_row(n: Notation, rows: list[tuple[str, Row]], members: tuple[str, ...], index: str) -> Row:
    (_, first), *rest = rows
    parts = [first.lines[0], *(f"{row.lhs} = {row.lines[0]}" for _, row in rest)]
    names = ", ".join(n.subscript(m) for m in members)
    return Row(first.lhs, (r",\quad ".join(parts) + rf" \qquad \left({index} \in \{{{names}\}}\right)",))
