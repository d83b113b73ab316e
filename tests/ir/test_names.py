"""No valid spec name collides with a generated one: only ``x``, ``<state>_prev`` and the function
names are words of the spec language; everything the generators make up comes from a namer that
knows the spec's names (symlstm/ir/names.py, symlstm/backends/numba/names.py).

A hypothesis property test gives names that the kernels, the derivation and Python itself use
(loop indices, row bounds, sizes, buffers, temporaries, adjoints, builtins) to every role a name
can have in a spec (state, intermediate, parameter vector, matrix), and checks that the cell
builds, compiles and passes finite differences. Each example costs a Numba compile of a few
seconds, so few examples run, derandomized (set SYMLSTM_HYPOTHESIS_EXAMPLES to run more).
"""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symlstm
from symlstm.backends import kernel_backend
from symlstm.ir.derive import derive
from symlstm.ir.names import Namer
from symlstm.ir.nodes import Kind
from symlstm.lang.spec import parse_spec
from symlstm.runtime import Cell

#: the names issue 11 lists: the kernels' loop indices, row bounds, sizes, constants and buffers
ISSUE_NAMES = "b t k j lo hi rows one dtype np numba T B D H tmp0 d_x carry_h seq_h keep_i proj_x".split()
#: ... and more that the generated code, the derivation or Python use for something of their own
OTHER_NAMES = "tmp1 i_bar W_x M_x_T dx dys empty range len step_gemm grad_b delta_x c_row zero const_0"
HOSTILE = ISSUE_NAMES + (OTHER_NAMES + " E I pi min unit_sum d_h h_row buf_c").split()
EXAMPLES = int(os.environ.get("SYMLSTM_HYPOTHESIS_EXAMPLES", "4"))

#: one cell with every role: two states, two intermediates (one an activation with a
#: pre-activation, one inside a composite GEMM operand), three vectors, four matrices
TEMPLATE = """name = "named"
state = ["{S1}", "{S2}"]
[equations]
{G} = "sigmoid({MW} @ x + {MR} @ {S1}_prev + {V1})"
{N} = "tanh({MW2} @ x + {MR2} @ ({G} * {S1}_prev) + {V2})"
{S2} = "{G} * {S2}_prev + (1 - {G}) * {N}"
{S1} = "tanh({S2}) * {V3} + {S2}"
"""
ROLES = ("S1", "S2", "G", "N", "V1", "V2", "V3", "MW", "MR", "MW2", "MR2")


def build(text: str) -> Cell:
    spec = parse_spec(text)
    return Cell(spec, kernel_backend().load(spec))


def assert_passes_finite_differences(cell: Cell) -> None:
    report = symlstm.gradcheck(cell, T=3, B=2, D=3, H=4)
    assert report.passed, report.table()


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.permutations(HOSTILE))
def test_any_valid_name_in_any_role_builds_and_passes_finite_differences(names):
    chosen = dict(zip(ROLES, names))
    assert_passes_finite_differences(build(TEMPLATE.format(**chosen)))


@pytest.mark.parametrize("names", [ISSUE_NAMES[:11], ISSUE_NAMES[10:]], ids=["first", "second"])
def test_the_names_issue_11_lists_in_every_role(names):
    cell = build(TEMPLATE.format(**dict(zip(ROLES, names))))
    assert_passes_finite_differences(cell)
    assert cell.state_names == (names[0], names[1]) and set(cell.param_names) == set(names[4:])


# -- the failures issue 11 quotes, as regression tests ------------------------------------------------
def one_state(equation: str) -> str:
    return f'name = "quoted"\nstate = ["h"]\n[equations]\n{equation}\n'


@pytest.mark.parametrize(
    "equation",
    [
        'h = "tanh(W @ x + R @ h_prev + lo)"',  # was SyntaxError: duplicate argument 'lo'
        'h = "tanh(W @ x + R @ h_prev + hi)"',
        'h = "tanh(W @ x + R @ h_prev + c0) * one"',  # was a Numba TypingError inside backward
        'rows = "tanh(W @ x + R @ h_prev + b)"\nh = "rows"',  # an intermediate named rows: TypingError
    ],
)
def test_quoted_collisions_now_build_and_pass(equation):
    assert_passes_finite_differences(build(one_state(equation)))


# -- the namer and the IR ------------------------------------------------------------------------------
def test_namer_never_hands_out_a_taken_name():
    names = Namer(["i_bar", "i_bar_2", "tmp0"])
    assert names.fresh("i_bar") == "i_bar_3"
    assert names.fresh("c") == "c" and names.fresh("c") == "c_2"
    temporaries = names.numbered("tmp")
    assert [next(temporaries) for _ in range(2)] == ["tmp1", "tmp2"]


def test_generated_symbols_avoid_the_spec_names():
    spec = parse_spec(one_state('i_bar = "W @ x"\ni = "sigmoid(i_bar + R @ h_prev)"\nh = "i * tanh(i_bar)"'))
    d = derive(spec)
    preact = [name for name, q in d.quantities.items() if q.kind == Kind.PREACT]
    assert len(preact) == 1 and preact[0] != "i_bar" and d.quantities[preact[0]].base == "i"
    assert d.kind("i_bar") == Kind.VALUE
    # every symbol has one meaning, and distinct symbols have distinct names
    assert len(set(d.quantities)) == len(d.quantities)
