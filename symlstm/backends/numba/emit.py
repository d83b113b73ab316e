"""Stage 3b: ``Derivation`` -> the source text of a Numba kernel module.

The kernels follow the standard CPU recipe: the input projection of all time steps is one GEMM;
each step runs one concatenated GEMM per operand (e.g. ``[R_i; R_f; R_g; R_o] h_{t-1}``) into a
preallocated buffer, then one fused elementwise loop; the backward stores the adjoints of all
products over time and forms the weight gradients with one GEMM each after the recurrence.

The recurrences (``forward_steps``, ``backward_steps``) run on a range ``lo:hi`` of batch rows,
since the rows of a batch are independent: the runtime runs one range per core, each on its own
thread (the kernels release the GIL) with single-threaded BLAS, so the steps need no barrier. The
runtime allocates the big arrays with NumPy (``forward_buffers``, ``backward_buffers``) and the
kernels fill them; memory that Numba allocates in a kernel is fresh pages every call.

Everything this module writes is deterministic: symbols are sorted, CSE runs in canonical order,
and nothing iterates over a set while emitting.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from sympy.printing.precedence import precedence
from sympy.printing.printer import Printer

from symlstm.lang import primitives as fn
from symlstm.ir.derive import OUTPUT_GRAD, Derivation, Product, carry_name, gemm_t_name
from symlstm.lang.spec import PREV_SUFFIX
from symlstm.version import __version__

#: SymPy function class -> the name of its implementation in ``symlstm.backends.numba.kernel_math``
HELPERS: dict[type, str] = {
    fn.Sigmoid: "sigmoid", fn.Tanh: "tanh", fn.Relu: "relu", fn.Exp: "exp", fn.Softsign: "softsign",
    fn.HardSigmoid: "hard_sigmoid", fn.Positive: "positive", fn.HardSigmoidSlope: "hard_sigmoid_slope",
}


class CodegenError(Exception):
    """The derivation contains something the kernel printer cannot express."""


class NumbaPrinter(Printer):
    """Prints one elementwise SymPy expression as scalar Python for a Numba loop body.

    Strict: a node type without a ``_print_<Class>`` method raises, naming it.
    """

    printmethod = "_numba_kernel"

    def __init__(self, reads: dict[str, str], constants: dict[float, str]):
        super().__init__()
        self.reads = reads  # symbol name -> code that reads it (an array element or a local)
        self.constants = constants  # value -> name of a constant made in the kernel's dtype

    def number(self, value: float) -> str:
        """A named constant of the kernel's dtype: a float literal would promote float32 math."""
        value = float(value)
        if value not in self.constants:
            known = {0.0: "zero", 1.0: "one", 2.0: "two", 0.5: "half"}
            self.constants[value] = known.get(value, f"const_{len(self.constants)}")
        return self.constants[value]

    def emptyPrinter(self, expr):
        raise CodegenError(f"the kernel printer does not support {type(expr).__name__}: {expr}")

    def paren(self, expr, level: int) -> str:
        text = self._print(expr)
        return f"({text})" if precedence(expr) < level else text

    def _print_Symbol(self, expr):
        return self.reads.get(expr.name, expr.name)

    def _print_Integer(self, expr):
        return self.number(expr.p)

    def _print_int(self, expr):  # cse may hand back a plain 0
        return self.number(expr)

    def _print_Float(self, expr):
        return self.number(expr)

    def _print_Rational(self, expr):
        return self.number(expr.p / expr.q)

    def _print_Add(self, expr):
        out = ""
        for k, term in enumerate(expr.as_ordered_terms()):
            if term.could_extract_minus_sign():
                out += (" - " if k else "-") + self.paren(-term, precedence(expr) + 1)
            else:
                out += (" + " if k else "") + self.paren(term, precedence(expr))
        return out

    def _print_Mul(self, expr):
        if expr.could_extract_minus_sign():
            return "-" + self.paren(-expr, precedence(expr) + 1)
        num, den = [], []
        for factor in expr.as_ordered_factors():
            if factor.is_Pow and factor.exp.is_number and factor.exp < 0:
                den.append(factor.base ** (-factor.exp))
            else:
                num.append(factor)
        level = precedence(expr)
        text = " * ".join(self.paren(f, level) for f in num) or self.number(1)
        if den:
            denominator = sympy.Mul(*den)
            text += " / " + self.paren(denominator, level + 1)
        return text

    def _print_Pow(self, expr):
        if expr.exp.is_number and expr.exp < 0:
            return f"{self.number(1)} / " + self.paren(expr.base ** (-expr.exp), precedence(expr) + 1)
        if expr.exp == sympy.Rational(1, 2):
            return f"np.sqrt({self._print(expr.base)})"
        exponent = expr.exp
        text = str(int(exponent)) if exponent.is_Integer else self.number(exponent)
        return f"{self.paren(expr.base, precedence(expr) + 1)}**{text}"

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_Function(self, expr):
        if type(expr) not in HELPERS:
            raise CodegenError(f"the kernel printer does not support the function {type(expr).__name__}")
        return f"{HELPERS[type(expr)]}({self._print(expr.args[0])})"


