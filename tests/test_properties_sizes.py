"""Property-based tests (hypothesis) of the sizes syntax: ``[sizes]``, ``[inputs]``, reductions and
x elementwise.

- Random valid specs that mix a second size name (a state of size P), size-1 values (a declared
  scalar gate, reductions, a size-1 input), ``sum``/``mean`` of computed vectors, extra inputs and x
  used elementwise go through the whole pipeline and their backward passes finite differences.
  Each costs a Numba compile of several seconds: a few derandomized examples (set
  SYMLSTM_HYPOTHESIS_EXAMPLES and SYMLSTM_HYPOTHESIS_RANDOM=1 to explore more).
- Random ``[sizes]`` and ``[inputs]`` tables over a fixed cell (names and sizes drawn from the
  spec's own names, other names and bad values) end in a SpecError or in a spec that derives and
  emits; never in another exception. Cheap, many examples.
"""

import ast
import json
import os

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import symlstm
from symlstm.backends import kernel_backend
from symlstm.backends.numba.emit import emit_module
from symlstm.ir.derive import derive
from symlstm.lang.spec import parse_spec
from symlstm.runtime import Cell
from symlstm.verify.gradcheck import gradcheck

RANDOM = bool(os.environ.get("SYMLSTM_HYPOTHESIS_RANDOM"))
VALID_EXAMPLES = int(os.environ.get("SYMLSTM_HYPOTHESIS_EXAMPLES", "3"))
SQUASH = ["sigmoid", "tanh", "softsign"]


@st.composite
def sized_specs(draw) -> str:
    """h (size H) and optionally p (size P, fed back through a matrix); a normalised
    intermediate; a scalar gate k (size 1); optional inputs m (H) and dt (1); x elementwise."""
    with_p = draw(st.booleans())
    with_inputs = draw(st.booleans())
    with_x = draw(st.booleans())
    reduce = draw(st.sampled_from(["sum", "mean"]))
    states = ["h", "p"] if with_p else ["h"]
    sizes = {"k": 1} | ({"p": "P"} if with_p else {})
    inputs = {"m": "H", "dt": 1} if with_inputs else {}
    feedback = " + U @ p_prev" if with_p else ""
    lines = [
        f'a = "W @ x + R @ h_prev{feedback}"',
        f'n = "(a - mean(a)) / ({reduce}((a - mean(a)) ** 2) + 1)"',
        f'k = "sigmoid(w_k @ h_prev + {draw(st.sampled_from(["b_k", "mean(n)", "sum(n) / 4"]))})"',
    ]
    candidate = f"{draw(st.sampled_from(SQUASH))}(g * n + b)"
    mix = "(1 - m) * h_prev + m * " if with_inputs else ""
    highway = " + 0.5 * x" if with_x else ""
    scale = " * dt" if with_inputs else ""
    lines.append(f'h = "{mix}(k * {candidate}{scale} + (1 - k) * h_prev){highway}"')
    if with_p:
        lines.append(f'p = "tanh(V @ h + {draw(st.sampled_from(["c", "s * mean(h)"]))})"')
    tables = "".join(
        f"[{table}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
        for table, values in (("sizes", sizes), ("inputs", inputs))
        if values
    )
    return f'name = "sized"\nstate = {json.dumps(states)}\n{tables}[equations]\n' + "\n".join(lines) + "\n"


@settings(
    max_examples=VALID_EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.generate],
)
@given(sized_specs())
def test_random_sized_specs_pass_gradcheck(text):
    spec = parse_spec(text)
    cell = Cell(spec, kernel_backend().load(spec))
    H = 4
    report = gradcheck(cell, H=H, D=H if spec.requirements else 3, sizes={"P": 3} if "P" in cell.size_names else {})
    assert report.passed, text + "\n" + report.table()


NAMES = ["h", "c", "a", "b", "k", "W", "x", "h_prev", "m", "nope"]
SIZE_VALUES = st.one_of(
    st.sampled_from(["H", "D", "P", "Q", "no good", "", "1"]),
    st.integers(-2, 5),
    st.floats(allow_nan=True),
    st.booleans(),
)
BASE = 'c = "tanh(W @ x + R @ h_prev + b)"\na = "mean(c) * k"\nh = "c * a + m"\n'


@settings(max_examples=150, deadline=None, derandomize=not RANDOM)
@given(
    st.dictionaries(st.sampled_from(NAMES), SIZE_VALUES, max_size=3),
    st.dictionaries(st.sampled_from(NAMES), SIZE_VALUES, max_size=2),
)
def test_random_size_tables_end_in_spec_error_or_a_valid_spec(sizes, inputs):
    tables = ""
    for table, values in (("sizes", sizes), ("inputs", inputs)):
        if values:
            tables += f"[{table}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
    text = f'name = "t"\nstate = ["h", "c"]\n{tables}[equations]\n{BASE}'
    try:
        spec = parse_spec(text)
    except symlstm.SpecError:
        return
    ast.parse(emit_module(derive(spec)))
