"""Read the typeset equations back and run them with NumPy: the test that the text is right.

The printer's output is parsed as a reader would read it, in any notation preset: ``\\mathbf{W}_{i}
\\mathbf{x}_t`` is a matrix times a vector, ``\\odot`` is elementwise, ``\\mathbf{x}_t^{\\top}`` is a
transposed row, ``\\sum_{t=1}^{T}`` sums over time (and the batch), ``t+1`` refers to the next
step, ``\\mathbf{1}^{\\top} v`` sums the units of v (one number per batch row, which broadcasts)
and a bare size name (``H``) is that size's number. Where the notation concatenates (``colah``),
``[a, b]`` stacks two vectors, ``\\cdot`` is a matrix product, a concatenated matrix ``W_f`` is its
blocks side by side (``W_{f,h}`` and ``W_{f,x}``, the spec's ``R_f`` and ``W_f``) and its gradient
is cut into theirs. A composite right operand of a matrix, ``\\mathbf{R}_{n} \\left(\\mathbf{f}_t
\\odot \\mathbf{h}_{t-1}\\right)``, is read as the expression it is, and ``\\delta\\left(\\mathbf{f}_t
\\odot \\mathbf{h}_{t-1}\\right)`` as the adjoint of that expression: the reader checks that it is
an expression the forward lines multiply by a matrix (at any time shift) and keeps its value
under that expression. Where the pre-activations are folded into their activations' lines, the bar
``\\bar{f}_t`` is the argument of the activation in ``f_t``'s line. The vocabulary of symbols
(which string means which vector at which time) is built by asking the printer for every symbol
of the derivation at every time offset; everything else (operators, functions, parentheses,
products and their order) is parsed from the text. The forward lines are then run step by step,
the backward lines from T down to 1 (adjoints at T+1 are zero, and so is any product with one,
whatever else it holds), and the gradient lines summed, with nothing but NumPy; the tests
compare the numbers with the kernels'.
"""

from __future__ import annotations

import re

import numpy as np
from latex_values import AfterTheEnd, Mat, ReadError, RowT, at, evaluate, offset, shift  # noqa: F401 (re-exported)

from symlstm.backends.latex.cellnotation import cell_notation
from symlstm.backends.latex.concat import pairs
from symlstm.backends.latex.equations import backward_lines, forward_lines, gradient_lines
from symlstm.backends.latex.notation import Notation, load_notation
from symlstm.backends.latex.printer import VectorLatexPrinter
from symlstm.ir.derive import Derivation
from symlstm.ir.nodes import Kind
from symlstm.lang.primitives import PRIMITIVES

#: the printer writes a reduction where it is used as 1^T (its argument)
UNIT_SUM = r"\mathbf{1}^{\top}"


#: the kinds of node the parser builds
NODES = frozenset(
    {"sym", "num", "add", "neg", "odot", "jux", "T", "concat", "pow", "div", "sqrt", "abs", "fn", "unit_sum"}
    | {"indicator", "sum"}
)