def helpers_used(exprs) -> list[str]:
    names = set()
    for e in exprs:
        for node in sympy.preorder_traversal(e):
            if type(node) in HELPERS:
                names.add(HELPERS[type(node)])
    return [name for name in HELPERS.values() if name in names]


@dataclass
class Layout:
    """Buffers and argument order shared by the forward and backward kernels and the runtime."""

    d: Derivation
    groups: dict[str, tuple[Product, ...]] = field(init=False)
    stored: tuple[str, ...] = field(init=False)  # forward values (non-state) kept for the backward
    kept_products: tuple[str, ...] = field(init=False)  # in-step product values kept for the backward
    keep_input_projection: bool = field(init=False)
    delta_buffer: dict[str, str] = field(init=False)  # operand -> buffer of its products' adjoints

    def __post_init__(self):
        d = self.d
        self.groups = d.operand_groups()
        needed = set()
        for e in [a.expr for a in d.backward] + list(d.prev_adjoints.values()) + list(d.param_grads.values()):
            needed |= {s.name for s in e.free_symbols}
        forward_kinds = {"value", "preact"}
        self.stored = tuple(a.name for a in d.forward
                            if a.name not in d.spec.states
                            and (a.name in self.groups
                                 or (a.name in needed and d.quantities[a.name].kind in forward_kinds)))
        self.kept_products = tuple(p.name for p in d.products if p.stage >= 0 and p.name in needed)
        self.keep_input_projection = any(p.stage < 0 and p.name in needed for p in d.products)
        self.delta_buffer = {}
        seen: dict[tuple[str, ...], str] = {}
        for operand, products in self.groups.items():
            key = tuple(d.product_deltas[p.name].name for p in products)
            self.delta_buffer[operand] = seen.setdefault(key, "delta_" + operand)

    # names of kernel arguments and buffers
    @staticmethod
    def matrix_arg(operand: str, transposed: bool) -> str:
        return f"M_{operand}" + ("_T" if transposed else "")

    @staticmethod
    def proj(operand: str) -> str:
        return "proj_" + operand

    @staticmethod
    def seq(state: str) -> str:
        return "seq_" + state

    @staticmethod
    def keep(name: str) -> str:
        return "keep_" + name

    def group_index(self, product: str) -> tuple[str, int]:
        for operand, products in self.groups.items():
            for k, p in enumerate(products):
                if p.name == product:
                    return operand, k
        raise KeyError(product)

    def saved(self) -> list[str]:
        """Arrays the forward returns and the backward takes, in order."""
        out = [self.seq(s) for s in self.d.spec.states]
        out += [self.keep(n) for n in self.stored + self.kept_products]
        if self.keep_input_projection:
            out.append(self.proj("x"))
        return out

    def operand_source(self, operand: str, all_steps: bool = False) -> str:
        """The (rows, in) block a GEMM multiplies at step t, or all T steps as (T, B, in)."""
        state = operand[: -len(PREV_SUFFIX)] if operand.endswith(PREV_SUFFIX) else operand
        if state in self.d.spec.states:  # seq[t] is the state at t-1, seq[t + 1] the one at t
            if operand.endswith(PREV_SUFFIX):
                return f"{self.seq(state)}[:T]" if all_steps else f"{self.seq(state)}[t, lo:hi]"
            return f"{self.seq(state)}[1:]" if all_steps else f"{self.seq(state)}[t + 1, lo:hi]"
        return self.keep(operand) if all_steps else f"{self.keep(operand)}[t, lo:hi]"

    def forward_outputs(self) -> list[str]:
        """Arrays ``forward_steps`` fills: the state sequences, then the stored values."""
        return [self.seq(s) for s in self.d.spec.states] + [self.keep(n) for n in self.stored + self.kept_products]

    @property
    def step_groups(self) -> dict[str, tuple[Product, ...]]:
        """The operand groups multiplied at every step: all but the input's."""
        return {op: ps for op, ps in self.groups.items() if op != "x"}

    def owns_delta_buffer(self, operand: str) -> bool:
        """False when the group shares the adjoint buffer of an earlier group (same adjoints)."""
        return self.delta_buffer[operand] == "delta_" + operand

    def delta_buffers(self) -> list[tuple[str, int]]:
        """(name, number of products) of each buffer of product adjoints, in first-use order."""
        return [(self.delta_buffer[op], len(ps)) for op, ps in self.groups.items() if self.owns_delta_buffer(op)]


