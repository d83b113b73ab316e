"""The backward kernels of a cell's module: adjoint buffers, the reverse recurrence, and the
weight and input gradients as one GEMM each after it."""

from __future__ import annotations

from symlstm.backends.numba.emit_forward import (
    KERNEL,
    allocation,
    buffers_signature,
    operand_source,
    recurrence_prologue,
    stacked,
    width,
)
from symlstm.backends.numba.loops import LoopNest, row_sources
from symlstm.backends.numba.names import KernelNames
from symlstm.backends.numba.source import Source
from symlstm.backends.numba.subscript import Subscript
from symlstm.ir.nodes import Kind


def saved(names: KernelNames) -> list[str]:
    """Arrays the forward returns and the backward takes, in order."""
    plan, n = names.plan, names
    out = list(n.seq.values()) + [n.keep[name] for name in plan.stored + plan.kept_products]
    if plan.keep_input_projection:
        out.append(n.proj[plan.d.input.name])
    return out


def adjoint_comment(names: KernelNames, name: str) -> str:
    """What an adjoint is the adjoint of, in the spec's words."""
    d = names.plan.d
    of = d.quantities[d.adjoint_of(name)]
    if of.kind == Kind.PRODUCT:
        return f"adjoint of {of.base} @ {of.operand}"
    if of.kind == Kind.PREACT:
        return f"adjoint of the pre-activation of {of.base}"
    return f"adjoint of {d.adjoint_of(name)}"


