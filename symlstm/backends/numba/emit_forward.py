"""The forward kernels of a cell's module: buffers, the input projection, the recurrence."""

from __future__ import annotations

import sympy

from symlstm.backends.numba.loops import KernelLocals, LoopNest, row_sources
from symlstm.backends.numba.names import KernelNames
from symlstm.backends.numba.printer import ConstantNames
from symlstm.backends.numba.source import Source
from symlstm.backends.numba.storage import StepStorage
from symlstm.backends.numba.subscript import Subscript
from symlstm.ir.nodes import Kind, Product

#: nogil: the runtime runs ranges of rows on threads of their own. contract: a * b + c may become
#: one fused multiply-add (one rounding instead of two), which halves the cost of the polynomials
#: in kernel_math; no other fast-math licence (no reassociation, NaN and inf stay IEEE).
KERNEL = '@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})'


def stacked(products: tuple[Product, ...], transposed: bool = False) -> str:
    """``[R_i; R_f; R_g; R_o]``: the matrices of a concatenated GEMM, as a comment shows them."""
    names = [p.matrix for p in products]
    text = names[0] if len(names) == 1 else f"[{'; '.join(names)}]"
    return text + ("^T" if transposed else "")


def width(names: KernelNames, products: tuple[Product, ...]) -> str:
    """The columns of a group's GEMM result: ``H`` or ``4 * H``."""
    return names.size_sum([names.plan.d.size(p.name) for p in products])


def operand_source(names: KernelNames, operand: str) -> str:
    """The (T, B, in) array of a group's operand over all steps, as the training forward kept it."""
    d, n = names.plan.d, names
    state = d.state_of_operand(operand)
    if state is not None:  # seq[t] is the state at t-1, seq[t + 1] the one at t
        return f"{n.seq[state]}[:{n.T}]" if d.kind(operand) == Kind.PREV else f"{n.seq[state]}[1:]"
    return n.keep[operand]


def forward_outputs(names: KernelNames) -> list[str]:
    """Arrays ``forward_steps`` fills: the state sequences, then the stored values."""
    plan = names.plan
    return list(names.seq.values()) + [names.keep[name] for name in plan.stored + plan.kept_products]


def recurrence_prologue(n: KernelNames, out: Source, array: str) -> tuple[ConstantNames, KernelLocals, int]:
    """The first lines of a recurrence kernel: T, the rows of its range and the dtype, read off
    ``array``. Returns the kernel's constants and its other locals (scratch rows, sizes as
    numbers), and the line where their definitions go once the body has used them."""
    out(f"{n.T} = {array}.shape[0]", 1)
    out(f"{n.rows} = {n.hi} - {n.lo}", 1)
    out(f"{n.dtype} = {array}.dtype", 1)
    return ConstantNames(n.namer.child().fresh), KernelLocals(n), len(out.lines)


def buffers_signature(n: KernelNames) -> list[str]:
    """``def forward_buffers(T, B, D, H, ..., dtype, empty=np.empty):``"""
    return [n.T, n.B, *n.size_args, n.dtype, f"{n.empty}=np.empty"]


def allocation(names: KernelNames, shape: str, allocate: str = "np.empty") -> str:
    """Source that allocates an uninitialised array of ``shape`` in the kernel's dtype."""
    return f"{allocate}(({shape}), {names.dtype})"


def emit_forward(names: KernelNames, out: Source) -> None:
    plan, n = names.plan, names
    d = plan.d
    x = d.input.name
    out.signature("forward_buffers", buffers_signature(n))
    out('"""Uninitialised arrays of one forward pass, by name, from ``empty``: the input projection', 1)
    out('and what forward_steps fills (state sequences with the initial state at index 0, stored values)."""', 1)
    out("return {", 1)
    blocks, _ = n.product_layout(plan.input_group)
    out(f'"{n.proj[x]}": {allocation(n, f"{n.T}, {n.B}, {blocks}", n.empty)},', 2)
    for s in d.spec.states:
        out(f'"{n.seq[s]}": {allocation(n, f"{n.T} + 1, {n.B}, {n.size(d.size(s))}", n.empty)},', 2)
    for name in plan.stored + plan.kept_products:
        out(f'"{n.keep[name]}": {allocation(n, f"{n.T}, {n.B}, {n.size(d.size(name))}", n.empty)},', 2)
    out("}", 1)
    out()
    out()
    D = n.size("D")
    out(KERNEL)
    out.signature("forward_inputs", [n.lo, n.hi, n.x, n.matrix_T[x], n.proj[x]])
    out('"""The input projection of all T steps at once, for the rows lo:hi of the (T*B, D) inputs:', 1)
    out(f'one GEMM, (hi - lo, D) @ (D, {width(n, plan.input_group)})."""', 1)
    out(f"{n.T}, {n.B}, {D} = {n.x}.shape", 1)
    out.comment(f"input projection: {stacked(plan.input_group)} @ {x}, for every step", 1)
    out(
        f"gemm({n.x}.reshape({n.T} * {n.B}, {D})[{n.lo}:{n.hi}], {n.matrix_T[x]}, "
        f"{n.proj[x]}.reshape({n.T} * {n.B}, {n.matrix_T[x]}.shape[1])[{n.lo}:{n.hi}])",
        1,
    )
    out()
    out()
    emit_steps(n, out, StepStorage(n))