def group_width(n: int) -> str:
    return "H" if n == 1 else f"{n} * H"


class _Emitter:
    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, text: str = "", indent: int = 0) -> None:
        self.lines.append(("    " * indent + text) if text else "")

    def constants_at(self, index: int, constants: dict[float, str], indent: int = 1) -> None:
        """Insert, at ``index``, the definitions of the constants a kernel body used."""
        lines = [f"{'    ' * indent}{name} = dtype.type({value!r})" for value, name in constants.items()]
        self.lines[index:index] = lines

    def block(self, statements: list[tuple[str, str, sympy.Expr]], printer: NumbaPrinter, indent: int) -> None:
        """Emit ``lhs op expr`` lines, in order, after canonical common-subexpression elimination.

        Each CSE temporary is emitted just before the first statement that uses it; its symbols
        are then all defined, since it is a piece of that statement.
        """
        temps = sympy.numbered_symbols("tmp")
        replacements, reduced = sympy.cse([e for _, _, e in statements], symbols=temps, order="canonical")
        pending = dict(replacements)
        emitted: set[sympy.Symbol] = set()

        def emit_temps(expr) -> None:
            for sym in sorted(getattr(expr, "free_symbols", ()), key=lambda s: s.name):
                if sym in pending and sym not in emitted:
                    emit_temps(pending[sym])
                    emitted.add(sym)
                    self(f"{sym.name} = {printer.doprint(pending[sym])}", indent)

        for (lhs, op, _), expr in zip(statements, reduced):
            emit_temps(expr)
            self(f"{lhs} {op} {printer.doprint(expr)}", indent)


def _rows(layout: Layout, defined_here: set[str], backward: bool) -> dict[str, tuple[str, str]]:
    """For each symbol a loop body reads and does not compute: (row view, what it views).

    Loop bodies index 1-d row views bound before the ``j`` loop (``c_prev__row[j]``), never
    ``seq_c[t, b, j]``: LLVM does not vectorize a loop that writes into one array at offsets
    it cannot compare, and rows of distinct names only need runtime overlap checks. Concatenated
    GEMM results are kept as (..., n, H) blocks, so every row is a contiguous ``[t, b, k]`` view
    with unit stride known to the compiler (a sliced row ``[t, b, k*H:(k+1)*H]`` is not).
    """
    d = layout.d
    rows: dict[str, tuple[str, str]] = {}
    for name, q in d.quantities.items():
        if name in defined_here:
            continue
        view = f"{name}__row"
        if q.kind == "prev":
            rows[name] = (view, f"{layout.seq(q.base)}[t, b]")
        elif q.kind == "product":
            operand, k = layout.group_index(name)
            if operand == "x":
                rows[name] = (view, f"{layout.proj('x')}[t, b, {k}]")
            elif backward:
                rows[name] = (view, f"{layout.keep(name)}[t, b]")
            else:
                rows[name] = (view, f"{layout.proj(operand)}[b - lo, {k}]")
        elif q.kind in ("value", "preact"):
            if name in d.spec.states:
                rows[name] = (view, f"{layout.seq(name)}[t + 1, b]")
            elif name in layout.stored:
                rows[name] = (view, f"{layout.keep(name)}[t, b]")
            else:
                rows[name] = (view, f"buf_{name}[b - lo]")
    return rows


