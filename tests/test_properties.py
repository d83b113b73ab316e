"""Property-based tests (hypothesis).

- Random *valid* specs built from the spec grammar go through the whole pipeline (parse, derive,
  LaTeX, kernel module, Numba compile) and their backward passes finite differences, with and
  without checkpointing. Each new spec costs a Numba compile of several seconds, so only a few
  examples run, derandomized (the same ones every run, as CI needs); set
  SYMLSTM_HYPOTHESIS_EXAMPLES=30 and SYMLSTM_HYPOTHESIS_RANDOM=1 to explore more.
- Random *malformed* specs (edits of valid ones, random expressions, random TOML documents) and
  random bytes always end in SpecError or in a valid spec that derives and emits cleanly; never in
  another exception. These are cheap and run many examples.

The valid-spec grammar uses the smooth functions (sigmoid, tanh, identity, softsign, softplus,
silu, gelu, logsigmoid, sin, cos, exp of a bounded value, sqrt and log of positive values); relu,
hard_sigmoid, abs, elu, leaky_relu, maximum and minimum have kinks where finite differences are
meaningless. States are squashed or convex mixtures so that values stay bounded over time.
"""

import ast
import itertools
import json
import os

import numpy as np
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import symlstm
from symlstm.backends import kernel_backend
from symlstm.backends.latex.document import latex_document
from symlstm.backends.numba.emit import emit_module
from symlstm.ir.derive import derive
from symlstm.lang.spec import CellSpec, parse_spec
from symlstm.runtime import Cell

RANDOM = bool(os.environ.get("SYMLSTM_HYPOTHESIS_RANDOM"))
VALID_EXAMPLES = int(os.environ.get("SYMLSTM_HYPOTHESIS_EXAMPLES", "6"))

STATES = ["h", "c", "m"]
SMOOTH = ["sigmoid", "tanh", "identity", "softsign", "softplus", "silu", "gelu", "logsigmoid", "sin", "cos"]
SQUASH = ["sigmoid", "tanh", "softsign"]
#: defined for positive arguments only
POSITIVE = ["sqrt", "log"]
CONSTANTS = ["0.5", "2", "1.5", "0.25", "3"]


