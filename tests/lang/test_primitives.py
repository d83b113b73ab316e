"""The primitive registry: one registration per function, and everything the stages read of it."""

import numpy as np
import pytest
import sympy

from symlstm.backends.latex.notation import load_notation
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


def numeric(expr: sympy.Expr, z: sympy.Symbol):
    """``expr`` as a NumPy function of z, every primitive evaluated by its NumPy reference."""
    references = {p.cls.__name__: p.numpy for p in PRIMITIVES.values()}
    return sympy.lambdify(z, expr, modules=[references, "numpy"])


@pytest.mark.parametrize("name", [n for n, p in PRIMITIVES.items() if p.callable_from_spec])
def test_each_derivative_matches_its_numpy_reference(name):
    p = PRIMITIVES[name]
    z = sympy.Symbol("z", real=True)
    derivative = numeric(sympy.diff(p.cls(z), z), z)
    h = 1e-6
    finite = (p.numpy(POINTS + h) - p.numpy(POINTS - h)) / (2 * h)
    np.testing.assert_allclose(derivative(POINTS) * np.ones_like(POINTS), finite, rtol=1e-6, atol=1e-8)


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
