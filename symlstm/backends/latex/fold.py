"""Folded pre-activations: which forward lines write a pre-activation inside its activation.

Olah's blog writes a gate in one line, ``f_t = σ(W_f · [h_{t-1}, x_t] + b_f)``. symlstm's lowering
gives the non-trivial argument of every activation a symbol of its own (``f_bar``, a
``Kind.PREACT``), which the default notation prints on a line of its own, ``f̄_t = ...``, above
``f_t = σ(f̄_t)``. A notation that sets ``[style] fold_preactivations`` asks this module which
of them to write inside their activation instead.

A pre-activation folds when the forward pass uses its value only as the argument of the
activation that computes its ``base``: the forward assignment of the base is exactly ``act(f̄)``,
and no other forward assignment holds ``f̄``. Anything else (a value that is more than one
activation of it, another use) keeps the separate line. The backward pass may use it: its adjoint
``δf̄`` always, and its value where an activation's derivative is written in its input (``sin``:
``δf̄ = δf ⊙ cos(f̄)``).

The backward lines still name the folded pre-activations (``δf̄_t``), so the legend says, cell by
cell, what each bar stands for: the argument of the activation in its value's line.
"""

from __future__ import annotations

import dataclasses

from symlstm.backends.latex.notation import Notation
from symlstm.ir.derive import Derivation
from symlstm.ir.nodes import Assignment, Kind
from symlstm.lang.primitives import Activation, primitive_of


def folds(d: Derivation) -> dict[str, Assignment]:
    """Value name -> the assignment of its pre-activation, for every pre-activation the forward
    pass uses only as the argument of its value's activation; in the order of the forward pass."""
    assigned = {a.name: a for a in d.forward}
    candidates: dict[str, Assignment] = {}
    for a in d.forward:
        q = d.quantities[a.name]
        owner = assigned.get(q.base)
        if q.kind != Kind.PREACT or owner is None or d.kind(owner.name) != Kind.VALUE:
            continue
        if isinstance(owner.expr, Activation) and owner.expr.args == (a.target,):
            candidates[owner.name] = a
    for a in d.forward:
        used = a.expr.free_symbols
        for value, preact in list(candidates.items()):
            if a.name != value and preact.target in used:
                del candidates[value]
    return candidates


def folded_forward(d: Derivation) -> tuple[Assignment, ...]:
    """The forward assignments with every pre-activation of ``folds`` written inside its
    activation: ``f = σ(f̄)`` becomes ``f = σ(W_f x + R_f h_prev + b_f)`` and ``f̄``'s own
    assignment is left out."""
    folded = folds(d)
    preacts = {a.name for a in folded.values()}
    out = []
    for a in d.forward:
        if a.name in preacts:
            continue
        if a.name in folded:
            a = Assignment(a.target, a.expr.xreplace({folded[a.name].target: folded[a.name].expr}))
        out.append(a)
    return tuple(out)


def with_fold_legend(d: Derivation, n: Notation) -> Notation:
    """``n`` for the cell ``d``: where ``n`` folds pre-activations, with the legend's sentence
    on what each folded bar stands for. Unchanged for a notation that does not fold, or a cell
    without a pre-activation to fold."""
    if not n.fold_preactivations or n.folds_legend:
        return n
    folded = folds(d)
    if not folded:
        return n
    assigned = {a.name: a for a in d.forward}
    by_activation: dict[str, list[tuple[str, str]]] = {}  # σ(·) -> (f̄_t, f_t), in forward order
    for value, preact in folded.items():
        activation = primitive_of(assigned[value].expr)
        assert activation is not None  # folds() took only activations
        bar = n.vector(d.quantities[preact.name].base, "t", preact=True)
        by_activation.setdefault(n.function_call(activation.name, [r"\cdot"]), []).append((bar, n.vector(value, "t")))
    meanings = []
    for call, pairs in by_activation.items():
        bars, owns = _listed([f"${bar}$" for bar, _ in pairs]), _listed([f"${own}$" for _, own in pairs])
        if len(pairs) == 1:
            meanings.append(f"{bars} is the argument of ${call}$ in the line of {owns}")
        else:
            meanings.append(f"{bars} are the arguments of ${call}$ in the lines of {owns}")
    text = (
        "The forward lines write each pre-activation inside its activation; the backward lines name it "
        "with a bar: " + "; ".join(meanings) + "."
    )
    return dataclasses.replace(n, folds_legend=text)


def _listed(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