@st.composite
def valid_specs(draw) -> str:
    """A spec from the grammar: optional intermediate values, then one equation per state."""
    states = STATES[: draw(st.integers(1, 3))]
    intermediates = [f"u{k}" for k in range(1, draw(st.integers(0, 2)) + 1)]
    params = ["b1", "b2", "p1"]
    fresh = itertools.count(1)
    computed: list[str] = []

    def leaf() -> str:
        pool = [f"{s}_prev" for s in states] + computed + params
        return draw(st.sampled_from(pool))

    def matvec() -> str:
        matrix = f"M{next(fresh)}"
        kinds = ["x", "prev", "composite"] + (["computed"] if computed else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "x":
            return f"{matrix} @ x"
        if kind == "prev":
            return f"{matrix} @ {draw(st.sampled_from(states))}_prev"
        if kind == "computed":
            return f"{matrix} @ {draw(st.sampled_from(computed))}"
        return f"{matrix} @ ({leaf()} * {draw(st.sampled_from(states))}_prev)"

    def expr(depth: int) -> str:
        kinds = ["leaf", "const", "matvec"] + (
            ["add", "sub", "mul", "act", "div", "square", "exp"] if depth > 0 else []
        )
        kind = draw(st.sampled_from(kinds))
        if kind == "leaf":
            return leaf()
        if kind == "const":
            return draw(st.sampled_from(CONSTANTS))
        if kind == "matvec":  # in parentheses: `a * M @ v` would read as (a * M) @ v
            return f"({matvec()})"
        if kind in ("add", "sub", "mul"):
            op = {"add": "+", "sub": "-", "mul": "*"}[kind]
            return f"({expr(depth - 1)} {op} {expr(depth - 1)})"
        if kind == "act":
            function = draw(st.sampled_from(SMOOTH + POSITIVE))
            if function in POSITIVE:  # of a value bounded away from 0
                return f"{function}({expr(depth - 1)} ** 2 + 0.5)"
            return f"{function}({expr(depth - 1)})"
        if kind == "div":
            return f"{expr(depth - 1)} / {draw(st.sampled_from(CONSTANTS))}"
        if kind == "square":
            return f"{expr(depth - 1)} ** 2"
        return f"exp({draw(st.sampled_from(SQUASH))}({expr(depth - 1)}))"

    lines = []
    for k, name in enumerate(intermediates):
        text = expr(draw(st.integers(0, 2)))
        if k == 0:
            text = f"M{next(fresh)} @ x + {text}"  # every spec reads the input
        lines.append(f'{name} = "{draw(st.sampled_from(SMOOTH))}({text})"')
        computed.append(name)
    for k, state in enumerate(reversed(states)):  # h, the output, last: it may use the others
        inner = expr(draw(st.integers(0, 3)))
        if not intermediates and k == 0:
            inner = f"M{next(fresh)} @ x + {inner}"
        if draw(st.booleans()):
            gate = f"sigmoid({expr(1)})"
            text = f"{gate} * {state}_prev + (1 - {gate}) * {draw(st.sampled_from(SQUASH))}({inner})"
        else:
            text = f"{draw(st.sampled_from(SQUASH))}({inner})"
        lines.append(f'{state} = "{text}"')
        computed.append(state)
    return f'name = "prop"\nstate = {json.dumps(states)}\n[equations]\n' + "\n".join(lines) + "\n"


def check_pipeline(spec: CellSpec) -> None:
    """Derive, typeset and emit; the kernel module must be valid Python."""
    derivation = derive(spec)
    assert "\\begin{align*}" in latex_document(derivation)
    ast.parse(emit_module(derivation))


@settings(
    max_examples=VALID_EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each step would compile again
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(valid_specs())
@example(
    'name = "two"\nstate = ["h", "c"]\n[equations]\nu = "tanh(W @ x + R @ h_prev)"\n'
    'c = "sigmoid(M1 @ u + M2 @ u) * c_prev"\nh = "tanh(M3 @ u + M4 @ c_prev + b1)"\n'
)
# found by hypothesis 6.170: d_c is only the carry, which the same loop overwrites; reading the
# carry's row in its place after the store gave p1 a wrong gradient
@example(
    'name = "carry"\nstate = ["h", "c"]\n[equations]\nu1 = "identity(M1 @ x + 0.5)"\n'
    'c = "sigmoid(p1) * c_prev + (1 - sigmoid(p1)) * sigmoid(2)"\n'
    'h = "sigmoid(M4 @ u1) * h_prev + (1 - sigmoid(M4 @ u1)) * sigmoid(tanh(M3 @ (b2 * h_prev)) / 0.5)"\n'
)
def test_random_valid_specs_pass_finite_differences(text):
    spec = parse_spec(text)
    check_pipeline(spec)
    cell = Cell(spec, kernel_backend().load(spec))
    report = symlstm.gradcheck(cell, T=4, B=2, D=3, H=3)
    assert report.passed, text + "\n" + report.table()
    # checkpointing gives the same gradients
    rng = np.random.default_rng(0)
    params = cell.init_params(3, 3, seed=1)
    x = rng.standard_normal((5, 2, 3))
    dys = rng.standard_normal((5, 2, 3))
    _, _, full = cell.forward(x, params)
    _, _, checkpointed = cell.forward(x, params, checkpoint=2)
    want, got = cell.backward(dys, full), cell.backward(dys, checkpointed)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
    for name in params:
        np.testing.assert_allclose(got[1][name], want[1][name], rtol=1e-12, atol=1e-12)


# -- malformed input: SpecError or a valid spec, nothing else ------------------------------------


def parse_or_spec_error(source) -> None:
    """``parse_spec`` either raises SpecError or gives a spec the later stages accept."""
    try:
        spec = parse_spec(source)
    except symlstm.SpecError as err:
        assert str(err), "a SpecError must say what is wrong"
        return
    check_pipeline(spec)


BASE_SPECS = [
    'name = "lstm"\nstate = ["h", "c"]\n[equations]\ni = "sigmoid(W_i @ x + R_i @ h_prev + b_i)"\n'
    'f = "sigmoid(W_f @ x + R_f @ h_prev + b_f)"\ng = "tanh(W_g @ x + R_g @ h_prev + b_g)"\n'
    'c = "f * c_prev + i * g"\no = "sigmoid(W_o @ x + R_o @ h_prev + b_o)"\nh = "o * tanh(c)"\n',
    'name = "mgu"\ntitle = "Minimal gated unit"\nreferences = ["Zhou et al. 2016"]\nstate = ["h"]\n'
    '[equations]\nf = "sigmoid(W_f @ x + R_f @ h_prev + b_f)"\n'
    'n = "tanh(W_n @ x + R_n @ (f * h_prev) + b_n)"\nh = "(1 - f) * h_prev + f * n"\n',
]
# characters and fragments that make specs interesting: syntax, names, hostile bits
FRAGMENTS = list("()[]{}=\"'@*+-/.,:#\n\\ _0123456789xhc") + [
    "h_prev",
    "c_prev",
    "W_z @ x",
    "tanh(",
    "sigmoid",
    "**",
    "**9",
    "__import__",
    "lambda",
    "[equations]",
    "state",
    "name",
    "= ",
    '"',
    "'''",
    '"""',
    "\\u0000",
    "1e999",
    "é",
    "\x00",
    "\t",
    "relu(",
    "exp(",
    "if",
    "for",
    "W @ x",
    "x @ W",
    "0",
    "/ 0",
    "d_",
    "_bar",
]


@st.composite
def edited_specs(draw) -> str:
    text = draw(st.sampled_from(BASE_SPECS))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(FRAGMENTS))
        end = min(len(text), pos + draw(st.integers(1, 6)))
        if action == "insert":
            text = text[:pos] + piece + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[end:]
        else:
            text = text[:pos] + piece + text[end:]
    return text


def cheap(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=[HealthCheck.too_slow],
    )


@cheap(300)
@given(edited_specs())
def test_edited_specs_end_in_spec_error_or_a_valid_spec(text):
    parse_or_spec_error(text)


@cheap(300)
@given(st.lists(st.sampled_from(FRAGMENTS + ["h_prev", "W @ x", "b", "q", "tanh", "x"]), max_size=25))
def test_random_expressions(tokens):
    expression = "".join(tokens)
    parse_or_spec_error(f'name = "t"\nstate = ["h"]\n[equations]\nh = {json.dumps(expression)}\n')
    parse_or_spec_error(f'name = "t"\nstate = ["h"]\n[equations]\nh = {json.dumps("W @ x + " + expression)}\n')


@cheap(500)
@given(st.binary(max_size=400))
def test_random_bytes_end_in_spec_error(data):
    parse_or_spec_error(data)


@cheap(300)
@given(st.text(max_size=300))
def test_random_text_ends_in_spec_error(text):
    parse_or_spec_error(text)


def toml_value(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if np.isfinite(value) else ("nan" if np.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


TOML_VALUES = st.recursive(
    st.none().map(lambda _: "")
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["h", "c", "W @ x", "tanh(W @ x)", "h_prev", "lstm"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["h", "c", "x", "i", "W", "b_h", "__class__", "a b", ""]), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(["name", "title", "references", "state", "equations", "run", "x"])


@cheap(300)
@given(st.dictionaries(KEYS, TOML_VALUES, max_size=6))
def test_random_toml_documents(document):
    text = "".join(f"{key} = {toml_value(value)}\n" for key, value in document.items())
    parse_or_spec_error(text)
