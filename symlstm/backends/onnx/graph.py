"""Building one ONNX graph: nodes in the order they are made, names from the derivation's namer.

Every tensor name comes from one ``Namer`` shared by the main graph and the Scan body, so no name
of the body shadows one of the main graph (ONNX wants one static assignment per name across a
model's scopes), and none collides with a name of the spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from onnx import GraphProto, NodeProto, TensorProto, ValueInfoProto, helper, numpy_helper

from symlstm.ir.names import Namer
from symlstm.lang.sizes import Size

#: opset 20: onnxruntime >= 1.17 runs all of it (Shape with start/end, ReduceSum with axes as an
#: input, Split with a sizes input are all older); the IR version that goes with it
OPSET = 20
IR_VERSION = 9

#: the float dtypes a graph may compute in
FLOAT_TYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}

#: a tensor's dimensions: a size of the spec (a name or a number), or the name of a free dimension
Dims = Sequence[Size]


def float_type(dtype: Any) -> int:
    """The ONNX element type of ``"float32"`` or ``"float64"`` (or a NumPy dtype of either)."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = repr(dtype)
    if name not in FLOAT_TYPES:
        raise ValueError(f"dtype {dtype!r} is not supported for ONNX export; use float32 or float64")
    return FLOAT_TYPES[name]


class GraphBuilder:
    """The nodes of one graph, each added after its inputs exist (a topological order)."""

    def __init__(self, namer: Namer, elem_type: int):
        self.namer = namer
        self.elem_type = elem_type
        self.nodes: list[NodeProto] = []
        self._constants: dict[tuple, str] = {}

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        """Add a node with one output (named ``out``, or fresh from the op's name); return it."""
        return self.ops(op_type, inputs, [out or self.namer.fresh(op_type.lower())], **attrs)[0]

    def ops(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], **attrs) -> list[str]:
        """Add a node with several outputs; return their names."""
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), **attrs))
        return list(outputs)

    def constant(self, value: float) -> str:
        """A scalar of the graph's float type, made once per graph."""
        return self._constant(("float", float(value)), np.array(value, helper.tensor_dtype_to_np_dtype(self.elem_type)))

    def int64s(self, values: Sequence[int]) -> str:
        """A 1-D int64 tensor (axes, sizes), made once per graph."""
        return self._constant(("int64", tuple(values)), np.array(values, np.int64))

    def int64(self, value: int) -> str:
        """An int64 scalar (Range's arguments), made once per graph."""
        return self._constant(("int64", value), np.array(value, np.int64))

    def _constant(self, key: tuple, array: np.ndarray) -> str:
        if key not in self._constants:
            name = self.namer.fresh("const")
            self.op("Constant", out=name, value=numpy_helper.from_array(array, name))
            self._constants[key] = name
        return self._constants[key]

    def value_info(self, name: str, dims: Dims | None, elem_type: int | None = None) -> ValueInfoProto:
        """The declared type of a graph input or output; ``dims`` None leaves the shape unknown."""
        return helper.make_tensor_value_info(
            name, self.elem_type if elem_type is None else elem_type, None if dims is None else list(dims)
        )

    def graph(
        self, name: str, inputs: list[ValueInfoProto], outputs: list[ValueInfoProto], doc: str = ""
    ) -> GraphProto:
        return helper.make_graph(self.nodes, name, inputs, outputs, doc_string=doc or None)
