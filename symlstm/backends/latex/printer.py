"""Stage 3a: ``Derivation`` -> LaTeX in vector notation, reading like Greff et al. 2017.

Vectors and matrices are bold, ``\\odot`` is the elementwise product, pre-activations carry a bar,
``\\delta a`` is dL/da and ``\\Delta_t`` is the gradient arriving from above. The backward lines are
the derivation's own assignments; the adjoint a state receives from step t+1 (the kernel's carry)
is written out as the t+1 terms it stands for, e.g. ``\\mathbf{R}_i^\\top \\delta\\bar{\\mathbf{i}}_{t+1}``.

How each symbol looks is data: a ``Notation`` preset (``symlstm.notation``; ``greff``, ``pytorch``,
``d2l`` or a user's TOML file) supplies the templates, and every function here takes one
(default: ``symlstm``). The printer's logic is the same for all presets.
"""
from __future__ import annotations

import sympy
from sympy.printing.printer import Printer

from symlstm.lang import primitives as fn
from symlstm.ir.derive import Derivation, Quantity
from symlstm.backends.latex.notation import DEFAULT, GREEK, Notation, NotationError, load_notation  # noqa: F401 (GREEK re-exported)
from symlstm.version import __version__

#: quantity kinds whose symbols carry a time index
TIMED_KINDS = frozenset({"value", "preact", "prev", "delta", "output_grad"})


class LatexError(ValueError):
    """The derivation contains something the LaTeX printer cannot express."""


def bold(name: str, notation: Notation | str | None = None) -> str:
    """A parameter's name: ``W_i`` -> ``\\mathbf{W}_{i}`` in the default notation."""
    return load_notation(notation).parameter(name)


def with_time(name: str, time: str, bar: bool = False, notation: Notation | str | None = None) -> str:
    """A vector at a time: ``c``, ``t-1`` -> ``\\mathbf{c}_{t-1}`` in the default notation."""
    return load_notation(notation).vector(name, time, preact=bar)


