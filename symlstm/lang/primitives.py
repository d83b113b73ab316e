"""The functions a spec may call: each registered once, with everything the stages need of it.

A ``Primitive`` is one block (as in JAX): the SymPy class the derivation differentiates, its
derivative written in terms of its own *output* (σ' = s(1 - s), tanh' = 1 - y²), so the backward
pass reuses the activations stored by the forward pass and the typeset equations read like the
textbooks; a NumPy reference; its default LaTeX; its diagram label; and whether it is a gate
(an output in [0, 1] that multiplies). Backends register their implementations next to their
other kernels, under the primitive's name (the Numba ones in ``backends/numba/kernel_math.py``).

Piecewise derivatives (ReLU, hard sigmoid) are primitives of their own, functions of the output
that a spec cannot call, so ``Heaviside``/``DiracDelta``/``Piecewise`` never reach a printer.
ReLU's derivative at 0 is 0, PyTorch's convention.

Adding a function: one ``register(...)`` call here, and its kernel in each kernel backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy


class Activation(sympy.Function):
    """A one-argument elementwise function whose derivative is written in terms of its output
    (or, where that is not possible, of its input)."""

    nargs = 1
    #: the name a spec uses to call it; also the name of its kernels
    spec_name: str = ""
    #: True when ``derivative`` takes the input z rather than the output y
    derivative_of_input: bool = False

    @classmethod
    def derivative(cls, value: sympy.Expr) -> sympy.Expr:
        raise NotImplementedError

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return self.derivative(self.args[0] if self.derivative_of_input else self)


class OutputFunction(sympy.Function):
    """A piecewise derivative written as a function of an activation's output; never differentiated."""

    nargs = 1
    spec_name: str = ""

    def fdiff(self, argindex: int = 1):  # pragma: no cover - the derivation differentiates once
        raise TypeError(f"{type(self).__name__} is a derivative and is not differentiated again")


class Identity(sympy.Function):
    """``identity(z)`` is just ``z``: it evaluates away so nothing downstream sees it."""

    nargs = 1
    spec_name = "identity"

    @classmethod
    def eval(cls, arg):
        return arg


@dataclass(frozen=True)
class Primitive:
    name: str
    cls: type[sympy.Function]
    #: the reference definition, elementwise on arrays
    numpy: Callable[[np.ndarray], np.ndarray]
    #: how the default notation typesets it (a notation preset may override it)
    latex: str
    #: how the cell diagrams label it
    label: str
    #: True for a gate: an output in [0, 1] that multiplies another vector
    gate: bool = False
    #: False for the derivative helpers, which a spec cannot call
    callable_from_spec: bool = True


#: name -> primitive, in registration order
PRIMITIVES: dict[str, Primitive] = {}
#: spec name -> SymPy class, the whitelist of callable names in a spec (filled by ``register``)
FUNCTIONS: dict[str, type[sympy.Function]] = {"identity": Identity}


def register(
    name: str,
    class_name: str,
    derivative: Callable[[sympy.Expr], sympy.Expr] | None,
    *,
    numpy: Callable,
    latex: str,
    label: str,
    gate: bool = False,
    of_input: bool = False,
    doc: str = "",
) -> type[sympy.Function]:
    """Define the SymPy class of a primitive and record it. ``derivative`` maps the output y to
    dy/dz (with ``of_input=True``, the input z: for functions like sin, whose derivative is no
    function of the output); ``None`` registers a derivative helper (a function of an output,
    never differentiated). A function a spec may call becomes a word of the spec language."""
    if name in PRIMITIVES:
        raise ValueError(f"the primitive {name!r} is registered twice")
    if derivative is None:
        cls = type(class_name, (OutputFunction,), {"spec_name": name, "__doc__": doc})
    else:
        cls = type(
            class_name,
            (Activation,),
            {
                "spec_name": name,
                "__doc__": doc,
                "derivative": classmethod(lambda _cls, value: derivative(value)),
                "derivative_of_input": of_input,
            },
        )
    PRIMITIVES[name] = Primitive(name, cls, numpy, latex, label, gate, callable_from_spec=derivative is not None)
    if derivative is not None:
        FUNCTIONS[name] = cls
    return cls


def primitive_of(expr: sympy.Basic) -> Primitive | None:
    """The primitive an expression node applies, or None."""
    found = PRIMITIVES.get(getattr(type(expr), "spec_name", ""))
    return found if found is not None and type(expr) is found.cls else None


# -- derivative helpers (functions of an activation's output) --------------------------------------
Positive = register(
    "positive",
    "Positive",
    None,
    numpy=lambda y: (y > 0).astype(np.asarray(y).dtype),
    latex=r"\mathbb{1}",
    label="1[>0]",
    doc="1 where y > 0, else 0: ReLU's derivative from its output (0 at the kink, as PyTorch).",
)
HardSigmoidSlope = register(
    "hard_sigmoid_slope",
    "HardSigmoidSlope",
    None,
    numpy=lambda y: np.where((y > 0) & (y < 1), 1 / 6, 0.0),
    latex=r"\tfrac{1}{6}\,\mathbb{1}",
    label="1/6·1[0<y<1]",
    doc="1/6 where 0 < y < 1, else 0: the hard sigmoid's derivative from its output.",
)

# -- the functions of the spec language --------------------------------------------------------------
Sigmoid = register(
    "sigmoid",
    "Sigmoid",
    lambda y: y * (1 - y),
    numpy=lambda z: 1.0 / (1.0 + np.exp(-z)),
    latex=r"\sigma",
    label="σ",
    gate=True,
)
Tanh = register("tanh", "Tanh", lambda y: 1 - y**2, numpy=np.tanh, latex=r"\tanh", label="tanh")
Relu = register(
    "relu", "Relu", Positive, numpy=lambda z: np.maximum(z, 0.0), latex=r"\operatorname{ReLU}", label="ReLU"
)
Exp = register("exp", "Exp", lambda y: y, numpy=np.exp, latex=r"\exp", label="exp")
Softsign = register(
    "softsign",
    "Softsign",
    lambda y: (1 - sympy.Abs(y)) ** 2,
    numpy=lambda z: z / (1.0 + np.abs(z)),
    latex=r"\operatorname{softsign}",
    label="softsign",
    doc="y = z / (1 + |z|); dy/dz = 1 / (1 + |z|)² = (1 - |y|)².",
)
HardSigmoid = register(
    "hard_sigmoid",
    "HardSigmoid",
    HardSigmoidSlope,
    numpy=lambda z: np.clip(z / 6.0 + 0.5, 0.0, 1.0),
    latex=r"\operatorname{hardsigmoid}",
    label="hardσ",
    gate=True,
    doc="PyTorch's ``Hardsigmoid``: y = clip(z/6 + 1/2, 0, 1).",
)
