"""Stage 3b: ``Derivation`` -> the source text of a Numba kernel module.

The kernels follow the standard CPU recipe: the input projection of all time steps is one GEMM;
each step runs one concatenated GEMM per operand (e.g. ``[R_i; R_f; R_g; R_o] h_{t-1}``) into a
preallocated buffer, then one fused elementwise loop; the backward stores the adjoints of all
products over time and forms the weight gradients with one GEMM each after the recurrence.

Everything this module writes is deterministic: symbols are sorted, CSE runs in canonical order,
and nothing iterates over a set while emitting.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from sympy.printing.precedence import precedence
from sympy.printing.printer import Printer

from . import functions as fn
from .derive import OUTPUT_GRAD, Derivation, Product, carry_name, gemm_t_name
from .spec import PREV_SUFFIX
from .version import __version__

#: SymPy function class -> the name of its implementation in ``symlstm.kernel_math``
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
        """The (B, in) array a GEMM multiplies at step t, or all T of them as (T, B, in)."""
        state = operand[: -len(PREV_SUFFIX)] if operand.endswith(PREV_SUFFIX) else operand
        if state in self.d.spec.states:  # seq[t] is the state at t-1, seq[t + 1] the one at t
            if operand.endswith(PREV_SUFFIX):
                return f"{self.seq(state)}[:T]" if all_steps else f"{self.seq(state)}[t]"
            return f"{self.seq(state)}[1:]" if all_steps else f"{self.seq(state)}[t + 1]"
        return self.keep(operand) if all_steps else f"{self.keep(operand)}[t]"


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
                rows[name] = (view, f"{layout.proj(operand)}[b, {k}]")
        elif q.kind in ("value", "preact"):
            if name in d.spec.states:
                rows[name] = (view, f"{layout.seq(name)}[t + 1, b]")
            elif name in layout.stored:
                rows[name] = (view, f"{layout.keep(name)}[t, b]")
            else:
                rows[name] = (view, f"buf_{name}[b]")
    return rows


class _LoopNest:
    """One ``for b: for j:`` nest of a step: row views, then the elementwise statements."""

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
        out("for b in range(B):", indent)
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


def emit_forward(layout: Layout, out: _Emitter) -> None:
    d = layout.d
    spec = d.spec
    vectors = list(spec.vectors)
    mats = [layout.matrix_arg(op, True) for op in layout.groups]
    states0 = [f"{s}0" for s in spec.states]
    out("@numba.njit(cache=True, error_model=\"numpy\")")
    out(f"def forward(x, {', '.join(mats + vectors + states0)}):")
    out('"""Run the cell over a whole sequence; returns the arrays the backward needs."""', 1)
    out("T, B, D = x.shape", 1)
    out(f"H = {states0[0]}.shape[1]", 1)
    out("dtype = x.dtype", 1)
    constants: dict[float, str] = {}
    constants_index = len(out.lines)
    x_group = layout.groups["x"]
    out(f"# Input projection of all T steps at once: one GEMM, (T*B, D) @ (D, {group_width(len(x_group))}).", 1)
    out(f"{layout.proj('x')} = np.dot(x.reshape(T * B, D), {layout.matrix_arg('x', True)})"
        f".reshape(T, B, {len(x_group)}, H)", 1)
    for s in spec.states:
        out(f"{layout.seq(s)} = np.empty((T + 1, B, H), dtype)", 1)
        out(f"{layout.seq(s)}[0] = {s}0", 1)
    for name in layout.stored + layout.kept_products:
        out(f"{layout.keep(name)} = np.empty((T, B, H), dtype)", 1)
    for operand, products in layout.groups.items():
        if operand != "x":
            out(f"{layout.proj(operand)} = np.empty((B, {len(products)}, H), dtype)", 1)
    by_level = _split_levels(d, d.forward)
    crossing = _crossing_values(d, by_level, layout)
    for name in crossing:
        out(f"buf_{name} = np.empty((B, H), dtype)", 1)
    out("for t in range(T):", 1)
    for level in sorted(by_level):
        for operand, products in layout.groups.items():
            if operand != "x" and products[0].stage == level:
                out(f"np.dot({layout.operand_source(operand)}, {layout.matrix_arg(operand, True)}, "
                    f"{layout.proj(operand)}.reshape(B, {group_width(len(products))}))", 2)
        body = by_level[level]
        nest = _LoopNest(_rows(layout, {a.name for a in body}, backward=False), constants)
        nest.statements = [(a.name, "=", a.expr) for a in body]
        for a in body:
            if a.name in spec.states:
                nest.store(f"{a.name}__row", f"{layout.seq(a.name)}[t + 1, b]", a.target)
            if a.name in layout.stored:
                nest.store(f"{a.name}__row", f"{layout.keep(a.name)}[t, b]", a.target)
            if a.name in crossing:
                nest.store(f"{a.name}__row", f"buf_{a.name}[b]", a.target)
        for name in layout.kept_products:
            if d.levels[name] == level:
                nest.store(f"{name}__kept", f"{layout.keep(name)}[t, b]", sympy.Symbol(name, real=True))
        nest.emit(out, 2, spec.vectors)
    saved = layout.saved()
    out(f"return ({saved[0]},)" if len(saved) == 1 else f"return ({', '.join(saved)})", 1)
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
    mats = [layout.matrix_arg(op, False) for op in layout.groups]
    dstates = [f"d{s}_last" for s in spec.states]
    out("@numba.njit(cache=True, error_model=\"numpy\")")
    out(f"def backward(x, {', '.join(mats + vectors + layout.saved() + ['dys'] + dstates)}):")
    out('"""Backpropagate through the whole sequence; returns dx, the gradients and dstate0."""', 1)
    out("T, B, D = x.shape", 1)
    out("H = dys.shape[2]", 1)
    out("dtype = x.dtype", 1)
    constants: dict[float, str] = {}
    constants_index = len(out.lines)
    for v in vectors:
        out(f"grad_{v} = np.zeros(H, dtype)", 1)
    for s in spec.states:
        out(f"{carry_name(s)} = d{s}_last.copy()", 1)
    buffers = []
    for operand, products in layout.groups.items():
        buf = layout.delta_buffer[operand]
        if buf not in buffers:
            buffers.append(buf)
            out(f"{buf} = np.empty((T, B, {len(products)}, H), dtype)", 1)
    for operand in layout.groups:
        if operand != "x" and not _gemm_is_carry_only(d, operand):
            out(f"{gemm_t_name(operand)} = np.empty((B, H), dtype)", 1)

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
        out(f"buf_{name} = np.empty((B, H), dtype)", 1)

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
                rows[name] = (f"{name}__row", f"buf_{name}[b]")
        for operand in layout.groups:
            rows[gemm_t_name(operand)] = (f"{gemm_t_name(operand)}__row", f"{gemm_t_name(operand)}[b]")
        nest = _LoopNest(rows, constants)
        nest.statements = [(a.name, "=", a.expr) for a in body]
        for a in body:
            if a.name in crossing:
                nest.store(f"{a.name}__row", f"buf_{a.name}[b]", a.target)
        for operand, products in layout.groups.items():
            buf = layout.delta_buffer[operand]
            if buf != "delta_" + operand:
                continue  # shares the buffer of an earlier group with the same adjoints
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
        for operand, products in layout.groups.items():
            if operand == "x" or products[0].stage != level:
                continue
            src = f"{layout.delta_buffer[operand]}[t].reshape(B, {group_width(len(products))})"
            if operand.endswith(PREV_SUFFIX):
                state = operand[: -len(PREV_SUFFIX)]
                if _gemm_is_carry_only(d, operand):
                    out(f"np.dot({src}, {layout.matrix_arg(operand, False)}, {carry_name(state)})", 2)
                else:
                    out(f"np.dot({src}, {layout.matrix_arg(operand, False)}, {gemm_t_name(operand)})", 2)
                    out(f"{carry_name(state)} += {gemm_t_name(operand)}", 2)
            else:
                out(f"np.dot({src}, {layout.matrix_arg(operand, False)}, {gemm_t_name(operand)})", 2)

    out("# Weight gradients and dx: one GEMM each over all steps, after the recurrence.", 1)
    grad_mats = []
    for operand, products in layout.groups.items():
        width = group_width(len(products))
        flat = f"{layout.delta_buffer[operand]}.reshape(T * B, {width})"
        if operand == "x":
            src = "x.reshape(T * B, D)"
        else:
            src = f"{layout.operand_source(operand, all_steps=True)}.reshape(T * B, H)"
        name = f"grad_{layout.matrix_arg(operand, False)}"
        grad_mats.append(name)
        out(f"{name} = np.dot({flat}.T, {src})", 1)
    x_flat = f"{layout.delta_buffer['x']}.reshape(T * B, {group_width(len(layout.groups['x']))})"
    out(f"dx = np.dot({x_flat}, {layout.matrix_arg('x', False)}).reshape(T, B, D)", 1)
    results = ["dx"] + grad_mats + [f"grad_{v}" for v in vectors] + [carry_name(s) for s in spec.states]
    out(f"return {', '.join(results)}", 1)
    out.constants_at(constants_index, constants)


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
    out("import math")
    out()
    out("import numba")
    out("import numpy as np")
    out()
    helpers = helpers_used(exprs)
    if helpers:
        out(f"from symlstm.kernel_math import {', '.join(helpers)}")
        out()
    out(f"GENERATOR_VERSION = {__version__!r}")
    out(f"SPEC_NAME = {spec.name!r}")
    out(f"SPEC_SHA256 = {spec.sha256!r}")
    out(f"STATES = {spec.states!r}")
    out(f"VECTORS = {tuple(spec.vectors)!r}")
    out("#: operand -> the matrices stacked (in this order) into its concatenated GEMM")
    groups = tuple((op, tuple(p.matrix for p in ps)) for op, ps in layout.groups.items())
    out(f"MATRIX_GROUPS = {groups!r}")
    out(f"SAVED = {tuple(layout.saved())!r}")
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
