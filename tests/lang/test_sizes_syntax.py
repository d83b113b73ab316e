"""The spec language's sizes, reductions, x elementwise and extra inputs: what a spec may say,
what is inferred from it, and the SpecError for what it may not say."""

import pytest

import symlstm
from symlstm.lang.spec import parse_spec


def spec(equations: str, states: str = '["h"]', tables: str = "") -> str:
    return f'name = "t"\nstate = {states}\n{tables}\n[equations]\n{equations}\n'


def test_sizes_table_gives_a_state_another_size_and_matrices_follow():
    s = parse_spec(
        spec(
            'c = "tanh(W @ x + R @ h_prev + b)"\nh = "P_h @ c"',
            states='["h", "c"]',
            tables='[sizes]\nh = "P"',
        )
    )
    assert s.sizes["h"] == "P" and s.sizes["c"] == "H" and s.sizes["b"] == "H"
    assert s.matrices == {"W": ("H", "D"), "R": ("H", "P"), "P_h": ("P", "H")}
    assert s.size_names == ("D", "H", "P")
    assert s.param_shapes(3, 5, P=2) == {"W": (5, 3), "R": (5, 2), "P_h": (2, 5), "b": (5,)}
    assert s.state_sizes(3, 5, P=2) == {"h": 2, "c": 5}


def test_a_parameter_vector_takes_the_size_of_its_context():
    s = parse_spec(
        spec(
            'k = "sigmoid(w @ h_prev + b_k)"\nh = "tanh(W @ x + u * h_prev) * k + s * mean(h_prev)"',
            tables="[sizes]\nk = 1",
        )
    )
    # k is one number per batch row: its matrix is 1 x H and its bias a learnable scalar
    assert s.sizes["k"] == 1 and s.sizes["b_k"] == 1 and s.matrices["w"] == (1, "H")
    assert s.sizes["u"] == "H" and s.sizes["s"] == "H"


def test_an_intermediate_takes_the_size_of_its_expression():
    s = parse_spec(spec('mu = "mean(W @ x)"\nh = "tanh(W @ x - mu + R @ h_prev)"'))
    assert s.sizes["mu"] == 1


def test_inputs_table_and_x_elementwise():
    s = parse_spec(spec('h = "m * tanh(W @ x + R @ h_prev) + (1 - m) * x * dt"', tables='[inputs]\nm = "H"\ndt = 1'))
    assert s.inputs == {"m": "H", "dt": 1}
    assert [r.sizes for r in s.requirements] == [("D", "H")]
    with pytest.raises(ValueError, match=r"needs D == H .*uses the input x elementwise.*D=3 and H=5"):
        s.param_shapes(3, 5)
    assert s.param_shapes(5, 5)["W"] == (5, 5)


@pytest.mark.parametrize(
    "text, message",
    [
        (spec('h = "tanh(W @ x + R @ h_prev)"', tables='[sizes]\nq = "P"'), "which is not a vector of the spec"),
        (spec('h = "tanh(W @ x + R @ h_prev)"', tables='[sizes]\nW = "P"'), "which is a matrix"),
        (spec('h = "tanh(W @ x + R @ h_prev)"', tables="[sizes]\nh = 0"), "between 1 and"),
        (spec('h = "tanh(W @ x + R @ h_prev)"', tables="[sizes]\nh = 1.5"), "a size is a size name"),
        (spec('h = "tanh(W @ x + R @ h_prev)"', tables='[sizes]\nh = "no good"'), "not a valid name"),
        (spec('a = "W @ x"\nh = "a * h_prev"', tables='[sizes]\na = "P"'), "vector of size P with one of size H"),
        (spec('h = "tanh(W @ x + sum(h_prev) * mean(2))"'), r"mean\(\) of a size-1 value"),
        (spec('h = "tanh(W @ x + sum(W))"'), "both as a matrix"),
        (spec('h = "tanh(W @ x + m)"', tables='[inputs]\nm = "H"\nq = 1'), "'q' is not used"),
        (spec('h = "tanh(W @ x + R @ m)"', tables='[inputs]\nm = "H"'), "extra input"),
        (spec('h = "tanh(W @ x)"', tables='[inputs]\nh = "H"'), "is a state or has an equation"),
        (spec('h = "tanh(W @ x + sum(h_prev, h_prev))"'), "exactly one positional argument"),
        (spec('h = "tanh(W @ x + R @ h_prev)"', tables="[shapes]\nh = 1"), "unknown keys"),
    ],
    ids=lambda v: v if len(v) < 60 else None,
)
def test_bad_sizes_and_inputs_raise_spec_error(text, message):
    with pytest.raises(symlstm.SpecError, match=message):
        parse_spec(text)


def test_a_size_mismatch_names_the_equation_and_both_sizes():
    text = spec('a = "W @ x"\nh = "tanh(R @ h_prev + a)"', states='["h"]', tables='[sizes]\na = "P"')
    with pytest.raises(symlstm.SpecError, match=r"equation h = 'tanh\(R @ h_prev \+ a\)'.*size P with one of size H"):
        parse_spec(text)


def test_missing_and_unknown_sizes_are_named():
    s = parse_spec(spec('c = "tanh(W @ x + R @ h_prev)"\nh = "M @ c"', states='["h", "c"]', tables='[sizes]\nh = "P"'))
    with pytest.raises(ValueError, match="needs the size 'P': give it as P=<positive integer>"):
        s.param_shapes(3, 5)
    with pytest.raises(ValueError, match=r"has no size named \['Q'\]"):
        s.param_shapes(3, 5, P=2, Q=1)
    with pytest.raises(ValueError, match="the size P must be a positive integer, got 0"):
        s.param_shapes(3, 5, P=0)
