"""One loop nest of a step: ``for b in range(lo, hi):`` row views, then ``for j in range(H):`` the
elementwise statements, then short accumulation loops.

Loop bodies index 1-d row views bound before the ``j`` loop (``c_prev_row[j]``), never
``seq_c[t, b, j]``: LLVM does not vectorize a loop that writes into one array at offsets it cannot
compare, and rows of distinct names only need runtime overlap checks. Concatenated GEMM results
are kept as (..., n, H) blocks, so every row is a contiguous ``[t, b, k]`` view with unit stride
known to the compiler (a sliced row ``[t, b, k*H:(k+1)*H]`` is not).
"""

from __future__ import annotations

import sympy

from symlstm.backends.numba.names import KernelNames
from symlstm.backends.numba.printer import ConstantNames, NumbaPrinter
from symlstm.backends.numba.source import Source
from symlstm.ir.nodes import Kind
from symlstm.lang.sizes import Size

#: (row view, what it views)
Row = tuple[str, str]


def row_sources(names: KernelNames, defined_here: set[str], backward: bool) -> dict[str, Row]:
    """For each IR symbol a loop body may read and does not compute: its row view."""
    plan, n = names.plan, names
    d = plan.d
    t, b, lo = n.t, n.b, n.lo
    rows: dict[str, Row] = {}
    for name, q in d.quantities.items():
        if name in defined_here:
            continue
        if q.kind == Kind.PREV:
            rows[name] = (n.row(name), f"{n.seq[q.base]}[{t}, {b}]")
        elif q.kind == Kind.PRODUCT:
            operand, k = plan.group_index(name)
            if operand == d.input.name:
                rows[name] = (n.row(name), f"{n.proj[operand]}[{t}, {b}, {k}]")
            elif backward:
                if name in plan.kept_products:
                    rows[name] = (n.row(name), f"{n.keep[name]}[{t}, {b}]")
            else:
                rows[name] = (n.row(name), f"{n.proj[operand]}[{b} - {lo}, {k}]")
        elif q.kind.is_forward_value:
            if name in d.spec.states:
                rows[name] = (n.row(name), f"{n.seq[name]}[{t} + 1, {b}]")
            elif name in plan.stored:
                rows[name] = (n.row(name), f"{n.keep[name]}[{t}, {b}]")
            elif name in n.crossing:
                rows[name] = (n.row(name), f"{n.crossing[name]}[{b} - {lo}]")
    return rows


class LoopNest:
    def __init__(self, names: KernelNames, rows: dict[str, Row], constants: ConstantNames, size: Size):
        self.names = names
        self.rows = dict(rows)
        self.constants = constants
        self.size = size
        #: (lhs, op, expr, comment) in order
        self.statements: list[tuple[str, str, sympy.Expr, str | None]] = []
        self.stores: dict[str, str] = {}  # view -> what it views, for rows only written
        #: ``target[j] += expr`` over rows only, each run as a short loop of its own after the main
        #: one: a loop with fewer arrays needs fewer overlap checks, and so still vectorizes
        self.accumulations: list[tuple[str, sympy.Expr]] = []
        self.written: dict[str, str] = {}  # symbol -> the row view the main loop stored it in
        #: symbol -> the symbol it is only another name for (``d_c = carry_c``): read that one
        #: instead, unless this nest overwrites it (the carry's row is written back in the same loop)
        self.aliases: dict[str, str] = {}

    def compute(self, name: str, expr: sympy.Expr, comment: str | None = None) -> None:
        if isinstance(expr, sympy.Symbol):
            self.aliases[name] = expr.name
        self.statements.append((self.names.ident[name], "=", expr, comment))

    def _resolve_aliases(self) -> dict[str, str]:
        """The aliases that can be read in place of a statement: those whose value is not a row
        this nest writes. Their statements are dropped."""
        written_views = set(self.stores)
        safe = {}
        for name, same in self.aliases.items():
            row = self.rows.get(same)
            if row is not None and row[0] in written_views:
                continue  # read before the store overwrites it: keep ``name = same`` as a local
            safe[name] = same
        idents = {self.names.ident[name] for name in safe}
        kept = [s for s in self.statements if not (s[1] == "=" and s[0] in idents)]
        if not kept:  # a loop of nothing but aliases (a value nobody reads): keep its statements
            return {}
        self.statements = kept
        return safe

    def store(self, view: str, source: str, expr: sympy.Expr, op: str = "=") -> None:
        self.stores.setdefault(view, source)
        self.statements.append((f"{view}[{self.names.j}]", op, expr, None))

    def emit(self, out: Source, indent: int, locals_: set[str]) -> None:
        """``locals_``: the IR symbols this nest computes (read as locals, not rows)."""
        n, j = self.names, self.names.j
        reads = {name: f"{view}[{j}]" for name, (view, _) in self.rows.items()}
        reads.update({name: n.ident[name] for name in locals_})
        reads.update({v: f"{n.ident[v]}[{j}]" for v in n.plan.d.spec.vectors})
        aliases = self._resolve_aliases()
        for name, same in aliases.items():
            reads[name] = reads[same]
        used = set()
        for expr in [s[2] for s in self.statements] + [e for _, e in self.accumulations]:
            used |= {s.name for s in getattr(expr, "free_symbols", ())}
        for name, same in reversed(aliases.items()):  # an alias reads what it stands for
            if name in used:
                used.add(same)
        views = {view: src for name, (view, src) in self.rows.items() if name in used}
        views.update(self.stores)
        out(f"for {n.b} in range({n.lo}, {n.hi}):", indent)
        for view, src in views.items():
            out(f"{view} = {src}", indent + 1)
        out(f"for {j} in range({n.size(self.size)}):", indent + 1)
        out.block(self.statements, NumbaPrinter(reads, self.constants), indent + 2, n.temporaries())
        reads.update({name: f"{view}[{j}]" for name, view in self.written.items()})
        for target, expr in self.accumulations:
            out(f"for {j} in range({n.size(self.size)}):", indent + 1)
            out(f"{target}[{j}] += {NumbaPrinter(reads, self.constants).doprint(expr)}", indent + 2)