class VectorLatexPrinter(Printer):
    """Strict: a node type without a ``_print_<Class>`` method raises, naming it."""

    printmethod = "_symlstm_latex"

    def __init__(self, derivation: Derivation, step: str | int = "t", shift: int = 0,
                 notation: Notation | str | None = None):
        super().__init__()
        self.d = derivation
        self.step = step
        self.shift = shift
        self.n = load_notation(notation)

    def shifted(self, by: int) -> "VectorLatexPrinter":
        return VectorLatexPrinter(self.d, self.step, self.shift + by, self.n)

    def time(self, offset: int = 0) -> str:
        k = self.shift + offset
        if isinstance(self.step, int):
            return str(self.step + k)
        return self.step if k == 0 else f"{self.step}{k:+d}"

    def emptyPrinter(self, expr):
        raise LatexError(f"the LaTeX printer does not support {type(expr).__name__}: {expr}")

    # -- symbols --------------------------------------------------------------------------------
    def quantity(self, name: str) -> Quantity:
        try:
            return self.d.quantities[name]
        except KeyError:
            raise LatexError(f"no meaning is recorded for the symbol {name!r}") from None

    def symbol_latex(self, name: str) -> str:
        q = self.quantity(name)
        if q.kind == "value":
            return self.n.vector(q.base, self.time())
        if q.kind == "preact":
            return self.n.vector(q.base, self.time(), preact=True)
        if q.kind == "prev":
            return self.n.vector(q.base, self.time(-1))
        if q.kind == "param":
            return self.n.parameter(q.base)
        if q.kind == "product":
            return self.n.product(self.n.parameter(q.base), self.operand_latex(q.operand))
        if q.kind == "delta":
            inner = self.symbol_latex(q.base)
            if self.quantity(q.base).kind == "product":
                inner = f"({inner})"
            return self.n.delta(inner)
        if q.kind == "output_grad":
            return self.n.output_grad(self.time())
        raise LatexError(f"the symbol {name!r} ({q.kind}) is printed through its expansion")

    def operand_latex(self, operand: str) -> str:
        if operand == "x":
            return self.n.vector("x", self.time())
        return self.symbol_latex(operand)

    def _print_Symbol(self, expr):
        return self.symbol_latex(expr.name)

    # -- expansions of the kernel's bookkeeping symbols ------------------------------------------
    def expanded_terms(self, term: sympy.Expr) -> list[sympy.Expr] | None:
        """A carry or GEMM-adjoint symbol stands for a sum; return its terms with their printer."""
        if not isinstance(term, sympy.Symbol):
            return None
        q = self.d.quantities.get(term.name)
        if q is None or q.kind not in ("carry", "gemm_t"):
            return None
        if q.kind == "carry":
            printer = self.shifted(1)
            expr = self.d.prev_adjoints[q.base]
            return [(t, printer) for t in ordered_terms(expr) if t != 0]
        return [(self.d.product_deltas[p.name], self, p) for p in self.d.products_with_operand(q.operand)]

    def term_strings(self, expr: sympy.Expr) -> list[str]:
        out = []
        for term in ordered_terms(expr):
            expansion = self.expanded_terms(term)
            if expansion is None:
                out.append(self.signed(term))
                continue
            for item in expansion:
                if len(item) == 3:  # (delta, printer, product): M^T delta
                    delta, printer, product = item
                    out.append("+ " + self.n.product(self.n.parameter(product.matrix),
                                                     printer._print(delta), transposed=True))
                else:
                    sub, printer = item
                    out.extend(printer.term_strings(sub) if printer.expanded_terms(sub) else
                               [printer.signed(sub)])
        return out

    def signed(self, term: sympy.Expr) -> str:
        if term.could_extract_minus_sign():
            return "- " + self.paren_mul(-term)
        return "+ " + self._print(term)

    def paren_mul(self, expr) -> str:
        text = self._print(expr)
        return f"\\left({text}\\right)" if isinstance(expr, sympy.Add) else text

    # -- operators ------------------------------------------------------------------------------
    def factor_rank(self, factor: sympy.Expr) -> int:
        """Order of factors in a product: adjoints, functions, parameters, values at t-1, values
        at t, then sums and powers, so an activation's derivative ``i ⊙ (1 - i)`` stays together."""
        if isinstance(factor, sympy.Symbol):
            kind = self.quantity(factor.name).kind
            ranks = {"delta": 0, "carry": 0, "gemm_t": 0, "output_grad": 0, "param": 2, "prev": 3}
            return ranks.get(kind, 4)
        if isinstance(factor, sympy.Function):
            return 1
        return 5

    def _print_Add(self, expr):
        return join_terms(self.term_strings(expr))

    def _print_Mul(self, expr):
        if expr.could_extract_minus_sign():
            return "-" + self.paren_mul(-expr)
        coeff, factors = expr.as_coeff_mul()
        num, den = [], []
        for f in factors:
            if f.is_Pow and f.exp.is_number and f.exp < 0:
                den.append(f.base ** (-f.exp))
            else:
                num.append(f)
        num.sort(key=self.factor_rank)
        parts = [self.paren_mul(f) for f in num]
        text = f" {self.n.hadamard} ".join(parts) if parts else "1"
        if coeff != 1:
            text = f"{self._print(coeff)} {text}" if parts else self._print(coeff)
        if den:
            text = rf"\frac{{{text}}}{{{self._print(sympy.Mul(*den))}}}"
        return text

    def _print_Pow(self, expr):
        if expr.exp.is_number and expr.exp < 0:
            return rf"\frac{{1}}{{{self._print(expr.base ** (-expr.exp))}}}"
        exponent = self._print(expr.exp)
        if isinstance(expr.base, fn.Activation):
            name = self.function_latex(expr.base)
            return rf"{name}^{{{exponent}}}\left({self._print(expr.base.args[0])}\right)"
        base = self._print(expr.base)
        if not isinstance(expr.base, sympy.Symbol) or self.quantity(expr.base.name).kind == "product":
            return rf"\left({base}\right)^{{{exponent}}}"
        return self.n.power(base, exponent, timed=self.quantity(expr.base.name).kind in TIMED_KINDS)

    def _print_Integer(self, expr):
        return str(expr.p)

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Rational(self, expr):
        sign = "-" if expr.p < 0 else ""
        return rf"{sign}\tfrac{{{abs(expr.p)}}}{{{expr.q}}}"

    def _print_Abs(self, expr):
        return rf"\left\lvert {self._print(expr.args[0])} \right\rvert"

    def _print_Positive(self, expr):
        return rf"\mathbb{{1}}\left[{self._print(expr.args[0])} > 0\right]"

    def _print_HardSigmoidSlope(self, expr):
        return rf"\tfrac{{1}}{{6}}\,\mathbb{{1}}\left[0 < {self._print(expr.args[0])} < 1\right]"

    def function_latex(self, expr) -> str:
        if not isinstance(expr, fn.Activation):
            raise LatexError(f"the LaTeX printer does not support the function {type(expr).__name__}")
        try:
            return self.n.function(expr.spec_name)
        except NotationError as err:
            raise LatexError(str(err)) from None

    def _print_Function(self, expr):
        return rf"{self.function_latex(expr)}\left({self._print(expr.args[0])}\right)"


