"""How each primitive of the spec language is written in ONNX operators: one rule per primitive.

A rule takes the graph, the tensor names of the primitive's arguments and the name its result
must have (or None), adds its nodes and returns the result's name. Where ONNX has the function
and onnxruntime runs it in float32 and float64 (Sigmoid, Tanh, Relu, Exp, Sqrt, Log, Abs, Sin,
Cos, Max, Min) the rule is that operator. onnxruntime has no float64 kernel for Softsign,
HardSigmoid, Softplus, Elu and LeakyRelu, so those are composed of operators it has, with the
formulas of the NumPy references in ``symlstm.lang.primitives`` (softplus in its overflow-free
form max(z, 0) + log(1 + e^-|z|)); SiLU and GELU are composed as symlstm defines them
(GELU's tanh approximation as z sigmoid(v(z)), which does not cancel for z < 0).

The derivative helpers never occur in a forward pass and have no rule.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from symlstm.backends.onnx.graph import GraphBuilder

#: primitive name -> rule(graph, argument names, output name or None) -> output name
Rule = Callable[[GraphBuilder, list[str], str | None], str]
LOWERINGS: dict[str, Rule] = {}

#: as symlstm.lang.primitives computes them: v(z) = z (linear + cubic z²)
_GELU_LINEAR = 2.0 * np.sqrt(2.0 / np.pi)
_GELU_CUBIC = _GELU_LINEAR * 0.044715


def lowering(name: str) -> Callable[[Rule], Rule]:
    def register(rule: Rule) -> Rule:
        if name in LOWERINGS:
            raise ValueError(f"the ONNX lowering of {name!r} is registered twice")
        LOWERINGS[name] = rule
        return rule

    return register


def _operator(name: str, op_type: str, **attrs) -> None:
    """A primitive that is one ONNX operator of the same arguments."""
    lowering(name)(lambda g, args, out: g.op(op_type, *args, out=out, **attrs))


for _name, _op in (
    ("sigmoid", "Sigmoid"),
    ("tanh", "Tanh"),
    ("relu", "Relu"),
    ("exp", "Exp"),
    ("sqrt", "Sqrt"),
    ("log", "Log"),
    ("abs", "Abs"),
    ("sin", "Sin"),
    ("cos", "Cos"),
    ("maximum", "Max"),
    ("minimum", "Min"),
):
    _operator(_name, _op)


@lowering("softsign")
def _softsign(g: GraphBuilder, args: list[str], out: str | None) -> str:
    (z,) = args
    return g.op("Div", z, g.op("Add", g.constant(1.0), g.op("Abs", z)), out=out)


@lowering("hard_sigmoid")
def _hard_sigmoid(g: GraphBuilder, args: list[str], out: str | None) -> str:
    (z,) = args
    clipped = g.op("Clip", g.op("Add", z, g.constant(3.0)), g.constant(0.0), g.constant(6.0))
    return g.op("Div", clipped, g.constant(6.0), out=out)


def _softplus(g: GraphBuilder, z: str, out: str | None) -> str:
    """log(1 + e^z) = max(z, 0) + log(1 + e^-|z|): no overflow for large |z|."""
    tail = g.op("Log", g.op("Add", g.constant(1.0), g.op("Exp", g.op("Neg", g.op("Abs", z)))))
    return g.op("Add", g.op("Relu", z), tail, out=out)


@lowering("softplus")
def _softplus_rule(g: GraphBuilder, args: list[str], out: str | None) -> str:
    return _softplus(g, args[0], out)


@lowering("logsigmoid")
def _logsigmoid(g: GraphBuilder, args: list[str], out: str | None) -> str:
    return g.op("Neg", _softplus(g, g.op("Neg", args[0]), None), out=out)


def _positive_or(g: GraphBuilder, z: str, other: str, out: str | None) -> str:
    """z where z > 0, else ``other``."""
    return g.op("Where", g.op("Greater", z, g.constant(0.0)), z, other, out=out)


@lowering("elu")
def _elu(g: GraphBuilder, args: list[str], out: str | None) -> str:
    (z,) = args
    below = g.op("Sub", g.op("Exp", g.op("Min", z, g.constant(0.0))), g.constant(1.0))
    return _positive_or(g, z, below, out)


@lowering("leaky_relu")
def _leaky_relu(g: GraphBuilder, args: list[str], out: str | None) -> str:
    (z,) = args
    return _positive_or(g, z, g.op("Mul", z, g.constant(0.01)), out)


@lowering("silu")
def _silu(g: GraphBuilder, args: list[str], out: str | None) -> str:
    (z,) = args
    return g.op("Mul", z, g.op("Sigmoid", z), out=out)


@lowering("gelu")
def _gelu(g: GraphBuilder, args: list[str], out: str | None) -> str:
    (z,) = args
    slope = g.op("Add", g.constant(_GELU_LINEAR), g.op("Mul", g.constant(_GELU_CUBIC), g.op("Mul", z, z)))
    return g.op("Mul", z, g.op("Sigmoid", g.op("Mul", z, slope)), out=out)
