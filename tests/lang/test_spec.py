"""Spec parsing: the built-ins parse; malformed and hostile specs raise SpecError naming the problem."""

from pathlib import Path

import pytest

import symlstm
from symlstm.lang.spec import parse_spec

LSTM_HEAD = 'name = "t"\nstate = ["h", "c"]\n[equations]\n'


def spec_with(*equations: str, head: str = LSTM_HEAD) -> str:
    return head + "\n".join(equations) + "\n"


def test_builtins_parse_with_design_names():
    for name in symlstm.variants():
        spec = symlstm.cell(name).spec
        assert spec.states[0] == "h"
    lstm = symlstm.cell("lstm")
    assert lstm.param_shapes(3, 5) == {
        **{f"W_{k}": (5, 3) for k in "ifgo"},
        **{f"R_{k}": (5, 5) for k in "ifgo"},
        **{f"b_{k}": (5,) for k in "ifgo"},
    }
    peep = symlstm.cell("peephole").param_shapes(3, 5)
    assert peep["p_i"] == peep["p_f"] == peep["p_o"] == (5,)
    assert "p_g" not in peep


def test_variants_lists_both_lstm_versions():
    assert {"lstm", "peephole"} <= set(symlstm.variants())


def test_minimal_user_spec():
    spec = parse_spec(
        spec_with(
            'z = "sigmoid(W_z @ x + R_z @ h_prev + b_z)"', 'c = "z * c_prev + (1 - z) * tanh(W_c @ x)"', 'h = "c"'
        )
    )
    assert spec.matrices == {"W_z": ("H", "D"), "R_z": ("H", "H"), "W_c": ("H", "D")}
    assert spec.vectors == ("b_z",)


@pytest.mark.parametrize(
    "equations, message",
    [
        (('i = "sigmoid(W_i @ x + q_prev)"',), "not a state"),
        (('i = "sigmoid(W_i @ x + f)"', 'f = "sigmoid(i)"'), "before its equation"),
        (('i = "sigmoid(W_i @ x + i)"',), "in terms of itself"),
        (('i = "softmax(W_i @ x)"',), "unknown function 'softmax'"),
        (('i = "sigmoid(x @ W_i)"',), "left operand of @"),
        (('i = "sigmoid(W_i @ x + W_i)"',), "both as a matrix"),
        (('i = "sigmoid(W_i @ x + sum(W_i))"',), "both as a matrix"),
        (('i = "sigmoid(W_i @ x + mean(h_prev, c_prev))"',), "exactly one positional argument"),
        (('i = "sigmoid(W_i @ x +)"',), "syntax error at column"),
        (('i = "W_i @ x if b else 0"',), "IfExp"),
        (('i = "W_i @ x + c ** b"',), "exponent must be a number"),
        (('i = "W_i @ x + c ** 100"',), "larger than"),
        (('i = "W_i @ x + h_prev.real"',), "Attribute"),
        (('i = "W_i @ x + (lambda: 1)()"',), "only the functions"),
        (("i = \"W_i @ x + 's'\"",), "not a real number"),
        (('i = "tanh(W_i @ x, 2)"',), "exactly one positional argument"),
        (('i = "tanh(W_i @ (R_i @ h_prev))"',), "nested matrix products"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_equations_raise_spec_error(equations, message):
    with pytest.raises(symlstm.SpecError, match=message):
        parse_spec(spec_with(*equations, 'c = "c_prev"', 'h = "c"'))


def test_error_names_the_equation():
    with pytest.raises(symlstm.SpecError, match=r"equation g = 'tanh\(W_g @ x \+ nope\(h_prev\)\)'"):
        parse_spec(spec_with('g = "tanh(W_g @ x + nope(h_prev))"', 'c = "g"', 'h = "c"'))


def test_unknown_function_lists_the_allowed_ones():
    with pytest.raises(
        symlstm.SpecError, match="allowed functions: abs, .*exp, .*identity, .*mean, .*relu, .*sum, tanh"
    ):
        parse_spec(spec_with('c = "softmax(W @ x)"', 'h = "c"'))


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("name = 'a'\n", "missing required key 'state'"),
        ('name = "a"\nstate = ["h"]\n[equations]\nh = "W @ x"\nh = "1"\n', "not valid TOML"),
        ('name = "a"\nstate = ["h", "c"]\n[equations]\nh = "W @ x"\n', "state 'c' has no equation"),
        ('name = "a"\nstate = ["h"]\n[equations]\nh = "h_prev"\n', "no equation uses the input x"),
        ('name = "../evil"\nstate = ["h"]\n[equations]\nh = "W @ x"\n', "cell name"),
        ('name = "a"\nstate = ["h"]\nrun = "rm -rf"\n[equations]\nh = "W @ x"\n', "unknown keys"),
        ('name = "a"\nstate = ["h"]\n[equations]\nh = 3\n', "must be a string"),
    ],
)
def test_bad_files_raise_spec_error(text, message):
    with pytest.raises(symlstm.SpecError, match=message):
        parse_spec(text)


def test_non_utf8_file(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_bytes(b'name = "\xff\xfe"\n')
    with pytest.raises(symlstm.SpecError, match="not UTF-8"):
        parse_spec(path)


def test_hostile_spec_runs_nothing(tmp_path: Path):
    marker = tmp_path / "marker"
    attacks = [
        f"__import__('pathlib').Path('{marker}').touch()",
        f"open('{marker}', 'w')",
        f"[open('{marker}', 'w') for _ in (1,)]",
        f'f\'{{open("{marker}", "w")}}\'',
    ]
    for attack in attacks:
        with pytest.raises(symlstm.SpecError):
            parse_spec(spec_with("c = '''" + attack + "'''", 'h = "W @ x + c"'))
    assert not marker.exists()


def test_deep_nesting_is_a_spec_error():
    deep = "(" * 500 + "x" + ")" * 500
    with pytest.raises(symlstm.SpecError):
        parse_spec(spec_with(f'c = "W @ {deep}"', 'h = "c"'))
    nested_calls = "tanh(" * 60 + "W @ x" + ")" * 60
    with pytest.raises(symlstm.SpecError, match="nested deeper"):
        parse_spec(spec_with(f'c = "{nested_calls}"', 'h = "c"'))