def ordered_terms(expr: sympy.Expr) -> list[sympy.Expr]:
    """Terms of a sum in reading order: constants, the gradient from above, input and recurrent
    products (W x + R h), other terms, lone parameters (biases), then what comes from step t+1."""
    terms = list(expr.as_ordered_terms()) if isinstance(expr, sympy.Add) else [expr]

    def rank(term):
        names = {s.name for s in term.free_symbols}
        if term.is_number:
            return 0
        if "dys" in names:
            return 1
        if isinstance(term, sympy.Symbol) and "__" in term.name:  # a product M @ v
            return 2 if term.name.endswith("__x") else 3
        if any(n.startswith(("carry_", "gemmT__")) for n in names):
            return 6
        if isinstance(term, sympy.Symbol) and not term.name.startswith("d_"):
            return 5
        return 4
    # a difference reads better than a leading minus: (h_{t-1} - n_t), not (-n_t + h_{t-1})
    return sorted(terms, key=lambda term: (rank(term), term.could_extract_minus_sign()))


def join_terms(terms: list[str], per_line: int = 0) -> str:
    """Join signed terms; with ``per_line`` break long sums over aligned continuation lines."""
    out = ""
    for k, term in enumerate(terms):
        sign, body = term[0], term[2:]
        if k == 0:
            out = body if sign == "+" else f"-{body}"
            continue
        if per_line and k % per_line == 0:
            out += r" \\ &\qquad"
        out += f" {sign} {body}"
    return out


def _rhs(printer: VectorLatexPrinter, expr: sympy.Expr, per_line: int = 4) -> str:
    return join_terms(printer.term_strings(expr), per_line=per_line)


def check_unambiguous(d: Derivation, notation: Notation | str | None = None) -> Notation:
    """Raise ``LatexError`` if the preset typesets two different names of the cell the same way
    (e.g. ``greff`` renames ``g`` to ``z``: a cell with both ``g`` and ``z`` cannot use it)."""
    n = load_notation(notation)
    seen: dict[str, str] = {}
    names = [("x", n.vector("x", "t"))]
    names += [(s, n.vector(s, "t")) for s in d.spec.states]
    names += [(a.name, n.vector(a.name, "t")) for a in d.forward if d.quantities[a.name].kind == "value"]
    names += [(p, n.parameter(p)) for p in d.spec.param_names]
    for name, text in names:
        other = seen.setdefault(text, name)
        if other != name:
            raise LatexError(f"the notation {n.name!r} typesets both {other!r} and {name!r} of the cell "
                             f"{d.spec.name!r} as {text}; use another notation or rename one in the spec")
    return n


def forward_lines(d: Derivation, notation: Notation | str | None = None) -> list[str]:
    p = VectorLatexPrinter(d, notation=notation)
    return [f"{p.symbol_latex(a.name)} &= {_rhs(p, a.expr)}" for a in d.forward]


def backward_lines(d: Derivation, notation: Notation | str | None = None) -> list[str]:
    p = VectorLatexPrinter(d, notation=notation)
    return [f"{p.symbol_latex(a.name)} &= {_rhs(p, a.expr)}" for a in d.backward]