class Reader:
    def __init__(self, d: Derivation, notation: Notation | str | None = None):
        self.d = d
        self.n = cell_notation(d, load_notation(notation))
        #: concatenated matrices (``[style] concat``) by their gradient key, ``W_f+R_f``
        self.pairs = {pair.key: pair for pair in pairs(d)} if self.n.blocks else {}
        self.atoms: dict[str, tuple] = {}
        #: the composite operands of matrices in the forward lines: shape -> its first time offset
        self.operands: dict[tuple, int] = {}
        self._vocabulary()
        #: what the adjoint template puts before its argument, ``\\delta`` of ``\\delta <x>``
        self.delta_head = self.n.delta("<x>").split("<x>")[0].strip()
        suffix = self.n.style["transpose"].split("<x>")
        self.transpose_suffix = suffix[1]
        if suffix[0]:
            raise ReadError("a transpose template must put <x> first")
        self.functions = self._function_heads()
        self.tokens_fixed = sorted(
            [
                r"\left(",
                r"\right)",
                r"\left[",
                r"\right]",
                "[",
                "]",
                r"\cdot",
                r"\left\lvert",
                r"\right\rvert",
                r"\langle",
                r"\rangle",
                r"\mathbb{1}",
                UNIT_SUM,
                r"\,",
                ",",
                "+",
                "-",
                "<",
                "=",
                r"\sqrt",
                ">",
                self.n.hadamard,
                self.n.sum,
                self.transpose_suffix,
                r"\tfrac",
                self.n.delta("<x>").split("<x>")[0].strip(),
                r"\frac",
                "{",
                "}",
                "^",
            ]
            + list(self.functions),
            key=len,
            reverse=True,
        )

    def _function_heads(self) -> dict[str, str]:
        """LaTeX head -> primitive, for functions written as a head applied to arguments in
        parentheses (``\\tanh``, ``\\operatorname{sgn}\\left(<z>\\right)``). Other templates
        (``\\sqrt{<z>}``, ``\\mathbb{1}\\left[<z> > 0\\right]``) are read from their parts."""
        heads: dict[str, str] = {}
        for name, p in PRIMITIVES.items():
            rendering = self.n.function(name)
            arguments = r"\left(<z>\right)" if p.arity == 1 else r"\left(<a>, <b>\right)"
            head = rendering.removesuffix(arguments)
            if not head or "<" in head:
                continue
            if heads.setdefault(head, name) != name:
                raise ReadError(f"{head!r} typesets both {heads[head]!r} and {name!r}")
        return heads

    # -- vocabulary: every symbol at every time, as the printer writes it --------------------------
    def _add(self, text: str, key: tuple) -> None:
        old = self.atoms.setdefault(text, key)
        if old != key:
            raise ReadError(f"{text!r} is ambiguous: {old} and {key}")

    def _vocabulary(self) -> None:
        printers = [(VectorLatexPrinter(self.d, "t", s, self.n), ("t", s)) for s in (-1, 0, 1)]
        printers += [(VectorLatexPrinter(self.d, k, 0, self.n), k) for k in (0, 1, 2)]
        for printer, when in printers:
            for name, q in self.d.quantities.items():
                if q.kind == Kind.OPERAND or q.kind == Kind.DELTA and self.d.kind(q.of) == Kind.OPERAND:
                    continue  # written as its expression, read by the parser (operand_adjoint)
                if q.kind in (Kind.VALUE, Kind.PREACT, Kind.DELTA, Kind.OUTPUT_GRAD, Kind.DATA):
                    self._add(printer.symbol_latex(name), ("d" if q.kind.is_adjoint else "v", name, when))
                elif q.kind == Kind.SIZE:  # mean()'s divisor, written as the size's name
                    self._add(printer.symbol_latex(name), ("size", q.base))
                elif q.kind == Kind.PREV:
                    self._add(printer.symbol_latex(name), ("v", q.base, shift(when, -1)))
            self._add(printer.operand_latex("x"), ("v", "x", when))
            self._add(self.n.delta(printer.operand_latex("x")), ("d", "d_x", when))
        for name in self.d.spec.matrices:
            self._add(self.n.parameter(name), ("M", name))
            self._add(self.n.delta(self.n.parameter(name)), ("dP", name))
        for key, pair in self.pairs.items():  # W_f of W_f [h_{t-1}, x_t]; W_f's blocks are matrices above
            self._add(self.n.concatenated(pair.member), ("M", key))
            self._add(self.n.delta(self.n.concatenated(pair.member)), ("dP", key))
        for name in self.d.spec.vectors:
            self._add(self.n.parameter(name), ("P", name))
            self._add(self.n.delta(self.n.parameter(name)), ("dP", name))
        self.atom_list = sorted(self.atoms, key=len, reverse=True)

    # -- tokens and parsing ------------------------------------------------------------------------
    def tokenize(self, text: str) -> list:
        # a line break inside parentheses closes and reopens them invisibly: \right. ... \left.
        text = text.replace(r"\right. \\ &\qquad \left.", " ").replace(r"\\ &\qquad", " ")
        out, k = [], 0
        number = re.compile(r"\d+(\.\d+)?(e[-+]?\d+)?")
        while k < len(text):
            if text[k].isspace():
                k += 1
                continue
            atom = next((a for a in self.atom_list if text.startswith(a, k)), None)
            if atom is not None:
                out.append(("atom", self.atoms[atom]))
                k += len(atom)
                continue
            m = number.match(text, k)
            if m:
                out.append(("num", float(m.group())))
                k = m.end()
                continue
            op = next((o for o in self.tokens_fixed if text.startswith(o, k)), None)
            if op is None:
                raise ReadError(f"cannot read {text[k : k + 40]!r}")
            out.append(("op", op))
            k += len(op)
        return out

    def parse_line(self, line: str):
        lhs, sep, rhs = line.partition("&=")
        if not sep:
            raise ReadError(f"not an equation line: {line!r}")
        left = _Parser(self, self.tokenize(lhs))
        target = left.primary() if left.toks else None
        if target is None or target[0] != "sym" or left.k != len(left.toks):
            raise ReadError(f"the left side {lhs!r} is not one symbol")
        parser = _Parser(self, self.tokenize(rhs))
        tree = parser.expr()
        if parser.k != len(parser.toks):
            raise ReadError(f"unread tokens in {rhs!r}: {parser.toks[parser.k :]}")
        return target[1], tree

    # -- composite operands ------------------------------------------------------------------------
    def learn_operands(self, lines: list) -> None:
        """Remember every composite expression the forward lines multiply by a matrix
        (``M (a ⊙ b)``, or ``(a ⊙ b) M`` with row vectors), by its shape."""
        for _key, tree in lines:
            for node in walk(tree):
                if node[0] != "jux":
                    continue
                for matrix, operand in (node[1:3], node[2:0:-1]):
                    if is_matrix(matrix) and operand[0] != "sym":
                        shape, first = relative(operand)
                        self.operands.setdefault(shape, offset(first))

    def operand_adjoint(self, tree):
        """``δ(a ⊙ b)``: the adjoint of a composite operand, keyed by its shape, at the time its
        expression is shifted to from the forward lines'."""
        shape, first = relative(tree)
        if shape not in self.operands:
            raise ReadError(f"δ of {tree}, which no forward line multiplies by a matrix")
        return ("sym", ("d", ("operand", shape), shift(first, -self.operands[shape])))

    # -- evaluation ------------------------------------------------------------------------------
    def run(self, params, x, state0, dys, dstate, sizes, inputs=None):
        """Forward, backward and gradients from the typeset lines; returns a dict of results.
        ``sizes`` gives each size name's number (D, H, P, ...), ``inputs`` the extra per-step
        inputs (T, B, size)."""
        T = x.shape[0]
        n = self.n
        env: dict = {("size", name): value for name, value in sizes.items()}
        for name in self.d.spec.matrices:
            env[("M", name)] = Mat(params[name].T if n.row_vectors else params[name])
        for key, pair in self.pairs.items():  # the blocks side by side, in the concatenation's order
            blocks = [params[pair.recurrent.matrix], params[pair.input.matrix]]
            whole = np.hstack(blocks if n.recurrent_first else blocks[::-1])
            env[("M", key)] = Mat(whole.T if n.row_vectors else whole)
        for name in self.d.spec.vectors:
            env[("P", name)] = params[name]
        for s in self.d.spec.states:
            env[(s, 0)] = state0[s]
        fwd = self.bind_folded_preactivations([self.parse_line(line) for line in forward_lines(self.d, n)])
        self.learn_operands(fwd)
        bwd = [self.parse_line(line) for line in backward_lines(self.d, n)]
        grads = [self.parse_line(line) for line in gradient_lines(self.d, n)]
        for t in range(1, T + 1):
            env[("x", t)] = x[t - 1]
            for name, values in (inputs or {}).items():
                env[(name, t)] = values[t - 1]
            for (_kind, name, when), tree in fwd:
                env[(name, at(when, t))] = evaluate(tree, env, t, T)
        for t in range(T, 0, -1):
            env[(self.d.output_grad.name, t)] = dys[t - 1]
            for (_kind, name, when), tree in bwd:
                value = evaluate(tree, env, t, T)
                q = self.d.quantities.get(name)
                if t == T and q is not None and q.kind == Kind.DELTA and q.of in self.d.spec.states:
                    state = q.of
                    value = value + dstate[state]  # "zero at T+1, except the final state's gradient"
                env[(name, at(when, t))] = value
        out = {
            "h": np.stack([env[(self.d.spec.output, t)] for t in range(1, T + 1)]),
            "final": {s: env[(s, T)] for s in self.d.spec.states},
            "dparams": {},
            "dstate0": {},
        }
        dx = [None] * T
        for key, tree in grads:
            if key[0] == "dP":
                value = evaluate(tree, env, None, T)
                name = key[1]
                value = value.T if (n.row_vectors and (name in self.d.spec.matrices or name in self.pairs)) else value
                if name in self.pairs:  # the concatenated matrix's gradient: its blocks' gradients
                    out["dparams"].update(self.split(self.pairs[name], value, params))
                else:
                    out["dparams"][name] = value
            elif key[1] == "d_x":
                for t in range(1, T + 1):
                    dx[t - 1] = evaluate(tree, env, t, T)
            else:
                assert key[2] == 0, key
                out["dstate0"][self.d.quantities[key[1]].of] = np.broadcast_to(
                    evaluate(tree, env, None, T), state0[self.d.quantities[key[1]].of].shape
                )
        out["dx"] = np.stack(dx)
        return out

    def bind_folded_preactivations(self, fwd: list) -> list:
        """A pre-activation without a line of its own (a notation that folds them, ``colah``) is,
        as the legend says, the argument of the outermost activation in its value's line: ``f̄_t``
        in ``f_t = σ(...)``. Each such line is read first for its argument, bound to the bar
        (which the backward lines may use), then as itself."""
        defined = {key[1] for key, _ in fwd}
        bars = {q.base: name for name, q in self.d.quantities.items() if q.kind == Kind.PREACT and name not in defined}
        out = []
        for key, tree in fwd:
            bar = bars.get(key[1])
            if bar is not None:
                out.append((("v", bar, key[2]), activation_argument(tree, key[1])))
            out.append((key, tree))
        return out

    def split(self, pair, value, params) -> dict[str, np.ndarray]:
        """The gradient of a concatenated matrix cut into its blocks' (columns in the order of the
        concatenation)."""
        order = [pair.recurrent.matrix, pair.input.matrix]
        if not self.n.recurrent_first:
            order.reverse()
        width = params[order[0]].shape[1]
        return {order[0]: value[:, :width], order[1]: value[:, width:]}


