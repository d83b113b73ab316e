"""Stage 1: spec text (TOML) -> ``CellSpec``, the cell's ordered equations as SymPy expressions.

A spec is data. Expressions are parsed with Python's ``ast`` and checked node by node against a
whitelist; the SymPy objects are then built here by hand. ``sympify``, ``parse_expr`` and ``eval``
are never applied to spec text, so a spec cannot run code.
"""

from __future__ import annotations

import ast
import hashlib
import keyword
import math
import re
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import sympy

from symlstm.lang.primitives import FUNCTIONS
from symlstm.lang.sizes import HIDDEN_SIZE, INPUT_SIZE, Size, shape

INPUT = "x"
PREV_SUFFIX = "_prev"
MAX_EQUATION_CHARS = 2000
MAX_EXPRESSION_DEPTH = 40
MAX_EQUATIONS = 200
MAX_INT_EXPONENT = 8
MAX_SPEC_BYTES = 100_000
MAX_NAME_CHARS = 64
#: syntax-tree nodes in all equations together (the LSTM's six equations have ~60); with the
#: limit on factors this bounds the derivation's time (a product of n factors has n terms of
#: n - 1 factors in its derivative) to seconds
MAX_SPEC_NODES = 2000
MAX_PRODUCT_FACTORS = 32
MAX_TEXT_CHARS = 300  # title and each reference
MAX_REFERENCES = 50
#: largest magnitude of a number in an equation after SymPy folds its constants (1e300 * 1e300 would
#: print as ``inf`` in a kernel; the headroom keeps the derivatives' constants finite too)
MAX_CONSTANT = 1e100

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*\Z")
_TOP_LEVEL_KEYS = {"name", "title", "references", "state", "equations"}


class SpecError(ValueError):
    """A spec that cannot be turned into a cell; the message says where and why."""


class MatVec(sympy.Function):
    """``M @ v``: a matrix-vector product, the only non-elementwise operation in a cell."""

    nargs = 2

    @property
    def matrix(self) -> sympy.Symbol:
        return self.args[0]

    @property
    def operand(self) -> sympy.Expr:
        return self.args[1]


def symbol(name: str) -> sympy.Symbol:
    """The SymPy symbol of a spec name (one place, so every stage agrees on assumptions)."""
    return sympy.Symbol(name, real=True)


@dataclass(frozen=True)
class Equation:
    target: str
    expr: sympy.Expr
    text: str


@dataclass(frozen=True)
class CellSpec:
    """A parsed, validated cell: what the equations say, before any derivation."""

    name: str
    title: str
    references: tuple[str, ...]
    states: tuple[str, ...]
    equations: tuple[Equation, ...]
    #: weight matrix name -> its (rows, columns) sizes, e.g. ("H", "D") for W_i @ x
    matrices: dict[str, tuple[Size, Size]] = field(hash=False)
    #: per-unit parameter vectors, in order of first use
    vectors: tuple[str, ...]
    source: str
    sha256: str
    #: the size of every vector: the input, the states, the intermediates and the parameter vectors
    sizes: dict[str, Size] = field(hash=False, default_factory=dict)

    @property
    def output(self) -> str:
        return self.states[0]

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(self.matrices) + self.vectors

    def param_shapes(self, D: int, H: int) -> dict[str, tuple[int, ...]]:
        bindings = {INPUT_SIZE: D, HIDDEN_SIZE: H}
        shapes: dict[str, tuple[int, ...]] = {}
        for name, sizes in self.matrices.items():
            shapes[name] = shape(sizes, bindings)
        for name in self.vectors:
            shapes[name] = shape((self.sizes[name],), bindings)
        return shapes


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