def gradient_lines(d: Derivation, notation: Notation | str | None = None) -> list[str]:
    """Parameter, input and initial-state gradients: sums over time of per-step terms."""
    n = load_notation(notation)
    p = VectorLatexPrinter(d, notation=n)
    total = n.sum
    lines = []
    for matrix in d.spec.matrices:
        terms = []
        for prod in d.products:
            if prod.matrix == matrix:
                delta = p._print(d.product_deltas[prod.name])
                terms.append(n.outer(delta, p.operand_latex(prod.operand)))
        lines.append(rf"{n.delta(n.parameter(matrix))} &= {total} " + " + ".join(terms))
    for vector, expr in d.param_grads.items():
        body = p._print(expr)
        if isinstance(expr, sympy.Add):
            body = rf"\left({body}\right)"
        lines.append(rf"{n.delta(n.parameter(vector))} &= {total} {body}")
    x_terms = [n.product(n.parameter(prod.matrix), p._print(d.product_deltas[prod.name]), transposed=True)
               for prod in d.products_with_operand("x")]
    lines.append(rf"{n.delta(n.vector('x', 't'))} &= " + " + ".join(x_terms))
    first = VectorLatexPrinter(d, step=1, notation=n)
    for state, expr in d.prev_adjoints.items():
        rhs = _rhs(first, expr) if expr != 0 else "0"
        lines.append(rf"{n.delta(n.vector(state, '0'))} &= {rhs}")
    return lines


def align(lines: list[str]) -> str:
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}"


def latex_equations(d: Derivation, backward: bool = True, notation: Notation | str | None = None) -> str:
    """The forward (and backward) equations as ``align*`` environments."""
    n = check_unambiguous(d, notation)
    parts = ["% Forward pass, one time step", align(forward_lines(d, n))]
    if backward:
        parts += ["% Backward pass through time, one step (t = T, ..., 1)", align(backward_lines(d, n)),
                  "% Gradients of the parameters, the input and the initial state",
                  align(gradient_lines(d, n))]
    return "\n".join(parts) + "\n"


def header(d: Derivation, notation: Notation | str | None = None) -> str:
    n = load_notation(notation)
    preset = "" if n.name == DEFAULT else f" in the notation '{n.name}'"
    return (f"% Generated by symlstm {__version__} from the spec '{d.spec.name}' "
            f"(sha256 {d.spec.sha256}){preset}.\n"
            "% Do not edit: change the spec and run `symlstm generate`.\n")


def _tex_text(text: str) -> str:
    """Plain text made safe for LaTeX."""
    table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
             "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(table.get(ch, ch) for ch in text)


PREAMBLE = ("\\documentclass[11pt]{article}\n"
            "\\usepackage[margin=2cm]{geometry}\n\\usepackage{amsmath,amssymb}\n"
            "\\allowdisplaybreaks\n")


def latex_sections(d: Derivation, notation: Notation | str | None = None, level: str = "section",
                   legend: bool = True) -> str:
    """A cell's part of a document: title, legend, forward, backward and gradient equations.

    ``level`` is the sectioning command of the title (``section``; ``subsection`` nests it one
    level deeper). ``legend=False`` leaves out the paragraph explaining the notation (a sheet of
    several cells says it once).
    """
    n = check_unambiguous(d, notation)
    sub = {"section": "subsection", "subsection": "subsubsection"}[level]
    spec = d.spec
    refs = "; ".join(_tex_text(r) for r in spec.references)
    states = ", ".join(f"${n.vector(s, 't')}$" for s in spec.states)
    return (
        f"\\{level}*{{{_tex_text(spec.title)}}}\n"
        + f"Cell \\texttt{{{_tex_text(spec.name)}}}. State carried between steps: {states}"
        + (f". References: {refs}.\n" if refs else ".\n")
        + (n.legend_text() + "\n" if legend else "")
        + f"\\{sub}*{{Forward pass}}\n"
        + latex_equations(d, backward=False, notation=n)
        + f"\\{sub}*{{Backward pass through time}}\n"
        + "From $t = T$ down to $1$; quantities at $T+1$ are zero, except the gradients of the "
          "final state.\n"
        + align(backward_lines(d, n)) + "\n"
        + f"\\{sub}*{{Gradients}}\n"
        + align(gradient_lines(d, n)) + "\n"
    )


def latex_document(d: Derivation, notation: Notation | str | None = None) -> str:
    """A standalone document that pdflatex compiles."""
    return (header(d, notation) + PREAMBLE + "\\begin{document}\n" + latex_sections(d, notation)
            + "\\end{document}\n")
