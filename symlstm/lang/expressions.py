"""One equation's text -> a SymPy expression, through a whitelist of Python syntax.

Expressions are parsed with Python's ``ast`` and checked node by node; the SymPy objects are
built here by hand. ``sympify``, ``parse_expr`` and ``eval`` are never applied to spec text, so a
spec cannot run code.
"""

from __future__ import annotations

import ast
import keyword
import math
import re

import sympy

from symlstm.lang.errors import SpecError, equation_label
from symlstm.lang.nodes import INPUT, PREV_SUFFIX, REDUCTIONS, MatVec, symbol
from symlstm.lang.primitives import FUNCTIONS

MAX_EXPRESSION_DEPTH = 40
MAX_INT_EXPONENT = 8
MAX_NAME_CHARS = 64
MAX_PRODUCT_FACTORS = 32
#: largest magnitude of a number in an equation after SymPy folds its constants (1e300 * 1e300 would
#: print as ``inf`` in a kernel; the headroom keeps the derivatives' constants finite too)
MAX_CONSTANT = 1e100

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*\Z")


def callable_names() -> list[str]:
    """Every function a spec may call: the primitives and the reductions."""
    return sorted([*FUNCTIONS, *REDUCTIONS])


def validate_name(name: object, what: str) -> str:
    """An identifier that is safe to use in generated source and file names."""
    if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name):
        shown = repr(name) if not isinstance(name, str) or len(name) <= 80 else repr(name[:80]) + "..."
        raise SpecError(
            f"{what} {shown} is not a valid name: use ASCII letters and digits, optionally joined by "
            "single underscores, starting with a letter (e.g. 'W_i', 'c', 'gate2')"
        )
    if len(name) > MAX_NAME_CHARS:
        raise SpecError(
            f"{what} {name[:20]!r}... is {len(name)} characters long; names may have at most {MAX_NAME_CHARS}"
        )
    return name


def check_variable_name(name: str, where: str) -> None:
    """The words of the spec language are ``x``, ``<state>_prev`` and the function names; every
    other valid name is the user's (generated names come from a namer that avoids them)."""
    validate_name(name, f"{where}: name")
    if name in FUNCTIONS or name in REDUCTIONS:
        raise SpecError(f"{where}: {name!r} is a function name and cannot be used as a variable")
    if name == INPUT:
        raise SpecError(f"{where}: {INPUT!r} is the input; give this quantity another name")