def _check_text(value: object, what: str) -> str:
    """Free text (title, references): one line of printable text, so it can sit in a generated
    module's docstring and a LaTeX heading without changing either."""
    if not isinstance(value, str):
        raise SpecError(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT_CHARS:
        raise SpecError(f"{what} is {len(value)} characters long; at most {MAX_TEXT_CHARS} are allowed")
    bad = next((ch for ch in value if not ch.isprintable()), None)
    if bad is not None:
        raise SpecError(
            f"{what} contains the control or non-printable character {bad!r} at position "
            f"{value.index(bad)}; it must be a single line of printable text"
        )
    return value


def equation_label(target: str, text: str, limit: int = 160) -> str:
    """How messages name an equation: ``equation h = 'o * tanh(c)'`` (long text shortened)."""
    shown = text if len(text) <= limit else text[:limit] + " ..."
    return f"equation {target} = {shown!r}"


def _check_variable_name(name: str, where: str) -> None:
    """The words of the spec language are ``x``, ``<state>_prev`` and the function names; every
    other valid name is the user's (generated names come from a namer that avoids them)."""
    validate_name(name, f"{where}: name")
    if name in FUNCTIONS:
        raise SpecError(f"{where}: {name!r} is a function name and cannot be used as a variable")
    if name == INPUT:
        raise SpecError(f"{where}: {INPUT!r} is the input; give this quantity another name")


class _ExpressionBuilder:
    """Turns one equation's ``ast`` into SymPy, accepting only whitelisted nodes."""

    _BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@"}

    def __init__(self, target: str, text: str, known: set[str], states: tuple[str, ...]):
        self.where = equation_label(target, text)
        self.known = known
        self.states = states
        self.names: list[tuple[str, str]] = []  # (name, role) with role in {"matrix", "value"}

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
            "+ - * / ** @, parentheses and calls of " + ", ".join(sorted(FUNCTIONS)),
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
        allowed = ", ".join(sorted(FUNCTIONS))
        if not isinstance(node.func, ast.Name):
            raise self.fail(f"only the functions {allowed} can be called", node)
        func = node.func.id
        if func not in FUNCTIONS:
            raise self.fail(f"unknown function {func!r}; allowed functions: {allowed}", node)
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise self.fail(f"{func}() takes exactly one positional argument", node)
        return FUNCTIONS[func](self.build(node.args[0], depth + 1))

    def name(self, node: ast.Name) -> sympy.Expr:
        name = node.id
        if name == INPUT:
            raise self.fail(
                "the input x can only be used as the right operand of a matrix product, e.g. 'W_i @ x'", node
            )
        if name in FUNCTIONS:
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
        _check_variable_name(name, self.where)
        self.names.append((name, "value"))
        return symbol(name)

    def matvec(self, node: ast.BinOp, depth: int) -> sympy.Expr:
        if not isinstance(node.left, ast.Name):
            raise self.fail("the left operand of @ must be a weight matrix name (write 'W @ x', not 'x @ W')", node)
        matrix = node.left.id
        if matrix == INPUT or matrix.endswith(PREV_SUFFIX) or matrix in self.known:
            raise self.fail(
                f"the left operand of @ must be a weight matrix, but {matrix!r} is a "
                "vector; write 'W @ x', not 'x @ W'",
                node,
            )
        _check_variable_name(matrix, self.where)
        self.names.append((matrix, "matrix"))
        if isinstance(node.right, ast.Name) and node.right.id == INPUT:
            operand = symbol(INPUT)
        else:
            operand = self.build(node.right, depth + 1)
            if any(isinstance(a, MatVec) for a in sympy.preorder_traversal(operand)):
                raise self.fail(
                    "nested matrix products are not supported; name the inner product in an equation of its own", node
                )
        return MatVec(symbol(matrix), operand)


def _read_text(source: str | bytes | Path) -> tuple[str, str]:
    """Return (spec text, what to call it in messages)."""
    if isinstance(source, Path):
        try:
            with open(source, "rb") as fh:  # read no more than the limit, whatever the file is
                raw = fh.read(MAX_SPEC_BYTES + 1)
        except OSError as err:
            raise SpecError(f"cannot read spec file {source}: {err.strerror or err}") from None
        label = str(source)
    elif isinstance(source, bytes):
        raw, label = source, "spec"
    else:
        return source, "spec"
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"{label} is larger than {MAX_SPEC_BYTES} bytes, the limit for a spec")
    try:
        return raw.decode("utf-8"), label
    except UnicodeDecodeError as err:
        raise SpecError(f"{label} is not UTF-8 text (byte {err.start}): save it as UTF-8") from None