class _LoopNest:
    """One ``for b in range(lo, hi): for j:`` nest of a step: row views, then the elementwise
    statements. Scratch arrays of the row range are indexed ``[b - lo]``."""

    def __init__(self, rows: dict[str, tuple[str, str]], constants: dict[float, str]):
        self.rows = dict(rows)
        self.constants = constants
        self.statements: list[tuple[str, str, sympy.Expr]] = []
        self.stores: dict[str, str] = {}  # view -> what it views, for rows only written
        #: ``target[j] += expr`` over rows only, each run as a short loop of its own after the main
        #: one: a loop with fewer arrays needs fewer overlap checks, and so still vectorizes
        self.accumulations: list[tuple[str, sympy.Expr]] = []
        self.written: dict[str, str] = {}  # symbol -> the row view the main loop stored it in

    def store(self, view: str, source: str, expr: sympy.Expr, op: str = "=") -> None:
        self.stores.setdefault(view, source)
        self.statements.append((f"{view}[j]", op, expr))

    def emit(self, out: "_Emitter", indent: int, params: tuple[str, ...]) -> None:
        reads = {name: f"{view}[j]" for name, (view, _) in self.rows.items()}
        reads.update({p: f"{p}[j]" for p in params})
        used = set()
        for expr in [e for _, _, e in self.statements] + [e for _, e in self.accumulations]:
            used |= {s.name for s in getattr(expr, "free_symbols", ())}
        views = {view: src for name, (view, src) in self.rows.items() if name in used}
        views.update(self.stores)
        out("for b in range(lo, hi):", indent)
        for view, src in views.items():
            out(f"{view} = {src}", indent + 1)
        out("for j in range(H):", indent + 1)
        out.block(self.statements, NumbaPrinter(reads, self.constants), indent + 2)
        reads.update({name: f"{view}[j]" for name, view in self.written.items()})
        for target, expr in self.accumulations:
            out("for j in range(H):", indent + 1)
            out(f"{target}[j] += {NumbaPrinter(reads, self.constants).doprint(expr)}", indent + 2)


def _split_levels(d: Derivation, assignments) -> dict[int, list]:
    levels: dict[int, list] = {}
    for a in assignments:
        levels.setdefault(d.levels[a.name], []).append(a)
    return levels


#: nogil: the runtime runs ranges of rows on threads of their own. contract: a * b + c may become
#: one fused multiply-add (one rounding instead of two), which halves the cost of the polynomials
#: in kernel_math; no other fast-math licence (no reassociation, NaN and inf stay IEEE).
KERNEL = '@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})'


def _empty(shape: str, allocate: str = "np.empty") -> str:
    return f"{allocate}(({shape}), dtype)"