def emit_infer(names: KernelNames, out: Source) -> None:
    """The forward-only kernels: ``infer_buffers`` and ``infer_steps`` (the input projection is
    ``forward_inputs``'s)."""
    plan, n = names.plan, names
    d = plan.d
    out.signature("infer_buffers", buffers_signature(n))
    out('"""Uninitialised arrays of one forward-only pass, by name, from ``empty``: the input', 1)
    out('projection, and per state last step\'s and this step\'s rows (2, B, size)."""', 1)
    out("return {", 1)
    blocks, _ = n.product_layout(plan.input_group)
    out(f'"{n.proj[d.input.name]}": {allocation(n, f"{n.T}, {n.B}, {blocks}", n.empty)},', 2)
    for s in d.spec.states:
        out(f'"{n.pair[s]}": {allocation(n, f"2, {n.B}, {n.size(d.size(s))}", n.empty)},', 2)
    out("}", 1)
    out()
    out()
    emit_steps(n, out, StepStorage(n, inference=True))
    out()
    out()
    emit_one_step(n, out)


def emit_one_step(names: KernelNames, out: Source) -> None:
    """``infer_step``: one step of ``infer_steps`` for all rows, its input projection included,
    as one call (a stream's step costs a few microseconds, mostly the call itself)."""
    plan, n = names.plan, names
    d = plan.d
    x = d.input.name
    matrices = [n.matrix_T[op] for op in plan.groups]
    vectors = [n.ident[v] for v in d.spec.vectors]
    pairs = [n.pair[s] for s in d.spec.states]
    extra = [name for name in n.step_inputs.values() if name != n.x]  # x is an argument anyway
    args = [*n.size_args, n.lengths, n.x, *matrices, n.proj[x], *vectors, *extra, *pairs, n.ys]
    out(KERNEL)
    out.signature("infer_step", args)
    out(f'"""One step for all B rows: {n.x} and {n.ys} are (1, B, ...), the state arrays (2, B, size); row 0', 1)
    out('holds the state before the step and after it (row 1 is scratch). lengths: B ones."""', 1)
    B = n.B
    out(f"{B} = {n.x}.shape[1]", 1)
    out.comment(f"input projection: {stacked(plan.input_group)} @ {x}", 1)
    out(f"gemm({n.x}[0], {matrices[0]}, {n.proj[x]}.reshape({B}, {matrices[0]}.shape[1]))", 1)
    steps = [n.lo, n.hi, *n.size_args, n.lengths, n.proj[x], *matrices[1:], *vectors, *n.step_inputs.values()]
    out(f"infer_steps(0, {B}, {', '.join(steps[2:])}, {', '.join(pairs)}, {n.ys})", 1)
    out.comment("this step's state becomes the one before the next step", 1)
    for pair in pairs:
        out(f"{pair}[0] = {pair}[1]", 1)