def parse_spec(source: str | bytes | Path) -> CellSpec:
    """Parse and validate a spec; raise ``SpecError`` naming the problem."""
    text, label = _read_text(source)
    if not text.strip():
        raise SpecError(f"{label} is empty; a spec needs name, state and [equations]")
    if len(text.encode("utf-8")) > MAX_SPEC_BYTES:
        raise SpecError(f"{label} is larger than {MAX_SPEC_BYTES} bytes")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _toml_error(text, label, err) from None
    except RecursionError:
        raise SpecError(f"{label} is not valid TOML: its tables or arrays are nested too deeply") from None

    unknown = sorted(set(data) - _TOP_LEVEL_KEYS)
    if unknown:
        raise SpecError(f"{label}: unknown keys {unknown}; allowed: {sorted(_TOP_LEVEL_KEYS)}")
    for key in ("name", "state", "equations"):
        if key not in data:
            raise SpecError(f"{label}: missing required key {key!r}")
    name = validate_name(data["name"], "cell name")
    title = _check_text(data.get("title", name), f"{label}: title")
    references = data.get("references", [])
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        raise SpecError(f"{label}: references must be a list of strings")
    if len(references) > MAX_REFERENCES:
        raise SpecError(f"{label}: more than {MAX_REFERENCES} references")
    for k, reference in enumerate(references):
        _check_text(reference, f"{label}: references[{k}]")

    states = data["state"]
    if not isinstance(states, list) or not states:
        raise SpecError(f'{label}: state must be a non-empty list of names, e.g. state = ["h", "c"]')
    for s in states:
        _check_variable_name(validate_name(s, "state"), f"{label}: state")
        if s.endswith(PREV_SUFFIX):
            raise SpecError(f"{label}: state {s!r} must not end in {PREV_SUFFIX!r}")
    if len(set(states)) != len(states):
        raise SpecError(f"{label}: state lists a name twice: {states}")
    states = tuple(states)

    table = data["equations"]
    if not isinstance(table, dict) or not table:
        raise SpecError(f'{label}: [equations] must be a table of name = "expression" lines')
    if len(table) > MAX_EQUATIONS:
        raise SpecError(f"{label}: more than {MAX_EQUATIONS} equations")

    equations: list[Equation] = []
    nodes = 0
    defined: set[str] = set()
    roles: dict[str, str] = {}
    matrix_shape: dict[str, tuple[Size, Size]] = {}
    vectors: list[str] = []
    matrix_order: list[str] = []
    for target, text_ in table.items():
        where = f"equation {target!r}"
        _check_variable_name(target, where)
        if target in roles:
            raise SpecError(f"{where}: {target!r} is already used as a parameter by an earlier equation")
        if target.endswith(PREV_SUFFIX):
            raise SpecError(f"{where}: cannot assign to {target!r}; last step's values are inputs")
        if not isinstance(text_, str):
            raise SpecError(f'{where}: the right-hand side must be a string, e.g. {target} = "..."')
        if len(text_) > MAX_EQUATION_CHARS:
            raise SpecError(f"{where}: longer than {MAX_EQUATION_CHARS} characters")
        if not text_.strip():
            raise SpecError(f"{equation_label(target, text_)}: the expression is empty")
        if "\0" in text_:
            raise SpecError(f"{equation_label(target, text_)}: contains a null character")
        try:
            with warnings.catch_warnings():  # e.g. "invalid decimal literal": the error says it
                warnings.simplefilter("ignore", SyntaxWarning)
                tree = ast.parse(text_.strip(), mode="eval")
        except SyntaxError as err:
            at = f"line {err.lineno}, column {err.offset}" if (err.lineno or 1) > 1 else f"column {err.offset}"
            raise SpecError(f"{equation_label(target, text_)}: syntax error at {at}: {err.msg}") from None
        except (RecursionError, MemoryError):
            raise SpecError(f"{equation_label(target, text_)}: expression too deeply nested") from None
        except ValueError as err:  # e.g. characters the parser refuses
            raise SpecError(f"{equation_label(target, text_)}: cannot be parsed: {err}") from None
        nodes += sum(1 for _ in ast.walk(tree))
        if nodes > MAX_SPEC_NODES:
            raise SpecError(
                f"{equation_label(target, text_)}: the equations up to this one have {nodes} "
                f"operations and names; a spec may have at most {MAX_SPEC_NODES}"
            )
        builder = _ExpressionBuilder(target, text_, defined, states)
        try:
            expr = builder.build(tree)
        except RecursionError:
            raise SpecError(f"{equation_label(target, text_)}: expression too deeply nested") from None
        _check_constants(expr, f"{equation_label(target, text_)}")
        _check_products(expr, f"{equation_label(target, text_)}")
        for used, role in builder.names:
            _classify(used, role, target, text_, defined, table, roles, states)
        for mv in sorted(expr.atoms(MatVec), key=sympy.default_sort_key):
            # every vector is H but the input (D); the next issue infers sizes from context
            columns = INPUT_SIZE if mv.operand == symbol(INPUT) else HIDDEN_SIZE
            matrix = mv.matrix.name
            if isinstance(mv.operand, sympy.Symbol) and roles.get(mv.operand.name) == "vector":
                raise SpecError(
                    f"{equation_label(target, text_)}: '{matrix} @ {mv.operand.name}' multiplies "
                    f"the parameter vector {mv.operand.name!r}, which is the same at every step; "
                    "use a bias vector instead, or multiply x, a state's _prev value or a "
                    "computed vector"
                )
            if matrix_shape.setdefault(matrix, (HIDDEN_SIZE, columns)) != (HIDDEN_SIZE, columns):
                raise SpecError(
                    f"{equation_label(target, text_)}: the matrix {matrix!r} multiplies "
                    "both the input x (H x D) and a hidden vector (H x H); use two matrices"
                )
        for used, role in builder.names:
            order = vectors if roles.get(used) == "vector" else matrix_order if role == "matrix" else None
            if order is not None and used not in order:
                order.append(used)
        defined.add(target)
        equations.append(Equation(target, expr, text_))

    for s in states:
        if s not in defined:
            raise SpecError(f"state {s!r} has no equation; add '{s} = \"...\"' to [equations]")
    if not any(mv.operand == symbol(INPUT) for eq in equations for mv in eq.expr.atoms(MatVec)):
        raise SpecError(f"{label}: no equation uses the input x (through a product like 'W @ x')")
    matrices = {m: matrix_shape[m] for m in matrix_order}
    sizes: dict[str, Size] = {INPUT: INPUT_SIZE}
    sizes.update({eq.target: HIDDEN_SIZE for eq in equations})
    sizes.update({v: HIDDEN_SIZE for v in vectors})
    return CellSpec(
        name=name,
        title=title,
        references=tuple(references),
        states=states,
        equations=tuple(equations),
        matrices=matrices,
        vectors=tuple(vectors),
        source=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        sizes=sizes,
    )