def _tuple(items: list[str]) -> str:
    """Python source of a tuple of ``items``: ``()``, ``(a,)`` or ``(a, b)``."""
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def emit_forward(layout: Layout, out: _Emitter) -> None:
    d = layout.d
    spec = d.spec
    x_width = len(layout.groups["x"])
    step_groups = layout.step_groups
    out("def forward_buffers(T, B, H, dtype, empty=np.empty):")
    out('"""Uninitialised arrays of one forward pass, by name, from ``empty``: the input projection', 1)
    out('and what forward_steps fills (state sequences with the initial state at index 0, stored values)."""', 1)
    out("return {", 1)
    out(f'"{layout.proj("x")}": {_empty(f"T, B, {x_width}, H", "empty")},', 2)
    for name in layout.forward_outputs():
        out(f'"{name}": {_empty("T + 1, B, H" if name.startswith("seq_") else "T, B, H", "empty")},', 2)
    out("}", 1)
    out()
    out()
    out(KERNEL)
    out(f"def forward_inputs(lo, hi, x, {layout.matrix_arg('x', True)}, {layout.proj('x')}):")
    out(f'"""The input projection of all T steps at once, for the rows lo:hi of the (T*B, D) inputs:', 1)
    out(f'one GEMM, (hi - lo, D) @ (D, {group_width(x_width)})."""', 1)
    out("T, B, D = x.shape", 1)
    out(f"np.dot(x.reshape(T * B, D)[lo:hi], {layout.matrix_arg('x', True)}, "
        f"{layout.proj('x')}.reshape(T * B, {layout.matrix_arg('x', True)}.shape[1])[lo:hi])", 1)
    out()
    out()
    mats = [layout.matrix_arg(op, True) for op in step_groups]
    args = ["lo", "hi", layout.proj("x")] + mats + list(spec.vectors) + layout.forward_outputs()
    out(KERNEL)
    out(f"def forward_steps({', '.join(args)}):")
    out('"""Run all T steps for the batch rows lo:hi; the state sequences hold the initial states', 1)
    out('at index 0. Writes only those rows, so disjoint ranges can run at the same time."""', 1)
    out(f"T = {layout.proj('x')}.shape[0]", 1)
    out(f"H = {layout.proj('x')}.shape[3]", 1)
    out("rows = hi - lo", 1)
    out(f"dtype = {layout.proj('x')}.dtype", 1)
    constants: dict[float, str] = {}
    constants_index = len(out.lines)
    for operand, products in step_groups.items():
        out(f"{layout.proj(operand)} = {_empty(f'rows, {len(products)}, H')}", 1)
    by_level = _split_levels(d, d.forward)
    crossing = _crossing_values(d, by_level, layout)
    for name in crossing:
        out(f"buf_{name} = {_empty('rows, H')}", 1)
    out("for t in range(T):", 1)
    for level in sorted(by_level):
        for operand, products in step_groups.items():
            if products[0].stage == level:
                out(f"step_gemm({layout.operand_source(operand)}, {layout.matrix_arg(operand, True)}, "
                    f"{layout.proj(operand)}.reshape(rows, {group_width(len(products))}))", 2)
        body = by_level[level]
        nest = _LoopNest(_rows(layout, {a.name for a in body}, backward=False), constants)
        nest.statements = [(a.name, "=", a.expr) for a in body]
        for a in body:
            if a.name in spec.states:
                nest.store(f"{a.name}__row", f"{layout.seq(a.name)}[t + 1, b]", a.target)
            if a.name in layout.stored:
                nest.store(f"{a.name}__row", f"{layout.keep(a.name)}[t, b]", a.target)
            if a.name in crossing:
                nest.store(f"{a.name}__row", f"buf_{a.name}[b - lo]", a.target)
        for name in layout.kept_products:
            if d.levels[name] == level:
                nest.store(f"{name}__kept", f"{layout.keep(name)}[t, b]", sympy.Symbol(name, real=True))
        nest.emit(out, 2, spec.vectors)
    out.constants_at(constants_index, constants)


def _crossing_values(d: Derivation, by_level, layout: Layout) -> list[str]:
    """Forward values computed in one loop and read in a later one, with no other home."""
    out = []
    for level, body in sorted(by_level.items()):
        for later_level, later in sorted(by_level.items()):
            if later_level <= level:
                continue
            used = set().union(*(a.expr.free_symbols for a in later))
            for a in body:
                if (sympy.Symbol(a.name, real=True) in used and a.name not in d.spec.states
                        and a.name not in layout.stored and a.name not in out):
                    out.append(a.name)
    return out


