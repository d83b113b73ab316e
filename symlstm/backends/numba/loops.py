"""One loop nest of a step: ``for b in range(lo, hi):`` row views, then one or more passes over
the units (``for j in range(H):``), then short accumulation loops.

Loop bodies index 1-d row views bound before the ``j`` loops (``c_prev_row[j]``), never
``seq_c[t, b, j]``: LLVM does not vectorize a loop that writes into one array at offsets it cannot
compare, and rows of distinct names only need runtime overlap checks. Concatenated GEMM results
are kept as (..., n, H) blocks, so every row is a contiguous ``[t, b, k]`` view with unit stride
known to the compiler (a sliced row ``[t, b, k*H:(k+1)*H]`` is not).

Most nests are one pass. A reduction over units (``sum``, ``mean``, the adjoint of a size-1
quantity) needs all units of its argument before anything that reads it, so the statements of a
nest are put in *phases*: a statement runs in the first phase after the reductions it reads. Each
phase is one pass per size over the units, after the phase's size-1 statements (plain scalars of
the batch row). A reduction writes its argument into a scratch row in its pass and sums it after
with ``unit_sum`` (vectorized: a sum accumulated in the loop would keep the whole loop scalar).
Values one pass computes and a later one reads go through a scratch row too, unless they were
stored in a row anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from symlstm.backends.numba.names import KernelNames
from symlstm.backends.numba.printer import ConstantNames, NumbaPrinter
from symlstm.backends.numba.source import Source
from symlstm.backends.numba.storage import StepStorage
from symlstm.backends.numba.subscript import Subscript
from symlstm.ir.nodes import Kind
from symlstm.ir.sizes import expression_size
from symlstm.lang.nodes import UnitSum
from symlstm.lang.sizes import Size

#: (row view, what it views)
Row = tuple[str, Subscript]


def row_sources(
    names: KernelNames, defined_here: set[str], backward: bool, storage: StepStorage | None = None
) -> dict[str, Row]:
    """For each IR symbol a loop body may read and does not compute: its row view. ``storage``:
    where the forward's states and values are (the training kernels' arrays by default)."""
    plan, n = names.plan, names
    d = plan.d
    t, b, lo = n.t, n.b, n.lo
    storage = storage or StepStorage(names)
    rows: dict[str, Row] = {}
    for name, q in d.quantities.items():
        if name in defined_here:
            continue
        if name in plan.aliases:
            continue  # added below, as the row of what it renames
        if q.kind == Kind.PREV:
            rows[name] = (n.row(name), storage.prev(q.base, b))
        elif q.kind in (Kind.INPUT, Kind.DATA) and name in n.step_inputs:
            rows[name] = (n.row(name), Subscript(n.step_inputs[name], (t, b)))
        elif q.kind == Kind.PRODUCT:
            operand, k = plan.group_index(name)
            block = n.product_layout(plan.groups[operand])[1][k]
            if operand == d.input.name:
                rows[name] = (n.row(name), Subscript(n.proj[operand], (t, b, str(block))))
            elif backward:
                if name in plan.kept_products:
                    rows[name] = (n.row(name), Subscript(n.keep[name], (t, b)))
            elif operand in plan.gemm_states:  # the GEMM wrote it into the state's row
                rows[name] = (n.row(name), storage.new(plan.gemm_states[operand], b))
            else:
                rows[name] = (n.row(name), Subscript(n.proj[operand], (f"{b} - {lo}", str(block))))
        elif q.kind.is_forward_value and q.of is None:
            if name in d.spec.states:
                rows[name] = (n.row(name), storage.new(name, b))
            elif (home := storage.value(name, b)) is not None:
                rows[name] = (n.row(name), home)
    for alias, product in plan.aliases.items():
        if alias not in defined_here and product in rows:
            rows[alias] = rows[product]
    return rows


@dataclass
class Statement:
    #: what is assigned: the identifier of a symbol computed here, or an array (indexed [j], or
    #: [0] for size 1)
    lhs: str
    op: str  # "=" or "+="
    expr: sympy.Expr
    comment: str | None
    #: the number of units it runs over (1: a scalar of the batch row)
    size: Size
    #: the IR symbol it computes, if any
    computes: str | None = None
    #: an array element, not a local
    indexed: bool = False
    phase: int = 0


@dataclass
class KernelLocals:
    """What a kernel defines once at its top for its nests: scratch rows (the arguments of
    reductions, and values that cross from one pass to a later one), reused for every batch
    row, and sizes as numbers of the kernel's dtype (mean() divides by them)."""

    names: KernelNames
    rows: list[tuple[str, Size]] = field(default_factory=list)
    #: the IR symbols of sizes (``Kind.SIZE``) the kernel reads
    sizes: list[str] = field(default_factory=list)

    def scratch(self, hint: str, size: Size) -> str:
        name = self.names.namer.fresh(hint)
        self.rows.append((name, size))
        return name

    def size_value(self, symbol: str) -> str:
        if symbol not in self.sizes:
            self.sizes.append(symbol)
        return self.names.ident[symbol]

    def definitions(self, indent: int) -> list[str]:
        n, pad = self.names, "    " * indent
        d = n.plan.d
        lines = [f"{pad}{n.ident[s]} = {n.dtype}.type({n.size(d.quantities[s].base)})" for s in self.sizes]
        return lines + [f"{pad}{name} = np.empty({n.size(size)}, {n.dtype})" for name, size in self.rows]


