"""Stage 1: spec text (TOML) -> ``CellSpec``, the cell's ordered equations as SymPy expressions.

A spec is data. Expressions are parsed with Python's ``ast`` and checked node by node against a
whitelist; the SymPy objects are then built here by hand. ``sympify``, ``parse_expr`` and ``eval``
are never applied to spec text, so a spec cannot run code.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import numbers
import re
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import sympy

from symlstm.lang.errors import SpecError, equation_label
from symlstm.lang.expressions import (
    ExpressionBuilder,
    check_constants,
    check_products,
    check_variable_name,
    validate_name,
)
from symlstm.lang.infer_sizes import Requirement, infer_sizes
from symlstm.lang.nodes import INPUT, PREV_SUFFIX, MatVec, symbol
from symlstm.lang.sizes import HIDDEN_SIZE, INPUT_SIZE, Size, evaluate, shape

__all__ = ["INPUT", "PREV_SUFFIX", "CellSpec", "Equation", "MatVec", "SpecError", "equation_label", "parse_spec"]
__all__ += ["symbol", "validate_name"]

MAX_EQUATION_CHARS = 2000
MAX_EQUATIONS = 200
MAX_SPEC_BYTES = 100_000
#: syntax-tree nodes in all equations together (the LSTM's six equations have ~60); with the
#: limit on factors this bounds the derivation's time (a product of n factors has n terms of
#: n - 1 factors in its derivative) to seconds
MAX_SPEC_NODES = 2000
MAX_TEXT_CHARS = 300  # title and each reference
MAX_REFERENCES = 50
MAX_SIZE = 1_000_000  # a fixed size in [sizes] or [inputs]

_TOP_LEVEL_KEYS = {"name", "title", "references", "state", "equations", "sizes", "inputs"}


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
    #: the extra per-step inputs (data, no gradient) and their sizes, from ``[inputs]``
    inputs: dict[str, Size] = field(hash=False, default_factory=dict)
    #: sizes that must be equal at run time (x used elementwise with a vector of size H)
    requirements: tuple[Requirement, ...] = ()

    @property
    def output(self) -> str:
        return self.states[0]

    @functools.cached_property
    def param_names(self) -> tuple[str, ...]:
        return tuple(self.matrices) + self.vectors

    @functools.cached_property
    def size_names(self) -> tuple[str, ...]:
        """The size names the spec uses: D and H, then the others (e.g. P) in order of appearance."""
        found = [INPUT_SIZE, HIDDEN_SIZE]
        for size in [*self.sizes.values(), *(s for matrix in self.matrices.values() for s in matrix)]:
            if isinstance(size, str) and size not in found:
                found.append(size)
        return tuple(found)

    def bind_sizes(self, D: int, H: int, **sizes: int) -> dict[str, int]:
        """The value of every size name, checked: each a positive integer, none missing or
        unknown, the requirements met. Raises ``ValueError`` naming the problem."""
        bindings = {INPUT_SIZE: D, HIDDEN_SIZE: H, **sizes}
        names = self.size_names
        unknown = sorted(set(bindings) - set(names))
        if unknown:
            raise ValueError(f"cell {self.name!r} has no size named {unknown}; its sizes are {list(names)}")
        for name in names:
            value = bindings.get(name)
            if value is None:
                raise ValueError(f"cell {self.name!r} needs the size {name!r}: give it as {name}=<positive integer>")
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"the size {name} must be a positive integer, got {value!r}")
            bindings[name] = int(value)
        for requirement in self.requirements:
            a, b = (evaluate(s, bindings) for s in requirement.sizes)
            if a != b:
                first, second = requirement.sizes
                raise ValueError(
                    f"cell {self.name!r} needs {first} == {second} ({requirement.where} uses the input x "
                    f"elementwise), but {first}={a} and {second}={b}"
                )
        return bindings

    def param_shapes(self, D: int, H: int, **sizes: int) -> dict[str, tuple[int, ...]]:
        bindings = self.bind_sizes(D, H, **sizes)
        shapes: dict[str, tuple[int, ...]] = {}
        for name, matrix in self.matrices.items():
            shapes[name] = shape(matrix, bindings)
        for name in self.vectors:
            shapes[name] = shape((self.sizes[name],), bindings)
        return shapes

    def state_sizes(self, D: int, H: int, **sizes: int) -> dict[str, int]:
        """state -> its number of units."""
        bindings = self.bind_sizes(D, H, **sizes)
        return {s: evaluate(self.sizes[s], bindings) for s in self.states}


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
        check_variable_name(validate_name(s, "state"), f"{label}: state")
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
    inputs = _size_table(data.get("inputs", {}), "inputs", label)
    for name_ in inputs:
        check_variable_name(name_, f"{label}: [inputs]")
        if name_ in states or name_ in table or name_.endswith(PREV_SUFFIX):
            raise SpecError(
                f"{label}: [inputs] names {name_!r}, which is a state or has an equation; an extra input "
                "is data given at every step: give it a name of its own"
            )
    equations, vectors, matrix_order = _parse_equations(table, states, frozenset(inputs), label)
    declared = _size_table(data.get("sizes", {}), "sizes", label)
    sizeable = set(states) | {eq.target for eq in equations} | set(vectors)
    for name_ in declared:
        if name_ not in sizeable:
            what = "a matrix (its shape follows from its use)" if name_ in matrix_order else "not a vector of the spec"
            raise SpecError(
                f"{label}: [sizes] gives a size to {name_!r}, which is {what}; [sizes] may name states, "
                f"intermediates and parameter vectors: {sorted(sizeable)}"
            )
    inference = infer_sizes(
        [(eq.target, eq.expr, equation_label(eq.target, eq.text)) for eq in equations], states, declared, inputs
    )
    for name_ in inputs:
        if not any(symbol(name_) in eq.expr.free_symbols for eq in equations):
            raise SpecError(f"{label}: the extra input {name_!r} is not used by any equation")
    sizes = {k: v for k, v in inference.sizes.items() if not k.endswith(PREV_SUFFIX)}
    matrices: dict[str, tuple[Size, Size]] = {}
    for m in matrix_order:
        rows, columns = inference.matrices[m]
        assert rows is not None and columns is not None
        matrices[m] = (rows, columns)
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
        inputs=inputs,
        requirements=tuple(inference.requirements),
    )


def _size_table(table: object, key: str, label: str) -> dict[str, Size]:
    """``[sizes]`` or ``[inputs]``: name -> a size name ("H", "D", "P", ...) or a positive integer."""
    if not isinstance(table, dict):
        raise SpecError(f'{label}: [{key}] must be a table of name = size lines, e.g. h = "P" or dt = 1')
    out: dict[str, Size] = {}
    for name, size in table.items():
        validate_name(name, f"{label}: [{key}] name")
        if isinstance(size, bool) or not isinstance(size, (str, int)):
            raise SpecError(
                f'{label}: [{key}] {name} = {size!r}: a size is a size name such as "H", "D" or "P", '
                "or a positive integer"
            )
        if isinstance(size, int) and not 1 <= size <= MAX_SIZE:
            raise SpecError(f"{label}: [{key}] {name} = {size}: a fixed size must be between 1 and {MAX_SIZE}")
        if isinstance(size, str):
            validate_name(size, f"{label}: [{key}] {name}: the size name")
        out[name] = size
    return out


def _parse_equations(
    table: dict, states: tuple[str, ...], inputs: frozenset[str], label: str
) -> tuple[list[Equation], list[str], list[str]]:
    """The equations in order, the parameter vectors and the matrices in order of first use."""
    equations: list[Equation] = []
    nodes = 0
    defined: set[str] = set()
    roles: dict[str, str] = {}
    vectors: list[str] = []
    matrix_order: list[str] = []
    for target, text_ in table.items():
        where = f"equation {target!r}"
        check_variable_name(target, where)
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
        builder = ExpressionBuilder(target, text_, defined, states, inputs)
        try:
            expr = builder.build(tree)
        except RecursionError:
            raise SpecError(f"{equation_label(target, text_)}: expression too deeply nested") from None
        check_constants(expr, f"{equation_label(target, text_)}")
        check_products(expr, f"{equation_label(target, text_)}")
        for used, role in builder.names:
            if role != "input":
                _classify(used, role, target, text_, defined, table, roles, states)
        for mv in sorted(expr.atoms(MatVec), key=sympy.default_sort_key):
            if isinstance(mv.operand, sympy.Symbol) and roles.get(mv.operand.name) == "vector":
                raise SpecError(
                    f"{equation_label(target, text_)}: '{mv.matrix.name} @ {mv.operand.name}' multiplies "
                    f"the parameter vector {mv.operand.name!r}, which is the same at every step; "
                    "use a bias vector instead, or multiply x, a state's _prev value or a "
                    "computed vector"
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
        raise SpecError(f"{label}: no equation uses the input x through a product like 'W @ x'")
    return equations, vectors, matrix_order


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