class ExpressionBuilder:
    """Turns one equation's ``ast`` into SymPy, accepting only whitelisted nodes."""

    _BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@"}

    def __init__(self, target: str, text: str, known: set[str], states: tuple[str, ...], inputs: frozenset[str]):
        self.where = equation_label(target, text)
        self.known = known
        self.states = states
        self.inputs = inputs  # the names of the extra per-step inputs
        #: (name, role) with role "matrix", "value" or "input" (x or an extra input)
        self.names: list[tuple[str, str]] = []

    def fail(self, message: str, node: ast.AST | None = None) -> SpecError:
        col = getattr(node, "col_offset", None)
        at = f" (at column {col + 1})" if col is not None else ""
        return SpecError(f"{self.where}: {message}{at}")

    def build(self, node: ast.AST, depth: int = 0) -> sympy.Expr:
        if depth > MAX_EXPRESSION_DEPTH:
            raise self.fail(f"expression nested deeper than {MAX_EXPRESSION_DEPTH} levels")
        if isinstance(node, ast.Expression):
            return self.build(node.body, depth + 1)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            return self.chain(node, depth)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            return self.matvec(node, depth)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return self.build(node.left, depth + 1) ** self.exponent(node.right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.build(node.operand, depth + 1)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        raise self.fail(
            f"{self.describe(node)} is not allowed; an equation may use names, numbers, "
            "+ - * / ** @, parentheses and calls of " + ", ".join(callable_names()),
            node,
        )

    def chain(self, node: ast.BinOp, depth: int) -> sympy.Expr:
        """``a + b - c + ...`` or ``a * b / c * ...``: Python parses these as a left-leaning tree as
        deep as the chain is long; walk its left spine in a loop, so a long sum counts as one level
        of nesting (and builds one SymPy Add instead of a nested one)."""
        additive = isinstance(node.op, (ast.Add, ast.Sub))
        ops = (ast.Add, ast.Sub) if additive else (ast.Mult, ast.Div)
        rights: list[tuple[ast.BinOp, ast.AST]] = []
        left: ast.AST = node
        while isinstance(left, ast.BinOp) and isinstance(left.op, ops):
            rights.append((left, left.right))
            left = left.left
        terms = [self.build(left, depth + 1)]
        for parent, right in reversed(rights):
            value = self.build(right, depth + 1)
            if isinstance(parent.op, ast.Sub):
                value = -value
            elif isinstance(parent.op, ast.Div):
                if value == 0:
                    raise self.fail("division by zero", parent)
                value = 1 / value
            terms.append(value)
        return sympy.Add(*terms) if additive else sympy.Mul(*terms)

    @staticmethod
    def describe(node: ast.AST) -> str:
        if isinstance(node, ast.BinOp):
            return f"the operator {type(node.op).__name__}"
        if isinstance(node, ast.UnaryOp):
            return f"the unary operator {type(node.op).__name__}"
        return f"a {type(node).__name__} expression"

    def constant(self, node: ast.Constant) -> sympy.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"the constant {value!r} is not a real number", node)
        if isinstance(value, int):
            if abs(value) > 10**15:
                raise self.fail(f"the integer {value} is too large", node)
            return sympy.Integer(value)
        if not math.isfinite(value):
            raise self.fail(f"the constant {value!r} is not finite", node)
        return sympy.Float(repr(value))

    def exponent(self, node: ast.AST) -> sympy.Expr:
        sign = 1
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            sign, node = -1, node.operand
        if (
            not isinstance(node, ast.Constant)
            or isinstance(node.value, bool)
            or not isinstance(node.value, (int, float))
        ):
            raise self.fail("an exponent must be a number (e.g. c**2)", node)
        value = sign * node.value
        if isinstance(value, int):
            if abs(value) > MAX_INT_EXPONENT:
                raise self.fail(f"the exponent {value} is larger than {MAX_INT_EXPONENT}", node)
            return sympy.Integer(value)
        if not math.isfinite(value) or abs(value) > MAX_INT_EXPONENT:
            raise self.fail(f"the exponent {value} must be finite and at most {MAX_INT_EXPONENT}", node)
        return sympy.Float(repr(value))

    def call(self, node: ast.Call, depth: int) -> sympy.Expr:
        allowed = ", ".join(callable_names())
        if not isinstance(node.func, ast.Name):
            raise self.fail(f"only the functions {allowed} can be called", node)
        func = node.func.id
        cls = FUNCTIONS.get(func) or REDUCTIONS.get(func)
        if cls is None:
            raise self.fail(f"unknown function {func!r}; allowed functions: {allowed}", node)
        arity = max(cls.nargs) if isinstance(cls.nargs, sympy.FiniteSet) else 1
        if node.keywords or len(node.args) != arity or any(isinstance(a, ast.Starred) for a in node.args):
            wanted = "one positional argument" if arity == 1 else f"{arity} positional arguments"
            raise self.fail(f"{func}() takes exactly {wanted}", node)
        return cls(*(self.build(a, depth + 1) for a in node.args))

    def name(self, node: ast.Name) -> sympy.Expr:
        name = node.id
        if name == INPUT or name in self.inputs:
            self.names.append((name, "input"))
            return symbol(name)
        if name in FUNCTIONS or name in REDUCTIONS:
            raise self.fail(f"{name} is a function: call it, e.g. {name}(z)", node)
        if name.endswith(PREV_SUFFIX):
            state = name[: -len(PREV_SUFFIX)]
            if state not in self.states:
                raise self.fail(
                    f"{name!r} refers to last step's value of {state!r}, which is not a "
                    f"state; states: {list(self.states)}",
                    node,
                )
            self.names.append((name, "value"))
            return symbol(name)
        check_variable_name(name, self.where)
        self.names.append((name, "value"))
        return symbol(name)

    def matvec(self, node: ast.BinOp, depth: int) -> sympy.Expr:
        if not isinstance(node.left, ast.Name):
            raise self.fail("the left operand of @ must be a weight matrix name (write 'W @ x', not 'x @ W')", node)
        matrix = node.left.id
        if matrix == INPUT or matrix.endswith(PREV_SUFFIX) or matrix in self.known or matrix in self.inputs:
            raise self.fail(
                f"the left operand of @ must be a weight matrix, but {matrix!r} is a "
                "vector; write 'W @ x', not 'x @ W'",
                node,
            )
        check_variable_name(matrix, self.where)
        self.names.append((matrix, "matrix"))
        if isinstance(node.right, ast.Name) and node.right.id == INPUT:
            operand = symbol(INPUT)
        elif isinstance(node.right, ast.Name) and node.right.id in self.inputs:
            raise self.fail(
                f"{node.right.id!r} is an extra input, which enters elementwise only; multiply x, "
                "a state's _prev value or a computed vector",
                node,
            )
        else:
            operand = self.build(node.right, depth + 1)
            if any(isinstance(a, MatVec) for a in sympy.preorder_traversal(operand)):
                raise self.fail(
                    "nested matrix products are not supported; name the inner product in an equation of its own", node
                )
        return MatVec(symbol(matrix), operand)


def check_constants(expr: sympy.Expr, where: str) -> None:
    """Reject numbers that cannot become float64 constants of a kernel (e.g. ``0 ** -1`` or
    ``1e300 * 1e300`` after SymPy folds them)."""
    if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise SpecError(
            f"{where}: the expression divides by zero or is infinite after simplification ({sympy.sstr(expr)[:120]})"
        )
    for number in expr.atoms(sympy.Number):
        value = float(number)
        if not math.isfinite(value) or abs(value) > MAX_CONSTANT:
            raise SpecError(
                f"{where}: the constant {sympy.N(number, 3)} (after multiplying out the "
                f"numbers in the equation) is larger than {MAX_CONSTANT:g} in magnitude"
            )


def check_products(expr: sympy.Expr, where: str) -> None:
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Mul) and len(node.args) > MAX_PRODUCT_FACTORS:
            raise SpecError(
                f"{where}: a product of {len(node.args)} factors; at most "
                f"{MAX_PRODUCT_FACTORS} are allowed (name part of it in an equation of its own)"
            )