def emit_steps(names: KernelNames, out: Source, storage: StepStorage) -> None:
    """``forward_steps`` (training: keeps every step for the backward) or ``infer_steps``
    (forward only: keeps one step), as ``storage`` says."""
    plan, n = names.plan, names
    d = plan.d
    step_groups = plan.step_groups
    if storage.inference:
        outputs = [n.pair[s] for s in d.spec.states] + [n.ys]
    else:
        outputs = forward_outputs(n)
    args = (
        [n.lo, n.hi, *n.size_args, n.lengths, n.proj[d.input.name]]
        + [n.matrix_T[op] for op in step_groups]
        + [n.ident[v] for v in d.spec.vectors]
        + list(n.step_inputs.values())
        + outputs
    )
    out(KERNEL)
    if storage.inference:
        out.signature("infer_steps", args)
        out('"""Run all T steps for the batch rows lo:hi, forward only: row t % 2 of each state array', 1)
        out(f"holds last step's state (the initial state at t = 0), row (t + 1) % 2 gets this step's; {n.ys}[t]", 1)
        out("gets the output state. A row b past its length (t >= lengths[b]) keeps its states and", 1)
        out('outputs zeros. Writes only those rows, so disjoint ranges can run at the same time."""', 1)
    else:
        out.signature("forward_steps", args)
        out('"""Run all T steps for the batch rows lo:hi; the state sequences hold the initial states', 1)
        out("at index 0. A row b past its length (t >= lengths[b]) keeps its states. Writes only those", 1)
        out('rows, so disjoint ranges can run at the same time."""', 1)
    constants, local, constants_at = recurrence_prologue(n, out, n.proj[d.input.name])
    # a state that is one step GEMM's whole result (LSTMP's h = W_hr @ m) gets it in its own row
    state_of_gemm = plan.gemm_states
    scratch = [op for op in step_groups if op not in state_of_gemm]
    if scratch:
        out.comment("the results of the step GEMMs, for this range of rows", 1)
    for operand in scratch:
        blocks, _ = n.product_layout(step_groups[operand])
        out(f"{n.proj[operand]} = {allocation(n, f'{n.rows}, {blocks}')}", 1)
    if storage.crossing:
        out.comment("values one loop computes and a later one (or a step GEMM) reads", 1)
    for name in storage.crossing:
        out(f"{n.crossing[name]} = {allocation(n, f'{n.rows}, {n.size(d.size(name))}')}", 1)
    by_level = plan.by_level(d.forward)
    equations = {eq.target: eq for eq in d.spec.equations}
    output = d.spec.states[0]
    out(f"for {n.t} in range({n.T}):", 1)
    for level in sorted(by_level):
        gemm_states = []
        for operand, products in step_groups.items():
            if products[0].stage != level:
                continue
            if operand in state_of_gemm:
                gemm_states.append(state_of_gemm[operand])
                out.comment(f"step GEMM: {stacked(products)} @ {operand}, into the rows of {gemm_states[-1]}", 2)
                result = str(storage.new(gemm_states[-1], f"{n.lo}:{n.hi}"))
            else:
                out.comment(f"step GEMM: {stacked(products)} @ {operand}", 2)
                result = f"{n.proj[operand]}.reshape({n.rows}, {width(n, products)})"
            out(f"step_gemm({storage.gemm_operand(operand)}, {n.matrix_T[operand]}, {result})", 2)
        body = [a for a in by_level[level] if a.name not in state_of_gemm.values()]
        defined = {a.name for a in body}
        nest = LoopNest(n, row_sources(n, defined, backward=False, storage=storage), constants, local)
        if level == min(by_level):  # all but the states a GEMM of a later level writes
            later = tuple(s for op, s in state_of_gemm.items() if step_groups[op][0].stage > level)
            nest.past_end = storage.past_end(later=later)
        elif gemm_states:
            nest.past_end = storage.kept_states(gemm_states)
        if storage.inference and output in gemm_states:
            nest.store(
                n.namer.fresh(f"{n.ys}_row"),
                Subscript(n.ys, (n.t, n.b)),
                sympy.Symbol(output, real=True),
                d.size(output),
            )
        commented: set[str] = set()
        for a in body:
            q = d.quantities[a.name]
            owner = q.base if q.kind in (Kind.VALUE, Kind.PREACT) else None
            comment = None
            if owner in equations and owner not in commented:
                commented.add(owner)
                comment = f"{owner} = {_comment_text(equations[owner].text)}"
            elif q.kind == Kind.OPERAND:
                comment = f"{a.name}: the operand of {q.base} @ (...)"
            nest.compute(a.name, a.expr, comment)
        for a in body:
            size = d.size(a.name)
            if a.name in d.spec.states:
                nest.store(n.row(a.name), storage.new(a.name, n.b), a.target, size)
                if storage.inference and a.name == output:
                    nest.store(n.namer.fresh(f"{n.ys}_row"), Subscript(n.ys, (n.t, n.b)), a.target, size)
            elif (home := storage.value(a.name, n.b)) is not None:
                nest.store(n.row(a.name), home, a.target, size)
        for name in plan.kept_products if not storage.inference else ():
            if d.levels[name] == level:
                view = n.namer.fresh(f"{n.ident[name]}_kept")
                nest.store(view, Subscript(n.keep[name], (n.t, n.b)), sympy.Symbol(name, real=True), d.size(name))
        if not nest.statements:  # the level's only value came from its GEMM
            nest.emit_past_end(out, 2)
            continue
        values = [a.name for a in body if d.kind(a.name) == Kind.VALUE or d.kind(a.name) == Kind.OPERAND]
        out.comment("elementwise: " + (", ".join(values) or f"the output {output}"), 2)
        nest.emit(out, 2, defined)
    out.insert(constants_at, constants.definitions(n.dtype, indent=1) + local.definitions(indent=1))


def _comment_text(text: str) -> str:
    """Spec text on one comment line."""
    return " ".join(text.split())