def activation_argument(tree, name: str):
    """The argument of the activation a line's right side is, ``σ(a)`` or ``\\sqrt{a}``."""
    if tree[0] == "fn" and len(tree[2]) == 1:
        return tree[2][0]
    if tree[0] == "sqrt":
        return tree[1]
    raise ReadError(f"{name}'s pre-activation has no line of its own, but its line is not one activation: {tree}")


def walk(tree):
    """Every node of a parsed tree, the tree first."""
    yield tree
    for child in tree[1:]:
        for item in child if isinstance(child, list) else [child]:
            if isinstance(item, tuple) and item and item[0] in NODES:
                yield from walk(item)


def relative(tree):
    """(the tree with each symbol's time made relative to the first timed symbol's, hashable;
    that first symbol's time): ``f_{t+1} ⊙ h_t`` and ``f_1 ⊙ h_0`` have one shape."""
    times: list = []

    def visit(node):
        if isinstance(node, list):
            return tuple(visit(item) for item in node)
        if not isinstance(node, tuple):
            return node
        if node[0] == "sym" and len(node[1]) == 3:
            tag, name, when = node[1]
            times.append(when)
            return ("sym", (tag, name, offset(when) - offset(times[0])))
        return tuple(visit(item) for item in node)

    shape = visit(tree)
    if not times:
        raise ReadError(f"{tree} has no vector in it")
    return shape, times[0]


