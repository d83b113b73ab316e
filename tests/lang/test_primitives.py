"""The primitive registry: one registration per function, and everything the stages read of it."""

import numpy as np
import pytest
import sympy

from symlstm.backends.latex.notation import NotationError, load_notation
from symlstm.backends.numba.emit import emit_module
from symlstm.backends.numba.kernel_math import PRIMITIVE_KERNELS
from symlstm.backends.numba.printer import CodegenError
from symlstm.ir.derive import derive
from symlstm.ir.nodes import Kind
from symlstm.ir.plan import StoragePlan
from symlstm.lang import primitives
from symlstm.lang.primitives import FUNCTIONS, PRIMITIVES, register
from symlstm.lang.spec import parse_spec

#: away from the kinks (relu at 0, hard sigmoid at -3 and 3), where a derivative is a convention
POINTS = np.array([-4.0, -2.5, -1.2, -0.3, 0.4, 1.1, 2.2, 3.5])
#: functions defined for positive arguments only
POSITIVE_DOMAIN = {"log", "sqrt"}
SPEC_FUNCTIONS = [n for n, p in PRIMITIVES.items() if p.callable_from_spec]


def points(name: str) -> np.ndarray:
    return np.abs(POINTS) if name in POSITIVE_DOMAIN else POINTS


def numeric(expr: sympy.Expr, *symbols: sympy.Symbol):
    """``expr`` as a NumPy function of the symbols, every primitive evaluated by its NumPy reference."""
    references = {p.cls.__name__: p.numpy for p in PRIMITIVES.values()}
    return sympy.lambdify(symbols, expr, modules=[references, "numpy"])


def derivatives(name: str, *at: np.ndarray) -> list[np.ndarray]:
    """The registered partial derivatives of a spec function at the given arguments."""
    p = PRIMITIVES[name]
    symbols = sympy.symbols(f"a0:{p.arity}", real=True)
    return [numeric(sympy.diff(p.cls(*symbols), s), *symbols)(*at) * np.ones_like(at[0]) for s in symbols]


@pytest.mark.parametrize("name", SPEC_FUNCTIONS)
def test_each_derivative_matches_its_numpy_reference(name):
    p = PRIMITIVES[name]
    h = 1e-6
    # two-argument functions at pairs that never tie
    at = [points(name)] if p.arity == 1 else [POINTS, POINTS[::-1] + 0.05]
    for k, derivative in enumerate(derivatives(name, *at)):
        up, down = list(at), list(at)
        up[k], down[k] = at[k] + h, at[k] - h
        finite = (p.numpy(*up) - p.numpy(*down)) / (2 * h)
        np.testing.assert_allclose(derivative, finite, rtol=1e-6, atol=1e-8, err_msg=f"d{name}/d argument {k}")


#: PyTorch's functions, to compare values and derivatives with (float64 autograd)
TORCH = {
    "sigmoid": "torch.sigmoid",
    "tanh": "torch.tanh",
    "relu": "torch.relu",
    "exp": "torch.exp",
    "softsign": "F.softsign",
    "hard_sigmoid": "F.hardsigmoid",
    "softplus": "F.softplus",
    "sqrt": "torch.sqrt",
    "log": "torch.log",
    "abs": "torch.abs",
    "elu": "F.elu",
    "leaky_relu": "lambda z: F.leaky_relu(z, 0.01)",
    "silu": "F.silu",
    "gelu": "lambda z: F.gelu(z, approximate='tanh')",
    "logsigmoid": "F.logsigmoid",
    "sin": "torch.sin",
    "cos": "torch.cos",
    "maximum": "torch.maximum",
    "minimum": "torch.minimum",
}
#: the kinks and domain edges, where a derivative is a convention (for two arguments: ties)
KINKS = {
    "relu": [0.0, -0.0],
    "abs": [0.0, -0.0],
    "leaky_relu": [0.0, -0.0],
    "elu": [0.0, -0.0],
    "hard_sigmoid": [-3.0, 3.0],
    "sqrt": [0.0],
    "log": [0.0],
    "maximum": [(1.0, 1.0), (0.0, -0.0), (-2.5, -2.5)],
    "minimum": [(1.0, 1.0), (0.0, -0.0), (-2.5, -2.5)],
}


#: where PyTorch itself is less exact than 1e-12: its gelu and gelu' use 1 + tanh(.), which cancels
#: for z < 0 (1.4e-12 off at z = -4; ours, from z sigmoid(v), are within 2 ulp of a long-double
#: evaluation, see test_kernel_math.py), and its hardsigmoid_backward multiplies by 1.0f / 6.0f,
#: a float32 constant, also in float64 (3e-8 off)
VALUE_RTOL = {"gelu": 1e-10}
DERIVATIVE_RTOL = {"gelu": 1e-10, "hard_sigmoid": 1e-7}