def _check_constants(expr: sympy.Expr, where: str) -> None:
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


def _check_products(expr: sympy.Expr, where: str) -> None:
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Mul) and len(node.args) > MAX_PRODUCT_FACTORS:
            raise SpecError(
                f"{where}: a product of {len(node.args)} factors; at most "
                f"{MAX_PRODUCT_FACTORS} are allowed (name part of it in an equation of its own)"
            )


_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def _toml_error(text: str, label: str, err: Exception) -> SpecError:
    """A TOML error as a SpecError that says which line and, for a repeated key, which name."""
    message = str(err)
    match = _TOML_POSITION.search(message)
    if not match:
        return SpecError(f"{label} is not valid TOML: {message}")
    lineno = int(match.group(1))
    lines = text.splitlines()
    line = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
    if message.startswith("Cannot overwrite a value") and "=" in line:
        key = line.split("=", 1)[0].strip().strip("\"'")[:80]
        section = ""
        first = None
        for k, candidate in enumerate(lines[: lineno - 1], start=1):
            stripped = candidate.strip()
            if stripped.startswith("[") and stripped.endswith("]"):
                section = stripped.strip("[] ")
                first = None
            elif "=" in stripped and stripped.split("=", 1)[0].strip().strip("\"'") == key:
                first = k
        earlier = f" (first at line {first})" if first else ""
        if section == "equations":
            return SpecError(
                f"{label} is not valid TOML: line {lineno}: equation {key!r} is defined "
                f"twice{earlier}; each name may be defined once (give an intermediate "
                "value a name of its own)"
            )
        return SpecError(
            f"{label} is not valid TOML: line {lineno}: the key {key!r} is given twice{earlier}; give each key once"
        )
    return SpecError(f"{label} is not valid TOML: {message}; line {lineno}: {line[:120]!r}")


def _classify(used, role, target, text, defined, table, roles, states) -> None:
    """Decide what a name is (matrix, parameter vector, earlier value) and reject conflicts."""
    where = equation_label(target, text)
    if used.endswith(PREV_SUFFIX):
        return
    if used == target:
        prev = f"; for last step's value write {target}_prev" if target in states else ""
        raise SpecError(f"{where}: {target!r} is defined in terms of itself{prev}")
    if used in table and used not in defined:
        hint = f" (for last step's value write {used}_prev)" if used in states else ""
        raise SpecError(
            f"{where}: uses {used!r} before its equation; equations run in order and must not form a cycle{hint}"
        )
    if used in defined:
        if role == "matrix":
            raise SpecError(f"{where}: {used!r} is a computed vector and cannot be a matrix")
        return
    kind = "matrix" if role == "matrix" else "vector"
    previous = roles.setdefault(used, kind)
    if previous != kind:
        raise SpecError(f"{where}: {used!r} is used both as a matrix (left of @) and as a vector")
