"""The cells ONNX has an operator for, as that operator: ``LSTM``, ``GRU``, ``RNN``.

A spec maps when its states and equations are those of a built-in that ONNX's operator computes
(``lstm`` and ``np``, whose equations are the same, ``peephole``, ``gru``, ``rnn``, ``rnn_relu``),
whatever its name. The operators want the gates stacked in their own order (LSTM i, o, f, c; GRU
z, r, h; peepholes i, o, f) and two biases per gate, one added to W x and one to R h: symlstm's
one bias ``b_k`` per gate is the first, the second is zero except GRU's ``b_hn``, which (with
``linear_before_reset=1``) is added to R_n h_prev inside the reset gate's product, as in the spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from onnx import GraphProto, TensorProto, helper, numpy_helper

from symlstm.backends.onnx.graph import GraphBuilder
from symlstm.backends.onnx.interface import Interface
from symlstm.lang.spec import CellSpec


@dataclass(frozen=True)
class NativeOp:
    op_type: str
    #: the spec's gate names in the operator's order: W_<gate>, R_<gate>, b_<gate>
    gates: tuple[str, ...]
    #: the peephole vectors in the operator's order (i, o, f)
    peepholes: tuple[str, ...] = ()
    #: gate -> the parameter vector added to its recurrent product (zero for the others)
    recurrent_biases: Mapping[str, str] = field(default_factory=dict)
    attrs: Mapping[str, object] = field(default_factory=dict)


#: built-in cell -> the operator that computes it
NATIVE_OPS: dict[str, NativeOp] = {
    "lstm": NativeOp("LSTM", ("i", "o", "f", "g")),
    "peephole": NativeOp("LSTM", ("i", "o", "f", "g"), peepholes=("p_i", "p_o", "p_f")),
    "gru": NativeOp("GRU", ("z", "r", "n"), recurrent_biases={"n": "b_hn"}, attrs={"linear_before_reset": 1}),
    "rnn": NativeOp("RNN", ("h",), attrs={"activations": ["Tanh"]}),
    "rnn_relu": NativeOp("RNN", ("h",), attrs={"activations": ["Relu"]}),
}


def native_op(spec: CellSpec) -> NativeOp | None:
    """The operator that computes ``spec``'s cell, if ONNX has one."""
    from symlstm.cells import builtin_spec

    equations = {eq.target: eq.expr for eq in spec.equations}
    for name, op in NATIVE_OPS.items():
        builtin = builtin_spec(name)
        if builtin.states == spec.states and {eq.target: eq.expr for eq in builtin.equations} == equations:
            return op
    return None


def native_graph(io: Interface, op: NativeOp, elem_type: int, hidden_size: int) -> GraphProto:
    """The main graph: the weights stacked in the operator's layout, the operator, the outputs."""
    spec = io.d.spec
    g = GraphBuilder(io.namer, elem_type)

    def stacked(names: list[str]) -> str:
        """(1, rows of all, ...): the parameters one below the other, with a direction axis."""
        together = names[0] if len(names) == 1 else g.op("Concat", *names, axis=0)
        return g.op("Unsqueeze", together, g.int64s([0]))

    def zeros_like(vector: str) -> str:
        zero = numpy_helper.from_array(np.zeros(1, helper.tensor_dtype_to_np_dtype(elem_type)))
        return g.op("ConstantOfShape", g.op("Shape", vector), value=zero)

    biases = [f"b_{k}" for k in op.gates]
    recurrent = [op.recurrent_biases.get(k) or zeros_like(b) for k, b in zip(op.gates, biases)]
    inputs = [
        io.x,
        stacked([f"W_{k}" for k in op.gates]),
        stacked([f"R_{k}" for k in op.gates]),
        g.op("Unsqueeze", g.op("Concat", *biases, *recurrent, axis=0), g.int64s([0])),
        g.op("Cast", io.lengths, to=TensorProto.INT32) if io.lengths is not None else "",
    ]
    inputs += [g.op("Unsqueeze", io.initial[s], g.int64s([0])) for s in spec.states]
    if op.peepholes:
        inputs.append(stacked(list(op.peepholes)))
    sequence, *finals = g.ops(
        op.op_type,
        inputs,
        [io.namer.fresh("Y")] + [io.namer.fresh(f"Y_{s}") for s in spec.states],
        hidden_size=hidden_size,
        **op.attrs,
    )
    g.op("Squeeze", sequence, g.int64s([1]), out=io.ys)  # (T, directions = 1, B, H)
    for s, final in zip(spec.states, finals):
        g.op("Squeeze", final, g.int64s([0]), out=io.final[s])
    return g.graph(
        spec.name, io.inputs(g), io.outputs(g), doc=f"symlstm cell {spec.name!r}: {spec.title} ({op.op_type})"
    )