def emit_backward(names: KernelNames, out: Source) -> None:
    plan, n = names.plan, names
    d = plan.d
    spec = d.spec
    step_groups = plan.step_groups
    carries = [n.ident[d.carries[s].name] for s in spec.states]
    buffers = [n.adjoint_buffer[b.operands] for b in plan.buffers] + ([n.dx_direct] if direct_input(n) else [])
    out.signature("backward_buffers", buffers_signature(n))
    out('"""Uninitialised buffers, from ``empty``, for the adjoints of the products of each operand', 1)
    if direct_input(n):
        out("group over all steps: what backward_steps writes and backward_gradients multiplies", 1)
        out('(and the part of dx from x used elementwise)."""', 1)
    else:
        out('group over all steps: what backward_steps writes and backward_gradients multiplies."""', 1)
    shapes = [
        allocation(n, f"{n.T}, {n.B}, {n.block_layout([d.size(a.name) for a in b.adjoints])[0]}", n.empty)
        for b in plan.buffers
    ]
    if direct_input(n):
        shapes.append(allocation(n, f"{n.T}, {n.B}, {n.size(d.size(d.input.name))}", n.empty))
    out(f"return ({', '.join(shapes)}{',' if len(shapes) == 1 else ''})", 1)
    out()
    out()
    vectors = [n.ident[v] for v in spec.vectors]
    args = [n.lo, n.hi, *n.size_args, n.lengths] + [n.matrix[op] for op in step_groups] + vectors + saved(n)
    args += list(n.step_inputs.values()) + [n.dys] + carries + buffers
    out(KERNEL)
    out.signature("backward_steps", args)
    out('"""Backpropagate through all T steps for the batch rows lo:hi. The carries hold dL/d(final', 1)
    out("state) on entry and dL/d(initial state) on return; fills the adjoint buffers. A step past", 1)
    out("a row's length passes its carries through. Touches only those rows and returns the", 1)
    out('gradients of the vectors summed over them."""', 1)
    constants, local, constants_at = recurrence_prologue(n, out, n.dys)
    if spec.vectors:
        out.comment("the gradients of the parameter vectors, summed over steps and rows", 1)
    for v in spec.vectors:
        out(f"{n.grad[v]} = np.zeros({n.size(d.size(v))}, {n.dtype})", 1)
    scratch = [op for op in step_groups if not plan.gemm_is_carry_only(op)]
    if scratch:
        out.comment("the results of the step GEMMs M^T delta, for this range of rows", 1)
    for operand in scratch:
        out(f"{n.ident[d.gemm_t[operand].name]} = {allocation(n, f'{n.rows}, {n.size(d.size(operand))}')}", 1)
    if plan.backward_crossing:
        out.comment("adjoints one loop computes and another reads", 1)
    for name in plan.backward_crossing:
        out(f"{n.crossing[name]} = {allocation(n, f'{n.rows}, {n.size(d.size(name))}')}", 1)

    held = {op: n.namer.fresh(f"held_{n.ident[d.carries[d.quantities[op].base].name]}") for op in carry_only_gemms(n)}
    if held:
        out.comment("the carries a step GEMM overwrites, as rows past their length keep them: dL/d(final state)", 1)
    for operand, name in held.items():
        out(f"{name} = {n.ident[d.carries[d.quantities[operand].base].name]}[{n.lo}:{n.hi}].copy()", 1)

    grads = [(n.grad[v], e) for v, e in d.param_grads.items()]
    by_level = plan.by_level(d.backward)
    level_of = {a.name: d.levels[a.name] for a in d.backward}
    out(f"for {n.t} in range({n.T} - 1, -1, -1):", 1)
    for level in sorted(by_level, reverse=True):
        body = by_level[level]
        defined = {a.name for a in body}
        rows = row_sources(n, set(), backward=True)
        rows[d.output_grad.name] = (n.row(d.output_grad.name), Subscript(n.dys, (n.t, n.b)))
        for s in spec.states:
            carry = d.carries[s].name
            rows[carry] = (n.row(carry), Subscript(n.ident[carry], (n.b,)))
        for name in plan.backward_crossing:
            if name not in defined:
                rows[name] = (n.row(name), Subscript(n.crossing[name], (f"{n.b} - {n.lo}",)))
        for g in d.gemm_t.values():
            rows[g.name] = (n.row(g.name), Subscript(n.ident[g.name], (f"{n.b} - {n.lo}",)))
        nest = LoopNest(n, rows, constants, local)
        if level == max(by_level):
            nest.past_end = ["# past the end of this row's sequence: no adjoint flows into this step's products"]
            nest.past_end += [f"{buffer}[{n.t}, {n.b}] = 0" for buffer in buffers]
        for a in body:
            nest.compute(a.name, a.expr, adjoint_comment(n, a.name))
        for a in body:
            if a.name in plan.backward_crossing:
                nest.store(n.row(a.name), Subscript(n.crossing[a.name], (f"{n.b} - {n.lo}",)), a.target, d.size(a.name))
        for buffer, name in zip(plan.buffers, buffers):
            _, index = n.block_layout([d.size(a.name) for a in buffer.adjoints])
            for k, delta in enumerate(buffer.adjoints):
                if level_of[delta.name] == level:
                    view = n.namer.fresh(f"{name}_{n.ident[delta.name]}")
                    nest.store(view, Subscript(name, (n.t, n.b, str(index[k]))), delta, d.size(delta.name))
        if level == 0:  # adjoints of last step's states (the carries) and the parameter gradients
            zero_gemm = {g: 0 for op, g in d.gemm_t.items() if d.kind(op) == Kind.PREV}
            for state, expr in d.prev_adjoints.items():
                prev = d.prev_symbol(state).name
                if not plan.gemm_is_carry_only(prev):
                    carry = d.carries[state].name
                    nest.store(n.row(carry), Subscript(n.ident[carry], (n.b,)), expr.xreplace(zero_gemm), d.size(state))
            for (vector, e), (name, _) in zip(d.param_grads.items(), grads):
                nest.add_into(name, e, d.size(vector))
            if direct_input(n):
                x = d.input.name
                view = n.namer.fresh(f"{n.dx_direct}_row")
                nest.store(view, Subscript(n.dx_direct, (n.t, n.b)), d.input_adjoint, d.size(x))
        primals = [d.adjoint_of(a.name) for a in body]
        owners = [d.quantities[p].base if d.kind(p) == Kind.PREACT else p for p in primals if d.kind(p) != Kind.PRODUCT]
        out.comment("elementwise: the adjoints of " + (", ".join(dict.fromkeys(owners)) or "products"), 2)
        nest.emit(out, 2, defined)
        _emit_step_gemms(n, out, level, held)
    out(f"return ({', '.join(n.grad[v] for v in spec.vectors)}{',' if len(spec.vectors) == 1 else ''})", 1)
    out.insert(constants_at, constants.definitions(n.dtype, indent=1) + local.definitions(indent=1))
    out()
    out()
    _emit_gradients(n, out)


def carry_only_gemms(n: KernelNames) -> list[str]:
    """The operands (previous states) whose step GEMM writes their carry directly."""
    d = n.plan.d
    return [op for op in n.plan.step_groups if d.kind(op) == Kind.PREV and n.plan.gemm_is_carry_only(op)]