class LoopNest:
    def __init__(self, names: KernelNames, rows: dict[str, Row], constants: ConstantNames, local: KernelLocals):
        self.names = names
        self.rows = dict(rows)
        self.constants = constants
        self.local = local
        self.statements: list[Statement] = []
        self.stores: dict[str, Subscript] = {}  # view -> what it views, for rows only written
        self.written: dict[str, str] = {}  # symbol -> the row view a pass stored it in
        #: symbol -> the symbol it is only another name for (``d_c = carry_c``): read that one
        #: instead, unless this nest overwrites it (the carry's row is written back in the same loop)
        self.aliases: dict[str, str] = {}
        #: lines run for a batch row whose sequence has ended before this step, in place of the
        #: nest's statements (which every such row skips)
        self.past_end: list[str] = []

    def size_of(self, expr: sympy.Expr) -> Size:
        d = self.names.plan.d
        return self.canonical(expression_size(expr, d.size, "the kernel", d.spec.requirements))

    def canonical(self, size: Size) -> Size:
        """x's size D where the spec requires it to equal another size: that one, so that both
        run in one pass."""
        for requirement in self.names.plan.d.spec.requirements:
            if size == requirement.sizes[0]:
                return requirement.sizes[1]
        return size

    def compute(self, name: str, expr: sympy.Expr, comment: str | None = None) -> None:
        if isinstance(expr, sympy.Symbol):
            self.aliases[name] = expr.name
        d = self.names.plan.d
        size = self.size_of(expr.args[0]) if isinstance(expr, UnitSum) else self.canonical(d.size(name))
        self.statements.append(Statement(self.names.ident[name], "=", expr, comment, size, computes=name))

    def store(self, view: str, source: Subscript, expr: sympy.Expr, size: Size, op: str = "=") -> None:
        self.stores.setdefault(view, source)
        self.statements.append(Statement(view, op, expr, None, self.canonical(size), indexed=True))
        if isinstance(expr, sympy.Symbol) and op == "=":
            self.written.setdefault(expr.name, view)

    def add_into(self, array: str, expr: sympy.Expr, size: Size) -> None:
        """``array[j] += expr`` for a kernel-local array (a parameter's gradient): a short loop of
        its own after the passes when every vector ``expr`` reads is in a row by then
        (``_deferred``), else in the pass where ``expr`` can be evaluated."""
        self.statements.append(Statement(array, "+=", expr, None, self.canonical(size), indexed=True))

    # -- scheduling ---------------------------------------------------------------------------------
    def _substitute_aliases(self) -> None:
        """Read what an alias stands for instead of copying it, where that is safe: the value is
        a row nobody in this nest overwrites. Their statements are dropped (unless the nest would
        be left with nothing)."""
        written_views = set(self.stores)
        safe: dict[sympy.Symbol, sympy.Symbol] = {}
        computed = {s.computes for s in self.statements}
        for name, same in self.aliases.items():
            row = self.rows.get(same)
            if (row is None and same not in computed) or (row is not None and row[0] in written_views):
                continue
            safe[sympy.Symbol(name, real=True)] = sympy.Symbol(same, real=True)
        if not safe:
            return
        dropped = {s.name for s in safe}
        kept = [s for s in self.statements if s.computes not in dropped]
        if not any(s.computes is not None or s.indexed for s in kept):
            return
        for s in kept:
            s.expr = s.expr.xreplace(safe)
        self.statements = kept
        stored = self.written
        self.written = {k: v for k, v in stored.items() if k not in dropped}
        for name, same in self.aliases.items():
            if name in dropped and name in stored:  # the row an alias was stored in holds its value
                self.written.setdefault(same, stored[name])

    def _schedule(self) -> None:
        """Give every statement its phase: after the reductions it reads (a reduction's value is
        ready in the phase after its pass), and a store that overwrites a row after the last read
        of that row's old value."""
        ready: dict[str, int] = {}  # symbol computed here -> first phase that may read it
        for s in self.statements:
            deps = [ready[x.name] for x in s.expr.free_symbols if x.name in ready]
            s.phase = max(deps, default=0)
            if s.computes is not None:
                ready[s.computes] = s.phase + (1 if isinstance(s.expr, UnitSum) else 0)
        view_of = {name: view for name, (view, _) in self.rows.items()}
        for s in self.statements:
            if s.indexed and s.lhs in self.stores:
                readers = [
                    r.phase for r in self.statements if any(view_of.get(x.name) == s.lhs for x in r.expr.free_symbols)
                ]
                s.phase = max([s.phase, *readers])

    def _share_calls(self) -> bool:
        """A function call (``tanh(...)``) that statements of different passes evaluate becomes a
        statement of its own, computed once in the first pass that can and read from a scratch row
        by the later ones (a pass's own repeats are its block's CSE). Layer-normalised cells need
        this: the derivative of ``tanh(gamma_c * (c - m_c) / s_c + beta_c)`` feeds the adjoint of
        every unit of ``c`` and the reductions before it, three passes apart (lnlstm's backward:
        -20 % of its time). Returns whether any was shared."""
        passes: dict[sympy.Expr, set[tuple[int, Size]]] = {}
        first_reader: dict[sympy.Expr, Statement] = {}
        for s in self.statements:
            for call in _calls(s.expr):
                passes.setdefault(call, set()).add((s.phase, s.size))
                first_reader.setdefault(call, s)
        shared = sorted((c for c, where in passes.items() if len(where) > 1), key=sympy.default_sort_key)
        n = self.names
        for call in shared:  # in canonical order: deterministic names
            key = n.namer.fresh(f"{type(call).__name__.lower()}_value")
            n.ident[key] = key
            readers = {call: sympy.Symbol(key, real=True)}
            for s in self.statements:
                s.expr = s.expr.xreplace(readers)
            first = self.statements.index(first_reader[call])
            self.statements.insert(first, Statement(key, "=", call, None, self.size_of(call), computes=key))
        return bool(shared)

    # -- emission -----------------------------------------------------------------------------------
    def emit(self, out: Source, indent: int, locals_: set[str]) -> None:
        """``locals_``: the IR symbols this nest computes (read as locals, not rows)."""
        del locals_  # the statements say what they compute
        n, j = self.names, self.names.j
        d = n.plan.d
        self._substitute_aliases()
        self._schedule()
        if self._share_calls():
            self._schedule()
        used: set[str] = set()
        for s in self.statements:
            used |= {x.name for x in s.expr.free_symbols}
        reads: dict[str, str] = {}
        scalar_reads: list[str] = []
        views: dict[str, Subscript] = {}
        for name, (view, src) in self.rows.items():
            if name not in used:
                continue
            if d.size(name) == 1:  # one number per batch row: a local, read once
                scalar_reads.append(f"{n.value(name)} = {src.first()}")
                reads[name] = n.value(name)
            else:
                views[view] = src
                reads[name] = f"{view}[{j}]"
        for v in d.spec.vectors:
            reads[v] = f"{n.ident[v]}[0]" if d.size(v) == 1 else f"{n.ident[v]}[{j}]"
        for name in d.of_kind(Kind.SIZE):
            reads[name] = self.local.size_value(name)
        views.update(self.stores)
        self.emit_past_end(out, indent)
        out("continue", indent + 2)
        for view, src in views.items():
            out(f"{view} = {src.view()}", indent + 1)
        for line in scalar_reads:
            out(line, indent + 1)
        deferred = self._emit_phases(out, indent + 1, reads)
        # the additions deferred past the passes (``_deferred``), each a short loop over rows
        reads.update({name: f"{view}[{j}]" for name, view in self.written.items() if d.size(name) != 1})
        printer = NumbaPrinter(reads, self.constants)
        for s in deferred:
            out(f"for {j} in range({n.size(s.size)}):", indent + 1)
            out(f"{s.lhs}[{j}] += {printer.doprint(s.expr)}", indent + 2)

    def emit_past_end(self, out: Source, indent: int) -> None:
        """The loop over the batch rows and its branch for the rows past their length (all of a
        nest with nothing else to do)."""
        n = self.names
        out(f"for {n.b} in range({n.lo}, {n.hi}):", indent)
        out(f"if {n.t} >= {n.lengths}[{n.b}]:", indent + 1)
        for line in self.past_end:
            out(line, indent + 2)

    def _emit_phases(self, out: Source, indent: int, reads: dict[str, str]) -> list[Statement]:
        """The passes; returns the additions deferred past them, with ``reads`` saying where
        their values are."""
        n, j = self.names, self.names.j
        # symbol -> (phase, size) of the pass computing it; a reduction's value is a scalar
        computed_in: dict[str, tuple[int, Size]] = {
            s.computes: (s.phase, 1 if isinstance(s.expr, UnitSum) else s.size)
            for s in self.statements
            if s.computes is not None
        }
        # values read in a later pass than their own: from the row their pass stored them in, or a scratch row
        stored_in = {
            s.expr.name: s.lhs
            for s in self.statements
            if s.indexed
            and s.op == "="
            and isinstance(s.expr, sympy.Symbol)
            and s.lhs in self.stores
            and computed_in.get(s.expr.name, (None,))[0] == s.phase
        }
        crossing: dict[str, str] = {}
        for s in self.statements:
            for x in sorted(s.expr.free_symbols, key=lambda symbol: symbol.name):
                home = computed_in.get(x.name)
                if home is None or home[1] == 1 or (home[0], home[1]) == (s.phase, s.size):
                    continue
                if x.name not in crossing:
                    crossing[x.name] = stored_in.get(x.name) or self.local.scratch(
                        f"{n.ident[x.name]}_scratch", home[1]
                    )
        deferred = self._deferred(computed_in, crossing, stored_in)
        later = {id(s) for s in deferred}
        phases = sorted({s.phase for s in self.statements})
        for phase in phases:
            here = [s for s in self.statements if s.phase == phase and id(s) not in later]
            scalars = [s for s in here if s.size == 1]
            if scalars:
                self._block(out, indent, scalars, reads, scalar=True)
            sizes = list(dict.fromkeys(s.size for s in here if s.size != 1))
            for size in sizes:
                loop = [s for s in here if s.size == size]
                sums: list[tuple[str, str]] = []
                body: list[Statement] = []
                for s in loop:
                    if isinstance(s.expr, UnitSum):
                        argument = s.expr.args[0]
                        row = self._row_of(argument, crossing, stored_in, size)
                        if row is None:
                            row = self.local.scratch(f"{s.lhs}_terms", size)
                            body.append(Statement(row, "=", argument, s.comment, size, indexed=True, phase=phase))
                        sums.append((s.lhs, row))
                        continue
                    body.append(s)
                    if s.computes in crossing and crossing[s.computes] not in self.stores:
                        target = crossing[s.computes]
                        body.append(
                            Statement(target, "=", sympy.Symbol(s.computes, real=True), None, size, indexed=True)
                        )
                loop_reads = dict(reads)
                for name, (p, sz) in computed_in.items():
                    if sz != 1 and (p, sz) != (phase, size) and name in crossing:
                        loop_reads[name] = f"{crossing[name]}[{j}]"
                    elif sz != 1 and (p, sz) == (phase, size):
                        loop_reads[name] = n.ident[name]
                if body:
                    out(f"for {j} in range({n.size(size)}):", indent)
                    self._block(out, indent + 1, body, loop_reads, scalar=False)
                for lhs, row in sums:
                    out(f"{lhs} = unit_sum({row})", indent)
                    reads[self._computed_name(lhs)] = lhs
        # the deferred additions read the rows their values are in
        rows = {**crossing, **stored_in}
        reads.update(
            {name: f"{rows[name]}[{j}]" for name, (_, size) in computed_in.items() if size != 1 and name in rows}
        )
        return deferred

    def _deferred(self, computed_in, crossing, stored_in) -> list[Statement]:
        """The ``add_into`` statements that can run as loops of their own after the passes: those
        whose vectors are all in rows by then (scratch rows of values that cross passes, rows
        stored anyway, rows this nest does not overwrite) and that call no function (which the
        loop would evaluate again). A pass that writes fewer rows needs fewer runtime overlap
        checks before LLVM's vector loop; lnlstm's backward adds twelve gradients in its widest
        pass, and its backward_steps took 1.86 ms instead of 1.26 at (T, B, H) = (100, 16, 64)."""
        d = self.names.plan.d
        overwritten = set(self.stores)
        out = []
        for s in self.statements:
            if s.op != "+=" or s.lhs in self.stores or s.size == 1 or _calls(s.expr):
                continue
            in_rows = True
            for x in s.expr.free_symbols:
                if x.name in computed_in:
                    in_rows &= computed_in[x.name][1] == 1 or x.name in crossing or x.name in stored_in
                elif x.name in self.rows and d.size(x.name) != 1:
                    in_rows &= self.rows[x.name][0] not in overwritten
            if in_rows:
                out.append(s)
        return out

    def _computed_name(self, lhs: str) -> str:
        return next(s.computes for s in self.statements if s.lhs == lhs and s.computes is not None)

    def _row_of(self, argument, crossing, stored_in, size) -> str | None:
        """A row already holding all units of a reduction's argument, if there is one."""
        if not isinstance(argument, sympy.Symbol):
            return None
        name = argument.name
        if name in self.rows and self.names.plan.d.size(name) == size:
            return self.rows[name][0]
        if name in stored_in:
            return stored_in[name]
        if name in crossing:  # kept in a scratch row for a later pass anyway
            return crossing[name]
        return None

    def _block(self, out: Source, indent: int, statements: list[Statement], reads, scalar: bool) -> None:
        n = self.names
        index = "0" if scalar else n.j
        lines = []
        for s in statements:
            lhs = f"{s.lhs}[{index}]" if s.indexed else s.lhs
            lines.append((lhs, s.op, s.expr, s.comment))
        scalar_locals = {s.computes: n.ident[s.computes] for s in statements if s.computes is not None}
        printer_reads = dict(reads)
        printer_reads.update(scalar_locals)
        out.block(lines, NumbaPrinter(printer_reads, self.constants), indent, n.temporaries())
        if scalar:
            reads.update(scalar_locals)


def _calls(expr: sympy.Expr) -> set[sympy.Expr]:
    """The function applications in ``expr`` (a unit sum is a pass's end, not a call)."""
    return {f for f in expr.atoms(sympy.Function) if not isinstance(f, UnitSum)}