def test_every_spec_function_is_compared_with_pytorch():
    assert set(TORCH) == set(SPEC_FUNCTIONS) - {"identity"}


@pytest.mark.parametrize("name", sorted(TORCH))
def test_values_and_derivatives_match_pytorch_also_at_the_kinks(name):
    """PyTorch's autograd in float64 gives the same values and the same derivatives, at ordinary
    points and at each kink, where the derivative is a convention: relu'(0) = abs'(0) = 0,
    leaky_relu'(0) = 0.01, elu'(0) = 1, hard_sigmoid' = 0 at -3 and 3, sqrt'(0) = log'(0) = inf,
    and a tie of maximum or minimum sends half the gradient to each argument."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    reference = eval(TORCH[name], {"torch": torch, "F": F})
    p = PRIMITIVES[name]
    if p.arity == 1:
        at = [np.concatenate([points(name), KINKS.get(name, [])])]
    else:
        pairs = list(zip(POINTS, POINTS[::-1] + 0.05)) + KINKS[name]
        at = [np.array([pair[k] for pair in pairs]) for k in range(2)]
    args = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in at]
    value = reference(*args)
    value.sum().backward()
    with np.errstate(divide="ignore"):  # log(0), sqrt'(0) and log'(0) are infinite
        ours = p.numpy(*at)
        np.testing.assert_allclose(ours, value.detach().numpy(), rtol=VALUE_RTOL.get(name, 1e-12), err_msg=name)
        for k, derivative in enumerate(derivatives(name, *at)):
            rtol = DERIVATIVE_RTOL.get(name, 1e-12)
            np.testing.assert_allclose(derivative, args[k].grad.numpy(), rtol=rtol, atol=0, err_msg=f"{name} {k}")


@pytest.mark.parametrize("name", list(PRIMITIVES))
def test_every_primitive_has_a_kernel_a_rendering_and_a_label(name):
    p = PRIMITIVES[name]
    assert name in PRIMITIVE_KERNELS, f"add a kernel for {name!r} to backends/numba/kernel_math.py"
    assert p.label and p.latex
    if p.callable_from_spec:
        assert FUNCTIONS[name] is p.cls
        assert load_notation().function(name) == p.latex  # the default notation takes the registered LaTeX


def test_a_derivative_of_the_input_reaches_the_backward_and_what_is_stored(monkeypatch):
    """sin's derivative is no function of its output: registered ``of_input``, the backward reads
    the pre-activation, which the plan then stores. Without a kernel, the Numba backend says so."""
    monkeypatch.setattr(primitives, "PRIMITIVES", dict(PRIMITIVES))
    monkeypatch.setattr(primitives, "FUNCTIONS", FUNCTIONS)
    monkeypatch.setitem(FUNCTIONS, "wave", None)
    Wave = register("wave", "Wave", sympy.cos, numpy=np.sin, latex=r"\sin", label="sin", of_input=True)
    spec = parse_spec('name = "w"\nstate = ["h"]\n[equations]\nh = "wave(W @ x + R @ h_prev + b)"\n')
    d = derive(spec)
    (preact,) = d.of_kind(Kind.PREACT)
    (adjoint,) = [a for a in d.backward if d.adjoint_of(a.name) == preact]
    assert sympy.cos(sympy.Symbol(preact, real=True)) in adjoint.expr.atoms(sympy.cos)
    assert isinstance(d.forward[-1].expr, Wave)
    assert preact in StoragePlan(d).stored
    with pytest.raises(CodegenError, match="no kernel for the function Wave"):
        emit_module(d)


def test_a_rendering_is_a_name_or_a_template_that_places_the_arguments(tmp_path):
    n = load_notation()
    assert n.function_call("tanh", ["z"], power="2") == r"\tanh^{2}\left(z\right)"
    assert n.function_call("sqrt", ["z"]) == r"\sqrt{z}"
    assert n.function_call("sqrt", ["z"], power="2") == r"\left(\sqrt{z}\right)^{2}"
    assert n.function_call("maximum", ["a", "b"]) == r"\max\left(a, b\right)"
    preset = tmp_path / "mine.toml"
    preset.write_text("name = 'mine'\n[functions]\nsqrt = '\\operatorname{sqrt}'\nmaximum = '\\max\\{<a>, <b>\\}'\n")
    mine = load_notation(preset)
    assert mine.function_call("sqrt", ["z"]) == r"\operatorname{sqrt}\left(z\right)"
    assert mine.function_call("maximum", ["a", "b"]) == r"\max\{a, b\}"
    for bad in ("maximum = '\\max(<a>)'", "abs = '|<a>|'", "sqrt = '\\sqrt{<z>, <b>}'"):
        preset.write_text(f"name = 'bad'\n[functions]\n{bad}\n")
        with pytest.raises(NotationError, match="places"):
            load_notation(preset)