def emit_backward(layout: Layout, out: _Emitter) -> None:
    d = layout.d
    spec = d.spec
    vectors = list(spec.vectors)
    step_groups = layout.step_groups
    carries = [carry_name(s) for s in spec.states]
    buffers = layout.delta_buffers()
    out("def backward_buffers(T, B, H, dtype, empty=np.empty):")
    out('"""Uninitialised buffers, from ``empty``, for the adjoints of the products of each operand', 1)
    out('group over all steps: what backward_steps writes and backward_gradients multiplies."""', 1)
    out(f"return {_tuple([_empty(f'T, B, {n}, H', 'empty') for _, n in buffers])}", 1)
    out()
    out()
    mats = [layout.matrix_arg(op, False) for op in step_groups]
    args = ["lo", "hi"] + mats + vectors + layout.saved() + ["dys"] + carries + [b for b, _ in buffers]
    out(KERNEL)
    out(f"def backward_steps({', '.join(args)}):")
    out('"""Backpropagate through all T steps for the batch rows lo:hi. The carries hold dL/d(final', 1)
    out('state) on entry and dL/d(initial state) on return; fills the adjoint buffers. Touches only', 1)
    out('those rows and returns the gradients of the vectors summed over them."""', 1)
    out("T = dys.shape[0]", 1)
    out("H = dys.shape[2]", 1)
    out("rows = hi - lo", 1)
    out("dtype = dys.dtype", 1)
    constants: dict[float, str] = {}
    constants_index = len(out.lines)
    for v in vectors:
        out(f"grad_{v} = np.zeros(H, dtype)", 1)
    for operand in step_groups:
        if not _gemm_is_carry_only(d, operand):
            out(f"{gemm_t_name(operand)} = {_empty('rows, H')}", 1)

    # Which loop computes each backward quantity; adjoints read in another loop need a buffer.
    tail = list(d.prev_adjoints.items())
    grads = [(f"grad_{v}", e) for v, e in d.param_grads.items()]
    by_level = _split_levels(d, d.backward)
    level_of = {a.name: d.levels[a.name] for a in d.backward}
    crossing = []
    for level, body in by_level.items():
        exprs = [a.expr for a in body] + ([e for _, e in tail + grads] if level == 0 else [])
        for s in sorted(set().union(*(e.free_symbols for e in exprs)), key=lambda s: s.name):
            if s.name in level_of and level_of[s.name] != level and s.name not in crossing:
                crossing.append(s.name)
    for name in crossing:
        out(f"buf_{name} = {_empty('rows, H')}", 1)

    out("for t in range(T - 1, -1, -1):", 1)
    for level in sorted(by_level, reverse=True):
        body = by_level[level]
        defined = {a.name for a in body}
        rows = _rows(layout, set(), backward=True)
        rows[OUTPUT_GRAD] = ("dys__row", "dys[t, b]")
        for s in spec.states:
            rows[carry_name(s)] = (f"{carry_name(s)}__row", f"{carry_name(s)}[b]")
        for name in crossing:
            if name not in defined:
                rows[name] = (f"{name}__row", f"buf_{name}[b - lo]")
        for operand in layout.groups:
            rows[gemm_t_name(operand)] = (f"{gemm_t_name(operand)}__row", f"{gemm_t_name(operand)}[b - lo]")
        nest = _LoopNest(rows, constants)
        nest.statements = [(a.name, "=", a.expr) for a in body]
        for a in body:
            if a.name in crossing:
                nest.store(f"{a.name}__row", f"buf_{a.name}[b - lo]", a.target)
        for operand, products in layout.groups.items():
            if not layout.owns_delta_buffer(operand):
                continue  # written through the earlier group that owns the buffer
            buf = layout.delta_buffer[operand]
            for k, p in enumerate(products):
                delta = d.product_deltas[p.name]
                if level_of[delta.name] == level:
                    view = f"{buf}__{delta.name}"
                    if view in nest.stores:  # one adjoint feeding two products of the group
                        view = f"{view}_{k}"
                    nest.store(view, f"{buf}[t, b, {k}]", delta)
                    nest.written.setdefault(delta.name, view)
        if level == 0:  # adjoints of last step's states (the carries) and the parameter gradients
            zero_gemm = {sympy.Symbol(gemm_t_name(op), real=True): 0 for op in layout.groups}
            for state, expr in d.prev_adjoints.items():
                if not _gemm_is_carry_only(d, state + PREV_SUFFIX):
                    nest.store(f"{carry_name(state)}__row", f"{carry_name(state)}[b]",
                               expr.xreplace(zero_gemm))
            for name, e in grads:
                if {s.name for s in e.free_symbols if s.name.startswith("d_")} <= set(nest.written):
                    nest.accumulations.append((name, e))  # reads the adjoint rows just written
                else:
                    nest.statements.append((f"{name}[j]", "+=", e))
        nest.emit(out, 2, spec.vectors)
        # adjoints of this level's GEMM operands, for the loop below
        for operand, products in step_groups.items():
            if products[0].stage != level:
                continue
            src = f"{layout.delta_buffer[operand]}[t, lo:hi].reshape(rows, {group_width(len(products))})"
            if operand.endswith(PREV_SUFFIX):
                state = operand[: -len(PREV_SUFFIX)]
                if _gemm_is_carry_only(d, operand):
                    out(f"step_gemm({src}, {layout.matrix_arg(operand, False)}, {carry_name(state)}[lo:hi])", 2)
                else:
                    out(f"step_gemm({src}, {layout.matrix_arg(operand, False)}, {gemm_t_name(operand)})", 2)
                    _emit_add_rows(out, carry_name(state), gemm_t_name(operand), 2)
            else:
                out(f"step_gemm({src}, {layout.matrix_arg(operand, False)}, {gemm_t_name(operand)})", 2)
    out(f"return {_tuple([f'grad_{v}' for v in vectors])}", 1)
    out.constants_at(constants_index, constants)
    out()
    out()

    grad_mats = [f"grad_{layout.matrix_arg(op, False)}" for op in layout.groups]
    args = ["lo", "hi", "x", layout.matrix_arg("x", False)] + layout.saved() + [b for b, _ in buffers]
    out(KERNEL)
    out(f"def backward_gradients({', '.join(args + ['dx'] + grad_mats)}):")
    out('"""After the recurrence, for the rows lo:hi of the T*B (step, batch row) pairs: dx, and', 1)
    out('the weight gradients summed over those rows. One GEMM each."""', 1)
    out("T, B, D = x.shape", 1)
    out(f"H = {layout.seq(spec.states[0])}.shape[2]", 1)
    for operand, products in layout.groups.items():
        flat = f"{layout.delta_buffer[operand]}.reshape(T * B, {group_width(len(products))})[lo:hi]"
        if operand == "x":
            src = "x.reshape(T * B, D)[lo:hi]"
        else:
            src = f"{layout.operand_source(operand, all_steps=True)}.reshape(T * B, H)[lo:hi]"
        out(f"np.dot({flat}.T, {src}, grad_{layout.matrix_arg(operand, False)})", 1)
    x_flat = f"{layout.delta_buffer['x']}.reshape(T * B, {group_width(len(layout.groups['x']))})[lo:hi]"
    out(f"np.dot({x_flat}, {layout.matrix_arg('x', False)}, dx.reshape(T * B, D)[lo:hi])", 1)


