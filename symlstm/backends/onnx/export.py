"""``export``: a cell with trained parameters as an ``.onnx`` file that onnxruntime runs.

The model is ``build_model``'s, with the parameters moved from the graph's inputs to
initializers and the spec's size names in every declared shape replaced by their values (T and
B stay free). It is checked by ``onnx.checker`` (with shape inference) before anything is
written, and written whole or not at all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from onnx import GraphProto, ModelProto, checker, numpy_helper

from symlstm.backends.onnx.graph import float_type
from symlstm.backends.onnx.model import build_model
from symlstm.backends.onnx.params import check_params
from symlstm.files import write_atomic
from symlstm.ir.derive import derive
from symlstm.lang.spec import CellSpec


def export(
    cell,
    params: Mapping,
    path: str | os.PathLike,
    *,
    dtype: str = "float32",
    native: bool = False,
    lengths: bool = False,
    sizes: Mapping[str, int] | None = None,
) -> Path:
    """Write ``cell`` (a ``Cell``, a ``CellSpec``, a built-in name or a spec's path) with
    ``params`` as an ONNX model to ``path``; returns the path.

    ``dtype`` is the float type the graph computes in (``"float32"`` or ``"float64"``).
    ``native`` uses ONNX's own LSTM/GRU/RNN operator (for lstm, np, peephole, gru, rnn,
    rnn_relu) instead of a Scan. ``lengths`` adds an input ``lengths`` (B,) int64: a row's steps
    from its length on keep its states and give zero outputs. ``sizes`` gives any size that no
    parameter's shape carries. Raises ``ValueError`` naming the array for bad parameters.
    """
    model = to_model(cell, params, dtype=dtype, native=native, lengths=lengths, sizes=sizes)
    target = Path(path)
    write_atomic(target, model.SerializeToString())
    return target


def to_model(
    cell,
    params: Mapping,
    *,
    dtype: str = "float32",
    native: bool = False,
    lengths: bool = False,
    sizes: Mapping[str, int] | None = None,
) -> ModelProto:
    """The checked model ``export`` writes."""
    spec = _spec_of(cell)
    float_type(dtype)  # an unsupported dtype fails before anything else
    dtype = np.dtype(dtype).name
    arrays, values = check_params(spec, params, dtype, sizes)
    model = build_model(derive(spec), dtype, native=native, lengths=lengths, hidden_size=values["H"])
    graph = model.graph
    kept = [vi for vi in graph.input if vi.name not in arrays]
    del graph.input[:]
    graph.input.extend(kept)
    graph.initializer.extend(numpy_helper.from_array(arrays[name], name) for name in spec.param_names)
    _bind_dims(graph, values)
    checker.check_model(model, full_check=True)
    return model


def _spec_of(cell) -> CellSpec:
    if isinstance(cell, CellSpec):
        return cell
    spec = getattr(cell, "spec", None)
    if isinstance(spec, CellSpec):
        return spec
    from symlstm.cells import resolve_spec

    return resolve_spec(cell)


def _bind_dims(graph: GraphProto, values: Mapping[str, int]) -> None:
    """Replace the size names among the dimensions of every declared shape, the Scan body's too."""
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        for dim in vi.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in values:
                dim.dim_value = values[dim.dim_param]  # (setting the value clears the name)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                _bind_dims(attr.g, values)