def _emit_step_gemms(n: KernelNames, out: Source, level: int, held: dict[str, str]) -> None:
    """The adjoints of this level's GEMM operands, M^T delta, for the loop below; ``held``:
    operand -> the copy of the carry its GEMM overwrites, for the rows past their length."""
    plan = n.plan
    d = plan.d
    for operand, products in plan.step_groups.items():
        if products[0].stage != level:
            continue
        src = f"{n.buffer_of(operand)}[{n.t}, {n.lo}:{n.hi}].reshape({n.rows}, {width(n, products)})"
        out.comment(f"step GEMM: {stacked(products, transposed=True)} @ the adjoints of its products", 2)
        if d.kind(operand) == Kind.PREV:
            carry = n.ident[d.carries[d.quantities[operand].base].name]
            if plan.gemm_is_carry_only(operand):
                out(f"step_gemm({src}, {n.matrix[operand]}, {carry}[{n.lo}:{n.hi}])", 2)
                out(f"for {n.b} in range({n.lo}, {n.hi}):", 2)
                out(f"if {n.t} >= {n.lengths}[{n.b}]:  # past its length: the carry passes through", 3)
                out(f"{carry}[{n.b}] = {held[operand]}[{n.b} - {n.lo}]", 4)
                continue
            scratch = n.ident[d.gemm_t[operand].name]
            out(f"step_gemm({src}, {n.matrix[operand]}, {scratch})", 2)
            out.comment(f"... added to the carry of {d.quantities[operand].base}", 2)
            _emit_add_rows(n, out, d.carries[d.quantities[operand].base].name, d.gemm_t[operand].name, 2)
        else:
            out(f"step_gemm({src}, {n.matrix[operand]}, {n.ident[d.gemm_t[operand].name]})", 2)


def _emit_add_rows(n: KernelNames, out: Source, target: str, scratch: str, indent: int) -> None:
    """``target[lo:hi] += scratch`` for two IR symbols' arrays, as a loop over row views: no
    temporary array."""
    out(f"for {n.b} in range({n.lo}, {n.hi}):", indent)
    out(f"{n.row(target)} = {Subscript(n.ident[target], (n.b,)).view()}", indent + 1)
    out(f"{n.row(scratch)} = {Subscript(n.ident[scratch], (f'{n.b} - {n.lo}',)).view()}", indent + 1)
    out(f"for {n.j} in range({n.size(n.plan.d.size(target))}):", indent + 1)
    out(f"{n.row(target)}[{n.j}] += {n.row(scratch)}[{n.j}]", indent + 2)


def _emit_gradients(n: KernelNames, out: Source) -> None:
    plan = n.plan
    d = plan.d
    x = d.input.name
    T, B, D, lo, hi = n.T, n.B, n.size("D"), n.lo, n.hi
    args = (
        [lo, hi, *n.size_args, n.x, n.matrix[x]]
        + saved(n)
        + [n.adjoint_buffer[b.operands] for b in plan.buffers]
        + ([n.dx_direct] if direct_input(n) else [])
        + [n.with_dx, n.dx]
        + [n.grad_matrix[op] for op in plan.groups]
    )
    out(KERNEL)
    out.signature("backward_gradients", args)
    out('"""After the recurrence, for the rows lo:hi of the T*B (step, batch row) pairs: the weight', 1)
    out(f'gradients summed over those rows, and dx if {n.with_dx} (else {n.dx} is not touched). One GEMM each."""', 1)
    out(f"{T}, {B} = {n.x}.shape[:2]", 1)
    for operand, products in plan.groups.items():
        flat = f"{n.buffer_of(operand)}.reshape({T} * {B}, {width(n, products)})[{lo}:{hi}]"
        if operand == x:
            src = f"{n.x}.reshape({T} * {B}, {D})[{lo}:{hi}]"
        else:
            columns = n.size(d.size(operand))
            src = f"{operand_source(n, operand)}.reshape({T} * {B}, {columns})[{lo}:{hi}]"
        out.comment(
            f"weight gradient: the adjoints of {stacked(products)} @ {operand}, times {operand}^T, summed over steps", 1
        )
        out(f"gemm({flat}.T, {src}, {n.grad_matrix[operand]})", 1)
    x_flat = f"{n.buffer_of(x)}.reshape({T} * {B}, {width(n, plan.input_group)})[{lo}:{hi}]"
    out.comment("the input gradient, unless no one wants it (the input of a first layer is data)", 1)
    out(f"if not {n.with_dx}:", 1)
    out("return", 2)
    out.comment(f"input gradient: {stacked(plan.input_group, transposed=True)} @ the adjoints of its products", 1)
    out(f"gemm({x_flat}, {n.matrix[x]}, {n.dx}.reshape({T} * {B}, {D})[{lo}:{hi}])", 1)
    if direct_input(n):
        row = n.namer.fresh("r")
        out.comment("... plus the adjoint of x where the step uses it elementwise", 1)
        out(f"for {row} in range({lo}, {hi}):", 1)
        out(f"{n.row(n.dx)} = {n.dx}.reshape({T} * {B}, {D})[{row}]", 2)
        out(f"{n.row(n.dx_direct)} = {n.dx_direct}.reshape({T} * {B}, {D})[{row}]", 2)
        out(f"for {n.j} in range({D}):", 2)
        out(f"{n.row(n.dx)}[{n.j}] += {n.row(n.dx_direct)}[{n.j}]", 3)


def direct_input(n: KernelNames) -> bool:
    """True when x is used elementwise, so dx has a part besides the input projection's."""
    return n.plan.d.input_adjoint != 0
