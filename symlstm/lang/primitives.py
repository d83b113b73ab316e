"""The functions a spec may call: each registered once, with everything the stages need of it.

A ``Primitive`` is one block (as in JAX): the SymPy class the derivation differentiates, its
derivative written in terms of its own *output* (σ' = s(1 - s), tanh' = 1 - y²), so the backward
pass reuses the activations stored by the forward pass and the typeset equations read like the
textbooks; a NumPy reference; its default LaTeX; its diagram label; and whether it is a gate
(an output in [0, 1] that multiplies). Backends register their implementations next to their
other kernels, under the primitive's name (the Numba ones in ``backends/numba/kernel_math.py``).

Piecewise derivatives (ReLU's, abs's, maximum's) and those best computed as one formula (SiLU's,
GELU's) are primitives of their own, *derivative helpers* that a spec cannot call, so
``Heaviside``/``DiracDelta``/``Piecewise`` never reach a printer. At a kink the derivative is
PyTorch's (each registration's doc says which, and ``tests/lang/test_primitives.py`` compares them
with torch's autograd): relu'(0) = 0, abs'(0) = 0, leaky_relu'(0) = its slope, a tie of maximum or
minimum splits the gradient evenly.

A function of two arguments (``maximum``, ``minimum``) is a ``Binary``, not an ``Activation``: the
derivation treats every activation as a function of one pre-activation whose output replaces it in
derivatives; SymPy differentiates a ``Binary`` through ``fdiff``, whose partial derivatives are
derivative helpers of (a, b).

How a function is typeset is a LaTeX name (``\\tanh``), applied as ``\\tanh\\left(z\\right)``, or
a template that places its arguments itself: ``<z>`` for the one argument, ``<a>`` and ``<b>`` for
two, always where any expression may stand (``\\sqrt{<z>}``).

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


class Binary(sympy.Function):
    """An elementwise function of two arguments, differentiated by SymPy through ``fdiff``."""

    nargs = 2
    spec_name: str = ""

    @classmethod
    def partials(cls, a: sympy.Expr, b: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
        raise NotImplementedError

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return self.partials(*self.args)[argindex - 1]


class DerivativeHelper(sympy.Function):
    """A derivative written as a function of its own (of an activation's output or input, or of a
    ``Binary``'s arguments); never differentiated itself."""

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
    #: the reference definition, elementwise on arrays (of ``arity`` arguments)
    numpy: Callable[..., np.ndarray]
    #: how the default notation typesets it, a name or a template (a notation preset may override it)
    latex: str
    #: how the cell diagrams label it
    label: str
    #: True for a gate: an output in [0, 1] that multiplies another vector
    gate: bool = False
    #: False for the derivative helpers, which a spec cannot call
    callable_from_spec: bool = True
    #: the number of arguments
    arity: int = 1


#: name -> primitive, in registration order
PRIMITIVES: dict[str, Primitive] = {}
#: spec name -> SymPy class, the whitelist of callable names in a spec (filled by ``register``)
FUNCTIONS: dict[str, type[sympy.Function]] = {"identity": Identity}


def register(
    name: str,
    class_name: str,
    derivative: Callable[..., sympy.Expr | tuple[sympy.Expr, sympy.Expr]] | None,
    *,
    numpy: Callable,
    latex: str,
    label: str,
    gate: bool = False,
    of_input: bool = False,
    arity: int = 1,
    doc: str = "",
) -> type[sympy.Function]:
    """Define the SymPy class of a primitive and record it. ``derivative`` maps the output y to
    dy/dz (with ``of_input=True``, the input z: for functions like sin, whose derivative is no
    function of the output); for ``arity=2`` it maps the arguments (a, b) to the two partial
    derivatives; ``None`` registers a derivative helper (of ``arity`` arguments, never
    differentiated). A function a spec may call becomes a word of the spec language."""
    if name in PRIMITIVES:
        raise ValueError(f"the primitive {name!r} is registered twice")
    namespace: dict = {"spec_name": name, "__doc__": doc, "nargs": arity}
    if derivative is None:
        base: type[sympy.Function] = DerivativeHelper
    elif arity == 2:
        base = Binary
        namespace["partials"] = classmethod(lambda _cls, a, b: derivative(a, b))
    else:
        base = Activation
        namespace["derivative"] = classmethod(lambda _cls, value: derivative(value))
        namespace["derivative_of_input"] = of_input
    cls = type(class_name, (base,), namespace)
    PRIMITIVES[name] = Primitive(name, cls, numpy, latex, label, gate, derivative is not None, arity)
    if derivative is not None:
        FUNCTIONS[name] = cls
    return cls


def primitive_of(expr: sympy.Basic) -> Primitive | None:
    """The primitive an expression node applies, or None."""
    found = PRIMITIVES.get(getattr(type(expr), "spec_name", ""))
    return found if found is not None and type(expr) is found.cls else None


#: PyTorch's gelu(approximate="tanh") = z sigmoid(v(z)), v = 2 sqrt(2/pi) (z + 0.044715 z^3)
_GELU_LINEAR = 2.0 * np.sqrt(2.0 / np.pi)
_GELU_CUBIC = _GELU_LINEAR * 0.044715


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _gelu_argument(z):
    return z * (_GELU_LINEAR + _GELU_CUBIC * z * z)


# -- derivative helpers -----------------------------------------------------------------------------
Positive = register(
    "positive",
    "Positive",
    None,
    numpy=lambda y: (y > 0).astype(np.asarray(y).dtype),
    latex=r"\mathbb{1}\left[<z> > 0\right]",
    label="1[>0]",
    doc="1 where y > 0, else 0: ReLU's derivative from its output (0 at the kink, as PyTorch).",
)
HardSigmoidSlope = register(
    "hard_sigmoid_slope",
    "HardSigmoidSlope",
    None,
    numpy=lambda y: np.where((y > 0) & (y < 1), 1 / 6, 0.0),
    latex=r"\tfrac{1}{6}\,\mathbb{1}\left[0 < <z> < 1\right]",
    label="1/6·1[0<y<1]",
    doc="1/6 where 0 < y < 1, else 0: the hard sigmoid's derivative from its output.",
)
Sign = register(
    "sign",
    "Sign",
    None,
    numpy=lambda z: np.where(z > 0, 1.0, np.where(z < 0, -1.0, 0.0)),
    latex=r"\operatorname{sgn}\left(<z>\right)",
    label="sgn",
    doc="1 where z > 0, -1 where z < 0, 0 at 0 (and for NaN): abs's derivative, torch.sgn.",
)
OneMinusExp = register(
    "one_minus_exp",
    "OneMinusExp",
    None,
    numpy=lambda v: -np.expm1(v),
    latex=r"\left(1 - \exp\left(<z>\right)\right)",
    label="1−exp",
    doc="1 - e^v, accurate near 0: softplus' = 1 - e^-y and logsigmoid' = 1 - e^y from the output y.",
)
SiluSlope = register(
    "silu_slope",
    "SiluSlope",
    None,
    numpy=lambda z: _sigmoid(z) * (1 + z * _sigmoid(-z)),
    latex=r"\operatorname{SiLU}'\left(<z>\right)",
    label="SiLU′",
    doc="SiLU's derivative s (1 + z (1 - s)), s = sigmoid(z), of the input.",
)
GeluSlope = register(
    "gelu_slope",
    "GeluSlope",
    None,
    numpy=lambda z: (
        _sigmoid(_gelu_argument(z))
        + z * _sigmoid(_gelu_argument(z)) * _sigmoid(-_gelu_argument(z)) * (_GELU_LINEAR + 3 * _GELU_CUBIC * z * z)
    ),
    latex=r"\operatorname{GELU}'\left(<z>\right)",
    label="GELU′",
    doc="The tanh-approximate GELU's derivative s + z s (1 - s) v'(z), s = sigmoid(v(z)), of the input.",
)
MaxSlope = register(
    "max_slope",
    "MaxSlope",
    None,
    numpy=lambda a, b: np.where(a < b, 0.0, np.where(a == b, 0.5, 1.0)),
    latex=r"\left(\mathbb{1}\left[<a> > <b>\right] + \tfrac{1}{2}\,\mathbb{1}\left[<a> = <b>\right]\right)",
    label="∂max",
    arity=2,
    doc="d maximum(a, b) / da: 1 where a > b, 1/2 where a = b, 0 where a < b (1 with a NaN), as torch.maximum.",
)

# -- the functions of the spec language --------------------------------------------------------------
Sigmoid = register(
    "sigmoid",
    "Sigmoid",
    lambda y: y * (1 - y),
    numpy=_sigmoid,
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
    numpy=lambda z: np.clip(z + 3.0, 0.0, 6.0) / 6.0,
    latex=r"\operatorname{hardsigmoid}",
    label="hardσ",
    gate=True,
    doc="PyTorch's ``Hardsigmoid``: y = clip(z + 3, 0, 6) / 6 = clip(z/6 + 1/2, 0, 1).",
)
Softplus = register(
    "softplus",
    "Softplus",
    lambda y: OneMinusExp(-y),
    numpy=lambda z: np.logaddexp(0.0, z),
    latex=r"\operatorname{softplus}",
    label="softplus",
    doc="y = log(1 + e^z), exact: PyTorch's Softplus returns z itself above its threshold 20, which "
    "differs by less than e^-20. dy/dz = sigmoid(z) = 1 - e^-y.",
)
Sqrt = register(
    "sqrt",
    "Sqrt",
    lambda y: 1 / (2 * y),
    numpy=np.sqrt,
    latex=r"\sqrt{<z>}",
    label="√",
    doc="For z >= 0 (NaN below). dy/dz = 1 / (2y): inf at 0, as PyTorch.",
)
Log = register(
    "log",
    "Log",
    lambda z: 1 / z,
    numpy=np.log,
    latex=r"\log",
    label="log",
    of_input=True,
    doc="For z > 0: log 0 = -inf, NaN below. dy/dz = 1/z: inf at 0, as PyTorch.",
)
AbsoluteValue = register(
    "abs",
    "AbsoluteValue",
    lambda z: Sign(z),
    numpy=np.abs,
    latex=r"\left\lvert <z> \right\rvert",
    label="|·|",
    of_input=True,
    doc="|z|. dy/dz = sgn(z): 0 at the kink, as PyTorch (abs' = sgn).",
)
Maximum = register(
    "maximum",
    "Maximum",
    lambda a, b: (MaxSlope(a, b), MaxSlope(b, a)),
    numpy=np.maximum,
    latex=r"\max",
    label="max",
    arity=2,
    doc="torch.maximum: NaN if either is NaN; a tie splits the gradient, 1/2 to each argument.",
)
Minimum = register(
    "minimum",
    "Minimum",
    lambda a, b: (MaxSlope(b, a), MaxSlope(a, b)),
    numpy=np.minimum,
    latex=r"\min",
    label="min",
    arity=2,
    doc="torch.minimum: NaN if either is NaN; a tie splits the gradient, 1/2 to each argument.",
)
Elu = register(
    "elu",
    "Elu",
    lambda y: 1 + Minimum(y, 0),
    numpy=lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    latex=r"\operatorname{ELU}",
    label="ELU",
    doc="alpha = 1: y = z above 0, e^z - 1 below. dy/dz from the output: 1 above 0, y + 1 below, "
    "i.e. 1 + min(y, 0); 1 at 0, as PyTorch (its elu_backward gives alpha e^0 there).",
)
LeakyRelu = register(
    "leaky_relu",
    "LeakyRelu",
    lambda y: sympy.Rational(1, 100) + sympy.Rational(99, 100) * Positive(y),
    numpy=lambda z: np.where(z > 0, z, 0.01 * z),
    latex=r"\operatorname{LeakyReLU}",
    label="LeakyReLU",
    doc="Slope 0.01 below 0. dy/dz from the output: 1 where y > 0, else 0.01, also at the kink, as "
    "PyTorch (x > 0 ? 1 : slope).",
)
Silu = register(
    "silu",
    "Silu",
    lambda z: SiluSlope(z),
    numpy=lambda z: z * _sigmoid(z),
    latex=r"\operatorname{SiLU}",
    label="SiLU",
    of_input=True,
    doc="y = z sigmoid(z) (also called swish).",
)
Gelu = register(
    "gelu",
    "Gelu",
    lambda z: GeluSlope(z),
    numpy=lambda z: z * _sigmoid(_gelu_argument(z)),
    latex=r"\operatorname{GELU}",
    label="GELU",
    of_input=True,
    doc="PyTorch's gelu(approximate='tanh'): z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2, "
    "computed as z sigmoid(2 sqrt(2/pi) (z + 0.044715 z^3)), which does not cancel for z < 0.",
)
Logsigmoid = register(
    "logsigmoid",
    "Logsigmoid",
    lambda y: OneMinusExp(y),
    numpy=lambda z: -np.logaddexp(0.0, -z),
    latex=r"\log\sigma",
    label="logσ",
    doc="y = log(sigmoid(z)) = -softplus(-z). dy/dz = sigmoid(-z) = 1 - e^y.",
)
Cos: type[sympy.Function]  # registered just below: sin' = cos
Sin = register("sin", "Sin", lambda z: Cos(z), numpy=np.sin, latex=r"\sin", label="sin", of_input=True)
Cos = register("cos", "Cos", lambda z: -Sin(z), numpy=np.cos, latex=r"\cos", label="cos", of_input=True)