class _Parser:
    def __init__(self, reader: Reader, toks: list):
        self.r = reader
        self.toks = toks
        self.k = 0

    def peek(self):
        return self.toks[self.k] if self.k < len(self.toks) else (None, None)

    def take(self, op=None):
        tok = self.peek()
        if op is not None and tok != ("op", op):
            raise ReadError(f"expected {op!r}, found {tok} at token {self.k}")
        self.k += 1
        return tok

    def expr(self):
        terms = []
        sign = 1.0
        if self.peek() == ("op", "-"):
            self.take()
            sign = -1.0
        terms.append(("neg", self.term()) if sign < 0 else self.term())
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            term = self.term()
            terms.append(term if op == "+" else ("neg", term))
        return ("add", terms) if len(terms) > 1 else terms[0]

    def starts_factor(self):
        kind, value = self.peek()
        if kind in ("atom", "num"):
            return True
        return kind == "op" and value in (
            (r"\left(", "[", r"\left\lvert", r"\langle", r"\mathbb{1}", UNIT_SUM, r"\sqrt", r"\tfrac", r"\frac", "-")
            + (self.r.n.sum,)
            + tuple(self.r.functions)
        )

    def term(self):
        node = self.factor()
        while True:
            if self.peek() == ("op", self.r.n.hadamard):
                self.take()
                node = ("odot", node, self.factor())
            elif self.peek() in (("op", r"\,"), ("op", r"\cdot")):  # a thin space, or W \cdot v
                self.take()
                node = ("jux", node, self.factor())
            elif self.starts_factor() and self.peek() != ("op", "-"):
                node = ("jux", node, self.factor())
            else:
                return node

    def braced_number(self):
        """``{2}``, or ``{-5}`` (the exponent of ``10^{-5}``)."""
        self.take("{")
        sign = -1.0 if self.peek() == ("op", "-") and self.take() else 1.0
        kind, value = self.take()
        if kind != "num":
            raise ReadError(f"expected a number, found {value}")
        self.take("}")
        return sign * value

    def factor(self):
        node = self.primary()
        while True:
            if self.peek() == ("op", self.r.transpose_suffix):
                self.take()
                node = ("T", node)
            elif self.peek() == ("op", "^"):
                self.take()
                node = ("pow", node, self.braced_number())
            else:
                return node

    def primary(self):
        kind, value = self.take()
        if kind == "atom":
            return ("sym", value)
        if kind == "num":
            return ("num", value)
        if value == "-":
            return ("neg", self.factor())
        if value == self.r.delta_head and self.peek() == ("op", r"\left("):  # δ(a ⊙ b)
            self.take()
            inner = self.expr()
            self.take(r"\right)")
            return self.r.operand_adjoint(inner)
        if value == r"\left(":
            inner = self.expr()
            self.take(r"\right)")
            return inner
        if value == "[":  # a concatenation [a, b] of two vectors
            a = self.expr()
            self.take(",")
            b = self.expr()
            self.take("]")
            return ("concat", a, b)
        if value == r"\left\lvert":
            inner = self.expr()
            self.take(r"\right\rvert")
            return ("abs", inner)
        if value == r"\langle":
            a = self.expr()
            self.take(",")
            b = self.expr()
            self.take(r"\rangle")
            return ("jux", a, ("T", b))
        if value == r"\tfrac":
            return ("num", self.braced_number() / self.braced_number())
        if value == r"\frac":
            self.take("{")
            num = self.expr()
            self.take("}")
            self.take("{")
            den = self.expr()
            self.take("}")
            return ("div", num, den)
        if value == r"\mathbb{1}":
            self.take(r"\left[")
            chain = [self.expr()]
            ops = []
            while self.peek() in (("op", "<"), ("op", ">"), ("op", "=")):
                ops.append(self.take()[1])
                chain.append(self.expr())
            self.take(r"\right]")
            return ("indicator", chain, ops)
        if value == self.r.n.sum:
            return ("sum", self.expr())
        if value == r"\sqrt":
            self.take("{")
            inner = self.expr()
            self.take("}")
            return ("sqrt", inner)
        if value == UNIT_SUM:
            return ("unit_sum", self.unit_sum_argument())
        if value in self.r.functions:
            power = None
            if self.peek() == ("op", "^"):
                self.take()
                power = self.braced_number()
            self.take(r"\left(")
            args = [self.expr()]
            while self.peek() == ("op", ","):  # maximum(a, b), minimum(a, b)
                self.take()
                args.append(self.expr())
            self.take(r"\right)")
            node = ("fn", self.r.functions[value], args)
            return ("pow", node, power) if power is not None else node
        raise ReadError(f"unexpected {value!r}")

    def unit_sum_argument(self):
        """What 1^T applies to: the next factor, or a matrix-vector product ``M v`` (both orders)."""
        if self.r.n.row_vectors:  # there 1^T X_t would sum over the batch rows, not the units
            raise ReadError("1^T v in a row-vector notation")
        arg = self.factor()
        while is_matrix(arg) or (self.peek()[0] == "atom" and self.peek()[1][0] == "M"):
            arg = ("jux", arg, self.factor())
        return arg


def is_matrix(node) -> bool:
    return node[0] == "sym" and node[1][0] == "M" or node[0] == "T" and is_matrix(node[1])
