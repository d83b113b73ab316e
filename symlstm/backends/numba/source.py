"""Lines of generated Python: indentation, comments, signatures, and statement blocks after
common-subexpression elimination."""

from __future__ import annotations

import sympy

from symlstm.backends.numba.printer import NumbaPrinter

#: a signature longer than this is written one argument per line
MAX_SIGNATURE = 100


class Source:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "", indent: int = 0) -> None:
        self.lines.append(("    " * indent + text) if text else "")

    def comment(self, text: str, indent: int) -> None:
        self(f"# {text}", indent)

    def signature(self, name: str, args: list[str]) -> None:
        line = f"def {name}({', '.join(args)}):"
        if len(line) <= MAX_SIGNATURE:
            self(line)
            return
        self(f"def {name}(")
        for arg in args:
            self(f"{arg},", 1)
        self("):")

    def call(self, function: str, args: list[str], indent: int) -> None:
        line = f"{function}({', '.join(args)})"
        if len(line) + 4 * indent <= MAX_SIGNATURE:
            self(line, indent)
            return
        self(f"{function}(", indent)
        for arg in args:
            self(f"{arg},", indent + 1)
        self(")", indent)

    def insert(self, index: int, lines: list[str]) -> None:
        self.lines[index:index] = lines

    def block(
        self, statements: list[tuple[str, str, sympy.Expr, str | None]], printer: NumbaPrinter, indent: int, temporaries
    ) -> None:
        """Emit ``lhs op expr`` lines, in order, after canonical common-subexpression elimination;
        each statement's comment (if any) on the line before it.

        Each CSE temporary is emitted just before the first statement that uses it; its symbols
        are then all defined, since it is a piece of that statement. A statement that would only
        rename a temporary (``d_c = tmp2``) gives its name to the temporary instead.
        """
        replacements, reduced = sympy.cse([s[2] for s in statements], symbols=_symbols(temporaries), order="canonical")
        pending = dict(replacements)
        named: dict[sympy.Symbol, str] = {}  # temporary -> the local that takes its place
        for (lhs, op, _, _), expr in zip(statements, reduced):
            if op == "=" and lhs.isidentifier() and expr in pending and expr not in named:
                named[expr] = lhs
        reads = dict(printer.reads)
        reads.update({tmp.name: named.get(tmp, tmp.name) for tmp in pending})
        printer.reads = reads
        emitted: set[sympy.Symbol] = set()
        comments = {lhs: comment for lhs, _, _, comment in statements if comment}

        def emit_temps(expr) -> None:
            for sym in sorted(getattr(expr, "free_symbols", ()), key=lambda s: s.name):
                if sym in pending and sym not in emitted:
                    emit_temps(pending[sym])
                    emitted.add(sym)
                    name = named.get(sym, sym.name)
                    if name in comments:
                        self.comment(comments.pop(name), indent)
                    self(f"{name} = {printer.doprint(pending[sym])}", indent)

        for (lhs, op, _, _), expr in zip(statements, reduced):
            emit_temps(expr)
            if named.get(expr) == lhs:
                continue  # emitted as the temporary it renamed
            if lhs in comments:
                self.comment(comments.pop(lhs), indent)
            self(f"{lhs} {op} {printer.doprint(expr)}", indent)


def _symbols(names):
    for name in names:
        yield sympy.Symbol(name, real=True)