def _emit_add_rows(out: _Emitter, target: str, scratch: str, indent: int) -> None:
    """``target[lo:hi] += scratch`` as a loop over row views: no temporary array."""
    out("for b in range(lo, hi):", indent)
    out(f"{target}__row = {target}[b]", indent + 1)
    out(f"{scratch}__row = {scratch}[b - lo]", indent + 1)
    out("for j in range(H):", indent + 1)
    out(f"{target}__row[j] += {scratch}__row[j]", indent + 2)


def _gemm_is_carry_only(d: Derivation, operand: str) -> bool:
    """True when last step's state enters the next step only through this GEMM."""
    if not operand.endswith(PREV_SUFFIX):
        return False
    adjoint = d.prev_adjoints[operand[: -len(PREV_SUFFIX)]]
    return adjoint == sympy.Symbol(gemm_t_name(operand), real=True)


def emit_module(d: Derivation) -> str:
    """The complete kernel module for one cell, as text."""
    spec = d.spec
    layout = Layout(d)
    out = _Emitter()
    out(f"# Generated by symlstm {__version__} from the spec '{spec.name}' (sha256 {spec.sha256}).")
    out("# Do not edit: change the spec and run `symlstm generate`.")
    out('"""Numba kernels of the cell ' + repr(spec.name) + f": {_docline(spec.title)}")
    out()
    out("One step of the forward pass, as written in the spec:")
    out()
    for eq in spec.equations:
        out(f"    {eq.target} = {_docline(eq.text)}")
    out('"""')
    exprs = [a.expr for a in d.forward] + [a.expr for a in d.backward]
    exprs += list(d.prev_adjoints.values()) + list(d.param_grads.values())
    out("import numba")
    out("import numpy as np")
    out()
    helpers = sorted(helpers_used(exprs) + ["step_gemm"])
    if helpers:
        out(f"from symlstm.backends.numba.kernel_math import {', '.join(helpers)}")
        out()
    out(f"GENERATOR_VERSION = {__version__!r}")
    out(f"SPEC_NAME = {spec.name!r}")
    out(f"SPEC_SHA256 = {spec.sha256!r}")
    out(f"STATES = {spec.states!r}")
    out(f"VECTORS = {tuple(spec.vectors)!r}")
    out("#: operand -> the matrices stacked (in this order) into its concatenated GEMM")
    groups = tuple((op, tuple(p.matrix for p in ps)) for op, ps in layout.groups.items())
    out(f"MATRIX_GROUPS = {groups!r}")
    out("#: arrays forward_steps fills; SAVED is what the backward reads, in its argument order")
    out(f"FORWARD_OUTPUTS = {tuple(layout.forward_outputs())!r}")
    out(f"SAVED = {tuple(layout.saved())!r}")
    out(f"INPUT_PROJECTION = {layout.proj('x')!r}")
    out()
    out()
    emit_forward(layout, out)
    out()
    out()
    emit_backward(layout, out)
    return "\n".join(out.lines) + "\n"


def _docline(text: str) -> str:
    """Spec text made safe inside a docstring (no quotes or backslashes can end it early)."""
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
