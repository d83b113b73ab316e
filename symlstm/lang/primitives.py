"""Elementwise functions a spec may call, as SymPy ``Function`` classes.

Each activation knows its derivative *in terms of its own output* (σ' = s(1-s), tanh' = 1-y²),
so the backward pass reuses the activations stored by the forward pass and the typeset equations
read like the textbooks. Piecewise derivatives (ReLU, hard sigmoid) are their own small functions
of the output, so ``Heaviside``/``DiracDelta``/``Piecewise`` never reach a printer. ReLU's
derivative at 0 is 0, PyTorch's convention.
"""
from __future__ import annotations

import sympy


class Activation(sympy.Function):
    """A one-argument elementwise function whose derivative is a function of its output."""

    nargs = 1
    #: the name a spec uses to call it
    spec_name: str = ""

    @classmethod
    def derivative_from_output(cls, y: sympy.Expr) -> sympy.Expr:
        raise NotImplementedError

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return self.derivative_from_output(self)


class OutputFunction(sympy.Function):
    """A piecewise derivative written as a function of an activation's output; never differentiated."""

    nargs = 1

    def fdiff(self, argindex: int = 1):  # pragma: no cover - the derivation differentiates once
        raise TypeError(f"{type(self).__name__} is a derivative and is not differentiated again")


class Positive(OutputFunction):
    """1 where y > 0, else 0: ReLU's derivative from its output (0 at the kink, as PyTorch)."""


class HardSigmoidSlope(OutputFunction):
    """1/6 where 0 < y < 1, else 0: the hard sigmoid's derivative from its output."""


class Sigmoid(Activation):
    spec_name = "sigmoid"

    @classmethod
    def derivative_from_output(cls, y):
        return y * (1 - y)


class Tanh(Activation):
    spec_name = "tanh"

    @classmethod
    def derivative_from_output(cls, y):
        return 1 - y**2


class Relu(Activation):
    spec_name = "relu"

    @classmethod
    def derivative_from_output(cls, y):
        return Positive(y)


class Exp(Activation):
    spec_name = "exp"

    @classmethod
    def derivative_from_output(cls, y):
        return y


class Softsign(Activation):
    """y = z / (1 + |z|); dy/dz = 1 / (1 + |z|)² = (1 - |y|)²."""

    spec_name = "softsign"

    @classmethod
    def derivative_from_output(cls, y):
        return (1 - sympy.Abs(y)) ** 2


class HardSigmoid(Activation):
    """PyTorch's ``Hardsigmoid``: y = clip(z/6 + 1/2, 0, 1)."""

    spec_name = "hard_sigmoid"

    @classmethod
    def derivative_from_output(cls, y):
        return HardSigmoidSlope(y)


class Identity(sympy.Function):
    """``identity(z)`` is just ``z``: it evaluates away so nothing downstream sees it."""

    nargs = 1
    spec_name = "identity"

    @classmethod
    def eval(cls, arg):
        return arg


#: spec name -> SymPy class, the whitelist of callable names in a spec
FUNCTIONS: dict[str, type[sympy.Function]] = {
    cls.spec_name: cls for cls in (Sigmoid, Tanh, Relu, Identity, Exp, Softsign, HardSigmoid)
}
